"""End-to-end test of the dbviewer in headless Chromium (Playwright driving
Debian's /usr/bin/chromium): home -> Tables -> a frame table -> a filter ->
an object view -> expand a lineage node -> the image view with its pixel
read-out. Saves a screenshot of every step.

Usage: dbviewer.py BASE_URL SCREENSHOT_DIR CHROMIUM
"""

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

base, outdir, chromium = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
outdir.mkdir(parents=True, exist_ok=True)
shots = []


def shot(page, name):
    path = outdir / f"{len(shots) + 1:02d}_{name}.png"
    page.screenshot(path=str(path), full_page=True)
    shots.append(path)


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(base + "/")
    expect(page.locator("h1")).to_contain_text("Survey database")
    shot(page, "home")

    page.click("header nav >> text=Tables")
    expect(page.locator("h1")).to_have_text("Tables")
    page.click("tr[data-table=ReducedScienceFrame] a")
    expect(page.locator("h1")).to_have_text("ReducedScienceFrame")
    total_all = int(page.locator("#total").inner_text())
    shot(page, "table")

    page.fill(".cond.new input[name=q]", "filter = g")
    page.click("form.query button[type=submit]")
    expect(page.locator("h1")).to_have_text("ReducedScienceFrame")
    total_g = int(page.locator("#total").inner_text())
    assert 0 < total_g < total_all, (total_g, total_all)
    filters = page.locator("#results thead th").evaluate_all(
        "ths => ths.map(t => t.dataset.column)")
    col = filters.index("filter")
    cells = page.locator(f"#results tbody tr td:nth-child({col + 1})").all_inner_texts()
    assert cells and all(c.strip() == "g" for c in cells), cells
    assert "filter" in page.url and "%3D" in page.url or "=" in page.url
    shot(page, "filtered")

    page.locator("#results tbody tr a[href^='/object/']").first.click()
    expect(page.locator("h1")).to_contain_text("ReducedScienceFrame")
    shot(page, "object")

    # Level-1 nodes start open, deeper ones closed: open a closed one.
    closed = page.locator("#tree-up details:not([open])").first
    expect(closed).to_have_count(1)
    obj = closed.locator("xpath=..").get_attribute("data-object")
    # Click the level tag, not the node's link (which would open its page).
    object_url = page.url
    closed.locator("summary > .level").first.click()
    assert page.url == object_url, "expanding a node must not navigate"
    opened = page.locator(f"#tree-up li[data-object='{obj}'] > details[open]").first
    expect(opened).to_have_count(1)
    expect(opened.locator("ul > li").first).to_be_visible()
    shot(page, "tree_expanded")

    page.click("a#image-view")
    img = page.locator("img#frame-image")
    expect(img).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.getElementById('frame-image'); return i.complete && i.naturalWidth > 0; }"
    )
    box = img.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#readout")).to_contain_text("RA", timeout=10000)
    readout = page.locator("#readout").inner_text()
    # A reduced frame has a sky WCS, so RA and Dec are numbers.
    assert "value" in readout and "RA –" not in readout and "Dec –" not in readout, readout
    shot(page, "image_view")
    browser.close()

print(f"e2e: ok, {len(shots)} screenshots in {outdir}")
