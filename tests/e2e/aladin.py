"""End-to-end test of the Aladin Lite page in headless Chromium (Playwright
driving Debian's /usr/bin/chromium, WebGL2 through SwiftShader). Every request
that does not go to BASE_URL's origin is aborted and counted, so the page must
work with no network: Aladin Lite itself, the FITS frame, the catalogue and
the MOCs all come from the server under test.

Checks: the page reaches data-aladin-ready (and not data-aladin-error), the
catalogue layer holds EXPECTED_SOURCES sources, and the WebGL view is not
blank (pixel spread of the view's screenshot).

Usage: aladin.py BASE_URL PAGE_PATH EXPECTED_SOURCES SCREENSHOT_DIR CHROMIUM
Prints "e2e aladin: ok, N sources" and exits 0 on success.
"""

import base64
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from playwright.sync_api import sync_playwright

LOAD_TIMEOUT_MS = 90_000  # SwiftShader + wasm compile on 2 cores is slow
console_lines = []  # browser console, printed when the test fails

# Grey-level statistics of a PNG (base64), computed by the browser itself so
# the test needs no imaging library: standard deviation, the share of the
# commonest grey level, and the number of distinct grey levels.
PIXEL_STATS = """async (b64) => {
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
  const bmp = await createImageBitmap(new Blob([bytes], {type: 'image/png'}));
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(bmp, 0, 0);
  const d = ctx.getImageData(0, 0, bmp.width, bmp.height).data;
  const hist = new Array(256).fill(0);
  let sum = 0, sum2 = 0;
  const n = d.length / 4;
  for (let i = 0; i < d.length; i += 4) {
    const g = Math.round(0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]);
    hist[g]++; sum += g; sum2 += g * g;
  }
  const mean = sum / n;
  return {stddev: Math.sqrt(Math.max(0, sum2 / n - mean * mean)),
          flat: Math.max(...hist) / n,
          distinct: hist.filter(h => h > 0).length};
}"""


def origin(url):
    u = urlsplit(url)
    return f"{u.scheme}://{u.netloc}"


def main():
    if len(sys.argv) != 6:
        sys.exit("usage: aladin.py BASE_URL PAGE_PATH EXPECTED_SOURCES SCREENSHOT_DIR CHROMIUM")
    base, page_path, expected, outdir, chromium = sys.argv[1:6]
    expected = int(expected)
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    base = base.rstrip("/")
    allowed = origin(base)
    blocked = []
    t0 = time.monotonic()

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=[
                "--no-sandbox",
                "--disable-dev-shm-usage",
                "--use-angle=swiftshader",
                "--enable-unsafe-swiftshader",
                "--ignore-gpu-blocklist",
            ],
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})

            def route(r):
                url = r.request.url
                if url.startswith("data:") or url.startswith("blob:") or origin(url) == allowed:
                    r.continue_()
                else:
                    blocked.append(url)
                    r.abort()

            page.route("**/*", route)
            page.on("console", lambda m: console_lines.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console_lines.append(f"pageerror: {e}"))

            page.goto(base + page_path)
            try:
                page.wait_for_function(
                    "() => document.body.dataset.aladinReady === '1'"
                    " || !!document.body.dataset.aladinError",
                    timeout=LOAD_TIMEOUT_MS,
                )
            except Exception:
                page.screenshot(path=str(outdir / "aladin_01_view.png"))
                raise AssertionError("Aladin view neither ready nor failed in time")
            t_ready = time.monotonic() - t0
            # Give the WebGL view a few frames to paint the FITS tiles.
            page.wait_for_timeout(1500)
            page.screenshot(path=str(outdir / "aladin_01_view.png"))

            state = page.evaluate(
                "() => ({ready: document.body.dataset.aladinReady || null,"
                " error: document.body.dataset.aladinError || null,"
                " sources: document.body.dataset.catalogSources || null,"
                " inView: document.body.dataset.catalogInView || null,"
                " webgl2: !!document.createElement('canvas').getContext('webgl2')})"
            )
            assert not state["error"], f"page reported: {state['error']}"
            assert state["ready"] == "1", state
            n = int(state["sources"])
            assert n == expected, f"catalogue has {n} sources, expected {expected}"
            n_in_view = int(state["inView"] or 0)
            assert n_in_view >= 1, f"no catalogue source projects inside the view: {state}"

            # The view is WebGL: take its pixels from a screenshot (a canvas
            # readback would need preserveDrawingBuffer). Only the central
            # half of the view is used, away from Aladin's HTML widgets. A
            # blank view is one flat colour with a few catalogue markers on
            # it; the FITS frame makes nearly every pixel different.
            box = page.locator("#aladin-lite-div, .aladin-view").first.bounding_box()
            clip = {"x": box["x"] + box["width"] / 4, "y": box["y"] + box["height"] / 4,
                    "width": box["width"] / 2, "height": box["height"] / 2}
            png = base64.b64encode(page.screenshot(clip=clip)).decode()
            stat = page.evaluate(PIXEL_STATS, png)
            stddev, flat, distinct = stat["stddev"], stat["flat"], stat["distinct"]
            assert stddev > 8 and flat < 0.5 and distinct > 50, (
                f"view looks blank: stddev={stddev:.1f}, commonest grey"
                f" {flat:.0%} of pixels, {distinct} grey levels")
        finally:
            browser.close()

    print(f"requests blocked (outside {allowed}): {len(blocked)}")
    for u in sorted(set(blocked))[:10]:
        print(f"  blocked: {u}")
    print(f"ready after {t_ready:.1f} s; view centre stddev {stddev:.1f},"
          f" {distinct} grey levels, commonest {flat:.0%};"
          f" {n_in_view}/{n} sources in view")
    print(f"e2e aladin: ok, {n} sources")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # noqa: BLE001 - report and fail
        for line in console_lines[-40:]:
            print(f"  console {line}", file=sys.stderr)
        print(f"e2e aladin: FAILED: {e}", file=sys.stderr)
        sys.exit(1)
