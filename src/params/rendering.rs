//! How a cutout is drawn as a picture: `stretch`, `interval`, `min`/`max`,
//! `invert`, `nan` and `output_size`, the parameters of every endpoint that
//! renders (the cutout API, the image view, thumbnails, dependency
//! cutouts). The names of stretches, intervals and colours belong to
//! [`crate::imaging::render`]; this module reads them from requests.

use super::{ParamError, flag, number};
use crate::imaging::render::{Interval, NanColor, RenderError, RenderParams, Stretch};

/// Largest side of a rendered image.
pub const MAX_OUTPUT_PX: usize = 8192;

/// The textual rendering parameters of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderingParams<'a> {
    /// `stretch`: linear, sqrt, log, asinh, histeq.
    pub stretch: Option<&'a str>,
    /// `interval`: percentile[:P], minmax, zscale, manual.
    pub interval: Option<&'a str>,
    /// `min`: manual lower limit.
    pub min: Option<&'a str>,
    /// `max`: manual upper limit.
    pub max: Option<&'a str>,
    /// `invert`: a flag, true when given bare.
    pub invert: Option<&'a str>,
    /// `nan`: colour of undefined pixels.
    pub nan: Option<&'a str>,
    /// `output_size`: N (longest side) or WxH.
    pub output_size: Option<&'a str>,
}

/// A rendering error as a parameter error: the parameter the renderer
/// names, and what it accepts.
impl From<RenderError> for ParamError {
    fn from(e: RenderError) -> Self {
        match e {
            RenderError::InvalidParameter {
                name,
                value,
                allowed,
            } => ParamError::invalid(name, &value, &format!("expected {allowed}")),
            RenderError::MissingParameter { name, reason } => {
                ParamError::new(name, format!("missing: {reason}"))
            }
            RenderError::TransparentJpeg => ParamError::new(
                "nan",
                "transparent needs format=png (JPEG has no alpha channel)",
            ),
            other => ParamError::new("format", other.to_string()),
        }
    }
}

impl RenderingParams<'_> {
    /// Validates the parameters. `min`/`max` without `interval` mean
    /// `interval=manual`.
    pub fn parse(&self) -> Result<Rendering, ParamError> {
        let mut params = RenderParams::default();
        if let Some(s) = self.stretch {
            params.stretch = Stretch::parse(s)?;
        }
        let min = self.min.map(|v| number("min", v)).transpose()?;
        let max = self.max.map(|v| number("max", v)).transpose()?;
        params.interval = match self.interval {
            Some(i) => Interval::parse(i, min, max)?,
            None if min.is_some() || max.is_some() => Interval::parse("manual", min, max)?,
            None => params.interval,
        };
        params.invert = flag::present_flag("invert", self.invert)?;
        if let Some(n) = self.nan {
            params.nan = NanColor::parse(n)?;
        }
        let output_size = self.output_size.map(OutputSize::parse).transpose()?;
        Ok(Rendering {
            params,
            output_size,
        })
    }
}

/// Requested size of a rendered image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputSize {
    /// The longer side becomes N pixels, keeping the aspect ratio.
    Longest(usize),
    /// Exactly W × H pixels.
    Exact(usize, usize),
}

impl OutputSize {
    /// Parses `N` or `WxH`, sides from 1 to [`MAX_OUTPUT_PX`].
    pub fn parse(text: &str) -> Result<Self, ParamError> {
        let side = |t: &str| {
            t.trim()
                .parse::<usize>()
                .ok()
                .filter(|&n| (1..=MAX_OUTPUT_PX).contains(&n))
        };
        let size = match text.split_once(['x', 'X']) {
            Some((w, h)) => side(w).zip(side(h)).map(|(w, h)| Self::Exact(w, h)),
            None => side(text).map(Self::Longest),
        };
        size.ok_or_else(|| {
            ParamError::invalid(
                "output_size",
                text,
                &format!(
                    "expected N (longest side) or WxH, with sides from 1 to {MAX_OUTPUT_PX} px"
                ),
            )
        })
    }

    /// The output size for an image of `w` × `h` pixels.
    pub fn resolve(self, w: usize, h: usize) -> (usize, usize) {
        match self {
            Self::Exact(a, b) => (a, b),
            Self::Longest(n) => {
                let (w, h) = (w.max(1) as f64, h.max(1) as f64);
                let scale = n as f64 / w.max(h);
                (
                    ((w * scale).round() as usize).max(1),
                    ((h * scale).round() as usize).max(1),
                )
            }
        }
    }
}

/// Rendering parameters and an output size still to be fitted to the image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rendering {
    /// Stretch, interval, inversion, NaN colour.
    pub params: RenderParams,
    /// Requested output size.
    pub output_size: Option<OutputSize>,
}

impl Rendering {
    /// The parameters for an image of `w` × `h` pixels.
    pub fn for_size(&self, w: usize, h: usize) -> RenderParams {
        RenderParams {
            output_size: self.output_size.map(|o| o.resolve(w, h)),
            ..self.params
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_limits_imply_manual() {
        let r = RenderingParams {
            min: Some("1"),
            max: Some("5"),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert_eq!(r.params.interval, Interval::Manual { min: 1.0, max: 5.0 });
        assert!(!r.params.invert);
        let r = RenderingParams {
            invert: Some(""),
            output_size: Some("100x50"),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert!(r.params.invert);
        assert_eq!(r.for_size(400, 400).output_size, Some((100, 50)));
        assert_eq!(OutputSize::Longest(100).resolve(400, 200), (100, 50));
    }

    #[test]
    fn errors_name_the_parameter() {
        let e = |p: RenderingParams| p.parse().unwrap_err().param;
        assert_eq!(
            e(RenderingParams {
                stretch: Some("cubic"),
                ..Default::default()
            }),
            "stretch"
        );
        assert_eq!(
            e(RenderingParams {
                interval: Some("nope"),
                ..Default::default()
            }),
            "interval"
        );
        assert_eq!(
            e(RenderingParams {
                min: Some("nan"),
                ..Default::default()
            }),
            "min"
        );
        assert_eq!(
            e(RenderingParams {
                invert: Some("maybe"),
                ..Default::default()
            }),
            "invert"
        );
        assert_eq!(
            e(RenderingParams {
                nan: Some("#zz"),
                ..Default::default()
            }),
            "nan"
        );
        assert_eq!(
            e(RenderingParams {
                output_size: Some("0"),
                ..Default::default()
            }),
            "output_size"
        );
        assert_eq!(
            e(RenderingParams {
                output_size: Some("9000"),
                ..Default::default()
            }),
            "output_size"
        );
    }
}
