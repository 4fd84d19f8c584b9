"""Peer test: wisecut's cutouts agree with astropy's Cutout2D.

Writes FITS inputs with astropy (TAN with a CD matrix, TAN-SIP, legacy
PC001001 + CDELT, CROTA2, an unsigned 16-bit integer image with BZERO, and
tile-compressed copies), asks the `wisecut cutout` command for cutouts of odd
and even sizes, centred by sky position and by pixel, overlapping each of the
four edges, and compares with `Cutout2D(mode="partial", fill_value=nan)`:

* every pixel equal (NaN where astropy pads);
* the sky positions of the cutout's corners and centre, computed by astropy
  from wisecut's header and from Cutout2D's WCS, within 1 mas;
* CRVAL and the linear matrix unchanged, CRPIX shifted by the offset.

Also checks BSOFTEN/BOFFSET linearisation against the PS1 formula, and
prints one summary line. Exits non-zero on the first disagreement.

Usage: check_cutouts.py WISECUT_BINARY WORK_DIR
"""

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
from astropy.wcs.utils import wcs_to_celestial_frame
from astropy.utils.exceptions import AstropyWarning
from astropy import log
import warnings

# The inputs use deprecated forms (PC001001) on purpose; astropy's warnings
# about them would drown the result.
warnings.simplefilter("ignore", AstropyWarning)
log.setLevel("ERROR")

WISECUT = sys.argv[1]
WORK = Path(sys.argv[2])
WORK.mkdir(parents=True, exist_ok=True)

rng = np.random.default_rng(20261121)
worst_mas = 0.0
checked = 0


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def base_header(kind, nx, ny):
    h = fits.Header()
    h["CTYPE1"] = "RA---TAN-SIP" if kind == "sip" else "RA---TAN"
    h["CTYPE2"] = "DEC--TAN-SIP" if kind == "sip" else "DEC--TAN"
    h["CRVAL1"] = 150.1234
    h["CRVAL2"] = 2.2345
    h["CRPIX1"] = nx / 2 + 0.3
    h["CRPIX2"] = ny / 2 - 0.7
    scale = 0.4 / 3600
    theta = math.radians(17.0)
    if kind in ("cd", "sip"):
        h["CD1_1"] = -scale * math.cos(theta)
        h["CD1_2"] = scale * math.sin(theta)
        h["CD2_1"] = scale * math.sin(theta)
        h["CD2_2"] = scale * math.cos(theta)
    elif kind == "pc001001":
        h["CDELT1"] = -scale
        h["CDELT2"] = scale
        h["PC001001"] = math.cos(theta)
        h["PC001002"] = -math.sin(theta)
        h["PC002001"] = math.sin(theta)
        h["PC002002"] = math.cos(theta)
    elif kind == "crota":
        h["CDELT1"] = -scale
        h["CDELT2"] = scale
        h["CROTA2"] = 17.0
    if kind == "sip":
        h["A_ORDER"] = 2
        h["B_ORDER"] = 2
        h["A_0_2"] = 2.0e-6
        h["A_1_1"] = -1.5e-6
        h["A_2_0"] = 3.0e-6
        h["B_0_2"] = -2.5e-6
        h["B_1_1"] = 1.0e-6
        h["B_2_0"] = 1.2e-6
    if kind != "pc001001":
        h["RADESYS"] = "ICRS"
    h["OBSERVER"] = "peer test"
    return h


def write_inputs():
    files = {}
    nx, ny = 301, 220
    for kind in ("cd", "sip", "pc001001", "crota"):
        data = rng.normal(100.0, 10.0, size=(ny, nx)).astype(np.float32)
        data[5, 7] = np.nan
        path = WORK / f"in_{kind}.fits"
        fits.PrimaryHDU(data, header=base_header(kind, nx, ny)).writeto(path, overwrite=True)
        files[kind] = (path, 0)
    # Unsigned 16-bit via BZERO = 32768.
    u16 = rng.integers(0, 65535, size=(ny, nx), dtype=np.uint16)
    path = WORK / "in_u16.fits"
    fits.PrimaryHDU(u16, header=base_header("cd", nx, ny)).writeto(path, overwrite=True)
    files["u16"] = (path, 0)
    # Tile-compressed: quantised float with square tiles, integer row tiles.
    data = rng.normal(100.0, 10.0, size=(ny, nx)).astype(np.float32)
    path = WORK / "in_rice_float.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.CompImageHDU(
                data,
                header=base_header("sip", nx, ny),
                compression_type="RICE_1",
                tile_shape=(64, 64),
            ),
        ]
    ).writeto(path, overwrite=True)
    files["rice_float"] = (path, 1)
    i16 = rng.integers(-3000, 30000, size=(ny, nx)).astype(np.int16)
    path = WORK / "in_rice_rows.fits"
    fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.CompImageHDU(
                i16,
                header=base_header("cd", nx, ny),
                compression_type="RICE_1",
                tile_shape=(1, nx),
            ),
        ]
    ).writeto(path, overwrite=True)
    files["rice_rows"] = (path, 1)
    return files


def run_cutout(path, hdu, out, **kw):
    args = [WISECUT, "cutout", str(path), "--hdu", str(hdu), "-o", str(out)]
    for k, v in kw.items():
        # An empty value is a bare flag (--raw).
        args += [f"--{k}"] if v == "" else [f"--{k}", str(v)]
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        fail(f"wisecut cutout {kw} on {path.name}: {res.stderr.strip()}")


def compare(name, path, hdu, case, integer):
    global worst_mas, checked
    out = WORK / f"out_{name}_{checked}.fits"
    out.unlink(missing_ok=True)
    with fits.open(path) as hl:
        data = hl[hdu].data
        header = hl[hdu].header
        wcs = WCS(header)
    if "ra" in case:
        frame = wcs_to_celestial_frame(wcs)
        pos = SkyCoord(float(case["ra"]) * u.deg, float(case["dec"]) * u.deg, frame=frame)
    else:
        pos = (case["x"] - 1.0, case["y"] - 1.0)
    if "unit" in case:
        size = (case["height"] * u.arcsec, case["width"] * u.arcsec)
    else:
        size = (case["height"], case["width"])
    if integer:
        ref = Cutout2D(data, pos, size, wcs=wcs, mode="partial", fill_value=0)
    else:
        ref = Cutout2D(
            data.astype(np.float64), pos, size, wcs=wcs, mode="partial", fill_value=np.nan
        )
    run_cutout(path, hdu, out, **case)
    with fits.open(out) as hl:
        mine = hl[0].data
        mh = hl[0].header
        mine_wcs = WCS(mh)
    if mine.shape != ref.data.shape:
        fail(f"{name} {case}: shape {mine.shape} != astropy {ref.data.shape}")
    inside = np.zeros(ref.data.shape, dtype=bool)
    inside[ref.slices_cutout] = True
    padded = int((~inside).sum())
    if mh["NPADPIX"] != padded:
        fail(f"{name} {case}: NPADPIX {mh['NPADPIX']} != {padded}")
    if integer:
        if mh["BITPIX"] != 16:
            fail(f"{name}: BITPIX {mh['BITPIX']} changed")
        if not np.array_equal(mine[inside], ref.data[inside]):
            fail(f"{name} {case}: pixels differ")
        if padded:
            raw = fits.getdata(out, do_not_scale_image_data=True)
            if not np.all(raw[~inside] == mh["BLANK"]):
                fail(f"{name} {case}: padding is not BLANK")
    else:
        if not np.array_equal(mine.astype(np.float64), ref.data, equal_nan=True):
            bad = np.argwhere(~((mine == ref.data) | (np.isnan(mine) & np.isnan(ref.data))))
            fail(f"{name} {case}: {len(bad)} pixels differ, first at {bad[0]}")
    # WCS: linear part and CRVAL unchanged, CRPIX shifted.
    ox, oy = mh["ORIGX0"], mh["ORIGY0"]
    if (ox, oy) != (ref.origin_original[0] - ref.slices_cutout[1].start,
                    ref.origin_original[1] - ref.slices_cutout[0].start):
        fail(f"{name} {case}: offset ({ox}, {oy}) disagrees with Cutout2D")
    for k in ("CRVAL1", "CRVAL2"):
        if mh[k] != header[k]:
            fail(f"{name}: {k} changed")
    for k in ("CRPIX1", "CRPIX2"):
        shift = ox if k.endswith("1") else oy
        if mh[k] != header[k] - shift:
            fail(f"{name}: {k} {mh[k]} != {header[k]} - {shift}")
    if "PC001001" in header and "PC1_1" not in mh:
        fail(f"{name}: PC001001 not converted to PC1_1")
    if "RADESYS" not in mh:
        fail(f"{name}: RADESYS missing")
    h, w = ref.data.shape
    pts = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1], [(w - 1) / 2, (h - 1) / 2]])
    a = mine_wcs.celestial.all_pix2world(pts, 0)
    b = ref.wcs.all_pix2world(pts, 0)
    sep = SkyCoord(a * u.deg).separation(SkyCoord(b * u.deg)).to(u.mas).value
    worst_mas = max(worst_mas, float(sep.max()))
    if sep.max() >= 1.0:
        fail(f"{name} {case}: corner positions differ by {sep.max():.3g} mas")
    # The alternate PHYSICAL WCS maps cutout pixel 1 to the parent pixel.
    phys = WCS(mh, key="P")
    px = phys.wcs_pix2world([[0, 0]], 0)[0]
    if tuple(px) != (ox + 1, oy + 1):
        fail(f"{name}: PHYSICAL WCS gives {px}, expected {(ox + 1, oy + 1)}")
    checked += 1


def cases_for(wcs, nx, ny):
    cx, cy = nx / 2 + 0.37, ny / 2 - 0.21
    out = []
    for w, h in ((15, 15), (16, 16), (15, 22), (40, 9)):
        out.append({"x": cx, "y": cy, "width": w, "height": h})
        ra, dec = wcs.all_pix2world([[cx - 1 + 3.3, cy - 1 - 2.6]], 0)[0]
        out.append({"ra": repr(float(ra)), "dec": repr(float(dec)), "width": w, "height": h})
    # Exactly on pixel centres and half pixels (rounding convention).
    out.append({"x": 100.0, "y": 50.0, "width": 16, "height": 15})
    out.append({"x": 100.5, "y": 50.5, "width": 15, "height": 16})
    # Partial overlap at each edge, by pixel and by sky position.
    for x, y in ((2.0, cy), (nx - 1.5, cy), (cx, 3.2), (cx, ny - 0.8), (1.0, 1.0)):
        out.append({"x": x, "y": y, "width": 21, "height": 20})
        ra, dec = wcs.all_pix2world([[x - 1, y - 1]], 0)[0]
        out.append({"ra": repr(float(ra)), "dec": repr(float(dec)), "width": 20, "height": 21})
    # Angular size.
    ra, dec = wcs.all_pix2world([[cx - 1, cy - 1]], 0)[0]
    out.append({"ra": repr(float(ra)), "dec": repr(float(dec)), "width": 10.0, "height": 6.2,
                "unit": "arcsec"})
    return out


def check_bsoften():
    """PS1 stacks: flux = BOFFSET + BSOFTEN * 2 sinh(v * 0.4 ln 10)."""
    global checked
    nx, ny = 64, 48
    flux = rng.normal(50.0, 200.0, size=(ny, nx))
    soften, offset = 12.5, 3.0
    v = np.arcsinh((flux - offset) / (2 * soften)) / (0.4 * math.log(10))
    h = base_header("cd", nx, ny)
    h["BSOFTEN"] = soften
    h["BOFFSET"] = offset
    path = WORK / "in_asinh.fits"
    fits.PrimaryHDU(v.astype(np.float32), header=h).writeto(path, overwrite=True)
    out = WORK / "out_asinh.fits"
    out.unlink(missing_ok=True)
    run_cutout(path, 0, out, x=30, y=20, width=11, height=9)
    mine = fits.getdata(out)
    mh = fits.getheader(out)
    # Cutout2D convention: x0 = ceil(29 - 5.5) = 24, y0 = ceil(19 - 4.5) = 15.
    stored = fits.getdata(path)[15:24, 24:35].astype(np.float64)
    expect = offset + soften * 2 * np.sinh(stored * 0.4 * math.log(10))
    if "BSOFTEN" in mh or not mh.get("FLUXLIN"):
        fail("BSOFTEN cutout still declares asinh values")
    if not np.allclose(mine, expect, rtol=1e-6, atol=1e-4):
        fail(f"BSOFTEN linearisation differs by {np.abs(mine - expect).max()}")
    raw = WORK / "out_asinh_raw.fits"
    raw.unlink(missing_ok=True)
    run_cutout(path, 0, raw, x=30, y=20, width=11, height=9, raw="")
    if not np.array_equal(fits.getdata(raw), stored.astype(np.float32)):
        fail("--raw BSOFTEN cutout changed the stored values")
    checked += 2


def check_zscale(files):
    """Rendering limits: wisecut's zscale and percentile intervals against
    astropy's ZScaleInterval and PercentileInterval on the cutout's pixels."""
    global checked
    from astropy.visualization import PercentileInterval, ZScaleInterval

    for name in ("cd", "rice_float", "u16"):
        path, hdu = files[name]
        for interval, ref in (("zscale", ZScaleInterval()),
                              ("percentile:99.5", PercentileInterval(99.5))):
            out = WORK / f"render_{name}_{checked}.png"
            out.unlink(missing_ok=True)
            args = [WISECUT, "cutout", str(path), "--hdu", str(hdu), "--x", "120.3", "--y",
                    "90.8", "--width", "101", "--height", "77", "--format", "png", "--interval",
                    interval, "-o", str(out)]
            res = subprocess.run(args, capture_output=True, text=True)
            if res.returncode != 0:
                fail(f"render {name} {interval}: {res.stderr.strip()}")
            mine = [float(v) for v in res.stdout.split("limits:")[1].split()]
            fits_out = WORK / f"render_{name}_{checked}.fits"
            fits_out.unlink(missing_ok=True)
            run_cutout(path, hdu, fits_out, x=120.3, y=90.8, width=101, height=77)
            data = fits.getdata(fits_out).astype(np.float64)
            expect = ref.get_limits(data[np.isfinite(data)])
            rel = max(abs(m - e) / max(abs(e), 1e-12) for m, e in zip(mine, expect))
            if rel > 1e-5:
                fail(f"{interval} limits on {name}: wisecut {mine}, astropy {expect}")
            checked += 1


def main():
    files = write_inputs()
    for name, (path, hdu) in files.items():
        with fits.open(path) as hl:
            wcs = WCS(hl[hdu].header)
            ny, nx = hl[hdu].data.shape
        integer = name in ("u16", "rice_rows")
        for case in cases_for(wcs, nx, ny):
            compare(name, path, hdu, case, integer)
    check_bsoften()
    check_zscale(files)
    print(
        f"cutout peer: checked {checked} cutouts against astropy Cutout2D "
        f"({', '.join(files)}), worst corner separation {worst_mas:.3g} mas"
    )


main()
