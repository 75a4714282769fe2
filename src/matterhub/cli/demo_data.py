"""Demo content: ASE's bundled collections published as datasets and indexed for search.

`dcdft` is the Delta-test set of 71 elemental crystals (WIEN2k PBE and experimental volumes and
bulk moduli): one CIF per crystal plus `dcdft.csv`. `g2` is the G2 set of small molecules as XYZ.
Both are written to `<data_dir>/demo-source/` and submitted through the real Connect pipeline
(collect → extract → publish with an identifier → index in `mdf`), as any user's data would be.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from matterhub.bootstrap import Services
from matterhub.core.connect import SubmissionRequest
from matterhub.core.errors import Conflict, NotFound
from matterhub.core.identity import SYSTEM_IDENTITY, Identity

__all__ = ["DemoFile", "dcdft_files", "demo_source_root", "g2_files", "publish_demo_datasets"]

_DCDFT_DC = {
    "titles": [
        {"title": "Delta test: equations of state of 71 elemental crystals (WIEN2k and experiment)"}
    ],
    "creators": [
        {"creatorName": "Lejaeghere, Kurt"},
        {"creatorName": "Cottenier, Stefaan"},
    ],
    "publisher": "MatterHub demo (data from ASE's dcdft collection)",
    "subjects": [{"subject": "DFT"}, {"subject": "equation of state"}, {"subject": "bulk modulus"}],
    "descriptions": [
        {
            "description": "Crystal structures (CIF) and WIEN2k PBE equilibrium volumes and bulk "
            "moduli with experimental values where known, from the Delta-test benchmark as "
            "bundled with the Atomic Simulation Environment.",
            "descriptionType": "Abstract",
        }
    ],
    "relatedIdentifiers": [
        {
            "relatedIdentifier": "10.1126/science.aad3000",
            "relatedIdentifierType": "DOI",
            "relationType": "IsDerivedFrom",
        }
    ],
}
_G2_DC = {
    "titles": [{"title": "G2 molecules: geometries of the Gaussian-2 test set"}],
    "creators": [{"creatorName": "Curtiss, Larry A."}, {"creatorName": "Pople, John A."}],
    "publisher": "MatterHub demo (data from ASE's g2 collection)",
    "subjects": [{"subject": "molecules"}, {"subject": "quantum chemistry"}],
}


@dataclass(frozen=True, slots=True)
class DemoFile:
    """One file of a demo dataset."""

    path: str
    data: bytes


def dcdft_files() -> list[DemoFile]:
    """The dcdft crystals as CIF files and a CSV of their reference data."""
    import ase.io
    from ase.collections import dcdft

    files: list[DemoFile] = []
    table = io.StringIO()
    columns = ["name", "formula", "natoms", *_DCDFT_VALUES]
    writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for name in dcdft.names:
        atoms = dcdft[name]
        cif = io.BytesIO()  # ASE's CIF writer wants a binary stream
        ase.io.write(cif, atoms, format="cif")
        files.append(DemoFile(f"structures/{name}.cif", cif.getvalue()))
        values = dcdft.data[name]
        row = {"name": name, "formula": atoms.get_chemical_formula(), "natoms": len(atoms)}
        writer.writerow({**row, **{k: values.get(k, "") for k in _DCDFT_VALUES}})
    files.append(DemoFile("dcdft.csv", table.getvalue().encode()))
    return files


def g2_files() -> list[DemoFile]:
    """The G2 molecules as XYZ files."""
    import ase.io
    from ase.collections import g2

    files = []
    for name in g2.names:
        text = io.StringIO()
        ase.io.write(text, g2[name], format="xyz")
        files.append(DemoFile(f"molecules/{name}.xyz", text.getvalue().encode()))
    return files


# dcdft.csv becomes one record per crystal: MDF's `index` mapping, as a submitter would give it.
_DCDFT_VALUES = ["wien2k_volume", "wien2k_B", "wien2k_Bp", "exp_volume", "exp_B", "exp_Bp"]
_DCDFT_INDEX = {
    "csv": {
        "mapping": {
            "material.composition": "formula",
            "custom.name": "name",
            "custom.natoms": "natoms",
            **{f"custom.{k}": k for k in _DCDFT_VALUES},
        },
        "na_values": [""],
    }
}


def _submit_one(
    services: Services,
    who: Identity,
    source_name: str,
    dc: dict[str, Any],
    files: list[DemoFile],
    index: dict[str, Any],
) -> str:
    try:
        return services.datasets.get(SYSTEM_IDENTITY, source_name).source_id
    except NotFound:
        pass
    folder = services.settings.data_dir / "demo-source" / source_name
    for item in files:
        target = folder / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(item.data)
    request = SubmissionRequest(
        dc=dc, data_sources=[str(folder)], mdf={"source_name": source_name}, index=index
    )
    source_id = str(services.connect.submit(who, request)["source_id"])
    status = services.connect.wait(source_id, timeout=900)
    if status["flow_status"]["status"] != "SUCCEEDED":
        raise Conflict(
            f"the demo dataset {source_name} did not go through Connect:\n"
            f"{status['display_status']}",
            field="data_dir",
        )
    return source_id


def demo_source_root(data_dir: Path) -> Path:
    """Where the demo writes the files it submits (Connect must be allowed to collect there)."""
    return data_dir / "demo-source"


def publish_demo_datasets(services: Services, who: Identity) -> list[str]:
    """Submit the demo datasets through Connect once; return their source_ids."""
    try:
        import ase  # noqa: F401
    except ImportError:
        return []  # the demo still serves; the datasets need `pip install matterhub[demo]`
    return [
        _submit_one(services, who, "dcdft", _DCDFT_DC, dcdft_files(), _DCDFT_INDEX),
        _submit_one(services, who, "g2", _G2_DC, g2_files(), {}),
    ]
