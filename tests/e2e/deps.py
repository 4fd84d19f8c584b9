"""End-to-end test of dependency cutouts in headless Chromium: open a
SourceList's sources, ask for the dependency cutouts of `1:3`, and check the
result page: three source rows, one column per frame class, thumbnails that
load, and animated GIFs that load; then the jobs page lists the request.

Usage: deps.py BASE_URL SLID SCREENSHOT_DIR CHROMIUM
"""

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

base, slid, outdir, chromium = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
outdir.mkdir(parents=True, exist_ok=True)
shots = []


def shot(page, name):
    path = outdir / f"deps_{len(shots) + 1:02d}_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    shots.append(path)


def loaded(page, selector):
    """Number of matching images the browser actually decoded."""
    return page.eval_on_selector_all(
        selector, "els => els.filter(e => e.complete && e.naturalWidth > 0).length"
    )


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{base}/table/SourceList/{slid}")
    expect(page.locator("#deps-request")).to_be_visible()
    shot(page, "sources")

    page.fill("#deps-request input[name=ids]", "1:3")
    page.click("#deps-request button")
    page.wait_for_url("**/jobs/*")
    expect(page.locator("#status")).to_have_text("done")
    rows = page.locator("table#deps tbody tr")
    expect(rows).to_have_count(3)
    sids = [rows.nth(i).get_attribute("data-sid") for i in range(3)]
    assert sids == ["1", "2", "3"], sids
    headers = page.locator("table#deps thead th.class").all_inner_texts()
    assert headers[0] == "RawScienceFrame" and headers[-1] == "CoaddedRegriddedFrame", headers
    assert len(headers) == 10, headers
    page.wait_for_load_state("networkidle")
    thumbs = page.locator("table#deps figure.cut img").count()
    assert thumbs >= 3 * 5, f"only {thumbs} thumbnails"
    assert loaded(page, "table#deps figure.cut img") == thumbs, "a thumbnail did not load"
    gifs = page.locator("table#deps img.pipeline").count()
    assert gifs == 3, f"{gifs} pipeline GIFs"
    assert loaded(page, "table#deps img.pipeline") == 3, "a pipeline GIF did not load"
    assert loaded(page, "table#deps img.epochs") >= 1, "no epoch GIF loaded"
    shot(page, "result")

    page.click("header nav >> text=Jobs")
    expect(page.locator("h1")).to_have_text("Jobs")
    expect(page.locator("table#jobs tbody tr").first).to_contain_text("SIDs 1:3")
    shot(page, "jobs")
    browser.close()

print(f"e2e deps: ok, {len(shots)} screenshots in {outdir}")
