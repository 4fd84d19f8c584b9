//! How values look in the dbviewer's HTML: one place that decides, from a
//! column's kind, how many digits a number gets.
//!
//! The catalogue keeps doubles at full precision, and so do the CSV, JSON
//! and VOTable exports (`Cell::display` / `Cell::json`). A browser table is
//! read by eye, where `150.13068865329322` pushes columns off the screen and
//! says nothing `150.130689` does not: positions get 1e-6 deg (≈ 4 mas, below
//! any astrometric error here) or sexagesimal on request, pixel positions
//! and arcsec two decimals, magnitudes three, MJDs five (≈ 1 s), other numbers four
//! significant digits. The shown text never hides a value: the full one goes
//! into the cell's `title`.

use crate::catalog::browse::{Cell, ColType, Column};

/// How a column's numbers are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Right ascension, degrees.
    Ra,
    /// Declination, degrees.
    Dec,
    /// A position or length in pixels.
    Pixel,
    /// A magnitude, its error or a zero point.
    Magnitude,
    /// An angle in arcsec (seeing, a search distance).
    Arcsec,
    /// A modified Julian date.
    Mjd,
    /// Any other floating-point number.
    Float,
    /// Integers, text, times and flags: shown as they are.
    Exact,
}

/// The kind of `column`, from its name, unit and type.
pub fn kind(column: &Column) -> Kind {
    if column.ty != ColType::Float {
        return Kind::Exact;
    }
    match (column.name, column.unit) {
        ("ra", _) => Kind::Ra,
        ("dec", _) => Kind::Dec,
        (_, "pixel") => Kind::Pixel,
        (_, "mag") => Kind::Magnitude,
        (_, "arcsec") => Kind::Arcsec,
        ("mjd_obs", _) | (_, "d") => Kind::Mjd,
        _ => Kind::Float,
    }
}

/// How positions are written: decimal degrees or sexagesimal (`coords=sex`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Coords {
    /// Decimal degrees, 1e-6 deg.
    #[default]
    Degrees,
    /// RA `hh:mm:ss.sss`, Dec `±dd:mm:ss.ss`.
    Sexagesimal,
}

impl Coords {
    /// The values of the `coords` parameter.
    pub const ALLOWED: &'static str = "deg, sex";

    /// Reads `coords=deg|sex`; the error names the parameter and the choices.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "" | "deg" | "degrees" | "decimal" => Ok(Self::Degrees),
            "sex" | "sexagesimal" | "hms" => Ok(Self::Sexagesimal),
            _ => Err(format!(
                "coords: {:?} is not a way to write positions; allowed: {}",
                crate::params::shown(text),
                Self::ALLOWED
            )),
        }
    }

    /// The parameter value, as kept in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Self::Degrees => "deg",
            Self::Sexagesimal => "sex",
        }
    }
}

/// A value as shown: the text, and the full value when the text rounds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// What the cell shows.
    pub text: String,
    /// The full-precision value (as the exports write it), when it differs.
    pub full: Option<String>,
}

/// `cell` of a column of `kind`, written for people.
pub fn show(kind: Kind, cell: &Cell, coords: Coords) -> Shown {
    let full = cell.display();
    let text = match (kind, cell) {
        (_, Cell::Float(v)) if !v.is_finite() => full.clone(),
        (Kind::Ra, Cell::Float(v)) => match coords {
            Coords::Degrees => format!("{v:.6}"),
            Coords::Sexagesimal => ra_hms(*v),
        },
        (Kind::Dec, Cell::Float(v)) => match coords {
            Coords::Degrees => format!("{v:.6}"),
            Coords::Sexagesimal => dec_dms(*v),
        },
        (Kind::Pixel | Kind::Arcsec, Cell::Float(v)) => format!("{v:.2}"),
        (Kind::Magnitude, Cell::Float(v)) => format!("{v:.3}"),
        (Kind::Mjd, Cell::Float(v)) => trim_zeros(format!("{v:.5}")),
        (Kind::Float, Cell::Float(v)) => significant(*v, 4),
        _ => full.clone(),
    };
    let full = (text != full).then_some(full);
    Shown { text, full }
}

/// The unit shown beside a value of `kind` whose column's unit is `unit`:
/// sexagesimal positions are no longer in degrees.
pub fn unit(kind: Kind, coords: Coords, unit: &'static str) -> &'static str {
    match (kind, coords) {
        (Kind::Ra, Coords::Sexagesimal) => "h:m:s",
        (Kind::Dec, Coords::Sexagesimal) => "d:m:s",
        _ => unit,
    }
}

/// `v` to `digits` significant digits, trailing zeros dropped; the integer
/// part is never rounded (an exposure of 12345 s stays 12345), and values
/// below 1e-3 use an exponent (`3.766e-5`).
fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let magnitude = v.abs().log10().floor() as i32;
    if magnitude < -3 {
        let s = format!("{:.*e}", (digits - 1) as usize, v);
        // `3.7660e-5` → `3.766e-5`.
        return match s.split_once('e') {
            Some((m, e)) => format!("{}e{e}", trim_zeros(m.to_owned())),
            None => s,
        };
    }
    let decimals = (digits - 1 - magnitude).max(0) as usize;
    trim_zeros(format!("{v:.decimals$}"))
}

/// `12.3400` → `12.34`, `61000.00000` → `61000`.
fn trim_zeros(s: String) -> String {
    if !s.contains('.') {
        return s;
    }
    let t = s.trim_end_matches('0').trim_end_matches('.');
    if t == "-0" { "0".into() } else { t.to_owned() }
}

/// Whole units, minutes and seconds of `value` with `decimals` second
/// decimals, carried so that seconds never print as 60.
fn sexagesimal(value: f64, decimals: usize) -> (u64, u64, f64) {
    let scale = 10f64.powi(decimals as i32);
    let total = (value * 3600.0 * scale).round() / scale;
    let whole = (total / 3600.0).floor();
    let rest = total - whole * 3600.0;
    let minutes = (rest / 60.0).floor();
    let seconds = rest - minutes * 60.0;
    (whole as u64, minutes as u64, seconds.max(0.0))
}

/// RA in degrees as `hh:mm:ss.sss` (1 ms of time = 0.015 arcsec).
pub fn ra_hms(ra_deg: f64) -> String {
    let (h, m, s) = sexagesimal(ra_deg.rem_euclid(360.0) / 15.0, 3);
    // 359.9999999 deg rounds up to 24:00:00.000, which is 00:00:00.000.
    format!("{:02}:{m:02}:{s:06.3}", h % 24)
}

/// Dec in degrees as `±dd:mm:ss.ss` (0.01 arcsec).
pub fn dec_dms(dec_deg: f64) -> String {
    let (d, m, s) = sexagesimal(dec_deg.abs(), 2);
    let sign = if dec_deg < 0.0 && (d, m, s) != (0, 0, 0.0) {
        '-'
    } else {
        '+'
    };
    format!("{sign}{d:02}:{m:02}:{s:05.2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::browse::Table;
    use crate::ids::Slid;
    use crate::model::FrameClass;
    use crate::params::angle;

    fn column(table: Table, name: &str) -> &'static Column {
        table.column(name).unwrap()
    }

    fn shown(kind: Kind, v: f64) -> String {
        show(kind, &Cell::Float(v), Coords::Degrees).text
    }

    #[test]
    fn columns_have_the_kinds_their_units_say() {
        let sources = Table::Sources(Slid(1));
        let frames = Table::Frames(FrameClass::ReducedScienceFrame);
        for (t, name, k) in [
            (sources, "ra", Kind::Ra),
            (sources, "dec", Kind::Dec),
            (frames, "ra", Kind::Ra),
            (sources, "x", Kind::Pixel),
            (sources, "fwhm", Kind::Pixel),
            (sources, "mag_auto", Kind::Magnitude),
            (sources, "magerr_auto", Kind::Magnitude),
            (frames, "zeropoint", Kind::Magnitude),
            (frames, "mjd_obs", Kind::Mjd),
            (frames, "seeing", Kind::Arcsec),
            (sources, "class_star", Kind::Float),
            (frames, "exptime", Kind::Float),
            (sources, "sid", Kind::Exact),
            (frames, "date_obs", Kind::Exact),
            (frames, "filename", Kind::Exact),
        ] {
            assert_eq!(kind(column(t, name)), k, "{name}");
        }
    }

    #[test]
    fn numbers_get_the_digits_of_their_kind() {
        assert_eq!(shown(Kind::Ra, 150.13068865329322), "150.130689");
        assert_eq!(shown(Kind::Dec, -2.0000004), "-2.000000");
        assert_eq!(shown(Kind::Pixel, 1023.456789), "1023.46");
        assert_eq!(shown(Kind::Magnitude, 21.23456), "21.235");
        assert_eq!(shown(Kind::Arcsec, 0.86129), "0.86");
        assert_eq!(shown(Kind::Magnitude, 0.0037663383822674), "0.004");
        assert_eq!(shown(Kind::Mjd, 61000.123456789), "61000.12346");
        assert_eq!(shown(Kind::Mjd, 61000.0), "61000");
        assert_eq!(shown(Kind::Float, 0.0037663383822674), "0.003766");
        assert_eq!(shown(Kind::Float, 0.98), "0.98");
        assert_eq!(shown(Kind::Float, 300.0), "300");
        assert_eq!(shown(Kind::Float, 12345.678), "12346");
        assert_eq!(shown(Kind::Float, -1.23456), "-1.235");
        assert_eq!(shown(Kind::Float, 3.766e-5), "3.766e-5");
        assert_eq!(shown(Kind::Float, 0.0), "0");
        assert_eq!(shown(Kind::Float, f64::NAN), "NaN");
    }

    #[test]
    fn rounded_values_keep_the_full_one_and_others_are_untouched() {
        let s = show(Kind::Ra, &Cell::Float(150.13068865329322), Coords::Degrees);
        assert_eq!(s.full.as_deref(), Some("150.13068865329322"));
        let s = show(Kind::Float, &Cell::Float(300.0), Coords::Degrees);
        assert_eq!((s.text.as_str(), s.full), ("300", None));
        for cell in [Cell::Int(42), Cell::Text("r".into()), Cell::Null] {
            let s = show(Kind::Exact, &cell, Coords::Sexagesimal);
            assert_eq!((s.text, s.full), (cell.display(), None));
        }
    }

    #[test]
    fn sexagesimal_positions_read_back_within_their_rounding() {
        assert_eq!(ra_hms(150.13068865329322), "10:00:31.365");
        assert_eq!(dec_dms(2.2), "+02:12:00.00");
        assert_eq!(dec_dms(-0.5), "-00:30:00.00");
        // Carries: seconds and minutes never print as 60.
        assert_eq!(ra_hms(359.99999999), "00:00:00.000");
        assert_eq!(ra_hms(14.99999999), "01:00:00.000");
        assert_eq!(dec_dms(-0.000000001), "+00:00:00.00");
        for i in 0..2000 {
            let ra = f64::from(i) * 0.179_999_7;
            let dec = -89.9 + f64::from(i) * 0.089_9;
            let back_ra = angle::parse_ra(&ra_hms(ra)).unwrap();
            let back_dec = angle::parse_dec(&dec_dms(dec)).unwrap();
            let dra = (back_ra - ra).abs().min(360.0 - (back_ra - ra).abs());
            assert!(dra * 3600.0 <= 0.0076, "{ra} → {}", ra_hms(ra));
            assert!((back_dec - dec).abs() * 3600.0 <= 0.0051, "{dec}");
        }
        let s = show(Kind::Dec, &Cell::Float(-2.5), Coords::Sexagesimal);
        assert_eq!(s.text, "-02:30:00.00");
    }

    #[test]
    fn sexagesimal_positions_are_not_labelled_degrees() {
        assert_eq!(unit(Kind::Ra, Coords::Sexagesimal, "deg"), "h:m:s");
        assert_eq!(unit(Kind::Dec, Coords::Sexagesimal, "deg"), "d:m:s");
        assert_eq!(unit(Kind::Ra, Coords::Degrees, "deg"), "deg");
        assert_eq!(unit(Kind::Float, Coords::Sexagesimal, "deg"), "deg");
    }

    #[test]
    fn the_coords_parameter_names_its_choices() {
        assert_eq!(Coords::parse("sex"), Ok(Coords::Sexagesimal));
        assert_eq!(Coords::parse("DEG"), Ok(Coords::Degrees));
        let e = Coords::parse("radians").unwrap_err();
        assert!(e.starts_with("coords:") && e.contains("deg, sex"), "{e}");
    }
}
