"""Names people choose are NFKC-normalised and refused with control or format characters.

Issue #14: `admin\\n` was stored beside `admin` and `curators\\n` beside `curators`, so a name that
prints like another one could be registered. Every identifier matched by name (users, groups,
index names, servable names, dataset source names) now refuses them with a 422 naming the field
and the reason, and uniqueness is judged on the normalised form.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import insert

from matterhub.api import create_app
from matterhub.bootstrap import Services, build_services
from matterhub.catalog.models import User
from matterhub.client.describe import describe_function
from matterhub.core.accounts import check_name, normalise_name
from matterhub.core.datasets import check_source_name
from matterhub.core.errors import Conflict, InvalidInput
from matterhub.core.identity import SYSTEM_IDENTITY
from matterhub.core.servables import check_document
from matterhub.settings import Settings

# (name, what the 422 must say)
REFUSED = [
    ("admin\n", "control character U+000A"),
    ("\nadmin", "control character U+000A"),
    ("cura\ttors", "control character U+0009"),
    ("admin\x00", "control character U+0000"),
    ("ad\x7fmin", "control character U+007F"),
    ("ad\u200bmin", "format character U+200B"),  # zero-width space
    ("admin\u200e", "format character U+200E"),  # left-to-right mark
    ("\u202eadmin", "format character U+202E"),  # right-to-left override
    ("adm\ufeffin", "format character U+FEFF"),  # byte-order mark
    (" admin", "surrounding whitespace"),
    ("admin\u3000", "surrounding whitespace"),  # ideographic space
]


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    services.accounts._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield services
    services.close()


@pytest.fixture
async def admin_client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    services.accounts.create_user(SYSTEM_IDENTITY, "admin", is_admin=True)
    token = services.accounts.create_token(SYSTEM_IDENTITY, "admin").token
    app = create_app(services.settings, services=services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url="http://hub.test",
        headers={"Authorization": f"Bearer {token}"},
    ) as client:
        yield client


@pytest.mark.parametrize(("name", "reason"), REFUSED)
def test_check_name_refuses_control_format_and_surrounding_space(name: str, reason: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_name(name, field="username")
    assert info.value.field == "username"
    assert reason in info.value.detail


def test_names_are_nfkc_normalised() -> None:
    assert check_name("ａｄｍｉｎ", field="username") == "admin"  # fullwidth
    assert check_name("ﬁle", field="name") == "file"  # the fi ligature
    assert normalise_name("Å", field="name") == "Å"  # angstrom sign → letter A with ring


@pytest.mark.anyio
@pytest.mark.parametrize(("name", "reason"), REFUSED)
async def test_api_refuses_such_usernames_with_422_naming_the_field(
    admin_client: httpx.AsyncClient, services: Services, name: str, reason: str
) -> None:
    response = await admin_client.post("/api/users", json={"username": name})
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["field"] == "username"
    assert reason in body["detail"]
    assert [u.username for u in services.accounts.list_users(SYSTEM_IDENTITY)] == ["admin"]


@pytest.mark.anyio
@pytest.mark.parametrize("name", ["curators\n", "curators\u200b", "\u202ecurators"])
async def test_api_refuses_such_group_names_with_422_naming_the_field(
    admin_client: httpx.AsyncClient, services: Services, name: str
) -> None:
    response = await admin_client.post("/api/groups", json={"name": name})
    assert response.status_code == 422, response.text
    assert response.json()["field"] == "name"
    assert all(g.name.isprintable() for g in services.accounts.list_groups(SYSTEM_IDENTITY))


@pytest.mark.anyio
async def test_a_fullwidth_name_collides_with_its_plain_form(
    admin_client: httpx.AsyncClient, services: Services
) -> None:
    response = await admin_client.post("/api/users", json={"username": "ａｄｍｉｎ"})
    assert response.status_code == 409, response.text
    assert response.json()["field"] == "username"
    response = await admin_client.post("/api/users", json={"username": "ａｌｉｃｅ"})
    assert response.status_code == 201, response.text
    assert response.json()["username"] == "alice"
    response = await admin_client.post("/api/groups", json={"name": "ｌａｂ"})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "lab"
    with pytest.raises(Conflict):
        services.accounts.create_group(SYSTEM_IDENTITY, "lab")


def test_names_stored_before_the_rule_stay_readable(services: Services) -> None:
    # A catalog written by an older version may hold such a name; it still lists and resolves.
    with services.catalog.transaction() as session:
        session.execute(insert(User).values(id="legacy-1", username="old\nname", is_admin=False))
    names = [u.username for u in services.accounts.list_users(SYSTEM_IDENTITY)]
    assert names == ["old\nname"]
    assert services.accounts.get_user(SYSTEM_IDENTITY, "old\nname").id == "legacy-1"


@pytest.mark.parametrize("name", ["ok-name\n", "ok\u200bname", "ok\x00"])
def test_dataset_source_names_refuse_control_and_format_characters(name: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_source_name(name)
    assert info.value.field == "source_name"


def _square(x: int) -> int:
    return x * x


@pytest.mark.parametrize("name", ["square\n", "squ\u200bare", "square\x00"])
def test_servable_names_refuse_control_and_format_characters(name: str) -> None:
    description = describe_function(_square, "square")
    description.set_title("Square").set_creators(["Curie, Marie"])
    document = description.document
    check_document(document)  # the plain name passes
    document["dlhub"]["name"] = name
    with pytest.raises(InvalidInput) as info:
        check_document(document)
    assert info.value.field == "dlhub.name"
