"""Forge's describing methods (describe_field, describe_organization) and globus_download."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from matterhub.bootstrap import Services
from matterhub.client import Client, Forge
from tests.search.conftest import ingest, make_records

MakeClient = Callable[..., Client]


@pytest.fixture
def org_hub(services: Services) -> None:
    """Records of two organisations (one with a dataset entry) and some without one."""
    records = make_records(12, seed=11, source="orgs")
    for i, entry in enumerate(records):
        if i < 8:
            entry["content"]["mdf"]["organizations"] = ["NIST"] if i < 5 else ["CHiMaD", "NIST"]
    dataset = copy.deepcopy(records[0])
    dataset["subject"] = "orgs.dataset"
    dataset["content"]["mdf"].update(resource_type="dataset", source_name="orgs_set")
    ingest(services, [*records, dataset])


def test_describe_field_reads_the_hub_schema_and_index_types(
    hub_client: MakeClient, records_hub: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    forge = Forge(client=hub_client())
    whole = forge.describe_field("record", raw=True)
    assert whole is not None and whole["success"] and whole["status_code"] == 200
    assert "mdf" in whole["schema"]["properties"]
    one = forge.describe_field("record", "mdf.resource_type", raw=True)
    assert one is not None and one["schema"] == {"enum": ["dataset", "record"]}
    nested = forge.describe_field("record", "material", raw=True)
    assert nested is not None and "elements" in nested["schema"]["properties"]
    assert nested["field_types"]["material.elements"] == "string"
    assert all(k.startswith("material.") for k in nested["field_types"])
    missing = forge.describe_field("record", "mdf.nothere", raw=True)
    assert missing is not None and missing["success"] is False
    assert "nothere" in missing["error"] and "'record'" in missing["error"]
    bad_type = forge.describe_field("sample", raw=True)
    assert bad_type is not None and bad_type["status_code"] == 404
    assert bad_type["error"].startswith("Error 404:") and "record" in bad_type["error"]
    assert forge.describe_field("dataset", "dc") is None
    printed = capsys.readouterr().out
    assert "- titles (array of object, required)" in printed and "- creators" in printed


def test_describe_organization_from_the_index(
    hub_client: MakeClient, org_hub: None, capsys: pytest.CaptureFixture[str]
) -> None:
    forge = Forge(client=hub_client())
    listed = forge.describe_organization("list", raw=True)
    assert listed is not None and listed["organization"] == ["CHiMaD", "NIST"]
    nist = forge.describe_organization("nist", raw=True)
    assert nist is not None and nist["success"] and nist["status_code"] == 200
    org = nist["organization"]
    assert org["canonical_name"] == "NIST" and org["record_count"] == 8
    assert org["dataset_count"] == 1 and "orgs_set" in org["source_names"]
    every = forge.describe_organization("all", raw=True)
    assert every is not None
    assert [(o["canonical_name"], o["record_count"]) for o in every["organization"]] == [
        ("CHiMaD", 3),
        ("NIST", 8),
    ]
    unknown = forge.describe_organization("Nowhere U", raw=True)
    assert unknown is not None and unknown["success"] is False and unknown["status_code"] == 404
    assert "Nowhere U" in unknown["error"]
    assert forge.describe_organization("CHiMaD", summary=True) is None
    printed = capsys.readouterr().out
    assert "CHiMaD" in printed and "- records: 3" in printed and "source_names" not in printed


def test_globus_download_points_at_download(
    hub_client: MakeClient, capsys: pytest.CaptureFixture[str]
) -> None:
    forge = Forge(client=hub_client())
    answer = forge.globus_download([{"mdf": {}}], dest=".", dest_ep="abc", interval=5)
    assert answer["success"] is False
    assert "Globus" in answer["message"] and "download(" in answer["message"]
    assert "download(" in capsys.readouterr().out
    assert forge.globus_download([], verbose=False)["success"] is False
    assert capsys.readouterr().out == ""
