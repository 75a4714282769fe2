"""The access-model findings of issue #14, one test each, over a real embedded hub.

Each of these failed on 907bfcc: role groups anyone could create, counts, field names and tasks
of hidden entries, ACLs that published what they meant to hide, and private records their own
submitter could not find.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from matterhub.bootstrap import Services, build_services
from matterhub.catalog.models import Dataset, DatasetVersion, Group, GroupMember, User
from matterhub.catalog.repositories import sql_clause
from matterhub.core.connect import SubmissionRequest
from matterhub.core.errors import InvalidInput, NotFound, PermissionDenied
from matterhub.core.identity import ANONYMOUS, PUBLIC, SYSTEM_IDENTITY, Identity
from matterhub.core.policy import version_policy
from matterhub.core.search import GSearchRequest
from matterhub.settings import Settings
from tests.connect.helpers import CIF, dc, submit, user

MARKER = "zq_private_marker_field"


@pytest.fixture
def data_root(tmp_path: Path) -> Path:
    root = tmp_path / "incoming"
    (root / "set1").mkdir(parents=True)
    (root / "set1" / "Fe.cif").write_text(CIF)
    (root / "set1" / "notes.txt").write_text("measured on a Tuesday\n")
    return root


@pytest.fixture
def hub(tmp_path: Path, data_root: Path) -> Iterator[Services]:
    services = build_services(
        Settings(data_dir=tmp_path / "hub", connect_allowed_roots=[data_root])
    )
    services.start()
    yield services
    services.close()


def records_seen(hub: Services, who: Identity, source_id: str) -> int:
    request = GSearchRequest(q=f'mdf.source_id:"{source_id}"', advanced=True, limit=100)
    return hub.search.search(who, "mdf", request).total


def file_readable(hub: Services, who: Identity, source_id: str) -> bool:
    try:
        hub.datasets.open_file(who, source_id, "notes.txt")
    except NotFound:
        return False
    return True


# role groups ------------------------------------------------------------------------------------


def test_role_groups_exist_from_the_start_and_are_reserved(hub: Services) -> None:
    names = {g.name for g in hub.accounts.list_groups(SYSTEM_IDENTITY)}
    assert {"curators", "admins"} <= names
    mallory = user(hub, "mallory")
    for name in ("curators", "Curators", "admins"):
        with pytest.raises(PermissionDenied, match="reserved"):
            hub.accounts.create_group(mallory, name)
    with pytest.raises(PermissionDenied):
        hub.accounts.add_member(mallory, "curators", "mallory")
    assert not hub.datasets.is_curator(mallory)
    # Administering the role group is an administrator's act.
    hub.accounts.add_member(SYSTEM_IDENTITY, "curators", "mallory")
    cura = hub.accounts.identity_for("mallory")
    assert hub.datasets.is_curator(cura)
    with pytest.raises(PermissionDenied):  # a curator does not administer the group
        hub.accounts.add_member(cura, "curators", "mallory", role="manager")


def test_a_squatted_curators_group_is_taken_back(tmp_path: Path) -> None:
    """A catalog made before role groups were reserved: its user-made `curators` is demoted."""
    settings = Settings(data_dir=tmp_path / "hub")
    services = build_services(settings)
    with services.catalog.transaction() as session:
        group = session.scalar(select(Group).where(Group.name == "curators"))
        assert group is not None
        squatter = User(username="squatter")
        session.add(squatter)
        session.flush()
        session.add(GroupMember(group_id=group.id, user_id=squatter.id, role="manager"))
    services.close()
    again = build_services(settings)  # every start re-checks the role groups
    try:
        with again.catalog.transaction() as session:
            roles = session.scalars(
                select(GroupMember.role)
                .join(User, User.id == GroupMember.user_id)
                .where(User.username == "squatter")
            ).all()
        assert roles == ["member"]
        with pytest.raises(PermissionDenied):
            again.accounts.add_member(again.accounts.identity_for("squatter"), "curators", "x")
    finally:
        again.close()


def test_admins_group_follows_the_admin_flag(hub: Services) -> None:
    hub.accounts.create_user(SYSTEM_IDENTITY, "root", is_admin=True)
    admins = next(g for g in hub.accounts.list_groups(SYSTEM_IDENTITY) if g.name == "admins")
    assert "root" in admins.members
    hub.accounts.create_user(SYSTEM_IDENTITY, "pat")
    hub.accounts.add_member(SYSTEM_IDENTITY, "admins", "pat")
    assert hub.accounts.identity_for("pat").is_admin


def test_users_list_only_their_own_groups(hub: Services) -> None:
    ada = user(hub, "ada")
    user(hub, "bob")
    hub.accounts.create_group(ada, "ada-lab")
    bob = hub.accounts.identity_for("bob")
    assert [g.name for g in hub.accounts.list_groups(bob)] == []
    with pytest.raises(NotFound):
        hub.accounts.get_group(bob, "ada-lab")
    ada = hub.accounts.identity_for("ada")
    assert [g.name for g in hub.accounts.list_groups(ada)] == ["ada-lab"]


# ACLs at submission -----------------------------------------------------------------------------


def test_dataset_acl_alone_hides_version_records_and_files(hub: Services, data_root: Path) -> None:
    ada = user(hub, "ada")
    sid = submit(
        hub, ada, dc=dc(), data_sources=[str(data_root / "set1")], dataset_acl=["user:ada"]
    )
    assert hub.connect.wait(sid)["status"]["state"] == "succeeded"
    assert records_seen(hub, ANONYMOUS, sid) == 0
    assert not file_readable(hub, ANONYMOUS, sid)
    with pytest.raises(NotFound):
        hub.datasets.get(ANONYMOUS, sid)
    assert hub.datasets.list_datasets(ANONYMOUS) == []
    assert records_seen(hub, ada, sid) >= 2  # the dataset entry and her records
    assert file_readable(hub, ada, sid)


def test_empty_acl_is_owner_only(hub: Services, data_root: Path) -> None:
    ada = user(hub, "ada")
    bob = user(hub, "bob")
    sid = submit(hub, ada, dc=dc(), data_sources=[str(data_root / "set1")], mdf={"acl": []})
    assert hub.connect.wait(sid)["status"]["state"] == "succeeded"
    for outsider in (ANONYMOUS, bob):
        assert records_seen(hub, outsider, sid) == 0
        assert not file_readable(hub, outsider, sid)
    assert records_seen(hub, ada, sid) >= 2
    assert hub.datasets.get(ada, sid).document["mdf"]["acl"] != [PUBLIC]


def test_documented_acl_form_resolves_at_submission(hub: Services, data_root: Path) -> None:
    ada = user(hub, "ada")
    alice = user(hub, "alice")
    bob = user(hub, "bob")
    sid = submit(
        hub, ada, dc=dc(), data_sources=[str(data_root / "set1")], mdf={"acl": ["user:alice"]}
    )
    status = hub.connect.wait(sid)
    assert status["status"]["state"] == "succeeded", status
    assert records_seen(hub, alice, sid) >= 2
    assert file_readable(hub, alice, sid)
    assert records_seen(hub, bob, sid) == 0 and not file_readable(hub, bob, sid)
    # The submitter finds her own private records.
    assert records_seen(hub, ada, sid) >= 2


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"mdf": {"acl": ["alice"]}}, "mdf.acl[0]"),
        ({"mdf": {"acl": ["public", "user:nobody"]}}, "mdf.acl[1]"),
        ({"mdf": {"acl": ["group:no-such-lab"]}}, "mdf.acl[0]"),
        ({"mdf": {"acl": ["urn:matterhub:user:not-an-account"]}}, "mdf.acl[0]"),
        ({"mdf": {"acl": {"user": "alice"}}}, "mdf.acl"),
        ({"dataset_acl": ["user:nobody"]}, "dataset_acl[0]"),
    ],
)
def test_malformed_acl_is_refused_before_anything_is_stored(
    hub: Services, data_root: Path, fields: dict[str, Any], field: str
) -> None:
    ada = user(hub, "ada")
    request = SubmissionRequest.model_validate(
        {"dc": dc(), "data_sources": [str(data_root / "set1")], **fields}
    )
    with pytest.raises(InvalidInput) as refused:
        hub.connect.submit(ada, request)
    assert refused.value.field == field
    assert hub.datasets.list_datasets(SYSTEM_IDENTITY) == []
    assert hub.connect.submissions(SYSTEM_IDENTITY) == []


def test_submitter_outside_her_acl_group_still_sees_her_records(
    hub: Services, data_root: Path
) -> None:
    ada = user(hub, "ada")
    hub.accounts.create_group(SYSTEM_IDENTITY, "lab")
    sid = submit(
        hub, ada, dc=dc(), data_sources=[str(data_root / "set1")], mdf={"acl": ["group:lab"]}
    )
    assert hub.connect.wait(sid)["status"]["state"] == "succeeded"
    assert records_seen(hub, ada, sid) >= 2
    assert records_seen(hub, ANONYMOUS, sid) == 0


def test_an_update_without_an_acl_stays_private(hub: Services, data_root: Path) -> None:
    ada = user(hub, "ada")
    sid = submit(
        hub, ada, dc=dc(), data_sources=[str(data_root / "set1")], mdf={"acl": ["user:ada"]}
    )
    assert hub.connect.wait(sid)["status"]["state"] == "succeeded"
    newer = submit(hub, ada, dc=dc(), data_sources=[str(data_root / "set1")], update=True)
    assert hub.connect.wait(newer)["status"]["state"] == "succeeded"
    assert records_seen(hub, ANONYMOUS, newer) == 0 and not file_readable(hub, ANONYMOUS, newer)
    answer = hub.connect.update_metadata(
        ada,
        newer,
        SubmissionRequest.model_validate({"dc": dc("Renamed"), "update_metadata_only": True}),
    )
    latest = answer["source_id"]
    assert hub.connect.wait(latest)["status"]["state"] == "succeeded"
    assert records_seen(hub, ANONYMOUS, latest) == 0
    assert not file_readable(hub, ANONYMOUS, latest)
    assert records_seen(hub, ada, latest) >= 2


# one policy: the object check and the SQL clause agree -----------------------------------------

STATES = ["draft", "curation", "rejected", "published", "withdrawn"]
USERS = ["u1", "u2", "u3"]
GROUPS = ["g1", "g2"]
principal = st.sampled_from(
    [
        PUBLIC,
        *(f"urn:matterhub:user:{u}" for u in USERS),
        *(f"urn:matterhub:group:{g}" for g in GROUPS),
    ]
)
identity = st.builds(
    Identity,
    user_id=st.sampled_from(USERS) | st.none(),
    group_ids=st.frozensets(st.sampled_from(GROUPS)),
    is_admin=st.booleans(),
)
version = st.fixed_dictionaries(
    {
        "owner": st.sampled_from(USERS),
        "state": st.sampled_from(STATES),
        "visible_to": st.lists(principal, max_size=3),
        "shared_with": st.lists(principal, max_size=2),
    }
)


@pytest.fixture(scope="module")
def catalog_with_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    services = build_services(Settings(data_dir=tmp_path_factory.mktemp("policy") / "hub"))
    with services.catalog.transaction() as session:
        for uid in USERS:
            session.add(User(id=uid, username=uid))
    yield services
    services.close()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(who=identity, versions=st.lists(version, min_size=1, max_size=6))
def test_version_policy_object_check_equals_sql_clause(
    catalog_with_users: Services, who: Identity, versions: list[dict[str, Any]]
) -> None:
    rules = version_policy(["urn:matterhub:group:g2"])
    columns = SimpleNamespace(
        owner_id=Dataset.owner_id,
        shared_with=DatasetVersion.shared_with,
        visible_to=DatasetVersion.visible_to,
        state=DatasetVersion.state,
    )
    catalog = catalog_with_users.catalog
    with catalog.transaction() as session:
        expected = set()
        ids = []
        for i, v in enumerate(versions):
            ds = Dataset(source_name=f"p{i}_{id(versions)}", owner_id=v["owner"])
            session.add(ds)
            session.flush()
            row = DatasetVersion(
                dataset_id=ds.id,
                source_id=f"p{i}_{id(versions)}_v1.0",
                major=1,
                minor=0,
                state=v["state"],
                visible_to=v["visible_to"],
                shared_with=v["shared_with"],
                document={},
            )
            session.add(row)
            session.flush()
            ids.append(row.id)
            view = SimpleNamespace(
                owner_id=v["owner"], **{k: v[k] for k in ("state", "visible_to", "shared_with")}
            )
            if rules.allows(who, view):
                expected.add(row.id)
        got = set(
            session.scalars(
                select(DatasetVersion.id)
                .join(Dataset, Dataset.id == DatasetVersion.dataset_id)
                .where(DatasetVersion.id.in_(ids), sql_clause(rules.condition(who), columns))
            )
        )
        assert got == expected
        session.rollback()
