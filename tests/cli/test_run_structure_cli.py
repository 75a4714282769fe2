"""`matterhub run --upload mol.xyz` for a servable whose input is a `structure`: the file's text
is the input (one file, or one task per file with `--batch`), against a hub served on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from matterhub.cli.main import app
from matterhub.client.describe import describe_files
from tests.hub.conftest import hub_settings, write_module
from tests.hub.served import Served, serve

pytestmark = pytest.mark.timeout(300)
runner = CliRunner()

COUNT_SOURCE = '''
def count(structure: str) -> int:
    """Atoms in an XYZ text: its first line."""
    return int(structure.split()[0])
'''
WATER = "3\nwater\nO 0 0 0.119\nH 0 0.763 -0.477\nH 0 -0.763 -0.477\n"
METHANE = (
    "5\nmethane\nC 0 0 0\nH 0.629 0.629 0.629\nH -0.629 -0.629 0.629\n"
    "H 0.629 -0.629 -0.629\nH -0.629 0.629 -0.629\n"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("structure-cli")
    module = write_module(root / "src", "atoms_count", COUNT_SOURCE)
    description = describe_files(
        "count", "atoms_count:count", [module],
        input_type={"type": "structure", "description": "a molecule"},
        output_type={"type": "integer"},
    )  # fmt: skip
    description.set_title("Count atoms").set_creators(["Doe, Jane"]).set_example(WATER, 3)
    with serve(hub_settings(root / "hub")) as hub:
        with hub.client("alice") as alice:
            build = alice.publish_servable(description, wait=True, timeout=240)
            assert build["status"] == "succeeded", build["log"]
        yield hub


def test_an_uploaded_xyz_is_the_structure_input(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MATTERHUB_CLIENT_CONFIG", str(tmp_path / "client.json"))
    monkeypatch.setenv("MATTERHUB_URL", served.base)
    monkeypatch.setenv("MATTERHUB_TOKEN", served.tokens["bob"])
    water, methane = tmp_path / "water.xyz", tmp_path / "methane.xyz"
    water.write_text(WATER)
    methane.write_text(METHANE)
    one = runner.invoke(app, ["run", "alice/count", "--upload", str(water)])
    assert one.exit_code == 0, one.output
    assert json.loads(one.output) == 3
    many = runner.invoke(
        app, ["run", "alice/count", "--batch", "-u", str(water), "-u", str(methane)]
    )
    assert many.exit_code == 0, many.output
    assert json.loads(many.output) == [3, 5]
    # Several files for one structure: refused, saying what to add.
    both = runner.invoke(app, ["run", "alice/count", "-u", str(water), "-u", str(methane)])
    assert both.exit_code == 2 and "--batch" in both.output
    # A file that is not text, and text that is not a structure (the hub names the input).
    binary = tmp_path / "mol.bin"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    refused = runner.invoke(app, ["run", "alice/count", "--upload", str(binary)])
    assert refused.exit_code == 2 and "a structure file is text" in refused.output
    notes = tmp_path / "notes.xyz"
    notes.write_text("not a molecule at all\n")
    invalid = runner.invoke(app, ["run", "alice/count", "--upload", str(notes)])
    assert invalid.exit_code == 2 and "not a structure" in invalid.output
