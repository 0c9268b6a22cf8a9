"""A real browser (Debian chromium, headless, via playwright) on the Prefect UI and the gallery.

Screenshots go to test-output/browser/ at the repository root.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import SCREENSHOTS, DeployedRun, Server, api_client

# (label, path prefix): the flow-run links Prefect prints in its logs open the V1 UI; a browser
# opening the server's root lands on the V2 UI. Both must show the run.
UIS = [("v1", ""), ("v2", "/v2")]


def _all_images_loaded(page: Any, selector: str) -> list[dict[str, Any]]:
    """Wait until every image under `selector` finished loading; return their sources and widths."""
    page.wait_for_function(
        "sel => { const imgs = Array.from(document.querySelectorAll(sel)); "
        "return imgs.length > 0 && imgs.every(i => i.complete); }", arg=selector)
    return page.eval_on_selector_all(selector, "imgs => imgs.map(i => ({src: i.src, width: i.naturalWidth}))")


@pytest.mark.parametrize("ui,prefix", UIS, ids=[u for u, _ in UIS])
def test_the_flow_run_page_shows_its_task_runs_and_artifacts(ui: str, prefix: str, page: Any, deployed_run: DeployedRun,
                                                             prefect_ui_server: Server) -> None:
    flow_run = deployed_run.flow_run
    page.goto(f"{prefect_ui_server.url}{prefix}/runs/flow-run/{flow_run.id}")
    page.get_by_text("ui-gallery", exact=True).first.wait_for()  # the run, named after the manifest
    page.get_by_text("Failed", exact=True).first.wait_for()  # its state badge
    page.screenshot(path=SCREENSHOTS / f"{ui}-flow-run.png", full_page=True)

    tabs = page.get_by_role("tablist")
    tabs.get_by_text("Task Runs", exact=True).click()
    for name in ("style art0 @32px", "style art1 @32px", "stylize photo0 x art0", "stylize photo2 x art1"):
        page.get_by_text(name, exact=True).first.wait_for()
    page.screenshot(path=SCREENSHOTS / f"{ui}-task-runs.png", full_page=True)

    tabs.get_by_text("Artifacts", exact=True).click()
    for key in ("nst-ui-gallery-progress", "nst-ui-gallery-results", "nst-ui-gallery-gallery"):
        page.get_by_text(key, exact=True).first.wait_for()
    page.get_by_text("6 of 6 pairs finished").or_(page.get_by_text("4 of 4 pairs finished")).first.wait_for()
    page.screenshot(path=SCREENSHOTS / f"{ui}-artifacts.png", full_page=True)


@pytest.mark.parametrize("ui,prefix", UIS, ids=[u for u, _ in UIS])
def test_the_gallery_and_results_artifacts_render(ui: str, prefix: str, page: Any, deployed_run: DeployedRun,
                                                  prefect_ui_server: Server) -> None:
    with api_client(prefect_ui_server) as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        ids = {a.key: a.id for a in client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
            any_=["nst-ui-gallery-gallery", "nst-ui-gallery-results"])))}

    page.goto(f"{prefect_ui_server.url}{prefix}/artifacts/artifact/{ids['nst-ui-gallery-gallery']}")
    page.get_by_text("photo1 x art0: ", exact=False).first.wait_for()  # the failures, with their reason
    assert "photo1.png" in page.get_by_text("photo1 x art0: ", exact=False).first.inner_text()
    images = _all_images_loaded(page, "img[alt*=' x art']")
    assert len(images) == 4 and all(i["width"] > 0 for i in images), images  # every thumbnail shows
    page.screenshot(path=SCREENSHOTS / f"{ui}-gallery-artifact.png", full_page=True)

    page.goto(f"{prefect_ui_server.url}{prefix}/artifacts/artifact/{ids['nst-ui-gallery-results']}")
    for pair in ("photo0--art0", "photo2--art1", "photo1--art1"):
        page.get_by_text(pair, exact=True).first.wait_for()
    page.screenshot(path=SCREENSHOTS / f"{ui}-results-artifact.png", full_page=True)


def test_the_gallery_page_opens_from_disk_with_every_image(page: Any, deployed_run: DeployedRun) -> None:
    index = deployed_run.output / "index.html"
    page.goto(index.as_uri())
    images = _all_images_loaded(page, "#grid img")
    assert len(images) == 4 and all(i["width"] > 0 for i in images), images
    # the grid: a header of the styles, a row per content, a cell per content x style
    assert page.eval_on_selector_all("#grid thead th", "ths => ths.map(t => t.textContent)") == [
        "content \\ style", "art0", "art1"]
    rows = page.eval_on_selector_all(
        "#grid tbody tr", "trs => trs.map(tr => [tr.querySelector('th').textContent, "
        "Array.from(tr.querySelectorAll('td')).map(td => td.querySelector('img') ? "
        "td.querySelector('img').dataset.pair : td.textContent.trim())])")
    assert rows == [["photo0", ["photo0--art0", "photo0--art1"]],
                    ["photo1", ["failed", "failed"]],
                    ["photo2", ["photo2--art0", "photo2--art1"]]]
    reason = page.get_attribute("#grid tbody tr:nth-child(2) .failed", "title")
    assert reason and "photo1.png" in reason
    page.screenshot(path=SCREENSHOTS / "gallery-index.png", full_page=True)
