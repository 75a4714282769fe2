"""The web UI in a real browser (Chromium via Playwright) against a real `matterhub serve`."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.web.conftest import Hub, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


def total(page: Any) -> int:
    """The result count the search page announces."""
    text = page.locator("#results-h").inner_text()
    return int(text.split()[0].replace(",", ""))


def test_search_facets_and_periodic_table(new_page: Any, hub: Hub) -> None:
    page = new_page()
    page.goto("/")
    shot(page, "home")
    page.get_by_label("Search datasets and records").fill("Lejaeghere")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/search\?q=Lejaeghere"))
    assert page.locator("ol.hits .hit").count() == 1
    assert "Delta test" in page.locator("ol.hits").inner_text()

    page.goto("/search")
    everything = total(page)
    assert everything > 300  # 71 crystals × 2 record groups + 162 molecules + 2 datasets
    shot(page, "search")

    # The periodic table: Fe is a link with its count; clicking it filters and updates the URL.
    iron = page.locator('.ptable a[data-element="Fe"]')
    assert iron.get_attribute("aria-label") == "Fe: 1 result"
    iron.click()
    page.wait_for_url(re.compile(r"[?&]el=Fe"))
    assert total(page) == 1
    assert "Fe" in page.locator("ol.hits").inner_text()
    assert page.locator('.ptable a[data-element="Fe"]').get_attribute("aria-current") == "true"

    # Drill down by facet: hydrogen, then only records from the g2 molecules.
    page.goto("/search")
    page.locator('.ptable a[data-element="H"]').click()
    page.wait_for_url(re.compile(r"el=H"))
    with_h = total(page)
    page.locator('[data-facet="source"] a', has_text="g2").click()
    page.wait_for_url(re.compile(r"source=g2"))
    in_g2 = total(page)
    assert 0 < in_g2 <= with_h
    page.locator('.ptable a[data-element="C"]').click()
    page.wait_for_url(re.compile(r"el=H.*el=C|el=C.*el=H"))
    both = total(page)
    assert 0 < both < in_g2
    hits = page.locator("ol.hits").inner_text()
    assert "g2" in hits and "dcdft" not in hits
    shot(page, "search-drilldown")

    # Undo a choice from the "Chosen" list; the back button goes back a step too.
    page.get_by_role("link", name="Remove el C").click()
    page.wait_for_url(lambda url: "el=C" not in url)
    assert total(page) == in_g2
    page.go_back()
    assert total(page) == both

    # Forge code names the same filters; the export has the same results.
    forge = page.locator("#forge-code").text_content() or ""
    assert "match_elements(['H', 'C'])" in forge and "match_source_names(['g2'])" in forge
    href = page.get_by_role("link", name="Download these results (JSON)").get_attribute("href")
    exported = httpx.get(f"{hub.base}{href}").json()
    assert len(exported) == both
    assert all(set(e["content"]["material"]["elements"]) >= {"H", "C"} for e in exported)

    # A query the advanced syntax cannot read is explained, not a crash.
    page.goto("/search?q=material.elements:(Fe&advanced=1")
    assert page.get_by_role("alert").is_visible()


def test_dataset_page_record_page_and_anonymous_download(
    new_page: Any, hub: Hub, tmp_path: Path
) -> None:
    page = new_page()
    page.goto("/datasets")
    page.get_by_role("link", name=re.compile("Delta test")).click()
    page.wait_for_url(re.compile(r"/datasets/dcdft_v1\.0$"))
    assert page.get_by_role("heading", level=1).inner_text().startswith("Delta test")
    assert "Lejaeghere, Kurt" in page.locator(".creators").inner_text()
    assert "everyone" in page.locator("dl.facts").inner_text()
    assert "@misc{dcdft_v1.0" in page.locator("#cite-bibtex").inner_text()
    page.get_by_text("RIS", exact=True).click()
    assert "TY  - DATA" in page.locator("#cite-ris").inner_text()
    shot(page, "dataset")

    # Anonymous download of a public file: the bytes are the published ones.
    page.locator("details.folder summary", has_text="structures/").click()
    with page.expect_download() as info:
        page.get_by_role("link", name="Download structures/Fe.cif").click()
    saved = tmp_path / "Fe.cif"
    info.value.save_as(saved)
    manifest = httpx.get(f"{hub.base}/api/datasets/dcdft_v1.0/files").json()
    expected = next(f["sha512"] for f in manifest if f["path"] == "structures/Fe.cif")
    assert hashlib.sha512(saved.read_bytes()).hexdigest() == expected

    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile("Download all")).click()
    archive = tmp_path / "all.zip"
    info.value.save_as(archive)
    assert archive.read_bytes()[:2] == b"PK" and info.value.suggested_filename == "dcdft_v1.0.zip"

    # The identifier resolves to the same page.
    pid_url = page.locator("dl.facts a").first.get_attribute("href")
    page.goto(pid_url)
    assert page.get_by_role("heading", level=1).inner_text().startswith("Delta test")

    # A record with a crystal structure: lattice, sites read from its CIF, a drawing.
    page.goto("/search?q=material.reduced_formula:Si+AND+mdf.source_name:dcdft&advanced=1")
    page.locator("ol.hits a.title").first.click()
    page.wait_for_url(re.compile(r"/records/dcdft_v1\.0\.\d+"))
    assert "Fd-3m" in page.locator("table.lattice").inner_text()
    assert page.locator("table.sites tbody tr").count() == 8
    assert page.locator("svg circle").count() == 8
    picture = page.locator("img.render")  # the PNG extraction rendered, linked from the record
    assert picture.evaluate("img => img.complete && img.naturalWidth > 0")
    assert "crystal_structure.space_group_number" in page.locator("table.fields").inner_text()
    shot(page, "record")


def test_private_dataset_is_invisible_when_signed_out(new_page: Any, hub: Hub) -> None:
    alice = {"Authorization": f"Bearer {hub.tokens['alice']}"}
    with httpx.Client(base_url=hub.base, headers=alice, timeout=30) as api:
        dc = {
            "titles": [{"title": "Secret alloy notebook"}],
            "creators": [{"creatorName": "Alice"}],
        }
        created = api.post("/api/datasets", json={"dc": dc, "visible_to": ["user:alice"]})
        assert created.status_code == 201, created.text
        sid = created.json()["source_id"]
        assert (
            api.put(f"/api/datasets/{sid}/files/notes.txt", content=b"private").status_code == 201
        )
        assert api.post(f"/api/datasets/{sid}/publish").status_code == 200

    page = new_page()
    page.goto("/datasets")
    assert "Secret alloy notebook" not in page.content()
    response = page.goto(f"/datasets/{sid}")
    assert response is not None and response.status == 404
    assert "Secret alloy" not in page.content()
    assert page.request.get(f"/datasets/{sid}/files/notes.txt").status == 404
    shot(page, "private-signed-out")

    page.goto("/signin?next=/datasets")
    shot(page, "signin")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    assert "wrong username or password" in page.get_by_role("alert").inner_text()
    sign_in(page, "alice")
    page.goto("/datasets")
    page.get_by_role("link", name="Secret alloy notebook").click()
    assert "user alice" in page.locator("dl.facts").inner_text()
    download = page.request.get(f"/datasets/{sid}/files/notes.txt")  # with the session cookie
    assert download.status == 200 and download.body() == b"private"

    # Signing out ends it; a forged form without the CSRF token is refused.
    page.goto("/")
    page.get_by_role("button", name="Sign out").click()
    assert page.goto(f"/datasets/{sid}").status == 404
    forged = httpx.post(f"{hub.base}/signin", data={"username": "alice", "password": "x" * 9})
    assert forged.status_code == 403 and "csrf_token" in forged.text


def test_submission_through_the_form_is_curated_and_published(
    new_page: Any, hub: Hub, tmp_path: Path
) -> None:
    upload = tmp_path / "NaCl.cif"
    upload.write_text(
        "data_NaCl\n_cell_length_a 5.64\n_cell_length_b 5.64\n_cell_length_c 5.64\n"
        "_cell_angle_alpha 90\n_cell_angle_beta 90\n_cell_angle_gamma 90\n"
        "_symmetry_space_group_name_H-M 'F m -3 m'\n_symmetry_Int_Tables_number 225\n"
        "loop_\n_symmetry_equiv_pos_as_xyz\n'x, y, z'\n"
        "loop_\n_atom_site_label\n_atom_site_type_symbol\n"
        "_atom_site_fract_x\n_atom_site_fract_y\n_atom_site_fract_z\n"
        "Na1 Na 0 0 0\nCl1 Cl 0.5 0.5 0.5\n"
    )
    page = new_page()
    sign_in(page, "alice")
    page.get_by_role("link", name="Submit", exact=True).click()
    page.get_by_role("textbox", name="Title", exact=True).fill("Rock salt from the browser")
    page.locator("#creators").fill("Demo, Alice\nCurie, Marie")
    page.get_by_label("Description").fill("One NaCl cell, submitted through the web form.")
    page.get_by_label("Subjects").fill("halides, browser")
    page.get_by_label("License").fill("CC-BY-4.0")
    page.get_by_label("Upload files").set_input_files(str(upload))
    page.get_by_label("Ask a curator to review it before publication").check()
    shot(page, "submit")
    page.get_by_role("button", name="Submit", exact=True).click()
    page.wait_for_url(re.compile(r"/submissions/demo_rock_salt_browser_v1\.0$"))
    source_id = "demo_rock_salt_browser_v1.0"
    page.wait_for_selector("#overall:has-text('Waiting for a curator')", timeout=60_000)
    assert "Metadata extraction" in page.locator("#steps").inner_text()
    shot(page, "status-curation")

    curator = new_page()
    sign_in(curator, "admin")
    curator.get_by_role("link", name="Curation").click()
    task = curator.locator("article.task", has_text=source_id)
    assert task.count() == 1
    shot(curator, "curation")
    task.get_by_label("Reason (sent to the submitter)").fill("Looks right")
    task.get_by_role("button", name="Accept").click()
    assert "accepted" in curator.get_by_role("status").inner_text()

    # The submitter's page follows the steps by polling, without a reload, to published.
    page.wait_for_selector("#overall:has-text('Published')", timeout=90_000)
    assert page.locator('[data-step="ingest_publish"] .code').inner_text() == "L"
    shot(page, "status-published")
    page.get_by_role("link", name="Open the dataset").click()
    assert "Rock salt from the browser" in page.get_by_role("heading", level=1).inner_text()
    assert "NaCl.cif" in page.locator("section[aria-labelledby=files-h]").inner_text()
    assert "CC-BY-4.0" in page.locator("dl.facts").inner_text()

    page.get_by_role("link", name="My submissions").click()
    assert source_id in page.locator("table.list").inner_text()
    shot(page, "my-submissions")

    anonymous = new_page()
    anonymous.goto("/search?q=%22Rock salt from the browser%22")
    assert total(anonymous) == 1


def test_admin_pages_manage_users_groups_and_tokens(new_page: Any, hub: Hub) -> None:
    page = new_page()
    sign_in(page, "admin")
    page.get_by_role("link", name="Admin").click()
    page.get_by_label("Username", exact=True).fill("bob")
    page.get_by_label("Password (optional, 8+ characters)").fill("bob-password-1")
    page.get_by_role("button", name="Create user").click()
    assert "Created user bob" in page.get_by_role("status").first.inner_text()
    page.locator("#ng-name").fill("browser-lab")
    page.get_by_role("button", name="Create group").click()
    row = page.locator("tr", has_text="browser-lab")
    row.get_by_label("Username for browser-lab").fill("bob")
    row.get_by_role("button", name="Add").click()
    assert "bob" in page.locator("tr", has_text="browser-lab").inner_text()
    page.locator("#nt-user").fill("bob")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text().strip()
    me = httpx.get(f"{hub.base}/api/whoami", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["username"] == "bob" and me.json()["groups"] == ["browser-lab"]
    shot(page, "admin")

    # Bob signs in with that token; he is no administrator.
    bob = new_page()
    bob.goto("/signin")
    bob.get_by_label("Token").fill(token)
    bob.get_by_role("button", name="Sign in with token").click()
    bob.wait_for_selector("text=Signed in as bob")
    assert bob.goto("/admin").status == 403
