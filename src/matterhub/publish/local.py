"""The local PID minter (default): opaque `<prefix>/<suffix>` ids resolved by this hub."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from matterhub.core.errors import InvalidInput
from matterhub.publish.pid import PIDProvider

__all__ = ["LocalPIDProvider"]

# Crockford's base32 alphabet: no I, L, O or U, so ids survive being read aloud or retyped.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


class LocalPIDProvider(PIDProvider):
    """Mints `<prefix>/<xxxx-xxxx>`; the catalog is the registry, `/pid/<id>` the resolver."""

    name = "local"
    is_doi = False

    def __init__(self, prefix: str = "mh") -> None:
        if not prefix or "/" in prefix or not prefix.isascii() or not prefix.isprintable():
            raise InvalidInput(
                f"pid_prefix {prefix!r} must be printable ASCII without '/'", field="pid_prefix"
            )
        self.prefix = prefix

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> LocalPIDProvider:
        """Uses `pid_prefix`."""
        return cls(str(options.get("pid_prefix") or "mh"))

    def reserve(self, source_id: str, metadata: Mapping[str, Any]) -> str:
        """A fresh random id; the catalog's unique `pid` column catches the rare collision."""
        suffix = "".join(secrets.choice(_ALPHABET) for _ in range(8))
        return f"{self.prefix}/{suffix[:4]}-{suffix[4:]}"

    def register(self, pid: str, metadata: Mapping[str, Any]) -> None:
        """Nothing to do: a published version resolves as soon as the catalog says so."""

    def hide(self, pid: str) -> None:
        """Nothing to do: the landing page shows the withdrawal."""

    def resolver_url(self, pid: str, base_url: str) -> str:
        """`<base_url>/pid/<id>`."""
        return f"{base_url}/pid/{pid}"
