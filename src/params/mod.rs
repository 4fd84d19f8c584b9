//! The one vocabulary of request parameters: how every front end (HTTP
//! query strings and forms, the command line, the batch CSV, the VO
//! protocols) turns text into angles, sizes, booleans, frame classes,
//! formats, rendering choices and id ranges.
//!
//! One parser per concept means one set of rules a user has to learn (a
//! sexagesimal RA is read the same in a URL and in a CSV cell) and one
//! wording of every error. Parsers here return a [`ParamError`] naming the
//! parameter and the allowed values; front ends only map it to their own
//! error form (a 400 `text/plain` line, a DALI `UsageError`, a CSV line
//! error, a CLI message).
//!
//! Values are echoed back through [`shown`], which truncates them, so a
//! 309-digit number or a pasted paragraph never becomes the error message.

pub mod angle;
pub mod cutout;
pub mod flag;
pub mod id_ranges;
pub mod rendering;

/// A rejected request parameter: which one and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {message}")]
pub struct ParamError {
    /// The parameter's name, as the user wrote it in a URL or a CSV header.
    pub param: &'static str,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ParamError {
    /// An error about `param`.
    pub fn new(param: &'static str, message: impl Into<String>) -> Self {
        Self {
            param,
            message: message.into(),
        }
    }

    /// `value` broke `rule` (a phrase such as "expected true or false").
    pub fn invalid(param: &'static str, value: &str, rule: &str) -> Self {
        Self::new(param, format!("{:?} is not valid: {rule}", shown(value)))
    }
}

/// How many characters of a rejected value an error message repeats.
pub const SHOWN_CHARS: usize = 40;

/// `value` as error messages repeat it: at most [`SHOWN_CHARS`] characters.
pub fn shown(value: &str) -> String {
    if value.chars().count() <= SHOWN_CHARS {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(SHOWN_CHARS).collect();
        s.push('…');
        s
    }
}

/// Longest word an error message carries whole; see [`cut_long_words`].
pub const LONGEST_WORD: usize = 60;

/// `message` with every word (a run without spaces) longer than
/// [`LONGEST_WORD`] characters cut to [`SHOWN_CHARS`] and `…`. The edge
/// applies it to every error message, as a net under [`shown`]: a value
/// repeated from a path segment or a library's error text must not send a
/// client's megabyte back to it (nor into the log).
pub fn cut_long_words(message: &str) -> std::borrow::Cow<'_, str> {
    if !message
        .split(char::is_whitespace)
        .any(|w| w.chars().count() > LONGEST_WORD)
    {
        return std::borrow::Cow::Borrowed(message);
    }
    let mut out = String::with_capacity(message.len().min(4096));
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.chars().count() > LONGEST_WORD {
            out.push_str(&shown(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in message.chars() {
        if c.is_whitespace() {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    std::borrow::Cow::Owned(out)
}

/// A finite decimal number (`NaN`, `inf` and overflowing values are errors).
pub fn number(param: &'static str, text: &str) -> Result<f64, ParamError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(|| ParamError::invalid(param, text, "expected a finite number"))
}

/// A whole number that fits in 64 bits.
pub fn whole_number(param: &'static str, text: &str) -> Result<i64, ParamError> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| ParamError::invalid(param, text, "expected a whole number"))
}

/// One of a fixed set of names (case-insensitive; `choices` pairs each
/// accepted spelling with its value, the first spelling of a value being the
/// one the error lists).
pub fn choice<T: Copy + PartialEq>(
    param: &'static str,
    text: &str,
    choices: &[(&str, T)],
) -> Result<T, ParamError> {
    let t = text.trim();
    choices
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(t))
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let mut names: Vec<&str> = Vec::new();
            for (i, (name, v)) in choices.iter().enumerate() {
                if !choices[..i].iter().any(|(_, w)| w == v) {
                    names.push(name);
                }
            }
            ParamError::new(
                param,
                format!(
                    "{:?} is not allowed; allowed: {}",
                    shown(t),
                    names.join(", ")
                ),
            )
        })
}

#[cfg(test)]
mod tests {

    #[test]
    fn long_words_are_cut_and_short_ones_kept() {
        assert_eq!(
            cut_long_words("frame: no such frame 12"),
            "frame: no such frame 12"
        );
        let long = "9".repeat(300);
        let message = format!("frame: \"{long}\" is not an id");
        let cut = cut_long_words(&message);
        assert_eq!(cut, format!("frame: \"{}… is not an id", "9".repeat(39)));
        let url = "http://example.org/a/very/long/but/legitimate/path/of/59/ch";
        assert_eq!(cut_long_words(url), url);
    }

    use super::*;

    #[test]
    fn numbers_are_finite_and_errors_are_short() {
        assert_eq!(number("size", " 12.5 ").unwrap(), 12.5);
        for bad in ["nan", "inf", "-inf", "1e400", "", "twelve"] {
            let e = number("size", bad).unwrap_err();
            assert_eq!(e.param, "size");
            assert!(e.message.contains("finite number"), "{e}");
        }
        let huge = "9".repeat(309);
        let e = whole_number("page", &huge).unwrap_err();
        assert!(e.to_string().len() < 100, "{e}");
        assert!(e.message.contains('…'));
    }

    #[test]
    fn choices_list_one_spelling_per_value() {
        let c = [("json", 0), ("csv", 1), ("text/csv", 1)];
        assert_eq!(choice("format", "CSV", &c).unwrap(), 1);
        assert_eq!(choice("format", "text/csv", &c).unwrap(), 1);
        let e = choice("format", "xml", &c).unwrap_err();
        assert_eq!(
            e.to_string(),
            "format: \"xml\" is not allowed; allowed: json, csv"
        );
    }
}
