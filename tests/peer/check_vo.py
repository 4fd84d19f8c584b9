"""Peer test: wisecut's VO endpoints, seen by third-party VO clients.

Usage: check_vo.py BASE_URL [--stilts PATH] [--keep-going] [--workdir DIR]

BASE_URL is a running wisecut server (e.g. http://127.0.0.1:8899). With
--stilts, `stilts votlint` is run on representative VOTables and must print
nothing (votlint exits 0 even when it reports ERRORs). --keep-going runs
every area and lists all failures instead of stopping at the first one
(the default, for the integration test). --workdir keeps the downloaded
files there instead of in a temporary directory.

The clients and references are other people's code, never wisecut's:
astropy (VOTable reader with verify='exception', FITS, WCS, units in the
VOUnit grammar), lxml with the VOTable 1.4 XSD that astropy ships, pyvo
(SIA 2.0, DataLink, SODA), prov (through check_prov.py), mocpy (through
check_moc.py) and, optionally, STILTS votlint. Expected results are never
written down here: each one comes from an independent oracle, usually
astropy reading the stored FITS files (headers and WCS), a second wisecut
interface (the JSON table export, the cutout API) or the same data seen
through another protocol (DataLink against PROV, SIA against the table
exports). Each area also checks that its oracle actually discriminates
(a filter keeps some rows and drops others), so no check passes vacuously.

Areas, one summary line each on stdout, starting `vo: `:

1. votable - every table export (12 frame classes, SourceList,
   AssociateList, the sources of two source lists, the associations of
   the associate lists) in TABLEDATA, BINARY2 and datalink=no, plus the
   browse query options q=, cols=, sort=, page=/size=.
2. sia     - SIA 2.0 through pyvo, against a footprint oracle computed
   here from the FITS headers with astropy and a spherical
   polygon-circle test written here.
3. datalink - DataLink 1.1 through pyvo: lineage semantics checked against
   the SIA collections, GET and POST, unknown identifiers.
4. soda    - SODA sync through the DataLink service descriptor (pyvo),
   pixels against the cutout API and the stored frame, the pixel box
   against astropy's WCS, and the error behaviour.
5. prov    - PROV-JSON and PROV-N (check_prov.py) and their graph against a
   DataLink walk of the same lineage.
6. moc     - coverage MOCs (check_moc.py, mocpy) against the frame centres
   from SIA and footprints from the FITS headers.

Exits 1 with `vo: FAIL <area>: <what>` on stderr at the first failure.
"""

import argparse
import io
import json
import math
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.io.votable import parse as votable_parse
from astropy.io.votable.exceptions import VOWarning
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from lxml import etree

import pyvo
from pyvo.dal.adhoc import DatalinkQuery, DatalinkResults, DatalinkResultsMixin, SodaQuery
from pyvo.dal.exceptions import DALOverflowWarning, DALQueryError, DALServiceError

HERE = Path(__file__).resolve().parent
VOT_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
XSD_PATH = Path(__import__("astropy").__file__).parent / "io/votable/data/VOTable.v1.4.xsd"
def data_section(h):
    """The pixels of an image that see the sky, 1-based inclusive
    (x1, x2, y1, y2): its IRAF DATASEC, else the whole image. A raw
    exposure's overscan strip (BIASSEC) is outside it."""
    n1, n2 = h["NAXIS1"], h["NAXIS2"]
    m = re.fullmatch(r"\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*", str(h.get("DATASEC", "")))
    if m:
        a, b, c, d = map(int, m.groups())
        x1, x2, y1, y2 = min(a, b), max(a, b), min(c, d), max(c, d)
        if x1 >= 1 and y1 >= 1 and x2 <= n1 and y2 <= n2:
            return x1, x2, y1, y2
    return 1, n1, 1, n2


FRAME_CLASSES = [
    "RawBiasFrame",
    "RawDomeFlatFrame",
    "RawScienceFrame",
    "BiasFrame",
    "HotPixelMap",
    "MasterFlatFrame",
    "ColdPixelMap",
    "FringeFrame",
    "IlluminationCorrection",
    "ReducedScienceFrame",
    "RegriddedFrame",
    "CoaddedRegriddedFrame",
]
# DataLink semantics of lineage rows pointing at a parent, and which frame
# classes each may name (DataLink core vocabulary terms; wisecut's mapping of
# its calibration classes onto them).
PARENT_SEMANTICS = {
    "#progenitor": None,  # science inputs: checked per case
    "#bias": {"BiasFrame", "RawBiasFrame"},
    "#flat": {"MasterFlatFrame", "RawDomeFlatFrame"},
    "#calibration": {"FringeFrame", "HotPixelMap", "ColdPixelMap", "IlluminationCorrection"},
}
UNKNOWN_DID = "ivo://wisecut/obj?999999999"
warnings.simplefilter("ignore", FITSFixedWarning)


class ExportResults(DatalinkResultsMixin, pyvo.dal.DALResults):
    """A table export as pyvo results with DataLink (pyvo's own result
    classes are built the same way)."""


class Fail(Exception):
    """A check failed; the message says what and where."""


def check(cond, message):
    if not cond:
        raise Fail(message)


def did(n):
    return f"ivo://wisecut/obj?{int(n)}"


def did_number(text):
    """N of ivo://wisecut/obj?N (also inside a URL's ID parameter)."""
    text = urllib.parse.unquote(str(text))
    m = re.search(r"ivo://wisecut/obj\?(\d+)", text)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------
# Spherical geometry, written here (independent of wisecut's gnomonic code).


def vec(ra, dec):
    """Unit 3-vector of a sky position (degrees)."""
    ra, dec = math.radians(ra), math.radians(dec)
    return (math.cos(dec) * math.cos(ra), math.cos(dec) * math.sin(ra), math.sin(dec))


def cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def norm(a):
    return math.sqrt(dot(a, a))


def scaled(a, k):
    return (a[0] * k, a[1] * k, a[2] * k)


def angle(a, b):
    """Angle between unit vectors, degrees (stable for small angles)."""
    return math.degrees(math.atan2(norm(cross(a, b)), dot(a, b)))


def distance_to_arc(p, a, b):
    """Angular distance (deg) from p to the great-circle arc a-b (< 180 deg)."""
    n = cross(a, b)
    n = scaled(n, 1 / norm(n))
    pn = dot(p, n)
    q = (p[0] - pn * n[0], p[1] - pn * n[1], p[2] - pn * n[2])
    if norm(q) < 1e-15:
        return min(angle(p, a), angle(p, b))
    # The foot of the perpendicular lies on the arc: distance to the circle.
    if dot(cross(a, q), n) >= 0 and dot(cross(q, b), n) >= 0:
        return math.degrees(math.asin(min(1.0, abs(pn))))
    return min(angle(p, a), angle(p, b))


def distance_to_polygon(ra, dec, corners):
    """Angular distance (deg) from a point to a convex spherical polygon
    (corners in order around the edge); 0 inside."""
    p = vec(ra, dec)
    v = [vec(*c) for c in corners]
    n = len(v)
    sides = [dot(cross(v[i], v[(i + 1) % n]), p) for i in range(n)]
    if all(x >= 0 for x in sides) or all(x <= 0 for x in sides):
        return 0.0
    return min(distance_to_arc(p, v[i], v[(i + 1) % n]) for i in range(n))


def great_circle_points(a, b, n):
    """n points from a to b (excluded) along the great circle, as (ra, dec)."""
    va, vb = vec(*a), vec(*b)
    omega = math.radians(angle(va, vb))
    out = []
    for t in np.linspace(0, 1, n, endpoint=False):
        if omega == 0:
            w = va
        else:
            ka, kb = math.sin((1 - t) * omega) / math.sin(omega), math.sin(t * omega) / math.sin(omega)
            w = tuple(ka * x + kb * y for x, y in zip(va, vb))
        out.append((math.degrees(math.atan2(w[1], w[0])) % 360, math.degrees(math.asin(w[2]))))
    return out


def pixel_box(wcs, shape, ra, dec):
    """The 0-based inclusive pixel box (x0, y0, x1, y1) holding the sky
    points, trimmed to an image of `shape` (ny, nx); pixel i covers
    [i - 0.5, i + 0.5). None when it misses the image."""
    x, y = wcs.world_to_pixel(SkyCoord(ra, dec, unit="deg", frame="icrs"))
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    ny, nx = shape
    x0 = max(0, math.floor(x.min() + 0.5))
    y0 = max(0, math.floor(y.min() + 0.5))
    x1 = min(nx - 1, math.floor(x.max() + 0.5))
    y1 = min(ny - 1, math.floor(y.max() + 0.5))
    if x0 > x1 or y0 > y1:
        return None
    return (x0, y0, x1, y1)


# --------------------------------------------------------------------------


def pixel_scale(w):
    """Mean pixel size of a celestial WCS, degrees (astropy)."""
    return float(np.mean(proj_plane_pixel_scales(w.celestial)))


def values_equal(a, b):
    """Cell equality, NaN-aware, for scalars and arrays."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return False
        if a.dtype.kind == "f" or b.dtype.kind == "f":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def raw(record, name):
    """A DataLink column as text ('' when null), without pyvo's access_url
    property (which looks up a service descriptor for rows with no URL)."""
    v = record[name]
    if v is None or np.ma.is_masked(v):
        return ""
    return v.decode() if isinstance(v, bytes) else str(v)


def cell(table, name, i):
    """A cell of an astropy VOTable array as a Python value (None if masked)."""
    col = table.array[name]
    if np.ma.isMaskedArray(col) and np.ma.getmaskarray(col)[i]:
        return None
    v = col[i]
    if isinstance(v, bytes):
        v = v.decode()
    if isinstance(v, np.generic):
        v = v.item()
    return v


class Checker:
    def __init__(self, base, stilts, workdir):
        self.base = base.rstrip("/")
        self.stilts = stilts
        self.work = Path(workdir)
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=16, pool_maxsize=16)
        self.http.mount("http://", adapter)
        self.http.mount("https://", adapter)
        self.schema = etree.XMLSchema(etree.parse(str(XSD_PATH)))
        self._cache = {}
        self._lock = threading.Lock()
        self.votables_checked = 0
        self.linted = []

    # -- plumbing ----------------------------------------------------------

    def url(self, path):
        return self.base + path

    def get(self, url, expect=200, **kw):
        r = self.http.get(url, timeout=120, **kw)
        if expect is not None:
            check(
                r.status_code == expect,
                f"GET {url}: HTTP {r.status_code}, expected {expect}: {r.text[:300]!r}",
            )
        return r

    def save(self, name, content):
        path = self.work / re.sub(r"[^A-Za-z0-9_.-]", "_", name)
        path.write_bytes(content)
        return path

    def cached(self, key, make):
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def votable(self, url, content, *, status="OK"):
        """Validates one VOTable document every way this test knows and
        returns (astropy VOTableFile, lxml tree).

        XSD 1.4 (lxml), astropy with verify='exception' (any VOTable warning
        is an error: invalid UCDs, units, values, ...), every FIELD/PARAM unit
        in the VOUnit grammar (astropy), and QUERY_STATUS as the first INFO
        of the results RESOURCE."""
        try:
            tree = etree.parse(io.BytesIO(content))
        except etree.XMLSyntaxError as e:
            raise Fail(f"{url}: not XML: {e}")
        root = tree.getroot()
        check(root.tag == f"{{{VOT_NS}}}VOTABLE", f"{url}: root is {root.tag}, not a VOTable 1.3+ VOTABLE")
        check(root.get("version") == "1.4", f"{url}: VOTABLE version={root.get('version')!r}, not 1.4")
        if not self.schema.validate(tree):
            err = self.schema.error_log[0]
            raise Fail(f"{url}: not valid against the VOTable 1.4 XSD: line {err.line}: {err.message}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", VOWarning)
                warnings.simplefilter("error", u.UnitsWarning)
                vot = votable_parse(io.BytesIO(content), verify="exception")
        except Exception as e:
            raise Fail(f"{url}: astropy verify='exception' rejects it: {type(e).__name__}: {e}")
        for el in root.iter(f"{{{VOT_NS}}}FIELD", f"{{{VOT_NS}}}PARAM"):
            unit = el.get("unit")
            if unit is not None:
                try:
                    u.Unit(unit, format="vounit", parse_strict="raise")
                except Exception as e:
                    raise Fail(f"{url}: {el.get('name')}: unit {unit!r} is not VOUnit: {e}")
        results = [r for r in root.findall(f"{{{VOT_NS}}}RESOURCE") if r.get("type") == "results"]
        check(len(results) == 1, f"{url}: {len(results)} RESOURCE type=results, not one")
        infos = results[0].findall(f"{{{VOT_NS}}}INFO")
        qs = [i for i in infos if i.get("name") == "QUERY_STATUS"]
        check(len(qs) == 1, f"{url}: {len(qs)} QUERY_STATUS INFOs, not one")
        check(
            infos[0].get("name") == "QUERY_STATUS",
            f"{url}: QUERY_STATUS is not the first INFO of the results RESOURCE (DALI)",
        )
        check(
            qs[0].get("value") == status,
            f"{url}: QUERY_STATUS={qs[0].get('value')!r} ({(qs[0].text or '').strip()!r}), expected {status}",
        )
        with self._lock:
            self.votables_checked += 1
        return vot, tree

    def votlint(self, paths):
        """stilts votlint on each file (in parallel); any output fails."""
        if not self.stilts:
            return
        procs = [
            (
                p,
                subprocess.Popen(
                    [self.stilts, "votlint", f"votable={p}"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                ),
            )
            for p in paths
        ]
        for p, proc in procs:
            out, _ = proc.communicate(timeout=120)
            text = out.decode(errors="replace").strip()
            check(proc.returncode == 0, f"stilts votlint {p.name}: exit {proc.returncode}: {text[:500]}")
            check(not text, f"stilts votlint {p.name} reports:\n{text[:1500]}")
            self.linted.append(p.name)

    # -- shared data ---------------------------------------------------------

    def sia(self):
        return self.cached("sia", lambda: pyvo.dal.SIA2Service(self.url("/vo/sia")))

    def inventory(self):
        """Every frame, by class, from SIA COLLECTION queries without POS:
        {class: astropy Table}."""

        def make():
            out = {}
            for c in FRAME_CLASSES:
                with warnings.catch_warnings(record=True) as w:
                    warnings.simplefilter("always")
                    res = self.sia().search(collection=c, maxrec=10000)
                over = [x for x in w if issubclass(x.category, DALOverflowWarning)]
                check(not over, f"SIA COLLECTION={c}: overflow with MAXREC=10000")
                check(res.status[0] == "OK", f"SIA COLLECTION={c}: QUERY_STATUS {res.status[0]}")
                t = res.to_table()
                for row in t:
                    check(
                        row["obs_collection"] == c,
                        f"SIA COLLECTION={c} returned a {row['obs_collection']} ({row['obs_publisher_did']})",
                    )
                    n = did_number(row["obs_publisher_did"])
                    check(
                        n == int(row["object_id"]),
                        f"SIA: obs_publisher_did {row['obs_publisher_did']} is not object {row['object_id']}",
                    )
                    check(
                        row["access_url"] == self.url(f"/data/{n}"),
                        f"SIA: access_url {row['access_url']} of {n} is not {self.url(f'/data/{n}')}",
                    )
                out[c] = t
            return out

        return self.cached("inventory", make)

    def class_of(self):
        """{object_id: frame class} from SIA."""
        return self.cached(
            "class_of",
            lambda: {int(r["object_id"]): c for c, t in self.inventory().items() for r in t},
        )

    def sky_frames(self):
        """{object_id: SIA row} of frames with a footprint (s_region)."""

        def make():
            out = {}
            for t in self.inventory().values():
                for r in t:
                    reg = r["s_region"]
                    if not np.ma.is_masked(reg) and len(np.asarray(reg)) >= 6:
                        out[int(r["object_id"])] = r
            return out

        return self.cached("sky_frames", make)

    def fetch_header(self, n):
        """The image header of /data/N: read until the primary header's END
        when the primary holds the image, the whole file otherwise
        (tile-compressed files keep the image in an extension)."""
        url = self.url(f"/data/{n}")
        with self.http.get(url, stream=True, timeout=120) as r:
            check(r.status_code == 200, f"GET {url}: HTTP {r.status_code}")
            buf = bytearray()
            for chunk in r.iter_content(2880 * 8):
                buf.extend(chunk)
                for i in range(0, len(buf) - 79, 80):
                    if buf[i : i + 8] == b"END     ":
                        break
                else:
                    continue
                h = fits.Header.fromstring(bytes(buf[: i + 80]).decode("ascii"))
                if h.get("NAXIS", 0) >= 2:
                    return h
                break
            for chunk in r.iter_content(1 << 20):
                buf.extend(chunk)
        with fits.open(io.BytesIO(bytes(buf))) as hdul:
            for hdu in hdul:
                if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
                    return hdu.header.copy()
        raise Fail(f"{url}: no 2-d image HDU")

    def headers(self):
        """{object_id: (header, WCS)} of every sky frame, from /data/N."""

        def make():
            ids = sorted(self.sky_frames())
            with ThreadPoolExecutor(8) as pool:
                hs = list(pool.map(self.fetch_header, ids))
            return {n: (h, WCS(h)) for n, h in zip(ids, hs)}

        return self.cached("headers", make)

    def footprint(self, n):
        """Corners (ra, dec) of frame N's outer pixel edges, from astropy WCS
        of its FITS header, in order around the edge."""

        def make():
            h, w = self.headers()[n]
            x1, x2, y1, y2 = data_section(h)
            # Outer pixel edges of the data section, 0-based pixel coordinates.
            xs, ys = (x1 - 1.5, x2 - 0.5), (y1 - 1.5, y2 - 0.5)
            px = np.array([[xs[0], ys[0]], [xs[1], ys[0]], [xs[1], ys[1]], [xs[0], ys[1]]])
            return [tuple(c) for c in w.all_pix2world(px, 0)]

        return self.cached(("footprint", n), make)

    def frame_hdu(self, n):
        """(header, float data, file size) of the stored file of frame N (astropy)."""

        def make():
            r = self.get(self.url(f"/data/{n}"))
            with fits.open(io.BytesIO(r.content)) as hdul:
                for hdu in hdul:
                    if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
                        return hdu.header.copy(), np.asarray(hdu.data, dtype=np.float64), len(r.content)
            raise Fail(f"/data/{n}: no image")

        return self.cached(("frame", n), make)

    def links(self, ids, post=True):
        """DataLink rows of several identifiers at once (pyvo, POST)."""
        rows = []
        ids = list(ids)
        for i in range(0, len(ids), 500):
            q = DatalinkQuery(self.url("/vo/links"), id=ids[i : i + 500])
            res = q.execute(post=post)
            rows.extend(res)
        return rows

    def lineage_via_datalink(self, root, direction):
        """Walks DataLink lineage rows from `root` (object id), BACK through
        parent semantics or FORWARD through #derivation. Returns (nodes,
        edges) with edges as (child, parent)."""
        nodes, edges = {root}, set()
        frontier = [root]
        while frontier:
            rows = self.links([did(n) for n in frontier])
            nxt = []
            for r in rows:
                check(not r.error_message, f"DataLink {r.id}: {r.error_message}")
                src = did_number(r.id)
                if direction == "BACK" and r.semantics in PARENT_SEMANTICS:
                    other = did_number(r.access_url)
                    edges.add((src, other))
                elif direction == "FORWARD" and r.semantics == "#derivation":
                    other = did_number(r.access_url)
                    edges.add((other, src))
                else:
                    continue
                check(other is not None, f"DataLink {r.id} {r.semantics}: access_url {r.access_url} names no object")
                if other not in nodes:
                    nodes.add(other)
                    nxt.append(other)
            frontier = nxt
        return nodes, edges

    # -- 1. VOTable exports -------------------------------------------------

    def export(self, path_query, **params):
        """One export, fetched and validated: (url, bytes, vot, tree)."""
        url = self.url(path_query)
        if params:
            url += "&" + urllib.parse.urlencode(params)
        r = self.get(url)
        ct = r.headers.get("content-type", "")
        check(ct.startswith("application/x-votable+xml"), f"{url}: content-type {ct!r}")
        vot, tree = self.votable(url, r.content)
        return url, r.content, vot, tree

    def check_export_metadata(self, url, vot, tree, *, sky, frames, main_id=True):
        table = vot.get_first_table()
        fields = {f.name: f for f in table.fields}
        mains = [f.name for f in table.fields if f.ucd == "meta.id;meta.main"]
        if main_id:
            check(len(mains) == 1, f"{url}: {len(mains)} fields with ucd meta.id;meta.main: {mains}")
        else:
            # Association rows: the aid repeats on every member's row, so no
            # column is the row's main id.
            check(not mains, f"{url}: {mains} marked meta.id;meta.main, but no column identifies a row")
        coosys = {c.ID: c for c in vot.iter_coosys()}
        for axis, ucd in (("ra", "pos.eq.ra;meta.main"), ("dec", "pos.eq.dec;meta.main")):
            pos = [f for f in table.fields if f.name == axis or (f.ucd or "").startswith(ucd.split(";")[0])]
            if sky:
                check(pos, f"{url}: no {axis} field in a table with positions")
            for f in pos:
                check(f.ucd == ucd, f"{url}: {f.name} has ucd {f.ucd!r}, not {ucd}")
                check(str(f.unit) == "deg", f"{url}: {f.name} unit {f.unit}, not deg")
                check(f.ref in coosys, f"{url}: {f.name} ref={f.ref!r} names no COOSYS")
                check(
                    coosys[f.ref].system == "ICRS",
                    f"{url}: {f.name} refers to COOSYS system={coosys[f.ref].system}, not ICRS",
                )
        metas = [r for r in tree.getroot().findall(f"{{{VOT_NS}}}RESOURCE") if r.get("type") == "meta"]
        if frames:
            check(len(metas) == 1, f"{url}: {len(metas)} RESOURCE type=meta, expected the DataLink descriptor")
            params = {p.get("name"): p.get("value") for p in metas[0].findall(f"{{{VOT_NS}}}PARAM")}
            check(
                params.get("standardID", "").startswith("ivo://ivoa.net/std/DataLink#links-1."),
                f"{url}: service descriptor standardID {params.get('standardID')!r}",
            )
            check(
                params.get("accessURL") == self.url("/vo/links"),
                f"{url}: DataLink accessURL {params.get('accessURL')!r}, not {self.url('/vo/links')}",
            )
            idp = metas[0].find(f"{{{VOT_NS}}}GROUP/{{{VOT_NS}}}PARAM[@name='ID']")
            check(idp is not None, f"{url}: DataLink descriptor has no ID input param")
            ref = idp.get("ref")
            check(
                any(f.ID == ref for f in table.fields),
                f"{url}: DataLink ID param ref={ref!r} names no FIELD",
            )
        # Every link in the table is absolute and on this server.
        for f in table.fields:
            if (f.ucd or "").startswith("meta.ref.url"):
                for v in table.array[f.name]:
                    if np.ma.is_masked(v):
                        continue
                    v = v.decode() if isinstance(v, bytes) else str(v)
                    check(
                        v.startswith(self.base + "/"),
                        f"{url}: {f.name} {v!r} does not start with the request's base {self.base}/",
                    )
        return fields

    def compare_tables(self, url_a, vot_a, url_b, vot_b):
        ta, tb = vot_a.get_first_table(), vot_b.get_first_table()
        na, nb = [f.name for f in ta.fields], [f.name for f in tb.fields]
        check(na == nb, f"{url_a} and {url_b}: different fields {na} / {nb}")
        check(len(ta.array) == len(tb.array), f"{url_a}: {len(ta.array)} rows, {url_b}: {len(tb.array)}")
        for name in na:
            ca, cb = ta.array[name], tb.array[name]
            ma = np.ma.getmaskarray(ca).copy()
            mb = np.ma.getmaskarray(cb).copy()
            if ta.get_field_by_id_or_name(name).datatype in ("char", "unicodeChar"):
                # TABLEDATA cannot tell a null string from an empty one.
                ma |= np.array([not ma[i] and ca[i] in ("", b"") for i in range(len(ca))], bool)
                mb |= np.array([not mb[i] and cb[i] in ("", b"") for i in range(len(cb))], bool)
            check(
                np.array_equal(ma, mb),
                f"{url_a} vs {url_b}: column {name}: null masks differ at rows {np.nonzero(ma != mb)[0][:5]}",
            )
            da, db = np.ma.getdata(ca), np.ma.getdata(cb)
            for i in range(len(da)):
                if ma[i]:
                    continue
                if not values_equal(da[i], db[i]):
                    raise Fail(f"{url_a} vs {url_b}: column {name} row {i}: {da[i]!r} != {db[i]!r}")

    def compare_with_json(self, url, vot):
        """The VOTable rows against the same query's JSON export."""
        jurl = url.replace("format=votable", "format=json")
        data = self.get(jurl).json()
        table = vot.get_first_table()
        rows = data["rows"]
        check(
            len(rows) == len(table.array),
            f"{url}: {len(table.array)} rows, the JSON export {jurl} has {len(rows)}",
        )
        types = {f.name: f for f in table.fields}
        for col in data["columns"]:
            name = col["name"]
            check(name in types, f"{url}: no FIELD {name} (the JSON export has it)")
            f = types[name]
            check(
                (str(f.unit) if f.unit else "") == (str(u.Unit(col["unit"])) if col["unit"] else ""),
                f"{url}: {name} unit {f.unit} but JSON says {col['unit']!r}",
            )
            stamps = []
            for i, row in enumerate(rows):
                jv = row[name]
                vv = cell(table, name, i)
                if jv is None:
                    check(
                        vv is None or (isinstance(vv, float) and math.isnan(vv)) or vv == "",
                        f"{url}: {name} row {i}: {vv!r} where the JSON export has null",
                    )
                elif f.xtype == "timestamp":
                    check(vv, f"{url}: {name} row {i}: null where the JSON export has {jv!r}")
                    stamps.append((i, vv, jv))
                else:
                    check(vv == jv, f"{url}: {name} row {i}: {vv!r} is not the JSON export's {jv!r}")
            if stamps:
                # DALI timestamps, read by astropy, against RFC 3339 (datetime).
                try:
                    tv = Time([s[1] for s in stamps], format="isot", scale="utc")
                except ValueError as e:
                    raise Fail(f"{url}: {name}: not DALI timestamps: {e}")
                tj = Time(
                    [
                        datetime.fromisoformat(s[2].replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)
                        for s in stamps
                    ],
                    scale="utc",
                )
                bad = np.nonzero(np.abs((tv - tj).sec) >= 1e-3)[0]
                check(
                    len(bad) == 0,
                    f"{url}: {name} row {stamps[bad[0]][0] if len(bad) else 0}: "
                    f"{stamps[bad[0]][1] if len(bad) else ''!r} is not the JSON export's "
                    f"{stamps[bad[0]][2] if len(bad) else ''!r}",
                )

    def area_votable(self):
        inv = self.inventory()
        checked_before = self.votables_checked
        sky_classes = {c for c, t in inv.items() if any(int(r["object_id"]) in self.sky_frames() for r in t)}
        check(sky_classes, "no frame class has footprints in SIA")
        check(len(sky_classes) < len(FRAME_CLASSES), "every frame class is on the sky: calibration frames too?")

        bases = [(f"/table/{c}?format=votable", "frames", c in sky_classes) for c in FRAME_CLASSES]
        bases += [("/table/SourceList?format=votable", "lists", False)]
        bases += [("/table/AssociateList?format=votable", "lists", False)]
        parsed = {}

        def one(path, kind, sky):
            url, content, vot, tree = self.export(path)
            self.check_export_metadata(url, vot, tree, sky=sky, frames=kind == "frames", main_id=kind != "assoc")
            return url, content, vot, tree

        for path, kind, sky in bases:
            parsed[path] = one(path, kind, sky)

        # Source lists: the largest, and an empty one if there is one.
        sl = parsed["/table/SourceList?format=votable"][2].get_first_table()
        n_src = {int(s): int(n) for s, n in zip(sl.array["slid"], sl.array["n_sources"])}
        rows_url = {int(s): str(v) for s, v in zip(sl.array["slid"], sl.array["rows_url"])}
        frame_of = {int(s): int(f) for s, f in zip(sl.array["slid"], sl.array["frame_id"])}
        check(n_src, "the SourceList export is empty")
        slid_big = max(n_src, key=lambda s: (n_src[s], -s))
        check(n_src[slid_big] > 0, "no SourceList has sources")
        slids = [slid_big] + [s for s in sorted(n_src) if n_src[s] == 0][:1]
        al = parsed["/table/AssociateList?format=votable"][2].get_first_table()
        n_assoc = {int(a): int(n) for a, n in zip(al.array["alid"], al.array["n_associations"])}
        n_members = {int(a): int(n) for a, n in zip(al.array["alid"], al.array["n_members"])}
        al_url = {int(a): str(v) for a, v in zip(al.array["alid"], al.array["rows_url"])}
        alids = [a for a in sorted(n_assoc) if n_assoc[a] > 0][:4]
        check(alids, "no AssociateList has associations")
        for s in slids:
            want = self.url(f"/table/SourceList/{s}?format=votable")
            check(rows_url[s] == want, f"SourceList {s}: rows_url {rows_url[s]!r}, not {want}")
            path = f"/table/SourceList/{s}?format=votable"
            parsed[path] = one(path, "sources", True)
            t = parsed[path][2].get_first_table()
            check(
                len(t.array) == n_src[s],
                f"{want}: {len(t.array)} rows, but the SourceList export says n_sources={n_src[s]}",
            )
        for a in alids:
            want = self.url(f"/table/AssociateList/{a}?format=votable")
            check(al_url[a] == want, f"AssociateList {a}: rows_url {al_url[a]!r}, not {want}")
            path = f"/table/AssociateList/{a}?format=votable"
            parsed[path] = one(path, "assoc", True)
            t = parsed[path][2].get_first_table()
            aids = set(int(x) for x in t.array["aid"])
            members = set(int(x) for x in t.array["slid"])
            check(
                len(aids) == n_assoc[a],
                f"{want}: {len(aids)} distinct aid, the AssociateList export says n_associations={n_assoc[a]}",
            )
            check(
                len(members) == n_members[a],
                f"{want}: {len(members)} member lists, the AssociateList export says n_members={n_members[a]}",
            )

        # Association members exist in their source lists (the list with the
        # fewest member lists, to keep it quick).
        a_small = min(alids, key=lambda a: (n_members[a], a))
        t = parsed[f"/table/AssociateList/{a_small}?format=votable"][2].get_first_table()
        pairs = {(int(s), int(i)) for s, i in zip(t.array["slid"], t.array["sid"])}
        for s in sorted({p[0] for p in pairs}):
            js = self.get(self.url(f"/table/SourceList/{s}?format=json")).json()
            have = {int(r["sid"]) for r in js["rows"]}
            missing = [p for p in pairs if p[0] == s and p[1] not in have]
            check(not missing, f"AssociateList {a_small}: members {missing[:3]} are not in SourceList {s}")

        # TABLEDATA against the JSON export, BINARY2 and datalink=no against
        # TABLEDATA.
        for path, (url, content, vot, tree) in list(parsed.items()):
            frames = path.startswith("/table/") and path.split("/")[2].split("?")[0] in FRAME_CLASSES
            self.compare_with_json(url, vot)
            total = [i for i in vot.resources[0].infos if i.name == "total"]
            if total:
                check(
                    int(total[0].value) == len(vot.get_first_table().array),
                    f"{url}: INFO total={total[0].value} but {len(vot.get_first_table().array)} rows",
                )
            b_url, b_content, b_vot, b_tree = self.export(path, serialization="binary2")
            check(b"<BINARY2>" in b_content, f"{b_url}: no BINARY2 element")
            strip = lambda b: re.sub(rb"<DATA>.*?</DATA>", b"", b, flags=re.S)
            check(
                strip(content) == strip(b_content),
                f"{b_url}: metadata differs from the TABLEDATA export's",
            )
            self.compare_tables(url, vot, b_url, b_vot)
            parsed[path + "#b2"] = (b_url, b_content, b_vot, b_tree)
            n_url, n_content, n_vot, n_tree = self.export(path, datalink="no")
            metas = [r for r in n_tree.getroot().iter(f"{{{VOT_NS}}}RESOURCE") if r.get("type") == "meta"]
            check(not metas, f"{n_url}: datalink=no still has a RESOURCE type=meta")
            # Otherwise the same document: the default one minus its service
            # descriptors.
            full = etree.fromstring(content)
            for r in [r for r in full.findall(f"{{{VOT_NS}}}RESOURCE") if r.get("type") == "meta"]:
                full.remove(r)
            check(
                etree.tostring(full, method="c14n") == etree.tostring(n_tree.getroot(), method="c14n"),
                f"{n_url}: differs from {url} by more than the service descriptor",
            )
            if frames:
                check(
                    n_content != content,
                    f"{n_url}: identical to {url}, which should carry the DataLink descriptor",
                )
            self.compare_tables(url, vot, n_url, n_vot)
            parsed[path + "#plain"] = (n_url, n_content, n_vot, n_tree)

        # pyvo follows the export's DataLink descriptor (TOPCAT does the same).
        first_sky = next(c for c in FRAME_CLASSES if c in sky_classes)
        vot = parsed[f"/table/{first_sky}?format=votable"][2]
        res = ExportResults(vot, url=self.url(f"/table/{first_sky}"))
        # pyvo batches the IDs and does not promise to yield them in row
        # order, so every yielded result is matched to its own row by ID.
        table = vot.get_first_table().array
        object_of = {str(r["obs_publisher_did"]): int(r["object_id"]) for r in table}
        seen = 0
        for dl in res.iter_datalinks():
            ids = {str(r["ID"]) for r in dl}
            check(len(ids) == 1, f"pyvo DataLink from the {first_sky} export mixes IDs {sorted(ids)}")
            oid = object_of.get(ids.pop())
            this = [r for r in dl if r.semantics == "#this"]
            check(
                oid is not None and this and this[0].access_url == self.url(f"/data/{oid}"),
                f"pyvo DataLink from the {first_sky} export: #this of object {oid} is not /data/{oid}",
            )
            seen += 1
        check(seen == len(table), f"pyvo DataLink from the {first_sky} export: {seen} results for {len(table)} rows")

        # Sources: cutout_url is a FITS cutout centred on the source.
        s_path = f"/table/SourceList/{slid_big}?format=votable"
        url, _, vot, _ = parsed[s_path]
        t = vot.get_first_table()
        check("cutout_url" in [f.name for f in t.fields], f"{url}: no cutout_url column")
        for i in sorted({0, len(t.array) - 1}):
            cu = cell(t, "cutout_url", i)
            ra, dec = cell(t, "ra", i), cell(t, "dec", i)
            r = self.get(cu)
            with fits.open(io.BytesIO(r.content)) as hdul:
                h = hdul[0].header
                ny, nx = hdul[0].data.shape
            w = WCS(h)
            scale = pixel_scale(w)
            c = w.pixel_to_world((nx - 1) / 2, (ny - 1) / 2)
            sep = c.separation(SkyCoord(ra, dec, unit="deg")).deg
            check(
                sep <= scale,
                f"{cu}: the cutout's centre pixel is {sep / scale:.2f} px from the source ({ra}, {dec})",
            )
            check(
                h.get("ORIGOBJ") == frame_of[slid_big],
                f"{cu}: cut from object {h.get('ORIGOBJ')}, but SourceList {slid_big} is of frame {frame_of[slid_big]}",
            )

        # Browse options, each against the unfiltered export.
        mags = np.ma.compressed(t.array["mag_auto"])
        check(len(set(mags)) > 1, f"{url}: mag_auto does not vary; q= cannot be tested")
        cut = float(np.median(mags))
        q_url, _, q_vot, _ = self.export(s_path, q=f"mag_auto < {cut!r}")
        want = {int(s) for s, m in zip(t.array["sid"], t.array["mag_auto"]) if not np.ma.is_masked(m) and m < cut}
        got = {int(s) for s in q_vot.get_first_table().array["sid"]}
        check(0 < len(want) < len(t.array), f"{q_url}: the condition should keep some rows and drop others")
        check(got == want, f"{q_url}: sids {sorted(got)[:10]}, expected {sorted(want)[:10]}")
        cols = ["sid", "ra", "dec", "mag_auto"]
        c_url, _, c_vot, c_tree = self.export(s_path, cols=",".join(cols))
        names = [f.name for f in c_vot.get_first_table().fields]
        check(names[: len(cols)] == cols, f"{c_url}: fields {names}, expected {cols} first")
        extra = [f for f in c_vot.get_first_table().fields[len(cols) :] if not (f.ucd or "").startswith("meta.ref")]
        check(not extra, f"{c_url}: columns beyond cols= that are not links: {[f.name for f in extra]}")
        self.check_export_metadata(c_url, c_vot, c_tree, sky=True, frames=False)
        for name in cols:
            # NaN-aware: a magnitude of a source with no positive flux is NaN
            # in both exports, and NaN never equals itself.
            a, b = c_vot.get_first_table().array[name], t.array[name]
            check(
                values_equal(np.ma.getdata(a), np.ma.getdata(b))
                and np.array_equal(np.ma.getmaskarray(a), np.ma.getmaskarray(b)),
                f"{c_url}: column {name} differs from the full export",
            )
        o_url, _, o_vot, _ = self.export(s_path, sort="-mag_auto")
        om = list(o_vot.get_first_table().array["mag_auto"])
        check(om == sorted(om, reverse=True), f"{o_url}: not sorted by mag_auto descending")
        check(
            sorted(int(x) for x in o_vot.get_first_table().array["sid"]) == sorted(int(x) for x in t.array["sid"]),
            f"{o_url}: not the same rows as {url}",
        )
        f_path = f"/table/{first_sky}?format=votable"
        full = parsed[f_path][2].get_first_table()
        check(len(full.array) > 20, f"{f_path}: fewer than 21 rows; cannot test paging")
        p_url, _, p_vot, _ = self.export(f_path, page=2, size=10)
        got = [int(x) for x in p_vot.get_first_table().array["object_id"]]
        want = [int(x) for x in full.array["object_id"][10:20]]
        check(got == want, f"{p_url}: object_ids {got}, expected rows 11-20 of the export {want}")
        total = [i for i in p_vot.resources[0].infos if i.name == "total"]
        check(
            total and int(total[0].value) == len(full.array),
            f"{p_url}: INFO total should be {len(full.array)} over all pages",
        )
        filters = sorted({str(x) for x in full.array["filter"]})
        check(len(filters) > 1, f"{f_path}: a single filter; q= on text cannot be tested")
        fq_url, _, fq_vot, _ = self.export(f_path, q=f"filter = {filters[0]}")
        got = sorted(int(x) for x in fq_vot.get_first_table().array["object_id"])
        want = sorted(int(o) for o, f in zip(full.array["object_id"], full.array["filter"]) if f == filters[0])
        check(got == want, f"{fq_url}: {len(got)} rows, expected the {len(want)} {filters[0]} frames")

        # Counts against SIA: the same frames through two interfaces.
        for c in FRAME_CLASSES:
            n = len(parsed[f"/table/{c}?format=votable"][2].get_first_table().array)
            check(n == len(inv[c]), f"/table/{c}: {n} rows, SIA COLLECTION={c} finds {len(inv[c])}")

        lint = []
        for key in (
            f"/table/{first_sky}?format=votable",
            f"/table/SourceList/{slid_big}?format=votable#b2",
            f"/table/AssociateList/{alids[0]}?format=votable",
            "/table/CoaddedRegriddedFrame?format=votable#plain",
            "/table/SourceList?format=votable#b2",
        ):
            if key in parsed:
                lint.append(self.save("export_" + key, parsed[key][1]))
        self.votlint(lint)
        n_files = self.votables_checked - checked_before
        lint_text = f", stilts votlint clean on {len(lint)}" if self.stilts else ", stilts not run"
        return (
            f"votable {n_files} files ok ({len(FRAME_CLASSES)} frame classes, source lists {slids}, "
            f"associate lists {alids}, TABLEDATA = BINARY2 = JSON export; astropy verify=exception, "
            f"XSD 1.4, vounit{lint_text})"
        )

    # -- 2. SIA ----------------------------------------------------------------

    def sia_search(self, **kw):
        """pyvo SIA2 search; returns (result set of object ids, results)."""
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = self.sia().search(maxrec=10000, **kw)
        over = [x for x in w if issubclass(x.category, DALOverflowWarning)]
        check(not over and res.status[0] == "OK", f"SIA {kw}: unexpected overflow")
        return {int(x) for x in res["object_id"]}, res

    def area_sia(self):
        svc = self.sia()
        std = {str(c.standardid).lower(): c for c in svc.capabilities}
        check("ivo://ivoa.net/std/sia#query-2.0" in std, f"VOSI capabilities have no SIA 2.0: {sorted(std)}")
        check(
            svc.query_ep == self.url("/vo/sia/query"),
            f"pyvo found the SIA query endpoint {svc.query_ep}, not {self.url('/vo/sia/query')}",
        )
        avail = self.get(self.url("/vo/availability"))
        check(
            re.search(rb"<vosi:available>\s*true\s*</vosi:available>", avail.content),
            "/vo/availability does not say available=true",
        )
        inv = self.inventory()
        sky = self.sky_frames()
        headers = self.headers()

        # s_region and the other ObsCore columns against the FITS headers.
        for n, row in sky.items():
            h, w = headers[n]
            corners = self.footprint(n)
            sreg = np.asarray(row["s_region"], float).reshape(-1, 2)
            check(len(sreg) == 4, f"SIA {did(n)}: s_region has {len(sreg)} vertices, not 4")
            for c in corners:
                d = min(angle(vec(*c), vec(*x)) for x in sreg)
                check(d < 1e-6, f"SIA {did(n)}: s_region misses the WCS corner {c} by {d * 3600:.3f} arcsec")
            x1, x2, y1, y2 = data_section(h)
            centre = w.pixel_to_world((x1 + x2) / 2 - 1, (y1 + y2) / 2 - 1)
            scale = pixel_scale(w)
            sep = centre.separation(SkyCoord(row["s_ra"], row["s_dec"], unit="deg")).deg
            check(sep < 2 * scale, f"SIA {did(n)}: s_ra/s_dec are {sep / scale:.1f} px from the image centre")
            check(
                (int(row["s_xel1"]), int(row["s_xel2"])) == (h["NAXIS1"], h["NAXIS2"]),
                f"SIA {did(n)}: s_xel {row['s_xel1']}x{row['s_xel2']}, FITS {h['NAXIS1']}x{h['NAXIS2']}",
            )
            if "MJD-OBS" in h:
                check(
                    abs(float(row["t_min"]) - h["MJD-OBS"]) < 1e-8,
                    f"SIA {did(n)}: t_min {row['t_min']} but MJD-OBS {h['MJD-OBS']}",
                )
            if "FILTER" in h:
                check(
                    str(row["filter"]) == str(h["FILTER"]).strip(),
                    f"SIA {did(n)}: filter {row['filter']} but FILTER {h['FILTER']}",
                )
        # Wavelength ranges follow the filters' order on the spectrum.
        bands = {}
        for t in inv.values():
            for r in t:
                if not np.ma.is_masked(r["em_min"]):
                    bands.setdefault(str(r["filter"]), set()).add((float(r["em_min"]), float(r["em_max"])))
        for f, b in bands.items():
            check(len(b) == 1, f"SIA: filter {f} has several wavelength ranges {b}")
            lo, hi = next(iter(b))
            check(0 < lo < hi, f"SIA: filter {f}: em_min {lo} >= em_max {hi}")
        order = [f for f in "ugrizy" if f in bands]
        for a, b in zip(order, order[1:]):
            check(
                next(iter(bands[a]))[1] <= next(iter(bands[b]))[0] + 1e-12,
                f"SIA: band {a} {bands[a]} is not bluer than {b} {bands[b]}",
            )

        # Circles: the coadd's centre (as asked), near a coadd corner, and one
        # straddling the survey edge.
        coadds = inv["CoaddedRegriddedFrame"]
        check(len(coadds) > 0, "SIA: no CoaddedRegriddedFrame")
        c0 = coadds[0]
        ra0, dec0 = float(c0["s_ra"]), float(c0["s_dec"])
        corner = np.asarray(c0["s_region"], float).reshape(-1, 2)[0]
        circles = [
            (ra0, dec0, 0.01),
            (ra0 + 0.8 * (corner[0] - ra0), dec0 + 0.8 * (corner[1] - dec0), 0.005),
            (corner[0] + 0.1 * (corner[0] - ra0), corner[1] + 0.1 * (corner[1] - dec0), 0.02),
        ]
        tol = 0.5 / 3600  # frames whose edge lies within 0.5" of the circle count either way
        proper = 0
        ambiguous = 0
        results = []
        for ra, dec, r in circles:
            got, res = self.sia_search(pos=(ra * u.deg, dec * u.deg, r * u.deg))
            want, maybe = set(), set()
            for n in sky:
                d = distance_to_polygon(ra, dec, self.footprint(n))
                if abs(d - r) < tol:
                    maybe.add(n)
                elif d < r:
                    want.add(n)
            ambiguous += len(maybe)
            wrong_in = sorted(got - want - maybe)
            wrong_out = sorted(want - got)
            check(
                not wrong_in and not wrong_out,
                f"SIA POS=CIRCLE {ra} {dec} {r}: returns {len(wrong_in)} frames that do not overlap "
                f"(e.g. {wrong_in[:5]}) and misses {len(wrong_out)} that do (e.g. {wrong_out[:5]})",
            )
            if 0 < len(want) < len(sky):
                proper += 1
            results.append((got, res))
        check(results[0][0], "SIA: nothing at the coadd's centre")
        check(proper >= 2, "SIA circles do not discriminate: each finds all sky frames or none")

        # BAND, COLLECTION, TIME: subsets of the circle's answer, by the
        # answer's own em_/t_ columns.
        base_ids, base_res = results[0]
        bt = base_res.to_table()
        by_id = {int(r["object_id"]): r for r in bt}
        ref = by_id[int(c0["object_id"])]
        lam = (float(ref["em_min"]) + float(ref["em_max"])) / 2
        got, _ = self.sia_search(pos=(ra0 * u.deg, dec0 * u.deg, 0.01 * u.deg), band=(lam, lam))
        want = {n for n, r in by_id.items() if not np.ma.is_masked(r["em_min"]) and r["em_min"] <= lam <= r["em_max"]}
        check(0 < len(want) < len(by_id), f"SIA BAND={lam}: the filter should keep some frames and drop others")
        check(got == want, f"SIA BAND={lam}: {len(got)} frames, expected {len(want)}: {sorted(got ^ want)[:5]}")
        got, _ = self.sia_search(pos=(ra0 * u.deg, dec0 * u.deg, 0.01 * u.deg), collection="ReducedScienceFrame")
        want = {n for n, r in by_id.items() if r["obs_collection"] == "ReducedScienceFrame"}
        check(0 < len(want) < len(by_id), "SIA COLLECTION: should keep some frames and drop others")
        check(got == want, f"SIA COLLECTION=ReducedScienceFrame: {sorted(got ^ want)[:5]} disagree")
        raw = [r for r in bt if r["obs_collection"] == "RawScienceFrame"]
        check(raw, "SIA: no raw exposure at the coadd centre")
        tmid = (float(raw[0]["t_min"]) + float(raw[0]["t_max"])) / 2
        got, _ = self.sia_search(
            pos=(ra0 * u.deg, dec0 * u.deg, 0.01 * u.deg), time=Time(tmid, format="mjd")
        )
        want = {n for n, r in by_id.items() if not np.ma.is_masked(r["t_min"]) and r["t_min"] <= tmid <= r["t_max"]}
        check(0 < len(want) < len(by_id), f"SIA TIME={tmid}: should keep some frames and drop others")
        check(got == want, f"SIA TIME={tmid}: {sorted(got ^ want)[:5]} disagree")
        got, _ = self.sia_search(
            pos=(ra0 * u.deg, dec0 * u.deg, 0.01 * u.deg), band=(lam, lam), collection="ReducedScienceFrame"
        )
        want = {
            n
            for n, r in by_id.items()
            if r["obs_collection"] == "ReducedScienceFrame" and r["em_min"] <= lam <= r["em_max"]
        }
        check(got == want, "SIA BAND and COLLECTION together are not the intersection")

        # MAXREC=1 with several matches. pyvo >= 1.7 stays quiet when an
        # SIA2 answer overflows at exactly the MAXREC the client asked for
        # (expected truncation), so the status is read from the results, and
        # pyvo's generic DALResults (which does not know the client's MAXREC)
        # must raise DALOverflowWarning on the same document.
        check(len(base_ids) > 1, "SIA: fewer than 2 matches; MAXREC cannot be tested")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            res = svc.search(pos=(ra0 * u.deg, dec0 * u.deg, 0.01 * u.deg), maxrec=1)
        check(len(res) == 1, f"SIA MAXREC=1: {len(res)} rows")
        check(res.status[0] == "OVERFLOW", f"SIA MAXREC=1: QUERY_STATUS {res.status[0]}, not OVERFLOW")
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            pyvo.dal.DALResults(res.votable, url=res.queryurl)
        check(
            any(issubclass(x.category, DALOverflowWarning) for x in w),
            "pyvo's DALResults raises no DALOverflowWarning on the MAXREC=1 answer",
        )
        # Without POS: all frames fit under the default MAXREC; one less overflows.
        everything = sum(len(t) for t in inv.values())
        r = self.get(self.url("/vo/sia/query"))
        vot, _ = self.votable(r.url, r.content, status="OVERFLOW" if everything > 1000 else "OK")
        check(
            len(vot.get_first_table().array) == min(everything, 1000),
            f"SIA without constraints (default MAXREC 1000): {len(vot.get_first_table().array)} rows, "
            f"{everything} frames exist",
        )
        fewer = min(everything - 1, 10000)
        r = self.get(self.url(f"/vo/sia/query?MAXREC={fewer}"))
        vot, _ = self.votable(r.url, r.content, status="OVERFLOW")
        check(len(vot.get_first_table().array) == fewer, f"SIA MAXREC={fewer}: wrong row count")

        # A malformed POS: HTTP 400 with a DALI error VOTable, and pyvo says so.
        bad = self.url("/vo/sia/query?" + urllib.parse.urlencode({"POS": "CIRCLE 1 2"}))
        r = self.get(bad, expect=400)
        check(r.headers.get("content-type", "").startswith("application/x-votable+xml"), f"{bad}: not a VOTable")
        err_path = self.save("sia_error.vot", r.content)
        vot, _ = self.votable(bad, r.content, status="ERROR")
        info = [i for i in vot.resources[0].infos if i.name == "QUERY_STATUS"][0]
        check("POS" in (info.content or ""), f"{bad}: the error message {info.content!r} does not name POS")
        q = pyvo.dal.SIA2Query(svc.query_ep)
        q["POS"] = "CIRCLE 1 2"
        try:
            q.execute()
            raise Fail("pyvo: a malformed POS raised nothing")
        except (DALQueryError, DALServiceError) as e:
            check("POS" in str(e), f"pyvo's error for a malformed POS does not name POS: {e}")

        # Absolute URLs follow the request's Host.
        host = "wisecut-peer.example:8899"
        r = self.get(
            self.url("/vo/sia/query?" + urllib.parse.urlencode({"COLLECTION": "CoaddedRegriddedFrame"})),
            headers={"Host": host},
        )
        vot, _ = self.votable(r.url, r.content)
        for v in vot.get_first_table().array["access_url"]:
            check(str(v).startswith(f"http://{host}/"), f"SIA with Host: {host}: access_url {v}")

        raw_answer = self.get(
            self.url("/vo/sia/query?" + urllib.parse.urlencode({"POS": f"CIRCLE {ra0} {dec0} 0.01"}))
        )
        self.votable(raw_answer.url, raw_answer.content)
        ok_path = self.save("sia_answer.vot", raw_answer.content)
        # An answer of calibration frames (no sky regions) lints clean too.
        cal = self.get(self.url("/vo/sia?" + urllib.parse.urlencode({"COLLECTION": "BiasFrame"})))
        self.votable(cal.url, cal.content)
        cal_path = self.save("sia_calibration.vot", cal.content)
        self.votlint([ok_path, err_path, cal_path])

        # pyvo cuts through the SODA descriptor of the SIA answer rather
        # than downloading the whole frame.
        res = self.sia().search(pos=(ra0 * u.deg, dec0 * u.deg, 0.001 * u.deg), collection="CoaddedRegriddedFrame")
        check(len(res) >= 1, "SIA: no coadd at its own centre")
        rec = res[0]
        stream = rec.processed(circle=[ra0, dec0, 10 / 3600] * u.deg)
        cut = stream.read()
        whole = int(rec["access_estsize"]) * 1000
        check(len(cut) < whole / 4, f"pyvo processed(circle=10\"): {len(cut)} bytes, the frame is {whole}")
        with fits.open(io.BytesIO(cut)) as hdul:
            shape = next(h.data.shape for h in hdul if h.is_image and h.data is not None)
        check(max(shape) < 100, f"pyvo processed(circle=10\"): a {shape} image")
        stilts_text = ""
        if self.stilts:
            # STILTS and TOPCAT send SIA queries to the URL they are given.
            out = subprocess.run(
                [
                    self.stilts,
                    "cone",
                    "servicetype=sia2",
                    f"serviceurl={self.url('/vo/sia')}",
                    f"lon={ra0}",
                    f"lat={dec0}",
                    "radius=0.01",
                    "ofmt=csv",
                    "out=-",
                ],
                capture_output=True,
                text=True,
                timeout=300,
            )
            check(out.returncode == 0, f"stilts cone servicetype=sia2 at /vo/sia: {out.stderr[-800:]}")
            lines = [x for x in out.stdout.splitlines() if x.strip()]
            check(len(lines) >= 2, f"stilts cone servicetype=sia2 at /vo/sia: no rows: {out.stdout[:300]}")
            stilts_text = f"; stilts cone sia2 {len(lines) - 1} rows"
        return (
            f"sia ok (pyvo SIA2Service via VOSI; {sum(len(t) for t in inv.values())} frames in "
            f"{len(FRAME_CLASSES)} collections, {len(sky)} on the sky with s_region = astropy WCS footprint; "
            f"{len(circles)} circles = spherical oracle ({ambiguous} edge cases within 0.5\"); "
            f"BAND, TIME, COLLECTION subsets; MAXREC OVERFLOW; POS error 400; "
            f"pyvo processed() via SODA {len(cut)} bytes{stilts_text})"
        )

    # -- 3. DataLink -------------------------------------------------------------

    def root_reduced(self):
        """A ReducedScienceFrame at the coadd's centre, via SIA."""

        def make():
            c0 = self.inventory()["CoaddedRegriddedFrame"][0]
            _, res = self.sia_search(
                pos=(float(c0["s_ra"]) * u.deg, float(c0["s_dec"]) * u.deg, 0.01 * u.deg),
                collection="ReducedScienceFrame",
            )
            check(len(res) > 0, "SIA: no ReducedScienceFrame at the coadd's centre")
            return res[0]

        return self.cached("root_reduced", make)

    def area_datalink(self):
        rec = self.root_reduced()
        n = int(rec["object_id"])
        root = did(n)
        classes = self.class_of()
        dl = rec.getdatalink()
        rows = list(dl)
        check(rows, f"DataLink {root}: no rows")
        for r in rows:
            check(r.id == root, f"DataLink {root}: a row for {r.id}")
            check(not r.error_message, f"DataLink {root}: {r.semantics} has error {r.error_message}")
        dl2 = DatalinkResults.from_result_url(str(rec["datalink"]))
        key = lambda rs: sorted((r.semantics, raw(r, "access_url"), raw(r, "service_def")) for r in rs)
        check(key(dl2) == key(rows), f"DataLink {root}: the datalink column's document differs from pyvo's")
        links_url = str(rec["datalink"])
        r = self.get(links_url)
        check(
            r.headers.get("content-type", "").startswith("application/x-votable+xml"),
            f"{links_url}: content-type {r.headers.get('content-type')}",
        )
        check(
            "content=datalink" in r.headers.get("content-type", ""),
            f"{links_url}: content-type lacks content=datalink",
        )
        self.votable(links_url, r.content)
        links_path = self.save("links.vot", r.content)
        by = {}
        for x in rows:
            by.setdefault(x.semantics, []).append(x)

        this = by.get("#this", [])
        check(len(this) == 1, f"DataLink {root}: {len(this)} #this rows")
        check(this[0].access_url == self.url(f"/data/{n}"), f"DataLink {root}: #this is {this[0].access_url}")
        h, data, size = self.frame_hdu(n)
        check(
            int(this[0]["content_length"]) == size,
            f"DataLink {root}: #this content_length {this[0]['content_length']}, the file has {size} bytes",
        )
        prev = by.get("#preview", [])
        check(prev, f"DataLink {root}: no #preview")
        p = self.get(prev[0].access_url)
        check(
            p.headers.get("content-type", "").startswith(prev[0].content_type or "image/"),
            f"{prev[0].access_url}: content-type {p.headers.get('content-type')} but the link says {prev[0].content_type}",
        )
        check(p.content[:2] == b"\xff\xd8", f"{prev[0].access_url}: not a JPEG")
        aux = [x for x in by.get("#auxiliary", []) if x["local_semantics"] == "provenance"]
        check(aux, f"DataLink {root}: no #auxiliary provenance row")
        check(isinstance(self.get(aux[0].access_url).json(), dict), f"{aux[0].access_url}: not JSON")
        doc = by.get("#documentation", [])
        check(doc and self.get(doc[0].access_url).status_code == 200, f"DataLink {root}: #documentation")

        # Lineage: each parent semantics names the right classes (SIA says
        # which class each object is), and each parent lists us as a
        # #derivation.
        prog = list(dl.bysemantics("#progenitor", include_narrower=False))
        check(prog, f"DataLink {root}: no #progenitor")
        check(by.get("#bias"), f"DataLink {root}: no #bias")
        check(by.get("#flat"), f"DataLink {root}: no #flat")
        check(by.get("#derivation"), f"DataLink {root}: no #derivation")
        n_parents = 0
        for sem, allowed in PARENT_SEMANTICS.items():
            for x in by.get(sem, []):
                m = did_number(x.access_url)
                check(m is not None, f"DataLink {root} {sem}: {x.access_url} names no object")
                cls = classes.get(m)
                if sem == "#progenitor":
                    check(
                        cls == "RawScienceFrame",
                        f"DataLink {root}: #progenitor {did(m)} is a {cls} per SIA, not a RawScienceFrame",
                    )
                else:
                    check(cls in allowed, f"DataLink {root}: {sem} {did(m)} is a {cls} per SIA")
                sub = DatalinkResults.from_result_url(x.access_url)
                check(all(y.id == did(m) for y in sub), f"{x.access_url}: rows for other identifiers")
                t = list(sub.bysemantics("#this", include_narrower=False))
                check(t and t[0].access_url == self.url(f"/data/{m}"), f"{x.access_url}: #this is not /data/{m}")
                check(
                    cls in (t[0].description or ""),
                    f"{x.access_url}: #this description {t[0].description!r} does not name its class {cls}",
                )
                back = [did_number(y.access_url) for y in sub.bysemantics("#derivation", include_narrower=False)]
                check(n in back, f"{x.access_url}: {did(m)} does not list {root} as a #derivation")
                n_parents += 1
        for x in by["#derivation"]:
            m = did_number(x.access_url)
            sub = DatalinkResults.from_result_url(x.access_url)
            ups = [did_number(y.access_url) for y in sub if y.semantics in PARENT_SEMANTICS]
            check(n in ups, f"{x.access_url}: {did(m)} does not list {root} among its parents")

        # POST with a known and an unknown identifier; GET with both too.
        post = DatalinkQuery(self.url("/vo/links"), id=[root, UNKNOWN_DID]).execute(post=True)
        known = [x for x in post if x.id == root]
        unknown = [x for x in post if x.id == UNKNOWN_DID]
        check(key(known) == key(rows), f"DataLink POST: the rows of {root} differ from GET's")
        check(len(unknown) == 1, f"DataLink POST: {len(unknown)} rows for {UNKNOWN_DID}, not one")
        check(
            (unknown[0].error_message or "").startswith("NotFoundFault"),
            f"DataLink POST: {UNKNOWN_DID} error_message {unknown[0].error_message!r}",
        )
        check(not raw(unknown[0], "access_url"), f"DataLink: the fault row of {UNKNOWN_DID} has an access_url")
        get2 = DatalinkQuery(self.url("/vo/links"), id=[root, UNKNOWN_DID]).execute(post=False)
        check(key(get2) == key(post), "DataLink: GET and POST with two IDs differ")
        r = self.get(self.url("/vo/links"), expect=400)
        self.votable(r.url, r.content, status="ERROR")
        self.votlint([links_path])
        return (
            f"datalink ok (pyvo; {root}: {len(rows)} rows, {len(prog)} #progenitor = RawScienceFrame, "
            f"{n_parents} parents of the right SIA collections linking back; #this size, #preview JPEG; "
            f"POST/GET with {UNKNOWN_DID} -> NotFoundFault)"
        )

    # -- 4. SODA -----------------------------------------------------------------

    def soda_cutout(self, n, dl, **region):
        """Runs SODA for frame N through pyvo: (header, data, bytes)."""
        proc = dl.get_first_proc()
        if region.get("via") == "processed":
            region.pop("via")
            stream = proc.processed(**region)
            content = stream.read()
        else:
            region.pop("via", None)
            q = SodaQuery.from_resource(proc, dl.get_adhocservice_by_id(proc.service_def), **region)
            r = q.submit()
            check(r.status_code == 200, f"SODA {dict(q)}: HTTP {r.status_code}: {r.text[:200]}")
            content = r.content
        with fits.open(io.BytesIO(content)) as hdul:
            return hdul[0].header.copy(), np.asarray(hdul[0].data, dtype=np.float64), content

    def check_soda_box(self, n, what, h_cut, d_cut, sky_points):
        """(a) pixels = cutout API = stored frame; (b) the box against astropy."""
        h, data, _ = self.frame_hdu(n)
        w = WCS(h)
        ny, nx = d_cut.shape
        ox, oy = int(h_cut["ORIGX0"]), int(h_cut["ORIGY0"])
        check(h_cut.get("ORIGOBJ") == n, f"SODA {what}: ORIGOBJ {h_cut.get('ORIGOBJ')}, not {n}")
        check(
            (h_cut.get("LTV1"), h_cut.get("LTV2")) == (-ox, -oy),
            f"SODA {what}: LTV1/LTV2 {h_cut.get('LTV1')},{h_cut.get('LTV2')} disagree with ORIGX0/ORIGY0 {ox},{oy}",
        )
        check(
            0 <= ox and 0 <= oy and ox + nx <= data.shape[1] and oy + ny <= data.shape[0],
            f"SODA {what}: the cutout [{ox}:{ox + nx}]x[{oy}:{oy + ny}] is not trimmed to the frame {data.shape[::-1]}",
        )
        api = self.url(
            f"/api/cutout?frame={n}&x={ox + 1 + nx / 2}&y={oy + 1 + ny / 2}&width={nx}&height={ny}&format=fits"
        )
        with fits.open(io.BytesIO(self.get(api).content)) as hdul:
            d_api = np.asarray(hdul[0].data, dtype=np.float64)
            h_api = hdul[0].header
        check(
            (h_api["ORIGX0"], h_api["ORIGY0"]) == (ox, oy) and d_api.shape == d_cut.shape,
            f"SODA {what}: {api} cuts {d_api.shape} at {h_api['ORIGX0']},{h_api['ORIGY0']}, SODA {d_cut.shape} at {ox},{oy}",
        )
        check(np.array_equal(d_api, d_cut, equal_nan=True), f"SODA {what}: pixels differ from {api}")
        parent = data[oy : oy + ny, ox : ox + nx]
        check(
            np.array_equal(parent, d_cut, equal_nan=True),
            f"SODA {what}: pixels differ from the stored frame's [{ox}:{ox + nx}, {oy}:{oy + ny}] (astropy)",
        )
        # The cutout's WCS is the frame's, shifted by the origin.
        wc = WCS(h_cut)
        probe = SkyCoord(np.mean(sky_points[0]), np.mean(sky_points[1]), unit="deg")
        fx, fy = w.world_to_pixel(probe)
        cx, cy = wc.world_to_pixel(probe)
        check(
            abs(cx + ox - fx) < 1e-6 and abs(cy + oy - fy) < 1e-6,
            f"SODA {what}: the cutout's WCS is off by ({cx + ox - fx}, {cy + oy - fy}) px",
        )
        # (b) The box astropy's WCS gives for the region's boundary. One pixel
        # of slack on each side: wisecut samples the boundary at half-pixel
        # steps with its own WCS code, so a boundary point lying within
        # rounding (or a sampling step) of a pixel edge may land in the
        # neighbouring pixel, and SIP/TAN implementations agree to ~1e-6 px,
        # not exactly at half-integers.
        box = pixel_box(w, data.shape, *sky_points)
        check(box is not None, f"SODA {what}: astropy puts the region off the frame")
        got = (ox, oy, ox + nx - 1, oy + ny - 1)
        diff = max(abs(a - b) for a, b in zip(got, box))
        check(diff <= 1, f"SODA {what}: box {got} (x0, y0, x1, y1, 0-based), astropy's {box}")
        return diff

    def area_soda(self):
        rec = self.root_reduced()
        n = int(rec["object_id"])
        dl = rec.getdatalink()
        procs = list(dl.iter_procs())
        check(procs, f"DataLink {did(n)}: no service descriptor row")
        proc = dl.get_first_proc()
        check(proc.semantics == "#cutout", f"DataLink {did(n)}: the first processing row is {proc.semantics}")
        res = dl.get_adhocservice_by_id(proc.service_def)
        params = {p.name: p.value for p in res.params}
        check(
            str(params.get("standardID", "")).startswith("ivo://ivoa.net/std/SODA#sync-1"),
            f"SODA descriptor standardID {params.get('standardID')!r}",
        )
        check(
            params.get("accessURL") == self.url("/vo/soda/sync"),
            f"SODA descriptor accessURL {params.get('accessURL')!r}",
        )
        h, data, _ = self.frame_hdu(n)
        w = WCS(h)
        ny, nx = data.shape
        scale = pixel_scale(w)
        diffs = []

        def circle_points(ra, dec, r, k=3600):
            c = SkyCoord(ra, dec, unit="deg").directional_offset_by(
                np.linspace(0, 360, k, endpoint=False) * u.deg, r * u.deg
            )
            return c.ra.deg, c.dec.deg

        # Inside: a circle of 15 px radius around pixel (0.3 nx, 0.6 ny).
        c = w.pixel_to_world(0.3 * nx, 0.6 * ny)
        r = 15 * scale
        hc, dc, _ = self.soda_cutout(n, dl, via="processed", circle=(c.ra.deg, c.dec.deg, r))
        diffs.append(self.check_soda_box(n, "circle inside", hc, dc, circle_points(c.ra.deg, c.dec.deg, r)))
        check(min(dc.shape) >= 25, f"SODA circle of 15 px radius gave only {dc.shape}")
        # Over a corner: trimmed to the frame.
        c = w.pixel_to_world(0, 0)
        hc, dc, _ = self.soda_cutout(n, dl, circle=(c.ra.deg, c.dec.deg, 20 * scale))
        check((hc["ORIGX0"], hc["ORIGY0"]) == (0, 0), "SODA circle over the first corner does not start at 0,0")
        diffs.append(self.check_soda_box(n, "circle at a corner", hc, dc, circle_points(c.ra.deg, c.dec.deg, 20 * scale)))
        # A polygon (great-circle edges sampled here) and a RANGE.
        tri = [w.pixel_to_world(*p) for p in ((0.6 * nx, 0.2 * ny), (0.8 * nx, 0.25 * ny), (0.7 * nx, 0.4 * ny))]
        verts = [(t.ra.deg, t.dec.deg) for t in tri]
        hc, dc, _ = self.soda_cutout(n, dl, polygon=tuple(v for p in verts for v in p))
        pts = [p for i in range(3) for p in great_circle_points(verts[i], verts[(i + 1) % 3], 400)]
        diffs.append(self.check_soda_box(n, "polygon", hc, dc, ([p[0] for p in pts], [p[1] for p in pts])))
        a, b = w.pixel_to_world(0.45 * nx, 0.45 * ny), w.pixel_to_world(0.55 * nx, 0.6 * ny)
        r1, r2 = sorted((a.ra.deg, b.ra.deg))
        d1, d2 = sorted((a.dec.deg, b.dec.deg))
        q = SodaQuery.from_resource(proc, res)
        r1, r2, d1, d2 = (float(v) for v in (r1, r2, d1, d2))
        q["POS"] = f"RANGE {r1!r} {r2!r} {d1!r} {d2!r}"
        rr = q.submit()
        check(rr.status_code == 200, f"SODA POS=RANGE: HTTP {rr.status_code}: {rr.text[:200]}")
        with fits.open(io.BytesIO(rr.content)) as hdul:
            hc, dc = hdul[0].header.copy(), np.asarray(hdul[0].data, dtype=np.float64)
        t = np.linspace(0, 1, 400)
        ras = np.concatenate([r1 + (r2 - r1) * t, np.full_like(t, r2), r2 - (r2 - r1) * t, np.full_like(t, r1)])
        decs = np.concatenate([np.full_like(t, d1), d1 + (d2 - d1) * t, np.full_like(t, d2), d2 - (d2 - d1) * t])
        diffs.append(self.check_soda_box(n, "POS=RANGE", hc, dc, (ras, decs)))

        # A tile-compressed raw frame (the progenitor) cuts the same way.
        prog = next(dl.bysemantics("#progenitor", include_narrower=False))
        m = did_number(prog.access_url)
        pdl = DatalinkResults.from_result_url(prog.access_url)
        ph, pdata, _ = self.frame_hdu(m)
        pw = WCS(ph)
        c = pw.pixel_to_world(0.5 * pdata.shape[1], 0.5 * pdata.shape[0])
        hc, dc, _ = self.soda_cutout(m, pdl, circle=(c.ra.deg, c.dec.deg, 10 * scale))
        diffs.append(self.check_soda_box(m, f"raw {did(m)}", hc, dc, circle_points(c.ra.deg, c.dec.deg, 10 * scale)))

        # (c) no overlap -> 204; (d) errors.
        far = SodaQuery.from_resource(proc, res, circle=(float(rec["s_ra"]), float(rec["s_dec"]) + 5, 0.01))
        rr = far.submit()
        check(rr.status_code == 204, f"SODA circle 5 deg away: HTTP {rr.status_code}, expected 204")
        check(not rr.content, "SODA 204 with a body")
        q = SodaQuery.from_resource(proc, res)
        q["CIRCLE"] = "1 2"
        rr = q.submit()
        check(rr.status_code == 400, f"SODA CIRCLE=1 2: HTTP {rr.status_code}, expected 400")
        check(rr.headers.get("content-type", "").startswith("text/plain"), f"SODA 400: {rr.headers.get('content-type')}")
        check(rr.text.startswith("UsageError"), f"SODA CIRCLE=1 2: {rr.text[:100]!r}")
        stream = q.execute_stream()
        stream.read()
        try:
            q.raise_if_error()
            raise Fail("pyvo raise_if_error() accepts the SODA 400")
        except DALServiceError:
            pass
        q = SodaQuery(self.url("/vo/soda/sync"), id=UNKNOWN_DID, circle=(10, 10, 0.1))
        rr = q.submit()
        check(rr.status_code == 404, f"SODA unknown ID: HTTP {rr.status_code}, expected 404")
        check(rr.headers.get("content-type", "").startswith("text/plain"), f"SODA 404: {rr.headers.get('content-type')}")
        check(rr.text.startswith("NotFoundFault"), f"SODA unknown ID: {rr.text[:100]!r}")
        return (
            f"soda ok (pyvo descriptor from DataLink; circle, corner, polygon, RANGE and a compressed raw frame: "
            f"pixels = /api/cutout = stored frame, WCS shifted by ORIGX0/ORIGY0, box within {max(diffs)} px "
            f"of astropy's (<= 1 allowed); 204 off-frame; UsageError 400; NotFoundFault 404)"
        )

    # -- 5. PROV -----------------------------------------------------------------

    def prov_docs(self, n, direction, depth="ALL"):
        q = f"/prov?ID={n}&DEPTH={depth}&DIRECTION={direction}"
        rj = self.get(self.url(q))
        rn = self.get(self.url(q + "&RESPONSEFORMAT=PROV-N"))
        check("json" in rj.headers.get("content-type", ""), f"{q}: content-type {rj.headers.get('content-type')}")
        return rj.content, rn.content

    @staticmethod
    def spawn(script, *args):
        """Starts a sibling peer script (same interpreter) in the background."""
        return subprocess.Popen(
            [sys.executable, str(HERE / script), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def reap(proc, what):
        """Its one-line summary; its complaint as the failure otherwise."""
        out, err = proc.communicate(timeout=120)
        check(proc.returncode == 0, f"{what}: {(err + out).strip()[-1500:]}")
        return out.strip()

    def start_check_prov(self, name, doc_json, doc_provn):
        pj = self.save(f"{name}.json", doc_json)
        pn = self.save(f"{name}.provn", doc_provn)
        return self.spawn("check_prov.py", pj, pn)

    def prov_graph(self, doc_json, what):
        d = json.loads(doc_json)
        ents = {}
        for key, e in d.get("entity", {}).items():
            did_attr = e.get("wisecut:publisher_did")
            did_attr = did_attr.get("$") if isinstance(did_attr, dict) else did_attr
            m = did_number(did_attr)
            check(m is not None, f"{what}: entity {key} has no wisecut:publisher_did")
            ents[key] = (m, e.get("wisecut:class_name"))
        edges = set()
        for key, dv in d.get("wasDerivedFrom", {}).items():
            a, b = dv.get("prov:generatedEntity"), dv.get("prov:usedEntity")
            check(a in ents and b in ents, f"{what}: {key} names undeclared entities")
            edges.add((ents[a][0], ents[b][0]))
        return ents, edges

    def area_prov(self):
        inv = self.inventory()
        classes = self.class_of()
        coadd = int(inv["CoaddedRegriddedFrame"][0]["object_id"])
        dj, dn = self.prov_docs(coadd, "BACK")
        back_check = self.start_check_prov(f"prov_{coadd}_back", dj, dn)
        ents, edges = self.prov_graph(dj, f"/prov?ID={coadd}")
        ids = {m for m, _ in ents.values()}
        nodes, dl_edges = self.lineage_via_datalink(coadd, "BACK")
        check(
            ids == nodes,
            f"PROV of {coadd}: {len(ids)} entities, the DataLink walk finds {len(nodes)}; "
            f"only in PROV {sorted(ids - nodes)[:5]}, only in DataLink {sorted(nodes - ids)[:5]}",
        )
        check(
            edges == dl_edges,
            f"PROV of {coadd}: wasDerivedFrom differs from DataLink lineage rows: "
            f"{sorted(edges ^ dl_edges)[:5]}",
        )
        kinds = {classes.get(m) for m in ids}
        check(
            "RawScienceFrame" in kinds and kinds & PARENT_SEMANTICS["#bias"] and kinds & PARENT_SEMANTICS["#flat"],
            f"PROV of {coadd}: only classes {kinds}; the lineage should reach raw, bias and flat frames",
        )
        for m, cls in ents.values():
            if m in classes:
                check(cls == classes[m], f"PROV: {did(m)} is a {cls}, SIA says {classes[m]}")
        # The DataLink #auxiliary link of the coadd is the same document.
        aux = [
            r
            for r in self.links([did(coadd)])
            if r.semantics == "#auxiliary" and r["local_semantics"] == "provenance"
        ]
        check(aux, f"DataLink {did(coadd)}: no provenance link")
        check(
            json.loads(self.get(aux[0].access_url).content) == json.loads(dj),
            f"{aux[0].access_url}: not the same PROV-JSON as /prov?ID={coadd}&DEPTH=ALL&DIRECTION=BACK",
        )
        # DEPTH=1: the root and its direct parents.
        d1, _ = self.prov_docs(coadd, "BACK", depth=1)
        e1, _ = self.prov_graph(d1, f"/prov?ID={coadd}&DEPTH=1")
        direct = {coadd} | {p for c, p in dl_edges if c == coadd}
        check({m for m, _ in e1.values()} == direct, f"PROV DEPTH=1 of {coadd}: not the root and its parents")
        # FORWARD from a raw exposure of the coadd's lineage.
        raw = min(m for m in ids if classes.get(m) == "RawScienceFrame")
        fj, fn = self.prov_docs(raw, "FORWARD")
        forward_check = self.start_check_prov(f"prov_{raw}_forward", fj, fn)
        fents, fedges = self.prov_graph(fj, f"/prov?ID={raw}&DIRECTION=FORWARD")
        fnodes, fdl = self.lineage_via_datalink(raw, "FORWARD")
        fids = {m for m, _ in fents.values()}
        check(
            fids == fnodes and fedges == fdl,
            f"PROV FORWARD of {raw}: entities/derivations differ from the DataLink #derivation walk: "
            f"{sorted(fids ^ fnodes)[:5]} {sorted(fedges ^ fdl)[:5]}",
        )
        check(coadd in fids, f"PROV FORWARD of {raw} does not reach the coadd {coadd}")
        line = self.reap(back_check, f"check_prov.py on /prov?ID={coadd}&DEPTH=ALL&DIRECTION=BACK")
        self.reap(forward_check, f"check_prov.py on /prov?ID={raw}&DEPTH=ALL&DIRECTION=FORWARD")
        return (
            f"prov ok (coadd {coadd} BACK: {line.removeprefix('prov: ')}; entities and wasDerivedFrom = "
            f"DataLink walk ({len(nodes)} objects, {len(dl_edges)} edges); DEPTH=1; raw {raw} FORWARD "
            f"{len(fids)} entities = DataLink #derivation walk)"
        )

    # -- 6. MOC ------------------------------------------------------------------

    def area_moc(self):
        from mocpy import MOC

        inv = self.inventory()
        cls = "ReducedScienceFrame"
        rows = inv[cls]
        sky = self.sky_frames()
        all_centres = np.array([[float(r["s_ra"]), float(r["s_dec"])] for r in sky.values()])
        # A point 5 deg from every frame: 5 deg north (or south) of the mean.
        mra, mdec = all_centres[:, 0].mean(), all_centres[:, 1].mean()
        far = (mra, mdec + 5 if mdec < 80 else mdec - 5)
        seps = SkyCoord(all_centres[:, 0], all_centres[:, 1], unit="deg").separation(
            SkyCoord(*far, unit="deg")
        ).deg
        fovs = [float(r["s_fov"]) for r in sky.values()]
        check(seps.min() - max(fovs) > 4, f"MOC: the outside point {far} is not far from every frame")
        lines, runs = [], []
        mocs = {}
        filters = sorted({str(r["filter"]) for r in rows})
        check(len(filters) > 1, f"MOC: {cls} has a single filter")
        pick = filters[len(filters) // 2]
        for flt in (None, pick):
            q = f"/vo/moc?class={cls}&depth=14" + (f"&filter={flt}" if flt else "")
            rf = self.get(self.url(q + "&format=fits"))
            rj = self.get(self.url(q + "&format=json"))
            chosen = [r for r in rows if flt is None or str(r["filter"]) == flt]
            check(
                rf.headers.get("x-wisecut-frames") == str(len(chosen)),
                f"{q}: x-wisecut-frames {rf.headers.get('x-wisecut-frames')}, SIA has {len(chosen)} frames",
            )
            name = f"moc_{cls}_{flt or 'all'}"
            pf = self.save(name + ".fits", rf.content)
            pj = self.save(name + ".json", rj.content)
            points = {
                "inside": [[float(r["s_ra"]), float(r["s_dec"])] for r in chosen],
                "outside": [list(far)],
            }
            pp = self.save(name + "_points.json", json.dumps(points).encode())
            polys = [[list(c) for c in self.footprint(int(r["object_id"]))] for r in chosen]
            pg = self.save(name + "_polygons.json", json.dumps(polys).encode())
            runs.append((flt or "all", q, self.spawn("check_moc.py", pf, pj, pp, pg)))
            moc = MOC.load(str(pf), format="fits")
            check(moc.max_order == 14, f"{q}: order {moc.max_order}, asked 14")
            check(moc == MOC.load(str(pj), format="json"), f"{q}: FITS and JSON differ (mocpy)")
            mocs[flt] = moc
        for label, q, proc in runs:
            lines.append(f"{label}: " + self.reap(proc, f"check_moc.py on {q}").removeprefix("moc: "))
        check(
            mocs[pick].difference(mocs[None]).empty(),
            f"MOC: the {pick}-band {cls} MOC is not inside the all-filter one",
        )
        return f"moc ok ({cls}, mocpy = check_moc.py with astropy footprints; " + "; ".join(lines) + ")"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("base_url")
    ap.add_argument("--stilts", help="path of the stilts launcher; votlint must be clean")
    ap.add_argument("--keep-going", action="store_true", help="run every area, report all failures")
    ap.add_argument("--workdir", help="keep downloaded files here")
    args = ap.parse_args()
    if args.stilts and not shutil.which(args.stilts):
        sys.exit(f"vo: FAIL setup: --stilts {args.stilts}: not found")
    tmp = None
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        work = args.workdir
    else:
        tmp = tempfile.TemporaryDirectory(prefix="wisecut-vo-")
        work = tmp.name
    c = Checker(args.base_url, args.stilts, work)
    areas = [
        ("votable", c.area_votable),
        ("sia", c.area_sia),
        ("datalink", c.area_datalink),
        ("soda", c.area_soda),
        ("prov", c.area_prov),
        ("moc", c.area_moc),
    ]
    t0 = time.monotonic()
    failures = []
    for name, fn in areas:
        t = time.monotonic()
        try:
            line = fn()
        except Fail as e:
            msg = f"vo: FAIL {name}: {e} [{time.monotonic() - t:.1f} s]"
            print(msg, file=sys.stderr, flush=True)
            failures.append(msg)
            if not args.keep_going:
                sys.exit(1)
            continue
        except Exception as e:  # a client error, or a bug in this check
            if not isinstance(e, (requests.RequestException, DALServiceError)):
                import traceback

                traceback.print_exc()
            msg = f"vo: FAIL {name}: {type(e).__name__}: {e}"
            print(msg, file=sys.stderr, flush=True)
            failures.append(msg)
            if not args.keep_going:
                sys.exit(1)
            continue
        print(f"vo: {line} [{time.monotonic() - t:.1f} s]", flush=True)
    if tmp:
        tmp.cleanup()
    if failures:
        print(f"vo: {len(failures)} of {len(areas)} areas failed", file=sys.stderr)
        sys.exit(1)
    print(f"vo: all {len(areas)} areas ok in {time.monotonic() - t0:.1f} s")


if __name__ == "__main__":
    main()
