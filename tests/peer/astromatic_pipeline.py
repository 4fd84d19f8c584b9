#!/usr/bin/env python3
"""Reduce a few raw exposures with real tools, as an astronomer would.

    astromatic_pipeline.py RAWDIR OUTDIR [--chip ccd1] [--filter g] [--max-science 2]

This is the "real peer" for ``wisecut ingest DIR`` (issue 15): it takes raw
frames (any directory of FITS files; CI points it at the tiny sample
survey's ``raw/`` directory) and makes a product directory with ccdproc,
SExtractor (``source-extractor``), SCAMP and SWarp (Debian's binary is
``SWarp``), so that wisecut has to infer, with no manifest, the lineage these
tools actually followed.  Nothing here knows about wisecut's own manifest:
the frames are chosen by reading FITS headers (IMAGETYP, FILTER, CHIPID,
DATE-OBS), the way one chooses them from a header listing.

Selection (deterministic): the science exposures (IMAGETYP 'object') of the
chosen chip and filter from the first night that has any, sorted by DATE-OBS
(at most ``--max-science``), plus that night's biases of the chip and dome
flats of the chip and filter.  A night is the calendar date of
DATE-OBS - 12 h.

Output layout (all names relative to OUTDIR):

    raw/        the selected raw frames, byte-identical copies
    cal/        masterbias_<night>_<chip>.fits, masterflat_<filter>_<night>_<chip>.fits
    red/        <obs>_red.fits (reduced science; <obs> is the raw name without
                its "raw_" prefix) and <obs>_red.head (SCAMP's astrometric
                solution, which SWarp reads next to the image)
    cat/        <obs>_red.cat (SExtractor FITS_LDAC of each reduced frame),
                coadd.cat (of the coadd)
    resamp/     <obs>_red.resamp.fits and .resamp.weight.fits (SWarp, COMBINE N)
    coadd/      coadd.fits, coadd.weight.fits, coadd.xml (SWarp, COMBINE Y,
                RESAMPLE N: the resampled frames are summed as they are),
                resamp.xml (the XML of the resampling run)
    scamp/      astref.cat (SCAMP's reference catalogue, FITS_LDAC, built here
                from the stars of every reduced frame's catalogue), scamp.xml
    config/     the SExtractor parameter file
    truth.json  what the script ran (paths relative to OUTDIR):
                {"tools": {name: version}, "selection": {night, chip, filter},
                 "files": {path: expected wisecut class},
                 "edges": [{"child": path, "parent": path, "role": raw|bias|flat|
                            reduced|regridded|frame}],
                 "auxiliary": {path: weight|scamp-head|xml|reference-catalog|
                               config|log}}
    log/        each tool's stdout/stderr

Steps: ccdproc overscan-subtracts (BIASSEC, median per row) and trims
(TRIMSEC, else DATASEC) every raw frame, median-combines the biases into the
master bias, subtracts it from the flats and median-combines them (each
scaled to median 1) into the master flat, and reduces each science frame
(overscan, trim, bias, flat).  Besides ccdproc's own log keywords (SUBOSCAN,
TRIMIM, SUBBIAS, ... with HIERARCH pointers) the products record, IRAF
style: OVERSCAN and TRIM (the sections), ZEROCOR / FLATCOR (the master's
file name), NCOMBINE and IMCMBnnn (each input's file name) on combined
frames, IMAGETYP zero / flat / object.  SExtractor then catalogues each
reduced frame (FITS_LDAC), SCAMP solves the astrometry against astref.cat
(no network; pattern matching off: the raw WCS is good), SWarp resamples
each frame with SCAMP's .head and coadds the resampled frames, and
SExtractor catalogues the coadd.  No tool may write a file over 64 MB.

The sample's own bookkeeping keywords (WCCLASS, PIPELINE) are removed from
every product: once a frame is processed they would describe its raw input,
and a real night's data never has them.  Raw copies keep them untouched.

Exit status: 0 on success; 1 if a position check fails (a star's sky
position on the raw vs the reduced frame differs by more than 0.2", or
fewer than 3 of a reduced frame's 5 brightest stars are within 0.5" on the
coadd); 2 if a tool fails (its stderr is printed) or SCAMP's solution moves
a frame by more than 2" (degenerate fit); other non-zero exits for bad
arguments or missing tools.  Written for source-extractor 2.25, scamp 2.10,
SWarp 2.41 (Debian 12) and ccdproc 2.5.
"""

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.time import Time
from astropy.wcs import WCS

import ccdproc

SEX_SHARE = Path("/usr/share/source-extractor")
SEX_PARAMS = [
    "NUMBER",
    "X_IMAGE",
    "Y_IMAGE",
    "ALPHA_J2000",
    "DELTA_J2000",
    "XWIN_IMAGE",
    "YWIN_IMAGE",
    "ERRAWIN_IMAGE",
    "ERRBWIN_IMAGE",
    "ERRTHETAWIN_IMAGE",
    # World-coordinate errors: the reference catalogue SCAMP reads needs them.
    "ERRAWIN_WORLD",
    "ERRBWIN_WORLD",
    "ERRTHETAWIN_J2000",
    "FLUX_AUTO",
    "FLUXERR_AUTO",
    "MAG_AUTO",
    "MAGERR_AUTO",
    "A_IMAGE",
    "B_IMAGE",
    "THETA_IMAGE",
    "FWHM_IMAGE",
    "CLASS_STAR",
    "FLAGS",
]
# Keywords of the simulator that would be false on a processed frame.
SIM_KEYWORDS = ("WCCLASS", "PIPELINE")


class ToolError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def image_hdu(hdul):
    """Index of the first HDU with image data (raw frames may be tile-compressed)."""
    for i, h in enumerate(hdul):
        if h.is_image and h.header.get("NAXIS", 0) >= 2:
            return i
        if isinstance(h, fits.CompImageHDU):
            return i
    raise ValueError("no image HDU")


def night_of(date_obs):
    t = dt.datetime.fromisoformat(date_obs)
    return (t - dt.timedelta(hours=12)).strftime("%Y%m%d")


def header_listing(rawdir):
    """One row per FITS file: the keywords an observer selects frames by."""
    rows = []
    for path in sorted(Path(rawdir).glob("*.fits")):
        with fits.open(path) as hdul:
            h = hdul[image_hdu(hdul)].header
            rows.append(
                {
                    "path": path,
                    "imagetyp": str(h.get("IMAGETYP", "")).strip().lower(),
                    "filter": str(h.get("FILTER", "")).strip(),
                    "chip": str(h.get("CHIPID", "")).strip(),
                    "date": h.get("DATE-OBS", ""),
                    "night": night_of(h["DATE-OBS"]) if "DATE-OBS" in h else "",
                }
            )
    return rows


def select(rows, chip, band, max_science):
    sci = [
        r for r in rows if r["imagetyp"] == "object" and r["chip"] == chip and r["filter"] == band
    ]
    if not sci:
        raise SystemExit(f"no science frames for chip {chip!r}, filter {band!r}")
    night = min(r["night"] for r in sci)
    sci = sorted((r for r in sci if r["night"] == night), key=lambda r: r["date"])[:max_science]
    bias = sorted(
        (
            r
            for r in rows
            if r["imagetyp"] in ("bias", "zero") and r["chip"] == chip and r["night"] == night
        ),
        key=lambda r: r["date"],
    )
    flat = sorted(
        (
            r
            for r in rows
            if r["imagetyp"] in ("flat", "domeflat", "dome flat")
            and r["chip"] == chip
            and r["filter"] == band
            and r["night"] == night
        ),
        key=lambda r: r["date"],
    )
    if len(bias) < 2 or len(flat) < 2 or len(sci) < 2:
        raise SystemExit(
            f"night {night}: need >= 2 biases, flats and science frames, "
            f"found {len(bias)}, {len(flat)}, {len(sci)}"
        )
    return night, bias, flat, sci


# Tools run in OUTDIR with relative file names, as in a night's working
# directory: the names they record (XML, LDAC_IMHEAD) stay valid if the
# directory moves.
WORKDIR = Path(".")


def arg(path):
    return os.path.relpath(path, WORKDIR)


def limit_file_size():
    """No tool may write a file over 64 MB: a wrong astrometric solution makes
    SWarp's output grid (and file) arbitrarily large."""
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))


def run(cmd, logdir, name):
    """Run a tool in WORKDIR; keep its output in log/; raise with its stderr on failure."""
    t0 = time.time()
    # SWarp's XML records $PWD (not getcwd()) as the directory of its file names.
    env = dict(os.environ, PWD=str(WORKDIR))
    p = subprocess.run(
        cmd, cwd=WORKDIR, env=env, capture_output=True, text=True, preexec_fn=limit_file_size
    )
    (logdir / f"{name}.out").write_text(p.stdout)
    (logdir / f"{name}.err").write_text(p.stderr)
    if p.returncode != 0:
        raise ToolError(f"{cmd[0]} ({name}) exited {p.returncode}:\n{p.stderr[-4000:]}")
    return time.time() - t0


# --------------------------------------------------------------------- ccdproc


def read_raw(path):
    with fits.open(path) as hdul:
        idx = image_hdu(hdul)
    ccd = CCDData.read(path, hdu=idx, unit="adu")
    ccd.data = ccd.data.astype(np.float32)
    return ccd


def overscan_and_trim(path):
    """Overscan (BIASSEC, median per row) and trim (TRIMSEC, else DATASEC)."""
    ccd = read_raw(path)
    biassec = ccd.header["BIASSEC"]
    trimsec = ccd.header.get("TRIMSEC", ccd.header["DATASEC"])
    ccd = ccdproc.subtract_overscan(ccd, fits_section=biassec, median=True, overscan_axis=1)
    ccd = ccdproc.trim_image(ccd, fits_section=trimsec)
    ccd.header["OVERSCAN"] = (biassec, "overscan section subtracted (median per row)")
    ccd.header["TRIM"] = (trimsec, "trimmed to this section")
    ny, nx = ccd.data.shape
    ccd.header["DATASEC"] = f"[1:{nx},1:{ny}]"
    for key in ("BIASSEC", "TRIMSEC"):
        ccd.header.pop(key, None)
    return ccd


def record_inputs(ccd, paths):
    ccd.header["NCOMBINE"] = (len(paths), "number of images combined")
    for i, p in enumerate(paths, 1):
        ccd.header[f"IMCMB{i:03d}"] = (Path(p).name, "combined image")


def write_product(ccd, path):
    for key in SIM_KEYWORDS:
        ccd.header.pop(key, None)
    # Only the image: SExtractor would otherwise process every extension.
    ccd.uncertainty = None
    ccd.mask = None
    ccd.data = ccd.data.astype(np.float32)
    ccd.write(path, overwrite=True)


def reduce(out, night, chip, band, bias, flat, sci):
    cal, red = out / "cal", out / "red"
    mbias_name = f"masterbias_{night}_{chip}.fits"
    mflat_name = f"masterflat_{band}_{night}_{chip}.fits"

    biases = [overscan_and_trim(p) for p in bias]
    mbias = ccdproc.combine(biases, method="median")
    mbias.header["IMAGETYP"] = "zero"
    mbias.header["OBJECT"] = "master bias"
    record_inputs(mbias, bias)
    write_product(mbias, cal / mbias_name)

    flats = []
    for p in flat:
        f = overscan_and_trim(p)
        f = ccdproc.subtract_bias(f, mbias)
        f.header["ZEROCOR"] = (mbias_name, "master bias subtracted")
        flats.append(f)
    # Each flat scaled by the inverse of its median: the master is normalised to 1.
    mflat = ccdproc.combine(
        flats, method="median", scale=lambda a: 1.0 / np.ma.median(a)
    )
    mflat.header["IMAGETYP"] = "flat"
    mflat.header["OBJECT"] = f"master dome flat {band}"
    mflat.header["ZEROCOR"] = (mbias_name, "master bias subtracted from inputs")
    record_inputs(mflat, flat)
    write_product(mflat, cal / mflat_name)

    reduced = []
    for p in sci:
        s = overscan_and_trim(p)
        s = ccdproc.subtract_bias(s, mbias)
        s = ccdproc.flat_correct(s, mflat)
        s.header["IMAGETYP"] = "object"
        s.header["ZEROCOR"] = (mbias_name, "master bias subtracted")
        s.header["FLATCOR"] = (mflat_name, "divided by master flat")
        name = f"{obs_name(p)}_red.fits"
        write_product(s, red / name)
        reduced.append(red / name)
    return cal / mbias_name, cal / mflat_name, reduced


def obs_name(raw_path):
    stem = Path(raw_path).stem
    return stem[4:] if stem.startswith("raw_") else stem


# ---------------------------------------------------------------- astromatic


def sextractor(image, catalog, params, logdir):
    cmd = [
        "source-extractor",
        arg(image),
        "-c", str(SEX_SHARE / "default.sex"),
        "-PARAMETERS_NAME", arg(params),
        "-FILTER_NAME", str(SEX_SHARE / "default.conv"),
        "-STARNNW_NAME", str(SEX_SHARE / "default.nnw"),
        "-CATALOG_TYPE", "FITS_LDAC",
        "-CATALOG_NAME", arg(catalog),
        "-DETECT_THRESH", "3",
        "-ANALYSIS_THRESH", "3",
        "-GAIN_KEY", "GAIN",
        "-SATUR_KEY", "SATURATE",
        "-PIXEL_SCALE", "0",
        "-CHECKIMAGE_TYPE", "NONE",
        "-WRITE_XML", "N",
        "-VERBOSE_TYPE", "NORMAL",
        "-NTHREADS", "1",
    ]
    run(cmd, logdir, f"sex_{Path(catalog).stem}")


def ldac_objects(catalog):
    with fits.open(catalog) as hdul:
        return np.array(hdul["LDAC_OBJECTS"].data)


def build_astref(source_cats, astref):
    """SCAMP's reference catalogue (ASTREF_CATALOG FILE): the clean, point-like
    detections of every reduced frame, placed with the frames' header WCS
    (the telescope's pointing model is good to a fraction of an arcsecond).
    A star seen on several frames is kept once, from the first frame; one
    frame alone leaves too few stars in the others' overlap for SCAMP."""
    kept, epochs = [], []
    for cat in source_cats:
        obj = ldac_objects(cat)
        with fits.open(cat) as hdul:
            cards = hdul["LDAC_IMHEAD"].data["Field Header Card"][0]
            # astropy hands back the (80, n) cell as n strings, trailing blanks cut.
            cards = "".join(c.ljust(80) for c in cards) if isinstance(cards, np.ndarray) else cards
            epoch = Time(fits.Header.fromstring(cards)["DATE-OBS"], scale="utc").decimalyear
        # Stars only: hot pixels have FWHM ~ 0, the bad column is flagged.
        good = (
            (obj["FLAGS"] == 0)
            & (obj["FLUX_AUTO"] > 10 * obj["FLUXERR_AUTO"])
            & (obj["FWHM_IMAGE"] > 1.5)
        )
        for o in obj[good]:
            ra, dec = o["ALPHA_J2000"], o["DELTA_J2000"]
            if all(sep_arcsec(ra, dec, k["ALPHA_J2000"], k["DELTA_J2000"]) > 1.0 for k in kept):
                kept.append(o)
                epochs.append(epoch)
    obj = np.array(kept, dtype=kept[0].dtype)
    cols = [
        fits.Column("X_WORLD", "1D", "deg", array=obj["ALPHA_J2000"]),
        fits.Column("Y_WORLD", "1D", "deg", array=obj["DELTA_J2000"]),
        fits.Column("ERRA_WORLD", "1E", "deg", array=obj["ERRAWIN_WORLD"]),
        fits.Column("ERRB_WORLD", "1E", "deg", array=obj["ERRBWIN_WORLD"]),
        fits.Column("ERRTHETA_WORLD", "1E", "deg", array=obj["ERRTHETAWIN_J2000"]),
        fits.Column("MAG", "1E", "mag", array=obj["MAG_AUTO"]),
        fits.Column("MAGERR", "1E", "mag", array=obj["MAGERR_AUTO"]),
        fits.Column("OBSDATE", "1D", "yr", array=np.array(epochs)),
        fits.Column("FLAGS", "1I", array=np.zeros(len(obj), dtype=np.int16)),
    ]
    # LDAC pairs a header (80-character cards in one table cell) with the
    # objects; this catalogue has no image, so the header only says what it is.
    h = fits.Header()
    h["SIMPLE"], h["BITPIX"], h["NAXIS"] = True, 8, 0
    h["ORIGIN"] = ("astromatic_pipeline.py", "astrometric reference for SCAMP")
    h["COMMENT"] = "stars (FLAGS=0, S/N>10, FWHM>1.5 px) of " + ", ".join(
        Path(c).name for c in source_cats
    )
    cards = "".join(str(c).ljust(80) for c in h.cards) + "END".ljust(80)
    imhead = fits.BinTableHDU.from_columns(
        [fits.Column("Field Header Card", f"{len(cards)}A", array=[cards])],
        name="LDAC_IMHEAD",
    )
    objects = fits.BinTableHDU.from_columns(cols, name="LDAC_OBJECTS")
    fits.HDUList([fits.PrimaryHDU(), imhead, objects]).writeto(astref, overwrite=True)
    return len(obj)


def scamp(catalogs, heads, astref, xml, logdir):
    cmd = [
        "scamp",
        *map(arg, catalogs),
        "-c", "/dev/null",
        "-ASTREF_CATALOG", "FILE",
        "-ASTREFCAT_NAME", arg(astref),
        "-ASTREFCENT_KEYS", "X_WORLD,Y_WORLD",
        "-ASTREFERR_KEYS", "ERRA_WORLD,ERRB_WORLD,ERRTHETA_WORLD",
        "-ASTREFMAG_KEY", "MAG",
        "-ASTREFMAGERR_KEY", "MAGERR",
        "-HEADER_NAME", ",".join(map(arg, heads)),
        # The raw headers' WCS is good to an arcsecond: no pattern matching,
        # which would rather pair the hot pixels and the bad column (fixed in
        # pixel space) than the few stars of a 192-pixel frame.
        "-MATCH", "N",
        "-POSITION_MAXERR", "0.2",
        "-CROSSID_RADIUS", "1.5",
        "-DISTORT_DEGREES", "1",
        "-MOSAIC_TYPE", "UNCHANGED",
        "-SOLVE_PHOTOM", "Y",
        "-CHECKPLOT_TYPE", "NONE",
        "-CHECKPLOT_DEV", "NULL",
        "-WRITE_XML", "Y",
        "-XML_NAME", arg(xml),
        "-NTHREADS", "1",
        "-VERBOSE_TYPE", "NORMAL",
    ]
    run(cmd, logdir, "scamp")


SWARP_COMMON = [
    "-c", "/dev/null",
    "-COPY_KEYWORDS", "OBJECT,FILTER,EXPTIME,GAIN,SATURATE,DATE-OBS,MJD-OBS,AIRMASS",
    "-SUBTRACT_BACK", "Y",
    "-BACK_SIZE", "64",
    "-NTHREADS", "1",
    "-VERBOSE_TYPE", "NORMAL",
    "-WRITE_XML", "Y",
]


def swarp_resample(images, resamp_dir, xml, logdir):
    cmd = [
        "SWarp",
        *map(arg, images),
        *SWARP_COMMON,
        "-COMBINE", "N",
        "-RESAMPLE", "Y",
        "-RESAMPLE_DIR", arg(resamp_dir),
        "-XML_NAME", arg(xml),
    ]
    run(cmd, logdir, "swarp_resample")
    out = [resamp_dir / f"{Path(i).stem}.resamp.fits" for i in images]
    missing = [str(p) for p in out if not p.exists()]
    if missing:
        raise ToolError(f"SWarp wrote no {missing}")
    return out


def swarp_coadd(resampled, coadd, xml, logdir):
    cmd = [
        "SWarp",
        *map(arg, resampled),
        *SWARP_COMMON,
        "-COMBINE", "Y",
        "-COMBINE_TYPE", "WEIGHTED",
        "-RESAMPLE", "N",
        # With RESAMPLE N SWarp counts its inputs as its own temporary files
        # and would delete the resampled frames after combining them.
        "-DELETE_TMPFILES", "N",
        # The resampled frames carry their own weight maps (<name>.weight.fits).
        "-WEIGHT_TYPE", "MAP_WEIGHT",
        "-SUBTRACT_BACK", "N",
        "-RESAMPLE_DIR", arg(resampled[0].parent),
        "-IMAGEOUT_NAME", arg(coadd),
        "-WEIGHTOUT_NAME", arg(coadd.with_name("coadd.weight.fits")),
        "-XML_NAME", arg(xml),
    ]
    run(cmd, logdir, "swarp_coadd")
    missing = [str(p) for p in resampled if not p.exists()]
    if missing:
        raise ToolError(f"SWarp's coadd run deleted {missing}")


# ------------------------------------------------------------------- checks


def read_head(path):
    """A SCAMP .head: text cards, one per line (a comment is UTF-8, not ASCII)."""
    text = Path(path).read_bytes().decode("utf-8", "replace")
    text = "".join(ch if ord(ch) < 128 else "?" for ch in text)
    return fits.Header.fromstring(text, sep="\n")


def check_scamp(image, head):
    """SCAMP's solution must stay close to the header WCS it started from:
    a degenerate fit (too few stars) would send SWarp onto a huge grid."""
    h = fits.getheader(image)
    ny, nx = h["NAXIS2"], h["NAXIS1"]
    old, new = WCS(h), WCS(read_head(head))
    pts = np.array([[1, 1], [nx, 1], [1, ny], [nx, ny], [nx / 2, ny / 2]], dtype=float)
    a, b = old.all_pix2world(pts, 1), new.all_pix2world(pts, 1)
    return max(sep_arcsec(*a[i], *b[i]) for i in range(len(pts)))


def brightest(catalog, n=5):
    obj = ldac_objects(catalog)
    obj = obj[(obj["FLAGS"] == 0) & (obj["FWHM_IMAGE"] > 1.5)]
    return obj[np.argsort(obj["FLUX_AUTO"])[::-1][:n]]


def sky(header, x, y):
    w = WCS(header)
    ra, dec = w.all_pix2world([[x, y]], 1)[0]
    return ra, dec


def sep_arcsec(ra1, dec1, ra2, dec2):
    d = np.radians
    c = np.sin(d(dec1)) * np.sin(d(dec2)) + np.cos(d(dec1)) * np.cos(d(dec2)) * np.cos(d(ra1 - ra2))
    return np.degrees(np.arccos(np.clip(c, -1, 1))) * 3600


def centroid(data, x, y, half=4):
    """Flux-weighted centroid (1-based FITS pixels) in a box around (x, y)."""
    xi, yi = int(round(x)) - 1, int(round(y)) - 1
    box = data[yi - half : yi + half + 1, xi - half : xi + half + 1].astype(float)
    box = box - np.median(data)
    box[box < 0] = 0
    yy, xx = np.mgrid[yi - half : yi + half + 1, xi - half : xi + half + 1]
    return (xx * box).sum() / box.sum() + 1, (yy * box).sum() / box.sum() + 1


def check_raw_vs_reduced(raw_path, red_path, catalog, trimsec):
    """A star measured on the raw frame (its own WCS, untrimmed pixels) and by
    SExtractor on the reduced frame must be at the same place on the sky."""
    star = brightest(catalog, 1)[0]
    x0 = int(trimsec.strip("[]").split(",")[0].split(":")[0]) - 1
    y0 = int(trimsec.strip("[]").split(",")[1].split(":")[0]) - 1
    with fits.open(raw_path) as hdul:
        h = hdul[image_hdu(hdul)]
        data, header = h.data, h.header
    rx, ry = centroid(data, star["XWIN_IMAGE"] + x0, star["YWIN_IMAGE"] + y0)
    ra_raw, dec_raw = sky(header, rx, ry)
    ra_red, dec_red = sky(fits.getheader(red_path), star["XWIN_IMAGE"], star["YWIN_IMAGE"])
    return sep_arcsec(ra_raw, dec_raw, ra_red, dec_red), sep_arcsec(
        ra_raw, dec_raw, star["ALPHA_J2000"], star["DELTA_J2000"]
    )


def check_coadd(red_path, red_cat, coadd, coadd_cat):
    """The 5 brightest stars of a reduced frame (placed with its header WCS)
    against the nearest sources SExtractor finds on the coadd, placed by
    astropy with the coadd's WCS: separations in arcsec."""
    co = ldac_objects(coadd_cat)
    co_ra, co_dec = WCS(fits.getheader(coadd)).all_pix2world(co["XWIN_IMAGE"], co["YWIN_IMAGE"], 1)
    h = fits.getheader(red_path)
    seps = []
    for star in brightest(red_cat, 5):
        ra, dec = sky(h, star["XWIN_IMAGE"], star["YWIN_IMAGE"])
        seps.append(float(sep_arcsec(ra, dec, co_ra, co_dec).min()))
    return seps


# --------------------------------------------------------------------- main


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("rawdir", type=Path, help="directory of raw FITS frames")
    ap.add_argument("outdir", type=Path, help="product directory (created; must be empty)")
    ap.add_argument("--chip", default="ccd1", help="CHIPID to reduce (default ccd1)")
    ap.add_argument("--filter", default="g", help="FILTER to reduce (default g)")
    ap.add_argument("--max-science", type=int, default=2, help="science exposures (default 2)")
    args = ap.parse_args()

    global WORKDIR
    missing = [t for t in ("source-extractor", "scamp", "SWarp") if shutil.which(t) is None]
    if missing:
        # Debian: apt-get install source-extractor scamp swarp (SWarp is the binary).
        raise SystemExit(f"missing tools: {' '.join(missing)}")
    t_start = time.time()
    out = WORKDIR = args.outdir.resolve()
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty")
    subdirs = ("raw", "cal", "red", "cat", "resamp", "coadd", "scamp", "config", "log")
    dirs = {d: out / d for d in subdirs}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    logdir = dirs["log"]

    night, bias, flat, sci = select(
        header_listing(args.rawdir), args.chip, args.filter, args.max_science
    )
    raw = {}
    for r in bias + flat + sci:
        dst = dirs["raw"] / r["path"].name
        shutil.copyfile(r["path"], dst)
        raw[r["path"].name] = dst
    bias_p = [raw[r["path"].name] for r in bias]
    flat_p = [raw[r["path"].name] for r in flat]
    sci_p = [raw[r["path"].name] for r in sci]
    log(f"night {night}, chip {args.chip}, filter {args.filter}: "
        f"{len(bias_p)} biases, {len(flat_p)} flats, {len(sci_p)} science frames")

    timings = {}
    t0 = time.time()
    mbias, mflat, reduced = reduce(out, night, args.chip, args.filter, bias_p, flat_p, sci_p)
    timings["ccdproc"] = time.time() - t0

    params = dirs["config"] / "wisecut.param"
    params.write_text("\n".join(SEX_PARAMS) + "\n")
    t0 = time.time()
    cats = []
    for img in reduced:
        cat = dirs["cat"] / f"{img.stem}.cat"
        sextractor(img, cat, params, logdir)
        cats.append(cat)
    timings["source-extractor"] = time.time() - t0

    t0 = time.time()
    astref = dirs["scamp"] / "astref.cat"
    nref = build_astref(cats, astref)
    heads = [img.with_suffix(".head") for img in reduced]
    scamp(cats, heads, astref, dirs["scamp"] / "scamp.xml", logdir)
    for img, head in zip(reduced, heads):
        moved = check_scamp(img, head)
        log(f"check: SCAMP moved {img.name}'s corners by at most {moved:.3f} arcsec")
        if moved > 2.0:
            raise ToolError(
                f"SCAMP's solution for {img.name} is off by {moved:.1f} arcsec; see log/scamp.err"
            )
    timings["scamp"] = time.time() - t0

    t0 = time.time()
    resampled = swarp_resample(reduced, dirs["resamp"], dirs["coadd"] / "resamp.xml", logdir)
    coadd = dirs["coadd"] / "coadd.fits"
    swarp_coadd(resampled, coadd, dirs["coadd"] / "coadd.xml", logdir)
    coadd_cat = dirs["cat"] / "coadd.cat"
    sextractor(coadd, coadd_cat, params, logdir)
    timings["swarp+sex"] = time.time() - t0

    # Checks.
    failures = []
    trimsec = fits.getheader(reduced[0])["TRIM"]
    sep_red, sep_sex = check_raw_vs_reduced(sci_p[0], reduced[0], cats[0], trimsec)
    log(f"check: brightest star, raw WCS vs reduced WCS: {sep_red:.3f} arcsec "
        f"(vs SExtractor ALPHA/DELTA_J2000: {sep_sex:.3f} arcsec)")
    if sep_red > 0.2:
        failures.append(f"raw vs reduced position differs by {sep_red:.3f} arcsec")
    for img, cat in zip(reduced, cats):
        seps = check_coadd(img, cat, coadd, coadd_cat)
        good = sum(x < 0.5 for x in seps)
        log(f"check: 5 brightest stars of {img.name} on the coadd (astropy WCS): "
            + " ".join(f"{x:.3f}" for x in seps) + f" arcsec; {good} within 0.5")
        # A wrong WCS moves every star; one star may blend on the coadd with
        # a defect of the other frame.
        if good < 3:
            failures.append(f"{img.name} vs coadd: only {good} of 5 stars within 0.5 arcsec")

    # truth.json: what was run, as relative paths.
    rel = lambda p: Path(p).relative_to(out).as_posix()  # noqa: E731
    files, edges = {}, []

    def edge(child, parent, role):
        edges.append({"child": rel(child), "parent": rel(parent), "role": role})

    for p in bias_p:
        files[rel(p)] = "RawBiasFrame"
        edge(mbias, p, "raw")
    for p in flat_p:
        files[rel(p)] = "RawDomeFlatFrame"
        edge(mflat, p, "raw")
    edge(mflat, mbias, "bias")
    files[rel(mbias)] = "BiasFrame"
    files[rel(mflat)] = "MasterFlatFrame"
    for p, r, cat, rs in zip(sci_p, reduced, cats, resampled):
        files[rel(p)] = "RawScienceFrame"
        files[rel(r)] = "ReducedScienceFrame"
        files[rel(rs)] = "RegriddedFrame"
        files[rel(cat)] = "SourceList"
        edge(r, p, "raw")
        edge(r, mbias, "bias")
        edge(r, mflat, "flat")
        edge(rs, r, "reduced")
        edge(coadd, rs, "regridded")
        edge(cat, r, "frame")
    files[rel(coadd)] = "CoaddedRegriddedFrame"
    files[rel(coadd_cat)] = "SourceList"
    edge(coadd_cat, coadd, "frame")
    aux = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and rel(p) not in files and rel(p) != "truth.json":
            aux[rel(p)] = (
                "weight" if p.name.endswith(".weight.fits")
                else "scamp-head" if p.suffix == ".head"
                else "xml" if p.suffix == ".xml"
                else "reference-catalog" if p.name == "astref.cat"
                else "log" if p.parent.name == "log"
                else "config"
            )
    truth = {
        "tools": tool_versions(),
        "selection": {"night": night, "chip": args.chip, "filter": args.filter},
        "files": files,
        "edges": edges,
        "auxiliary": aux,
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=1) + "\n")

    log(f"products: {sum(1 for c in files.values() if not c.startswith('Raw'))} "
        f"from {sum(1 for c in files.values() if c.startswith('Raw'))} raw frames, "
        f"{len(edges)} lineage edges; {nref} reference stars for SCAMP")
    for c in sorted(set(files.values())):
        log(f"  {c:24s} {sum(1 for v in files.values() if v == c)}")
    log("time: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())
        + f"; total {time.time() - t_start:.1f}s")
    if failures:
        for f in failures:
            log(f"FAILED: {f}")
        return 1
    return 0


def tool_versions():
    v = {"ccdproc": ccdproc.__version__}
    tools = (("source-extractor", "source-extractor"), ("scamp", "scamp"), ("swarp", "SWarp"))
    for name, binary in tools:
        p = subprocess.run([binary, "-v"], capture_output=True, text=True)
        out = (p.stdout + p.stderr).strip()
        v[name] = out.splitlines()[0] if out else "?"
    return v


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ToolError as e:
        print(f"astromatic_pipeline: {e}", file=sys.stderr)
        sys.exit(2)
