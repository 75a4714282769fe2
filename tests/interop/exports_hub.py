"""A hub served on loopback with the demo datasets (through Connect), for the exports and MDF tests.

Alice owns the demo datasets (`dcdft`: CIFs + a CSV; `g2`: XYZ molecules), `arrays` (an HDF5
file and a CSV) and `secret` (a CSV, published to group `lab` only: alice and bob see it, carol
does not).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from matterhub.cli.demo_data import publish_demo_datasets
from matterhub.core.connect import SubmissionRequest
from matterhub.core.identity import Identity
from matterhub.settings import Settings
from tests.hub.served import Served, serve

SECRET_MARKER = "zqsecretexportmarker"


@dataclass
class ExportsHub:
    """The served hub and the source_ids of its datasets."""

    served: Served
    demo: list[str]
    arrays: str
    secret: str
    incoming: Path

    @property
    def base(self) -> str:
        return self.served.base

    def identity(self, user: str) -> Identity:
        return self.served.services.accounts.authenticate(self.served.tokens[user])


def submit(served: Served, who: Identity, folder: Path, request: SubmissionRequest) -> str:
    """Submit through Connect and wait until it is published and indexed."""
    connect = served.services.connect
    source_id = str(
        connect.submit(who, request.model_copy(update={"data_sources": [str(folder)]}))["source_id"]
    )
    status = connect.wait(source_id, timeout=300)
    assert status["flow_status"]["status"] == "SUCCEEDED", status["display_status"]
    return source_id


def _arrays(folder: Path) -> None:
    import h5py
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(folder / "spectra.h5", "w") as fh:
        fh.create_dataset("energy", data=np.linspace(0.0, 10.0, 16))
        fh["energy"].attrs["units"] = "eV"
        group = fh.create_group("sample")
        group.create_dataset("intensity", data=np.arange(32, dtype="float32").reshape(16, 2))
    (folder / "peaks.csv").write_text("position,height,label\n1.5,10,a\n2.5,7,b\n")


@contextmanager
def exports_hub(root: Path) -> Iterator[ExportsHub]:
    """Serve a hub in `root` with the demo datasets, `arrays` and `secret` published."""
    incoming = root / "incoming"
    incoming.mkdir(parents=True)
    settings = Settings(
        data_dir=root / "hub",
        connect_allowed_roots=[incoming, root / "hub" / "demo-source"],
    )
    with serve(settings) as served:
        alice = served.services.accounts.authenticate(served.tokens["alice"])
        demo = publish_demo_datasets(served.services, alice)
        assert demo == ["dcdft_v1.0", "g2_v1.0"]
        _arrays(incoming / "arrays")
        arrays = submit(
            served,
            alice,
            incoming / "arrays",
            SubmissionRequest(
                dc={
                    "titles": [{"title": "Spectra as arrays"}],
                    "creators": [{"creatorName": "Lovelace, Ada"}],
                },
                data_sources=["x"],
                mdf={"source_name": "arrays"},
            ),
        )
        (incoming / "secret").mkdir()
        (incoming / "secret" / "hidden.csv").write_text(f"{SECRET_MARKER},value\nx,1\n")
        secret = submit(
            served,
            alice,
            incoming / "secret",
            SubmissionRequest(
                dc={
                    "titles": [{"title": f"Lab only {SECRET_MARKER}"}],
                    "creators": [{"creatorName": "Lovelace, Ada"}],
                },
                data_sources=["x"],
                mdf={"source_name": "secret", "acl": ["group:lab"]},
            ),
        )
        yield ExportsHub(served, demo, arrays, secret, incoming)


def wait_until(check: object, timeout: float = 30.0) -> None:
    """Poll `check()` until it is truthy."""
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition never held")
        time.sleep(0.1)
