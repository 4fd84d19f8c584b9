"""End-to-end test of the dbviewer in headless Chromium (Playwright driving
Debian's /usr/bin/chromium): home -> Tables -> a frame table -> a filter ->
an object view -> expand a lineage node -> the image view with its pixel
read-out; then, at 1366x1000, the sources of the biggest SourceList (each row
with a lazy thumbnail and a dependency-cutout link, the table inside the
window), that list's object page titled by its SLID, a mistyped condition
shown above the kept form, and a frame row's image-view link. Saves a
screenshot of every step.

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

    # The rest at the width of a common laptop screen.
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    page.goto(base + "/table/SourceList?sort=-n_sources&cols=slid,object_id,n_sources&size=10")
    first = page.locator("#results tbody tr").first
    slid = first.locator("a[href^='/table/SourceList/']").inner_text().strip()
    obj = first.locator("a[href^='/object/']").first.inner_text().strip()
    first.locator(f"a[href='/table/SourceList/{slid}']").click()
    expect(page.locator("h1")).to_have_text(f"Sources of SourceList SLID {slid}")
    rows = page.locator("#results tbody tr")
    assert rows.count() > 10, rows.count()
    # Every row: a thumbnail (lazy) and the dependency-cutout request of its SID.
    for i in range(rows.count()):
        r = rows.nth(i)
        expect(r.locator("td.tools img[loading=lazy]")).to_have_count(1)
        href = r.locator("a.deps-link").get_attribute("href")
        assert href.startswith(f"/deps?slid={slid}&ids="), href
    # The thumbnails in view load, and rows stay compact.
    page.wait_for_function(
        """() => [...document.querySelectorAll('#results td.tools img')].slice(0, 8)
              .every(i => i.complete && i.naturalWidth > 0)""",
        timeout=15000,
    )
    heights = rows.evaluate_all("rs => rs.slice(0, 8).map(r => r.getBoundingClientRect().height)")
    assert max(heights) < 64, heights
    # Rounded numbers keep the default columns inside a 1366 px window.
    right = page.locator("#results").evaluate("t => t.getBoundingClientRect().right")
    assert right <= 1366, f"the sources table ends at {right}px, beyond the window"
    ra = page.locator("#results tbody tr td:nth-child(3)").first
    assert len(ra.inner_text().split(".")[1]) == 6, ra.inner_text()
    assert len(ra.get_attribute("title")) > len(ra.inner_text()), "full value in title"
    shot(page, "sources_table")

    sid_link = rows.first.locator("a.deps-link")
    sid_href = sid_link.get_attribute("href")
    sid_link.click()
    expect(page.locator("h1")).to_have_text("Dependency cutouts")
    ids = sid_href.split("ids=")[1]
    expect(page.locator("#deps-form input[name=ids]")).to_have_value(ids)
    expect(page.locator("#deps-form input[name=slid]")).to_have_value(slid)

    page.goto(base + f"/object/{obj}")
    expect(page.locator("h1")).to_have_text(f"SourceList SLID {slid} (object {obj})")
    expect(page.locator("a#deps")).to_have_attribute("href", f"/deps?slid={slid}")
    shot(page, "sourcelist_object")

    page.goto(base + "/table/ReducedScienceFrame")
    page.fill(".cond.new input[name=q]", "exptime between 90 and 110")
    page.click("form.query button[type=submit]")
    expect(page.locator("#error")).to_contain_text("two values")
    expect(page.locator("form.query input[name=q]").first).to_have_value("exptime between 90 and 110")
    error_box = page.locator("#error").bounding_box()
    form_box = page.locator("form.query").bounding_box()
    assert error_box["y"] < form_box["y"], "the error stands above the form"
    shot(page, "bad_query")

    page.goto(base + "/table/ReducedScienceFrame")
    page.locator("#results a.image-link").first.click()
    expect(page.locator("img#frame-image")).to_be_visible()
    browser.close()

print(f"e2e: ok, {len(shots)} screenshots in {outdir}")
