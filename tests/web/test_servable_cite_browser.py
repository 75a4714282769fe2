"""A servable's identifier and "Cite" section in a real browser (the demo's live servable).

The demo's Δ-model went live through the build worker, so it has a hub identifier; it was
trained on the demo's published dcdft dataset, whose identifier it cites as `IsDerivedFrom`.
"""

from __future__ import annotations

import importlib.resources
import re
from typing import Any

import httpx
import pytest
from lxml import etree

from tests.web.conftest import Hub, shot

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REF = "alice/bulk_modulus_delta"
XSD = importlib.resources.files("validator") / "schema" / "metadata.xsd"


def test_the_servable_page_shows_its_identifier_and_cite_links(new_page: Any, hub: Hub) -> None:
    described = httpx.get(f"{hub.base}/api/servables/{REF}").json()
    version = described["latest_version"]
    pid = described["document"]["dlhub"]["identifier"]
    assert re.fullmatch(r"mh/[0-9a-z]{4}-[0-9a-z]{4}", pid), pid
    dataset_pid = httpx.get(f"{hub.base}/api/datasets/dcdft_v1.0").json()["pid"]

    page = new_page()
    page.goto(f"/servables/{REF}")
    identifier = page.locator("#identifier a")
    assert identifier.inner_text() == pid
    assert identifier.get_attribute("href") == f"{hub.base}/pid/{pid}"
    cite = page.locator("section.cite")
    assert "IsDerivedFrom" in cite.inner_text() and dataset_pid in cite.inner_text()
    assert f"url = {{{hub.base}/pid/{pid}}}" in page.locator("#cite-bibtex").inner_text()
    links = page.locator("#cite-formats a")
    labels = [links.nth(i).inner_text() for i in range(links.count())]
    assert labels == ["BibTeX", "RIS", "DataCite JSON", "DataCite XML", "schema.org JSON-LD"]
    row = page.locator("table.versions tr.current td.identifier a")
    assert row.inner_text() == pid
    assert row.get_attribute("href") == f"/servables/{REF}/versions/{version}"
    shot(page, "servable-cite")

    # Each link is the API's citation of this version; the XML validates.
    xml_href = page.get_by_role("link", name="DataCite XML", exact=True).get_attribute("href")
    assert xml_href == f"/api/servables/{REF}/versions/{version}/cite?format=datacite-xml"
    xml = httpx.get(f"{hub.base}{xml_href}")
    assert xml.status_code == 200
    schema = etree.XMLSchema(etree.parse(str(XSD)))
    assert schema.validate(etree.fromstring(xml.content)), schema.error_log

    # Following the identifier lands on the version's page, cite section and all.
    identifier.click()
    page.wait_for_url(re.compile(rf"/pid/{re.escape(pid)}$"))
    assert page.get_by_role("heading", level=1).inner_text().startswith("Δ-model")
    assert page.locator("#identifier a").inner_text() == pid
    copy = page.get_by_role("button", name="Copy BibTeX")
    assert copy.count() == 1
