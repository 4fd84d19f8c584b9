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

    /// Like [`QueryParams::parse`] for the VO services, which must ignore
    /// parameters they do not know (DALI 1.1 §3.1): those are returned
    /// apart, for the answer to name, instead of being an error. `allowed`
    /// is compared without regard to case.
    pub fn parse_lenient(
        raw: Option<&str>,
        allowed: &[&str],
    ) -> Result<(Self, Vec<String>), ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
            .map_err(|e| ApiError::bad(format!("the query string is malformed: {e}")))?;
        let mut map = HashMap::new();
        let mut ignored = Vec::new();
        for (k, v) in pairs {
            let key = k.to_ascii_lowercase();
            if !allowed.iter().any(|a| a.eq_ignore_ascii_case(&key)) {
                ignored.push(params::shown(&k));
                continue;
            }
            if map.insert(key, v).is_some() {
                return Err(ApiError::bad(format!(
                    "{}: given more than once",
                    params::shown(&k)
                )));
            }
        }
        Ok((Self(map), ignored))
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
/// The parameters of a job submission (`POST`): the query string and,
/// when the body is a form (`application/x-www-form-urlencoded`), the
/// body, joined into one query string for [`QueryParams::parse`] (a name
/// given in both is "given more than once"). Scripts may thus put
/// everything in the URL (`curl -X POST 'URL?…'`) or send a form.
pub fn submission(
    query: Option<&str>,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> Result<String, ApiError> {
    let mut joined = query.unwrap_or("").to_owned();
    if !body.is_empty() {
        let form = headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            })
            .unwrap_or(false);
        if !form {
            return Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Type: a submission's body must be application/x-www-form-urlencoded \
                 (or send no body and put the parameters in the URL)",
            ));
        }
        let text =
            std::str::from_utf8(body).map_err(|_| ApiError::bad("the form body is not UTF-8"))?;
        if !joined.is_empty() && !text.is_empty() {
            joined.push('&');
        }
        joined.push_str(text);
    }
    Ok(joined)
}

/// The answer to a `GET` of an endpoint that submits jobs: 405 with
/// `Allow: POST` and how to submit. Jobs never start on a GET: crawlers,
/// link prefetchers and previews follow GETs.
pub fn submit_with_post(path: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut r = ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method: {path} starts a job, which needs POST (a GET never starts work); \
             send the same parameters with POST, in the URL or as a form body"
        ),
    )
    .into_response();
    r.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static("POST"),
    );
    r
}
