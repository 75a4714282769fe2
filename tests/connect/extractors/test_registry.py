"""run_extractors end to end: grouping, merging, warnings, time limits and plugin loading."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from matterhub.connect.extractors import (
    ExtractionContext,
    Extractor,
    FileGroup,
    StagedFile,
    StagedTree,
    iter_extractors,
    load_extractors,
    run_extractors,
)
from matterhub.connect.extractors.base import require
from matterhub.connect.extractors.pool import ExtractorPool
from matterhub.core.errors import InvalidInput

from .conftest import SAMPLES, staged


class Sleeper(Extractor):
    """A test-only extractor that hangs on `.hang` files."""

    name = "sleeper"

    def accepts(self, file: StagedFile) -> bool:
        return file.suffix == "hang"

    def extract(self, group: FileGroup, context: ExtractionContext) -> dict[str, Any]:
        time.sleep(60)
        return {}


class NeedsMissingLibrary(Extractor):
    """A test-only extractor whose library is not installed."""

    name = "missing"
    extra = "imaginary"

    def accepts(self, file: StagedFile) -> bool:
        return file.suffix == "hang"

    def extract(self, group: FileGroup, context: ExtractionContext) -> dict[str, Any]:
        require("matterhub_no_such_library", self.extra)
        return {}


def _all_samples(root: Path = SAMPLES) -> list[StagedFile]:
    return [staged(p, root) for p in sorted(root.rglob("*")) if p.is_file()]


@pytest.fixture(scope="module")
def pool() -> Any:
    pool = ExtractorPool(2)
    yield pool
    pool.close()


@pytest.fixture(scope="module")
def sample_result(pool: ExtractorPool) -> Any:
    return run_extractors(_all_samples(), ExtractionContext(config={"previews": True}), pool=pool)


def test_every_sample_folder_gives_records_without_warnings(sample_result: Any) -> None:
    assert sample_result.warnings == []
    by_first = {r["files"][0]["path"]: r for r in sample_result.records}
    assert len(by_first) == len(sample_result.records)
    vasp = by_first["vasp/AlN_alternative_pseudopotentials/INCAR"]
    assert len(vasp["files"]) == 5
    assert vasp["dft"]["code"] == "VASP"
    assert vasp["material"]["reduced_formula"] == "Al15H59C71(NO)15"
    qe = by_first["qe/TiO2_opt/pw.in"]
    assert [f["filename"] for f in qe["files"]] == ["pw.in", "pw.out"]
    assert qe["crystal_structure"]["space_group_number"] == 136
    assert by_first["cif/m-HfO2.cif"]["crystal_structure"]["space_group_number"] == 14
    assert by_first["dm3/test_STEM_image.dm3"]["electron_microscopy"]["beam_energy"] == 200.0
    assert by_first["emd/fei_example_tem_stack.emd"]["hdf5"]["top_level"][0] == "Application"
    assert by_first["tdb/alzn_mey.tdb"]["calphad"]["phases"] == ["FCC_A1", "HCP_A3", "LIQUID"]
    # A file no science extractor reads still gets its record, with just `files`.
    assert set(by_first["README.md"]) == {"files"}
    assert all(r["files"][0]["sha512"] for r in sample_result.records)


def test_citations_and_previews(sample_result: Any) -> None:
    assert {"structure", "vasp", "microscopy", "image"} <= set(sample_result.citations)
    assert all(c.startswith("@") for cs in sample_result.citations.values() for c in cs)
    previews = {d.source for d in sample_result.derived}
    assert {"image/pattern.png", "dm3/test_STEM_image.dm3"} <= previews


def test_group_by_dir_makes_one_record_per_folder(pool: ExtractorPool) -> None:
    files = [f for f in _all_samples() if f.relpath.startswith(("cif/", "poscar/"))]
    result = run_extractors(files, ExtractionContext(config={"group_by_dir": True}), pool=pool)
    assert sorted(len(r["files"]) for r in result.records) == [2, 3]


def test_csv_mapping_gives_a_record_per_row_with_the_file(pool: ExtractorPool) -> None:
    files = [f for f in _all_samples() if f.relpath.startswith("csv/")]
    context = ExtractionContext(index={"csv": {"mapping": {"molecule.smiles": "SMILES"}}})
    result = run_extractors(files, context, pool=pool)
    assert len(result.records) == 410
    assert result.records[0]["molecule"]["smiles"] == "C=CC(=O)OCC(CC)CCCC"
    assert result.records[0]["files"][0]["filename"] == "MD_properties.csv"


CORRUPTIONS = {
    "cif/1000052.cif": b"data_broken\n_cell_length_a 1\nloop_\n_atom_site_label\n",
    "poscar/POSCAR-JVASP-107": b"System\n1.0\n 3.1 0 0\n",
    "xyz/H2O-pos-1.xyz": b"3\ncomment\nH 0 0\n",
    "extxyz/explore_c-gap-20u.xyz": b'125\nLattice="9 0 0 0 9 0 0 0 9" Properties=species:S:1:pos:R:3\nC 0.0\n',
    "lammps/data.hexane_cyclohexane": b"LAMMPS data file\n\n 684 atoms\n",
    "lammps/naph_298_eq.lammpstrj": b"ITEM: TIMESTEP\n0\nITEM: NUMBER OF ATOMS\n",
    "gaussian/dvb_gopt.out": None,
    "qe/TiO2_opt/pw.out": None,
    "vasp/AlN_alternative_pseudopotentials/vasprun.xml": None,
    "dm3/test_STEM_image.dm3": None,
    "dm4/EELS_SI.dm4": None,
    "emd/fei_example_tem_stack.emd": None,
    "mrc/HAADFscan.mrc": None,
    "tiff/FEI-Helios-Ebeam-8bits.tif": None,
    "hdf5/patterns.h5": None,
    "image/renishaw_wire.jpg": None,
    "image/pattern.png": None,
    "tdb/alzn_mey.tdb": b"$ nothing but a comment\n",
    "csv/MD_properties.csv": b"",
}


@pytest.mark.parametrize("relpath", sorted(CORRUPTIONS))
def test_corrupt_copy_gives_a_warning_not_an_exception(
    relpath: str, tmp_path: Path, pool: ExtractorPool
) -> None:
    source = SAMPLES / relpath
    target = tmp_path / relpath
    target.parent.mkdir(parents=True)
    if relpath.startswith("vasp/"):
        for sibling in source.parent.iterdir():
            shutil.copy(sibling, target.parent / sibling.name)
    raw = source.read_bytes()
    # Binary formats and long logs: keep the head (so the file is still recognised), cut the rest.
    body = CORRUPTIONS[relpath]
    target.write_bytes(raw[: max(len(raw) // 3, 64)] if body is None else body)
    if relpath.endswith("pw.out"):
        target.write_bytes(raw[:6000] + b"\n!    total energy = garbage\n")
        (target.parent / "pw.in").write_bytes(b"")
    files = [staged(p, tmp_path) for p in sorted(tmp_path.rglob("*")) if p.is_file()]
    context = ExtractionContext(time_limit_s=20)
    result = run_extractors(files, context, pool=pool)
    assert result.records, "every group still yields its files record"
    assert any(w["path"].startswith(relpath.rsplit("/", 1)[0]) for w in result.warnings), (
        result.records
    )


def test_a_hanging_extractor_is_cut_off_and_the_pool_recovers(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    (tmp_path / "a.hang").write_text("x")
    shutil.copy(SAMPLES / "cif/m-HfO2.cif", tmp_path / "m-HfO2.cif")
    files = [staged(p, tmp_path) for p in sorted(tmp_path.iterdir())]
    extractors = [Sleeper(), *load_extractors(["structure"])]
    started = time.monotonic()
    result = run_extractors(
        files, ExtractionContext(time_limit_s=1.0), extractors=extractors, pool=pool
    )
    assert time.monotonic() - started < 15
    assert result.warnings == [
        {"path": "a.hang", "extractor": "sleeper", "message": "timed out after 1 s"}
    ]
    cif = next(r for r in result.records if r["files"][0]["filename"] == "m-HfO2.cif")
    assert cif["crystal_structure"]["space_group_number"] == 14
    again = run_extractors(files[1:], ExtractionContext(), extractors=extractors, pool=pool)
    assert again.warnings == []


def test_a_missing_library_names_the_extra(tmp_path: Path, pool: ExtractorPool) -> None:
    (tmp_path / "a.hang").write_text("x")
    files = [staged(tmp_path / "a.hang", tmp_path)]
    result = run_extractors(
        files, ExtractionContext(), extractors=[NeedsMissingLibrary()], pool=pool
    )
    (warning,) = result.warnings
    assert "pip install 'matterhub[imaginary]'" in warning["message"]


def test_thread_isolation_also_enforces_the_limit(tmp_path: Path) -> None:
    (tmp_path / "a.hang").write_text("x")
    files = [staged(tmp_path / "a.hang", tmp_path)]
    pool = ExtractorPool(1, isolation="thread")
    result = run_extractors(
        files, ExtractionContext(time_limit_s=0.5), extractors=[Sleeper()], pool=pool
    )
    assert result.warnings[0]["message"] == "timed out after 0.5 s"


def test_load_extractors_from_entry_points() -> None:
    names = [e.name for e in load_extractors()]
    assert names[0] == "generic"
    assert {
        "structure",
        "vasp",
        "espresso",
        "gaussian",
        "microscopy",
        "image",
        "hdf5",
        "tdb",
        "tabular",
    } <= set(names)
    assert all(e.version and isinstance(e.citations(), list) for e in load_extractors())
    with pytest.raises(InvalidInput, match="nope"):
        load_extractors(["nope"])


def test_each_extractor_cites_the_libraries_it_uses() -> None:
    keys = {
        e.name: {c.split("{", 1)[1].split(",", 1)[0] for c in e.citations()}
        for e in load_extractors()
    }
    assert {"ong2013pymatgen", "larsen2017ase", "togo2024spglib"} <= keys["structure"]
    assert "hunter2007matplotlib" in keys["structure"]  # renders the structure preview
    assert {"ong2013pymatgen", "togo2024spglib"} <= keys["vasp"]
    assert {"larsen2017ase", "ong2013pymatgen", "togo2024spglib"} <= keys["espresso"]
    assert "ong2013pymatgen" in keys["gaussian"]
    assert {"rosettasciio", "tifffile", "pillow"} <= keys["microscopy"]
    assert keys["image"] == {"pillow"}
    assert keys["hdf5"] == {"collette2013h5py"}
    assert keys["tabular"] == {"openpyxl", "pyyaml"}
    assert keys["tdb"] == {"otis2017pycalphad"}
    assert keys["generic"] == keys["filename"] == set()  # the standard library only


class CountingPool:
    """A real pool that remembers how many extractor calls it was given so far."""

    def __init__(self, pool: ExtractorPool) -> None:
        self.pool = pool
        self.calls = 0

    def run(self, tasks: Any) -> Any:
        self.calls += len(tasks)
        return self.pool.run(tasks)


def test_iter_extractors_streams_parts_and_agrees_with_run_extractors(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    for i in range(7):  # seven folders, each one record: a mapped JSON file and a text note
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        (folder / "facts.json").write_text(f'{{"gap": {1.0 + i / 10}}}')
        (folder / "note.txt").write_text(f"sample {i}\n")
    files = [
        StagedFile(p, p.relative_to(tmp_path).as_posix(), p.stat().st_size)
        for p in sorted(tmp_path.rglob("*"))
        if p.is_file()
    ]
    context = ExtractionContext(
        config={"group_by_dir": True, "extractors": ["generic", "tabular"]},
        index={"json": {"mapping": {"custom.gap": "gap"}}},
    )
    counting = CountingPool(pool)
    parts = iter_extractors(files, context, pool=counting, chunk=3)
    assert counting.calls == 0  # nothing runs before a part is asked for
    first = next(parts)
    assert counting.calls == 3  # one JSON per folder, three folders: only the first part's
    assert [r["custom"]["gap"] for r in first.records] == [1.0, 1.1, 1.2]
    rest = list(parts)
    assert [len(p.records) for p in rest] == [3, 1] and counting.calls == 7
    streamed = first.records + [r for p in rest for r in p.records]
    assert streamed == run_extractors(files, context, pool=pool).records
    assert {f["path"] for f in streamed[6]["files"]} == {"s6/facts.json", "s6/note.txt"}
    assert rest[-1].citations and "tabular" in rest[-1].citations


class AcrossFolders(Extractor):
    """A test-only plugin whose groups span folders: every `.pair` file of the tree is one group."""

    name = "across"
    folder_local = False

    def accepts(self, file: StagedFile) -> bool:
        return file.suffix == "pair"

    def group(self, files: Any) -> Any:
        pairs = tuple(f for f in files if self.accepts(f))
        return [FileGroup("pairs", pairs)] if pairs else []

    def extract(self, group: FileGroup, context: ExtractionContext) -> dict[str, Any]:
        return {"custom": {"pairs": len(group.files)}}


def test_a_staged_tree_walks_folder_by_folder_in_chunks_of_whole_folders(tmp_path: Path) -> None:
    for rel in ["b/2.txt", "b/1.txt", "a.txt", "b/c/3.txt", "d/4.txt", "d/5.txt", "e/6.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "empty").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "b", target_is_directory=True)  # not followed
    tree = StagedTree(tmp_path, chunk_files=2)
    order = ["a.txt", "b/1.txt", "b/2.txt", "b/c/3.txt", "d/4.txt", "d/5.txt", "e/6.txt"]
    assert [f.relpath for f in tree] == order
    assert [[f.relpath for f in c] for c in tree.chunks()] == [
        ["a.txt", "b/1.txt", "b/2.txt"],  # a folder is never split: b's two files come together
        ["b/c/3.txt", "d/4.txt", "d/5.txt"],
        ["e/6.txt"],
    ]
    assert tree.summary() == (7, sum(len(r) for r in order))
    assert all(f.path == tmp_path / f.relpath for f in tree)
    assert list(StagedTree(tmp_path / "missing")) == []


def test_a_staged_tree_is_planned_a_chunk_at_a_time_with_the_same_records(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    for i in range(9):
        folder = tmp_path / f"s{i}"
        folder.mkdir()
        (folder / "facts.json").write_text(f'{{"gap": {1.0 + i / 10}}}')
        (folder / "note.txt").write_text(f"sample {i}\n")
    context = ExtractionContext(
        config={"group_by_dir": True, "extractors": ["generic", "tabular"]},
        index={"json": {"mapping": {"custom.gap": "gap"}}},
    )
    tree = StagedTree(tmp_path, chunk_files=4)  # two folders (four files) a chunk
    parts = list(iter_extractors(tree, context, pool=pool))
    assert [len(p.records) for p in parts] == [2, 2, 2, 2, 1]  # planned and run per chunk
    whole = run_extractors(list(tree), context, pool=pool).records
    assert [r for p in parts for r in p.records] == whole
    assert [r["custom"]["gap"] for r in whole] == [1.0 + i / 10 for i in range(9)]


def test_a_plugin_grouping_across_folders_gets_the_tree_planned_whole(
    tmp_path: Path, pool: ExtractorPool
) -> None:
    for i in range(5):
        (tmp_path / f"s{i}").mkdir()
        (tmp_path / f"s{i}" / "x.pair").write_text(str(i))
    context = ExtractionContext(config={})
    extractors = [*load_extractors(["generic"]), AcrossFolders()]
    tree = StagedTree(tmp_path, chunk_files=1)
    records = [
        r
        for p in iter_extractors(tree, context, extractors=extractors, pool=pool)
        for r in p.records
    ]
    assert len(records) == 1 and records[0]["custom"]["pairs"] == 5
    assert len(records[0]["files"]) == 5
