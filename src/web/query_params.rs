//! Query strings as the script-facing endpoints read them: parameter names
//! are case-insensitive (as in fitscut), each may appear once, and an
//! unknown name is a 400 naming it, never ignored — a typo such as
//! `strech=asinh` must not silently give a linear picture. Values are read
//! with the one vocabulary of [`crate::params`].

use std::collections::HashMap;

use super::ApiError;
use crate::params::{self, flag};

/// Query parameters with case-insensitive names, each given at most once and
/// each one of an allowed set.
#[derive(Debug)]
pub struct QueryParams(HashMap<String, String>);

impl QueryParams {
    /// Parses a raw query string, checking names against `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Self, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad(format!("the query string is malformed: {e}")))?;
        let mut map = HashMap::new();
        for (k, v) in pairs {
            let key = k.to_ascii_lowercase();
            if !allowed.contains(&key.as_str()) {
                return Err(ApiError::bad(format!(
                    "{}: unknown parameter; allowed: {}",
                    params::shown(&k),
                    allowed.join(", ")
                )));
            }
            if map.insert(key, v).is_some() {
                return Err(ApiError::bad(format!(
                    "{}: given more than once",
                    params::shown(&k)
                )));
            }
        }
        Ok(Self(map))
    }

    /// The value of `name` (lower case), if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// The value of `name` unless absent or blank.
    pub fn given(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|v| !v.trim().is_empty())
    }

    /// A finite number, if given (and not blank).
    pub fn number(&self, name: &'static str) -> Result<Option<f64>, ApiError> {
        Ok(self
            .given(name)
            .map(|v| params::number(name, v))
            .transpose()?)
    }

    /// A whole number, if given (and not blank).
    pub fn whole_number(&self, name: &'static str) -> Result<Option<i64>, ApiError> {
        Ok(self
            .given(name)
            .map(|v| params::whole_number(name, v))
            .transpose()?)
    }

    /// A flag: absent is false, bare (`&invert`) is true, otherwise the
    /// boolean vocabulary.
    pub fn flag(&self, name: &'static str) -> Result<bool, ApiError> {
        Ok(flag::present_flag(name, self.get(name))?)
    }
}
