//! A cutout as users describe it: a centre (`ra`+`dec` or `x`+`y`), a size
//! (`size`, or `width`+`height`, in `unit`), whether to keep raw
//! asinh-compressed values, and an output format. The HTTP API, the image
//! view's render URLs, the command line and the batch jobs all describe
//! cutouts this way, so this is the one place that validates it.

use super::{ParamError, angle, number};
use crate::imaging::cutout::{Center, CutoutSpec, Size, SizeUnit};
use crate::imaging::render::OutputFormat;

/// Side of a cutout when the request gives no size, in pixels.
pub const DEFAULT_SIZE_PX: f64 = 128.0;

/// JPEG quality when the request gives none.
pub const DEFAULT_JPEG_QUALITY: u8 = 90;

/// The textual position and size parameters of a cutout request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SpecParams<'a> {
    /// `ra`: degrees or sexagesimal hours.
    pub ra: Option<&'a str>,
    /// `dec`: degrees or sexagesimal degrees.
    pub dec: Option<&'a str>,
    /// `x`: FITS 1-based column.
    pub x: Option<&'a str>,
    /// `y`: FITS 1-based row.
    pub y: Option<&'a str>,
    /// `size`: square side.
    pub size: Option<&'a str>,
    /// `width`.
    pub width: Option<&'a str>,
    /// `height`.
    pub height: Option<&'a str>,
    /// `unit`: px, arcsec, arcmin, deg.
    pub unit: Option<&'a str>,
    /// Keep asinh-compressed values.
    pub raw: bool,
}

/// A unit name, or an error listing the units.
pub fn size_unit(param: &'static str, text: &str) -> Result<SizeUnit, ParamError> {
    SizeUnit::parse(text).ok_or_else(|| {
        ParamError::invalid(
            param,
            text,
            &format!(
                "expected one of {}",
                SizeUnit::ALL.map(SizeUnit::name).join(", ")
            ),
        )
    })
}

impl SpecParams<'_> {
    /// Validates the parameters into a [`CutoutSpec`]. A position is either
    /// `ra` + `dec` or `x` + `y`; a size is `size` or `width` + `height` (one
    /// of them alone is taken as square), [`DEFAULT_SIZE_PX`] pixels when
    /// absent. A pixel side over `max_side` is refused, never clamped.
    pub fn parse(&self, max_side: usize) -> Result<CutoutSpec, ParamError> {
        let center = match (self.ra, self.dec, self.x, self.y) {
            (Some(ra), Some(dec), None, None) => Center::Sky {
                ra: angle::ra("ra", ra)?,
                dec: angle::dec("dec", dec)?,
            },
            (None, None, Some(x), Some(y)) => Center::Pixel {
                x: number("x", x)?,
                y: number("y", y)?,
            },
            (Some(_), None, None, None) => {
                return Err(ParamError::new("dec", "missing: ra needs dec"));
            }
            (None, Some(_), None, None) => {
                return Err(ParamError::new("ra", "missing: dec needs ra"));
            }
            (None, None, Some(_), None) => return Err(ParamError::new("y", "missing: x needs y")),
            (None, None, None, Some(_)) => return Err(ParamError::new("x", "missing: y needs x")),
            (None, None, None, None) => {
                return Err(ParamError::new(
                    "ra",
                    "missing: give the centre as ra and dec (degrees or sexagesimal) or as x and y (FITS pixels)",
                ));
            }
            _ => {
                return Err(ParamError::new(
                    "x",
                    "give the centre either as ra and dec or as x and y, not both",
                ));
            }
        };
        let unit = match self.unit {
            None => SizeUnit::Pixel,
            Some(u) => size_unit("unit", u)?,
        };
        let size = self.size.map(|v| number("size", v)).transpose()?;
        let width = self.width.map(|v| number("width", v)).transpose()?;
        let height = self.height.map(|v| number("height", v)).transpose()?;
        let (width, height) = match (size, width, height) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                return Err(ParamError::new(
                    "size",
                    "give either size or width/height, not both",
                ));
            }
            (Some(s), None, None) => (s, s),
            (None, Some(w), Some(h)) => (w, h),
            (None, Some(w), None) => (w, w),
            (None, None, Some(h)) => (h, h),
            (None, None, None) => {
                if unit != SizeUnit::Pixel {
                    return Err(ParamError::new(
                        "size",
                        "missing: a unit was given but no size",
                    ));
                }
                (DEFAULT_SIZE_PX, DEFAULT_SIZE_PX)
            }
        };
        for (param, v) in [("width", width), ("height", height)] {
            let param = if size.is_some() { "size" } else { param };
            if v <= 0.0 {
                return Err(ParamError::new(
                    param,
                    format!("{v} is not a positive size"),
                ));
            }
            if unit == SizeUnit::Pixel && v.round_ties_even() > max_side as f64 {
                return Err(ParamError::new(
                    param,
                    format!("{v} px is over the limit of {max_side} px per side"),
                ));
            }
        }
        Ok(CutoutSpec {
            center,
            size: Size {
                width,
                height,
                unit,
            },
            raw_values: self.raw,
            max_side,
        })
    }
}

/// What a cutout is delivered as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutoutFormat {
    /// FITS with the parent's BITPIX and the shifted WCS.
    Fits,
    /// A rendered image.
    Image(OutputFormat),
}

impl CutoutFormat {
    /// The names `format` accepts, as the errors list them.
    pub const NAMES: &'static [&'static str] = &["fits", "png", "png16", "jpg"];

    /// Parses `format` (default FITS) and `quality` (JPEG only, 1–100).
    pub fn parse(format: Option<&str>, quality: Option<&str>) -> Result<Self, ParamError> {
        let q = match quality {
            None => None,
            Some(q) => Some(
                q.trim()
                    .parse::<u8>()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| {
                        ParamError::invalid("quality", q, "expected an integer from 1 to 100")
                    })?,
            ),
        };
        let f = match format.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
            None | Some("fits") | Some("fit") => Self::Fits,
            Some("png") => Self::Image(OutputFormat::Png8),
            Some("png16") => Self::Image(OutputFormat::Png16),
            Some("jpg") | Some("jpeg") => Self::Image(OutputFormat::Jpeg {
                quality: q.unwrap_or(DEFAULT_JPEG_QUALITY),
            }),
            Some(other) => {
                return Err(ParamError::invalid(
                    "format",
                    other,
                    &format!("expected one of {}", Self::NAMES.join(", ")),
                ));
            }
        };
        if q.is_some() && !matches!(f, Self::Image(OutputFormat::Jpeg { .. })) {
            return Err(ParamError::new("quality", "only applies to format=jpg"));
        }
        Ok(f)
    }

    /// File-name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Fits => "fits",
            Self::Image(OutputFormat::Jpeg { .. }) => "jpg",
            Self::Image(_) => "png",
        }
    }

    /// Media type.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Fits => "application/fits",
            Self::Image(f) => f.mime_type(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_and_sizes() {
        let s = SpecParams {
            ra: Some("10:00:00"),
            dec: Some("-02:00:00"),
            size: Some("30"),
            unit: Some("arcsec"),
            ..Default::default()
        }
        .parse(100)
        .unwrap();
        assert_eq!(
            s.center,
            Center::Sky {
                ra: 150.0,
                dec: -2.0
            }
        );
        assert_eq!(
            (s.size.width, s.size.height, s.size.unit),
            (30.0, 30.0, SizeUnit::Arcsec)
        );
        let s = SpecParams {
            x: Some("10"),
            y: Some("20"),
            width: Some("5"),
            ..Default::default()
        }
        .parse(100)
        .unwrap();
        assert_eq!((s.size.width, s.size.height), (5.0, 5.0));
        let d = SpecParams {
            x: Some("1"),
            y: Some("1"),
            ..Default::default()
        }
        .parse(1000)
        .unwrap();
        assert_eq!(d.size.width, DEFAULT_SIZE_PX);
    }

    #[test]
    fn errors_name_the_parameter() {
        let err = |p: SpecParams| p.parse(100).unwrap_err().param;
        let base = SpecParams {
            x: Some("1"),
            y: Some("1"),
            ..Default::default()
        };
        assert_eq!(
            err(SpecParams {
                size: Some("101"),
                ..base
            }),
            "size"
        );
        assert_eq!(
            err(SpecParams {
                width: Some("0"),
                height: Some("3"),
                ..base
            }),
            "width"
        );
        assert_eq!(
            err(SpecParams {
                unit: Some("furlong"),
                size: Some("3"),
                ..base
            }),
            "unit"
        );
        assert_eq!(
            err(SpecParams {
                ra: Some("1"),
                ..base
            }),
            "x"
        );
        assert_eq!(
            err(SpecParams {
                ra: Some("1"),
                dec: Some("95"),
                ..Default::default()
            }),
            "dec"
        );
        assert_eq!(
            err(SpecParams {
                size: Some("nan"),
                ..base
            }),
            "size"
        );
    }

    #[test]
    fn formats() {
        assert_eq!(CutoutFormat::parse(None, None).unwrap(), CutoutFormat::Fits);
        assert_eq!(
            CutoutFormat::parse(Some("JPEG"), Some("75")).unwrap(),
            CutoutFormat::Image(OutputFormat::Jpeg { quality: 75 })
        );
        assert_eq!(
            CutoutFormat::parse(Some("tiff"), None).unwrap_err().param,
            "format"
        );
        assert_eq!(
            CutoutFormat::parse(Some("png"), Some("75"))
                .unwrap_err()
                .param,
            "quality"
        );
        assert_eq!(
            CutoutFormat::parse(Some("jpg"), Some("0"))
                .unwrap_err()
                .param,
            "quality"
        );
    }
}
