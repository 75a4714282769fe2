"""Records of other repositories (DataCite kernel 4 with a DOI, Dublin Core) as external entries."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from matterhub.interop.harvest.records import Harvested, parse_record

# The shapes Zenodo's and DataCite's OAI-PMH servers send (trimmed to one record each).
DATACITE_RECORD = """
<record xmlns="http://www.openarchives.org/OAI/2.0/">
  <header><identifier>oai:zenodo.org:7654321</identifier><datestamp>2024-03-01T12:00:00Z</datestamp>
    <setSpec>user-materials</setSpec></header>
  <metadata>
    <resource xmlns="http://datacite.org/schema/kernel-4">
      <identifier identifierType="DOI">10.5281/zenodo.7654321</identifier>
      <creators>
        <creator><creatorName nameType="Personal">Lovelace, Ada</creatorName>
          <givenName>Ada</givenName><familyName>Lovelace</familyName>
          <affiliation>Analytical Engines Ltd</affiliation></creator>
        <creator><creatorName>Materials Lab</creatorName></creator>
      </creators>
      <titles><title xml:lang="en">Band gaps of 500 oxides</title></titles>
      <publisher>Zenodo</publisher>
      <publicationYear>2023</publicationYear>
      <subjects><subject>DFT</subject><subject>oxides</subject></subjects>
      <resourceType resourceTypeGeneral="Dataset"/>
      <version>2.1</version>
      <descriptions><description descriptionType="Abstract">PBE and HSE gaps.</description></descriptions>
    </resource>
  </metadata>
</record>
"""

DC_RECORD = """
<record xmlns="http://www.openarchives.org/OAI/2.0/">
  <header><identifier>oai:repo.example.org:abc</identifier><datestamp>2022-01-02</datestamp></header>
  <metadata>
    <oai_dc:dc xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"
               xmlns:dc="http://purl.org/dc/elements/1.1/">
      <dc:title>Phonons of silicon</dc:title>
      <dc:creator>Doe, Jane</dc:creator>
      <dc:date>2021-06-30</dc:date>
      <dc:identifier>https://repo.example.org/records/abc</dc:identifier>
      <dc:identifier>doi:10.1234/abc</dc:identifier>
      <dc:description>Phonon band structures.</dc:description>
    </oai_dc:dc>
  </metadata>
</record>
"""

DELETED = """
<record xmlns="http://www.openarchives.org/OAI/2.0/">
  <header status="deleted"><identifier>oai:zenodo.org:1</identifier>
    <datestamp>2024-01-01T00:00:00Z</datestamp></header>
</record>
"""


def parse(text: str, prefix: str = "oai_datacite") -> Harvested | None:
    return parse_record(
        ET.fromstring(text),
        repository="zen",
        endpoint="https://zenodo.org/oai2d",
        prefix=prefix,
        harvested_at="2026-12-07T00:00:00.000000Z",
    )


def test_datacite_with_a_doi() -> None:
    harvested = parse(DATACITE_RECORD)
    assert harvested is not None and harvested.entry is not None
    entry = harvested.entry
    assert entry is not None
    assert entry["subject"] == "external:zen:oai:zenodo.org:7654321"
    assert entry["visible_to"] == ["public"]
    content = entry["content"]
    assert content["mdf"]["source_name"] == "zen:7654321"
    assert content["mdf"]["resource_type"] == "dataset"
    assert content["dc"]["titles"] == [{"title": "Band gaps of 500 oxides"}]
    assert content["dc"]["creators"][0] == {
        "creatorName": "Lovelace, Ada",
        "givenName": "Ada",
        "familyName": "Lovelace",
        "affiliations": ["Analytical Engines Ltd"],
    }
    assert content["dc"]["publicationYear"] == 2023
    assert content["dc"]["identifier"] == {
        "identifier": "10.5281/zenodo.7654321",
        "identifierType": "DOI",
    }
    assert content["external"]["url"] == "https://doi.org/10.5281/zenodo.7654321"
    assert content["data"] == {"link": "https://doi.org/10.5281/zenodo.7654321"}
    assert content["dc"]["version"] == "2.1"


def test_dublin_core_with_a_doi_and_a_landing_page() -> None:
    harvested = parse(DC_RECORD, "oai_dc")
    assert harvested is not None and harvested.entry is not None
    content = harvested.entry["content"]
    assert content["dc"]["publicationYear"] == 2021
    assert content["external"]["doi"] == "10.1234/abc"
    assert content["external"]["landing"] == "https://repo.example.org/records/abc"
    assert content["external"]["url"] == "https://doi.org/10.1234/abc"
    assert content["external"]["datestamp"] == "2022-01-02"


def test_deleted_and_unreadable_records() -> None:
    deleted = parse(DELETED)
    assert deleted is not None and deleted.entry is None
    assert deleted.identifier == "oai:zenodo.org:1"
    untitled = DATACITE_RECORD.replace(
        '<titles><title xml:lang="en">Band gaps of 500 oxides</title></titles>', ""
    )
    assert parse(untitled) is None
    foreign = DC_RECORD.replace("oai_dc:dc", "mods:mods").replace(
        'xmlns:oai_dc="http://www.openarchives.org/OAI/2.0/oai_dc/"',
        'xmlns:mods="http://www.loc.gov/mods/v3"',
    )
    assert parse(foreign) is None


def test_only_web_links_and_short_identifiers() -> None:
    sneaky = DC_RECORD.replace(
        "https://repo.example.org/records/abc", "javascript:alert(1)"
    ).replace("doi:10.1234/abc", "urn:x")
    harvested = parse(sneaky, "oai_dc")
    assert harvested is not None and harvested.entry is not None
    assert "url" not in harvested.entry["content"]["external"]
    assert "data" not in harvested.entry["content"]
    long_id = DC_RECORD.replace("oai:repo.example.org:abc", "oai:repo.example.org:" + "x" * 400)
    assert parse(long_id, "oai_dc") is None
