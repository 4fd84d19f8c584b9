"""End-to-end test of dependency cutouts in headless Chromium at 1366×1000:
open a SourceList's sources, ask for the dependency cutouts of `1:3`, and
check the result page: three source rows, one column per frame class,
thumbnails and animated GIFs that load; then that the whole table fits the
screen (every class column and both GIF columns inside the viewport, no
horizontal scrolling, also with a fold opened), that a thumbnail enlarges
on click and closes with Escape; then the jobs page lists the request.

Usage: deps.py BASE_URL SLID SCREENSHOT_DIR CHROMIUM
"""

import sys
from pathlib import Path

from playwright.sync_api import expect, sync_playwright

base, slid, outdir, chromium = sys.argv[1], sys.argv[2], Path(sys.argv[3]), sys.argv[4]
outdir.mkdir(parents=True, exist_ok=True)
WIDTH, HEIGHT = 1366, 1000
CLASSES = [
    "RawScienceFrame", "BiasFrame", "MasterFlatFrame", "FringeFrame", "HotPixelMap",
    "ColdPixelMap", "IlluminationCorrection", "ReducedScienceFrame", "RegriddedFrame",
    "CoaddedRegriddedFrame",
]
shots = []


def shot(page, name, full_page=True):
    path = outdir / f"deps_{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    shots.append(path)


def loaded(page, selector):
    """Number of matching images the browser actually decoded."""
    return page.eval_on_selector_all(
        selector, "els => els.filter(e => e.complete && e.naturalWidth > 0).length"
    )


def assert_fits(page, when):
    """Every class column and the GIF columns, header and first row, lie
    inside the viewport, and nothing scrolls sideways."""
    found = page.evaluate(
        """() => {
        const view = document.documentElement.clientWidth;
        const heads = [...document.querySelectorAll('table#deps thead th')];
        const row = document.querySelector('table#deps tbody tr');
        const cells = row ? [...row.children] : [];
        const out = [];
        let col = 0;
        for (const th of heads) {
          const name = (th.getAttribute('title') || th.innerText).replace(/\\s+/g, '');
          const r = th.getBoundingClientRect();
          const td = cells[col];
          const c = td ? td.getBoundingClientRect() : null;
          out.push({name, left: r.left, right: r.right,
                    cell_left: c ? c.left : null, cell_right: c ? c.right : null});
          col += th.colSpan || 1;
        }
        const scrollers = [...document.querySelectorAll('.scroll')]
          .map(s => [s.scrollWidth, s.clientWidth]);
        return {view, inner: window.innerWidth, doc: document.documentElement.scrollWidth,
                scrollers, columns: out};
      }"""
    )
    view = found["view"]
    assert found["inner"] == WIDTH, found["inner"]
    by_name = {c["name"]: c for c in found["columns"]}
    wanted = CLASSES + ["Pipeline", "Epochs"]
    missing = [n for n in wanted if n not in by_name]
    assert not missing, f"{when}: no column {missing} in {list(by_name)}"
    outside = [
        f"{n}: header {c['left']:.0f}..{c['right']:.0f}, first row "
        f"{c['cell_left']}..{c['cell_right']}"
        for n in wanted
        for c in [by_name[n]]
        if c["left"] < 0 or c["right"] > view
        or c["cell_left"] is None or c["cell_left"] < 0 or c["cell_right"] > view
    ]
    assert not outside, f"{when}: outside the {view} px viewport: {outside}"
    assert found["doc"] <= view, f"{when}: the page scrolls sideways ({found['doc']} > {view} px)"
    for sw, cw in found["scrollers"]:
        assert sw <= cw, f"{when}: the table scrolls sideways ({sw} > {cw} px)"
    return by_name


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    page.goto(f"{base}/table/SourceList/{slid}")
    expect(page.locator("#deps-request")).to_be_visible()
    shot(page, "01_sources")

    page.fill("#deps-request input[name=ids]", "1:3")
    page.click("#deps-request button")
    page.wait_for_url("**/jobs/*")
    expect(page.locator("#status")).to_have_text("done")
    rows = page.locator("table#deps tbody tr")
    expect(rows).to_have_count(3)
    sids = [rows.nth(i).get_attribute("data-sid") for i in range(3)]
    assert sids == ["1", "2", "3"], sids
    page.wait_for_load_state("networkidle")
    shot(page, "result_1366", full_page=False)
    assert_fits(page, "result")
    headers = page.eval_on_selector_all("table#deps thead th.class", "els => els.map(e => e.title)")
    assert headers == CLASSES, headers
    thumbs = page.locator("table#deps figure.cut.main img").count()
    assert thumbs >= 3 * 5, f"only {thumbs} thumbnails"
    assert loaded(page, "table#deps figure.cut.main img") == thumbs, "a thumbnail did not load"
    gifs = page.locator("table#deps img.pipeline").count()
    assert gifs == 3, f"{gifs} pipeline GIFs"
    assert loaded(page, "table#deps img.pipeline") == 3, "a pipeline GIF did not load"
    assert loaded(page, "table#deps img.epochs") >= 1, "no epoch GIF loaded"

    shot(page, "02_result")

    # Open every fold of the first row: still no sideways scrolling, and the
    # folded frames load and say what they are.
    folds = page.locator("table#deps tbody tr:first-child details.more")
    for i in range(folds.count()):
        folds.nth(i).locator("summary").click()
    if folds.count():
        page.wait_for_load_state("networkidle")
        inner = "table#deps tbody tr:first-child details.more figure.cut img"
        n = page.locator(inner).count()
        # "networkidle" can come before the last thumbnail is decoded on a
        # busy machine: wait (bounded) for all of them, then check.
        try:
            page.wait_for_function(
                "s => [...document.querySelectorAll(s)].every(e => e.complete && e.naturalWidth > 0)",
                arg=inner,
                timeout=15000,
            )
        except Exception:
            pass
        assert n >= 1 and loaded(page, inner) == n, f"{loaded(page, inner)} of {n} folded thumbnails"
        assert_fits(page, "with the folds of the first row open")
        shot(page, "folds_open_1366", full_page=False)

    # A thumbnail enlarges on click, and Escape closes it.
    first = page.locator("table#deps tbody tr:first-child figure.cut.main a.zoom").first
    first.click()
    box = page.locator("#lightbox")
    expect(box).to_be_visible()
    page.wait_for_function(
        "() => { const i = document.querySelector('#lightbox img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    width = page.eval_on_selector("#lightbox img", "i => i.getBoundingClientRect().width")
    assert width >= 3 * 64, f"the enlarged cutout is only {width} px wide"
    shot(page, "lightbox_1366", full_page=False)
    page.keyboard.press("Escape")
    expect(box).to_be_hidden()

    page.click("header nav >> text=Jobs")
    expect(page.locator("h1")).to_have_text("Jobs")
    expect(page.locator("table#jobs tbody tr").first).to_contain_text("SIDs 1:3")
    shot(page, "03_jobs")
    browser.close()

print(f"e2e deps: ok, {len(shots)} screenshots in {outdir}")
