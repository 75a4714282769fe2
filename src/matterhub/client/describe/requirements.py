"""Requirement detection: the installed versions of the third-party modules a servable imports."""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import sys
from collections.abc import Iterable
from pathlib import Path

__all__ = ["detect_requirements", "imported_modules", "installed_version"]


def imported_modules(source: Path) -> set[str]:
    """Top-level names of the modules a Python file imports (absolute imports only)."""
    tree = ast.parse(source.read_text(), filename=str(source))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def installed_version(distribution: str) -> str | None:
    """The installed version of a distribution, without a local label (`2.13.0+cpu` → `2.13.0`)."""
    try:
        return metadata.version(distribution).split("+")[0]
    except metadata.PackageNotFoundError:
        return None


def detect_requirements(modules: Iterable[str], *, local: Iterable[str] = ()) -> dict[str, str]:
    """Map imported module names to `{distribution: installed version}`.

    The standard library, MatterHub itself and `local` modules (files shipped in the bundle) are
    skipped. A module no installed distribution provides raises LookupError naming it, since the
    build could not install it either.
    """
    providers = metadata.packages_distributions()
    skip = set(sys.stdlib_module_names) | set(local) | {"matterhub", "__future__"}
    out: dict[str, str] = {}
    for module in sorted(set(modules) - skip):
        dists = providers.get(module)
        if not dists:
            raise LookupError(
                f"module {module!r} is imported but no installed package provides it; "
                "install it or add the requirement by hand"
            )
        name = dists[0]
        version = installed_version(name)
        if version:
            out[name] = version
    return out
