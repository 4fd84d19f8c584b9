"""Peer test: wisecut's colour composites agree with astropy.

Usage: check_rgb.py DIR

DIR holds what the Rust side (tests/it/rgb.rs) wrote:

* r.f32, g.f32, b.f32: the three bands as raw little-endian float32,
  row-major, image row 0 (the bottom of the sky, FITS order) first;
* shape.json:
    {"width": W, "height": H,
     "cases":  [{"name", "minimum": [r, g, b], "stretch", "Q", "png"}],
     "linear": [{"name", "min": [r|null, g|null, b|null],
                 "max": [...], "percentile", "png"}]}      (optional)
* the PNGs wisecut made for each case, top row first.

Each Lupton case is recomputed with astropy's make_lupton_rgb(r, g, b,
minimum=..., stretch=..., Q=...), each linear case with make_rgb and a
ManualInterval per band whose missing bounds come from PercentileInterval;
astropy's arrays keep the input row order, so they are flipped to top-down
before the comparison. The PNGs are decoded here with zlib and numpy, since
PIL is not among the peer requirements (this also checks wisecut's PNG
encoding independently of the `image` crate's decoder).

Prints `checked N Lupton images against astropy make_lupton_rgb, worst
difference D DN` (and a similar line for the linear cases), and exits 1 if
any pixel differs by more than 1 DN in any channel.
"""

import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
from astropy.visualization import (
    LinearStretch,
    ManualInterval,
    PercentileInterval,
    make_lupton_rgb,
)

TOLERANCE = 1  # DN per channel

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png_rgb8(path):
    """Decode a non-interlaced 8-bit RGB PNG into an (H, W, 3) uint8 array."""
    data = Path(path).read_bytes()
    if data[:8] != PNG_SIGNATURE:
        raise ValueError(f"{path}: not a PNG")
    pos, idat, header = 8, [], None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    if header is None:
        raise ValueError(f"{path}: no IHDR")
    width, height, depth, colour, _, _, interlace = header
    if (depth, colour, interlace) != (8, 2, 0):
        raise ValueError(
            f"{path}: expected 8-bit RGB non-interlaced, got depth {depth}, "
            f"colour type {colour}, interlace {interlace}"
        )
    raw = zlib.decompress(b"".join(idat))
    bpp, stride = 3, 3 * width
    if len(raw) != height * (stride + 1):
        raise ValueError(f"{path}: {len(raw)} bytes of image data for {width}x{height}")
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = [0] * stride
    for y in range(height):
        start = y * (stride + 1)
        kind = raw[start]
        line = list(raw[start + 1 : start + 1 + stride])
        cur = [0] * stride
        for i in range(stride):
            left = cur[i - bpp] if i >= bpp else 0
            up = prev[i]
            upleft = prev[i - bpp] if i >= bpp else 0
            if kind == 0:
                pred = 0
            elif kind == 1:
                pred = left
            elif kind == 2:
                pred = up
            elif kind == 3:
                pred = (left + up) // 2
            elif kind == 4:
                pred = paeth(left, up, upleft)
            else:
                raise ValueError(f"{path}: unknown filter type {kind} in row {y}")
            cur[i] = (line[i] + pred) & 0xFF
        out[y] = cur
        prev = cur
    return out.reshape(height, width, 3)


def compare(name, expected_bottom_up, png_path):
    """Worst absolute difference in DN; prints details when over tolerance."""
    expected = expected_bottom_up[::-1]  # wisecut writes the top row first
    got = read_png_rgb8(png_path)
    if got.shape != expected.shape:
        print(f"{name}: shape {got.shape}, astropy {expected.shape}")
        return 256
    diff = np.abs(got.astype(np.int16) - expected.astype(np.int16))
    worst = int(diff.max())
    if worst > TOLERANCE:
        bad = np.argwhere(diff > TOLERANCE)
        print(f"{name}: {len(bad)} samples differ by more than {TOLERANCE} DN")
        for row, col, ch in bad[:10]:
            print(
                f"  top-down row {row} column {col} channel {'rgb'[ch]}: "
                f"wisecut {got[row, col, ch]}, astropy {expected[row, col, ch]}"
            )
    return worst


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    work = Path(sys.argv[1])
    spec = json.loads((work / "shape.json").read_text())
    w, h = spec["width"], spec["height"]
    bands = [
        np.fromfile(work / f"{c}.f32", dtype="<f4").reshape(h, w) for c in "rgb"
    ]
    if not all(np.isfinite(b).all() for b in bands):
        print("inputs must be finite: astropy's output for NaN is undefined")
        return 1

    failed = False
    worst = 0
    for case in spec["cases"]:
        expected = make_lupton_rgb(
            *bands,
            minimum=[float(m) for m in case["minimum"]],
            stretch=float(case["stretch"]),
            Q=float(case["Q"]),
        )
        d = compare(f"lupton {case['name']}", expected, work / case["png"])
        worst = max(worst, d)
        failed |= d > TOLERANCE
    print(
        f"checked {len(spec['cases'])} Lupton images against astropy "
        f"make_lupton_rgb, worst difference {worst} DN"
    )

    linear = spec.get("linear", [])
    if linear:
        # make_rgb appeared in astropy 7.0, make_lupton_rgb's current form too.
        from astropy.visualization import make_rgb

        worst = 0
        for case in linear:
            intervals = []
            for band, lo, hi in zip(bands, case["min"], case["max"]):
                plo, phi = PercentileInterval(float(case["percentile"])).get_limits(band)
                intervals.append(
                    ManualInterval(
                        vmin=plo if lo is None else float(lo),
                        vmax=phi if hi is None else float(hi),
                    )
                )
            expected = make_rgb(*bands, interval=intervals, stretch=LinearStretch())
            d = compare(f"linear {case['name']}", expected, work / case["png"])
            worst = max(worst, d)
            failed |= d > TOLERANCE
        print(
            f"checked {len(linear)} linear images against astropy make_rgb "
            f"(PercentileInterval), worst difference {worst} DN"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
