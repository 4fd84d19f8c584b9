#!/usr/bin/env python3
"""Cutout benchmark: wisecut over HTTP against astrocut and astropy, in one run.

    python3 benches/cutout_bench.py [--work DIR] [--size 6000] [--seconds 10]
                                    [--memory-seconds 60] [--concurrency 8]
                                    [--peer-n 40]

What it does, from a clean checkout (nothing installed by hand):

1. Creates a Python venv under target/bench-venv with astropy and astrocut
   from PyPI (benches/requirements.txt) and re-runs itself in it.
2. Builds wisecut in release and writes the benchmark data set with astropy:
   a SIZE x SIZE float32 frame with a TAN WCS, plain; the same RICE-compressed
   with row tiles (as Pan-STARRS stores its stacks); and with 256x256 tiles.
3. Ingests the three frames into a fresh SQLite catalogue and starts
   `wisecut serve` on a free port.
4. Draws random 240x240 cutout positions (the same list for every tool) and
   fires them at the server with `cargo bench --bench cutout_http` (8
   keep-alive connections by default): plain FITS for --memory-seconds while
   sampling the server's resident memory every second, then JPEG with an
   asinh stretch, row-tiled RICE and 256-tiled RICE for --seconds each. The
   server's own time per request comes from its Server-Timing header.
   Then the same plain-FITS and JPEG loads again from `wrk` (Debian's
   package, installed with apt-get when missing and run as root), a
   second process with its own event loop, `-t2 -c8` by default: numbers
   that do not depend on wisecut's own load generator.
5. Times, on the same files and positions: astropy Cutout2D (open, cut,
   write FITS to memory), astrocut fits_cut (memory_only) and astrocut
   img_cut (asinh JPEG), one call at a time.
6. Prints medians and ratios, and writes everything to WORK/results.json.

Ratios are what to read: this machine is shared and noisy.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import benchlib
from benchlib import free_port, rss_kb

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    # Imported (by s3_cutouts.py, for its data set), it runs in the
    # importer's venv.
    benchlib.ensure_venv(__file__)

import numpy as np  # noqa: E402
from astropy import units as u  # noqa: E402
from astropy.coordinates import SkyCoord  # noqa: E402
from astropy.io import fits  # noqa: E402
from astropy.nddata import Cutout2D  # noqa: E402
from astropy.wcs import WCS  # noqa: E402
from astropy.utils.exceptions import AstropyWarning  # noqa: E402
import warnings  # noqa: E402

# The benchmark header has DATE-OBS without MJD-OBS; astropy says so for
# every file it opens.
warnings.simplefilter("ignore", AstropyWarning)

CUT = 240


def args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--work", type=Path, default=ROOT / "target" / "cutout-bench")
    p.add_argument("--size", type=int, default=6000)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--memory-seconds", type=float, default=60.0)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--peer-n", type=int, default=40, help="positions timed per Python tool")
    p.add_argument("--positions", type=int, default=20000)
    return p.parse_args()


def header(n):
    h = fits.Header()
    h["CTYPE1"], h["CTYPE2"] = "RA---TAN", "DEC--TAN"
    h["CRVAL1"], h["CRVAL2"] = 210.5, 54.3
    h["CRPIX1"], h["CRPIX2"] = n / 2 + 0.5, n / 2 + 0.5
    s = 0.25 / 3600
    h["CD1_1"], h["CD1_2"], h["CD2_1"], h["CD2_2"] = -s, 0.0, 0.0, s
    h["RADESYS"] = "ICRS"
    h["FILTER"] = "r"
    h["DATE-OBS"] = "2026-01-01T00:00:00"
    h["EXPTIME"] = 1.0
    return h


def write_data(data_dir, n):
    data_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "plain": data_dir / "plain.fits",
        "rice_rows": data_dir / "rice_rows.fits",
        "rice_tiles": data_dir / "rice_tiles.fits",
    }
    if all(f.exists() for f in files.values()):
        return files
    print(f"bench: writing {n}x{n} float32 frames with astropy", flush=True)
    rng = np.random.default_rng(6000)
    img = rng.normal(100.0, 5.0, size=(n, n)).astype(np.float32)
    # A few thousand Gaussian "stars" so the data compresses like sky.
    yy, xx = np.mgrid[-6:7, -6:7]
    psf = np.exp(-(xx**2 + yy**2) / (2 * 1.8**2)).astype(np.float32)
    for x, y, f in zip(rng.integers(10, n - 10, 4000), rng.integers(10, n - 10, 4000),
                       rng.lognormal(6, 1.2, 4000)):
        img[y - 6:y + 7, x - 6:x + 7] += f * psf
    h = header(n)
    fits.PrimaryHDU(img, header=h).writeto(files["plain"], overwrite=True)
    for name, tile in (("rice_rows", (1, n)), ("rice_tiles", (256, 256))):
        fits.HDUList([
            fits.PrimaryHDU(),
            fits.CompImageHDU(img, header=h, compression_type="RICE_1", tile_shape=tile),
        ]).writeto(files[name], overwrite=True)
    return files


def load(addr, urls, work, name, seconds, concurrency, server_pid=None):
    url_file = work / f"urls_{name}.txt"
    url_file.write_text("\n".join(urls) + "\n")
    cmd = ["cargo", "bench", "-q", "--bench", "cutout_http", "--", "--addr", addr, "--urls",
           str(url_file), "--concurrency", str(concurrency), "--seconds", str(seconds)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    samples = []
    while proc.poll() is None:
        if server_pid:
            samples.append(rss_kb(server_pid))
        time.sleep(1.0)
    out = json.loads(proc.stdout.read())
    if out["errors"]:
        print(f"bench: {name}: {out['errors']} errors, first: {out['first_error']}", flush=True)
    if samples:
        out["rss_mb"] = [round(s / 1024, 1) for s in samples]
    return out


def wrk_load(addr, urls, work, name, seconds, connections, threads=2):
    return benchlib.wrk(addr, urls, work / f"urls_{name}.txt", seconds, connections, threads)


def median_ms(fn, items):
    times = []
    for it in items:
        t = time.perf_counter()
        fn(it)
        times.append((time.perf_counter() - t) * 1000)
    return float(np.median(times))


def main():
    a = args()
    work = a.work
    work.mkdir(parents=True, exist_ok=True)
    print("bench: building wisecut (release) and the load generator", flush=True)
    subprocess.run(["cargo", "build", "-q", "--release", "--bin", "wisecut"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "bench", "-q", "--no-run", "--bench", "cutout_http"], cwd=ROOT,
                   check=True)
    wisecut = ROOT / "target" / "release" / "wisecut"
    files = write_data(work / "data", a.size)

    db = work / "bench.db"
    for p in (db, work / "bench.db-wal", work / "bench.db-shm"):
        p.unlink(missing_ok=True)
    shutil.rmtree(work / "cache", ignore_errors=True)
    manifest = {
        "creator": "bench",
        "project": "BENCH",
        "frames": [
            {"key": k, "class": "CoaddedRegriddedFrame", "path": f.name, "deps": []} for k, f in files.items()
        ],
    }
    (work / "data" / "manifest.json").write_text(json.dumps(manifest))
    db_url = f"sqlite://{db}?mode=rwc"
    t = time.perf_counter()
    subprocess.run([str(wisecut), "ingest", str(work / "data" / "manifest.json"), "--db", db_url,
                    "--data", str(work / "data")], check=True, capture_output=True)
    print(f"bench: ingest of 3 frames {time.perf_counter() - t:.1f} s", flush=True)

    port = free_port()
    addr = f"127.0.0.1:{port}"
    server = subprocess.Popen(
        # One client measuring throughput: the per-client limits (meant for
        # many clients sharing a server) are off.
        [str(wisecut), "serve", "--db", db_url, "--data", str(work / "data"), "--cache",
         str(work / "cache"), "--bind", addr, "--client-concurrency", "0",
         "--client-rate", "0"],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://{addr}/health", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("bench: server did not start")

        images = json.loads(urllib.request.urlopen(
            f"http://{addr}/api/images?ra=210.5&dec=54.3").read())["images"]
        ids = {i["filename"].removesuffix(".fits"): i["object_id"] for i in images}

        rng = np.random.default_rng(240)
        n = a.size
        xy = rng.uniform(CUT / 2 + 2, n - CUT / 2 - 2, size=(a.positions, 2))
        wcs = WCS(header(n))
        sky = wcs.all_pix2world(xy, 0)

        def urls(frame, fmt, extra=""):
            fid = ids[frame]
            return [f"/api/cutout?frame={fid}&ra={float(ra)!r}&dec={float(dec)!r}&size={CUT}&format={fmt}{extra}"
                    for ra, dec in sky]

        # First touch of the row-tiled frame builds its sidecar.
        t = time.perf_counter()
        urllib.request.urlopen(f"http://{addr}{urls('rice_rows', 'fits')[0]}").read()
        sidecar_s = time.perf_counter() - t
        print(f"bench: first row-tiled request (sidecar build) {sidecar_s:.2f} s", flush=True)

        results = {"size": n, "cutout": CUT, "concurrency": a.concurrency,
                   "sidecar_build_s": sidecar_s}
        print(f"bench: plain FITS for {a.memory_seconds:.0f} s (memory sampled)", flush=True)
        results["plain_fits"] = load(addr, urls("plain", "fits"), work, "plain", a.memory_seconds,
                                     a.concurrency, server.pid)
        for name, frame, fmt, extra in (
            ("jpeg_asinh", "plain", "jpg", "&stretch=asinh&interval=percentile"),
            ("rice_rows_fits", "rice_rows", "fits", ""),
            ("rice_tiles_fits", "rice_tiles", "fits", ""),
        ):
            print(f"bench: {name} for {a.seconds:.0f} s", flush=True)
            results[name] = load(addr, urls(frame, fmt, extra), work, name, a.seconds,
                                 a.concurrency)
        for name, fmt, extra in (("wrk_plain_fits", "fits", ""),
                                 ("wrk_jpeg_asinh", "jpg", "&stretch=asinh&interval=percentile")):
            print(f"bench: {name} for {a.seconds:.0f} s (wrk, {a.concurrency} connections)",
                  flush=True)
            # Fresh positions, so the JPEGs are made, not read from the cache.
            rng_w = np.random.default_rng(hash(name) % 2**32)
            xy_w = rng_w.uniform(CUT / 2 + 2, n - CUT / 2 - 2, size=(a.positions, 2))
            sky_w = wcs.all_pix2world(xy_w, 0)
            fid = ids["plain"]
            wurls = [f"/api/cutout?frame={fid}&ra={float(ra)!r}&dec={float(dec)!r}&size={CUT}"
                     f"&format={fmt}{extra}" for ra, dec in sky_w]
            results[name] = wrk_load(addr, wurls, work, name, a.seconds, a.concurrency)
    finally:
        server.terminate()
        server.wait()

    # The engine without HTTP, one cutout at a time.
    core = subprocess.run(["cargo", "bench", "-q", "--bench", "cutout_core", "--", "--data",
                           str(work / "data"), "--n", "2000"], cwd=ROOT, check=True,
                          capture_output=True, text=True)
    results["core"] = json.loads(core.stdout.strip().splitlines()[-1])

    # Python peers, one call at a time, on the same files and positions.
    from astrocut import fits_cut, img_cut

    peer_sky = sky[: a.peer_n]
    coords = [SkyCoord(ra * u.deg, dec * u.deg) for ra, dec in peer_sky]
    peers = {}

    def cutout2d(path, ext):
        def run(c):
            with fits.open(path, memmap=True) as hl:
                hdu = hl[ext]
                data = hdu.section if ext else hdu.data
                w = WCS(hdu.header)
                cut = Cutout2D(data, c, CUT, wcs=w, mode="partial", fill_value=np.nan)
                out = fits.PrimaryHDU(cut.data, header=cut.wcs.to_header())
                buf = __import__("io").BytesIO()
                out.writeto(buf)
        return run

    print(f"bench: astropy Cutout2D and astrocut on {len(coords)} positions each", flush=True)
    for name, ext in (("plain", 0), ("rice_rows", 1), ("rice_tiles", 1)):
        peers[f"cutout2d_{name}"] = median_ms(cutout2d(files[name], ext), coords)
        peers[f"fits_cut_{name}"] = median_ms(
            lambda c, p=files[name]: fits_cut([str(p)], c, CUT, memory_only=True), coords)
    tmp = Path(tempfile.mkdtemp())
    peers["img_cut_plain_jpg"] = median_ms(
        lambda c: img_cut([str(files["plain"])], c, CUT, stretch="asinh", img_format=".jpg",
                          output_dir=str(tmp)), coords)
    shutil.rmtree(tmp, ignore_errors=True)
    results["peers_ms"] = peers
    (work / "results.json").write_text(json.dumps(results, indent=2))

    def row(label, key, peer_keys):
        r = results[key]
        srv = r["server_ms"]["p50"]
        line = (f"{label:<26} server p50 {srv:7.3f} ms  p99 {r['server_ms']['p99']:7.3f} ms  "
                f"cpu p50 {r['server_cpu_ms']['p50']:7.3f} ms  "
                f"HTTP {r['throughput_per_s']:8.0f} /s  latency p50 {r['latency_ms']['p50']:6.2f} ms")
        for pk in peer_keys:
            pm = peers[pk]
            line += f"\n{'':<26}   vs {pk:<22} {pm:8.2f} ms  ratio {pm / srv:8.1f}x"
        print(line)

    print(f"\n=== {n}x{n} float32, {CUT}x{CUT} cutouts, {a.concurrency} connections ===")
    row("plain FITS", "plain_fits", ["cutout2d_plain", "fits_cut_plain"])
    row("JPEG asinh (plain)", "jpeg_asinh", ["img_cut_plain_jpg"])
    row("RICE row tiles FITS", "rice_rows_fits", ["cutout2d_rice_rows", "fits_cut_rice_rows"])
    row("RICE 256x256 FITS", "rice_tiles_fits", ["cutout2d_rice_tiles", "fits_cut_rice_tiles"])
    for key, label in (("wrk_plain_fits", "plain FITS"), ("wrk_jpeg_asinh", "JPEG asinh")):
        w = results[key]
        errs = sum(w["errors"].values())
        print(f"wrk {label:<22} {w['throughput_per_s']:8.0f} /s  latency p50 "
              f"{w['latency_ms']['p50']:6.2f} ms  p99 {w['latency_ms']['p99']:6.2f} ms  "
              f"errors {errs}  ({w['command']})")
    c = results["core"]
    print("engine alone (no HTTP, one at a time), p50 / p99 ms:")
    print(f"  plain FITS        {c['plain']['fits_p50_ms']:.3f} / {c['plain']['fits_p99_ms']:.3f}")
    print(f"  plain JPEG asinh  {c['plain']['jpeg_asinh_p50_ms']:.3f} / "
          f"{c['plain']['jpeg_asinh_p99_ms']:.3f}")
    print(f"  RICE rows FITS    {c['rice_rows']['fits_p50_ms']:.3f} / "
          f"{c['rice_rows']['fits_p99_ms']:.3f}  ({c['rice_rows']['access']})")
    print(f"  RICE 256 FITS     {c['rice_tiles']['fits_p50_ms']:.3f} / "
          f"{c['rice_tiles']['fits_p99_ms']:.3f}  ({c['rice_tiles']['access']})")
    for label, key, peer in (("plain FITS", "plain", "cutout2d_plain"),
                             ("RICE rows", "rice_rows", "cutout2d_rice_rows"),
                             ("RICE 256", "rice_tiles", "cutout2d_rice_tiles")):
        print(f"  {label:<10} astropy Cutout2D / wisecut engine: "
              f"{peers[peer] / c[key]['fits_p50_ms']:.1f}x")
    print(f"  JPEG asinh astrocut img_cut / wisecut engine: "
          f"{peers['img_cut_plain_jpg'] / c['plain']['jpeg_asinh_p50_ms']:.1f}x")
    rss = results["plain_fits"].get("rss_mb", [])
    if rss:
        print(f"server RSS during the plain-FITS run: first {rss[0]} MB, last {rss[-1]} MB, "
              f"max {max(rss)} MB ({len(rss)} samples)")
    print(f"row-tiled sidecar build on first request: {sidecar_s:.2f} s")
    print(f"results: {work / 'results.json'}")


if __name__ == "__main__":
    main()
