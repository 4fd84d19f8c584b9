#!/usr/bin/env python3
"""Load and hostility test of a release server on the sample survey (not a CI
step: it takes a few minutes and wants a quiet machine).

    python3 benches/load_test.py [--work DIR] [--seconds 60] [--connections 64]
                                 [--memory-mib 2048]

What it does, from a clean checkout (nothing installed by hand; wrk comes
from Debian's package, installed with apt-get when missing and run as root;
the helpers shared with cutout_bench.py are in benches/benchlib.py):

1. Builds wisecut in release and the `small` sample survey into WORK/sample
   (reused when there), then starts `wisecut serve` on it with the default
   per-client limits off (wrk is one client) and `--memory-mib` as given.
2. Mixed workload: `wrk -t2 -cCONNECTIONS` for SECONDS over a rotating list
   of real requests — home, table pages and CSV exports, object views,
   thumbnails, FITS/PNG/JPEG cutouts at random positions, image-view
   renders, SIA queries, DataLink — sampling the server's resident memory
   (RSS) every second. Prints throughput, latency percentiles and status
   counts; a 5xx fails the run.
3. Oversized burst *during* the mixed load (20 s in): 16 concurrent
   cutouts of the largest frame at its full size (FITS and PNG), two
   dependency-cutout jobs of every source of the largest SourceList at
   400 px, and two whole-frame RGB pictures; every answer must be 200, 202,
   503 + Retry-After or a 4xx naming a limit, never a 5xx nor a dead server,
   and the RSS sampled every second must stay under --memory-mib.
4. Idle: RSS 10 s after the load (memory returned to the OS by mimalloc).
5. Per-client limits on: the same server restarted with the defaults,
   a burst of 200 requests from one client gets 429s with Retry-After and
   pages still answer.

Everything is written to WORK/load_results.json.
"""

import argparse
import concurrent.futures
import json
import random
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from benchlib import free_port, rss_kb, wrk

ROOT = Path(__file__).resolve().parent.parent


def get(addr, path, timeout=60):
    """(status, headers, body) of a GET; HTTP errors are answers too."""
    return request(addr, "GET", path, timeout)


def request(addr, method, path, timeout=60):
    """(status, headers, body) of a request without a body."""
    req = urllib.request.Request(f"http://{addr}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def table(addr, name, cols, size=1000):
    status, _, body = get(addr, f"/table/{name}?format=json&size={size}&cols={cols}")
    assert status == 200, (name, status, body[:200])
    return json.loads(body)["rows"]


def start(wisecut, sample, addr, extra):
    cmd = [str(wisecut), "serve", "--db", f"sqlite://{sample}/wisecut.db?mode=rwc",
           "--data", str(sample / "data"), "--cache", str(sample / "load-cache"),
           "--bind", addr] + extra
    server = subprocess.Popen(cmd, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    for _ in range(200):
        try:
            urllib.request.urlopen(f"http://{addr}/health", timeout=1).read()
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise SystemExit("load: server did not start")


def workload(addr, rng):
    """A list of real request paths over the survey's objects."""
    cols = "object_id,naxis1,naxis2,ra,dec"
    frames = table(addr, "ReducedScienceFrame", cols) + table(addr, "CoaddedRegriddedFrame", cols)
    raws = table(addr, "RawScienceFrame", "object_id")
    lists = table(addr, "SourceList", "slid,n_sources")
    paths = []
    for _ in range(400):
        f = rng.choice(frames)
        fid, w, h = f["object_id"], f["naxis1"], f["naxis2"]
        x, y = rng.randint(1, w), rng.randint(1, h)
        size = rng.choice([32, 64, 128, 240])
        kind = rng.random()
        if kind < 0.30:
            paths.append(f"/api/cutout?frame={fid}&x={x}&y={y}&size={size}")
        elif kind < 0.45:
            paths.append(f"/api/cutout?frame={fid}&x={x}&y={y}&size={size}&format=png&stretch=asinh")
        elif kind < 0.55:
            paths.append(f"/api/cutout?frame={fid}&x={x}&y={y}&size={size}&format=jpeg")
        elif kind < 0.62:
            paths.append(f"/thumb/{fid}")
        elif kind < 0.68:
            paths.append(f"/render/{fid}?x={max(0, x - 128)}&y={max(0, y - 128)}&width=256&height=256&format=png")
        elif kind < 0.74:
            paths.append(f"/object/{rng.choice(raws)['object_id']}")
        elif kind < 0.80:
            paths.append(f"/table/ReducedScienceFrame?q=filter+%3D+{rng.choice('gri')}&sort=-mjd_obs")
        elif kind < 0.84:
            paths.append(f"/table/SourceList/{rng.choice(lists)['slid']}?format=csv")
        elif kind < 0.90:
            ra, dec = f["ra"], f["dec"]
            paths.append(f"/vo/sia/query?POS=CIRCLE+{ra}+{dec}+0.05&MAXREC=50")
        elif kind < 0.92:
            paths.append(f"/vo/links?ID=ivo://wisecut/obj?{fid}")
        elif kind < 0.94:
            slid = rng.choice(lists)["slid"]
            paths.append(f"/deps?slid={slid}&ids={rng.randint(1, 5)}:{rng.randint(6, 12)}")
        elif kind < 0.97:
            paths.append("/")
        else:
            paths.append("/tables")
    return paths, frames, lists


def burst(addr, uris, pid):
    peak = [rss_kb(pid)]
    done = [False]

    def sample():
        while not done[0]:
            peak[0] = max(peak[0], rss_kb(pid))
            time.sleep(0.05)

    with concurrent.futures.ThreadPoolExecutor(len(uris) + 1) as pool:
        watcher = pool.submit(sample)
        answers = list(pool.map(lambda mu: request(addr, mu[0], mu[1], timeout=120), uris))
        done[0] = True
        watcher.result()
    counts = {}
    for status, headers, body in answers:
        counts[status] = counts.get(status, 0) + 1
        if status >= 500 and status != 503:
            raise SystemExit(f"load: burst got {status}: {body[:300]!r}")
        if status == 503 and "retry-after" not in headers:
            raise SystemExit("load: a 503 without Retry-After")
    return {"statuses": counts, "peak_rss_mb": peak[0] / 1024}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default=str(ROOT / "target" / "load"))
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--memory-mib", type=int, default=2048)
    ap.add_argument("--row-cache-mib", type=int, default=None,
                    help="the server's hot-row cache (default: its own default, 256); "
                         "0 shows what the requests alone keep")
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(20081121)

    print("load: cargo build --release", flush=True)
    subprocess.run(["cargo", "build", "--release", "--bin", "wisecut"], cwd=ROOT, check=True)
    wisecut = ROOT / "target" / "release" / "wisecut"
    sample = work / "sample"
    if not (sample / "wisecut.db").exists():
        print("load: building the small sample survey", flush=True)
        subprocess.run([str(wisecut), "sample", "--size", "small", "--out", str(sample)], check=True)
    shutil.rmtree(sample / "load-cache", ignore_errors=True)

    results = {}
    addr = f"127.0.0.1:{free_port()}"
    extra = ["--client-concurrency", "0", "--client-rate", "0", "--memory-mib", str(a.memory_mib)]
    if a.row_cache_mib is not None:
        extra += ["--row-cache-mib", str(a.row_cache_mib)]
    results["server_flags"] = extra
    server = start(wisecut, sample, addr, extra)
    try:
        pid = server.pid
        paths, frames, lists = workload(addr, rng)
        results["rss_mb_start"] = rss_kb(pid) / 1024
        big = max(frames, key=lambda f: f["naxis1"] * f["naxis2"])
        fid, w, h = big["object_id"], big["naxis1"], big["naxis2"]
        side = min(w, h)
        biggest = max(lists, key=lambda l: l.get("n_sources") or 0)
        burst_uris = (
            [("GET", f"/api/cutout?frame={fid}&x={w // 2}&y={h // 2}&size={side - 2 - i}")
             for i in range(8)]
            + [("GET", f"/api/cutout?frame={fid}&x={w // 2}&y={h // 2}&size={side - 2 - i}"
                       f"&format=png&stretch=asinh") for i in range(8)]
            + [("POST", f"/api/deps?slid={biggest['slid']}&ids=1:{biggest['n_sources']}"
                        f"&size={400 + i}") for i in range(2)]
            + [("POST", f"/api/rgb?red={fid}&green={fid}&blue={fid}&method={m}")
               for m in ("lupton", "stiff")]
        )
        print(f"load: mixed workload, {len(paths)} distinct requests, {a.seconds:.0f} s, "
              f"{a.connections} connections (wrk); at 20 s a burst of {len(burst_uris)} "
              f"oversized requests", flush=True)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            def later():
                time.sleep(20)
                return burst(addr, burst_uris, pid)
            pending = pool.submit(later)
            results["mixed"] = wrk(addr, paths, work / "load_urls.txt", a.seconds,
                                   a.connections, pid=pid, timeout_s=30)
            results["burst"] = pending.result()
        m = results["mixed"]
        print(f"load: {m['throughput_per_s']:.0f} req/s, p50 {m['latency_ms']['p50']:.1f} ms, "
              f"p99 {m['latency_ms']['p99']:.1f} ms, statuses {m['statuses']}, "
              f"RSS max {m['rss_mb']['max']:.0f} MB (budget {a.memory_mib} MiB)", flush=True)
        print(f"load: burst during the load {results['burst']}", flush=True)
        bad = {s: n for s, n in m["statuses"].items() if int(s) >= 500 and int(s) != 503}
        if bad:
            raise SystemExit(f"load: server errors under the mixed workload: {bad}")
        if max(m["rss_mb"]["max"], results["burst"]["peak_rss_mb"]) > a.memory_mib * 1.048576:
            raise SystemExit("load: resident memory went over the budget")
        time.sleep(10)
        results["rss_mb_idle_after"] = rss_kb(pid) / 1024
        print(f"load: RSS 10 s after the load {results['rss_mb_idle_after']:.0f} MB "
              f"(start {results['rss_mb_start']:.0f} MB)", flush=True)
        alive, _, _ = get(addr, "/health")
        assert alive == 200, "the server did not survive"
    finally:
        server.terminate()
        server.wait()

    # Per-client limits at their defaults: one client's burst of 200.
    addr = f"127.0.0.1:{free_port()}"
    server = start(wisecut, sample, addr, [])
    try:
        f = frames[0]
        uris = [f"/api/cutout?frame={f['object_id']}&x={rng.randint(1, f['naxis1'])}"
                f"&y={rng.randint(1, f['naxis2'])}&size=32" for _ in range(200)]
        counts = {}
        retry = set()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            for status, headers, _ in pool.map(lambda u: get(addr, u), uris):
                counts[status] = counts.get(status, 0) + 1
                if status == 429:
                    retry.add(headers.get("retry-after"))
        page, _, _ = get(addr, "/")
        results["one_client_burst"] = {"statuses": counts, "retry_after": sorted(r for r in retry if r),
                                       "home_page_after": page}
        print(f"load: one client, 200 requests, 8 at a time, default limits: {counts}, "
              f"Retry-After {sorted(r for r in retry if r)}, home page {page}", flush=True)
    finally:
        server.terminate()
        server.wait()

    name = "load_results.json" if a.row_cache_mib is None else f"load_results_rows{a.row_cache_mib}.json"
    (work / name).write_text(json.dumps(results, indent=2))
    print(f"load: results in {work / name}")


if __name__ == "__main__":
    sys.exit(main())
