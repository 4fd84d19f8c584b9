"""astropy's side of the sample-survey peer check.

Reads the probe list written by tests/it/peer.rs: for every file, the HDU and
pixel positions with the sky coordinates wisecut computed. Opens each file
with every warning turned into an error, reads its data, and compares
wisecut's coordinates with astropy's all_pix2world (origin 1) to < 1 mas.
Exits non-zero on the first disagreement, naming the file.
"""

import json
import sys
import warnings

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

TOL_MAS = 1.0


def main(path):
    probes = json.load(open(path))
    worst = 0.0
    n_points = 0
    for p in probes:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with fits.open(p["path"]) as hdul:
                hdul.verify("exception")
                hdu = hdul[p["hdu"]]
                data = hdu.data
                if data is None:
                    sys.exit(f"{p['path']}: HDU {p['hdu']} has no data")
                if not p["points"]:
                    continue
                w = WCS(hdu.header)
                pts = np.array(p["points"], dtype=float)
                ra, dec = w.all_pix2world(pts[:, 0], pts[:, 1], 1)
        dra = (ra - pts[:, 2] + 180.0) % 360.0 - 180.0
        sep = np.hypot(dra * np.cos(np.radians(dec)), dec - pts[:, 3]) * 3.6e6
        worst = max(worst, float(sep.max()))
        n_points += len(pts)
        if sep.max() > TOL_MAS:
            i = int(sep.argmax())
            sys.exit(
                f"{p['path']}: pixel {pts[i, 0]},{pts[i, 1]}: wisecut {pts[i, 2]:.9f},{pts[i, 3]:.9f} "
                f"astropy {ra[i]:.9f},{dec[i]:.9f}: {sep[i]:.3f} mas"
            )
    print(f"checked {len(probes)} files, {n_points} positions, worst {worst:.3g} mas")


if __name__ == "__main__":
    main(sys.argv[1])
