"""Servable pages in a real browser: search, the page, "try it" (with and without JS), builds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from matterhub import Client
from matterhub.client.describe import describe_files
from tests.web.conftest import Hub, shot, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

REF = "alice/bulk_modulus_delta"


def test_find_the_demo_servable_read_its_page_and_run_it(new_page: Any, hub: Hub) -> None:
    page = new_page()
    page.goto("/")
    page.get_by_role("link", name="Servables", exact=True).first.click()
    page.get_by_label("Search servables").fill("bulk modulus")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/servables\?q=bulk\+modulus"))
    hit = page.locator("ol.servables .hit", has_text=REF)
    assert hit.count() == 1
    meta = hit.locator(".meta").inner_text()
    assert "Demo, Alice" in meta and "equation of state" in meta
    assert "input float → output float" in meta
    shot(page, "servables")
    # The input type filter narrows; nothing of the demo takes a structure.
    page.goto("/servables?input_type=structure")
    assert REF not in page.locator("ol.servables").inner_text()

    page.goto("/servables?q=bulk+modulus")
    page.locator("ol.servables a.title").first.click()
    page.wait_for_url(re.compile(rf"/servables/{REF}$"))
    assert page.get_by_role("heading", level=1).inner_text().startswith("Δ-model")
    assert page.locator("#type-input").inner_text() == "float"
    assert page.locator("#type-output").inner_text() == "float"
    assert "PBE (WIEN2k) bulk modulus, GPa" in page.locator("dl.types").inner_text()
    assert page.locator("#viewers").inner_text() == "everyone, user alice"
    assert page.locator("#runners").inner_text() == "everyone, user alice"
    training = page.locator("#training-data a")
    assert training.get_attribute("href") == "/datasets/dcdft_v1.0"
    assert training.inner_text().startswith("Delta test")
    assert f'client.run("{REF}", 100.0)' in page.locator("#snippet-python").inner_text()

    # The model's value for 100 GPa is the document's expected output: the demo computes it
    # with the same float expression as the model (intercept + slope · 100), and the build
    # checked it by running the model.
    described = httpx.get(f"{hub.base}/api/servables/{REF}").json()
    example = described["document"]["servable"]["example"]
    assert example["input"] == 100.0
    assert page.locator("#example-output").inner_text() == str(example["output"])

    # Try it: the script sends the form and shows the answer in place (no navigation).
    assert page.locator("#try-inputs").input_value().strip() == "100.0"
    page.locator("#try-inputs").fill("100.0")
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-output")
    assert page.url.endswith(f"/servables/{REF}")
    shown = float(page.locator("#try-output").inner_text())
    assert shown == pytest.approx(example["output"], abs=1e-9)
    assert re.search(
        r"ran in [\d.]+ ms \(request [\d.]+ ms\)", page.locator("#try-timing").inner_text()
    )
    shot(page, "servable")
    # The same as the API answers (now from the result cache, which the page's run filled).
    api = httpx.post(f"{hub.base}/api/servables/{REF}/run", json={"inputs": 100.0}, timeout=60)
    assert api.status_code == 200, api.text
    assert api.json()["output"] == shown and api.json()["cached"] is True

    # A wrong input is refused with the path that is wrong, beside the form.
    page.locator("#try-inputs").fill('"a lot"')
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-error")
    assert "expected float, received str at inputs" in page.locator("#try-error").inner_text()
    assert page.locator("#try-inputs").get_attribute("aria-invalid") == "true"

    # The build log: status, steps, artefacts.
    page.locator("table.versions a", has_text="succeeded").click()
    page.wait_for_url(re.compile(rf"/servables/{REF}/builds/[\w-]+$"))
    assert page.locator("#build-status").inner_text() == "succeeded"
    log = page.locator("#build-log").inner_text()
    assert "== example" in log and "== done: the version is live" in log
    dockerfile = page.get_by_role("link", name="Dockerfile").get_attribute("href")
    recipe = page.request.get(dockerfile)
    assert recipe.status == 200 and "FROM" in recipe.text()
    shot(page, "servable-build")


def test_try_it_works_without_javascript(browser: Any, hub: Hub) -> None:
    context = browser.new_context(base_url=hub.base, java_script_enabled=False)
    try:
        page = context.new_page()
        page.goto(f"/servables/{REF}")
        page.locator("#try-inputs").fill("250")
        page.get_by_role("button", name="Run", exact=True).click()
        page.wait_for_url(re.compile(rf"/servables/{REF}/try$"))
        direct = httpx.post(f"{hub.base}/servables/{REF}/run", json={"inputs": 250.0}, timeout=60)
        assert float(page.locator("#try-output").inner_text()) == direct.json()
        assert page.locator("#try-inputs").input_value() == "250"
        # Bad JSON comes back as the page with the field named, status 422.
        page.locator("#try-inputs").fill("[1,")
        with page.expect_response(re.compile(r"/try$")) as answer:
            page.get_by_role("button", name="Run", exact=True).click()
        assert answer.value.status == 422
        assert "not valid JSON" in page.locator("#try-error").inner_text()
    finally:
        context.close()

    # A post from elsewhere (no CSRF token) runs nothing; unseen things are 404; mine needs you.
    forged = httpx.post(f"{hub.base}/servables/{REF}/try", data={"inputs": "1.0"})
    assert forged.status_code == 403 and "csrf_token" in forged.text
    assert httpx.get(f"{hub.base}/servables/alice/no_such_model").status_code == 404
    unknown = httpx.get(f"{hub.base}/servables/{REF}/builds/none/Dockerfile")
    assert unknown.status_code == 404
    assert httpx.get(f"{hub.base}/servables?page=0").status_code == 422
    assert httpx.get(f"{hub.base}/me/servables").status_code == 401
    moved = httpx.get(f"{hub.base}/my/servables")
    assert moved.status_code == 308 and moved.headers["location"] == "/me/servables"


def test_seen_but_not_runnable_and_my_servables(new_page: Any, hub: Hub, tmp_path: Path) -> None:
    module = tmp_path / "count_rows.py"
    module.write_text(
        '"""Count rows."""\n\n\ndef count(arrays):\n'
        '    """How many rows in all."""\n    return sum(len(a) for a in arrays)\n'
    )
    rows = {"type": "ndarray", "shape": [None, 3], "item_type": {"type": "float"}}
    description = describe_files(
        "row_counter",
        "count_rows:count",
        [module],
        input_type={"type": "list", "item_type": rows},
        output_type={"type": "integer"},
    )
    description.set_title("Row counter").set_creators(["Demo, Alice"]).set_domains(["testing"])
    description.set_example([[[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]], 2)
    description.set_visibility(["public"], runnable_by=["user:alice"])
    with Client(hub.base, hub.tokens["alice"]) as alice:
        build = alice.publish_servable(description, wait=True, timeout=120)
    assert build["status"] == "succeeded", build["log"]

    anonymous = new_page()
    anonymous.goto("/servables/alice/row_counter")
    assert anonymous.locator("#type-input").inner_text() == "list of ndarray[None, 3] of float"
    assert anonymous.locator("#runners").inner_text() == "user alice"
    assert "only user alice may run it" in anonymous.locator("#cannot-run").inner_text()
    assert anonymous.get_by_role("button", name="Run", exact=True).is_disabled()
    assert 'token="YOUR_TOKEN"' in anonymous.locator("#snippet-python").inner_text()
    shot(anonymous, "servable-not-runnable")

    page = new_page()
    sign_in(page, "alice")
    page.get_by_role("link", name="My servables").click()
    page.wait_for_url(re.compile(r"/me/servables$"))
    table = page.locator("table.list").inner_text()
    assert "alice/row_counter" in table and REF in table
    shot(page, "my-servables")
    page.get_by_role("link", name="Row counter").click()
    assert page.locator("#cannot-run").count() == 0
    page.get_by_role("button", name="Run", exact=True).click()
    page.wait_for_selector("#try-output")
    assert page.locator("#try-output").inner_text() == "2"
