#!/usr/bin/env python3
"""Cutouts from an S3 store with the block cache warm, against the same
frames on a local disk, in one run.

    python3 benches/s3_cutouts.py [--work DIR] [--size 6000] [--seconds 15]
                                  [--connections 8] [--block-cache-mib 1024]

What it does, from a clean checkout (nothing installed by hand):

1. Re-runs itself in target/s3-bench-venv (astropy, moto[server] with
   boto3, from PyPI; benches/s3_requirements.txt) and builds wisecut in
   release (or uses WISECUT_BIN).
2. Writes the frames of benches/cutout_bench.py (SIZE x SIZE float32, TAN
   WCS): plain and RICE-compressed in 256x256 tiles; copies them into two
   data roots, `near` (a directory) and `far`.
3. Starts moto's S3 server on loopback, uploads `far`'s files to a bucket
   (public-read, read anonymously), ingests both roots into a fresh SQLite
   catalogue and moves `far` to `s3://bench/far?endpoint=...` with
   `wisecut root set`.
4. Starts `wisecut serve` with `--block-cache-mib`, warms the block cache
   with a grid of cutouts covering every `far` frame (every row and tile
   fetched once), then runs `wrk -t2 -cCONNECTIONS` for SECONDS per frame
   over cutouts at fresh random positions (so each cutout is made, not read
   from the product cache), first from `far`, then from `near`.
5. Prints cutouts/s, latency and the ratio S3 / local, the bytes moto
   served (its access log), and writes WORK/results.json.

Ratios are what to read: this machine is shared and noisy.
"""

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import benchlib

ROOT = Path(__file__).resolve().parent.parent
benchlib.ensure_venv(__file__, "s3-bench-venv", "s3_requirements.txt")

import numpy as np  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.wcs import WCS  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cutout_bench  # noqa: E402  (its data set and header)

CUT = 240


def args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, default=ROOT / "target" / "s3-bench")
    p.add_argument("--size", type=int, default=6000)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--block-cache-mib", type=int, default=1024)
    p.add_argument("--positions", type=int, default=20000)
    return p.parse_args()


def wait_http(url, what, proc):
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"bench: {what} exited ({proc.returncode})")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: {what} did not start")


def main():
    a = args()
    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    wisecut = os.environ.get("WISECUT_BIN")
    if not wisecut:
        print("bench: building wisecut (release)", flush=True)
        subprocess.run(["cargo", "build", "-q", "--release", "--bin", "wisecut"], cwd=ROOT,
                       check=True)
        wisecut = str(ROOT / "target" / "release" / "wisecut")
    files = cutout_bench.write_data(work / "data", a.size)
    frames = {"plain": files["plain"], "rice_tiles": files["rice_tiles"]}
    # File names are unique in a catalogue and identical files are one
    # frame: each root's copies carry its name, in the file name and in a
    # header card.
    for root in ("near", "far"):
        d = work / root
        d.mkdir(exist_ok=True)
        for name, f in frames.items():
            out = d / f"{root}_{f.name}"
            if not out.exists():
                with fits.open(f) as hl:
                    hl[-1].header["ROOTNAME"] = root
                    hl.writeto(out)

    db = work / "bench.db"
    for p in (db, work / "bench.db-wal", work / "bench.db-shm"):
        p.unlink(missing_ok=True)
    shutil.rmtree(work / "cache", ignore_errors=True)
    db_url = f"sqlite://{db}?mode=rwc"
    for root in ("near", "far"):
        manifest = {
            "creator": "bench",
            "project": "BENCH",
            "frames": [{"key": f"{root}_{k}", "class": "CoaddedRegriddedFrame",
                        "path": f"{root}_{f.name}", "deps": []} for k, f in frames.items()],
        }
        m = work / root / "manifest.json"
        m.write_text(json.dumps(manifest))
        subprocess.run([wisecut, "ingest", str(work / root), "--manifest", str(m), "--db", db_url,
                        "--data", str(work / "data"), "--root", f"{root}={work / root}"],
                       check=True, capture_output=True)

    moto_port = benchlib.free_port()
    moto_log = open(work / "moto.log", "w")
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(moto_port)], stdout=moto_log, stderr=subprocess.STDOUT)
    server = None
    try:
        wait_http(f"http://127.0.0.1:{moto_port}/", "moto", moto)
        import boto3

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}",
                          region_name="us-east-1", aws_access_key_id="bench",
                          aws_secret_access_key="bench")
        s3.create_bucket(Bucket="bench")
        for f in frames.values():
            s3.upload_file(str(work / "far" / f"far_{f.name}"), "bench", f"far/far_{f.name}",
                           ExtraArgs={"ACL": "public-read"})
        location = (f"s3://bench/far?endpoint=http://127.0.0.1:{moto_port}"
                    "&region=us-east-1&skip_signature=true")
        subprocess.run([wisecut, "root", "set", "far", location, "--db", db_url, "--data",
                        str(work / "data")], check=True, capture_output=True)

        port = benchlib.free_port()
        addr = f"127.0.0.1:{port}"
        server = subprocess.Popen(
            [wisecut, "serve", "--db", db_url, "--data", str(work / "data"), "--cache",
             str(work / "cache"), "--bind", addr, "--client-concurrency", "0",
             "--client-rate", "0", "--block-cache-mib", str(a.block_cache_mib)],
            stderr=open(work / "serve.log", "w"),
        )
        wait_http(f"http://{addr}/health", "wisecut", server)
        with sqlite3.connect(db) as c:
            ids = {(store, fname.removesuffix(".fits").removeprefix(f"{store}_")): fid
                   for fid, store, fname in
                   c.execute("SELECT object_id, store, filename FROM frame")}

        n = a.size
        wcs = WCS(cutout_bench.header(n))

        def url(fid, x, y):
            ra, dec = wcs.all_pix2world([[x, y]], 0)[0]
            return f"/api/cutout?frame={fid}&ra={float(ra)!r}&dec={float(dec)!r}&size={CUT}&format=fits"

        results = {"size": n, "cutout": CUT, "connections": a.connections,
                   "block_cache_mib": a.block_cache_mib}
        # Warm: a grid of cutouts whose boxes cover every pixel of the far
        # frames, so every row and tile is in the block cache.
        centres = list(np.arange(CUT / 2, n - CUT / 2 + CUT, CUT - 8).clip(CUT / 2, n - CUT / 2))
        t = time.perf_counter()
        warm = 0
        for name in frames:
            fid = ids[("far", name)]
            for y in centres:
                for x in centres:
                    urllib.request.urlopen(f"http://{addr}{url(fid, x, y)}").read()
                    warm += 1
        results["warm_s"] = time.perf_counter() - t
        results["warm_cutouts"] = warm
        print(f"bench: {warm} warm-up cutouts from S3 in {results['warm_s']:.1f} s", flush=True)
        served = moto_requests(work / "moto.log")

        rng = np.random.default_rng(500)
        xy = rng.uniform(CUT / 2 + 2, n - CUT / 2 - 2, size=(a.positions, 2))
        for name in frames:
            for root in ("far", "near"):
                fid = ids[(root, name)]
                paths = [url(fid, x, y) for x, y in xy]
                key = f"{root}_{name}"
                print(f"bench: {key} for {a.seconds:.0f} s (wrk, {a.connections} connections)",
                      flush=True)
                results[key] = benchlib.wrk(addr, paths, work / f"urls_{key}.txt", a.seconds,
                                            a.connections, pid=server.pid)
        after = moto_requests(work / "moto.log")
        results["s3_requests_during_wrk"] = {k: after[k] - served[k] for k in after}
        results["s3_requests_warm"] = served
    finally:
        if server:
            server.terminate()
            server.wait()
        moto.terminate()
        moto.wait()
    (work / "results.json").write_text(json.dumps(results, indent=2))

    print(f"\n=== {n}x{n} float32, {CUT}x{CUT} FITS cutouts, wrk -t2 -c{a.connections}, "
          f"block cache {a.block_cache_mib} MiB warm ===")
    for name in frames:
        far, near = results[f"far_{name}"], results[f"near_{name}"]
        errs = sum(far["errors"].values()) + sum(near["errors"].values())
        print(f"{name:<11} S3 {far['throughput_per_s']:7.0f} /s (p50 {far['latency_ms']['p50']:6.2f} ms)"
              f"   local {near['throughput_per_s']:7.0f} /s (p50 {near['latency_ms']['p50']:6.2f} ms)"
              f"   S3/local {far['throughput_per_s'] / near['throughput_per_s']:5.2f}   errors {errs}")
    w, d = results["s3_requests_warm"], results["s3_requests_during_wrk"]
    print(f"S3 requests: {w['GET']} GET and {w['HEAD']} HEAD while warming, "
          f"{d['GET']} GET and {d['HEAD']} HEAD (revalidations) during the wrk runs")
    print(f"command: {far['command']}")


def moto_requests(log):
    """GET and HEAD requests in moto's access log (werkzeug's, coloured)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", Path(log).read_text(errors="replace"))
    n = {"GET": 0, "HEAD": 0}
    for line in text.splitlines():
        m = re.search(r'"(GET|HEAD) /bench/', line)
        if m:
            n[m.group(1)] += 1
    return n

if __name__ == "__main__":
    main()
