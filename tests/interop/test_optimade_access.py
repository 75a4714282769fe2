"""OPTIMADE sees what the caller may see: a private dataset's structures stay hidden; errors
come back in OPTIMADE's format."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from matterhub.core.connect import SubmissionRequest
from matterhub.settings import Settings
from tests.client.conftest import BASE, transport_for
from tests.hub.conftest import Hub, running_hub

WATER = "3\n\nO 0.0 0.0 0.119\nH 0.0 0.763 -0.477\nH 0.0 -0.763 -0.477\n"
AMMONIA = (
    "4\n\nN 0.0 0.0 0.116\nH 0.0 0.939 -0.271\nH 0.813 -0.470 -0.271\nH -0.813 -0.470 -0.271\n"
)
SILICON = """Si
1.0
0.0 2.715 2.715
2.715 0.0 2.715
2.715 2.715 0.0
Si
2
Direct
0.0 0.0 0.0
0.25 0.25 0.25
"""
SALT = """data_NaCl
_cell_length_a 5.64
_cell_length_b 5.64
_cell_length_c 5.64
_cell_angle_alpha 90
_cell_angle_beta 90
_cell_angle_gamma 90
_symmetry_space_group_name_H-M 'P 1'
loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
Na1 Na 0.0 0.0 0.0
Cl1 Cl 0.5 0.5 0.5
"""


class Hubs:
    """The running hub and an HTTP client per caller."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.transport = transport_for(hub.app)
        self.http = httpx.Client(transport=self.transport, base_url=BASE, timeout=60)

    def get(self, who: str | None, path: str, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.hub.tokens[who]}"} if who else {}
        return self.http.get(f"/optimade/v1{path}", params=params, headers=headers)

    def close(self) -> None:
        self.http.close()
        self.transport.shutdown()


@pytest.fixture(scope="module")
def hubs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hubs]:
    root = tmp_path_factory.mktemp("optimade-access")
    incoming = root / "incoming"
    for name, files in {
        "open": {"water.xyz": WATER, "salt.cif": SALT, "POSCAR": SILICON},
        "hidden": {"ammonia.xyz": AMMONIA},
    }.items():
        (incoming / name).mkdir(parents=True)
        for filename, text in files.items():
            (incoming / name / filename).write_text(text)
    settings = Settings(data_dir=root / "hub", connect_allowed_roots=[incoming])
    with running_hub(settings) as hub:
        alice = hub.services.accounts.authenticate(hub.tokens["alice"])
        submitted = []
        for name, acl in (("open", ["public"]), ("hidden", ["group:lab"])):
            request = SubmissionRequest.model_validate(
                {
                    "dc": {
                        "titles": [{"title": f"Optimade {name} structures"}],
                        "creators": [{"creatorName": "Lovelace, Ada"}],
                    },
                    "data_sources": [str(incoming / name)],
                    "mdf": {"source_name": f"opt_{name}", "acl": acl},
                }
            )
            submitted.append(str(hub.services.connect.submit(alice, request)["source_id"]))
        for source_id in submitted:
            status = hub.services.connect.wait(source_id, timeout=300)
            assert status["status"]["state"] == "succeeded", status
        served = Hubs(hub)
        try:
            yield served
        finally:
            served.close()


OPEN = {"opt_open_1", "opt_open_2", "opt_open_3"}  # NaCl (CIF), Si (POSCAR), water (XYZ)


def ids(response: httpx.Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {entry["id"] for entry in response.json()["data"]}


def test_private_structures_are_invisible_to_anonymous_and_unrelated_users(hubs: Hubs) -> None:
    for who in (None, "carol", "dave"):
        listing = hubs.get(who, "/structures")
        assert ids(listing) == OPEN, who
        meta = listing.json()["meta"]
        assert meta["data_returned"] == meta["data_available"] == 3
        assert "ammonia" not in listing.text and "opt_hidden" not in listing.text
        # Not by filter, not by id, not by count, not as a reference.
        assert ids(hubs.get(who, "/structures", filter='elements HAS "N"')) == set()
        hidden = hubs.get(who, "/structures", filter='_matterhub_source_name="opt_hidden"')
        assert hidden.json()["meta"]["data_returned"] == 0
        assert hubs.get(who, "/structures/opt_hidden_1").status_code == 404
        assert ids(hubs.get(who, "/references")) == {"opt_open"}
        assert hubs.get(who, "/references/opt_hidden").status_code == 404
        included = listing.json()["included"]
        assert [(r["type"], r["id"]) for r in included] == [("references", "opt_open")]


def test_the_group_and_the_owner_see_the_private_structures(hubs: Hubs) -> None:
    for who in ("bob", "alice"):  # bob is in group lab, alice submitted
        assert ids(hubs.get(who, "/structures")) == {*OPEN, "opt_hidden_1"}
        ammonia = hubs.get(who, "/structures/opt_hidden_1").json()["data"]["attributes"]
        assert ammonia["chemical_formula_hill"] == "H3N"
        assert ammonia["species_at_sites"] == ["N", "H", "H", "H"]
        assert ids(hubs.get(who, "/references")) == {"opt_open", "opt_hidden"}
        one = hubs.get(who, "/structures/opt_hidden_1").json()
        assert [r["id"] for r in one["included"]] == ["opt_hidden"]
        cited = one["included"][0]["attributes"]
        assert cited["authors"] == [
            {"name": "Ada Lovelace", "firstname": "Ada", "lastname": "Lovelace"}
        ]
        assert cited["url"].startswith("http") and cited["year"].isdigit()
        assert "included" not in hubs.get(who, "/structures", include="").json()


def test_crystals_and_a_molecule_from_cif_poscar_and_xyz(hubs: Hubs) -> None:
    salt = hubs.get(None, "/structures", filter='chemical_formula_reduced="ClNa"').json()["data"]
    assert len(salt) == 1
    attributes = salt[0]["attributes"]
    assert attributes["nperiodic_dimensions"] == 3 and attributes["nsites"] == 2
    assert attributes["lattice_vectors"][0][0] == pytest.approx(5.64, abs=1e-4)
    assert sorted(attributes["species_at_sites"]) == ["Cl", "Na"]
    silicon = hubs.get(None, "/structures", filter='elements HAS ONLY "Si"').json()["data"]
    assert len(silicon) == 1
    attributes = silicon[0]["attributes"]
    assert attributes["lattice_vectors"] == [
        pytest.approx([0.0, 2.715, 2.715]),
        pytest.approx([2.715, 0.0, 2.715]),
        pytest.approx([2.715, 2.715, 0.0]),
    ]
    assert attributes["cartesian_site_positions"][1] == pytest.approx([1.3575] * 3)
    assert attributes["space_group_it_number"] == 227 and attributes["nsites"] == 2
    water = hubs.get(None, "/structures", filter='chemical_formula_anonymous="A2B"').json()
    water_id = water["data"][0]["id"]
    one = hubs.get(None, f"/structures/{water_id}", response_fields="nsites,species").json()
    assert set(one["data"]["attributes"]) == {"nsites", "species"}
    assert one["data"]["attributes"]["nsites"] == 3
    assert [s["name"] for s in one["data"]["attributes"]["species"]] == ["H", "O"]


def error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["errors"][0]["status"] == str(status) and body["meta"]["api_version"] == "1.2.0"
    return str(body["errors"][0]["detail"])


def test_errors_come_in_optimade_format(hubs: Hubs) -> None:
    assert "not valid OPTIMADE" in error(hubs.get(None, "/structures", filter="nsites="), 400)
    assert "unknown property" in error(hubs.get(None, "/structures", filter="nope=1"), 400)
    too_long = " OR ".join(f"nsites={i}" for i in range(500))
    assert "bytes long" in error(hubs.get(None, "/structures", filter=too_long), 400)
    assert "501" in hubs.get(None, "/structures", filter='species_at_sites HAS "H"').text
    assert "100" in error(hubs.get(None, "/structures", page_limit=5000), 403)
    assert "whole number" in error(hubs.get(None, "/structures", page_offset="x"), 400)
    assert "10000" in error(hubs.get(None, "/structures", page_offset=20000), 400)
    assert "cannot sort" in error(hubs.get(None, "/structures", sort="species"), 400)
    assert "json" in error(hubs.get(None, "/structures", response_format="xml"), 400)
    assert "references" in error(hubs.get(None, "/structures", include="calculations"), 400)
    assert error(hubs.get(None, "/structures/nothing_here"), 404)
    assert error(hubs.http.get("/optimade/v2/info"), 553)
    assert error(hubs.http.get("/optimade/v1/versions"), 404)
    versions = hubs.http.get("/optimade/versions")
    assert versions.text.splitlines() == ["version", "1"]
    assert versions.headers["content-type"].startswith("text/csv")


def test_pages_link_to_the_next(hubs: Hubs) -> None:
    first = hubs.get("alice", "/structures", page_limit=2, sort="-nsites").json()
    assert [e["attributes"]["nsites"] for e in first["data"]] == [4, 3]
    assert first["meta"]["more_data_available"] is True
    following = httpx.URL(first["links"]["next"])
    assert following.params["page_offset"] == "2" and following.params["sort"] == "-nsites"
    headers = {"Authorization": f"Bearer {hubs.hub.tokens['alice']}"}
    last = hubs.http.get(following.path, params=following.params, headers=headers).json()
    assert [e["attributes"]["nsites"] for e in last["data"]] == [2, 2]  # NaCl and Si
    assert last["meta"]["more_data_available"] is False and last["links"]["next"] is None
