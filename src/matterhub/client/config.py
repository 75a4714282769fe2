"""The user's client config: hub URL and token per profile, in a file only its owner can read.

Location: `$MATTERHUB_CLIENT_CONFIG`, else `$XDG_CONFIG_HOME/matterhub/client.json`, else
`~/.config/matterhub/client.json`. `$MATTERHUB_URL` and `$MATTERHUB_TOKEN` override the profile.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from matterhub.client.errors import ConfigError

__all__ = [
    "DEFAULT_PROFILE",
    "Profile",
    "client_from_config",
    "config_path",
    "load_profile",
    "save_profile",
]

DEFAULT_PROFILE = "default"
Profile = dict[str, str]


def config_path() -> Path:
    """Where the client config lives (see the module docstring)."""
    explicit = os.environ.get("MATTERHUB_CLIENT_CONFIG")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "matterhub" / "client.json"


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"default_profile": DEFAULT_PROFILE, "profiles": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the client config {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("profiles", {}), dict):
        raise ConfigError(f"the client config {path} is not a MatterHub client config")
    data.setdefault("profiles", {})
    data.setdefault("default_profile", DEFAULT_PROFILE)
    return data


def save_profile(
    url: str, token: str | None, *, profile: str | None = None, make_default: bool = False
) -> Path:
    """Store a profile; the file is written with mode 0600 (its folder 0700)."""
    path = config_path()
    data = _read(path)
    name = profile or DEFAULT_PROFILE
    entry: Profile = {"url": url.rstrip("/")}
    if token:
        entry["token"] = token
    data["profiles"][name] = entry
    if make_default or not data.get("default_profile"):
        data["default_profile"] = name
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)  # in case the file existed with a looser mode
    os.replace(tmp, path)
    return path


def load_profile(profile: str | None = None) -> Profile:
    """The named profile (default: the config's default), with environment overrides applied."""
    path = config_path()
    data = _read(path)
    name = profile or os.environ.get("MATTERHUB_PROFILE") or data["default_profile"]
    stored = data["profiles"].get(name)
    if stored is None and profile:
        known = ", ".join(sorted(data["profiles"])) or "none"
        raise ConfigError(f"no profile {profile!r} in {path} (profiles: {known})")
    entry: Profile = dict(stored or {})
    if os.environ.get("MATTERHUB_URL"):
        entry["url"] = os.environ["MATTERHUB_URL"]
    if os.environ.get("MATTERHUB_TOKEN"):
        entry["token"] = os.environ["MATTERHUB_TOKEN"]
    if not entry.get("url"):
        raise ConfigError(
            "no hub configured: run `matterhub login --url <hub>` or set MATTERHUB_URL "
            "(or pass base_url=)"
        )
    return entry


def client_from_config(
    profile: str | None = None, *, anonymous: bool = False, **client_kwargs: Any
) -> Any:
    """A `Client` for a saved profile."""
    from matterhub.client.client import Client

    entry = load_profile(profile)
    token = None if anonymous else entry.get("token")
    return Client(entry["url"], token, **client_kwargs)
