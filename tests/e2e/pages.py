"""End-to-end screenshots and checks of the pages a newcomer sees first, in
headless Chromium at 1366x1000 with every request outside the server under
test aborted (so the sky view cannot reach Aladin Lite on CDS, and the server
has no local copy): the home page, an RGB picture made from the form's
offered target, the image view of the coadd i frame and its "high" contrast
preset, and the sky view's fallback (the server's own rendering with the
SourceList circled and three SIDs marked).

Usage: pages.py BASE_URL COADD_I_ID SLID N_SOURCES SCREENSHOT_DIR CHROMIUM
Prints "e2e pages: ok, N screenshots" and exits 0 on success.
"""

import sys
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import expect, sync_playwright

if len(sys.argv) != 7:
    sys.exit("usage: pages.py BASE_URL COADD_I_ID SLID N_SOURCES SCREENSHOT_DIR CHROMIUM")
base, coadd_i, slid, n_sources, outdir, chromium = sys.argv[1:7]
n_sources = int(n_sources)
outdir = Path(outdir)
outdir.mkdir(parents=True, exist_ok=True)
shots = []
blocked = []

# Grey-level spread of a same-origin <img>, drawn on a canvas by the page.
IMAGE_STATS = """(img) => {
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, c.width, c.height).data;
  let sum = 0, sum2 = 0; const n = d.length / 4;
  for (let i = 0; i < d.length; i += 4) { const g = d[i]; sum += g; sum2 += g * g; }
  const mean = sum / n;
  return {w: c.width, h: c.height, stddev: Math.sqrt(Math.max(0, sum2 / n - mean * mean))};
}"""


def shot(page, name):
    path = outdir / f"pages_{len(shots) + 1:02d}_{name}.png"
    page.screenshot(path=str(path))  # the 1366x1000 viewport, as a user sees it
    shots.append(path)


def loaded(page, selector):
    return page.eval_on_selector_all(
        selector, "els => els.filter(e => e.complete && e.naturalWidth > 0).length"
    )


def picture_ok(page, selector, what):
    img = page.locator(selector).first
    expect(img).to_be_visible()
    page.wait_for_function(
        "s => { const i = document.querySelector(s); return i && i.complete && i.naturalWidth > 0; }",
        arg=selector, timeout=60_000)
    stats = img.evaluate(IMAGE_STATS)
    assert stats["w"] > 10 and stats["h"] > 10, (what, stats)
    assert stats["stddev"] > 5, f"{what} is blank: {stats}"
    return stats


origin = "{0.scheme}://{0.netloc}".format(urlsplit(base))


def only_this_server(route):
    url = route.request.url
    if url.startswith(origin) or url.startswith("data:") or url.startswith("blob:"):
        route.continue_()
    else:
        blocked.append(url)
        route.abort()


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    page.route("**/*", only_this_server)

    # Home, with its favicon.
    page.goto(base + "/")
    expect(page.locator("h1")).to_contain_text("Survey database")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(base + icon).ok, icon
    shot(page, "home")

    # An RGB picture from the target the form offers.
    page.goto(base + "/rgb")
    target = page.locator("select#target option:not([value=''])").first.get_attribute("value")
    page.select_option("select#target", target)
    page.fill("input[name=filters]", "i,r,g")
    page.select_option("select#class", "CoaddedRegriddedFrame")
    page.click("#rgb-form button[type=submit]")
    page.wait_for_url("**/jobs/*")
    picture_ok(page, ".files figure.rgb img", "RGB picture")
    caption = page.locator(".files figure.rgb figcaption").first.inner_text()
    shot(page, "rgb_picture")

    # The image view of the coadd i frame with its sources, then "high".
    page.goto(f"{base}/image/{coadd_i}?slid={slid}")
    normal = picture_ok(page, "img#frame-image", "image view")
    assert page.locator("svg#overlay circle").count() == n_sources
    shot(page, "image_coadd_i")
    page.click("a.contrast-high")
    page.wait_for_url("**contrast=high**")
    high = picture_ok(page, "img#frame-image", "high contrast")
    assert page.locator("svg#overlay circle").count() == n_sources, "the overlay was dropped"
    # (Which preset clips more is checked pixel by pixel in tests/it/image.rs;
    # here: the browser shows a different picture.)
    assert high != normal, (normal, high)

    # The sky view without Aladin Lite: the fallback with the same marks.
    page.goto(f"{base}/sky?slid={slid}&ids=1:3")
    page.wait_for_selector("body[data-sky-fallback='1']", timeout=60_000)
    expect(page.locator("#sky-fallback")).to_be_visible()
    expect(page.locator("#aladin-lite-div")).to_be_hidden()
    picture_ok(page, "#sky-fallback-image", "sky fallback")
    circles = page.locator("#sky-fallback-overlay circle.source").count()
    marks = page.locator("#sky-fallback-overlay g.mark").count()
    assert circles == n_sources, f"{circles} circles, {n_sources} sources"
    assert marks == 3, f"{marks} marks"
    expect(page.locator("#install-aladin")).to_contain_text("WISECUT_ALADIN_DIR")
    page.locator("#sky-fallback").scroll_into_view_if_needed()
    shot(page, "sky_fallback")
    browser.close()

assert blocked, "the sky view should have tried to load Aladin Lite from outside"
print(f"RGB caption: {caption}")
print(f"{len(blocked)} requests blocked (outside {origin})")
print(f"e2e pages: ok, {len(shots)} screenshots in {outdir}")
