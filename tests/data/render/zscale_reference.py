"""Reference limits for the zscale unit tests in src/render.rs.

Run once with a Python that has numpy and astropy (the values in the Rust test
came from astropy 8.0.2 / numpy 2.4.6):

    python tests/zscale_reference.py

The arrays are built from a 64-bit LCG that the Rust test re-implements
operation for operation, so both sides see bit-identical float32 data.
"""

import numpy as np
import astropy
from astropy.visualization import PercentileInterval, ZScaleInterval

MASK = (1 << 64) - 1


class Lcg:
    def __init__(self, seed):
        self.state = seed & MASK

    def uniform(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) & MASK
        return (self.state >> 11) / float(1 << 53)

    def gauss(self):
        # Irwin-Hall approximation: sum of 12 uniforms minus 6.
        s = 0.0
        for _ in range(12):
            s += self.uniform()
        return s - 6.0


def ramp():
    return np.array([0.5 * i for i in range(2000)], dtype=np.float32)


def ramp_outliers():
    v = [0.1 * i for i in range(900)]
    for i in range(900):
        if i % 37 == 0:
            v[i] = 1.0e4
        elif i % 53 == 0:
            v[i] = -500.0
    v[10] = float("nan")
    v[11] = float("inf")
    return np.array(v, dtype=np.float32)


def gauss():
    rng = Lcg(42)
    v = []
    for i in range(4096):
        x = 100.0 + 10.0 * rng.gauss()
        if i % 97 == 0:
            x += 5000.0
        v.append(x)
    return np.array(v, dtype=np.float32)


def gauss_big():
    rng = Lcg(7)
    v = []
    for i in range(30000):
        x = 1000.0 + 3.0 * rng.gauss()
        if i % 101 == 0:
            x = float("nan")
        v.append(x)
    return np.array(v, dtype=np.float32)


def flat():
    return np.full(100, 5.0, dtype=np.float32)


def tiny():
    return np.array([3.0, 1.0, 2.0], dtype=np.float32)


def main():
    print(f"// astropy {astropy.__version__}, numpy {np.__version__}")
    for f in (ramp, ramp_outliers, gauss, gauss_big, flat, tiny):
        data = f()
        lo, hi = ZScaleInterval().get_limits(data)
        print(f'("{f.__name__}", {float(lo)!r}, {float(hi)!r}),')
    lo, hi = PercentileInterval(99.5).get_limits(gauss())
    print(f"// PercentileInterval(99.5) on gauss: ({float(lo)!r}, {float(hi)!r})")


if __name__ == "__main__":
    main()
