//! Sky positions as users type them: decimal degrees, or sexagesimal hours
//! (RA) and degrees (Dec) with `:`, spaces or `h m s` / `d m s` / `° ' "`
//! between the fields.
//!
//! The rules are strict on purpose: only the last field may have a fraction
//! and later fields must be below 60, so that a typo such as `12.5:30`
//! is an error instead of a position somewhere else on the sky. RA is
//! returned in [0, 360) and Dec in [−90, 90]; nothing is wrapped or clamped.

use super::ParamError;

/// What a right ascension must look like.
pub const RA_RULE: &str =
    "expected decimal degrees in [0, 360) or sexagesimal hours like 12:34:56.7";

/// What a declination must look like.
pub const DEC_RULE: &str =
    "expected decimal degrees in [-90, 90] or sexagesimal degrees like -01:02:03";

/// A right ascension in degrees, in [0, 360); the error is [`RA_RULE`].
pub fn parse_ra(text: &str) -> Result<f64, &'static str> {
    match parse_angle(text.trim(), 15.0) {
        // `+ 0.0` turns -0 into 0, so "-0" never prints as "-0" later.
        Some(v) if (0.0..360.0).contains(&v) => Ok(v + 0.0),
        _ => Err(RA_RULE),
    }
}

/// A declination in degrees, in [−90, 90]; the error is [`DEC_RULE`].
pub fn parse_dec(text: &str) -> Result<f64, &'static str> {
    match parse_angle(text.trim(), 1.0) {
        Some(v) if (-90.0..=90.0).contains(&v) => Ok(v + 0.0),
        _ => Err(DEC_RULE),
    }
}

/// [`parse_ra`] as a request parameter named `param`.
pub fn ra(param: &'static str, text: &str) -> Result<f64, ParamError> {
    parse_ra(text).map_err(|rule| ParamError::invalid(param, text, rule))
}

/// [`parse_dec`] as a request parameter named `param`.
pub fn dec(param: &'static str, text: &str) -> Result<f64, ParamError> {
    parse_dec(text).map_err(|rule| ParamError::invalid(param, text, rule))
}

/// A decimal number of degrees, or up to three sexagesimal fields whose first
/// is in units of `unit` degrees (15 for hours of RA, 1 for degrees).
fn parse_angle(text: &str, unit: f64) -> Option<f64> {
    if let Ok(v) = text.parse::<f64>() {
        return v.is_finite().then_some(v);
    }
    let (negative, body) = match text.strip_prefix('-') {
        Some(body) => (true, body),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let fields: Vec<&str> = body
        .split(|c: char| c == ':' || c.is_whitespace() || "hdms°'\"".contains(c))
        .filter(|f| !f.is_empty())
        .collect();
    if fields.is_empty() || fields.len() > 3 {
        return None;
    }
    let mut degrees = 0.0;
    let mut scale = 1.0;
    for (i, field) in fields.iter().enumerate() {
        let last = i + 1 == fields.len();
        let allowed = |b: u8| b.is_ascii_digit() || (last && b == b'.');
        if !field.bytes().all(allowed) {
            return None;
        }
        let v: f64 = field.parse().ok()?;
        if i > 0 && v >= 60.0 {
            return None;
        }
        degrees += v / scale;
        scale *= 60.0;
    }
    let v = degrees * unit;
    v.is_finite().then_some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decimal_and_sexagesimal() {
        assert_eq!(parse_ra("150.25").unwrap(), 150.25);
        let ra = parse_ra("12:34:56.7").unwrap();
        assert!((ra - (12.0 + 34.0 / 60.0 + 56.7 / 3600.0) * 15.0).abs() < 1e-9);
        for s in ["12h30m00s", "12 30", "12:30", "12h30m"] {
            assert_eq!(parse_ra(s).unwrap(), 187.5, "{s}");
        }
        let dec = parse_dec("-01:02:03").unwrap();
        assert!((dec + (1.0 + 2.0 / 60.0 + 3.0 / 3600.0)).abs() < 1e-9);
        assert_eq!(parse_dec("-00:30:00").unwrap(), -0.5);
        assert_eq!(parse_dec("+45d30m").unwrap(), 45.5);
        assert_eq!(parse_dec("-0").unwrap().to_bits(), 0.0f64.to_bits());
    }

    #[test]
    fn out_of_range_and_typos_are_errors() {
        for s in [
            "360", "-1", "24:00:00", "12.5:30", "12:60:00", "12:30:60", "1:2:3:4", "", "abc",
            "nan", "inf",
        ] {
            assert_eq!(parse_ra(s), Err(RA_RULE), "{s:?}");
        }
        for s in ["90.0001", "-91", "95", "-90:00:01", "1:2:3:4"] {
            assert_eq!(parse_dec(s), Err(DEC_RULE), "{s:?}");
        }
        assert_eq!(parse_dec("90").unwrap(), 90.0);
        let e = ra("ra", &"9".repeat(400)).unwrap_err();
        assert!(e.to_string().starts_with("ra: \"9999"));
        assert!(e.to_string().len() < 200);
    }

    proptest! {
        #[test]
        fn any_text_is_a_position_in_range_or_an_error(s in "\\PC{0,24}") {
            if let Ok(v) = parse_ra(&s) {
                prop_assert!((0.0..360.0).contains(&v));
            }
            if let Ok(v) = parse_dec(&s) {
                prop_assert!((-90.0..=90.0).contains(&v));
            }
        }

        #[test]
        fn sexagesimal_round_trips(h in 0u32..24, m in 0u32..60, s in 0.0f64..59.99) {
            let text = format!("{h:02}:{m:02}:{s:05.2}");
            let want = (f64::from(h) + f64::from(m) / 60.0 + (s * 100.0).round() / 100.0 / 3600.0) * 15.0;
            prop_assert!((parse_ra(&text).unwrap() - want).abs() < 1e-6);
        }
    }
}
