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
    if ui == "v1":  # V2 shows the logs a page at a time, oldest first: these are further down
        tabs.get_by_text("Logs", exact=True).first.click()
        # the logs: one line per failed pair, with its reason
        page.get_by_text("failed photo1 x art0: ", exact=False).first.wait_for()
        assert "photo1.png" in page.get_by_text("failed photo1 x art1: ", exact=False).first.inner_text()
        page.screenshot(path=SCREENSHOTS / f"{ui}-logs.png", full_page=True)
    tabs.get_by_text("Task Runs", exact=True).click()
    for name in ("style art0 @32px", "style art1 @32px", "stylize photo0 x art0", "stylize photo2 x art1",
                 "failed photo1 x art0, photo1 x art1"):  # the pairs that failed at planning, too
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
    # every result is a link (markdown rendered as <a>) to its image. V2 shows the link text but
    # no <a> for these file:// targets (seen here; http(s) targets, e.g. presigned S3 URLs, are
    # not covered by this test); V1 keeps them.
    pairs = ("photo0--art0", "photo0--art1", "photo2--art0", "photo2--art1")
    for pair in pairs:
        page.get_by_text(f"{pair}.png", exact=True).first.wait_for()
    if ui == "v1":
        links = page.eval_on_selector_all("a", "as => as.map(a => [a.textContent, a.getAttribute('href')])")
        expected = {(f"{p}.png", (deployed_run.output / "results" / f"{p}.png").as_uri()) for p in pairs}
        assert expected <= {tuple(link) for link in links}, links

    page.goto(f"{prefect_ui_server.url}{prefix}/artifacts/artifact/{ids['nst-ui-gallery-results']}")
    for pair in ("photo0--art0", "photo2--art1", "photo1--art1"):
        page.get_by_text(pair, exact=True).first.wait_for()
    page.screenshot(path=SCREENSHOTS / f"{ui}-results-artifact.png", full_page=True)


def test_the_gallery_page_opens_from_disk_with_every_image(page: Any, deployed_run: DeployedRun) -> None:
    index = deployed_run.output / "index.html"
    page.goto(index.as_uri())
    images = _all_images_loaded(page, "#grid td img")  # the results (headers hold the inputs')
    assert len(images) == 4 and all(i["width"] > 0 for i in images), images
    # the grid: a header of the styles, a row per content, a cell per content x style
    assert page.eval_on_selector_all("#grid thead th", "ths => ths.map(t => t.textContent)") == [
        "content \\ style", "art0", "art1"]
    rows = page.eval_on_selector_all(
        "#grid tbody tr", "trs => trs.map(tr => [tr.querySelector('th').textContent, "
        "Array.from(tr.querySelectorAll('td')).map(td => td.querySelector('img') ? "
        "td.querySelector('img').dataset.pair : td.querySelector('.failed') ? 'failed' : td.textContent.trim())])")
    assert rows == [["photo0", ["photo0--art0", "photo0--art1"]],
                    ["photo1", ["failed", "failed"]],
                    ["photo2", ["photo2--art0", "photo2--art1"]]]
    reason = page.inner_text("#grid tbody tr:nth-child(2) .failed")  # shown, not a tooltip
    assert reason and "photo1.png" in reason
    page.screenshot(path=SCREENSHOTS / "gallery-index.png", full_page=True)


def test_the_gallery_on_a_phone_shows_failure_reasons_and_input_thumbnails(browser_context: Any,
                                                                          deployed_run: DeployedRun) -> None:
    page = browser_context.new_page()
    try:
        page.set_viewport_size({"width": 390, "height": 844})  # a phone in portrait
        page.goto((deployed_run.output / "index.html").as_uri())
        headers = _all_images_loaded(page, "#grid th img")
        # a thumbnail of every readable input in the headers: 2 styles, photo0 and photo2
        assert sorted(i["src"].rsplit("/", 1)[-1] for i in headers) == ["art0.jpg", "art1.jpg", "photo0.jpg", "photo2.jpg"]
        failed = page.locator("#grid .failed").first
        failed.scroll_into_view_if_needed()
        assert failed.is_visible() and "photo1.png" in failed.inner_text()
        box = failed.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390  # on screen, not cut off
        summary = page.inner_text("#summary")
        assert "4 done, 0 skipped, 2 failed" in summary and "finished 20" in summary
        assert "weights: random:7" in (page.text_content("#settings") or "")  # folded: details
        assert "manifest asks for them (weights: random:7)" in page.inner_text("#weights-warning")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390  # the page itself does not scroll sideways
        page.screenshot(path=SCREENSHOTS / "gallery-phone.png", full_page=True)
    finally:
        page.close()


def test_a_twenty_by_twenty_gallery_keeps_its_headers_in_view(page: Any, tmp_path: Any) -> None:
    """The page layout of a 400-pair run (real thumbnails of synthetic images; the run itself is
    tests/flows/test_stylize_manifest.py::test_four_hundred_pairs...): headers stay in view while
    the grid scrolls, every cell has its picture."""
    from nst_engine.images import encode_image, thumbnail
    from tasks.gallery import GalleryPage, gallery_html
    from tasks.layout import PairOutcome, input_thumbnail_key, thumbnail_key
    from tests.conftest import make_image

    contents, styles = [f"photo{i}" for i in range(20)], [f"art{j}" for j in range(20)]
    thumbs: dict[str, str] = {}
    for kind, ids in (("content", contents), ("style", styles)):
        for n, ident in enumerate(ids):
            key = input_thumbnail_key(kind, ident)
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(encode_image(thumbnail(make_image(48, 36, n, kind), 96), "JPEG"))
            thumbs[f"{kind}:{ident}"] = key
    outcomes = []
    for i, c in enumerate(contents):
        for j, s in enumerate(styles):
            key = thumbnail_key(c, s)
            (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / key).write_bytes(encode_image(make_image(48, 36, i * 20 + j, "style"), "JPEG"))
            outcomes.append(PairOutcome(c, s, "done", losses={"total": 1.0 + j}, seconds=2.0 + i,
                                        batch_size=4).to_dict())
    outcomes[5] = PairOutcome.failed("photo0", "art5", "photo0.png: not a readable image").to_dict()
    page_html = gallery_html(GalleryPage("wide", contents, styles, outcomes, finished="2026-11-26T03:00:00+00:00",
                                         counts={"done": 399, "skipped": 0, "failed": 1}, input_thumbs=thumbs))
    (tmp_path / "index.html").write_text(page_html)
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto((tmp_path / "index.html").as_uri())
    images = _all_images_loaded(page, "#grid td img")
    assert len(images) == 399 and all(i["width"] > 0 for i in images)
    page.screenshot(path=SCREENSHOTS / "gallery-20x20.png")
    page.eval_on_selector(".scroll", "el => { el.scrollTop = el.scrollHeight; el.scrollLeft = el.scrollWidth; }")
    # scrolled to the far corner: the style header row and the content column are still on screen
    header = page.locator("#grid thead th").last.bounding_box()
    row_header = page.locator("#grid tbody th").last.bounding_box()
    grid = page.locator(".scroll").bounding_box()
    assert header and row_header and grid
    assert grid["y"] <= header["y"] <= grid["y"] + 5 and grid["x"] <= row_header["x"] <= grid["x"] + 5
    assert "2.0 s, batch of 4" in page.inner_text("#grid tbody tr:first-child td:nth-of-type(1)")
    page.screenshot(path=SCREENSHOTS / "gallery-20x20-scrolled.png")


def test_the_progress_artifact_mid_run_counts_pairs_and_shows_an_eta(page: Any, prefect_ui_server: Server,
                                                                     tmp_path: Any) -> None:
    """A run held at its second engine call (a progress sink, the hook `nst run` uses, waits
    there): the UI's progress artifact shows 1 of 3 pairs finished and an ETA."""
    import threading

    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.stylize_manifest import run_manifest
    from tasks import progress
    from tasks.options import RunOptions
    from tests.flows.test_stylize_manifest import write_manifest
    from tests.prefect_process import wait_for

    manifest = write_manifest(tmp_path / "mid-run", contents=3, styles=1)
    held, release = threading.Event(), threading.Event()

    class HoldSecondCall(progress.ProgressSink):
        calls = 0

        def batch_started(self, pairs: Any) -> None:
            HoldSecondCall.calls += 1
            if HoldSecondCall.calls == 2:
                held.set()
                release.wait(120)

    outcome: dict[str, Any] = {}

    def run() -> None:
        with temporary_settings(updates={PREFECT_API_URL: prefect_ui_server.api_url}):
            outcome["result"] = run_manifest(str(manifest), RunOptions(batch_size=1))

    previous = progress.install(HoldSecondCall())
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert held.wait(240), "the run never reached its second engine call"

        def artifact() -> Any:
            with api_client(prefect_ui_server) as client:
                from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

                found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(
                    any_=["nst-mid-run-progress"])))
            return next((a for a in found if (a.description or "").startswith("1 of 3 pairs finished")), None)

        progress_artifact = wait_for(artifact, 60, "the progress artifact after the first pair")
        page.goto(f"{prefect_ui_server.url}/artifacts/artifact/{progress_artifact.id}")
        page.get_by_text("1 of 3 pairs finished: 1 done, 0 failed, 0 skipped", exact=False).first.wait_for()
        assert "ETA" in page.get_by_text("1 of 3 pairs finished", exact=False).first.inner_text()
        page.screenshot(path=SCREENSHOTS / "progress-mid-run.png", full_page=True)
    finally:
        release.set()
        thread.join(240)
        progress.install(previous)
    state, report = outcome["result"]
    assert state.is_completed() and report["counts"]["done"] == 3
