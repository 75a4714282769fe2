"""A structure servable tried from its page with an uploaded XYZ file (one or many molecules)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from matterhub import Client
from matterhub.client.describe import describe_files
from tests.web.conftest import Hub, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REF = "alice/heavy_atoms"
# Two molecules as ASE writes extended XYZ (water, then methane), then a plain XYZ ammonia.
WATER = """3
Properties=species:S:1:pos:R:3 name=H2O pbc="F F F"
O 0.0 0.0 0.119
H 0.0 0.763 -0.477
H 0.0 -0.763 -0.477
"""
METHANE = """5
Properties=species:S:1:pos:R:3 name=CH4 pbc="F F F"
C 0.0 0.0 0.0
H 0.629 0.629 0.629
H -0.629 -0.629 0.629
H 0.629 -0.629 -0.629
H -0.629 0.629 -0.629
"""
AMMONIA = """4
ammonia
N 0.0 0.0 0.116
H 0.0 0.939 -0.271
H 0.813 -0.469 -0.271
H -0.813 -0.469 -0.271
"""
MOLECULES = WATER + METHANE + AMMONIA
# What the servable answers for each: its atoms other than hydrogen and its atom count.
EXPECTED = {"H2O": [1, 3], "CH4": [1, 5], "ammonia": [1, 4]}


@pytest.fixture(scope="module")
def structure_servable(hub: Hub, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A stdlib servable taking one `structure` (XYZ text): `[heavy atoms, atoms]`."""
    folder = tmp_path_factory.mktemp("heavy")
    module = folder / "heavy_atoms.py"
    module.write_text(
        '"""Count the atoms of an XYZ molecule."""\n\n\n'
        "def count(xyz):\n"
        "    lines = xyz.strip().splitlines()\n"
        "    symbols = [row.split()[0] for row in lines[2 : 2 + int(lines[0])]]\n"
        '    return [sum(s != "H" for s in symbols), len(symbols)]\n'
    )
    description = describe_files(
        "heavy_atoms",
        "heavy_atoms:count",
        [module],
        input_type={"type": "structure", "formats": ["xyz"], "description": "a molecule"},
        output_type={"type": "list", "item_type": {"type": "integer"}},
    )
    description.set_title("Heavy atoms of a molecule").set_creators(["Demo, Alice"])
    description.set_example(WATER, [1, 3])
    with Client(hub.base, token=hub.tokens["alice"]) as alice:
        build = alice.publish_servable(description, wait=True, timeout=120)
    assert build["status"] == "succeeded", build["log"]
    return REF


def test_an_uploaded_xyz_file_runs_once_a_molecule(
    new_page: Any, hub: Hub, structure_servable: str, tmp_path: Path
) -> None:
    many = tmp_path / "three.xyz"
    many.write_text(MOLECULES)
    one = tmp_path / "methane.xyz"
    one.write_text(METHANE)
    page = new_page()
    sign_in(page, "alice")
    page.goto(f"/servables/{structure_servable}")
    assert page.locator("#type-input").inner_text().startswith("structure")
    page.locator("#try-upload").set_input_files(str(many))
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-rows")
    rows = page.locator("#try-rows tbody tr")
    assert rows.count() == 3
    for i, (title, expected) in enumerate(EXPECTED.items()):
        assert rows.nth(i).locator("th").inner_text() == title
        assert json.loads(rows.nth(i).locator("td code").inner_text()) == expected
    assert page.locator("#try-rows caption").inner_text() == "3 structures"
    shot(page, "servable-structure-upload")

    # One molecule: the plain answer, as for typed input.
    page.locator("#try-upload").set_input_files(str(one))
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_function(
        "document.querySelector('#try-output') && !document.querySelector('#try-rows')"
    )
    assert json.loads(page.locator("#try-output").inner_text()) == EXPECTED["CH4"]

    # A file cut short is refused beside the form, naming the field and where.
    broken = tmp_path / "broken.xyz"
    broken.write_text(MOLECULES[:-60])
    page.locator("#try-upload").set_input_files(str(broken))
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-error")
    error = page.locator("#try-error").inner_text()
    assert error.startswith("upload: ") and "line 13" in error and "ends first" in error
    assert page.locator("#try-upload").get_attribute("aria-invalid") == "true"


def _form(page_html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert found is not None
    return found.group(1)


def test_uploads_without_javascript_and_their_bounds(hub: Hub, structure_servable: str) -> None:
    """The form posts as multipart without the script; wrong uses get a 4xx naming `upload`."""
    with httpx.Client(base_url=hub.base, timeout=60) as http:
        page = http.get(f"/servables/{structure_servable}")
        assert page.status_code == 200
        csrf = _form(page.text)
        assert 'enctype="multipart/form-data"' in page.text and 'id="try-upload"' in page.text

        def post(ref: str, data: bytes, name: str = "m.xyz") -> httpx.Response:
            return http.post(
                f"/servables/{ref}/try",
                data={"csrf_token": csrf, "inputs": ""},
                files={"upload": (name, data, "chemical/x-xyz")},
            )

        # The public may run it (the demo's default rights): the page comes back with the table.
        answer = post(structure_servable, MOLECULES.encode())
        assert answer.status_code == 200, answer.text
        assert answer.text.count('<th scope="row">') == 3 and "<code>[1, 5]</code>" in answer.text

        too_many = ("1\nx\nHe 0 0 0\n" * 201).encode()
        refused = post(structure_servable, too_many)
        assert refused.status_code == 422
        assert "more than 200 molecules" in refused.text
        assert post(structure_servable, b"\xff\xfe\x00").status_code == 422
        big = b"1\nx\n" + b"He 0 0 0 " + b" " * (4 * 1024**2) + b"\n"
        assert post(structure_servable, big).status_code == 413
        # Not a structure servable: the file is refused, the reason says why.
        other = post("alice/bulk_modulus_delta", MOLECULES.encode())
        assert other.status_code == 422
        assert "input is a float, not a structure" in other.text
        page = http.get("/servables/alice/bulk_modulus_delta")
        assert 'id="try-upload"' not in page.text
