"""End-to-end test of wisecut's SAMP buttons (static/samp.js) against real
SAMP clients: an astropy hub with the Web Profile on port 21012 (consent
auto-accepted), TOPCAT under Xvfb registered through the Standard Profile,
and a small astropy client that records what it is sent. Headless Chromium
opens the page, clicks the first table.load.votable button (and the first
image.load.fits button, if any) and waits for the status the script writes.

Then a TAP query result (/vo/tap/sync) is sent to TOPCAT directly as
table.load.votable; TOPCAT must load it (samp.ok).

Passes when TOPCAT replied samp.ok to table.load.votable, the recording
client got a URL that downloads and parses with
astropy.io.votable.parse(verify='exception'), and (if the page has an image
button) a FITS URL that astropy.io.fits opens.

Usage: samp.py BASE_URL PAGE_PATH SCREENSHOT_DIR CHROMIUM
Environment: TOPCAT (default "topcat"), XVFB (default "Xvfb"),
WISECUT_SAMP_HUB=jsamp to use JSAMP's hub (the one inside TOPCAT and Aladin
that desktop users actually run, started as "topcat -jsamp hub" with Web
Profile consent switched off) instead of astropy's.
Prints "e2e samp: ok, TOPCAT replied samp.ok" and exits 0 on success.
Only one run at a time per machine: the Web Profile port is fixed (21012).
"""

import io
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
import urllib.parse
from urllib.parse import urlsplit

import warnings

# astropy.samp is deprecated since astropy 8.0 in favour of pyvo.samp (same
# code, moved); use pyvo's when it is installed.
try:
    from pyvo.samp import SAMPHubServer, SAMPIntegratedClient, WebProfileDialog
    from pyvo.samp import conf as samp_conf
except ImportError:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from astropy.samp import SAMPHubServer, SAMPIntegratedClient, WebProfileDialog
        from astropy.samp import conf as samp_conf

# No start-up probe of an internet host by the hub and client.
samp_conf.use_internet = False
logging.getLogger("astropy").setLevel(logging.WARNING)

from astropy.io import fits, votable  # noqa: E402
from playwright.sync_api import sync_playwright  # noqa: E402

HARD_TIMEOUT_S = int(os.environ.get("WISECUT_SAMP_TIMEOUT", "120"))
WEB_PORT = 21012
T0 = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - T0:6.1f}s] {msg}", flush=True)


class AutoConsent(WebProfileDialog):
    """Web Profile consent 'dialog' that accepts every registration; the hub
    hands requests over through queue_request/queue_result, which a thread
    polls via handle_queue()."""

    def __init__(self):
        self.requests = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def show_dialog(self, samp_name, details, client, origin):
        self.requests.append({"name": samp_name, "client": client, "origin": origin})
        self.consent()

    def _run(self):
        while not self._stop.is_set():
            self.handle_queue()
            time.sleep(0.05)

    def start(self):
        self._thread.start()

    def stop(self):
        self._stop.set()


class Recorder:
    """A SAMP client that accepts table.load.votable and image.load.fits,
    remembers each message and replies samp.ok."""

    MTYPES = ("table.load.votable", "image.load.fits")

    def __init__(self):
        self.client = SAMPIntegratedClient(
            name="wisecut-e2e-recorder",
            description="records messages for the wisecut SAMP test",
            addr="127.0.0.1",
        )
        self.got = {m: [] for m in self.MTYPES}
        self.cond = threading.Condition()

    def _on_call(self, private_key, sender_id, msg_id, mtype, params, extra):
        with self.cond:
            self.got[mtype].append(dict(params))
            self.cond.notify_all()
        self.client.reply(msg_id, {"samp.status": "samp.ok", "samp.result": {}})

    def connect(self):
        self.client.connect()
        for m in self.MTYPES:
            self.client.bind_receive_call(m, self._on_call)

    def wait_for(self, mtype, n, timeout):
        with self.cond:
            self.cond.wait_for(lambda: len(self.got[mtype]) >= n, timeout=timeout)
            return list(self.got[mtype])

    def disconnect(self):
        if self.client.is_connected:
            self.client.disconnect()


def port_free(port):
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def start_xvfb(workdir):
    """Starts Xvfb on a free display (it reports the number on a pipe)."""
    r, w = os.pipe()
    proc = subprocess.Popen(
        [os.environ.get("XVFB", "Xvfb"), "-displayfd", str(w), "-screen", "0",
         "1280x1024x24", "-nolisten", "tcp"],
        pass_fds=(w,), stdout=subprocess.DEVNULL,
        stderr=open(workdir / "xvfb.log", "wb"), start_new_session=True)
    os.close(w)
    with os.fdopen(r) as f:
        display = f.readline().strip()
    if not display:
        raise RuntimeError("Xvfb did not start; see " + str(workdir / "xvfb.log"))
    return proc, ":" + display


def stop(proc, name, grace=8):
    """Ends one process we started (and its process group), politely first."""
    # The group outlives the launcher: "topcat" is a shell script whose java
    # child must be gone too before the next run takes port 21012.
    if proc is None:
        return

    def group_alive():
        try:
            os.killpg(proc.pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True

    if not group_alive():
        proc.poll()
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + grace
    while group_alive() and time.monotonic() < deadline:
        proc.poll()  # reap the launcher so its group can empty
        time.sleep(0.1)
    if group_alive():
        log(f"{name} ignored SIGTERM; killing")
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


def grab_screen(display, path):
    """Saves the Xvfb screen (TOPCAT's window, showing the loaded table)."""
    try:
        from PIL import ImageGrab

        time.sleep(1.0)  # let TOPCAT repaint its table list
        ImageGrab.grab(xdisplay=display).save(path)
    except Exception as e:  # noqa: BLE001 - a missing screenshot is no failure
        log(f"no TOPCAT screenshot: {e}")


def fetch(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def wait_for_client(recorder, samp_name, timeout, proc):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{samp_name} exited with status {proc.returncode}")
        for cid in recorder.client.get_registered_clients():
            meta = recorder.client.get_metadata(cid)
            if str(meta.get("samp.name", "")).lower() == samp_name:
                return cid
        time.sleep(0.5)
    return None


# The status element samp.js writes to, found the same way samp.js does.
FIND_STATUS = """btn => {
  const byId = btn.id && document.querySelector(
      `[data-samp-status-for="${CSS.escape(btn.id)}"]`);
  if (byId) return byId;
  for (let n = btn.nextElementSibling; n; n = n.nextElementSibling)
    if (n.classList.contains('samp-status')) return n;
  return btn.parentElement && btn.parentElement.querySelector('.samp-status');
}"""


def click_and_wait(page, selector, timeout_ms=60_000):
    """Clicks the first SAMP button matching selector and waits for samp.js
    to finish; returns (data-samp-result, status text, per-client detail)."""
    btn = page.locator(selector).first.element_handle()
    btn.click()
    page.wait_for_function(
        f"btn => {{ const s = ({FIND_STATUS})(btn); return s && s.dataset.sampResult; }}",
        arg=btn, timeout=timeout_ms)
    return page.evaluate(
        f"""btn => {{ const s = ({FIND_STATUS})(btn);
            return [s.dataset.sampResult, s.innerText,
                    JSON.parse(s.dataset.sampDetail || '[]')]; }}""",
        btn)


def run(base, page_path, outdir, chromium, procs):
    base = base.rstrip("/")
    allowed = {urlsplit(base)._replace(path="", query="", fragment="").geturl(),
               f"http://localhost:{WEB_PORT}", f"http://127.0.0.1:{WEB_PORT}"}
    if not port_free(WEB_PORT):
        raise RuntimeError(f"port {WEB_PORT} is busy: another SAMP Web Profile hub is running")

    work = Path(tempfile.mkdtemp(prefix="wisecut-samp-"))
    procs["workdir"] = work
    lockfile = work / "samp-lock"
    # TOPCAT (JSAMP) and astropy both find the hub through SAMP_HUB, so a
    # user's ~/.samp or running desktop hub is never touched.
    os.environ["SAMP_HUB"] = "std-lockurl:" + lockfile.as_uri()

    use_jsamp = os.environ.get("WISECUT_SAMP_HUB", "astropy") == "jsamp"
    consent = None
    if use_jsamp:
        procs["jsamphub"] = subprocess.Popen(
            [os.environ.get("TOPCAT", "topcat"), "-jsamp", "hub", "-profiles", "std,web",
             "-web:auth", "true", "-mode", "no-gui"],
            stdin=subprocess.DEVNULL, stdout=open(work / "hub.log", "wb"),
            stderr=subprocess.STDOUT, start_new_session=True, cwd=work)
        deadline = time.monotonic() + 30
        while not (lockfile.exists() and lockfile.stat().st_size and not port_free(WEB_PORT)):
            if time.monotonic() > deadline or procs["jsamphub"].poll() is not None:
                raise RuntimeError("JSAMP hub did not start:\n" +
                                   (work / "hub.log").read_text(errors="replace")[-2000:])
            time.sleep(0.2)
        log(f"JSAMP hub up (web profile on {WEB_PORT}); lockfile {lockfile}")
    else:
        consent = AutoConsent()
        hub = SAMPHubServer(web_profile=True, web_profile_dialog=consent,
                            lockfile=str(lockfile), addr="127.0.0.1",
                            label="wisecut-e2e", web_port=WEB_PORT)
        hub.start(wait=False)
        procs["hub"] = hub
        consent.start()
        procs["consent"] = consent
        log(f"astropy hub up (web profile on {WEB_PORT}); lockfile {lockfile}")

    xvfb, display = start_xvfb(work)
    procs["xvfb"] = xvfb
    procs["display"] = display
    env = dict(os.environ, DISPLAY=display)
    topcat_log = open(work / "topcat.log", "wb")
    procs["topcat"] = subprocess.Popen(
        [os.environ.get("TOPCAT", "topcat"), "-nohub", "-samp"],
        env=env, stdin=subprocess.DEVNULL, stdout=topcat_log, stderr=subprocess.STDOUT,
        start_new_session=True, cwd=work)
    log(f"TOPCAT started on Xvfb {display}")

    rec = Recorder()
    rec.connect()
    procs["recorder"] = rec
    topcat_id = wait_for_client(rec, "topcat", timeout=60, proc=procs["topcat"])
    if not topcat_id:
        tail = (work / "topcat.log").read_text(errors="replace")[-3000:]
        raise RuntimeError("TOPCAT did not register with the hub in 60 s:\n" + tail)
    log(f"TOPCAT registered as {topcat_id}")

    outdir.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            blocked = []

            def route(r):
                u = urlsplit(r.request.url)
                if f"{u.scheme}://{u.netloc}" in allowed:
                    r.continue_()
                else:
                    blocked.append(r.request.url)
                    r.abort()

            page.route("**/*", route)
            page.goto(base + page_path)

            sel = 'button.samp-send[data-mtype="table.load.votable"]'
            if page.locator(sel).count() == 0:
                raise AssertionError(f"page has no {sel}")
            result, text, detail = click_and_wait(page, sel)
            log(f"table button: {result}: {text}")
            page.screenshot(path=str(outdir / "samp_01.png"), full_page=True)
            by_name = {d["name"].lower(): d for d in detail}
            assert "topcat" in by_name, f"TOPCAT not among the recipients: {text}"
            assert by_name["topcat"]["status"] == "samp.ok", f"TOPCAT replied: {text}"
            assert result == "ok", text
            if consent is not None:
                assert consent.requests and consent.requests[0]["name"] == "wisecut", \
                    consent.requests

            got = rec.wait_for("table.load.votable", 1, timeout=10)
            assert got, "recording client got no table.load.votable"
            url = got[0]["url"]
            log(f"recorder got table {got[0].get('name')!r} at {url}")
            assert url.startswith("http"), url
            vot = votable.parse(io.BytesIO(fetch(url)), verify="exception")
            table = vot.get_first_table()
            log(f"VOTable parses: {len(table.array)} rows, {len(table.fields)} columns")
            grab_screen(procs["display"], outdir / "samp_02_topcat.png")

            img_sel = 'button.samp-send[data-mtype="image.load.fits"]'
            if page.locator(img_sel).count():
                result, text, detail = click_and_wait(page, img_sel)
                log(f"image button: {result}: {text}")
                assert result == "ok", text
                got = rec.wait_for("image.load.fits", 1, timeout=10)
                assert got, "recording client got no image.load.fits"
                url = got[0]["url"]
                with fits.open(io.BytesIO(fetch(url))) as hdul:
                    shape = next((h.data.shape for h in hdul if h.data is not None), None)
                assert shape, f"{url} holds no image data"
                log(f"FITS opens: {url} {shape}")
                page.screenshot(path=str(outdir / "samp_01.png"), full_page=True)
            if blocked:
                log(f"blocked {len(blocked)} request(s) off-origin: {sorted(set(blocked))[:5]}")
        finally:
            browser.close()

    # A TAP query result, as TOPCAT gets it when a script or another tool
    # hands it on: TOPCAT itself downloads and parses the sync answer and
    # replies samp.ok only when it could load the table.
    query = urllib.parse.urlencode({
        "LANG": "ADQL",
        "QUERY": "SELECT TOP 20 o.obs_publisher_did, o.obs_collection, o.s_ra, o.s_dec, o.s_region "
                 "FROM ivoa.obscore AS o ORDER BY o.frame_id DESC",
    })
    tap_url = f"{base}/vo/tap/sync?{query}"
    reply = rec.client.call_and_wait(
        topcat_id,
        {"samp.mtype": "table.load.votable",
         "samp.params": {"url": tap_url, "name": "wisecut TAP result"}},
        timeout="60",
    )
    log(f"TOPCAT's reply to the TAP result: {reply}")
    assert reply.get("samp.status") == "samp.ok", f"TOPCAT could not load the TAP result: {reply}"
    grab_screen(procs["display"], outdir / "samp_03_topcat_tap.png")


def cleanup(procs):
    rec = procs.get("recorder")
    if rec:
        try:
            rec.disconnect()
        except Exception as e:  # noqa: BLE001
            log(f"recorder disconnect: {e}")
    stop(procs.get("topcat"), "TOPCAT")
    stop(procs.get("xvfb"), "Xvfb")
    if procs.get("consent"):
        procs["consent"].stop()
    stop(procs.get("jsamphub"), "JSAMP hub")
    hub = procs.get("hub")
    if hub is not None:
        try:
            with warnings.catch_warnings():
                # TOPCAT has already gone, so its shutdown notice fails.
                warnings.simplefilter("ignore")
                hub.stop()
        except Exception as e:  # noqa: BLE001
            log(f"hub stop: {e}")
    work = procs.get("workdir")
    if work and not os.environ.get("WISECUT_KEEP_SAMP_WORKDIR"):
        shutil.rmtree(work, ignore_errors=True)


def main():
    if len(sys.argv) != 5:
        sys.exit("usage: samp.py BASE_URL PAGE_PATH SCREENSHOT_DIR CHROMIUM")
    base, page_path, outdir, chromium = sys.argv[1:5]
    procs = {}

    # Hard limit: SIGALRM breaks out of whatever is waiting; a watchdog
    # thread ends the run if even the cleanup hangs.
    def on_alarm(signum, frame):
        raise TimeoutError(f"e2e samp exceeded {HARD_TIMEOUT_S} s")

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(HARD_TIMEOUT_S)

    def watchdog():
        time.sleep(HARD_TIMEOUT_S + 30)
        for name in ("topcat", "xvfb", "jsamphub"):
            p = procs.get(name)
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
        print("e2e samp: FAILED: hung past the hard timeout", file=sys.stderr, flush=True)
        os._exit(3)

    threading.Thread(target=watchdog, daemon=True).start()
    ok = False
    try:
        run(base, page_path, Path(outdir), chromium, procs)
        ok = True
    except Exception as e:  # noqa: BLE001
        print(f"e2e samp: FAILED: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
        work = procs.get("workdir")
        if work and (work / "topcat.log").exists():
            tail = (work / "topcat.log").read_text(errors="replace")[-2000:]
            print("--- topcat.log (tail) ---\n" + tail, file=sys.stderr)
    finally:
        signal.alarm(0)
        cleanup(procs)
    if not ok:
        sys.exit(1)
    log("cleaned up")
    print("e2e samp: ok, TOPCAT replied samp.ok to the page's table and to a TAP result")


if __name__ == "__main__":
    main()
