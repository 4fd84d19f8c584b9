//! Colour composites: three aligned single-band images (red, green, blue)
//! combined into one 8-bit RGB picture.
//!
//! Three mappings are offered, all sharing the same input rules:
//!
//! * [`lupton`]: the asinh scheme of Lupton et al. (2004, PASP 116, 133) as
//!   implemented by astropy's `astropy.visualization.make_lupton_rgb`
//!   (checked against astropy 8.0.2). The intensity `I = (r + g + b) / 3` of
//!   the minimum-subtracted bands is stretched by
//!   `f(I) = asinh(Q I / stretch) * 0.1 / asinh(0.1 Q)`, each band is
//!   multiplied by `f(I) / I` (so colours do not change with brightness),
//!   negative bands are clipped to 0, a pixel whose brightest band exceeds 1
//!   is scaled down as a whole (saturated stars keep their colour instead of
//!   turning white), and the result is multiplied by 255 and *truncated*, as
//!   numpy's `astype(uint8)` does. The arithmetic follows numpy's own types
//!   step by step (float32 for the pixel arrays, float64 for the `asinh`
//!   slope) so that the output is the same to the byte except, rarely, 1 DN
//!   where a value lies on a truncation boundary (the peer test,
//!   `tests/peer/check_rgb.py`, finds no difference at all in six
//!   parameter sets). `Q = 0` is replaced by 0.1 and `Q > 1e10` by `1e10`,
//!   as astropy does.
//! * [`stiff`]: the colour mapping of Bertin's STIFF (the tool behind the
//!   DES colour images), following its `data_to_pix` with `GAMMA_TYPE
//!   POWER-LAW` and `GAMMA_FAC 1`: each band is scaled linearly between its
//!   own minimum and maximum levels, here the `min_quantile` and
//!   `max_quantile` quantiles of the band's finite pixels; the luminance `Y`
//!   is the mean of the three (negative parts clipped); each channel becomes
//!   `Y + saturation * (v - mean(v))` with the bands capped at 1 (STIFF's
//!   `COLOUR_SAT`, which scales the chroma around the luminance; 0 gives
//!   grey), is clipped to `[0, 1]` and encoded with the display gamma
//!   (`v^(1/gamma)`, STIFF's `GAMMA`), then rounded to 8 bits.
//! * [`linear`]: each band independently, `(v - min) / (max - min)` clipped
//!   to `[0, 1]`, times 255, truncated: astropy's `make_rgb` with a
//!   `LinearStretch`. Missing bounds come from astropy's
//!   `PercentileInterval` on the band's finite pixels (numpy's linear
//!   interpolation percentiles).
//!
//! Decisions:
//!
//! * **Missing data.** A pixel where any band is NaN or infinite is black
//!   (0, 0, 0) in every mapping. astropy propagates NaN into a `uint8`
//!   cast, whose result is undefined; one band alone cannot give the pixel a
//!   meaningful colour, so all three channels go black together.
//! * **STIFF levels.** STIFF's default black level is `MIN_TYPE GREYLEVEL`,
//!   `MIN_LEVEL 0.001`: the sky (the median) is shown at grey level 0.001,
//!   i.e. black to within a fraction of a DN after the gamma. The default
//!   `min_quantile` here, 0.5 (the median), gives that same picture from a
//!   plain quantile. The default `max_quantile` is 0.995 (STIFF's current
//!   source defaults `MAX_LEVEL` to 0.999). STIFF estimates quantiles from
//!   block medians; here they are exact (numpy linear interpolation, finite
//!   pixels only, found by a two-pass radix selection).
//! * **STIFF gamma.** STIFF's `GAMMA` is the display gamma: it encodes each
//!   channel after the colours are mixed, and that is what `gamma` does
//!   here. STIFF's separate luminance-only gamma, `GAMMA_FAC`, is fixed at
//!   its default 1 (with 1 it cancels out of STIFF's formula).
//! * **Empty intervals.** When a band's interval derived from its pixels is
//!   empty (a constant band), pixels above the lower level get the full
//!   value of that band and the others 0, instead of dividing by zero.
//!   Explicit bounds with `max <= min` are rejected.
//! * **Orientation.** [`Raster`] row 0 is the bottom of the sky (FITS order);
//!   [`Rgb8`] stores the top row first, like every image file, so the
//!   mappings flip rows while they write. astropy returns arrays in the input
//!   order, so comparisons with it must flip one side.
//!
//! Bands from frames on different pixel grids are brought onto one grid
//! first by [`crate::imaging::resample::reproject`].

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};
use rayon::prelude::*;

use crate::imaging::raster::Raster;
use crate::imaging::stats::quantiles;

/// Band names in error messages, in input order.
const BANDS: [&str; 3] = ["red", "green", "blue"];

/// Errors from building or encoding a colour composite.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RgbError {
    /// The three bands do not have the same width and height.
    #[error(
        "the three bands must have the same size, but red is {}x{}, green {}x{} and blue {}x{} \
         (width x height)",
        r.0, r.1, g.0, g.1, b.0, b.1
    )]
    Shape {
        /// Red band `(width, height)`.
        r: (usize, usize),
        /// Green band `(width, height)`.
        g: (usize, usize),
        /// Blue band `(width, height)`.
        b: (usize, usize),
    },
    /// A band has no finite pixel, so it has no levels and nothing to show.
    #[error("the {band} band has no finite pixel (all NaN or infinite, or empty)")]
    NoFinitePixel {
        /// `"red"`, `"green"` or `"blue"`.
        band: &'static str,
    },
    /// A parameter is outside its allowed range.
    #[error("invalid {param} {value}: expected {allowed}")]
    Invalid {
        /// Parameter name.
        param: &'static str,
        /// The rejected value (with the band when the parameter is per band).
        value: String,
        /// What is accepted.
        allowed: &'static str,
    },
    /// The image encoder failed (for example a JPEG larger than 65535 pixels).
    #[error("{format} encoding failed: {message}")]
    Encode {
        /// `"PNG"` or `"JPEG"`.
        format: &'static str,
        /// The encoder's message.
        message: String,
    },
}

fn invalid(param: &'static str, value: String, allowed: &'static str) -> RgbError {
    RgbError::Invalid {
        param,
        value,
        allowed,
    }
}

// ---------------------------------------------------------------------------
// Output picture
// ---------------------------------------------------------------------------

/// An 8-bit RGB picture, interleaved (`r, g, b, r, g, b, ...`), **top row
/// first** (image row `height - 1` first), as PNG and JPEG store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    /// Number of columns.
    pub width: usize,
    /// Number of rows.
    pub height: usize,
    /// `3 * width * height` samples, row after row from the top.
    pub data: Vec<u8>,
}

impl Rgb8 {
    /// The colour of zero-based image pixel `(ix, iy)`, with `iy` counted
    /// from the bottom as in [`Raster::get`] (so it undoes the flip).
    ///
    /// # Panics
    ///
    /// If `(ix, iy)` is outside the picture, like [`Raster::get`].
    pub fn pixel(&self, ix: usize, iy: usize) -> [u8; 3] {
        let i = 3 * ((self.height - 1 - iy) * self.width + ix);
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    /// The sizes as the encoders want them; `None` if they cannot be encoded.
    fn dims_u32(&self) -> Option<(u32, u32)> {
        Some((
            u32::try_from(self.width).ok()?,
            u32::try_from(self.height).ok()?,
        ))
    }

    /// Encodes the picture as an 8-bit RGB PNG.
    ///
    /// # Panics
    ///
    /// If the struct breaks its own invariants: `data.len()` is not
    /// `3 * width * height`, or a size is zero or above `u32::MAX`. Every
    /// `Rgb8` returned by this module satisfies them (a band without a
    /// finite pixel, hence an empty one, is an error before any picture is
    /// made), and a PNG encoder writing to memory has no other way to fail.
    pub fn to_png(&self) -> Vec<u8> {
        assert_eq!(
            self.data.len(),
            3 * self.width * self.height,
            "Rgb8 buffer does not match {}x{}",
            self.width,
            self.height
        );
        let (w, h) = self
            .dims_u32()
            .unwrap_or_else(|| panic!("{}x{} is too large for PNG", self.width, self.height));
        let mut buf = Vec::new();
        if let Err(e) =
            PngEncoder::new(&mut buf).write_image(&self.data, w, h, ExtendedColorType::Rgb8)
        {
            panic!("PNG encoding of a {w}x{h} Rgb8 failed: {e}");
        }
        buf
    }

    /// Encodes the picture as a baseline JPEG of the given quality (1 to
    /// 100).
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, RgbError> {
        if !(1..=100).contains(&quality) {
            return Err(invalid(
                "quality",
                quality.to_string(),
                "an integer from 1 to 100",
            ));
        }
        let encode_err = |message: String| RgbError::Encode {
            format: "JPEG",
            message,
        };
        if self.data.len() != 3 * self.width * self.height {
            return Err(encode_err(format!(
                "buffer of {} bytes does not match {}x{}",
                self.data.len(),
                self.width,
                self.height
            )));
        }
        let (w, h) = self
            .dims_u32()
            .ok_or_else(|| encode_err(format!("{}x{} is too large", self.width, self.height)))?;
        let mut buf = Vec::new();
        JpegEncoder::new_with_quality(&mut buf, quality)
            .write_image(&self.data, w, h, ExtendedColorType::Rgb8)
            .map_err(|e| encode_err(e.to_string()))?;
        Ok(buf)
    }
}

// ---------------------------------------------------------------------------
// Shared input checks and the per-pixel driver
// ---------------------------------------------------------------------------

/// Equal sizes, then a finite pixel in every band.
fn check_bands(r: &Raster<f32>, g: &Raster<f32>, b: &Raster<f32>) -> Result<(), RgbError> {
    let size = |i: &Raster<f32>| (i.width, i.height);
    if size(r) != size(g) || size(g) != size(b) {
        return Err(RgbError::Shape {
            r: size(r),
            g: size(g),
            b: size(b),
        });
    }
    for (band, img) in BANDS.iter().zip([r, g, b]) {
        // Real images have a finite pixel near the start, so this sequential
        // short-circuiting scan costs nothing in the normal case.
        if !img.data.iter().any(|v| v.is_finite()) {
            return Err(RgbError::NoFinitePixel { band });
        }
    }
    Ok(())
}

/// Applies `pixel` to every position where all three bands are finite
/// (others stay black), writing rows top first; rows run in parallel.
fn composite(
    r: &Raster<f32>,
    g: &Raster<f32>,
    b: &Raster<f32>,
    pixel: impl Fn([f32; 3]) -> [u8; 3] + Sync,
) -> Rgb8 {
    let (w, h) = (r.width, r.height);
    let mut data = vec![0u8; 3 * w * h];
    if w > 0 {
        data.par_chunks_mut(3 * w).enumerate().for_each(|(k, out)| {
            let iy = h - 1 - k;
            let (rr, gr, br) = (r.row(iy), g.row(iy), b.row(iy));
            for ix in 0..w {
                let v = [rr[ix], gr[ix], br[ix]];
                if v.iter().all(|x| x.is_finite()) {
                    out[3 * ix..3 * ix + 3].copy_from_slice(&pixel(v));
                }
            }
        });
    }
    Rgb8 {
        width: w,
        height: h,
        data,
    }
}

// ---------------------------------------------------------------------------
// Lupton et al. (astropy make_lupton_rgb)
// ---------------------------------------------------------------------------

/// Parameters of [`lupton`], named as in astropy's `make_lupton_rgb`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LuptonParams {
    /// Level mapped to black in each band (red, green, blue), subtracted
    /// before the intensity is formed.
    pub minimum: [f32; 3],
    /// Linear stretch: the intensity range over which the mapping is
    /// roughly linear (> 0).
    pub stretch: f32,
    /// Asinh softening parameter (>= 0; 0 is replaced by 0.1 as in astropy).
    pub q: f32,
}

impl Default for LuptonParams {
    /// astropy's defaults: minimum 0, stretch 5, Q 8.
    fn default() -> Self {
        Self {
            minimum: [0.0; 3],
            stretch: 5.0,
            q: 8.0,
        }
    }
}

impl LuptonParams {
    /// Checks the parameters: finite minima, finite `stretch > 0`, finite
    /// `q >= 0`. astropy rejects negative values too, and divides by zero
    /// for `stretch == 0`.
    pub fn validate(&self) -> Result<(), RgbError> {
        for (band, m) in BANDS.iter().zip(self.minimum) {
            if !m.is_finite() {
                return Err(invalid(
                    "minimum",
                    format!("{m} for the {band} band"),
                    "a finite number",
                ));
            }
        }
        if !(self.stretch.is_finite() && self.stretch > 0.0) {
            return Err(invalid(
                "stretch",
                self.stretch.to_string(),
                "a finite number greater than 0",
            ));
        }
        if !(self.q.is_finite() && self.q >= 0.0) {
            return Err(invalid("Q", self.q.to_string(), "a finite number >= 0"));
        }
        Ok(())
    }
}

/// Lupton et al. (2004) asinh colour composite, reproducing astropy's
/// `make_lupton_rgb(r, g, b, minimum=p.minimum, stretch=p.stretch, Q=p.q)`
/// (see the module documentation for the formula and the exactness).
pub fn lupton(
    r: &Raster<f32>,
    g: &Raster<f32>,
    b: &Raster<f32>,
    p: &LuptonParams,
) -> Result<Rgb8, RgbError> {
    p.validate()?;
    check_bands(r, g, b)?;
    let map = LuptonMap::new(p);
    Ok(composite(r, g, b, |v| map.pixel(v)))
}

/// The constants of one Lupton mapping, in the precision numpy uses them.
struct LuptonMap {
    minimum: [f32; 3],
    /// `Q / stretch`: a Python float, which numpy (NEP 50) casts to the
    /// float32 of the array it multiplies.
    soften: f32,
    /// `0.1 / asinh(0.1 Q)`: a numpy float64 scalar, so that product is
    /// computed in float64 and stored back into the float32 array.
    slope: f64,
}

impl LuptonMap {
    fn new(p: &LuptonParams) -> Self {
        // astropy's guard: below the float32 epsilon Q would make the slope
        // infinite, so it uses 0.1; above 1e10 it caps Q.
        let mut q = f64::from(p.q);
        if q.abs() < 1.0 / f64::from(1u32 << 23) {
            q = 0.1;
        } else if q > 1e10 {
            q = 1e10;
        }
        Self {
            minimum: p.minimum,
            soften: (q / f64::from(p.stretch)) as f32,
            slope: 0.1 / (0.1 * q).asinh(),
        }
    }

    /// One pixel, finite inputs. Every step is the float32 operation numpy
    /// performs, in the same order, so truncation lands on the same integer.
    fn pixel(&self, v: [f32; 3]) -> [u8; 3] {
        let x = [
            v[0] - self.minimum[0],
            v[1] - self.minimum[1],
            v[2] - self.minimum[2],
        ];
        let intensity = (x[0] + x[1] + x[2]) / 3.0;
        // float32 asinh: evaluated in float64 and rounded, which is what a
        // correctly rounded asinhf returns.
        let stretched = asinh(f64::from(intensity * self.soften)) as f32;
        let f_i = (f64::from(stretched) * self.slope) as f32;
        let factor = if intensity <= 0.0 {
            0.0
        } else {
            f_i / intensity
        };
        // Individual bands can be negative even where the intensity is not.
        let mut c = x.map(|x| (x * factor).max(0.0));
        let max = c[0].max(c[1]).max(c[2]);
        if max > 1.0 {
            c = c.map(|x| x / max);
        }
        // numpy's astype(uint8) truncates; values are within [0, 255].
        c.map(|x| (x * 255.0) as u8)
    }
}

/// `asinh` to float64 accuracy through `log1p`, without the `hypot` that
/// makes `f64::asinh` several times slower; it is the hot spot of
/// [`lupton`].
#[inline]
fn asinh(x: f64) -> f64 {
    let a = x.abs();
    let y = if a > 1e8 {
        // asinh(a) = ln(2a) + 1/(4a^2) - ..., and a^2 would overflow
        // further up.
        a.ln() + std::f64::consts::LN_2
    } else {
        // asinh(a) = ln(1 + a + a^2 / (1 + sqrt(1 + a^2))): no cancellation
        // for small a.
        (a + a * a / (1.0 + (1.0 + a * a).sqrt())).ln_1p()
    };
    y.copysign(x)
}

/// `(v - lo) / (hi - lo)` for a finite `v`, or the step described in the
/// module documentation when the interval is empty.
#[inline]
fn unit(v: f64, lo: f64, hi: f64) -> f64 {
    if hi > lo {
        (v - lo) / (hi - lo)
    } else if v > lo {
        1.0
    } else {
        0.0
    }
}

// ---------------------------------------------------------------------------
// STIFF
// ---------------------------------------------------------------------------

/// Parameters of [`stiff`], after STIFF's configuration keywords.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StiffParams {
    /// Quantile of each band's finite pixels shown as black, in `[0, 1)`.
    /// Default 0.5, the median sky: the picture STIFF's default
    /// `MIN_TYPE GREYLEVEL` / `MIN_LEVEL 0.001` gives (see the module
    /// documentation).
    pub min_quantile: f32,
    /// Quantile of each band's finite pixels shown at full scale
    /// (`MAX_TYPE QUANTILE` / `MAX_LEVEL`), in `[0, 1)` and above
    /// `min_quantile`. Default 0.995.
    pub max_quantile: f32,
    /// Display gamma (`GAMMA`, power law), > 0. Default 2.2.
    pub gamma: f32,
    /// Colour saturation (`COLOUR_SAT`), >= 0: 0 is grey, 1 the plain
    /// colours, more exaggerates them. Default 1.
    pub saturation: f32,
}

impl Default for StiffParams {
    fn default() -> Self {
        Self {
            min_quantile: 0.5,
            max_quantile: 0.995,
            gamma: 2.2,
            saturation: 1.0,
        }
    }
}

impl StiffParams {
    /// Checks the parameters: quantiles in `[0, 1)` with
    /// `min_quantile < max_quantile`, finite `gamma > 0`, finite
    /// `saturation >= 0`.
    pub fn validate(&self) -> Result<(), RgbError> {
        let fraction = |q: f32| (0.0..1.0).contains(&q);
        if !fraction(self.min_quantile) {
            return Err(invalid(
                "min_quantile",
                self.min_quantile.to_string(),
                "a fraction in [0, 1)",
            ));
        }
        if !fraction(self.max_quantile) || self.max_quantile <= self.min_quantile {
            return Err(invalid(
                "max_quantile",
                self.max_quantile.to_string(),
                "a fraction in [0, 1) greater than min_quantile",
            ));
        }
        if !(self.gamma.is_finite() && self.gamma > 0.0) {
            return Err(invalid(
                "gamma",
                self.gamma.to_string(),
                "a finite number greater than 0",
            ));
        }
        if !(self.saturation.is_finite() && self.saturation >= 0.0) {
            return Err(invalid(
                "saturation",
                self.saturation.to_string(),
                "a finite number >= 0",
            ));
        }
        Ok(())
    }
}

/// STIFF-like colour composite (see the module documentation). Levels are
/// computed per band from its finite pixels, the three bands in parallel.
pub fn stiff(
    r: &Raster<f32>,
    g: &Raster<f32>,
    b: &Raster<f32>,
    p: &StiffParams,
) -> Result<Rgb8, RgbError> {
    p.validate()?;
    check_bands(r, g, b)?;
    let (q_lo, q_hi) = (f64::from(p.min_quantile), f64::from(p.max_quantile));
    let levels = band_levels([r, g, b], |_, data| quantiles(data, q_lo, q_hi))?;
    let map = StiffMap::new(levels, p);
    Ok(composite(r, g, b, |v| map.pixel(v)))
}

/// Runs `level` on the three bands in parallel; `None` means no finite
/// pixel, reported with the band's name.
fn band_levels(
    bands: [&Raster<f32>; 3],
    level: impl Fn(usize, &[f32]) -> Option<(f64, f64)> + Sync,
) -> Result<[(f64, f64); 3], RgbError> {
    let found: Vec<Option<(f64, f64)>> = (0..3)
        .into_par_iter()
        .map(|i| level(i, &bands[i].data))
        .collect();
    let mut out = [(0.0, 0.0); 3];
    for (i, f) in found.into_iter().enumerate() {
        out[i] = f.ok_or(RgbError::NoFinitePixel { band: BANDS[i] })?;
    }
    Ok(out)
}

/// The per-band levels and quantisation table of one STIFF mapping.
struct StiffMap {
    /// Per band: the black level and `1 / (max - min)`, in float32 as STIFF
    /// has them; a non-finite scale marks an empty interval.
    levels: [(f32, f32); 3],
    saturation: f32,
    /// `thresholds[k]` is the smallest linear value shown at `k + 1` DN or
    /// more, `((k + 0.5) / 255)^gamma`: STIFF rounds `255 v^(1/gamma)`, and
    /// looking the value up among these 255 thresholds gives the same
    /// integer for a binary search instead of a `powf` per channel.
    thresholds: [f32; 255],
}

impl StiffMap {
    fn new(levels: [(f64, f64); 3], p: &StiffParams) -> Self {
        let gamma = f64::from(p.gamma);
        let thresholds = std::array::from_fn(|k| ((k as f64 + 0.5) / 255.0).powf(gamma) as f32);
        Self {
            levels: levels.map(|(lo, hi)| (lo as f32, (1.0 / (hi - lo)) as f32)),
            saturation: p.saturation,
            thresholds,
        }
    }

    /// STIFF's `data_to_pix` for one finite pixel.
    fn pixel(&self, v: [f32; 3]) -> [u8; 3] {
        let x: [f32; 3] = std::array::from_fn(|a| {
            let (lo, scale) = self.levels[a];
            if scale.is_finite() && scale > 0.0 {
                (v[a] - lo) * scale
            } else {
                // Empty interval: the step described in the module docs.
                f32::from(u8::from(v[a] > lo))
            }
        });
        // Luminance from the bands clipped at 0 only: it may exceed 1, which
        // is what turns the cores of bright sources white.
        let lum = (x[0].max(0.0) + x[1].max(0.0) + x[2].max(0.0)) / 3.0;
        // The chroma uses the bands capped at 1 (unclipped below).
        let d = x.map(|x| x.min(1.0));
        let mean = (d[0] + d[1] + d[2]) / 3.0;
        d.map(|d| {
            let c = if lum > 1e-15 {
                (lum + self.saturation * (d - mean)).max(0.0)
            } else {
                // STIFF divides by the luminance here; with none the pixel
                // is black whatever the chroma.
                lum
            };
            self.quantise(c)
        })
    }

    /// Rounded `255 c^(1/gamma)` for `c >= 0`, 255 from `c >= 1` on.
    #[inline]
    fn quantise(&self, c: f32) -> u8 {
        self.thresholds.partition_point(|&t| t <= c) as u8
    }
}

// ---------------------------------------------------------------------------
// Linear
// ---------------------------------------------------------------------------

/// Parameters of [`linear`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinearParams {
    /// Level shown as black per band (red, green, blue); `None` takes the
    /// lower end of the band's percentile interval.
    pub min: [Option<f32>; 3],
    /// Level shown at full scale per band; `None` takes the upper end of the
    /// band's percentile interval.
    pub max: [Option<f32>; 3],
    /// Percentage of the finite pixels kept between the derived bounds, in
    /// `(0, 100]` (astropy `PercentileInterval`): the lower bound is the
    /// `(100 - percentile) / 2` percentile, the upper the
    /// `100 - (100 - percentile) / 2` one. Default 99.5.
    pub percentile: f32,
}

impl Default for LinearParams {
    fn default() -> Self {
        Self {
            min: [None; 3],
            max: [None; 3],
            percentile: 99.5,
        }
    }
}

impl LinearParams {
    /// Checks the parameters: `percentile` in `(0, 100]`, explicit bounds
    /// finite, and `max > min` in a band where both are given.
    pub fn validate(&self) -> Result<(), RgbError> {
        if !(self.percentile > 0.0 && self.percentile <= 100.0) {
            return Err(invalid(
                "percentile",
                self.percentile.to_string(),
                "a percentage in (0, 100]",
            ));
        }
        for (i, band) in BANDS.iter().enumerate() {
            for (param, bound) in [("min", self.min[i]), ("max", self.max[i])] {
                if let Some(v) = bound
                    && !v.is_finite()
                {
                    return Err(invalid(
                        param,
                        format!("{v} for the {band} band"),
                        "a finite number",
                    ));
                }
            }
            if let (Some(lo), Some(hi)) = (self.min[i], self.max[i])
                && hi <= lo
            {
                return Err(invalid(
                    "max",
                    format!("{hi} for the {band} band (min {lo})"),
                    "a value greater than the band's min",
                ));
            }
        }
        Ok(())
    }
}

/// Independent linear scaling of each band between its `min` and `max`,
/// reproducing astropy's `make_rgb(r, g, b, interval=..., stretch=
/// LinearStretch())` with a `ManualInterval` per band whose missing bounds
/// come from `PercentileInterval(percentile)`. Computed in float64 and
/// truncated, as astropy does.
pub fn linear(
    r: &Raster<f32>,
    g: &Raster<f32>,
    b: &Raster<f32>,
    p: &LinearParams,
) -> Result<Rgb8, RgbError> {
    p.validate()?;
    check_bands(r, g, b)?;
    let lower = (100.0 - f64::from(p.percentile)) * 0.5;
    let upper = 100.0 - lower;
    let levels = band_levels([r, g, b], |i, data| {
        let (min, max) = (p.min[i].map(f64::from), p.max[i].map(f64::from));
        let (lo, hi) = match (min, max) {
            // The finite-pixel check has already run, so nothing to compute.
            (Some(lo), Some(hi)) => (lo, hi),
            _ => quantiles(data, lower / 100.0, upper / 100.0)?,
        };
        Some((min.unwrap_or(lo), max.unwrap_or(hi)))
    })?;
    Ok(composite(r, g, b, |v| {
        std::array::from_fn(|a| {
            let (lo, hi) = levels[a];
            (unit(f64::from(v[a]), lo, hi).clamp(0.0, 1.0) * 255.0) as u8
        })
    }))
}

// ---------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn img(w: usize, h: usize, data: &[f32]) -> Raster<f32> {
        Raster::from_vec(w, h, data.to_vec())
    }

    fn one(v: f32) -> Raster<f32> {
        img(1, 1, &[v])
    }

    /// A 1x1 composite of the three values.
    fn lupton1(v: [f32; 3], p: &LuptonParams) -> [u8; 3] {
        lupton(&one(v[0]), &one(v[1]), &one(v[2]), p)
            .expect("valid input")
            .pixel(0, 0)
    }

    #[test]
    fn shape_mismatch_is_reported_with_the_sizes() {
        let a = Raster::filled(3, 2, 1.0f32);
        let b = Raster::filled(2, 3, 1.0f32);
        let want = RgbError::Shape {
            r: (3, 2),
            g: (3, 2),
            b: (2, 3),
        };
        assert_eq!(
            lupton(&a, &a, &b, &LuptonParams::default()),
            Err(want.clone())
        );
        assert_eq!(
            stiff(&a, &a, &b, &StiffParams::default()),
            Err(want.clone())
        );
        let err = linear(&a, &a, &b, &LinearParams::default()).unwrap_err();
        assert_eq!(err, want);
        assert_eq!(
            err.to_string(),
            "the three bands must have the same size, but red is 3x2, green 3x2 and blue 2x3 \
             (width x height)"
        );
    }

    #[test]
    fn band_without_finite_pixel_is_named() {
        let ok = Raster::filled(2, 2, 1.0f32);
        let blank = img(
            2,
            2,
            &[f32::NAN, f32::INFINITY, f32::NAN, f32::NEG_INFINITY],
        );
        let err = lupton(&ok, &blank, &ok, &LuptonParams::default()).unwrap_err();
        assert_eq!(err, RgbError::NoFinitePixel { band: "green" });
        assert!(
            err.to_string().contains("green band has no finite pixel"),
            "{err}"
        );
        let err = stiff(&ok, &ok, &blank, &StiffParams::default()).unwrap_err();
        assert_eq!(err, RgbError::NoFinitePixel { band: "blue" });
        let err = linear(&blank, &ok, &ok, &LinearParams::default()).unwrap_err();
        assert_eq!(err, RgbError::NoFinitePixel { band: "red" });
        // Empty images have no finite pixel either, and never reach the
        // encoder.
        let empty = Raster::filled(0, 0, 0.0f32);
        let err = linear(&empty, &empty, &empty, &LinearParams::default()).unwrap_err();
        assert_eq!(err, RgbError::NoFinitePixel { band: "red" });
    }

    #[test]
    fn parameter_validation_messages() {
        let x = one(1.0);
        let lup = |p: LuptonParams| lupton(&x, &x, &x, &p).unwrap_err().to_string();
        let d = LuptonParams::default();
        assert_eq!(
            lup(LuptonParams { stretch: 0.0, ..d }),
            "invalid stretch 0: expected a finite number greater than 0"
        );
        assert_eq!(
            lup(LuptonParams { q: -1.0, ..d }),
            "invalid Q -1: expected a finite number >= 0"
        );
        assert_eq!(
            lup(LuptonParams {
                minimum: [0.0, f32::NAN, 0.0],
                ..d
            }),
            "invalid minimum NaN for the green band: expected a finite number"
        );

        let st = |p: StiffParams| stiff(&x, &x, &x, &p).unwrap_err().to_string();
        let d = StiffParams::default();
        assert_eq!(
            st(StiffParams {
                min_quantile: -0.1,
                ..d
            }),
            "invalid min_quantile -0.1: expected a fraction in [0, 1)"
        );
        assert_eq!(
            st(StiffParams {
                max_quantile: 1.0,
                ..d
            }),
            "invalid max_quantile 1: expected a fraction in [0, 1) greater than min_quantile"
        );
        assert_eq!(
            st(StiffParams {
                min_quantile: 0.6,
                max_quantile: 0.6,
                ..d
            }),
            "invalid max_quantile 0.6: expected a fraction in [0, 1) greater than min_quantile"
        );
        assert_eq!(
            st(StiffParams { gamma: 0.0, ..d }),
            "invalid gamma 0: expected a finite number greater than 0"
        );
        assert_eq!(
            st(StiffParams {
                saturation: -1.0,
                ..d
            }),
            "invalid saturation -1: expected a finite number >= 0"
        );

        let lin = |p: LinearParams| linear(&x, &x, &x, &p).unwrap_err().to_string();
        let d = LinearParams::default();
        assert_eq!(
            lin(LinearParams {
                percentile: 0.0,
                ..d
            }),
            "invalid percentile 0: expected a percentage in (0, 100]"
        );
        assert_eq!(
            lin(LinearParams {
                percentile: 100.5,
                ..d
            }),
            "invalid percentile 100.5: expected a percentage in (0, 100]"
        );
        assert_eq!(
            lin(LinearParams {
                min: [None, Some(5.0), None],
                max: [None, Some(5.0), None],
                ..d
            }),
            "invalid max 5 for the green band (min 5): expected a value greater than the band's min"
        );
        assert_eq!(
            lin(LinearParams {
                max: [None, None, Some(f32::INFINITY)],
                ..d
            }),
            "invalid max inf for the blue band: expected a finite number"
        );

        let pic = lupton(&x, &x, &x, &LuptonParams::default()).unwrap();
        assert_eq!(
            pic.to_jpeg(0).unwrap_err().to_string(),
            "invalid quality 0: expected an integer from 1 to 100"
        );
        assert!(pic.to_jpeg(101).is_err());
    }

    #[test]
    fn lupton_one_pixel_by_hand() {
        // astropy, stretch 5, Q 8, minimum 0, for (r, g, b) = (2, 1, 0.5):
        //   I      = (2 + 1 + 0.5) / 3             = 1.16667
        //   f(I)   = asinh(Q I / stretch) * 0.1 / asinh(0.1 Q)
        //          = asinh(1.86667) * 0.1 / asinh(0.8) = 0.188449
        //   f(I)/I = 0.161528
        //   r, g, b = 255 * (2, 1, 0.5) * f(I)/I = (82.48, 41.24, 20.62)
        //   truncated: (82, 41, 20)  (astropy 8.0.2 prints exactly this)
        let (r, g, b, stretch, q) = (2.0f64, 1.0, 0.5, 5.0, 8.0);
        let i = (r + g + b) / 3.0;
        let factor = (q * i / stretch).asinh() * 0.1 / (0.1 * q).asinh() / i;
        let want = [r, g, b].map(|v| (255.0 * v * factor) as u8);
        assert_eq!(want, [82, 41, 20]);
        let p = LuptonParams::default();
        assert_eq!(lupton1([2.0, 1.0, 0.5], &p), want);

        // A saturated pixel keeps its colour: scaled by its brightest band,
        // so red is 255 and the others keep their ratios to red (25.5 and
        // 2.55, truncated).
        assert_eq!(lupton1([100.0, 10.0, 1.0], &p), [255, 25, 2]);
        // A negative band is clipped, the others still shown.
        assert_eq!(lupton1([-1.0, 2.0, 2.0], &p), [0, 86, 86]);
        // Zero or negative intensity is black.
        assert_eq!(lupton1([0.0, 0.0, 0.0], &p), [0, 0, 0]);
        assert_eq!(lupton1([-3.0, 1.0, 1.0], &p), [0, 0, 0]);
        // The minimum is subtracted first: (3, 2, 1.5) - 1 is the first case.
        let shifted = LuptonParams {
            minimum: [1.0; 3],
            ..p
        };
        assert_eq!(lupton1([3.0, 2.0, 1.5], &shifted), want);
        // Q = 0 means Q = 0.1 in astropy (values from astropy 8.0.2).
        let q0 = LuptonParams { q: 0.0, ..p };
        assert_eq!(lupton1([2.0, 1.0, 0.5], &q0), [101, 50, 25]);
    }

    #[test]
    fn fast_asinh_matches_std() {
        let mut x = 1e-30f64;
        while x < 1e30 {
            for v in [x, -x, x * 1.37, x * 3.1] {
                let (fast, std) = (asinh(v), v.asinh());
                assert!((fast - std).abs() <= 4.0 * f64::EPSILON * std.abs(), "{v}");
                assert_eq!(fast as f32, std as f32, "{v}");
            }
            x *= 1.9;
        }
        assert_eq!(asinh(0.0), 0.0);
        let big = 1e300f64.asinh();
        assert!((asinh(1e300) - big).abs() <= f64::EPSILON * big);
        assert!(asinh(f64::NAN).is_nan());
    }

    #[test]
    fn non_finite_pixels_are_black_and_rows_are_flipped() {
        // 1 column, 3 rows; image row 0 is the bottom.
        let r = img(1, 3, &[1.0, f32::NAN, 2.0]);
        let g = img(1, 3, &[1.0, 1.0, f32::INFINITY]);
        let b = img(1, 3, &[1.0, 1.0, 1.0]);
        for pic in [
            lupton(&r, &g, &b, &LuptonParams::default()).unwrap(),
            stiff(&r, &g, &b, &StiffParams::default()).unwrap(),
            linear(&r, &g, &b, &LinearParams::default()).unwrap(),
        ] {
            assert_eq!(pic.pixel(0, 1), [0, 0, 0]);
            assert_eq!(pic.pixel(0, 2), [0, 0, 0]);
            // The top row (image row 2) comes first in the buffer.
            assert_eq!(&pic.data[0..3], &[0, 0, 0]);
            assert_eq!(&pic.data[6..9], &pic.pixel(0, 0));
        }
        let pic = lupton(&r, &g, &b, &LuptonParams::default()).unwrap();
        assert_ne!(pic.pixel(0, 0), [0, 0, 0]);
    }

    #[test]
    fn linear_maps_known_values() {
        // Manual bounds 0..10 on every band: 255 * v / 10, truncated.
        let r = img(5, 1, &[-1.0, 0.0, 2.5, 5.0, 10.0]);
        let g = img(5, 1, &[20.0, 1.0, 1.0, 1.0, 9.99]);
        let b = img(5, 1, &[0.0; 5]);
        let p = LinearParams {
            min: [Some(0.0); 3],
            max: [Some(10.0); 3],
            ..LinearParams::default()
        };
        let pic = linear(&r, &g, &b, &p).unwrap();
        let got: Vec<[u8; 3]> = (0..5).map(|ix| pic.pixel(ix, 0)).collect();
        assert_eq!(
            got,
            vec![
                [0, 255, 0],
                [0, 25, 0],
                [63, 25, 0],
                [127, 25, 0],
                [255, 254, 0]
            ]
        );

        // Percentile bounds: 0..=100 in steps of 1, keeping the central 50 %
        // gives the 25th and 75th percentiles, 25 and 75 exactly.
        let ramp: Vec<f32> = (0..=100).map(|v| v as f32).collect();
        let band = img(101, 1, &ramp);
        let p = LinearParams {
            percentile: 50.0,
            ..LinearParams::default()
        };
        let pic = linear(&band, &band, &band, &p).unwrap();
        assert_eq!(pic.pixel(25, 0), [0; 3]);
        assert_eq!(pic.pixel(50, 0), [127; 3]);
        assert_eq!(pic.pixel(75, 0), [255; 3]);
        // One bound given, the other from the band.
        let p = LinearParams {
            min: [Some(50.0), None, None],
            percentile: 50.0,
            ..LinearParams::default()
        };
        let pic = linear(&band, &band, &band, &p).unwrap();
        assert_eq!(pic.pixel(50, 0), [0, 127, 127]);
        assert_eq!(pic.pixel(60, 0), [102, 178, 178]);
    }

    #[test]
    fn stiff_pixel_formula() {
        let p = StiffParams {
            gamma: 1.0,
            ..StiffParams::default()
        };
        // Levels 0..1 in every band, so the pixel values are the linear ones.
        let map = StiffMap::new([(0.0, 1.0); 3], &p);
        // Grey stays grey: round(255 * 0.25) = 64.
        assert_eq!(map.pixel([0.25; 3]), [64; 3]);
        // Saturation 1: the channels are the band values themselves.
        assert_eq!(map.pixel([0.6, 0.2, 0.0]), [153, 51, 0]);
        // Below the minimum: clipped at 0, and no luminance is black.
        assert_eq!(map.pixel([-0.5, -0.1, -2.0]), [0, 0, 0]);
        // Far above the maximum in one band: the luminance exceeds 1 and the
        // core turns white, as in STIFF.
        assert_eq!(map.pixel([50.0, 0.1, 0.1]), [255, 255, 255]);
        // Saturation 0 is grey at the luminance (0.26667 -> 68).
        let grey = StiffMap::new(
            [(0.0, 1.0); 3],
            &StiffParams {
                saturation: 0.0,
                ..p
            },
        );
        assert_eq!(grey.pixel([0.6, 0.2, 0.0]), [68; 3]);
        // Saturation 2 doubles the chroma around the luminance L = 0.26667:
        // L + 2 (0.6 - L) = 0.93333, L + 2 (0.2 - L) = 0.13333, negative.
        let vivid = StiffMap::new(
            [(0.0, 1.0); 3],
            &StiffParams {
                saturation: 2.0,
                ..p
            },
        );
        assert_eq!(vivid.pixel([0.6, 0.2, 0.0]), [238, 34, 0]);
        // Display gamma 2: sqrt(0.25) = 0.5 -> round(127.5) = 128.
        let g2 = StiffMap::new([(0.0, 1.0); 3], &StiffParams { gamma: 2.0, ..p });
        assert_eq!(g2.pixel([0.25; 3]), [128; 3]);
    }

    #[test]
    fn stiff_quantisation_table_matches_the_power_law() {
        for gamma in [0.5f32, 1.0, 2.2, 4.0] {
            let map = StiffMap::new(
                [(0.0, 1.0); 3],
                &StiffParams {
                    gamma,
                    ..StiffParams::default()
                },
            );
            for k in 0..=20_000 {
                let c = k as f32 / 16_000.0;
                let direct = (255.0 * f64::from(c).powf(1.0 / f64::from(gamma)) + 0.5).min(255.0);
                let got = f64::from(map.quantise(c));
                // Equal except where c sits on a rounding threshold.
                assert!((got - direct.floor()).abs() <= 1.0, "gamma {gamma} c {c}");
                if (direct - direct.round()).abs() > 1e-3 {
                    assert_eq!(got, direct.floor(), "gamma {gamma} c {c}");
                }
            }
        }
    }

    #[test]
    fn stiff_levels_come_from_quantiles() {
        // A ramp 0..=1000 in every band: with quantiles 0.1 and 0.9 the
        // levels are 100 and 900, so 500 is half-way: gamma 1 gives
        // round(127.5) = 128 for all three (grey).
        let ramp: Vec<f32> = (0..=1000).map(|v| v as f32).collect();
        let band = img(1001, 1, &ramp);
        let p = StiffParams {
            min_quantile: 0.1,
            max_quantile: 0.9,
            gamma: 1.0,
            saturation: 1.0,
        };
        let pic = stiff(&band, &band, &band, &p).unwrap();
        assert_eq!(pic.pixel(500, 0), [128; 3]);
        assert_eq!(pic.pixel(100, 0), [0; 3]);
        assert_eq!(pic.pixel(900, 0), [255; 3]);
        assert_eq!(pic.pixel(1000, 0), [255; 3]);
    }

    #[test]
    fn png_and_jpeg_encode() {
        let a = img(3, 2, &[0.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
        let pic = lupton(&a, &a, &a, &LuptonParams::default()).unwrap();
        let png = pic.to_png();
        assert_eq!(&png[1..4], b"PNG");
        let decoded = image::load_from_memory(&png).unwrap().to_rgb8();
        assert_eq!(decoded.as_raw(), &pic.data);
        let jpeg = pic.to_jpeg(90).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }
}
