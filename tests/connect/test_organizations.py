"""Organisation rules (required fields, forced curation, default ACL) and custom fields."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from matterhub.bootstrap import Services, build_services
from matterhub.core.errors import InvalidInput
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.core.organizations import Organization, apply_organizations
from matterhub.settings import Settings
from tests.connect.helpers import dc, search, submit, user

LAB = Organization(
    name="Crystal Lab", required_fields=["dc.descriptions"], curation=True, acl=["public"]
)


def test_rules_apply() -> None:
    base = {"dc": dc(), "data_sources": ["x"], "mdf": {"organizations": ["crystal lab"]}}
    with pytest.raises(InvalidInput) as caught:
        apply_organizations(base, [LAB])
    assert caught.value.field == "dc.descriptions"
    described = {**base, "dc": {**dc(), "descriptions": [{"description": "d"}]}}
    ruled = apply_organizations(described, [LAB])
    assert ruled["curation"] is True and ruled["mdf"]["acl"] == ["public"]
    with pytest.raises(InvalidInput, match="unknown organization"):
        apply_organizations({**base, "mdf": {"organizations": ["Nobody"]}}, [LAB])


@pytest.fixture
def org_hub(tmp_path: Path, data_root: Path) -> Iterator[Services]:
    orgs = tmp_path / "orgs.json"
    orgs.write_text(json.dumps([LAB.model_dump()]))
    settings = Settings(
        data_dir=tmp_path / "hub", connect_allowed_roots=[data_root], organizations_file=orgs
    )
    services = build_services(settings)
    services.start()
    yield services
    services.close()


def test_an_organisation_forces_curation(org_hub: Services, data_root: Path) -> None:
    ann = user(org_hub, "ann")
    with pytest.raises(InvalidInput) as caught:
        submit(
            org_hub,
            ann,
            dc=dc("Lab data missing text"),
            data_sources=[str(data_root / "set1")],
            mdf={"organizations": ["Crystal Lab"]},
        )
    assert caught.value.field == "dc.descriptions"
    described = {**dc("Lab data with text"), "descriptions": [{"description": "bcc iron"}]}
    sid = submit(
        org_hub,
        ann,
        dc=described,
        data_sources=[str(data_root / "set1")],
        mdf={"organizations": ["Crystal Lab"]},
    )
    assert org_hub.connect.wait(sid)["status"]["state"] == "curation"


def test_a_broken_organisations_file_names_the_setting(tmp_path: Path) -> None:
    bad = tmp_path / "orgs.json"
    bad.write_text("[{]")
    with pytest.raises(InvalidInput) as caught:
        build_services(Settings(data_dir=tmp_path / "hub", organizations_file=bad))
    assert caught.value.field == "organizations_file"


def test_custom_fields_carry_their_descriptions(hub: Services, data_root: Path) -> None:
    bo = user(hub, "bo")
    sid = submit(
        hub, bo, dc=dc("Custom described fields"), data_sources=[str(data_root / "set1")],
        custom={"temperature": "300 K"}, custom_desc={"temperature": "sample temperature"},
    )  # fmt: skip
    hub.connect.wait(sid)
    hit = search(hub, 'custom.temperature:"300 K"')
    assert hit.total == 3
    record = json.loads(hit.hits[0].source)
    assert record["custom"]["temperature_desc"] == "sample temperature"
    assert hub.datasets.get(SYSTEM_IDENTITY, sid).state == "published"
