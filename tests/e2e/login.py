"""End to end: signing in, switching project and the account page in
headless Chromium at 1366x1000. The private frame's page is a 404 until
owner1 signs in (from the header's "Log in", coming back to it), is a 404
again while owner1 works in "public data only", and is shown again once the
header's project selector is back on SECRET. The account page makes an API
token (secret shown once) and log-out makes the header offer "Log in".

The ReducedScienceFrame table (filtered on the private file name) and the
lineage tree of CHILD_ID, a public frame made from the private one, follow
the project: in "public data only" the table has no such row and the tree
shows a "restricted ReducedScienceFrame" leaf; in SECRET both show the file.

Usage: login.py BASE_URL PRIVATE_ID PRIVATE_FILENAME PASSWORD CHILD_ID SCREENSHOT_DIR CHROMIUM
Prints "e2e login: ok, N screenshots" and exits 0 on success.
"""

import sys
from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import expect, sync_playwright

if len(sys.argv) != 8:
    sys.exit(
        "usage: login.py BASE_URL PRIVATE_ID PRIVATE_FILENAME PASSWORD CHILD_ID SCREENSHOT_DIR CHROMIUM"
    )
base, private_id, private_filename, password, child_id, outdir, chromium = sys.argv[1:8]
outdir = Path(outdir)
outdir.mkdir(parents=True, exist_ok=True)
shots = []


def shot(page, name, header_only=False):
    path = outdir / f"login_{len(shots) + 1:02d}_{name}.png"
    if header_only:
        page.locator("header.top").screenshot(path=str(path))
    else:
        page.screenshot(path=str(path))
    shots.append(path)


with sync_playwright() as p:
    browser = p.chromium.launch(
        executable_path=chromium,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    )
    page = browser.new_page(viewport={"width": 1366, "height": 1000})
    private = f"{base}/object/{private_id}"

    # Anonymous: the private frame answers as a missing object.
    r = page.goto(private)
    assert r.status == 404, f"anonymous: {r.status}"
    expect(page.locator("#login")).to_have_text("Log in")
    shot(page, "header_anonymous", header_only=True)

    # Log in from the header; back on the same page, which now shows it.
    page.click("#login")
    expect(page.locator("#login-form")).to_be_visible()
    page.fill("#login-user", "owner1")
    page.fill("#login-password", "wrong password")
    page.click("#login-submit")
    expect(page.locator("#error")).to_contain_text("wrong user name or password")
    page.fill("#login-password", password)
    with page.expect_navigation():
        page.click("#login-submit")
    assert page.url == private, page.url
    expect(page.locator("#user")).to_have_text("owner1")
    expect(page.locator("main")).to_contain_text(private_filename)
    expect(page.locator("#context-project")).to_have_value("SECRET")
    shot(page, "header_signed_in", header_only=True)
    shot(page, "private_frame_in_SECRET")

    # Public data only: the page is a 404 again, the header says so.
    with page.expect_navigation():
        page.select_option("#context-project", "")
    assert page.url == private, page.url
    expect(page.locator("#context-project")).to_have_value("")
    r = page.goto(private)
    assert r.status == 404, f"public data only: {r.status}"
    table = f"{base}/table/ReducedScienceFrame?q={quote('filename = ' + private_filename)}"
    child = f"{base}/object/{child_id}"
    page.goto(table)
    row_link = page.locator(f"main table a[href='/object/{private_id}']")
    expect(row_link).to_have_count(0)
    page.goto(child)
    up = page.locator("li.node.restricted[data-class=ReducedScienceFrame]")
    expect(up.first).to_contain_text("restricted ReducedScienceFrame")
    expect(page.locator("main")).not_to_contain_text(private_filename)
    shot(page, "lineage_public_only")

    # Back in SECRET through the selector.
    with page.expect_navigation():
        page.select_option("#context-project", "SECRET")
    r = page.goto(private)
    assert r.status == 200, f"back in SECRET: {r.status}"
    expect(page.locator("main")).to_contain_text(private_filename)
    page.goto(table)
    expect(row_link.first).to_be_visible()
    page.goto(child)
    expect(page.locator("li.node.restricted")).to_have_count(0)
    expect(page.locator("main")).to_contain_text(private_filename)
    shot(page, "lineage_in_SECRET")

    # The account page: projects, a new token shown once, then listed.
    page.click("#user")
    expect(page.locator("#projects")).to_contain_text("SECRET")
    page.fill("#token-label", "e2e laptop")
    with page.expect_navigation():
        page.click("#token-form button")
    secret = page.locator("#new-token-secret").inner_text()
    assert secret.startswith("wct_"), secret
    expect(page.locator("#tokens")).to_contain_text("e2e laptop")
    shot(page, "account_new_token")
    page.goto(f"{base}/account")
    assert secret not in page.content(), "the secret is shown once only"

    # Log out: the header offers "Log in", the frame is gone.
    with page.expect_navigation():
        page.click("#logout-form button")
    expect(page.locator("#login")).to_have_text("Log in")
    r = page.goto(private)
    assert r.status == 404, f"logged out: {r.status}"
    browser.close()

print(f"e2e login: ok, {len(shots)} screenshots in {outdir}")
