"""A MatterHub served on loopback from a local folder, for running the workflow without a hub
(`examples/_hubtools.local_hub`, with the user "delta")."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from examples._hubtools import local_hub as _local_hub

__all__ = ["USER", "local_hub"]

USER = "delta"


@contextmanager
def local_hub(folder: Path) -> Iterator[tuple[str, str]]:
    """Serve a hub from `folder` on loopback; yield `(url, token of the user "delta")`."""
    with _local_hub(folder, user=USER, full_name="Delta Workflow") as served:
        yield served
