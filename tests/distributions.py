"""Install a third party's distribution for a test: its modules and a `.dist-info` on sys.path.

What `pip install` leaves behind, minus the installer: `importlib.metadata` finds the entry
points in the `.dist-info`, and the hub loads them as it loads any installed plugin.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

__all__ = ["install_distribution"]


def install_distribution(
    site: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    name: str,
    files: dict[str, str],
    entry_points: str,
) -> Path:
    """Write `files` (relative path → source) and `<name>-1.0.dist-info` under `site`, and put
    `site` first on sys.path until the test ends (its top-level modules forgotten then)."""
    for relpath, text in files.items():
        path = site / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    monkeypatch.syspath_prepend(str(site))
    for top in {Path(relpath).parts[0].removesuffix(".py") for relpath in files}:
        # Recorded as absent: whatever the test imports under this name is dropped at teardown.
        monkeypatch.setitem(sys.modules, top, None)
        del sys.modules[top]
    return site
