"""The `matterhub` command line."""
