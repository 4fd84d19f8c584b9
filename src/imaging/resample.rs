//! Resampling one pixel grid onto another: the one bilinear interpolator of
//! the code base, used by the RGB maker to bring bands onto a common grid
//! and by the sample survey's regridding step.
//!
//! Pixel centres are at integer zero-based positions here (FITS pixel
//! `(1, 1)` is `(0.0, 0.0)`); the public [`reproject`] takes and gives FITS
//! coordinates like the rest of the imaging core.

use rayon::prelude::*;

use super::raster::Raster;

/// Resamples `src` onto a `width` x `height` grid: output pixel `(ix, iy)`,
/// whose FITS coordinate is `(ix + 1, iy + 1)`, takes the value of `src` at
/// the FITS coordinate `map(ix + 1, iy + 1)` by bilinear interpolation
/// between the four surrounding pixel centres.
///
/// NaN where `map` returns `None` or a non-finite point, and where the point
/// lies more than half a pixel outside the source's outermost pixel centres;
/// within that half pixel the edge pixels are extended. If one of the four
/// neighbours is NaN (or infinite), the nearest source pixel is used instead,
/// so blank areas neither grow nor contaminate their surroundings.
///
/// For display only: values are interpolated as surface brightness, with no
/// correction for different pixel areas, so flux is not conserved.
/// Output rows run in parallel; `map` is called once per output pixel.
pub fn reproject(
    src: &Raster<f32>,
    width: usize,
    height: usize,
    map: impl Fn(f64, f64) -> Option<(f64, f64)> + Sync,
) -> Raster<f32> {
    let mut data = vec![f32::NAN; width * height];
    if width > 0 {
        data.par_chunks_mut(width)
            .enumerate()
            .for_each(|(iy, row)| {
                for (ix, out) in row.iter_mut().enumerate() {
                    if let Some((x, y)) = map((ix + 1) as f64, (iy + 1) as f64) {
                        *out = bilinear(src, x - 1.0, y - 1.0);
                    }
                }
            });
    }
    Raster::from_vec(width, height, data)
}

/// `src` at zero-based continuous position `(fx, fy)` (pixel centres at
/// integers), as described in [`reproject`]: NaN beyond half a pixel
/// outside the outermost centres, the nearest pixel where a neighbour is
/// not finite.
pub fn bilinear(src: &Raster<f32>, fx: f64, fy: f64) -> f32 {
    let (w, h) = (src.width, src.height);
    if w == 0 || h == 0 {
        return f32::NAN;
    }
    let (wf, hf) = (w as f64, h as f64);
    // Written so that NaN coordinates fail the test too.
    if !(fx >= -0.5 && fx <= wf - 0.5 && fy >= -0.5 && fy <= hf - 0.5) {
        return f32::NAN;
    }
    let cx = fx.clamp(0.0, wf - 1.0);
    let cy = fy.clamp(0.0, hf - 1.0);
    let (x0, y0) = (cx.floor() as usize, cy.floor() as usize);
    // On the last row or column the weight of the missing neighbour is
    // exactly 0, so it is never read.
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (tx, ty) = (cx - x0 as f64, cy - y0 as f64);
    let p = |ix: usize, iy: usize| f64::from(src.get(ix, iy));
    // a + (b - a) t returns a exactly when t == 0, so an integer shift or
    // the identity copies pixels unchanged.
    let lerp = |a: f64, b: f64, t: f64| a + (b - a) * t;
    let bottom = lerp(p(x0, y0), p(x1, y0), tx);
    let top = lerp(p(x0, y1), p(x1, y1), tx);
    let v = lerp(bottom, top, ty);
    if v.is_finite() {
        v as f32
    } else {
        // NaN/inf neighbours poison the sum even at weight 0.
        src.get(cx.round() as usize, cy.round() as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, data: &[f32]) -> Raster<f32> {
        Raster::from_vec(w, h, data.to_vec())
    }

    #[test]
    fn reproject_identity_copies_the_input() {
        let (w, h) = (7, 5);
        let mut src = Raster::filled(w, h, 0.0f32);
        for iy in 0..h {
            for ix in 0..w {
                src.set(ix, iy, (ix * 10 + iy) as f32 * 0.37 - 3.0);
            }
        }
        src.set(3, 2, f32::NAN);
        let out = reproject(&src, w, h, |x, y| Some((x, y)));
        assert_eq!(out.width, w);
        assert_eq!(out.height, h);
        for (a, b) in out.data.iter().zip(&src.data) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
    }

    #[test]
    fn reproject_shifts_and_blanks() {
        let src = img(4, 2, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, f32::NAN, 8.0]);
        // Output x takes the source's x + 1: shifted left by one pixel, the
        // last column falls 1.5 pixels outside the source centres.
        let out = reproject(&src, 4, 2, |x, y| Some((x + 1.0, y)));
        let nan = f32::NAN.to_bits();
        let bits: Vec<u32> = out.data.iter().map(|v| v.to_bits()).collect();
        assert_eq!(
            bits,
            [2.0f32, 3.0, 4.0, f32::NAN, 6.0, f32::NAN, 8.0, f32::NAN].map(f32::to_bits)
        );
        assert_eq!(bits[3], nan);

        let at = |x: f64, y: f64| reproject(&src, 1, 1, move |_, _| Some((x, y))).data[0];
        // Half-way between two centres: the mean.
        assert_eq!(at(1.5, 1.0), 1.5);
        // Bilinear in both directions: (1 + 2 + 5 + 6) / 4.
        assert_eq!(at(1.5, 1.5), 3.5);
        // Within half a pixel of the edge: the edge value; beyond: NaN.
        assert_eq!(at(0.6, 1.0), 1.0);
        assert_eq!(at(4.5, 2.5), 8.0);
        assert!(at(0.4, 1.0).is_nan());
        assert!(at(1.0, 2.6).is_nan());
        assert!(at(f64::NAN, 1.0).is_nan());
        // A NaN neighbour among the four: nearest pixel instead, which is
        // finite at (1.3, 0.9) and (2.7, 0.9) but is the NaN at (2.3, 0.9)
        // (zero-based).
        assert_eq!(at(2.3, 1.9), 6.0);
        assert!(at(3.3, 1.9).is_nan());
        assert_eq!(at(3.7, 1.9), 8.0);
        // The map's None is NaN.
        let out = reproject(&src, 2, 2, |x, _| (x > 1.0).then_some((x, 1.0)));
        assert!(out.get(0, 0).is_nan() && out.get(0, 1).is_nan());
        assert_eq!(out.get(1, 0), 2.0);
        assert_eq!(out.get(1, 1), 2.0);
    }
}
