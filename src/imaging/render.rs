//! Turning floating-point sky images into display images.
//!
//! Every picture the server produces (cutout PNG/JPEG, whole-frame views,
//! animation frames, colour composites) goes through this one pipeline so
//! that the same request parameters always give the same pixels:
//!
//! 1. [`limits`]: the [`Interval`] picks `vmin`/`vmax` from the *full
//!    resolution* input, so the limits (reported to clients in a response
//!    header) do not depend on the requested display size;
//! 2. [`resample`]: optional change of size (exact area average when
//!    shrinking, nearest neighbour when enlarging);
//! 3. [`normalize`]: `(v - vmin) / (vmax - vmin)`, clipped to `[0, 1]`, then
//!    the [`Stretch`], then the optional inversion;
//! 4. [`encode`]: quantisation to 8 or 16 bits, NaN colouring and vertical
//!    flip into PNG or JPEG.
//!
//! The interval and stretch definitions follow `astropy.visualization`
//! (astropy 8.0.2) so that results can be checked against Python.
//!
//! Orientation: row 0 of an [`Raster`] is FITS row 1, the *bottom* of the sky
//! picture, while image files store the top row first. The encoders flip
//! rows so that a normal WCS shows north up.

use std::fmt;
use std::io::Cursor;

use image::codecs::png::PngEncoder;
use image::{ExtendedColorType, ImageEncoder};

use crate::imaging::raster::Raster;

/// Errors produced while parsing render parameters or encoding images.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RenderError {
    /// A request parameter has a value outside its allowed set or range.
    #[error("invalid {name} {value:?}: expected {allowed}")]
    InvalidParameter {
        /// Name of the offending parameter (as the client spells it).
        name: &'static str,
        /// The value that was rejected.
        value: String,
        /// Human-readable description of the accepted values.
        allowed: String,
    },
    /// A parameter that the chosen options require was not supplied.
    #[error("missing {name}: {reason}")]
    MissingParameter {
        /// Name of the missing parameter.
        name: &'static str,
        /// Why it is needed.
        reason: &'static str,
    },
    /// A transparent NaN colour was combined with JPEG output.
    #[error("transparent NaN colour needs PNG output (JPEG has no alpha channel)")]
    TransparentJpeg,
    /// The underlying image encoder failed.
    #[error("{format} encoding failed: {message}")]
    Encode {
        /// Output format being written.
        format: &'static str,
        /// Message from the encoder.
        message: String,
    },
}

fn invalid(name: &'static str, value: &str, allowed: impl Into<String>) -> RenderError {
    RenderError::InvalidParameter {
        name,
        value: value.to_string(),
        allowed: allowed.into(),
    }
}

// ---------------------------------------------------------------------------
// Stretch
// ---------------------------------------------------------------------------

/// Parameter `a` of astropy's `LogStretch` default.
const LOG_A: f64 = 1000.0;
/// Parameter `a` of astropy's `AsinhStretch` default.
const ASINH_A: f64 = 0.1;

/// The tone curve applied to values already normalised to `[0, 1]`.
///
/// Definitions are those of `astropy.visualization` with default parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stretch {
    /// `y = x`.
    Linear,
    /// `y = sqrt(x)`.
    Sqrt,
    /// `y = ln(a·x + 1) / ln(a + 1)` with `a = 1000`.
    Log,
    /// `y = asinh(x / a) / asinh(1 / a)` with `a = 0.1`.
    Asinh,
    /// Histogram equalisation: `y` is the empirical cumulative distribution
    /// of the image's own finite normalised pixels, interpolated linearly
    /// (astropy's `HistEqStretch`).
    Histeq,
}

impl Stretch {
    /// Every stretch, in the order they are listed in error messages.
    pub const ALL: [Stretch; 5] = [
        Stretch::Linear,
        Stretch::Sqrt,
        Stretch::Log,
        Stretch::Asinh,
        Stretch::Histeq,
    ];

    /// The lower-case name used in requests.
    pub fn name(self) -> &'static str {
        match self {
            Stretch::Linear => "linear",
            Stretch::Sqrt => "sqrt",
            Stretch::Log => "log",
            Stretch::Asinh => "asinh",
            Stretch::Histeq => "histeq",
        }
    }

    /// Parses a stretch name, ignoring case and surrounding blanks.
    pub fn parse(s: &str) -> Result<Self, RenderError> {
        let t = s.trim();
        Self::ALL
            .into_iter()
            .find(|st| st.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|st| st.name()).collect();
                invalid("stretch", s, format!("one of {}", names.join(", ")))
            })
    }

    /// Applies the stretch in place to values in `[0, 1]` (values outside are
    /// clipped first, NaN is left alone).
    ///
    /// Histogram equalisation needs the whole data set, which is why this
    /// works on a slice rather than on single values.
    pub fn apply(self, values: &mut [f32]) {
        for v in values.iter_mut() {
            if !v.is_nan() {
                *v = v.clamp(0.0, 1.0);
            }
        }
        match self {
            Stretch::Linear => {}
            Stretch::Histeq => histeq(values),
            Stretch::Sqrt => {
                for v in values.iter_mut() {
                    *v = v.sqrt();
                }
            }
            curve @ (Stretch::Log | Stretch::Asinh) => {
                // The transcendental curves cost ~30 ns a pixel in libm; a
                // table evaluated with linear interpolation is exact to
                // ~1e-9, far below the 16-bit output step.
                let table = curve.table();
                for v in values.iter_mut() {
                    if !v.is_nan() {
                        *v = lookup(table, *v);
                    }
                }
            }
        }
    }

    /// The curve sampled at `TABLE_STEPS + 1` points of [0, 1], built once.
    fn table(self) -> &'static [f32] {
        static LOG: std::sync::LazyLock<Vec<f32>> =
            std::sync::LazyLock::new(|| sample_curve(Stretch::Log));
        static ASINH: std::sync::LazyLock<Vec<f32>> =
            std::sync::LazyLock::new(|| sample_curve(Stretch::Asinh));
        match self {
            Stretch::Log => &LOG,
            _ => &ASINH,
        }
    }

    /// The curve of a point-wise stretch; identity for `Histeq`, which is
    /// handled separately because it depends on the data.
    fn curve(self, x: f64) -> f64 {
        match self {
            Stretch::Linear | Stretch::Histeq => x,
            Stretch::Sqrt => x.sqrt(),
            Stretch::Log => (LOG_A * x + 1.0).ln() / (LOG_A + 1.0).ln(),
            Stretch::Asinh => (x / ASINH_A).asinh() / (1.0 / ASINH_A).asinh(),
        }
    }
}

/// Segments of the stretch tables.
const TABLE_STEPS: usize = 1 << 16;

fn sample_curve(stretch: Stretch) -> Vec<f32> {
    (0..=TABLE_STEPS)
        .map(|i| stretch.curve(i as f64 / TABLE_STEPS as f64) as f32)
        .collect()
}

/// Linear interpolation in a table of the curve over [0, 1]; `x` is already
/// clipped to [0, 1].
#[inline]
fn lookup(table: &[f32], x: f32) -> f32 {
    let pos = f64::from(x) * TABLE_STEPS as f64;
    let i = (pos as usize).min(TABLE_STEPS - 1);
    let frac = (pos - i as f64) as f32;
    table[i] + (table[i + 1] - table[i]) * frac
}

impl fmt::Display for Stretch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Histogram equalisation like astropy's `HistEqStretch(data)(data)` where
/// `data` is the normalised image: `y = interp(x, sorted(data), linspace(0, 1, n))`.
///
/// astropy re-normalises `data` by its own min/max; here the data have just
/// been clipped to `[0, 1]` by the interval, so we use them as they are and
/// values beyond the data range saturate at 0 or 1 like `np.interp` does.
fn histeq(values: &mut [f32]) {
    let mut xp: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    let n = xp.len();
    if n == 0 {
        return;
    }
    xp.sort_unstable_by(f32::total_cmp);
    if n == 1 {
        // linspace(0, 1, 1) == [0], so every value maps to 0.
        for v in values.iter_mut().filter(|v| !v.is_nan()) {
            *v = 0.0;
        }
        return;
    }
    let step = 1.0 / (n - 1) as f64;
    for v in values.iter_mut() {
        if v.is_nan() {
            continue;
        }
        let x = *v;
        // Last index whose abscissa is <= x, as numpy's binary search picks:
        // with repeated abscissae (many clipped pixels) that is the last one.
        let upper = xp.partition_point(|&p| p <= x);
        *v = if upper == 0 {
            0.0
        } else if upper >= n {
            1.0
        } else {
            let j = upper - 1;
            let (x0, x1) = (f64::from(xp[j]), f64::from(xp[j + 1]));
            let y0 = j as f64 * step;
            if f64::from(x) == x0 {
                y0 as f32
            } else {
                (y0 + (f64::from(x) - x0) * step / (x1 - x0)) as f32
            }
        };
    }
}

// ---------------------------------------------------------------------------
// Interval
// ---------------------------------------------------------------------------

/// The rule choosing the data values mapped to black (`vmin`) and white
/// (`vmax`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Interval {
    /// Minimum and maximum of the finite pixels.
    MinMax,
    /// Keep the central `p` percent of the finite pixels, like astropy's
    /// `PercentileInterval(p)`: the limits are numpy's default (linear
    /// interpolation) percentiles at `(100 - p) / 2` and `100 - (100 - p) / 2`.
    Percentile(f64),
    /// IRAF's zscale, exactly as astropy's `ZScaleInterval()` with its
    /// default parameters.
    ZScale,
    /// Limits given by the caller.
    Manual {
        /// Data value shown black.
        min: f64,
        /// Data value shown white.
        max: f64,
    },
}

impl Interval {
    /// Percentage kept when a request says just `percentile` (fitscut's
    /// autoscale default).
    pub const DEFAULT_PERCENTILE: f64 = 99.5;

    /// The names accepted by [`Interval::parse`].
    pub const NAMES: [&'static str; 4] = ["minmax", "percentile[:P]", "zscale", "manual"];

    /// Parses an interval name (case-insensitive): `minmax`, `percentile`,
    /// `percentile:P` (0 < P <= 100), `zscale` or `manual`.
    ///
    /// `min`/`max` are the separately supplied manual limits; both are
    /// required for `manual` and rejected for the other intervals, so that a
    /// client never silently gets limits other than the ones it asked for.
    pub fn parse(s: &str, min: Option<f64>, max: Option<f64>) -> Result<Self, RenderError> {
        let t = s.trim().to_ascii_lowercase();
        let (head, arg) = match t.split_once(':') {
            Some((h, a)) => (h.trim(), Some(a.trim())),
            None => (t.as_str(), None),
        };
        let interval = match (head, arg) {
            ("minmax", None) => Interval::MinMax,
            ("zscale", None) => Interval::ZScale,
            ("percentile", None) => Interval::Percentile(Self::DEFAULT_PERCENTILE),
            ("percentile", Some(a)) => {
                let p: f64 = a
                    .parse()
                    .map_err(|_| invalid("percentile", a, "a number with 0 < P <= 100"))?;
                Interval::Percentile(p)
            }
            ("manual", None) => match (min, max) {
                (Some(min), Some(max)) => Interval::Manual { min, max },
                (None, _) => {
                    return Err(RenderError::MissingParameter {
                        name: "min",
                        reason: "interval=manual needs both min and max",
                    });
                }
                (_, None) => {
                    return Err(RenderError::MissingParameter {
                        name: "max",
                        reason: "interval=manual needs both min and max",
                    });
                }
            },
            _ => {
                return Err(invalid(
                    "interval",
                    s,
                    format!("one of {}", Self::NAMES.join(", ")),
                ));
            }
        };
        if !matches!(interval, Interval::Manual { .. }) && (min.is_some() || max.is_some()) {
            let value = format!("{}", min.or(max).unwrap_or_default());
            let name = if min.is_some() { "min" } else { "max" };
            return Err(invalid(name, &value, "no value unless interval=manual"));
        }
        interval.validate()?;
        Ok(interval)
    }

    /// Checks the numeric parameters: `0 < p <= 100`, manual limits finite
    /// with `min < max`.
    pub fn validate(&self) -> Result<(), RenderError> {
        match *self {
            Interval::Percentile(p) if !(p > 0.0 && p <= 100.0) => Err(invalid(
                "percentile",
                &p.to_string(),
                "a number with 0 < P <= 100",
            )),
            Interval::Manual { min, max } if !(min.is_finite() && max.is_finite()) => Err(invalid(
                "min/max",
                &format!("{min}/{max}"),
                "finite numbers",
            )),
            Interval::Manual { min, max } if min >= max => Err(invalid(
                "min/max",
                &format!("{min}/{max}"),
                "min strictly less than max",
            )),
            _ => Ok(()),
        }
    }

    /// A short name for logs and headers (`minmax`, `percentile:99.5`, ...).
    pub fn name(&self) -> String {
        match *self {
            Interval::MinMax => "minmax".into(),
            Interval::Percentile(p) => format!("percentile:{p}"),
            Interval::ZScale => "zscale".into(),
            Interval::Manual { .. } => "manual".into(),
        }
    }
}

/// Computes `(vmin, vmax)` for `data` under `interval`, ignoring NaN and
/// infinite pixels.
///
/// If `data` has no finite pixel at all the result is `(0.0, 0.0)` (except for
/// [`Interval::Manual`], which returns its own limits); [`normalize`] then
/// maps every finite pixel to 0 and NaN pixels keep the NaN colour. Only
/// invalid interval parameters produce an error; no input makes this panic.
pub fn limits(interval: &Interval, data: &[f32]) -> Result<(f64, f64), RenderError> {
    interval.validate()?;
    if let Interval::Manual { min, max } = *interval {
        return Ok((min, max));
    }
    let n_finite = data.iter().filter(|v| v.is_finite()).count();
    if n_finite == 0 {
        return Ok((0.0, 0.0));
    }
    Ok(match *interval {
        Interval::MinMax => {
            let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
            for &v in data.iter().filter(|v| v.is_finite()) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            (f64::from(lo), f64::from(hi))
        }
        Interval::Percentile(p) => {
            let lower = (100.0 - p) * 0.5;
            let upper = 100.0 - lower;
            // There is a finite value (checked above).
            crate::imaging::stats::quantiles(data, lower / 100.0, upper / 100.0)
                .unwrap_or((0.0, 0.0))
        }
        Interval::ZScale => zscale(data, n_finite),
        Interval::Manual { .. } => unreachable!("handled above"),
    })
}

/// astropy `ZScaleInterval` defaults.
const ZS_N_SAMPLES: usize = 1000;
const ZS_CONTRAST: f64 = 0.25;
const ZS_MAX_REJECT: f64 = 0.5;
const ZS_MIN_NPIXELS: usize = 5;
const ZS_KREJ: f64 = 2.5;
const ZS_MAX_ITERATIONS: usize = 5;

/// IRAF zscale as implemented by astropy's `ZScaleInterval.get_limits`;
/// `n_finite` (> 0) is the number of finite pixels in `data`.
fn zscale(data: &[f32], n_finite: usize) -> (f64, f64) {
    // Regular sampling of the flattened finite pixels, in order.
    let stride = (n_finite / ZS_N_SAMPLES).max(1);
    let mut samples: Vec<f32> = data
        .iter()
        .copied()
        .filter(|v| v.is_finite())
        .step_by(stride)
        .take(ZS_N_SAMPLES)
        .collect();
    samples.sort_unstable_by(f32::total_cmp);

    let npix = samples.len();
    let mut vmin = f64::from(samples[0]);
    let mut vmax = f64::from(samples[npix - 1]);

    let minpix = ZS_MIN_NPIXELS.max((npix as f64 * ZS_MAX_REJECT) as usize);
    let ngrow = 1usize.max((npix as f64 * 0.01) as usize);
    let y: Vec<f64> = samples.iter().map(|&v| f64::from(v)).collect();

    let mut badpix = vec![false; npix];
    let mut ngoodpix = npix;
    let mut last_ngoodpix = npix + 1;
    let mut fit: Option<(f64, f64)> = None;
    let mut flat = vec![0.0f64; npix];

    for _ in 0..ZS_MAX_ITERATIONS {
        if ngoodpix >= last_ngoodpix || ngoodpix < minpix {
            break;
        }
        // Least-squares line through the good pixels (polyfit with 0/1
        // weights), computed about the means for numerical stability.
        let (slope, intercept) = fit_line(&y, &badpix);
        fit = Some((slope, intercept));
        for (i, f) in flat.iter_mut().enumerate() {
            *f = y[i] - (slope * i as f64 + intercept);
        }
        let threshold = ZS_KREJ * std_good(&flat, &badpix);
        for (b, &f) in badpix.iter_mut().zip(&flat) {
            if f < -threshold || f > threshold {
                *b = true;
            }
        }
        badpix = dilate(&badpix, ngrow);
        last_ngoodpix = ngoodpix;
        ngoodpix = badpix.iter().filter(|&&b| !b).count();
    }

    // `fit` is always set when ngoodpix >= minpix (the first iteration runs
    // unless there are too few samples); matching keeps that explicit.
    if let (Some((slope, _)), true) = (fit, ngoodpix >= minpix) {
        let slope = if ZS_CONTRAST > 0.0 {
            slope / ZS_CONTRAST
        } else {
            slope
        };
        let center_pixel = ((npix - 1) / 2) as f64;
        let median = median_sorted_f32(&samples);
        vmin = vmin.max(median - (center_pixel - 1.0) * slope);
        vmax = vmax.min(median + (npix as f64 - center_pixel) * slope);
    }
    (vmin, vmax)
}

/// Slope and intercept of the least-squares line `y = slope·i + intercept`
/// over the indices `i` not flagged in `bad` (at least `ZS_MIN_NPIXELS`).
fn fit_line(y: &[f64], bad: &[bool]) -> (f64, f64) {
    let (mut n, mut sx, mut sy) = (0.0f64, 0.0f64, 0.0f64);
    for (i, (&v, &b)) in y.iter().zip(bad).enumerate() {
        if !b {
            n += 1.0;
            sx += i as f64;
            sy += v;
        }
    }
    let (mx, my) = (sx / n, sy / n);
    let (mut sxx, mut sxy) = (0.0f64, 0.0f64);
    for (i, (&v, &b)) in y.iter().zip(bad).enumerate() {
        if !b {
            let dx = i as f64 - mx;
            sxx += dx * dx;
            sxy += dx * (v - my);
        }
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (slope, my - slope * mx)
}

/// Population standard deviation (numpy's default `ddof=0`) of the good values.
fn std_good(values: &[f64], bad: &[bool]) -> f64 {
    let good = || {
        values
            .iter()
            .zip(bad)
            .filter(|(_, b)| !**b)
            .map(|(v, _)| *v)
    };
    let n = good().count() as f64;
    let mean = good().sum::<f64>() / n;
    (good().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt()
}

/// `np.convolve(mask, ones(ngrow), mode="same") != 0`: output `i` is set when
/// any input in `i + off - (ngrow - 1) ..= i + off` is, with
/// `off = (ngrow - 1) / 2` (numpy centres "same" output that way, so for even
/// kernels the dilation reaches one pixel further left than right).
fn dilate(mask: &[bool], ngrow: usize) -> Vec<bool> {
    let n = mask.len();
    let off = (ngrow - 1) / 2;
    // Prefix counts make each window query O(1).
    let mut prefix = vec![0usize; n + 1];
    for i in 0..n {
        prefix[i + 1] = prefix[i] + usize::from(mask[i]);
    }
    (0..n)
        .map(|i| {
            let hi = (i + off).min(n - 1);
            let lo = (i + off).saturating_sub(ngrow - 1);
            lo <= hi && prefix[hi + 1] > prefix[lo]
        })
        .collect()
}

/// `np.median` of sorted float32 samples: numpy averages the two middle
/// values in float32, and we reproduce that rounding so limits match astropy
/// to the last bit where possible.
fn median_sorted_f32(sorted: &[f32]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        f64::from(sorted[n / 2])
    } else {
        f64::from((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0)
    }
}

// ---------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------

/// The colour given to NaN (blank) pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NanColor {
    /// A grey level; keeps grey output grey. `Gray(0)` (black) is the default.
    Gray(u8),
    /// A colour; forces RGB output when the picture has NaN pixels.
    Rgb(u8, u8, u8),
    /// Fully transparent; forces an alpha channel (PNG only) when the picture
    /// has NaN pixels.
    Transparent,
}

impl Default for NanColor {
    fn default() -> Self {
        Self::BLACK
    }
}

impl NanColor {
    /// Black, the default NaN colour.
    pub const BLACK: NanColor = NanColor::Gray(0);

    /// Parses `black`, `white`, `grey`/`gray`, `red`, `green`, `blue`,
    /// `transparent` or `#rrggbb` (case-insensitive). Colours with equal
    /// components become grey levels so that grey output stays one channel.
    pub fn parse(s: &str) -> Result<Self, RenderError> {
        let t = s.trim().to_ascii_lowercase();
        let rgb = match t.as_str() {
            "transparent" => return Ok(NanColor::Transparent),
            "black" => (0, 0, 0),
            "white" => (255, 255, 255),
            "grey" | "gray" => (128, 128, 128),
            "red" => (255, 0, 0),
            "green" => (0, 255, 0),
            "blue" => (0, 0, 255),
            hex if hex.len() == 7 && hex.starts_with('#') && hex.is_ascii() => {
                let c = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16);
                match (c(1), c(3), c(5)) {
                    (Ok(r), Ok(g), Ok(b)) => (r, g, b),
                    _ => return Err(nan_color_error(s)),
                }
            }
            _ => return Err(nan_color_error(s)),
        };
        Ok(Self::from_rgb(rgb.0, rgb.1, rgb.2))
    }

    /// An opaque colour, reduced to a grey level when `r == g == b`.
    pub fn from_rgb(r: u8, g: u8, b: u8) -> Self {
        if r == g && g == b {
            NanColor::Gray(r)
        } else {
            NanColor::Rgb(r, g, b)
        }
    }
}

fn nan_color_error(s: &str) -> RenderError {
    invalid(
        "nan",
        s,
        "black, white, grey, red, green, blue, transparent or #rrggbb",
    )
}

/// Everything that determines how an image is rendered.
///
/// The default is a linear stretch over the central 99.5 % of the pixels
/// (`Percentile(99.5)`, fitscut's autoscale), not inverted, NaN black, at the
/// input's own size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenderParams {
    /// Tone curve.
    pub stretch: Stretch,
    /// Choice of the black and white data values.
    pub interval: Interval,
    /// Whether to show high values dark (`y -> 1 - y` after the stretch).
    pub invert: bool,
    /// Colour of NaN pixels.
    pub nan: NanColor,
    /// Output `(width, height)`; `None` keeps the input size.
    pub output_size: Option<(usize, usize)>,
}

impl Default for RenderParams {
    fn default() -> Self {
        Self {
            stretch: Stretch::Linear,
            interval: Interval::Percentile(Interval::DEFAULT_PERCENTILE),
            invert: false,
            nan: NanColor::BLACK,
            output_size: None,
        }
    }
}

impl RenderParams {
    /// Checks the interval parameters and that a requested size is non-empty.
    pub fn validate(&self) -> Result<(), RenderError> {
        self.interval.validate()?;
        if let Some((w, h)) = self.output_size.filter(|&(w, h)| w == 0 || h == 0) {
            return Err(invalid(
                "output size",
                &format!("{w}x{h}"),
                "width and height of at least 1",
            ));
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Resampling
// ---------------------------------------------------------------------------

/// For one axis, which input pixels feed each output pixel and with what
/// weight.
struct AxisMap {
    /// First input index used by output `i`.
    start: Vec<usize>,
    /// Weights of output `i` are `weights[offset[i]..offset[i + 1]]`, applying
    /// to input indices `start[i]..`.
    offset: Vec<usize>,
    weights: Vec<f64>,
}

impl AxisMap {
    fn new(n_in: usize, n_out: usize) -> Self {
        let mut start = Vec::with_capacity(n_out);
        let mut offset = Vec::with_capacity(n_out + 1);
        let mut weights = Vec::new();
        offset.push(0);
        if n_out > n_in {
            // Enlarging: nearest neighbour, source = floor((i + 0.5) * n_in / n_out)
            // in exact integer arithmetic.
            for i in 0..n_out {
                start.push(((2 * i + 1) * n_in / (2 * n_out)).min(n_in - 1));
                weights.push(1.0);
                offset.push(weights.len());
            }
        } else {
            // Shrinking (or same size): exact area overlap. Measured in units
            // of 1/n_out input pixels, input j spans [j·n_out, (j+1)·n_out)
            // and output i spans [i·n_in, (i+1)·n_in), so the overlaps are
            // integers and the weights exact.
            for i in 0..n_out {
                let lo = i * n_in;
                let hi = (i + 1) * n_in;
                let first = lo / n_out;
                let last = (hi - 1) / n_out;
                start.push(first);
                for j in first..=last {
                    let a = lo.max(j * n_out);
                    let b = hi.min((j + 1) * n_out);
                    weights.push((b - a) as f64);
                }
                offset.push(weights.len());
            }
        }
        Self {
            start,
            offset,
            weights,
        }
    }

    fn taps(&self, i: usize) -> (usize, &[f64]) {
        (
            self.start[i],
            &self.weights[self.offset[i]..self.offset[i + 1]],
        )
    }
}

/// Resizes `img` to `out_w × out_h`.
///
/// Along an axis that shrinks (or keeps its size) each output pixel is the
/// exact area-weighted mean of the input area it covers, fractional pixels
/// included; along an axis that grows, nearest neighbour keeps zoomed pixels
/// crisp. NaN pixels are left out of the means; an output pixel whose
/// inputs are all NaN is NaN. Infinite inputs propagate.
/// A zero output size gives an empty image; an empty input gives all NaN.
pub fn resample(img: &Raster<f32>, out_w: usize, out_h: usize) -> Raster<f32> {
    if out_w == 0 || out_h == 0 {
        return Raster::from_vec(out_w, out_h, Vec::new());
    }
    if img.width == 0 || img.height == 0 {
        return Raster::filled(out_w, out_h, f32::NAN);
    }
    if out_w == img.width && out_h == img.height {
        return img.clone();
    }
    let xmap = AxisMap::new(img.width, out_w);
    let ymap = AxisMap::new(img.height, out_h);

    // Separable: reduce input rows horizontally into (weighted sum, weight)
    // pairs, then combine rows vertically. Carrying the weights, not means,
    // keeps the NaN exclusion exact in 2-D. Consecutive output rows share at
    // most their boundary input row, so caching the last reduced row avoids
    // reducing any row twice.
    let mut row_sum = vec![0.0f64; out_w];
    let mut row_wt = vec![0.0f64; out_w];
    let mut cached_row = usize::MAX;
    let mut acc_sum = vec![0.0f64; out_w];
    let mut acc_wt = vec![0.0f64; out_w];
    let mut out = Vec::with_capacity(out_w * out_h);

    for oy in 0..out_h {
        acc_sum.fill(0.0);
        acc_wt.fill(0.0);
        let (y0, wys) = ymap.taps(oy);
        for (k, &wy) in wys.iter().enumerate() {
            let iy = y0 + k;
            if iy != cached_row {
                reduce_row(img.row(iy), &xmap, &mut row_sum, &mut row_wt);
                cached_row = iy;
            }
            for x in 0..out_w {
                acc_sum[x] += wy * row_sum[x];
                acc_wt[x] += wy * row_wt[x];
            }
        }
        out.extend(
            acc_sum.iter().zip(&acc_wt).map(
                |(&s, &w)| {
                    if w > 0.0 { (s / w) as f32 } else { f32::NAN }
                },
            ),
        );
    }
    Raster::from_vec(out_w, out_h, out)
}

/// Horizontal pass of [`resample`] for one input row.
fn reduce_row(row: &[f32], xmap: &AxisMap, sum: &mut [f64], wt: &mut [f64]) {
    for x in 0..sum.len() {
        let (x0, wxs) = xmap.taps(x);
        let (mut s, mut w) = (0.0f64, 0.0f64);
        for (&v, &wx) in row[x0..x0 + wxs.len()].iter().zip(wxs) {
            if !v.is_nan() {
                s += wx * f64::from(v);
                w += wx;
            }
        }
        sum[x] = s;
        wt[x] = w;
    }
}

// ---------------------------------------------------------------------------
// Normalisation and the whole pipeline
// ---------------------------------------------------------------------------

/// Maps data values to display values in `[0, 1]`:
/// `(v - vmin) / (vmax - vmin)`, clipped, stretched, then inverted if asked.
///
/// NaN stays NaN (it is coloured at encoding time); `±inf` clip to 1 and 0.
/// When `vmax <= vmin` (a constant image, or no finite pixel) there is no
/// scale to apply and every non-NaN pixel maps to 0 (before inversion).
pub fn normalize(
    img: &Raster<f32>,
    vmin: f64,
    vmax: f64,
    stretch: Stretch,
    invert: bool,
) -> Raster<f32> {
    let span = vmax - vmin;
    let scale = |v: f32| {
        if span > 0.0 && span.is_finite() {
            ((f64::from(v) - vmin) / span).clamp(0.0, 1.0) as f32
        } else {
            0.0
        }
    };
    // One pass for the pointwise curves (the same operations as
    // `Stretch::apply`, fused); histogram equalisation needs every value.
    let flip = |t: f32| if invert { 1.0 - t } else { t };
    let table = matches!(stretch, Stretch::Log | Stretch::Asinh).then(|| stretch.table());
    let curve = |t: f32| match (stretch, table) {
        (Stretch::Sqrt, _) => t.sqrt(),
        (_, Some(table)) => lookup(table, t),
        _ => t,
    };
    if stretch == Stretch::Histeq {
        let mut out = img.map(|v| if v.is_nan() { f32::NAN } else { scale(v) });
        stretch.apply(&mut out.data);
        if invert {
            for v in out.data.iter_mut().filter(|v| !v.is_nan()) {
                *v = 1.0 - *v;
            }
        }
        return out;
    }
    img.map(|v| {
        if v.is_nan() {
            f32::NAN
        } else {
            flip(curve(scale(v)))
        }
    })
}

/// A rendered picture: display values plus what is needed to encode and
/// describe it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Display values in `[0, 1]`, NaN where the input had no data; row 0 is
    /// the bottom of the picture, as in the input.
    pub pixels: Raster<f32>,
    /// Data value shown black (before inversion).
    pub vmin: f64,
    /// Data value shown white (before inversion).
    pub vmax: f64,
    /// Colour for NaN pixels.
    pub nan: NanColor,
}

impl Rendered {
    /// Output width in pixels.
    pub fn width(&self) -> usize {
        self.pixels.width
    }

    /// Output height in pixels.
    pub fn height(&self) -> usize {
        self.pixels.height
    }

    fn has_nan(&self) -> bool {
        self.pixels.data.iter().any(|v| v.is_nan())
    }
}

/// Runs the whole pipeline: limits on the full-resolution `img`, optional
/// resampling to `params.output_size`, then [`normalize`].
///
/// The limits ignore the display size; a `Histeq` stretch, on the other hand,
/// equalises the distribution of the pixels actually shown (after resampling).
pub fn render(img: &Raster<f32>, params: &RenderParams) -> Result<Rendered, RenderError> {
    params.validate()?;
    let (vmin, vmax) = limits(&params.interval, &img.data)?;
    let resized;
    let source = match params.output_size {
        Some((w, h)) if (w, h) != (img.width, img.height) => {
            resized = resample(img, w, h);
            &resized
        }
        _ => img,
    };
    Ok(Rendered {
        pixels: normalize(source, vmin, vmax, params.stretch, params.invert),
        vmin,
        vmax,
        nan: params.nan,
    })
}

// ---------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------

/// File format of an encoded picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutputFormat {
    /// 8-bit PNG.
    Png8,
    /// 16-bit PNG using the full 0..=65535 range.
    Png16,
    /// Baseline JPEG with the given quality (1..=100).
    Jpeg {
        /// Encoder quality, 1 (worst) to 100 (best).
        quality: u8,
    },
}

impl OutputFormat {
    /// The HTTP content type of the encoded bytes.
    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Png8 | OutputFormat::Png16 => "image/png",
            OutputFormat::Jpeg { .. } => "image/jpeg",
        }
    }
}

/// Quantises a display value to 8 bits, rounding to nearest.
fn q8(v: f32) -> u8 {
    // For the non-negative values here, adding one half in f64 (exact for
    // any f32 below 256) and truncating is `round()`, without a libm call
    // per pixel.
    (f64::from(v.clamp(0.0, 1.0) * 255.0) + 0.5) as u8
}

/// Quantises a display value to 16 bits, rounding to nearest.
fn q16(v: f32) -> u16 {
    (f64::from(v.clamp(0.0, 1.0)) * 65535.0).round() as u16
}

/// Rows of `img` from the top of the picture down (the last image row first).
fn top_down(img: &Raster<f32>) -> impl Iterator<Item = &[f32]> {
    (0..img.height).rev().map(move |iy| img.row(iy))
}

/// Encodes a rendered picture, flipping it so that image row 0 (the bottom of
/// the sky) is the last row of the file.
///
/// The colour type depends on the NaN colour, and only when the picture
/// actually has NaN pixels (so clean pictures are always plain grey): a grey
/// level keeps grey (L8/L16), an RGB colour gives RGB8/RGB16, transparent gives
/// grey + alpha (LA8/LA16). JPEG is always 8-bit and cannot be transparent,
/// which is an error even without NaN pixels so the outcome depends only on
/// the request.
pub fn encode(rendered: &Rendered, format: OutputFormat) -> Result<Vec<u8>, RenderError> {
    if let OutputFormat::Jpeg { quality } = format {
        if !(1..=100).contains(&quality) {
            return Err(invalid(
                "quality",
                &quality.to_string(),
                "an integer from 1 to 100",
            ));
        }
        if rendered.nan == NanColor::Transparent {
            return Err(RenderError::TransparentJpeg);
        }
    }
    let (w, h) = (rendered.width(), rendered.height());
    let (Ok(w32), Ok(h32)) = (u32::try_from(w), u32::try_from(h)) else {
        return Err(RenderError::Encode {
            format: if matches!(format, OutputFormat::Jpeg { .. }) {
                "JPEG"
            } else {
                "PNG"
            },
            message: format!("{w}x{h} is too large"),
        });
    };
    let nan = if rendered.has_nan() {
        rendered.nan
    } else {
        NanColor::BLACK
    };
    let sixteen = format == OutputFormat::Png16;
    let (bytes, color) = if sixteen {
        pixels16(&rendered.pixels, nan)
    } else {
        pixels8(&rendered.pixels, nan)
    };

    let mut buf = Vec::new();
    let (name, result) = match format {
        OutputFormat::Png8 | OutputFormat::Png16 => (
            "PNG",
            PngEncoder::new(Cursor::new(&mut buf)).write_image(&bytes, w32, h32, color),
        ),
        OutputFormat::Jpeg { quality } => {
            // jpeg-encoder (SIMD) is several times faster than the `image`
            // crate's own JPEG encoder, which matters for small cutouts.
            let jpeg_color = match color {
                ExtendedColorType::L8 => jpeg_encoder::ColorType::Luma,
                ExtendedColorType::Rgb8 => jpeg_encoder::ColorType::Rgb,
                other => {
                    return Err(RenderError::Encode {
                        format: "JPEG",
                        message: format!("colour type {other:?} cannot be written as JPEG"),
                    });
                }
            };
            let (Ok(w16), Ok(h16)) = (u16::try_from(w32), u16::try_from(h32)) else {
                return Err(RenderError::Encode {
                    format: "JPEG",
                    message: format!("{w32}x{h32} is larger than JPEG allows (65535)"),
                });
            };
            let result = jpeg_encoder::Encoder::new(&mut buf, quality)
                .encode(&bytes, w16, h16, jpeg_color)
                .map_err(|e| RenderError::Encode {
                    format: "JPEG",
                    message: e.to_string(),
                });
            result?;
            return Ok(buf);
        }
    };
    result.map_err(|e| RenderError::Encode {
        format: name,
        message: e.to_string(),
    })?;
    Ok(buf)
}

/// 8-bit top-down samples and their colour type for the given NaN colour.
fn pixels8(img: &Raster<f32>, nan: NanColor) -> (Vec<u8>, ExtendedColorType) {
    let n = img.width * img.height;
    match nan {
        NanColor::Rgb(r, g, b) => {
            let mut out = Vec::with_capacity(3 * n);
            for row in top_down(img) {
                for &v in row {
                    if v.is_nan() {
                        out.extend([r, g, b]);
                    } else {
                        let q = q8(v);
                        out.extend([q, q, q]);
                    }
                }
            }
            (out, ExtendedColorType::Rgb8)
        }
        NanColor::Transparent => {
            let mut out = Vec::with_capacity(2 * n);
            for row in top_down(img) {
                for &v in row {
                    if v.is_nan() {
                        out.extend([0, 0]);
                    } else {
                        out.extend([q8(v), 255]);
                    }
                }
            }
            (out, ExtendedColorType::La8)
        }
        NanColor::Gray(_) => (gray8(img, nan), ExtendedColorType::L8),
    }
}

/// 16-bit top-down samples (native endian, as `image` expects) and their
/// colour type for the given NaN colour; 8-bit colours scale by 257 so that
/// 255 becomes 65535.
fn pixels16(img: &Raster<f32>, nan: NanColor) -> (Vec<u8>, ExtendedColorType) {
    let mut samples: Vec<u16> = Vec::with_capacity(img.width * img.height);
    let color = match nan {
        NanColor::Rgb(..) => ExtendedColorType::Rgb16,
        NanColor::Transparent => ExtendedColorType::La16,
        _ => ExtendedColorType::L16,
    };
    for row in top_down(img) {
        for &v in row {
            match (nan, v.is_nan()) {
                (NanColor::Rgb(r, g, b), true) => {
                    samples.extend([r, g, b].map(|c| u16::from(c) * 257))
                }
                (NanColor::Rgb(..), false) => samples.extend([q16(v); 3]),
                (NanColor::Transparent, true) => samples.extend([0, 0]),
                (NanColor::Transparent, false) => samples.extend([q16(v), u16::MAX]),
                (NanColor::Gray(g), true) => samples.push(u16::from(g) * 257),
                _ => samples.push(if v.is_nan() { 0 } else { q16(v) }),
            }
        }
    }
    let bytes = samples.iter().flat_map(|s| s.to_ne_bytes()).collect();
    (bytes, color)
}

/// Top-down 8-bit grey samples; NaN becomes the grey level of `nan` (see
/// [`to_gray8`]).
fn gray8(img: &Raster<f32>, nan: NanColor) -> Vec<u8> {
    let fill = match nan {
        NanColor::Gray(g) => g,
        // Rec. 601 luma, the usual grey equivalent of a colour.
        NanColor::Rgb(r, g, b) => {
            (0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b)).round() as u8
        }
        NanColor::Transparent => 0,
    };
    let mut out = Vec::with_capacity(img.width * img.height);
    for row in top_down(img) {
        out.extend(row.iter().map(|&v| if v.is_nan() { fill } else { q8(v) }));
    }
    out
}

/// The picture as 8-bit grey samples, top row first (ready for a GIF frame).
///
/// NaN pixels take the NaN colour's grey level: an RGB colour is converted to
/// its Rec. 601 luma and `Transparent` becomes 0, since a grey buffer has no
/// alpha; callers needing transparency should look at the NaN pixels of
/// [`Rendered::pixels`] themselves.
pub fn to_gray8(rendered: &Rendered) -> Vec<u8> {
    gray8(&rendered.pixels, rendered.nan)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
    }

    fn stretched(s: Stretch, xs: &[f32]) -> Vec<f32> {
        let mut v = xs.to_vec();
        s.apply(&mut v);
        v
    }

    // ----- stretches -------------------------------------------------------

    #[test]
    fn stretch_known_values() {
        assert_eq!(stretched(Stretch::Sqrt, &[0.25]), vec![0.5]);
        assert_eq!(stretched(Stretch::Linear, &[0.3]), vec![0.3]);
        // Log with a = 1000 at x = 0.5: ln(501) / ln(1001).
        let log_half = (501.0f64.ln() / 1001.0f64.ln()) as f32;
        assert_eq!(stretched(Stretch::Log, &[0.5]), vec![log_half]);
        // Asinh with a = 0.1 at x = 0.5: asinh(5) / asinh(10).
        let asinh_half = (5.0f64.asinh() / 10.0f64.asinh()) as f32;
        assert_eq!(stretched(Stretch::Asinh, &[0.5]), vec![asinh_half]);
    }

    #[test]
    fn pointwise_stretches_fix_endpoints_and_are_monotone() {
        let xs: Vec<f32> = (0..=1000).map(|i| i as f32 / 1000.0).collect();
        for s in [Stretch::Linear, Stretch::Sqrt, Stretch::Log, Stretch::Asinh] {
            let ys = stretched(s, &xs);
            assert!(ys[0].abs() < 1e-7, "{s}: f(0) = {}", ys[0]);
            assert!((ys[1000] - 1.0).abs() < 1e-6, "{s}: f(1) = {}", ys[1000]);
            assert!(ys.windows(2).all(|w| w[1] > w[0]), "{s} not increasing");
        }
    }

    #[test]
    fn stretch_clips_and_keeps_nan() {
        let ys = stretched(Stretch::Sqrt, &[-0.5, 2.0, f32::NAN]);
        assert_eq!(ys[0], 0.0);
        assert_eq!(ys[1], 1.0);
        assert!(ys[2].is_nan());
    }

    #[test]
    fn histeq_on_ramp_is_identity() {
        let xs: Vec<f32> = (0..101).map(|i| i as f32 / 100.0).collect();
        let ys = stretched(Stretch::Histeq, &xs);
        for (x, y) in xs.iter().zip(&ys) {
            assert!((x - y).abs() < 1e-6, "{x} -> {y}");
        }
    }

    #[test]
    fn histeq_flattens_a_skewed_distribution() {
        // Values crowded near 0 get spread: the median goes to 0.5.
        let xs: Vec<f32> = (0..101).map(|i| (i as f32 / 100.0).powi(4)).collect();
        let ys = stretched(Stretch::Histeq, &xs);
        assert!((ys[50] - 0.5).abs() < 1e-6, "median -> {}", ys[50]);
        // Between two data values it interpolates linearly.
        let mut probe = xs.clone();
        probe.push((xs[10] + xs[11]) / 2.0);
        let ys = stretched(Stretch::Histeq, &probe);
        // With the probe included (n = 102) it sits at sorted position 11,
        // halfway between positions 10 and 12, so it maps to 11 / 101.
        assert!(
            (ys[101] - 11.0 / 101.0).abs() < 1e-6,
            "probe -> {}",
            ys[101]
        );
    }

    #[test]
    fn stretch_parse_and_names() {
        for s in Stretch::ALL {
            assert_eq!(Stretch::parse(s.name()).unwrap(), s);
            assert_eq!(Stretch::parse(&s.name().to_uppercase()).unwrap(), s);
        }
        assert_eq!(Stretch::parse(" AsInh ").unwrap(), Stretch::Asinh);
        let msg = Stretch::parse("foo").unwrap_err().to_string();
        assert!(msg.contains("stretch") && msg.contains("foo"), "{msg}");
        for s in Stretch::ALL {
            assert!(msg.contains(s.name()), "{msg} lacks {}", s.name());
        }
    }

    // ----- intervals -------------------------------------------------------

    #[test]
    fn percentile_matches_numpy_linear_interpolation() {
        // Squares 0..81 shuffled, with non-finite pixels that must be ignored.
        let data = [
            49.0,
            f32::NAN,
            0.0,
            81.0,
            4.0,
            f32::INFINITY,
            36.0,
            1.0,
            64.0,
            9.0,
            f32::NEG_INFINITY,
            25.0,
            16.0,
        ];
        // n = 10 finite values; numpy's linear method uses index (n-1)*q.
        // p = 90 keeps 5..95 %: index 0.45 -> 0 + 0.45*(1-0) ; index 8.55 -> 64 + 0.55*(81-64).
        let (lo, hi) = limits(&Interval::Percentile(90.0), &data).unwrap();
        assert!(close(lo, 0.45, 1e-12), "{lo}");
        assert!(close(hi, 73.35, 1e-12), "{hi}");
        // p = 99.5: index 0.0225 -> 0.0225 ; index 8.9775 -> 64 + 0.9775*17.
        let (lo, hi) = limits(&Interval::Percentile(99.5), &data).unwrap();
        assert!(close(lo, 0.0225, 1e-12), "{lo}");
        assert!(close(hi, 80.6175, 1e-12), "{hi}");
        // p = 100 is min/max.
        assert_eq!(
            limits(&Interval::Percentile(100.0), &data).unwrap(),
            (0.0, 81.0)
        );
    }

    #[test]
    fn minmax_manual_and_degenerate_inputs() {
        let data = [3.0, f32::NAN, -2.0, f32::INFINITY, 7.5];
        assert_eq!(limits(&Interval::MinMax, &data).unwrap(), (-2.0, 7.5));
        let manual = Interval::Manual { min: 1.0, max: 2.0 };
        assert_eq!(limits(&manual, &data).unwrap(), (1.0, 2.0));
        let nothing = [f32::NAN, f32::INFINITY, f32::NAN];
        for iv in [
            Interval::MinMax,
            Interval::Percentile(99.5),
            Interval::ZScale,
        ] {
            assert_eq!(limits(&iv, &nothing).unwrap(), (0.0, 0.0), "{iv:?}");
            assert_eq!(limits(&iv, &[]).unwrap(), (0.0, 0.0), "{iv:?}");
            assert_eq!(limits(&iv, &[4.0]).unwrap(), (4.0, 4.0), "{iv:?}");
        }
        assert!(limits(&Interval::Percentile(0.0), &data).is_err());
        assert!(limits(&Interval::Manual { min: 2.0, max: 2.0 }, &data).is_err());
    }

    /// The same 64-bit LCG as tests/data/render/zscale_reference.py.
    struct Lcg(u64);

    impl Lcg {
        fn uniform(&mut self) -> f64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        fn gauss(&mut self) -> f64 {
            let mut s = 0.0;
            for _ in 0..12 {
                s += self.uniform();
            }
            s - 6.0
        }
    }

    fn zscale_case(name: &str) -> Vec<f32> {
        match name {
            "ramp" => (0..2000).map(|i| (0.5 * i as f64) as f32).collect(),
            "ramp_outliers" => {
                let mut v: Vec<f64> = (0..900).map(|i| 0.1 * i as f64).collect();
                for (i, x) in v.iter_mut().enumerate() {
                    if i % 37 == 0 {
                        *x = 1.0e4;
                    } else if i % 53 == 0 {
                        *x = -500.0;
                    }
                }
                v[10] = f64::NAN;
                v[11] = f64::INFINITY;
                v.into_iter().map(|x| x as f32).collect()
            }
            "gauss" => {
                let mut rng = Lcg(42);
                (0..4096)
                    .map(|i| {
                        let mut x = 100.0 + 10.0 * rng.gauss();
                        if i % 97 == 0 {
                            x += 5000.0;
                        }
                        x as f32
                    })
                    .collect()
            }
            "gauss_big" => {
                let mut rng = Lcg(7);
                (0..30000)
                    .map(|i| {
                        let x = 1000.0 + 3.0 * rng.gauss();
                        if i % 101 == 0 { f32::NAN } else { x as f32 }
                    })
                    .collect()
            }
            "flat" => vec![5.0; 100],
            "tiny" => vec![3.0, 1.0, 2.0],
            _ => unreachable!(),
        }
    }

    #[test]
    fn zscale_matches_astropy() {
        // From astropy 8.0.2 ZScaleInterval() (numpy 2.4.6), printed by
        // tests/data/render/zscale_reference.py on the same LCG-generated arrays.
        let reference = [
            ("ramp", 0.0, 999.0),
            ("ramp_outliers", -141.85272277480095, 234.21045763826342),
            ("gauss", 71.97743225097656, 159.20392192603651),
            ("gauss_big", 991.0127563476562, 1009.7586669921875),
            ("flat", 5.000000000000002, 4.999999999999998),
            ("tiny", 1.0, 3.0),
        ];
        for (name, lo, hi) in reference {
            let (vmin, vmax) = limits(&Interval::ZScale, &zscale_case(name)).unwrap();
            assert!(
                close(vmin, lo, 1e-6) && close(vmax, hi, 1e-6),
                "{name}: got ({vmin}, {vmax}), astropy ({lo}, {hi})"
            );
        }
    }

    #[test]
    fn percentile_matches_astropy_on_gauss() {
        // astropy 8.0.2 PercentileInterval(99.5), from tests/data/render/zscale_reference.py;
        // numpy rounds float32 percentiles to float32, hence the tolerance.
        let (lo, hi) = limits(&Interval::Percentile(99.5), &zscale_case("gauss")).unwrap();
        assert!(close(lo, 72.18365020751953, 1e-6), "{lo}");
        assert!(close(hi, 5107.149298095704, 1e-6), "{hi}");
    }

    #[test]
    fn dilation_matches_numpy_same_convolution() {
        // np.convolve(a, ones(k), mode="same") != 0 for a = [1,0,0,0,1,0,0,0,0,1].
        let a = [
            true, false, false, false, true, false, false, false, false, true,
        ];
        let b = |s: &str| s.chars().map(|c| c == '1').collect::<Vec<_>>();
        assert_eq!(dilate(&a, 1), a.to_vec());
        assert_eq!(dilate(&a, 2), b("1100110001"));
        assert_eq!(dilate(&a, 3), b("1101110011"));
        assert_eq!(dilate(&a, 4), b("1111111011"));
    }

    #[test]
    fn interval_parse() {
        assert_eq!(
            Interval::parse("MinMax", None, None).unwrap(),
            Interval::MinMax
        );
        assert_eq!(
            Interval::parse("zscale", None, None).unwrap(),
            Interval::ZScale
        );
        assert_eq!(
            Interval::parse("percentile", None, None).unwrap(),
            Interval::Percentile(99.5)
        );
        assert_eq!(
            Interval::parse("percentile:99", None, None).unwrap(),
            Interval::Percentile(99.0)
        );
        assert_eq!(
            Interval::parse("manual", Some(1.0), Some(3.0)).unwrap(),
            Interval::Manual { min: 1.0, max: 3.0 }
        );
        let msg = Interval::parse("median", None, None)
            .unwrap_err()
            .to_string();
        for n in ["minmax", "percentile", "zscale", "manual"] {
            assert!(msg.contains(n), "{msg}");
        }
        assert!(Interval::parse("percentile:abc", None, None).is_err());
        assert!(Interval::parse("percentile:150", None, None).is_err());
        assert!(Interval::parse("manual", Some(1.0), None).is_err());
        assert!(Interval::parse("manual", Some(3.0), Some(1.0)).is_err());
        assert!(Interval::parse("zscale", Some(1.0), None).is_err());
    }

    #[test]
    fn nan_color_parse() {
        assert_eq!(NanColor::parse("black").unwrap(), NanColor::Gray(0));
        assert_eq!(NanColor::parse("White").unwrap(), NanColor::Gray(255));
        assert_eq!(NanColor::parse("red").unwrap(), NanColor::Rgb(255, 0, 0));
        assert_eq!(
            NanColor::parse("#1A2b3c").unwrap(),
            NanColor::Rgb(0x1a, 0x2b, 0x3c)
        );
        assert_eq!(NanColor::parse("#404040").unwrap(), NanColor::Gray(0x40));
        assert_eq!(
            NanColor::parse("transparent").unwrap(),
            NanColor::Transparent
        );
        assert_eq!(NanColor::default(), NanColor::Gray(0));
        for bad in ["#12345", "#gg0000", "purple", "#12345é"] {
            let msg = NanColor::parse(bad).unwrap_err().to_string();
            assert!(
                msg.contains("#rrggbb") && msg.contains("transparent"),
                "{msg}"
            );
        }
    }

    #[test]
    fn default_params() {
        let p = RenderParams::default();
        assert_eq!(p.stretch, Stretch::Linear);
        assert_eq!(p.interval, Interval::Percentile(99.5));
        assert!(!p.invert);
        assert_eq!(p.nan, NanColor::Gray(0));
        assert_eq!(p.output_size, None);
    }

    // ----- resampling ------------------------------------------------------

    #[test]
    fn shrink_by_two_averages_blocks() {
        let img = Raster::from_vec(4, 4, (0..16).map(|v| v as f32).collect());
        let out = resample(&img, 2, 2);
        // Block means: (0+1+4+5)/4, (2+3+6+7)/4, ...
        assert_eq!(out.data, vec![2.5, 4.5, 10.5, 12.5]);
    }

    #[test]
    fn shrink_excludes_nan() {
        let mut img = Raster::from_vec(4, 4, (0..16).map(|v| v as f32).collect());
        img.set(0, 0, f32::NAN);
        for (x, y) in [(2, 0), (3, 0), (2, 1), (3, 1)] {
            img.set(x, y, f32::NAN);
        }
        let out = resample(&img, 2, 2);
        assert_eq!(out.get(0, 0), (1.0 + 4.0 + 5.0) / 3.0);
        assert!(out.get(1, 0).is_nan());
        assert_eq!(out.get(0, 1), 10.5);
    }

    #[test]
    fn non_integer_factor_weights() {
        // 5 -> 2: output 0 covers [0, 2.5), output 1 covers [2.5, 5).
        let ramp = Raster::from_vec(5, 1, vec![0.0, 1.0, 2.0, 3.0, 4.0]);
        let out = resample(&ramp, 2, 1);
        assert!((out.data[0] - 0.8).abs() < 1e-6, "{:?}", out.data);
        assert!((out.data[1] - 3.2).abs() < 1e-6, "{:?}", out.data);
        // Total flux: each output pixel has an area of 2.5 input pixels.
        let flux: f32 = out.data.iter().map(|v| v * 2.5).sum();
        assert!((flux - 10.0).abs() < 1e-5);

        // 2-D 5x5 -> 2x3 on a constant keeps the constant exactly.
        let c = Raster::filled(5, 5, 7.25f32);
        let out = resample(&c, 2, 3);
        assert!(out.data.iter().all(|&v| (v - 7.25).abs() < 1e-6), "{out:?}");

        // 2-D ramp: total flux preserved.
        let img = Raster::from_vec(7, 5, (0..35).map(|v| v as f32 * 0.3).collect());
        let out = resample(&img, 3, 2);
        let area = (7.0 / 3.0) * (5.0 / 2.0);
        let flux_in: f64 = img.data.iter().map(|&v| f64::from(v)).sum();
        let flux_out: f64 = out.data.iter().map(|&v| f64::from(v) * area).sum();
        assert!(close(flux_in, flux_out, 1e-6), "{flux_in} vs {flux_out}");
    }

    #[test]
    fn enlarge_is_nearest() {
        let img = Raster::from_vec(2, 2, vec![1.0, 2.0, 3.0, f32::NAN]);
        let out = resample(&img, 4, 4);
        let expect = [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0];
        assert_eq!(&out.data[..10], &expect);
        assert!(out.data[10].is_nan() && out.data[15].is_nan());
        // Mixed: shrink x, enlarge y.
        let img = Raster::from_vec(4, 1, vec![1.0, 3.0, 5.0, 7.0]);
        let out = resample(&img, 2, 3);
        assert_eq!(out.data, vec![2.0, 6.0, 2.0, 6.0, 2.0, 6.0]);
    }

    #[test]
    fn resample_degenerate_sizes() {
        let img = Raster::filled(3, 3, 1.0f32);
        assert_eq!(resample(&img, 0, 5).data.len(), 0);
        assert_eq!(resample(&img, 3, 3), img);
        let empty: Raster<f32> = Raster::from_vec(0, 0, vec![]);
        assert!(resample(&empty, 2, 2).data.iter().all(|v| v.is_nan()));
    }

    // ----- normalisation and pipeline -------------------------------------

    #[test]
    fn normalize_clips_inverts_and_keeps_nan() {
        let img = Raster::from_vec(5, 1, vec![0.0, 5.0, 10.0, 20.0, f32::NAN]);
        let out = normalize(&img, 0.0, 10.0, Stretch::Linear, false);
        assert_eq!(&out.data[..4], &[0.0, 0.5, 1.0, 1.0]);
        assert!(out.data[4].is_nan());
        let inv = normalize(&img, 0.0, 10.0, Stretch::Sqrt, true);
        assert_eq!(&inv.data[..3], &[1.0, 1.0 - 0.5f32.sqrt(), 0.0]);
        // Degenerate limits: everything black.
        let flat = normalize(&img, 3.0, 3.0, Stretch::Linear, false);
        assert_eq!(&flat.data[..4], &[0.0; 4]);
    }

    #[test]
    fn limits_come_from_full_resolution() {
        // A single bright pixel is averaged away by shrinking, but minmax still
        // sees it because limits are computed first.
        let mut img = Raster::filled(8, 8, 1.0f32);
        img.set(3, 3, 100.0);
        let params = RenderParams {
            interval: Interval::MinMax,
            output_size: Some((2, 2)),
            ..RenderParams::default()
        };
        let r = render(&img, &params).unwrap();
        assert_eq!((r.vmin, r.vmax), (1.0, 100.0));
        assert_eq!((r.width(), r.height()), (2, 2));
        let bad = RenderParams {
            output_size: Some((0, 2)),
            ..params
        };
        assert!(render(&img, &bad).is_err());
    }

    // ----- encoding --------------------------------------------------------

    fn rendered(img: Raster<f32>, nan: NanColor) -> Rendered {
        Rendered {
            pixels: img,
            vmin: 0.0,
            vmax: 1.0,
            nan,
        }
    }

    #[test]
    fn orientation_bottom_row_last() {
        // Pixel (0, 0) bright, everything else dark: it must be the first
        // pixel of the LAST row of the file.
        let mut img = Raster::filled(3, 2, 0.0f32);
        img.set(0, 0, 1.0);
        let r = rendered(img, NanColor::BLACK);
        for format in [OutputFormat::Png8, OutputFormat::Png16] {
            let bytes = encode(&r, format).unwrap();
            let dec = image::load_from_memory(&bytes).unwrap().to_luma16();
            assert_eq!(dec.get_pixel(0, 1).0[0], 65535, "{format:?}");
            assert_eq!(dec.get_pixel(0, 0).0[0], 0, "{format:?}");
        }
        assert_eq!(to_gray8(&r), vec![0, 0, 0, 255, 0, 0]);
    }

    #[test]
    fn quantisation_and_colour_types() {
        let img = Raster::from_vec(4, 1, vec![0.0, 0.5, 1.0, f32::NAN]);
        let decode = |r: &Rendered, f| image::load_from_memory(&encode(r, f).unwrap()).unwrap();

        let gray = decode(
            &rendered(img.clone(), NanColor::Gray(7)),
            OutputFormat::Png8,
        );
        assert_eq!(gray.color(), image::ColorType::L8);
        assert_eq!(gray.as_bytes(), &[0, 128, 255, 7]);

        let g16 = decode(
            &rendered(img.clone(), NanColor::Gray(255)),
            OutputFormat::Png16,
        );
        assert_eq!(g16.color(), image::ColorType::L16);
        assert_eq!(g16.to_luma16().into_raw(), vec![0, 32768, 65535, 65535]);

        let rgb = decode(
            &rendered(img.clone(), NanColor::Rgb(255, 0, 0)),
            OutputFormat::Png8,
        );
        assert_eq!(rgb.color(), image::ColorType::Rgb8);
        assert_eq!(
            rgb.as_bytes(),
            &[0, 0, 0, 128, 128, 128, 255, 255, 255, 255, 0, 0]
        );

        let la = decode(
            &rendered(img.clone(), NanColor::Transparent),
            OutputFormat::Png16,
        );
        assert_eq!(la.color(), image::ColorType::La16);
        let la = la.to_luma_alpha16().into_raw();
        assert_eq!(la, vec![0, 65535, 32768, 65535, 65535, 65535, 0, 0]);

        // Without NaN pixels the output stays plain grey.
        let clean = Raster::from_vec(2, 1, vec![0.0, 1.0]);
        let plain = decode(
            &rendered(clean, NanColor::Rgb(255, 0, 0)),
            OutputFormat::Png8,
        );
        assert_eq!(plain.color(), image::ColorType::L8);
    }

    #[test]
    fn jpeg_errors() {
        let r = rendered(Raster::filled(2, 2, 0.5f32), NanColor::BLACK);
        for q in [0u8, 101] {
            let msg = encode(&r, OutputFormat::Jpeg { quality: q })
                .unwrap_err()
                .to_string();
            assert!(msg.contains("quality") && msg.contains("1 to 100"), "{msg}");
        }
        let t = rendered(Raster::filled(2, 2, 0.5f32), NanColor::Transparent);
        let msg = encode(&t, OutputFormat::Jpeg { quality: 90 })
            .unwrap_err()
            .to_string();
        assert!(msg.contains("transparent") && msg.contains("PNG"), "{msg}");
        assert!(encode(&t, OutputFormat::Png8).is_ok());
        let bytes = encode(&r, OutputFormat::Jpeg { quality: 90 }).unwrap();
        assert_eq!(&bytes[..2], &[0xff, 0xd8]);
    }

    // ----- golden files ----------------------------------------------------

    /// The committed tiny input: 16x12 with a gradient, a blob, a few NaN
    /// pixels and a bright marker at (0, 0), the bottom-left corner.
    fn golden_input() -> Raster<f32> {
        let mut img = Raster::filled(16, 12, 0.0f32);
        for y in 0..12 {
            for x in 0..16 {
                let (dx, dy) = (x as f64 - 10.0, y as f64 - 7.0);
                let v = 10.0
                    + 2.0 * x as f64
                    + 0.5 * y as f64
                    + 200.0 * (-(dx * dx + dy * dy) / 4.0).exp();
                img.set(x, y, v as f32);
            }
        }
        img.set(0, 0, 1000.0);
        for (x, y) in [(5, 3), (6, 3), (12, 10)] {
            img.set(x, y, f32::NAN);
        }
        img
    }

    fn golden_cases() -> Vec<(&'static str, RenderParams, OutputFormat)> {
        let base = RenderParams::default();
        vec![
            (
                "linear_minmax.png",
                RenderParams {
                    interval: Interval::MinMax,
                    ..base
                },
                OutputFormat::Png8,
            ),
            (
                "asinh_zscale_16.png",
                RenderParams {
                    stretch: Stretch::Asinh,
                    interval: Interval::ZScale,
                    nan: NanColor::Gray(255),
                    ..base
                },
                OutputFormat::Png16,
            ),
            (
                "sqrt_percentile_q90.jpg",
                RenderParams {
                    stretch: Stretch::Sqrt,
                    ..base
                },
                OutputFormat::Jpeg { quality: 90 },
            ),
            (
                "invert_red_nan_x4.png",
                RenderParams {
                    stretch: Stretch::Log,
                    interval: Interval::Percentile(99.0),
                    invert: true,
                    nan: NanColor::Rgb(255, 0, 0),
                    output_size: Some((64, 48)),
                },
                OutputFormat::Png8,
            ),
        ]
    }

    #[test]
    fn golden_outputs() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/render");
        let bless = std::env::var("WISECUT_BLESS").is_ok_and(|v| v == "1");
        let input = golden_input();
        for (name, params, format) in golden_cases() {
            let bytes = encode(&render(&input, &params).unwrap(), format).unwrap();
            let path = dir.join(name);
            if bless {
                std::fs::create_dir_all(&dir).unwrap();
                std::fs::write(&path, &bytes).unwrap();
                continue;
            }
            let golden = std::fs::read(&path).unwrap_or_else(|e| {
                panic!(
                    "{}: {e}; run with WISECUT_BLESS=1 to create",
                    path.display()
                )
            });
            let got = image::load_from_memory(&bytes).unwrap();
            let want = image::load_from_memory(&golden).unwrap();
            assert_eq!(got.color(), want.color(), "{name}: colour type");
            assert_eq!(got.width(), want.width(), "{name}: width");
            assert_eq!(got.height(), want.height(), "{name}: height");
            if matches!(format, OutputFormat::Jpeg { .. }) {
                for (a, b) in got.as_bytes().iter().zip(want.as_bytes()) {
                    assert!(a.abs_diff(*b) <= 2, "{name}: {a} vs {b}");
                }
            } else {
                assert!(got.as_bytes() == want.as_bytes(), "{name}: pixels differ");
            }
        }
    }

    #[test]
    fn golden_marker_is_bottom_left() {
        // Independent of the golden files: the bright (0, 0) marker is white in
        // the bottom-left corner of the minmax rendering and nowhere else.
        let r = render(
            &golden_input(),
            &RenderParams {
                interval: Interval::MinMax,
                ..RenderParams::default()
            },
        )
        .unwrap();
        let g = to_gray8(&r);
        assert_eq!(g[11 * 16], 255);
        assert_eq!(g.iter().filter(|&&v| v == 255).count(), 1);
    }

    // ----- properties ------------------------------------------------------

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn limits_never_panic(data in proptest::collection::vec(
            prop_oneof![any::<f32>(), Just(f32::NAN), -1e3f32..1e3], 0..300)) {
            for iv in [Interval::MinMax, Interval::Percentile(99.5), Interval::ZScale] {
                let (lo, hi) = limits(&iv, &data).unwrap();
                prop_assert!(lo.is_finite() && hi.is_finite());
                if iv != Interval::ZScale {
                    prop_assert!(lo <= hi);
                }
            }
        }

        #[test]
        fn normalized_values_in_unit_range(
            data in proptest::collection::vec(prop_oneof![-1e6f32..1e6, Just(f32::NAN)], 1..200),
            si in 0usize..5, invert in any::<bool>()) {
            let img = Raster::from_vec(data.len(), 1, data.clone());
            let (lo, hi) = limits(&Interval::ZScale, &data).unwrap();
            let out = normalize(&img, lo, hi, Stretch::ALL[si], invert);
            for (o, i) in out.data.iter().zip(&data) {
                prop_assert_eq!(o.is_nan(), i.is_nan());
                prop_assert!(o.is_nan() || (0.0..=1.0).contains(o));
            }
        }

        #[test]
        fn resample_keeps_constants(w in 1usize..20, h in 1usize..20,
                                    ow in 1usize..25, oh in 1usize..25, c in -1e4f32..1e4) {
            let out = resample(&Raster::filled(w, h, c), ow, oh);
            prop_assert_eq!(out.data.len(), ow * oh);
            for v in out.data {
                prop_assert!((v - c).abs() <= 1e-3 * c.abs().max(1.0));
            }
        }
    }
}
