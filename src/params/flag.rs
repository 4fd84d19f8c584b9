//! Booleans: one spelling list for every front end (query strings, forms,
//! batch CSV cells, table conditions on boolean columns).

use super::ParamError;

/// What a boolean must look like.
pub const FLAG_RULE: &str = "expected true or false (also accepted: yes/no, y/n, t/f, on/off, 1/0)";

/// `true`/`false` and their accepted synonyms, case-insensitively; the
/// error is [`FLAG_RULE`].
pub fn parse_flag(text: &str) -> Result<bool, &'static str> {
    const TRUE: [&str; 6] = ["true", "t", "yes", "y", "on", "1"];
    const FALSE: [&str; 6] = ["false", "f", "no", "n", "off", "0"];
    let t = text.trim();
    if TRUE.iter().any(|w| w.eq_ignore_ascii_case(t)) {
        Ok(true)
    } else if FALSE.iter().any(|w| w.eq_ignore_ascii_case(t)) {
        Ok(false)
    } else {
        Err(FLAG_RULE)
    }
}

/// [`parse_flag`] as a request parameter named `param`.
pub fn flag(param: &'static str, text: &str) -> Result<bool, ParamError> {
    parse_flag(text).map_err(|rule| ParamError::invalid(param, text, rule))
}

/// A flag that may be given bare (`?invert` or `invert=`): absent is
/// false, present without a value is true, otherwise [`parse_flag`].
pub fn present_flag(param: &'static str, text: Option<&str>) -> Result<bool, ParamError> {
    match text {
        None => Ok(false),
        Some(t) if t.trim().is_empty() => Ok(true),
        Some(t) => flag(param, t),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_vocabulary() {
        for t in ["true", "TRUE", " yes ", "y", "t", "on", "1"] {
            assert_eq!(parse_flag(t), Ok(true), "{t}");
        }
        for f in ["false", "No", "n", "f", "off", "0"] {
            assert_eq!(parse_flag(f), Ok(false), "{f}");
        }
        for bad in ["", "2", "yess", "oui"] {
            assert_eq!(parse_flag(bad), Err(FLAG_RULE), "{bad}");
        }
        assert_eq!(present_flag("invert", None), Ok(false));
        assert_eq!(present_flag("invert", Some("")), Ok(true));
        assert_eq!(present_flag("invert", Some("0")), Ok(false));
        assert_eq!(
            flag("invert", "maybe").unwrap_err().to_string(),
            format!("invert: \"maybe\" is not valid: {FLAG_RULE}")
        );
    }
}
