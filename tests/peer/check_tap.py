"""Peer test: wisecut's TAP service, seen by pyvo and STILTS taplint.

Usage: check_tap.py BASE_URL --stilts PATH [--workdir DIR]

BASE_URL is a running wisecut server whose job worker runs. Every expected
result comes from another interface of the server read by another client
(SIA 2.0 through pyvo, DataLink, the JSON table export) or from astropy,
never from this file:

1. sync   - pyvo TAPService.search: a COUNT over ivoa.obscore equals the
            frames SIA lists; MAXREC overflow is reported to pyvo.
2. geo    - INTERSECTS(s_region, CIRCLE) on ivoa.obscore gives exactly the
            frames SIA's POS=CIRCLE gives; DISTANCE agrees with astropy.
3. lineage - ivoa.obscore JOIN wisecut.dependency gives a coadd's inputs,
            the frames DataLink lists as its #progenitor.
4. async  - pyvo run_async (UWS: create, run, wait, fetch, delete).
5. upload - pyvo search with an uploaded astropy table crossmatched
            against wisecut.sources; each position finds its own source.
6. taplint - stilts taplint reports no errors (warnings are printed).

Prints `tap: <area> ok (...)` per area; exits 1 with `tap: FAIL ...`.
"""

import argparse
import io
import re
import subprocess
import sys
import warnings

import numpy as np
import pyvo
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io.votable import parse as votable_parse
from astropy.table import Table
from pyvo.dal.exceptions import DALOverflowWarning


class Fail(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Fail(message)


def did_number(did):
    return int(str(did).rsplit("?", 1)[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("base")
    ap.add_argument("--stilts")
    args = ap.parse_args()
    base = args.base.rstrip("/")
    tap = pyvo.dal.TAPService(f"{base}/vo/tap")
    sia = pyvo.dal.SIA2Service(f"{base}/vo/sia")
    try:
        # 1. sync
        everything = sum(
            len(sia.search(collection=c, maxrec=20000))
            for c in [
                "RawBiasFrame", "RawDomeFlatFrame", "RawScienceFrame", "BiasFrame", "HotPixelMap",
                "MasterFlatFrame", "ColdPixelMap", "FringeFrame", "IlluminationCorrection",
                "ReducedScienceFrame", "RegriddedFrame", "CoaddedRegriddedFrame",
            ]
        )
        n = int(tap.search("SELECT COUNT(*) AS n FROM ivoa.obscore")["n"][0])
        check(n == everything, f"COUNT(*) over ivoa.obscore is {n}, SIA lists {everything} frames")
        # pyvo does not warn when the client's own MAXREC cut the answer,
        # but reports the status.
        r = tap.search("SELECT obs_publisher_did FROM ivoa.obscore", maxrec=3)
        check(len(r) == 3, f"MAXREC=3: {len(r)} rows")
        check(r.status[0] == "OVERFLOW", f"MAXREC=3 of {n}: pyvo reads QUERY_STATUS {r.status}")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            r = tap.search("SELECT TOP 3 obs_publisher_did FROM ivoa.obscore")
        check(r.status[0] == "OK" and len(r) == 3, f"TOP 3: {len(r)} rows, status {r.status}")
        check(not any(issubclass(x.category, DALOverflowWarning) for x in w), "TOP 3 warned of an overflow")
        print(f"tap: sync ok ({n} ObsCore rows = SIA; MAXREC=3 -> OVERFLOW, TOP 3 -> OK in pyvo)")

        # 2. geo: INTERSECTS = SIA POS; DISTANCE = astropy
        coadd = sia.search(collection="CoaddedRegriddedFrame", maxrec=1)[0]
        ra, dec = float(coadd["s_ra"]), float(coadd["s_dec"])
        sizes = []
        for rad in (0.002, 0.02, 0.2):
            want = {did_number(d) for d in sia.search(pos=(ra * u.deg, dec * u.deg, rad * u.deg), maxrec=20000)["obs_publisher_did"]}
            got = tap.search(
                "SELECT frame_id FROM ivoa.obscore AS o "
                f"WHERE 1 = INTERSECTS(o.s_region, CIRCLE('ICRS', {ra!r}, {dec!r}, {rad!r}))",
                maxrec=20000,
            )
            got = {int(x) for x in got["frame_id"]}
            check(got == want, f"INTERSECTS radius {rad}: {len(got)} frames, SIA POS {len(want)}: differ by {sorted(got ^ want)[:8]}")
            sizes.append(len(got))
        check(len(set(sizes)) > 1, f"the three circles found the same number of frames {sizes}: no discrimination")
        d = tap.search(
            "SELECT TOP 20 frame_id, s_ra, s_dec, "
            f"DISTANCE(POINT('ICRS', s_ra, s_dec), POINT('ICRS', {ra!r}, {dec!r})) AS dist "
            "FROM ivoa.obscore WHERE s_ra IS NOT NULL ORDER BY dist"
        ).to_table()
        sep = SkyCoord(d["s_ra"], d["s_dec"], unit="deg").separation(SkyCoord(ra, dec, unit="deg")).deg
        worst = float(np.max(np.abs(sep - np.asarray(d["dist"], float)))) * 3.6e6
        check(worst < 1.0, f"DISTANCE differs from astropy by {worst:.3f} mas")
        check(list(np.argsort(np.asarray(d["dist"]), kind="stable")) == list(range(len(d))), "ORDER BY dist is not sorted")
        print(f"tap: geo ok (INTERSECTS = SIA POS for 3 circles: {sizes} frames; DISTANCE within {worst:.4f} mas of astropy)")

        # 3. lineage: obscore JOIN dependency = DataLink #progenitor
        cid = did_number(coadd["obs_publisher_did"])
        j = tap.search(
            "SELECT o.obs_publisher_did, d.role FROM ivoa.obscore AS o "
            f"JOIN wisecut.dependency AS d ON d.parent_id = o.frame_id WHERE d.child_id = {cid}",
            maxrec=20000,
        )
        joined = {did_number(x) for x in j["obs_publisher_did"]}
        links = pyvo.dal.adhoc.DatalinkResults.from_result_url(f"{base}/vo/links?ID=ivo://wisecut/obj?{cid}")
        # DataLink names each input in a #progenitor row linking to the
        # input's own {links} (ID=ivo://wisecut/obj?N, URL-encoded).
        prog = set()
        rows = [lk for lk in links if str(lk["semantics"]) == "#progenitor"]
        for lk in rows:
            url = str(lk["access_url"])
            m = re.search(r"obj(?:%3F|\?)(\d+)", url)
            if m:
                prog.add(int(m.group(1)))
        check(prog, f"DataLink of coadd {cid} lists no #progenitor with an object link")
        check(joined == prog, f"obscore JOIN dependency for coadd {cid}: {sorted(joined)[:8]}; DataLink #progenitor: {sorted(prog)[:8]}")
        print(f"tap: lineage ok (coadd {cid}: {len(joined)} inputs = DataLink #progenitor)")

        # 4. async
        job = tap.submit_job("SELECT TOP 5 obs_publisher_did, s_ra FROM ivoa.obscore WHERE s_ra IS NOT NULL ORDER BY s_ra")
        check(job.phase == "PENDING", f"a new async job is {job.phase}, not PENDING")
        job.run()
        job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
        check(job.phase == "COMPLETED", f"async job ended {job.phase}: {getattr(job, 'errorsummary', '')}")
        res = job.fetch_result().to_table()
        sync = tap.search("SELECT TOP 5 obs_publisher_did, s_ra FROM ivoa.obscore WHERE s_ra IS NOT NULL ORDER BY s_ra").to_table()
        check(list(res["obs_publisher_did"]) == list(sync["obs_publisher_did"]), "async and sync answers differ")
        url = job.url
        job.delete()
        check(requests.get(url, timeout=30).status_code == 404, "a deleted job still answers")
        bad = tap.submit_job("SELECT nosuchcolumn FROM ivoa.obscore")
        bad.run()
        bad.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=120)
        check(bad.phase == "ERROR", f"a bad query's job is {bad.phase}, not ERROR")
        bad.delete()
        print("tap: async ok (PENDING -> RUN -> COMPLETED, result = sync, DELETE; bad query -> ERROR)")

        # 5. upload crossmatch against the sources
        def export(path):
            r = requests.get(f"{base}{path}", timeout=60)
            check(r.status_code == 200, f"GET {path}: {r.status_code} {r.text[:300]}")
            return votable_parse(io.BytesIO(r.content)).get_first_table().to_table()

        lists = export("/table/SourceList?format=votable")
        big = [int(a) for a, n in zip(lists["slid"], lists["n_sources"]) if int(n) >= 5]
        check(big, "no SourceList with 5 sources")
        slid = big[0]
        srows = export(f"/table/SourceList/{slid}?format=votable")[:5]
        mine = Table(
            {
                "pid": np.arange(len(srows), dtype=np.int64),
                "ra": np.asarray(srows["ra"], float),
                "dec": np.asarray(srows["dec"], float),
            }
        )
        sids = [int(x) for x in srows["sid"]]
        up = tap.search(
            "SELECT u.pid, s.sid, s.slid FROM TAP_UPLOAD.mine AS u JOIN wisecut.sources AS s "
            "ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 0.00003)) "
            f"WHERE s.slid = {slid}",
            uploads={"mine": mine},
        ).to_table()
        pairs = {(int(a), int(b)) for a, b in zip(up["pid"], up["sid"])}
        want = {(i, sid) for i, sid in enumerate(sids)}
        check(want <= pairs, f"upload crossmatch: missing {sorted(want - pairs)[:5]}")
        print(f"tap: upload ok ({len(mine)} uploaded positions each found their source in SourceList {slid})")

        # 6. taplint
        if args.stilts:
            out = subprocess.run(
                [args.stilts, "taplint", f"tapurl={base}/vo/tap", "report=EW", "maxrepeat=3"],
                capture_output=True,
                text=True,
                timeout=1200,
            )
            text = out.stdout + out.stderr
            errors = [x for x in text.splitlines() if x.startswith("E-")]
            warns = [x for x in text.splitlines() if x.startswith("W-")]
            m = re.search(r"Totals:\s*Errors:\s*(\d+);\s*Warnings:\s*(\d+)", text)
            check(m is not None, f"taplint printed no totals:\n{text[-2000:]}")
            check(int(m.group(1)) == 0, "taplint reports errors:\n" + "\n".join(errors[:40]))
            for x in warns:
                print(f"tap: taplint warning: {x}")
            print(f"tap: taplint ok (0 errors, {m.group(2)} warnings)")
    except Fail as e:
        print(f"tap: FAIL {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
