"""Peer test: wisecut's coverage MOCs agree with mocpy.

Usage: check_moc.py FITS_FILE JSON_FILE POINTS_JSON [POLYGONS_JSON]

FITS_FILE and JSON_FILE are the same spatial MOC as wisecut serialised it
(src/vo/coverage.rs: to_fits, IVOA MOC 2.0 NUNIQ; to_json, the Aladin/mocpy
JSON form). POINTS_JSON is

    {"inside": [[ra, dec], ...], "outside": [[ra, dec], ...]}

in degrees (ICRS); every "inside" point must be in the MOC and no "outside"
point may be. POLYGONS_JSON, optional, is the list of frame footprints the
MOC was built from, each a list of [ra, dec] corners in order around the
edge:

    [[[ra, dec], [ra, dec], [ra, dec], [ra, dec]], ...]

Checks, all with mocpy (which wraps the same CDS Rust MOC library, but reads
the files with its own code path):

1. mocpy reads both files, and they are the same MOC at the same order.
2. The points are classified as POINTS_JSON says (mocpy's contains_lonlat).
3. With POLYGONS_JSON: mocpy's own MOC of the union of
   MOC.from_polygon_skycoord(polygon, max_depth=<the file's order>) is
   compared with the file. The two are expected to be identical (same
   polygon algorithm, same "cells touching the polygon" selection), and
   `exact=yes` says so. The tolerance, should the algorithms ever differ,
   is two cells at the MOC's order: every cell in one MOC and not in the
   other must be within two cells (8-neighbour steps, mocpy's `extended`)
   of the other MOC. Two polygon-to-cells rules can only disagree on cells
   the polygon edge crosses (or grazes within rounding); along an edge such
   a cell touches a cell both rules keep, but at a frame corner, where the
   HEALPix diamonds meet the corner at ~45 degrees, the crossed cells reach
   two steps from the nearest fully-inside cell. (Measured: wisecut's MOC
   versus the same frames with only fully-inside cells kept differs by
   thousands of cells, 43 of them two steps away at the corners, none
   further.) This bounds the area difference to a band two cells wide
   along the perimeter (printed as band_cells, the cells within two steps
   of the boundary), while a real error - a hole, a frame on the wrong side
   of RA=0, a polygon taken as its complement, a missing frame - fails.

Prints one line

    moc: order=14 cells=N area=A deg2 inside=I/I outside=O/O
         polygons=P peer_cells=M diff_cells=D band_cells=B exact=yes

(on one line) and exits 1 on any failure, with the reasons on stderr; 2 on
bad usage.
"""

import json
import sys

import astropy.units as u
import numpy as np
from astropy.coordinates import Latitude, Longitude, SkyCoord
from mocpy import MOC

FULL_SKY_SQ_DEG = 4 * np.pi * (180 / np.pi) ** 2
# How far (in cells at the MOC's order) the two polygon MOCs may disagree;
# see the module docstring.
TOLERANCE_CELLS = 2


def n_cells(moc, order):
    """Number of cells of the given order the MOC covers (exact below order 24)."""
    return int(round(moc.sky_fraction * 12 * 4**order))


def grown(moc, steps):
    """The MOC plus every cell within `steps` neighbour steps of it."""
    for _ in range(steps):
        moc = moc.extended()
    return moc


def shrunk(moc, steps):
    """The MOC minus every cell within `steps` neighbour steps of its outside."""
    for _ in range(steps):
        moc = moc.contracted()
    return moc


def points_array(points, key):
    arr = np.asarray(points.get(key, []), dtype=float)
    return arr.reshape(-1, 2)


def contained(moc, arr):
    if len(arr) == 0:
        return np.zeros(0, dtype=bool)
    return np.asarray(
        moc.contains_lonlat(
            lon=Longitude(arr[:, 0], unit=u.deg), lat=Latitude(arr[:, 1], unit=u.deg)
        ),
        dtype=bool,
    )


def peer_moc(polygons, order):
    """mocpy's own union of the frame polygons at the given order."""
    peer = MOC.new_empty(order)
    for corners in polygons:
        corners = np.asarray(corners, dtype=float)
        polygon = MOC.from_polygon_skycoord(
            SkyCoord(corners[:, 0], corners[:, 1], unit="deg", frame="icrs"),
            max_depth=order,
        )
        peer = peer.union(polygon)
    return peer


def main(argv):
    if len(argv) not in (4, 5):
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    fits_path, json_path, points_path = argv[1:4]
    failures = []

    fits_moc = MOC.load(fits_path, format="fits")
    json_moc = MOC.load(json_path, format="json")
    order = fits_moc.max_order
    if json_moc.max_order != order:
        failures.append(f"JSON MOC order {json_moc.max_order} != FITS order {order}")
    if fits_moc != json_moc:
        failures.append("FITS and JSON MOCs differ")

    with open(points_path) as f:
        points = json.load(f)
    inside = points_array(points, "inside")
    outside = points_array(points, "outside")
    in_mask = contained(fits_moc, inside)
    out_mask = contained(fits_moc, outside)
    for ra, dec in inside[~in_mask]:
        failures.append(f"inside point ({ra}, {dec}) is not in the MOC")
    for ra, dec in outside[out_mask]:
        failures.append(f"outside point ({ra}, {dec}) is in the MOC")

    peer_text = ""
    if len(argv) == 5:
        with open(argv[4]) as f:
            polygons = json.load(f)
        peer = peer_moc(polygons, order)
        diff = fits_moc.symmetric_difference(peer)
        stray = fits_moc.difference(peer).difference(grown(peer, TOLERANCE_CELLS))
        stray = stray.union(
            peer.difference(fits_moc).difference(grown(fits_moc, TOLERANCE_CELLS))
        )
        band = grown(fits_moc, TOLERANCE_CELLS).difference(
            shrunk(fits_moc, TOLERANCE_CELLS)
        )
        diff_cells = n_cells(diff, order)
        peer_text = (
            f" polygons={len(polygons)} peer_cells={n_cells(peer, order)}"
            f" diff_cells={diff_cells} band_cells={n_cells(band, order)}"
            f" exact={'yes' if diff_cells == 0 else 'no'}"
        )
        if not stray.empty():
            failures.append(
                f"{n_cells(stray, order)} cells differ from mocpy's polygons by "
                f"more than {TOLERANCE_CELLS} cells from the boundary"
            )

    print(
        f"moc: order={order} cells={n_cells(fits_moc, order)}"
        f" area={fits_moc.sky_fraction * FULL_SKY_SQ_DEG:.6f} deg2"
        f" inside={int(in_mask.sum())}/{len(inside)}"
        f" outside={int((~out_mask).sum())}/{len(outside)}" + peer_text
    )
    for failure in failures:
        print(f"FAIL: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
