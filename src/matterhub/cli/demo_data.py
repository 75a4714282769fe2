"""Demo content: ASE's bundled collections published as datasets and indexed for search.

`dcdft` is the Delta-test set of 71 elemental crystals (WIEN2k PBE and experimental volumes and
bulk moduli): one CIF per crystal plus `dcdft.csv`. `g2` is the G2 set of small molecules as XYZ.
Both go through the Publish service (immutable version, identifier) and their dataset entry and
per-file records into the `mdf` search index — the shape Connect will produce once it lands.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from matterhub.bootstrap import Services
from matterhub.core.errors import Conflict, NotFound, SearchError
from matterhub.core.identity import PUBLIC, SYSTEM_IDENTITY

__all__ = ["DemoFile", "dcdft_files", "g2_files", "publish_demo_datasets"]

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
    """One file of a demo dataset and the metadata its search record carries."""

    path: str
    data: bytes
    mime_type: str
    record: dict[str, Any]


def _atoms_blocks(atoms: Any) -> dict[str, Any]:
    symbols = atoms.get_chemical_symbols()
    return {
        "material": {
            "composition": atoms.get_chemical_formula(),
            "elements": sorted(set(symbols)),
        },
    }


def dcdft_files() -> list[DemoFile]:
    """The dcdft crystals as CIF files and a CSV of their reference data."""
    import ase.io
    from ase.collections import dcdft

    files: list[DemoFile] = []
    table = io.StringIO()
    columns = ["name", "formula", "natoms", "wien2k_volume", "wien2k_B", "wien2k_Bp",
               "exp_volume", "exp_B", "exp_Bp"]  # fmt: skip
    writer = csv.DictWriter(table, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for name in dcdft.names:
        atoms = dcdft[name]
        values = dcdft.data[name]
        cif = io.BytesIO()  # ASE's CIF writer wants a binary stream
        ase.io.write(cif, atoms, format="cif")
        record = _atoms_blocks(atoms)
        record["crystal_structure"] = {
            "number_of_atoms": len(atoms),
            "volume": round(float(atoms.get_volume()), 4),
        }
        record["dft"] = {"exchange_correlation_functional": "PBE"}
        record["custom"] = {k: values[k] for k in sorted(values)}
        files.append(DemoFile(f"structures/{name}.cif", cif.getvalue(), "chemical/x-cif", record))
        row = {"name": name, "formula": atoms.get_chemical_formula(), "natoms": len(atoms)}
        writer.writerow({**row, **{k: values.get(k, "") for k in columns[3:]}})
    files.append(DemoFile("dcdft.csv", table.getvalue().encode(), "text/csv", {}))
    return files


def g2_files() -> list[DemoFile]:
    """The G2 molecules as XYZ files."""
    import ase.io
    from ase.collections import g2

    files = []
    for name in g2.names:
        atoms = g2[name]
        text = io.StringIO()
        ase.io.write(text, atoms, format="xyz")
        record = _atoms_blocks(atoms)
        record["molecule"] = {"molecular_weight": round(float(atoms.get_masses().sum()), 4)}
        files.append(
            DemoFile(f"molecules/{name}.xyz", text.getvalue().encode(), "chemical/x-xyz", record)
        )
    return files


def _records(
    services: Services, source_id: str, source_name: str, files: list[DemoFile], now: str
) -> Iterator[dict[str, Any]]:
    base = services.settings.base_url
    for scroll_id, item in enumerate(files, start=1):
        content = {
            "mdf": {
                "source_name": source_name,
                "source_id": source_id,
                "scroll_id": scroll_id,
                "resource_type": "record",
                "ingest_date": now,
                "acl": [PUBLIC],
            },
            "files": [
                {
                    "filename": item.path.rsplit("/", 1)[-1],
                    "data_type": "text",
                    "mime_type": item.mime_type,
                    "length": len(item.data),
                    "sha512": hashlib.sha512(item.data).hexdigest(),
                    "url": f"{base}/api/datasets/{source_id}/files/{item.path}",
                }
            ],
            **item.record,
        }
        yield {"subject": f"{source_id}.{scroll_id}", "visible_to": [PUBLIC], "content": content}


def _publish_one(
    services: Services, source_name: str, dc: dict[str, Any], files: list[DemoFile], owner: str
) -> str:
    repo = services.datasets
    try:
        return repo.get(SYSTEM_IDENTITY, source_name).source_id
    except NotFound:
        pass
    draft = repo.create(SYSTEM_IDENTITY, dc=dc, source_name=source_name, owner=owner)
    sid = draft.source_id
    for item in files:
        repo.put_file(SYSTEM_IDENTITY, sid, item.path, item.data)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    entries = list(_records(services, sid, source_name, [f for f in files if f.record], now))
    repo.set_records(SYSTEM_IDENTITY, sid, [e["content"] for e in entries])
    version = repo.publish(SYSTEM_IDENTITY, sid)
    total = sum(len(f.data) for f in files)
    dataset_entry = {
        "subject": sid,
        "visible_to": [PUBLIC],
        "content": {
            "mdf": {
                "source_name": source_name,
                "source_id": sid,
                "scroll_id": 0,
                "resource_type": "dataset",
                "ingest_date": now,
                "acl": [PUBLIC],
                "version": 1,
            },
            "dc": {
                **version.dc,
                "identifier": {"identifier": version.pid, "identifierType": "URL"},
            },
            "data": {
                "total_size": total,
                "link": f"{services.settings.base_url}/api/datasets/{sid}/archive.zip",
            },
            "services": {},
        },
    }
    body = {"ingest_type": "GMetaList", "ingest_data": {"gmeta": [dataset_entry, *entries]}}
    task = services.search.ingest(SYSTEM_IDENTITY, "mdf", body)
    done = services.search.wait(task.task_id, timeout=300)
    if done.state != "SUCCESS":
        raise SearchError(f"indexing the demo dataset {sid} failed: {done.message}")
    return sid


def publish_demo_datasets(services: Services, *, owner: str) -> list[str]:
    """Publish and index the demo datasets once; return their source_ids."""
    try:
        import ase  # noqa: F401
    except ImportError:
        return []  # the demo still serves; the datasets need `pip install matterhub[demo]`
    out = []
    for name, dc, build in (("dcdft", _DCDFT_DC, dcdft_files), ("g2", _G2_DC, g2_files)):
        try:
            out.append(_publish_one(services, name, dc, build(), owner))
        except Conflict as exc:
            # An earlier first start was interrupted half-way: say how to start clean.
            raise Conflict(
                f"the demo dataset {name!r} was left unfinished ({exc.detail}); remove "
                f"{services.settings.data_dir} and run the demo again",
                field="data_dir",
            ) from None
    return out
