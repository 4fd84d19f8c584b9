//! Batch cutout jobs: the uploaded CSV of positions, and the options that
//! say what to cut around each of them.
//!
//! Like the DES cutout service, a user uploads a CSV file whose rows are
//! targets. Each row is either a sky position (RA, DEC) or a catalogue source
//! (SLID, SID), and may override the job's options for itself. Options are
//! layered **system defaults → job options → per-row values**: a later layer
//! wins field by field, and an empty cell (or an absent column) means "not
//! given at this layer". [`Row::resolved`] does the whole stack.
//!
//! This module is pure: text in, typed rows and per-line errors out. It does
//! no I/O and never panics, whatever the text.
//!
//! # The file
//!
//! * The first line that is not blank and not a comment is the header. Column
//!   names are case-insensitive and trimmed; each may appear once.
//! * The header must name both RA and DEC, or both SLID and SID, or all four
//!   (then each row gives one pair or the other).
//! * Lines starting with `#` are comments. Blank lines, and lines whose cells
//!   are all empty (spreadsheet exports end with rows like `,,,`), are skipped.
//!   A UTF-8 byte-order mark at the start is ignored; line ends may be LF,
//!   CRLF or CR.
//! * Values containing commas are quoted, like `"g,r,i"`; whitespace around
//!   values is ignored.
//! * A bad row becomes a [`LineError`] carrying its physical line number (the
//!   line where the record starts, counting the header, comments and blank
//!   lines); the other rows still parse. Problems with the file as a whole
//!   (header, row limit) are a [`FileError`].
//!
//! # Columns
//!
//! | Column | Meaning | Unit / accepted values | System default |
//! |---|---|---|---|
//! | `RA` | Right ascension of a sky target | decimal degrees in [0, 360), or sexagesimal **hours** `12:34:56.7` (also `12 34 56.7`, `12h34m56.7s`) | — (a row gives RA+DEC or SLID+SID) |
//! | `DEC` | Declination of a sky target | decimal degrees in [-90, 90], or sexagesimal **degrees** `-01:02:03` (also `-01 02 03`, `-01d02m03s`) | — |
//! | `SLID` | Source-list id of a catalogue target | integer | — |
//! | `SID` | Source id within that source list | integer | — |
//! | `NAME` or `ID` | The user's label for the row, copied to the outputs | text | none |
//! | `XSIZE` | Cutout width | arcminutes, > 0 and ≤ the server's maximum | 1.0 |
//! | `YSIZE` | Cutout height | arcminutes, > 0 and ≤ the server's maximum | 1.0 |
//! | `FILTERS` | Which filters' frames to cut | `g,r,i`, `g r i`, `gri` (one letter per filter), or `all` | all |
//! | `CLASSES` | Which frame classes to cut | class names separated by commas or spaces, e.g. `ReducedScienceFrame,CoaddedRegriddedFrame`; case-insensitive, must be known to the server | the server's default classes |
//! | `MAKE_FITS` | Write FITS cutouts | boolean | true |
//! | `MAKE_PNG` | Write a PNG per cutout | boolean | true |
//! | `MAKE_RGB_LUPTON` | Write a Lupton et al. (2004) asinh colour image | boolean | false |
//! | `MAKE_RGB_STIFF` | Write a STIFF-style colour image | boolean | false |
//! | `RGB_COLORS` | Filters for the red, green and blue channels | exactly three filters, same syntax as `FILTERS` (`i,r,g` or `irg`) | `i,r,g` |
//! | `RGB_MINIMUM` | Lupton: the value mapped to black | image units, any finite number | 0 |
//! | `RGB_STRETCH` | Lupton: the linear stretch | image units, > 0 | 5 |
//! | `RGB_Q` | Lupton: the asinh softening parameter | dimensionless, ≥ 0 | 8 |
//!
//! Booleans accept `true`/`false`, `yes`/`no`, `t`/`f`, `y`/`n` and `1`/`0`,
//! in any case.
//!
//! The option columns (`XSIZE` to `RGB_Q`) are also the names of the job-level
//! options, given as form or query fields ([`Options::from_pairs`]).

use std::borrow::Cow;

use thiserror::Error;

use crate::params::{angle, flag, shown};

/// The filter names of the default RGB image: red, green, blue.
const DEFAULT_RGB: [&str; 3] = ["i", "r", "g"];

/// A column of the positions file. The option columns are also the names of
/// the job-level options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Ra,
    Dec,
    Slid,
    Sid,
    Name,
    Id,
    XSize,
    YSize,
    Filters,
    Classes,
    MakeFits,
    MakePng,
    MakeRgbLupton,
    MakeRgbStiff,
    RgbColors,
    RgbMinimum,
    RgbStretch,
    RgbQ,
}

/// Every column with its name, in the order the messages list them.
const COLUMNS: [(Column, &str); 18] = [
    (Column::Ra, "RA"),
    (Column::Dec, "DEC"),
    (Column::Slid, "SLID"),
    (Column::Sid, "SID"),
    (Column::Name, "NAME"),
    (Column::Id, "ID"),
    (Column::XSize, "XSIZE"),
    (Column::YSize, "YSIZE"),
    (Column::Filters, "FILTERS"),
    (Column::Classes, "CLASSES"),
    (Column::MakeFits, "MAKE_FITS"),
    (Column::MakePng, "MAKE_PNG"),
    (Column::MakeRgbLupton, "MAKE_RGB_LUPTON"),
    (Column::MakeRgbStiff, "MAKE_RGB_STIFF"),
    (Column::RgbColors, "RGB_COLORS"),
    (Column::RgbMinimum, "RGB_MINIMUM"),
    (Column::RgbStretch, "RGB_STRETCH"),
    (Column::RgbQ, "RGB_Q"),
];

impl Column {
    fn name(self) -> &'static str {
        COLUMNS
            .iter()
            .find(|(c, _)| *c == self)
            .map_or("?", |(_, n)| n)
    }

    fn from_name(name: &str) -> Option<Column> {
        COLUMNS
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|(c, _)| *c)
    }

    /// Whether the column is a job option rather than part of the target.
    fn is_option(self) -> bool {
        !matches!(
            self,
            Column::Ra | Column::Dec | Column::Slid | Column::Sid | Column::Name | Column::Id
        )
    }
}

/// Every CSV column by name, with whether it is a job option (allowed in
/// the query string as well as per row) rather than part of a target.
pub fn column_names() -> Vec<(&'static str, bool)> {
    COLUMNS.iter().map(|(c, n)| (*n, c.is_option())).collect()
}

/// "RA, DEC, …": the names a message offers as the allowed ones.
fn column_list(options_only: bool) -> String {
    COLUMNS
        .iter()
        .filter(|(c, _)| !options_only || c.is_option())
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The server's limits on a batch job, and what it knows.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Largest allowed `XSIZE` and `YSIZE`, in arcminutes.
    pub max_size_arcmin: f64,
    /// The frame class names `CLASSES` may name, spelled as the server spells
    /// them (matching is case-insensitive; rows get this spelling).
    pub known_classes: Vec<String>,
    /// Most data rows one file may have.
    pub max_rows: usize,
}

/// One layer of job options: system defaults, the job's options, or one row's
/// values. `None` means "not given at this layer"; [`Options::default`] is an
/// empty layer.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Options {
    /// `XSIZE`: cutout width in arcminutes.
    pub xsize: Option<f64>,
    /// `YSIZE`: cutout height in arcminutes.
    pub ysize: Option<f64>,
    /// `FILTERS`: which filters' frames to cut. An empty list means every
    /// filter (`all`).
    pub filters: Option<Vec<String>>,
    /// `CLASSES`: frame class names to cut, in the spelling of
    /// [`Limits::known_classes`].
    pub classes: Option<Vec<String>>,
    /// `MAKE_FITS`: write FITS cutouts.
    pub make_fits: Option<bool>,
    /// `MAKE_PNG`: write a PNG per cutout.
    pub make_png: Option<bool>,
    /// `MAKE_RGB_LUPTON`: write a Lupton asinh colour image.
    pub make_rgb_lupton: Option<bool>,
    /// `MAKE_RGB_STIFF`: write a STIFF-style colour image.
    pub make_rgb_stiff: Option<bool>,
    /// `RGB_COLORS`: the filters of the red, green and blue channels.
    pub rgb_colors: Option<[String; 3]>,
    /// `RGB_MINIMUM`: Lupton's minimum (mapped to black), in image units.
    pub rgb_minimum: Option<f64>,
    /// `RGB_STRETCH`: Lupton's linear stretch, in image units.
    pub rgb_stretch: Option<f64>,
    /// `RGB_Q`: Lupton's asinh softening parameter.
    pub rgb_q: Option<f64>,
}

/// The options of one target after layering: every field has its value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Resolved {
    /// Cutout width in arcminutes.
    pub xsize: f64,
    /// Cutout height in arcminutes.
    pub ysize: f64,
    /// Filters to cut; empty means every filter. [`Resolved::wants_filter`]
    /// applies that rule.
    pub filters: Vec<String>,
    /// Frame classes to cut; `None` means the caller's default classes (the
    /// system layer has no opinion on them).
    pub classes: Option<Vec<String>>,
    /// Write FITS cutouts.
    pub make_fits: bool,
    /// Write a PNG per cutout.
    pub make_png: bool,
    /// Write a Lupton asinh colour image.
    pub make_rgb_lupton: bool,
    /// Write a STIFF-style colour image.
    pub make_rgb_stiff: bool,
    /// Filters of the red, green and blue channels.
    pub rgb_colors: [String; 3],
    /// Lupton's minimum, in image units.
    pub rgb_minimum: f64,
    /// Lupton's linear stretch, in image units (> 0).
    pub rgb_stretch: f64,
    /// Lupton's asinh softening parameter (≥ 0).
    pub rgb_q: f64,
}

impl Resolved {
    /// Whether frames of `filter` are to be cut (filter names are
    /// case-sensitive: `Y` and `y` may be different filters).
    pub fn wants_filter(&self, filter: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| f == filter)
    }
}

/// A problem with one option value, or with a stack of layers that does not
/// resolve. The message is fit to show to the user as it is.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum OptionError {
    /// A name that is not an option.
    #[error("unknown option {name:?}; the options are: {allowed}")]
    Unknown {
        /// The name as given (cut short if long).
        name: String,
        /// The option names, comma-separated.
        allowed: String,
    },
    /// The same option given twice among the job's fields.
    #[error("option {name} is given more than once")]
    Repeated {
        /// The option's name.
        name: &'static str,
    },
    /// A value that does not parse or is out of range.
    #[error("{column}: {value:?} is not valid: {reason}")]
    Invalid {
        /// The column or option name.
        column: &'static str,
        /// The value as given (cut short if long).
        value: String,
        /// What is accepted instead.
        reason: String,
    },
    /// After layering, an option still has no value: the stack was not built
    /// on [`Options::system_defaults`]. A programming error, not the user's.
    #[error("option {name} has no value (the options were not layered on the system defaults)")]
    Missing {
        /// The option's name.
        name: &'static str,
    },
    /// Every `MAKE_*` option is false, so the job would produce nothing.
    #[error(
        "nothing to make: set at least one of MAKE_FITS, MAKE_PNG, MAKE_RGB_LUPTON, MAKE_RGB_STIFF to true"
    )]
    NothingToMake,
}

fn invalid(column: Column, value: &str, reason: impl Into<String>) -> OptionError {
    OptionError::Invalid {
        column: column.name(),
        value: shown(value),
        reason: reason.into(),
    }
}

impl Options {
    /// The system layer: 1×1 arcmin, every filter, the caller's default
    /// classes (`None`), FITS and PNG but no colour images, RGB from i,r,g,
    /// and Lupton's minimum 0, stretch 5, Q 8 (astropy's
    /// `make_lupton_rgb` defaults).
    pub fn system_defaults() -> Options {
        Options {
            xsize: Some(1.0),
            ysize: Some(1.0),
            filters: Some(Vec::new()),
            classes: None,
            make_fits: Some(true),
            make_png: Some(true),
            make_rgb_lupton: Some(false),
            make_rgb_stiff: Some(false),
            rgb_colors: Some(DEFAULT_RGB.map(String::from)),
            rgb_minimum: Some(0.0),
            rgb_stretch: Some(5.0),
            rgb_q: Some(8.0),
        }
    }

    /// This layer with `over` on top: each field of `over` that is given wins.
    pub fn layer(&self, over: &Options) -> Options {
        Options {
            xsize: over.xsize.or(self.xsize),
            ysize: over.ysize.or(self.ysize),
            filters: over.filters.clone().or_else(|| self.filters.clone()),
            classes: over.classes.clone().or_else(|| self.classes.clone()),
            make_fits: over.make_fits.or(self.make_fits),
            make_png: over.make_png.or(self.make_png),
            make_rgb_lupton: over.make_rgb_lupton.or(self.make_rgb_lupton),
            make_rgb_stiff: over.make_rgb_stiff.or(self.make_rgb_stiff),
            rgb_colors: over.rgb_colors.clone().or_else(|| self.rgb_colors.clone()),
            rgb_minimum: over.rgb_minimum.or(self.rgb_minimum),
            rgb_stretch: over.rgb_stretch.or(self.rgb_stretch),
            rgb_q: over.rgb_q.or(self.rgb_q),
        }
    }

    /// The concrete options. Every field except `classes` must have a value
    /// (layer on [`Options::system_defaults`] first). The values are checked
    /// again because the fields are public and need not come from a parser;
    /// the size limit is not known here and is checked when parsing.
    pub fn resolve(&self) -> Result<Resolved, OptionError> {
        fn need<T: Clone>(v: &Option<T>, c: Column) -> Result<T, OptionError> {
            v.clone().ok_or(OptionError::Missing { name: c.name() })
        }
        fn check(c: Column, v: f64, ok: bool, reason: &str) -> Result<f64, OptionError> {
            if v.is_finite() && ok {
                Ok(v)
            } else {
                Err(invalid(c, &v.to_string(), reason))
            }
        }
        let xsize = need(&self.xsize, Column::XSize)?;
        let ysize = need(&self.ysize, Column::YSize)?;
        let rgb_minimum = need(&self.rgb_minimum, Column::RgbMinimum)?;
        let rgb_stretch = need(&self.rgb_stretch, Column::RgbStretch)?;
        let rgb_q = need(&self.rgb_q, Column::RgbQ)?;
        let resolved = Resolved {
            xsize: check(Column::XSize, xsize, xsize > 0.0, SIZE_REASON)?,
            ysize: check(Column::YSize, ysize, ysize > 0.0, SIZE_REASON)?,
            filters: need(&self.filters, Column::Filters)?,
            classes: match &self.classes {
                Some(c) if c.is_empty() => {
                    return Err(invalid(Column::Classes, "", "name at least one class"));
                }
                c => c.clone(),
            },
            make_fits: need(&self.make_fits, Column::MakeFits)?,
            make_png: need(&self.make_png, Column::MakePng)?,
            make_rgb_lupton: need(&self.make_rgb_lupton, Column::MakeRgbLupton)?,
            make_rgb_stiff: need(&self.make_rgb_stiff, Column::MakeRgbStiff)?,
            rgb_colors: need(&self.rgb_colors, Column::RgbColors)?,
            rgb_minimum: check(Column::RgbMinimum, rgb_minimum, true, NUMBER_REASON)?,
            rgb_stretch: check(
                Column::RgbStretch,
                rgb_stretch,
                rgb_stretch > 0.0,
                STRETCH_REASON,
            )?,
            rgb_q: check(Column::RgbQ, rgb_q, rgb_q >= 0.0, Q_REASON)?,
        };
        if !(resolved.make_fits
            || resolved.make_png
            || resolved.make_rgb_lupton
            || resolved.make_rgb_stiff)
        {
            return Err(OptionError::NothingToMake);
        }
        Ok(resolved)
    }

    /// The job-level layer from form or query fields named like the option
    /// columns (case-insensitive, trimmed). Empty values mean "not given"; a
    /// name that is not an option, or an option given twice, is an error.
    pub fn from_pairs(pairs: &[(String, String)], limits: &Limits) -> Result<Options, OptionError> {
        let mut options = Options::default();
        let mut seen: Vec<Column> = Vec::new();
        for (name, value) in pairs {
            let name = name.trim();
            let column = Column::from_name(name)
                .filter(|c| c.is_option())
                .ok_or_else(|| OptionError::Unknown {
                    name: shown(name),
                    allowed: column_list(true),
                })?;
            let value = value.trim();
            if value.is_empty() {
                continue;
            }
            if seen.contains(&column) {
                return Err(OptionError::Repeated {
                    name: column.name(),
                });
            }
            seen.push(column);
            set_option(&mut options, column, value, limits)?;
        }
        Ok(options)
    }
}

const SIZE_REASON: &str = "expected a size in arcminutes greater than 0";
const NUMBER_REASON: &str = "expected a number";
const STRETCH_REASON: &str = "expected a number greater than 0";
const Q_REASON: &str = "expected a number of at least 0";
const FILTERS_REASON: &str = "expected filter names like \"g,r,i\", \"g r i\" or \"gri\" (one letter per filter), or \"all\"";
const RGB_REASON: &str =
    "expected exactly three filters for red, green and blue, like \"i,r,g\" or \"irg\"";

/// Sets one option of `options` from a trimmed, non-empty cell or field.
fn set_option(
    options: &mut Options,
    column: Column,
    value: &str,
    limits: &Limits,
) -> Result<(), OptionError> {
    match column {
        Column::XSize => options.xsize = Some(parse_size(column, value, limits)?),
        Column::YSize => options.ysize = Some(parse_size(column, value, limits)?),
        Column::Filters => {
            options.filters =
                Some(parse_filters(value, true).map_err(|r| invalid(column, value, r))?);
        }
        Column::Classes => options.classes = Some(parse_classes(value, limits)?),
        Column::MakeFits => options.make_fits = Some(parse_bool(column, value)?),
        Column::MakePng => options.make_png = Some(parse_bool(column, value)?),
        Column::MakeRgbLupton => options.make_rgb_lupton = Some(parse_bool(column, value)?),
        Column::MakeRgbStiff => options.make_rgb_stiff = Some(parse_bool(column, value)?),
        Column::RgbColors => {
            let list = parse_filters(value, false).map_err(|r| invalid(column, value, r))?;
            let colors: [String; 3] = list.try_into().map_err(|l: Vec<String>| {
                invalid(column, value, format!("{RGB_REASON}; found {}", l.len()))
            })?;
            options.rgb_colors = Some(colors);
        }
        Column::RgbMinimum => {
            options.rgb_minimum = Some(parse_number(value, |_| true, column, NUMBER_REASON)?);
        }
        Column::RgbStretch => {
            options.rgb_stretch = Some(parse_number(value, |v| v > 0.0, column, STRETCH_REASON)?);
        }
        Column::RgbQ => options.rgb_q = Some(parse_number(value, |v| v >= 0.0, column, Q_REASON)?),
        // Target and label columns are handled by the row parser; reaching
        // here would be a bug, reported rather than panicking.
        Column::Ra | Column::Dec | Column::Slid | Column::Sid | Column::Name | Column::Id => {
            return Err(invalid(column, value, "not an option"));
        }
    }
    Ok(())
}

/// A finite number satisfying `ok`. `f64::from_str` accepts "NaN" and "inf",
/// which no option wants.
fn parse_number(
    value: &str,
    ok: impl Fn(f64) -> bool,
    column: Column,
    reason: &str,
) -> Result<f64, OptionError> {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && ok(v) => Ok(v),
        _ => Err(invalid(column, value, reason)),
    }
}

fn parse_size(column: Column, value: &str, limits: &Limits) -> Result<f64, OptionError> {
    let max = limits.max_size_arcmin;
    parse_number(
        value,
        |v| v > 0.0 && v <= max,
        column,
        &format!("{SIZE_REASON} and at most {max}"),
    )
}

fn parse_bool(column: Column, value: &str) -> Result<bool, OptionError> {
    flag::parse_flag(value).map_err(|rule| invalid(column, value, rule))
}

/// Whether a filter name is plausible. Names go into file names and queries
/// downstream, so only a conservative alphabet is let through.
fn valid_filter_name(name: &str) -> bool {
    name.chars().count() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn is_separator(c: char) -> bool {
    c == ',' || c.is_whitespace()
}

/// Parses a filter list: "g,r,i", "g r i", "gri", or (when `allow_all`)
/// "all", which becomes the empty list. Duplicates are dropped from a
/// `FILTERS` list, but kept in `RGB_COLORS` where the positions matter.
/// The error is the reason to show.
fn parse_filters(value: &str, allow_all: bool) -> Result<Vec<String>, String> {
    let reason = if allow_all {
        FILTERS_REASON
    } else {
        RGB_REASON
    };
    let names: Vec<String> = if !value.contains(is_separator) && !value.eq_ignore_ascii_case("all")
    {
        // Run-together single letters, DES style ("grizY").
        if !value.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(reason.to_string());
        }
        value.chars().map(String::from).collect()
    } else {
        value
            .split(is_separator)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()
    };
    if names.is_empty() {
        return Err(reason.to_string());
    }
    if names.iter().any(|n| n.eq_ignore_ascii_case("all")) {
        return if allow_all && names.len() == 1 {
            Ok(Vec::new())
        } else if allow_all {
            Err(format!(
                "\"all\" cannot be combined with other filters; {reason}"
            ))
        } else {
            Err(reason.to_string())
        };
    }
    if let Some(bad) = names.iter().find(|n| !valid_filter_name(n)) {
        return Err(format!(
            "{:?} is not a filter name (letters, digits, _ - . only); {reason}",
            shown(bad)
        ));
    }
    if allow_all {
        let mut unique: Vec<String> = Vec::with_capacity(names.len());
        for n in names {
            if !unique.contains(&n) {
                unique.push(n);
            }
        }
        Ok(unique)
    } else {
        Ok(names)
    }
}

/// Parses a class list against the known classes, returning the server's
/// spelling of each, without duplicates.
fn parse_classes(value: &str, limits: &Limits) -> Result<Vec<String>, OptionError> {
    let mut classes: Vec<String> = Vec::new();
    for name in value.split(is_separator).filter(|s| !s.is_empty()) {
        let known = limits
            .known_classes
            .iter()
            .find(|k| k.eq_ignore_ascii_case(name))
            .ok_or_else(|| {
                invalid(
                    Column::Classes,
                    value,
                    format!(
                        "unknown class {:?}; the classes are: {}",
                        shown(name),
                        limits.known_classes.join(", ")
                    ),
                )
            })?;
        if !classes.contains(known) {
            classes.push(known.clone());
        }
    }
    if classes.is_empty() {
        return Err(invalid(
            Column::Classes,
            value,
            format!(
                "name at least one class; the classes are: {}",
                limits.known_classes.join(", ")
            ),
        ));
    }
    Ok(classes)
}

fn parse_ra(value: &str) -> Result<f64, OptionError> {
    angle::parse_ra(value).map_err(|rule| invalid(Column::Ra, value, rule))
}

fn parse_dec(value: &str) -> Result<f64, OptionError> {
    angle::parse_dec(value).map_err(|rule| invalid(Column::Dec, value, rule))
}

fn parse_id(column: Column, value: &str) -> Result<i64, OptionError> {
    value
        .parse::<i64>()
        .map_err(|_| invalid(column, value, "expected an integer identifier"))
}

/// What a row asks to be cut around.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A sky position, in degrees (RA in [0, 360), Dec in [-90, 90]).
    Sky {
        /// Right ascension, degrees.
        ra: f64,
        /// Declination, degrees.
        dec: f64,
    },
    /// A catalogue source.
    Source {
        /// Source-list id.
        slid: i64,
        /// Source id within the source list.
        sid: i64,
    },
}

/// One good data row of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based physical line number where the row starts (the header, comment
    /// and blank lines count).
    pub line: usize,
    /// 0-based index of the row among the file's data rows, counting bad rows
    /// too, so it stays the user's "n-th row" whatever else fails.
    pub index: usize,
    /// The user's label from the `NAME` or `ID` column.
    pub name: Option<String>,
    /// What to cut around.
    pub target: Target,
    /// The row's own option layer only (empty cells are `None`).
    pub options: Options,
}

impl Row {
    /// The row's options resolved through all three layers: system defaults,
    /// then `job`, then the row's own values.
    pub fn resolved(&self, job: &Options) -> Result<Resolved, OptionError> {
        Options::system_defaults()
            .layer(job)
            .layer(&self.options)
            .resolve()
    }
}

/// A problem with one data row; the row is left out and the others parse.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based physical line number where the row starts.
    pub line: usize,
    /// What is wrong, naming the column and what it accepts.
    pub message: String,
}

/// The result of reading a positions file.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    /// The good rows, in file order.
    pub rows: Vec<Row>,
    /// One entry per problem, in file order; a line may have several.
    pub errors: Vec<LineError>,
    /// The header's column names, upper-case, in file order.
    pub columns: Vec<String>,
}

/// A problem with the file as a whole; no rows are returned. The message is
/// fit to show to the user as it is.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum FileError {
    /// Nothing but blank and comment lines.
    #[error("the file is empty: its first line should name the columns, like RA,DEC or SLID,SID")]
    NoHeader,
    /// A header cell that is not a known column.
    #[error("header (line {line}): unknown column {name:?}; the columns are: {allowed}")]
    UnknownColumn {
        /// Line of the header.
        line: usize,
        /// The name as given (cut short if long).
        name: String,
        /// The known column names, comma-separated.
        allowed: String,
    },
    /// A header cell with no name.
    #[error(
        "header (line {line}): column {position} has no name; remove the extra comma or name the column ({allowed})"
    )]
    UnnamedColumn {
        /// Line of the header.
        line: usize,
        /// 1-based position of the cell.
        position: usize,
        /// The known column names, comma-separated.
        allowed: String,
    },
    /// A column named twice.
    #[error("header (line {line}): column {name} appears more than once")]
    DuplicateColumn {
        /// Line of the header.
        line: usize,
        /// The column's name.
        name: &'static str,
    },
    /// Both NAME and ID, which are one column under two names.
    #[error("header (line {line}): NAME and ID are the same column (the row's label); keep one")]
    LabelTwice {
        /// Line of the header.
        line: usize,
    },
    /// One column of the RA/DEC or SLID/SID pair without the other.
    #[error("header (line {line}): column {present} needs column {missing} too")]
    HalfPair {
        /// Line of the header.
        line: usize,
        /// The column that is there.
        present: &'static str,
        /// Its partner, which is not.
        missing: &'static str,
    },
    /// Neither target pair.
    #[error(
        "header (line {line}): the columns must include RA and DEC (sky positions) or SLID and SID (catalogue sources); found: {found}"
    )]
    NoTarget {
        /// Line of the header.
        line: usize,
        /// The columns the header has.
        found: String,
    },
    /// A header and no data rows.
    #[error("the file has a header (line {line}) but no rows of positions")]
    NoRows {
        /// Line of the header.
        line: usize,
    },
    /// More data rows than a job may have.
    #[error(
        "the file has {rows} rows of positions; a job may have at most {limit}: split it into several jobs"
    )]
    TooManyRows {
        /// Data rows in the file.
        rows: usize,
        /// [`Limits::max_rows`].
        limit: usize,
    },
    /// The CSV reader failed. Reading text from memory with flexible row
    /// lengths has no failure mode known to us; this keeps one from
    /// panicking or being lost.
    #[error("line {line}: the file could not be read as CSV: {message}")]
    Unreadable {
        /// Line where reading failed.
        line: usize,
        /// The reader's message.
        message: String,
    },
}

/// The header: which column each cell is.
struct Header {
    columns: Vec<Column>,
    line: usize,
}

fn parse_header(record: &csv::StringRecord, line: usize) -> Result<Header, FileError> {
    let mut columns: Vec<Column> = Vec::with_capacity(record.len());
    for (i, cell) in record.iter().enumerate() {
        let name = cell.trim();
        if name.is_empty() {
            return Err(FileError::UnnamedColumn {
                line,
                position: i + 1,
                allowed: column_list(false),
            });
        }
        let column = Column::from_name(name).ok_or_else(|| FileError::UnknownColumn {
            line,
            name: shown(name),
            allowed: column_list(false),
        })?;
        if columns.contains(&column) {
            return Err(FileError::DuplicateColumn {
                line,
                name: column.name(),
            });
        }
        if matches!(column, Column::Name | Column::Id)
            && columns
                .iter()
                .any(|c| matches!(c, Column::Name | Column::Id))
        {
            return Err(FileError::LabelTwice { line });
        }
        columns.push(column);
    }
    let has = |c: Column| columns.contains(&c);
    for (a, b) in [(Column::Ra, Column::Dec), (Column::Slid, Column::Sid)] {
        match (has(a), has(b)) {
            (true, false) => {
                return Err(FileError::HalfPair {
                    line,
                    present: a.name(),
                    missing: b.name(),
                });
            }
            (false, true) => {
                return Err(FileError::HalfPair {
                    line,
                    present: b.name(),
                    missing: a.name(),
                });
            }
            _ => {}
        }
    }
    if !has(Column::Ra) && !has(Column::Slid) {
        return Err(FileError::NoTarget {
            line,
            found: columns
                .iter()
                .map(|c| c.name())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    Ok(Header { columns, line })
}

/// How much of a target pair a row gives.
enum Pair<T> {
    Both(T, T),
    Neither,
    /// Only one; the name is the missing column's.
    Half(&'static str, &'static str),
}

fn pair<T>(a: Option<T>, b: Option<T>, names: (Column, Column)) -> Pair<T> {
    match (a, b) {
        (Some(a), Some(b)) => Pair::Both(a, b),
        (None, None) => Pair::Neither,
        (Some(_), None) => Pair::Half(names.0.name(), names.1.name()),
        (None, Some(_)) => Pair::Half(names.1.name(), names.0.name()),
    }
}

/// Parses one data record, or returns every problem it has.
fn parse_row(
    header: &Header,
    record: &csv::StringRecord,
    line: usize,
    index: usize,
    limits: &Limits,
) -> Result<Row, Vec<LineError>> {
    let error = |message: String| LineError { line, message };
    if record.len() != header.columns.len() {
        let names: Vec<&str> = header.columns.iter().map(|c| c.name()).collect();
        return Err(vec![error(format!(
            "expected {} values ({}) but found {}; quote values that contain commas, like \"g,r,i\"",
            names.len(),
            names.join(", "),
            record.len()
        ))]);
    }
    let mut problems: Vec<LineError> = Vec::new();
    let mut options = Options::default();
    let mut name = None;
    let (mut ra, mut dec, mut slid, mut sid) = (None, None, None, None);
    // A target cell that failed to parse has already been reported; the
    // "which pair is given" checks below would only repeat it confusingly.
    let mut bad_target_cell = false;
    for (&column, cell) in header.columns.iter().zip(record.iter()) {
        let value = cell.trim();
        if value.is_empty() {
            continue;
        }
        let result = match column {
            Column::Ra => parse_ra(value).map(|v| ra = Some(v)),
            Column::Dec => parse_dec(value).map(|v| dec = Some(v)),
            Column::Slid => parse_id(column, value).map(|v| slid = Some(v)),
            Column::Sid => parse_id(column, value).map(|v| sid = Some(v)),
            Column::Name | Column::Id => {
                name = Some(value.to_string());
                Ok(())
            }
            _ => set_option(&mut options, column, value, limits),
        };
        if let Err(e) = result {
            bad_target_cell |= !column.is_option();
            problems.push(error(e.to_string()));
        }
    }
    let target = if bad_target_cell {
        None
    } else {
        let sky = pair(ra, dec, (Column::Ra, Column::Dec));
        let source = pair(slid, sid, (Column::Slid, Column::Sid));
        let wanted = if header.columns.contains(&Column::Slid) {
            if header.columns.contains(&Column::Ra) {
                "RA and DEC, or SLID and SID"
            } else {
                "SLID and SID"
            }
        } else {
            "RA and DEC"
        };
        match (sky, source) {
            (Pair::Both(ra, dec), Pair::Neither) => Some(Target::Sky { ra, dec }),
            (Pair::Neither, Pair::Both(slid, sid)) => Some(Target::Source { slid, sid }),
            (Pair::Neither, Pair::Neither) => {
                problems.push(error(format!("no target: give {wanted}")));
                None
            }
            (Pair::Half(present, missing), _) | (_, Pair::Half(present, missing)) => {
                problems.push(error(format!(
                    "{present} is given but {missing} is empty; give {wanted}"
                )));
                None
            }
            (Pair::Both(..), Pair::Both(..)) => {
                problems.push(error(
                    "give either RA and DEC or SLID and SID on a row, not both".to_string(),
                ));
                None
            }
        }
    };
    match target {
        Some(target) if problems.is_empty() => Ok(Row {
            line,
            index,
            name,
            target,
            options,
        }),
        _ => Err(problems),
    }
}

/// The text with every line end as `\n`. csv accepts CR and CRLF but counts
/// lines by `\n` only, so a CR-only file (Excel's "CSV (Macintosh)") would
/// otherwise put every row on line 1.
fn normalize_line_ends(text: &str) -> Cow<'_, str> {
    if text.contains('\r') {
        Cow::Owned(text.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        Cow::Borrowed(text)
    }
}

/// The physical line where the record read from `pos` starts. csv reports the
/// position where it *began* reading, i.e. just after the previous record,
/// and silently skips blank and comment lines before the record; those are
/// counted here.
fn record_start_line(text: &str, pos: &csv::Position) -> usize {
    let mut line = usize::try_from(pos.line()).unwrap_or(usize::MAX);
    let mut rest = usize::try_from(pos.byte())
        .ok()
        .and_then(|b| text.get(b..))
        .unwrap_or("");
    while let Some((first, next)) = rest.split_once('\n') {
        if first.is_empty() || first.starts_with('#') {
            line = line.saturating_add(1);
            rest = next;
        } else {
            break;
        }
    }
    line
}

/// Reads a positions file (see the module documentation for its format).
///
/// Problems with single rows are returned in [`Parsed::errors`] alongside the
/// good rows; a problem with the header, a file with no rows, or more than
/// [`Limits::max_rows`] data rows is a [`FileError`].
pub fn parse_positions(text: &str, limits: &Limits) -> Result<Parsed, FileError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = normalize_line_ends(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false) // the header is found here, after comments and blanks
        .flexible(true) // a short row is that row's error, not the file's
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut record = csv::StringRecord::new();
    let mut header: Option<Header> = None;
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut data_rows = 0usize;
    loop {
        let start = reader.position().clone();
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(FileError::Unreadable {
                    line: record_start_line(&text, &start),
                    message: e.to_string(),
                });
            }
        }
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        let line = record_start_line(&text, &start);
        let Some(h) = &header else {
            header = Some(parse_header(&record, line)?);
            continue;
        };
        data_rows += 1;
        // Past the limit the file is refused anyway; keep only counting, so
        // the message can say how many rows there are.
        if data_rows > limits.max_rows {
            continue;
        }
        match parse_row(h, &record, line, data_rows - 1, limits) {
            Ok(row) => rows.push(row),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    let header = header.ok_or(FileError::NoHeader)?;
    if data_rows == 0 {
        return Err(FileError::NoRows { line: header.line });
    }
    if data_rows > limits.max_rows {
        return Err(FileError::TooManyRows {
            rows: data_rows,
            limit: limits.max_rows,
        });
    }
    Ok(Parsed {
        rows,
        errors,
        columns: header
            .columns
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
    })
}

/// One line of a job's `positions_<job>.csv`: what became of each row.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionRecord {
    /// The row's [`Row::index`].
    pub index: usize,
    /// The row's [`Row::line`] in the uploaded file.
    pub line: usize,
    /// The user's label.
    pub name: Option<String>,
    /// Right ascension in degrees (given, or of the catalogue source).
    pub ra: Option<f64>,
    /// Declination in degrees.
    pub dec: Option<f64>,
    /// Source-list id, for a catalogue target.
    pub slid: Option<i64>,
    /// Source id, for a catalogue target.
    pub sid: Option<i64>,
    /// Cutout width used, arcminutes.
    pub xsize: f64,
    /// Cutout height used, arcminutes.
    pub ysize: f64,
    /// What happened (e.g. "ok", or the error).
    pub status: String,
    /// How many files were made for the row.
    pub files: usize,
}

/// The columns of `positions_<job>.csv`.
const POSITIONS_HEADER: [&str; 11] = [
    "INDEX", "LINE", "NAME", "RA", "DEC", "SLID", "SID", "XSIZE", "YSIZE", "STATUS", "FILES",
];

/// Writes `positions_<job>.csv`: a header (INDEX, LINE, NAME, RA, DEC, SLID,
/// SID, XSIZE, YSIZE, STATUS, FILES) and one line per record, quoted as CSV
/// needs. Absent values are empty cells; numbers are written in the shortest
/// form that reads back to the same value.
pub fn write_positions_csv(records: &[PositionRecord]) -> String {
    fn opt<T: ToString>(v: &Option<T>) -> String {
        v.as_ref().map(T::to_string).unwrap_or_default()
    }
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF) // RFC 4180, and what spreadsheets expect
        .from_writer(Vec::new());
    // Writing to a Vec cannot fail, and every record has the header's length;
    // should the csv crate fail anyway, the lines written so far are kept
    // rather than panicking.
    let mut write = || -> Result<(), csv::Error> {
        writer.write_record(POSITIONS_HEADER)?;
        for r in records {
            writer.write_record([
                r.index.to_string(),
                r.line.to_string(),
                r.name.clone().unwrap_or_default(),
                opt(&r.ra),
                opt(&r.dec),
                opt(&r.slid),
                opt(&r.sid),
                r.xsize.to_string(),
                r.ysize.to_string(),
                r.status.clone(),
                r.files.to_string(),
            ])?;
        }
        writer.flush()?;
        Ok(())
    };
    let _ = write();
    let bytes = writer
        .into_inner()
        .unwrap_or_else(|e| e.into_inner().get_ref().clone());
    // Every value written is a `str` or a number, so the bytes are UTF-8.
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn limits() -> Limits {
        Limits {
            max_size_arcmin: 10.0,
            known_classes: vec![
                "ReducedScienceFrame".to_string(),
                "CoaddedRegriddedFrame".to_string(),
            ],
            max_rows: 100,
        }
    }

    fn parse(text: &str) -> Parsed {
        match parse_positions(text, &limits()) {
            Ok(p) => p,
            Err(e) => panic!("unexpected file error: {e}"),
        }
    }

    fn file_error(text: &str) -> FileError {
        match parse_positions(text, &limits()) {
            Ok(p) => panic!("expected a file error, got {p:?}"),
            Err(e) => e,
        }
    }

    /// The messages of a one-row file's errors.
    fn row_errors(header: &str, row: &str) -> Vec<String> {
        let p = parse(&format!("{header}\n{row}\n"));
        assert!(p.rows.is_empty(), "row parsed: {:?}", p.rows);
        p.errors.iter().map(|e| e.to_string()).collect()
    }

    fn one_row(header: &str, row: &str) -> Row {
        let p = parse(&format!("{header}\n{row}\n"));
        assert!(p.errors.is_empty(), "errors: {:?}", p.errors);
        assert_eq!(p.rows.len(), 1);
        p.rows[0].clone()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn system_defaults_resolve() {
        let r = Options::system_defaults().resolve().unwrap();
        assert_eq!((r.xsize, r.ysize), (1.0, 1.0));
        assert!(r.filters.is_empty() && r.wants_filter("g") && r.wants_filter("Y"));
        assert_eq!(r.classes, None);
        assert!(r.make_fits && r.make_png && !r.make_rgb_lupton && !r.make_rgb_stiff);
        assert_eq!(r.rgb_colors, ["i", "r", "g"].map(String::from));
        assert_eq!((r.rgb_minimum, r.rgb_stretch, r.rgb_q), (0.0, 5.0, 8.0));
    }

    #[test]
    fn layering_order_is_system_then_job_then_row() {
        let job = Options::from_pairs(
            &pairs(&[
                ("xsize", "2"),
                ("YSIZE", "3"),
                ("filters", "gr"),
                ("make_png", ""),
            ]),
            &limits(),
        )
        .unwrap();
        let p = parse("RA,DEC,XSIZE,MAKE_PNG\n10,20,4,\n10,20,,no\n");
        let first = p.rows[0].resolved(&job).unwrap();
        // Row beats job (XSIZE), job beats system (YSIZE, FILTERS), system
        // fills the rest (MAKE_PNG: the job's empty field is "not given").
        assert_eq!((first.xsize, first.ysize), (4.0, 3.0));
        assert_eq!(first.filters, vec!["g", "r"]);
        assert!(first.make_png);
        let second = p.rows[1].resolved(&job).unwrap();
        assert_eq!(second.xsize, 2.0);
        assert!(!second.make_png);
        // A row's "all" overrides a job's list.
        let row = Options {
            filters: Some(Vec::new()),
            ..Options::default()
        };
        let r = Options::system_defaults()
            .layer(&job)
            .layer(&row)
            .resolve()
            .unwrap();
        assert!(r.wants_filter("z"));
        // An empty layer changes nothing.
        let sys = Options::system_defaults();
        assert_eq!(sys.layer(&Options::default()), sys);
        assert_eq!(Options::default().layer(&sys), sys);
    }

    #[test]
    fn resolve_errors() {
        assert_eq!(
            Options::default().resolve().unwrap_err().to_string(),
            "option XSIZE has no value (the options were not layered on the system defaults)"
        );
        let nothing = Options {
            make_fits: Some(false),
            make_png: Some(false),
            ..Options::default()
        };
        let err = Options::system_defaults()
            .layer(&nothing)
            .resolve()
            .unwrap_err();
        assert_eq!(err, OptionError::NothingToMake);
        assert!(
            err.to_string()
                .starts_with("nothing to make: set at least one of MAKE_FITS")
        );
        // Fields set directly, bypassing the parser, are still checked.
        let bad = Options {
            rgb_stretch: Some(0.0),
            ..Options::default()
        };
        let err = Options::system_defaults()
            .layer(&bad)
            .resolve()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "RGB_STRETCH: \"0\" is not valid: expected a number greater than 0"
        );
        let bad = Options {
            classes: Some(Vec::new()),
            ..Options::default()
        };
        assert!(Options::system_defaults().layer(&bad).resolve().is_err());
    }

    #[test]
    fn from_pairs_names_and_errors() {
        let l = limits();
        let o = Options::from_pairs(
            &pairs(&[
                (" Make_Rgb_Lupton ", " yes "),
                ("classes", "coaddedregriddedframe reducedscienceframe"),
                ("rgb_colors", "z,i,r"),
            ]),
            &l,
        )
        .unwrap();
        assert_eq!(o.make_rgb_lupton, Some(true));
        assert_eq!(
            o.classes,
            Some(vec![
                "CoaddedRegriddedFrame".into(),
                "ReducedScienceFrame".into()
            ])
        );
        assert_eq!(o.rgb_colors, Some(["z", "i", "r"].map(String::from)));
        assert_eq!(Options::from_pairs(&[], &l).unwrap(), Options::default());

        let err = Options::from_pairs(&pairs(&[("size", "1")]), &l).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown option \"size\"; the options are: XSIZE, YSIZE, FILTERS, CLASSES, \
             MAKE_FITS, MAKE_PNG, MAKE_RGB_LUPTON, MAKE_RGB_STIFF, RGB_COLORS, RGB_MINIMUM, \
             RGB_STRETCH, RGB_Q"
        );
        // Target columns are per row, not job options.
        assert!(matches!(
            Options::from_pairs(&pairs(&[("ra", "10")]), &l),
            Err(OptionError::Unknown { .. })
        ));
        let err = Options::from_pairs(&pairs(&[("xsize", "1"), ("XSIZE", "2")]), &l).unwrap_err();
        assert_eq!(err.to_string(), "option XSIZE is given more than once");
        let err = Options::from_pairs(&pairs(&[("xsize", "11")]), &l).unwrap_err();
        assert_eq!(
            err.to_string(),
            "XSIZE: \"11\" is not valid: expected a size in arcminutes greater than 0 and at most 10"
        );
    }

    #[test]
    fn header_is_case_insensitive_and_trimmed() {
        let p = parse(" ra , Dec ,name,xSize\n1,2,a,3\n");
        assert_eq!(p.columns, vec!["RA", "DEC", "NAME", "XSIZE"]);
        assert_eq!(p.rows[0].name.as_deref(), Some("a"));
        assert_eq!(p.rows[0].options.xsize, Some(3.0));
        assert_eq!(p.rows[0].target, Target::Sky { ra: 1.0, dec: 2.0 });
        let p = parse("slid,sid,Id\n5,-7,  my source \n");
        assert_eq!(p.rows[0].target, Target::Source { slid: 5, sid: -7 });
        assert_eq!(p.rows[0].name.as_deref(), Some("my source"));
    }

    #[test]
    fn bom_is_ignored() {
        let p = parse("\u{feff}RA,DEC\n1,2\n");
        assert_eq!(p.columns, vec!["RA", "DEC"]);
        assert_eq!(p.rows[0].line, 2);
    }

    #[test]
    fn line_numbers_count_blank_comment_and_multiline_records() {
        let text = "# positions for tonight\n\
                    \n\
                    RA,DEC,NAME\n\
                    # first target\n\
                    10,20,\"two\n\
                    lines\"\n\
                    \n\
                    \n\
                    11,21,b\n\
                    ,,\n\
                    999,21,bad\n\
                    12,22,c";
        let p = parse(text);
        let lines: Vec<(usize, usize)> = p.rows.iter().map(|r| (r.index, r.line)).collect();
        // The bad row on line 11 keeps index 2, so indices stay the user's.
        assert_eq!(lines, vec![(0, 5), (1, 9), (3, 12)]);
        assert_eq!(p.rows[0].name.as_deref(), Some("two\nlines"));
        assert_eq!(p.errors.len(), 1);
        assert_eq!(p.errors[0].line, 11);
        // The same with CRLF and with CR-only line ends.
        for ending in ["\r\n", "\r"] {
            let p = parse(&text.replace('\n', ending));
            let again: Vec<(usize, usize)> = p.rows.iter().map(|r| (r.index, r.line)).collect();
            assert_eq!(again, lines, "line ends {ending:?}");
            assert_eq!(p.errors[0].line, 11);
        }
    }

    #[test]
    fn bad_row_does_not_stop_the_others() {
        let p = parse("RA,DEC,XSIZE\n10,20,1\n10,abc,1\n30,40,2\n");
        assert_eq!(p.rows.len(), 2);
        assert_eq!((p.rows[0].line, p.rows[1].line), (2, 4));
        assert_eq!(
            p.rows[1].target,
            Target::Sky {
                ra: 30.0,
                dec: 40.0
            }
        );
        assert_eq!(
            p.errors,
            vec![LineError {
                line: 3,
                message: "DEC: \"abc\" is not valid: expected decimal degrees in [-90, 90] \
                          or sexagesimal degrees like -01:02:03"
                    .to_string()
            }]
        );
        assert!(p.errors[0].to_string().starts_with("line 3: DEC: "));
    }

    #[test]
    fn sexagesimal_positions() {
        let row = one_row("RA,DEC", "12:34:56.7,-01:02:03");
        let Target::Sky { ra, dec } = row.target else {
            panic!("not a sky target")
        };
        assert!((ra - (12.0 + 34.0 / 60.0 + 56.7 / 3600.0) * 15.0).abs() < 1e-9);
        assert!((dec + (1.0 + 2.0 / 60.0 + 3.0 / 3600.0)).abs() < 1e-9);
        for (cell, want) in [
            ("12h30m00s", 187.5),
            ("12 30", 187.5),
            ("00:00:00", 0.0),
            ("187.5", 187.5),
        ] {
            let row = one_row("RA,DEC", &format!("{cell},-00:30:00"));
            assert_eq!(
                row.target,
                Target::Sky {
                    ra: want,
                    dec: -0.5
                },
                "{cell}"
            );
        }
    }

    #[test]
    fn positions_out_of_range() {
        for ra in [
            "360",
            "-1",
            "24:00:00",
            "-01:00:00",
            "nan",
            "inf",
            "12:60:00",
            "12.5:30",
            "1e400",
        ] {
            let errs = row_errors("RA,DEC", &format!("{ra},0"));
            assert_eq!(errs.len(), 1, "{ra}");
            assert!(
                errs[0].contains("RA: ") && errs[0].contains("[0, 360)"),
                "{ra}: {errs:?}"
            );
        }
        for dec in ["90.0001", "-91", "91:00:00", "-inf"] {
            let errs = row_errors("RA,DEC", &format!("0,{dec}"));
            assert!(
                errs[0].contains("DEC: ") && errs[0].contains("[-90, 90]"),
                "{dec}"
            );
        }
        let row = one_row("RA,DEC", "359.999,-90");
        assert_eq!(
            row.target,
            Target::Sky {
                ra: 359.999,
                dec: -90.0
            }
        );
        let errs = row_errors("SLID,SID", "1.5,x");
        assert_eq!(
            errs,
            vec![
                "line 2: SLID: \"1.5\" is not valid: expected an integer identifier",
                "line 2: SID: \"x\" is not valid: expected an integer identifier",
            ]
        );
    }

    #[test]
    fn target_errors() {
        let h = "RA,DEC,SLID,SID";
        // An all-empty row (spreadsheet padding) is skipped, not an error.
        assert_eq!(
            file_error(&format!("{h}\n,,,\n")),
            FileError::NoRows { line: 1 }
        );
        assert_eq!(
            row_errors("RA,DEC,XSIZE", ",,2"),
            vec!["line 2: no target: give RA and DEC"]
        );
        assert_eq!(
            row_errors(h, "1,,,"),
            vec!["line 2: RA is given but DEC is empty; give RA and DEC, or SLID and SID"]
        );
        assert_eq!(
            row_errors("SLID,SID", ",4"),
            vec!["line 2: SID is given but SLID is empty; give SLID and SID"]
        );
        assert_eq!(
            row_errors(h, "1,2,3,4"),
            vec!["line 2: give either RA and DEC or SLID and SID on a row, not both"]
        );
        let p = parse("RA,DEC,SLID,SID\n1,2,,\n,,3,4\n");
        assert_eq!(p.rows[0].target, Target::Sky { ra: 1.0, dec: 2.0 });
        assert_eq!(p.rows[1].target, Target::Source { slid: 3, sid: 4 });
    }

    #[test]
    fn wrong_number_of_fields() {
        assert_eq!(
            row_errors("RA,DEC,FILTERS", "1,2,g,r"),
            vec![
                "line 2: expected 3 values (RA, DEC, FILTERS) but found 4; quote values that \
                 contain commas, like \"g,r,i\""
            ]
        );
        assert_eq!(row_errors("RA,DEC,FILTERS", "1,2").len(), 1);
        let row = one_row("RA,DEC,FILTERS", "1,2,\"g, r ,i\"");
        assert_eq!(
            row.options.filters,
            Some(vec!["g".into(), "r".into(), "i".into()])
        );
    }

    #[test]
    fn sizes() {
        let row = one_row("RA,DEC,XSIZE,YSIZE", "1,2,10,0.05");
        assert_eq!(
            (row.options.xsize, row.options.ysize),
            (Some(10.0), Some(0.05))
        );
        for bad in ["0", "-1", "10.01", "abc", "NaN"] {
            let errs = row_errors("RA,DEC,YSIZE", &format!("1,2,{bad}"));
            assert_eq!(
                errs,
                vec![format!(
                    "line 2: YSIZE: \"{bad}\" is not valid: expected a size in arcminutes \
                     greater than 0 and at most 10"
                )]
            );
        }
    }

    #[test]
    fn classes() {
        let row = one_row(
            "RA,DEC,CLASSES",
            "1,2,\"reducedscienceframe, COADDEDREGRIDDEDFRAME,ReducedScienceFrame\"",
        );
        assert_eq!(
            row.options.classes,
            Some(vec![
                "ReducedScienceFrame".into(),
                "CoaddedRegriddedFrame".into()
            ])
        );
        assert_eq!(
            row_errors("RA,DEC,CLASSES", "1,2,RawFrame"),
            vec![
                "line 2: CLASSES: \"RawFrame\" is not valid: unknown class \"RawFrame\"; the \
                 classes are: ReducedScienceFrame, CoaddedRegriddedFrame"
            ]
        );
        assert_eq!(row_errors("RA,DEC,CLASSES", "1,2,\",\"").len(), 1);
    }

    #[test]
    fn booleans() {
        for (cell, want) in [
            ("true", true),
            ("YES", true),
            ("t", true),
            ("Y", true),
            ("1", true),
            ("False", false),
            ("no", false),
            ("F", false),
            ("n", false),
            ("0", false),
        ] {
            let row = one_row("RA,DEC,MAKE_RGB_STIFF", &format!("1,2,{cell}"));
            assert_eq!(row.options.make_rgb_stiff, Some(want), "{cell}");
        }
        assert_eq!(
            row_errors("RA,DEC,MAKE_FITS", "1,2,2"),
            vec![format!(
                "line 2: MAKE_FITS: \"2\" is not valid: {}",
                flag::FLAG_RULE
            )]
        );
    }

    #[test]
    fn filters_syntax() {
        let f = |s: &str| parse_filters(s, true);
        let gri: Vec<String> = vec!["g".into(), "r".into(), "i".into()];
        assert_eq!(f("g,r,i").unwrap(), gri);
        assert_eq!(f("g r  i").unwrap(), gri);
        assert_eq!(f("gri").unwrap(), gri);
        assert_eq!(f("g,r,i,g").unwrap(), gri);
        assert_eq!(f("grizY").unwrap().len(), 5);
        assert_eq!(f("all").unwrap(), Vec::<String>::new());
        assert_eq!(f("ALL").unwrap(), Vec::<String>::new());
        // A name of several letters needs a separator to stay whole.
        assert_eq!(f("Ks,").unwrap(), vec!["Ks".to_string()]);
        assert_eq!(f("Ks,J").unwrap(), vec!["Ks".to_string(), "J".to_string()]);
        assert!(
            f("g,all")
                .unwrap_err()
                .contains("\"all\" cannot be combined")
        );
        assert!(f("g;r").is_err());
        assert!(
            f("g,r;i")
                .unwrap_err()
                .contains("\"r;i\" is not a filter name")
        );
        assert!(f(",").is_err());
        assert_eq!(
            row_errors("RA,DEC,FILTERS", "1,2,g/r"),
            vec![format!(
                "line 2: FILTERS: \"g/r\" is not valid: {FILTERS_REASON}"
            )]
        );
    }

    #[test]
    fn rgb_colors_and_lupton_parameters() {
        let row = one_row(
            "RA,DEC,RGB_COLORS,RGB_MINIMUM,RGB_STRETCH,RGB_Q",
            "1,2,zir,-0.5,0.1,0",
        );
        assert_eq!(
            row.options.rgb_colors,
            Some(["z", "i", "r"].map(String::from))
        );
        assert_eq!(row.options.rgb_minimum, Some(-0.5));
        assert_eq!(
            (row.options.rgb_stretch, row.options.rgb_q),
            (Some(0.1), Some(0.0))
        );
        assert_eq!(
            row_errors("RA,DEC,RGB_COLORS", "1,2,\"i,r\""),
            vec![format!(
                "line 2: RGB_COLORS: \"i,r\" is not valid: {RGB_REASON}; found 2"
            )]
        );
        assert_eq!(row_errors("RA,DEC,RGB_COLORS", "1,2,grizY").len(), 1);
        assert_eq!(row_errors("RA,DEC,RGB_COLORS", "1,2,all").len(), 1);
        // Several bad cells on one row: one error each, in column order.
        assert_eq!(
            row_errors("RA,DEC,RGB_MINIMUM,RGB_STRETCH,RGB_Q", "1,2,x,0,-1"),
            vec![
                "line 2: RGB_MINIMUM: \"x\" is not valid: expected a number",
                "line 2: RGB_STRETCH: \"0\" is not valid: expected a number greater than 0",
                "line 2: RGB_Q: \"-1\" is not valid: expected a number of at least 0",
            ]
        );
    }

    #[test]
    fn max_rows() {
        let l = Limits {
            max_rows: 3,
            ..limits()
        };
        let ok = "RA,DEC\n1,1\n2,2\nbad,3\n";
        assert_eq!(parse_positions(ok, &l).unwrap().rows.len(), 2);
        let err = parse_positions(&format!("{ok}4,4\n5,5\n"), &l).unwrap_err();
        assert_eq!(err, FileError::TooManyRows { rows: 5, limit: 3 });
        assert_eq!(
            err.to_string(),
            "the file has 5 rows of positions; a job may have at most 3: split it into several jobs"
        );
    }

    #[test]
    fn header_errors() {
        let allowed = "RA, DEC, SLID, SID, NAME, ID, XSIZE, YSIZE, FILTERS, CLASSES, MAKE_FITS, \
                       MAKE_PNG, MAKE_RGB_LUPTON, MAKE_RGB_STIFF, RGB_COLORS, RGB_MINIMUM, \
                       RGB_STRETCH, RGB_Q";
        assert_eq!(
            file_error("# c\nRA,DEC,MAG\n1,2,3\n").to_string(),
            format!("header (line 2): unknown column \"MAG\"; the columns are: {allowed}")
        );
        assert_eq!(
            file_error("RA,DEC,\n1,2,\n").to_string(),
            format!(
                "header (line 1): column 3 has no name; remove the extra comma or name the \
                 column ({allowed})"
            )
        );
        assert_eq!(
            file_error("RA,DEC,ra\n").to_string(),
            "header (line 1): column RA appears more than once"
        );
        assert_eq!(
            file_error("RA,DEC,NAME,ID\n").to_string(),
            "header (line 1): NAME and ID are the same column (the row's label); keep one"
        );
        assert_eq!(
            file_error("RA,SLID,SID\n").to_string(),
            "header (line 1): column RA needs column DEC too"
        );
        assert_eq!(
            file_error("RA,DEC,SID\n").to_string(),
            "header (line 1): column SID needs column SLID too"
        );
        assert_eq!(
            file_error("NAME,XSIZE\n").to_string(),
            "header (line 1): the columns must include RA and DEC (sky positions) or SLID and \
             SID (catalogue sources); found: NAME, XSIZE"
        );
        for empty in ["", "\u{feff}", "\n\n", "# only\n# comments\n", ",,\n"] {
            assert_eq!(file_error(empty), FileError::NoHeader, "{empty:?}");
        }
        assert_eq!(
            file_error("\nRA,DEC\n# nothing\n").to_string(),
            "the file has a header (line 2) but no rows of positions"
        );
    }

    #[test]
    fn write_positions_round_trip() {
        let records = vec![
            PositionRecord {
                index: 0,
                line: 2,
                name: Some("M31, \"the\" galaxy\nline two".into()),
                ra: Some(10.684708333333333),
                dec: Some(41.26875),
                slid: None,
                sid: None,
                xsize: 1.0,
                ysize: 0.1 + 0.2,
                status: "ok".into(),
                files: 7,
            },
            PositionRecord {
                index: 2,
                line: 4,
                name: None,
                ra: None,
                dec: None,
                slid: Some(12),
                sid: Some(-3),
                xsize: 2.5,
                ysize: 2.5,
                status: "error: source not found".into(),
                files: 0,
            },
        ];
        let text = write_positions_csv(&records);
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(header, POSITIONS_HEADER);
        let mut back = Vec::new();
        for rec in reader.records() {
            let rec = rec.unwrap();
            let opt_f = |s: &str| (!s.is_empty()).then(|| s.parse::<f64>().unwrap());
            let opt_i = |s: &str| (!s.is_empty()).then(|| s.parse::<i64>().unwrap());
            back.push(PositionRecord {
                index: rec[0].parse().unwrap(),
                line: rec[1].parse().unwrap(),
                name: (!rec[2].is_empty()).then(|| rec[2].to_string()),
                ra: opt_f(&rec[3]),
                dec: opt_f(&rec[4]),
                slid: opt_i(&rec[5]),
                sid: opt_i(&rec[6]),
                xsize: rec[7].parse().unwrap(),
                ysize: rec[8].parse().unwrap(),
                status: rec[9].to_string(),
                files: rec[10].parse().unwrap(),
            });
        }
        assert_eq!(back, records);
        assert_eq!(
            write_positions_csv(&[]),
            "INDEX,LINE,NAME,RA,DEC,SLID,SID,XSIZE,YSIZE,STATUS,FILES\r\n"
        );
    }

    #[test]
    fn long_values_are_cut_short_in_messages() {
        let long = "x".repeat(500);
        let errs = row_errors("RA,DEC", &format!("{long},0"));
        assert!(errs[0].len() < 200, "{}", errs[0]);
        assert!(errs[0].contains('…'));
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(text in any::<String>()) {
            let _ = parse_positions(&text, &limits());
        }

        /// CSV-shaped noise under a valid header reaches the row parser; every
        /// line number it reports must exist in the file.
        #[test]
        fn csv_like_rows_never_panic(
            body in "[0-9a-zA-Z:.,+\\- \"#\\r\\n\u{feff}]{0,300}",
        ) {
            let text = format!(
                "RA,DEC,SLID,SID,NAME,XSIZE,FILTERS,CLASSES,MAKE_PNG,RGB_COLORS,RGB_Q\n{body}"
            );
            if let Ok(p) = parse_positions(&text, &limits()) {
                let lines = normalize_line_ends(&text).lines().count().max(1);
                for r in &p.rows {
                    prop_assert!(r.line >= 2 && r.line <= lines);
                }
                for e in &p.errors {
                    prop_assert!(e.line >= 2 && e.line <= lines, "{e} of {lines}");
                }
            }
        }

        #[test]
        fn arbitrary_pairs_never_panic(
            list in proptest::collection::vec(("[A-Za-z_ ]{0,16}", "\\PC{0,20}"), 0..6),
        ) {
            let _ = Options::from_pairs(&list, &limits())
                .map(|o| Options::system_defaults().layer(&o).resolve());
        }
    }
}
