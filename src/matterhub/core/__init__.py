"""Pure domain: models, errors, identities and access rules; no I/O, no other imports of ours."""
