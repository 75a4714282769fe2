"""Organisations: the hub serves its rules; Forge's describe_organization shows them."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from matterhub.client import Client, Forge
from matterhub.settings import Settings

MakeClient = Callable[..., Client]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    rules = [
        {"name": "NIST", "required_fields": ["dc.descriptions"], "curation": True},
        {"name": "CHiMaD", "acl": ["public"]},
    ]
    path = tmp_path / "organizations.json"
    path.write_text(json.dumps(rules))
    return Settings(data_dir=tmp_path / "hub", organizations_file=path)


def test_the_rules_are_served_and_described(hub_client: MakeClient) -> None:
    client = hub_client()
    served = client._request("GET", "/connect/organizations").json()["organizations"]
    assert [o["name"] for o in served] == ["NIST", "CHiMaD"]
    assert served[0]["required_fields"] == ["dc.descriptions"] and served[0]["curation"] is True

    forge = Forge(client=client)
    listed = forge.describe_organization("list", raw=True)
    assert listed is not None and listed["organization"] == ["CHiMaD", "NIST"]  # no records yet
    nist = forge.describe_organization("nist", raw=True)
    assert nist is not None and nist["success"]
    org = nist["organization"]
    assert org["canonical_name"] == "NIST" and org["record_count"] == 0
    assert org["curation"] is True and org["required_fields"] == ["dc.descriptions"]
