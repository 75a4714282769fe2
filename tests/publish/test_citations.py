"""Citations from `dc`: every format, and DataCite XML valid against DataCite's own XSD."""

from __future__ import annotations

import importlib.resources
import json

import pytest
from lxml import etree

from matterhub.core.citations import FORMATS, CitedVersion, cite
from matterhub.core.datasets import (
    check_transition,
    format_source_id,
    next_version,
    parse_source_id,
)
from matterhub.core.errors import Conflict, InvalidInput
from tests.publish.conftest import DC

XSD = importlib.resources.files("validator") / "schema" / "metadata.xsd"
SCHEMA = etree.XMLSchema(etree.parse(str(XSD)))

DOI = CitedVersion(
    dc=DC,
    source_id="radium_v1.2",
    version="1.2",
    url="http://hub.test/pid/10.5072/abcd",
    pid="10.5072/abcd",
    pid_is_doi=True,
)
LOCAL = CitedVersion(
    dc=DC,
    source_id="radium_v1.0",
    version="1.0",
    url="http://hub.test/pid/mh/abcd-efgh",
    pid="mh/abcd-efgh",
)


@pytest.mark.parametrize("version", [DOI, LOCAL], ids=["doi", "local"])
def test_datacite_xml_validates_against_kernel_4(version: CitedVersion) -> None:
    _media, text = cite(version, "datacite-xml")
    doc = etree.fromstring(text.encode())
    assert SCHEMA.validate(doc), SCHEMA.error_log
    ns = {"d": "http://datacite.org/schema/kernel-4"}
    assert doc.findtext("d:titles/d:title", namespaces=ns) == DC["titles"][0]["title"]
    assert doc.findtext("d:version", namespaces=ns) == version.version


def test_invalid_xml_is_caught_by_the_schema() -> None:
    _media, text = cite(DOI, "datacite-xml")
    broken = etree.fromstring(
        text.replace("<publicationYear>2024", "<publicationYear>20x").encode()
    )
    assert not SCHEMA.validate(broken)


def test_bibtex_ris_json_and_jsonld() -> None:
    bib = cite(DOI, "bibtex")[1]
    assert bib.startswith("@misc{radium_v1.2,") and "doi = {10.5072/abcd}" in bib
    assert "author = {Curie, Marie}" in bib and "year = {2024}" in bib
    ris = cite(DOI, "ris")[1]
    assert ris.splitlines()[0] == "TY  - DATA" and "DO  - 10.5072/abcd" in ris
    assert ris.rstrip().endswith("ER  -")
    body = json.loads(cite(DOI, "datacite-json")[1])
    assert body["data"]["id"] == "10.5072/abcd"
    assert body["data"]["attributes"]["rightsList"][0]["rights"] == "CC-BY 4.0"
    ld = json.loads(cite(LOCAL, "schema.org")[1])
    assert ld["@type"] == "Dataset" and ld["identifier"] == "mh/abcd-efgh"
    assert ld["creator"][0]["familyName"] == "Curie"
    assert set(FORMATS) == {"bibtex", "ris", "datacite-json", "datacite-xml", "schema.org"}
    with pytest.raises(InvalidInput):
        cite(DOI, "endnote")


def test_source_id_rules() -> None:
    assert format_source_id("radium", 2, 1) == "radium_v2.1"
    assert parse_source_id("my_data_v1_v3.14") == ("my_data_v1", 3, 14)
    assert next_version(None, new_data=True) == (1, 0)
    assert next_version((1, 3), new_data=True) == (2, 0)
    assert next_version((1, 3), new_data=False) == (1, 4)
    with pytest.raises(InvalidInput):
        parse_source_id("radium")
    check_transition("draft", "published")
    with pytest.raises(Conflict):
        check_transition("published", "draft")
