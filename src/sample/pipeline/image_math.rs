//! The pixel statistics and combinations the calibration stages share:
//! robust levels and noise, median stacks, box smoothing.
//!
//! Calibration frames are made from images with stars, cosmic rays and
//! masked pixels in them, so every statistic here ignores NaN and resists
//! outliers; and the survey must be reproducible to the bit, so each is
//! written to give the same result on any thread layout.

use crate::imaging::raster::Raster;
use crate::sample::extract::finite_sample;
use rayon::prelude::*;

/// The median of `v` (reordered in place); the upper median of an even
/// count; NaN for an empty slice.
pub(super) fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return f32::NAN;
    }
    let mid = v.len() / 2;
    let (_, m, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    *m
}

/// Median and MAD-based sigma of the finite values (subsampled for speed).
pub(super) fn robust_stats(img: &Raster<f32>) -> (f32, f32) {
    let mut v = finite_sample(&img.data, 20000);
    let m = median(&mut v);
    let mut dev: Vec<f32> = v.iter().map(|x| (x - m).abs()).collect();
    (m, 1.4826 * median(&mut dev))
}

/// Raw frame as float ADU, data section only.
pub(super) fn trim(raw: &Raster<u16>, nx: usize) -> Raster<f32> {
    let mut out = Raster::filled(nx, raw.height, 0.0f32);
    for y in 0..raw.height {
        for x in 0..nx {
            out.set(x, y, f32::from(raw.get(x, y)));
        }
    }
    out
}

/// The per-pixel median of finite values across `frames` (the mean of the
/// middle two for an even count), NaN where none is finite.
pub(super) fn combine_median(frames: &[Raster<f32>]) -> Raster<f32> {
    combine_median_of_at_least(frames, 1)
}

/// [`combine_median`], NaN where fewer than `min` values are finite: the
/// median of one or two values is that frame's noise, not a calibration.
pub(super) fn combine_median_of_at_least(frames: &[Raster<f32>], min: usize) -> Raster<f32> {
    let (w, h) = (frames[0].width, frames[0].height);
    let data: Vec<f32> = (0..w * h)
        .into_par_iter()
        .map(|i| {
            let mut v: Vec<f32> = frames
                .iter()
                .map(|f| f.data[i])
                .filter(|x| x.is_finite())
                .collect();
            if v.is_empty() || v.len() < min {
                return f32::NAN;
            }
            let n = v.len();
            v.sort_by(f32::total_cmp);
            if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            }
        })
        .collect();
    Raster::from_vec(w, h, data)
}

/// Box mean of a NaN-masked image with an odd window, by integral images.
pub(super) fn box_smooth(img: &Raster<f32>, half: usize) -> Raster<f32> {
    let (w, h) = (img.width, img.height);
    let mut sum = vec![0f64; (w + 1) * (h + 1)];
    let mut cnt = vec![0u32; (w + 1) * (h + 1)];
    for y in 0..h {
        for x in 0..w {
            let v = img.get(x, y);
            let (s, c) = if v.is_finite() {
                (f64::from(v), 1)
            } else {
                (0.0, 0)
            };
            let i = (y + 1) * (w + 1) + x + 1;
            sum[i] = s + sum[i - 1] + sum[i - (w + 1)] - sum[i - (w + 1) - 1];
            cnt[i] = c + cnt[i - 1] + cnt[i - (w + 1)] - cnt[i - (w + 1) - 1];
        }
    }
    let mut out = Raster::filled(w, h, 0.0f32);
    for y in 0..h {
        for x in 0..w {
            let (x0, x1) = (x.saturating_sub(half), (x + half + 1).min(w));
            let (y0, y1) = (y.saturating_sub(half), (y + half + 1).min(h));
            let at = |xx: usize, yy: usize| yy * (w + 1) + xx;
            let s = sum[at(x1, y1)] - sum[at(x0, y1)] - sum[at(x1, y0)] + sum[at(x0, y0)];
            let c = cnt[at(x1, y1)] + cnt[at(x0, y0)] - cnt[at(x0, y1)] - cnt[at(x1, y0)];
            out.set(
                x,
                y,
                if c > 0 {
                    (s / f64::from(c)) as f32
                } else {
                    f32::NAN
                },
            );
        }
    }
    out
}
