//! Quantiles of pixel values with numpy's default ("linear") method, the
//! one definition behind every percentile in wisecut: the renderer's
//! percentile interval (astropy `PercentileInterval`) and the RGB maker's
//! per-band levels.
//!
//! Two exact algorithms give the same numbers: selection in a copy of the
//! finite values for small images, and a two-pass radix selection over
//! histograms, which copies nothing, for whole frames.

use rayon::prelude::*;

/// Quantiles `q_lo <= q_hi` (fractions in `[0, 1]`) of the finite values of
/// `data` with numpy's default linear interpolation, or `None` if there is
/// no finite value.
pub fn quantiles(data: &[f32], q_lo: f64, q_hi: f64) -> Option<(f64, f64)> {
    if data.len() < HIST_CHUNK {
        by_selection(data, q_lo, q_hi)
    } else {
        by_histogram(data, q_lo, q_hi)
    }
}

/// [`quantiles`] by selection in a copy of the finite values: the fastest
/// way for the small images (cutouts, thumbnails) that are most requests.
fn by_selection(data: &[f32], q_lo: f64, q_hi: f64) -> Option<(f64, f64)> {
    let mut values: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mut at = |q: f64| {
        let (i, t) = virtual_index(n, q);
        let (_, &mut a, right) = values.select_nth_unstable_by(i, f32::total_cmp);
        // The next order statistic is the minimum of the upper partition.
        let b = (i + 1 < n).then(|| right.iter().copied().fold(f32::INFINITY, f32::min));
        lerp(a, b, t)
    };
    let lo = at(q_lo);
    Some((lo, at(q_hi.max(q_lo))))
}

/// [`quantiles`] by radix selection over histograms, without copying the
/// pixels: for whole frames of tens of megapixels.
fn by_histogram(data: &[f32], q_lo: f64, q_hi: f64) -> Option<(f64, f64)> {
    let high = histogram(data, &[]);
    let n = usize::try_from(high.iter().sum::<u64>()).ok()?;
    if n == 0 {
        return None;
    }
    let (i_lo, t_lo) = virtual_index(n, q_lo);
    let (i_hi, t_hi) = virtual_index(n, q_hi.max(q_lo));
    // Each quantile interpolates between an order statistic and the next.
    let ranks = [i_lo, i_lo + 1, i_hi, i_hi + 1].map(|i| i.min(n - 1));
    let v = order_statistics(data, &high, ranks);
    let next = |i: usize, v: f32| (i + 1 < n).then_some(v);
    Some((
        lerp(v[0], next(i_lo, v[1]), t_lo),
        lerp(v[2], next(i_hi, v[3]), t_hi),
    ))
}

/// Order-preserving integer key of a finite `f32`: comparing keys compares
/// the values (negative values have their bits reversed).
#[inline]
fn sort_key(v: f32) -> u32 {
    let bits = v.to_bits();
    if bits & 0x8000_0000 != 0 {
        !bits
    } else {
        bits | 0x8000_0000
    }
}

/// Inverse of [`sort_key`].
#[inline]
fn from_sort_key(key: u32) -> f32 {
    f32::from_bits(if key & 0x8000_0000 != 0 {
        key & 0x7FFF_FFFF
    } else {
        !key
    })
}

/// Pixels per histogram task: big enough to amortise a 256 KiB histogram,
/// small enough to spread over the cores.
const HIST_CHUNK: usize = 1 << 20;
const HIST_BINS: usize = 1 << 16;

/// Counts the finite values of `data` by the high 16 bits of their sort key
/// when `within` is empty; otherwise, for each high-bits value in `within`,
/// counts the values having it by the low 16 bits (`within.len()`
/// consecutive histograms). Read-only and parallel over chunks.
fn histogram(data: &[f32], within: &[u32]) -> Vec<u64> {
    let len = HIST_BINS * within.len().max(1);
    data.par_chunks(HIST_CHUNK)
        .map(|chunk| {
            // Per-chunk counts fit in u32 and keep the table cache-sized.
            let mut h = vec![0u32; len];
            for &v in chunk.iter().filter(|v| v.is_finite()) {
                let key = sort_key(v);
                if within.is_empty() {
                    h[(key >> 16) as usize] += 1;
                } else if let Some(j) = within.iter().position(|&w| w == key >> 16) {
                    h[j * HIST_BINS + (key & 0xFFFF) as usize] += 1;
                }
            }
            h
        })
        .fold(
            || vec![0u64; len],
            |mut acc, h| {
                acc.iter_mut().zip(h).for_each(|(a, c)| *a += u64::from(c));
                acc
            },
        )
        .reduce(
            || vec![0u64; len],
            |mut a, b| {
                a.iter_mut().zip(b).for_each(|(x, y)| *x += y);
                a
            },
        )
}

/// Bin holding zero-based `rank` in the histogram `counts`, and the rank
/// within that bin.
fn locate(counts: &[u64], rank: usize) -> (usize, u64) {
    let mut rank = rank as u64;
    for (bin, &c) in counts.iter().enumerate() {
        if rank < c {
            return (bin, rank);
        }
        rank -= c;
    }
    // Unreachable for rank < total; the last bin keeps it harmless.
    (counts.len().saturating_sub(1), 0)
}

/// The finite values of `data` at the given zero-based ranks (each below
/// the count in `high`, the first-level [`histogram`]): an exact radix
/// selection in two read-only passes, the second over the (at most four)
/// first-level bins involved. Unlike a selection in a copy it allocates no
/// per-pixel memory and needs no random access, which matters on
/// 36-megapixel bands.
fn order_statistics(data: &[f32], high: &[u64], ranks: [usize; 4]) -> [f32; 4] {
    let located = ranks.map(|r| locate(high, r));
    let mut bins: Vec<u32> = located.iter().map(|&(b, _)| b as u32).collect();
    bins.dedup();
    let low = histogram(data, &bins);
    located.map(|(bin, rank)| {
        let j = bins.iter().position(|&b| b == bin as u32).unwrap_or(0);
        let (lo_bits, _) = locate(&low[j * HIST_BINS..(j + 1) * HIST_BINS], rank as usize);
        from_sort_key(((bin as u32) << 16) | lo_bits as u32)
    })
}

/// numpy's virtual index `(n - 1) * q` split into the order statistic below
/// it and the interpolation weight.
fn virtual_index(n: usize, q: f64) -> (usize, f64) {
    let vi = (n - 1) as f64 * q;
    let i = (vi.floor().max(0.0) as usize).min(n - 1);
    (i, vi - i as f64)
}

/// numpy's `_lerp`: the difference is taken in the array's dtype (float32),
/// the interpolation in float64 from the nearer end.
fn lerp(a: f32, b: Option<f32>, t: f64) -> f64 {
    let Some(b) = b else {
        return f64::from(a);
    };
    if t == 0.0 {
        return f64::from(a);
    }
    let diff = f64::from(b - a);
    if t >= 0.5 {
        f64::from(b) - diff * (1.0 - t)
    } else {
        f64::from(a) + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both algorithms, which must agree exactly.
    fn both(data: &[f32], a: f64, b: f64) -> Option<(f64, f64)> {
        let h = by_histogram(data, a, b);
        assert_eq!(h, by_selection(data, a, b), "q {a} {b}");
        assert_eq!(h, quantiles(data, a, b));
        h
    }

    /// numpy's `percentile(..., method="linear")` the slow way: sort.
    fn reference_quantile(data: &[f32], q: f64) -> f64 {
        let mut v: Vec<f32> = data.iter().copied().filter(|v| v.is_finite()).collect();
        v.sort_by(f32::total_cmp);
        let (i, t) = virtual_index(v.len(), q);
        lerp(v[i], v.get(i + 1).copied(), t)
    }

    #[test]
    fn radix_quantiles_equal_sorting() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let pairs = [
            (0.0, 1.0),
            (0.0, 0.0),
            (1.0, 1.0),
            (0.001, 0.999),
            (0.1, 0.9),
            (0.25, 0.5005),
            (0.5, 0.995),
            (0.00025, 0.99975),
        ];
        for case in 0..30 {
            let n = [1, 2, 3, 10, 1000, 5000][case % 6];
            let data: Vec<f32> = (0..n)
                .map(|_| match case % 5 {
                    // Spread over many binades, both signs, zeros of both signs.
                    0 => {
                        let e: i32 = rng.random_range(-30..30);
                        let s = if rng.random::<bool>() { -1.0 } else { 1.0 };
                        s * rng.random::<f32>() * 2f32.powi(e)
                    }
                    // Few distinct values: ties and one dominant first-level bin.
                    1 => [0.0, -0.0, 1.0, 1.0, 1.0, 7.5][rng.random_range(0..6)],
                    // Close values within one first-level bin.
                    2 => 1000.0 + rng.random::<f32>() * 0.01,
                    // Non-finite pixels mixed in.
                    3 => [f32::NAN, f32::INFINITY, -2.5, 3.25][rng.random_range(0..4)],
                    _ => rng.random::<f32>() * 100.0 - 50.0,
                })
                .collect();
            if !data.iter().any(|v| v.is_finite()) {
                assert_eq!(both(&data, 0.1, 0.9), None);
                continue;
            }
            for (a, b) in pairs {
                let got = both(&data, a, b).unwrap();
                let want = (reference_quantile(&data, a), reference_quantile(&data, b));
                assert_eq!(got, want, "case {case}, n {n}, q {a} {b}");
            }
        }
    }

    #[test]
    fn sort_key_orders_like_the_values() {
        let v = [
            f32::MIN,
            -1e30,
            -1.0,
            -1e-40,
            -0.0,
            0.0,
            1e-40,
            1.0,
            3e38,
            f32::MAX,
        ];
        for w in v.windows(2) {
            assert!(sort_key(w[0]) < sort_key(w[1]), "{w:?}");
        }
        for x in v {
            assert_eq!(from_sort_key(sort_key(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn quantiles_follow_numpy_linear_interpolation() {
        // numpy.percentile([3, 1, 4, 1.5, 9, 2.5], [10, 90]) = [1.25, 6.5]
        let data = [3.0, f32::NAN, 1.0, 4.0, 1.5, 9.0, f32::INFINITY, 2.5];
        let (lo, hi) = both(&data, 0.10, 0.90).unwrap();
        assert!((lo - 1.25).abs() < 1e-12, "{lo}");
        assert!((hi - 6.5).abs() < 1e-12, "{hi}");
        assert_eq!(both(&data, 0.0, 0.0), Some((1.0, 1.0)));
        assert_eq!(both(&data, 1.0, 1.0), Some((9.0, 9.0)));
        assert_eq!(both(&[7.0], 0.3, 0.9), Some((7.0, 7.0)));
        assert_eq!(both(&[f32::NAN], 0.3, 0.9), None);
    }
}
