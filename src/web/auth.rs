//! Who a request comes from, decided once at the edge: [`identify`] reads
//! the session cookie, an `Authorization: Bearer` API token or HTTP Basic
//! credentials, and attaches an [`Identity`]; handlers then take
//! [`Scoped`] instead of the router state, which hands them the catalogue
//! and product service *as that identity sees them*. No handler checks a
//! privilege itself: the catalogue's queries do (see
//! [`crate::catalog::access`]).
//!
//! Every browser gets one random cookie (`wisecut_session`, HttpOnly,
//! SameSite=Lax, Secure behind HTTPS). Signed in, its SHA-256 names a row
//! of `web_session`; anonymous, the same hash names the browser that owns
//! the jobs it submitted. Requests from scripts and VO clients carry no
//! cookie and get none (`/vo`, `/api`, `/data`, … never set one), so they
//! are either anonymous or authenticated by a token.

use super::AppState;
use crate::catalog::access::{Session, Viewer, secret_hash};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// The browser cookie's name.
pub const COOKIE: &str = "wisecut_session";

/// How a request proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Nothing (anonymous, no cookie).
    Nothing,
    /// The browser cookie (signed in or not).
    Cookie,
    /// `Authorization: Bearer` with an API token.
    Token,
    /// `Authorization: Basic` with a password or a token as the password.
    Basic,
}

/// The identity of one request.
#[derive(Debug, Clone)]
pub struct Identity {
    /// What the request may see.
    pub viewer: Viewer,
    /// How it was established.
    pub via: Via,
    /// The browser's cookie secret (sent by the browser, or made for this
    /// response, see `new_cookie`).
    pub cookie: Option<String>,
    /// Whether `cookie` is new and must be set on the response.
    pub new_cookie: bool,
    /// The signed-in session, if any.
    pub session: Option<Session>,
}

impl Identity {
    /// An anonymous request without a cookie.
    pub fn anonymous() -> Self {
        Self {
            viewer: Viewer::anonymous(),
            via: Via::Nothing,
            cookie: None,
            new_cookie: false,
            session: None,
        }
    }

    /// The signed-in user, if any.
    pub fn user(&self) -> Option<&str> {
        self.viewer.user.as_deref()
    }

    /// The CSRF token forms of this browser carry: derived from the
    /// cookie's secret by a one-way function, so a page on another origin
    /// (which can neither read the cookie nor this page) cannot know it.
    pub fn csrf_token(&self) -> Option<String> {
        self.cookie
            .as_deref()
            .map(|c| secret_hash(&format!("csrf\u{0}{c}"))[..32].to_owned())
    }
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// Paths answered to scripts and VO clients: they never get a cookie.
fn is_machine_path(path: &str) -> bool {
    [
        "/vo", "/api", "/data", "/prov", "/static", "/thumb", "/render",
    ]
    .iter()
    .any(|p| path == *p || path.starts_with(&format!("{p}/")))
        || path == "/health"
        || path.starts_with("/favicon")
}

/// A 401 asking for credentials, naming what was wrong.
fn unauthorized(message: &str) -> Response {
    let mut r = (StatusCode::UNAUTHORIZED, format!("{message}\n")).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"wisecut\", Bearer realm=\"wisecut\""),
    );
    r
}

/// What the `Authorization` header proves: `Ok(None)` when there is none.
async fn from_authorization(
    st: &AppState,
    headers: &HeaderMap,
) -> Result<Option<(String, Via)>, Response> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthorized("Authorization: not readable text"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    let catalog = &st.catalog;
    let db_fault = |e: crate::catalog::CatalogError| {
        tracing::error!("authorization: {e}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the user database did not answer\n",
        )
            .into_response()
    };
    if scheme.eq_ignore_ascii_case("bearer") {
        return match catalog.token_user(rest).await.map_err(db_fault)? {
            Some(user) => Ok(Some((user, Via::Token))),
            None => Err(unauthorized(
                "Authorization: the token is not known or was revoked",
            )),
        };
    }
    if scheme.eq_ignore_ascii_case("basic") {
        use base64::Engine;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| unauthorized("Authorization: Basic credentials are not base64 text"))?;
        let (name, password) = decoded
            .split_once(':')
            .ok_or_else(|| unauthorized("Authorization: Basic credentials lack 'user:password'"))?;
        // Clients that only do Basic (some VO tools) pass an API token as
        // the password.
        if password.starts_with("wct_") {
            return match catalog.token_user(password).await.map_err(db_fault)? {
                Some(user) if user == name || name.is_empty() || name == "token" => {
                    Ok(Some((user, Via::Basic)))
                }
                _ => Err(unauthorized(
                    "Authorization: the token is not known, was revoked, or is another user's",
                )),
            };
        }
        return match catalog
            .check_password(name, password)
            .await
            .map_err(db_fault)?
        {
            Some(user) => Ok(Some((user, Via::Basic))),
            None => Err(unauthorized("Authorization: wrong user name or password")),
        };
    }
    Err(unauthorized(
        "Authorization: use 'Bearer TOKEN' or 'Basic' credentials",
    ))
}

/// The middleware that attaches an [`Identity`] to every request and sets
/// the browser cookie on pages answered to browsers that have none.
pub async fn identify(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let headers = req.headers();
    let identity = match from_authorization(&st, headers).await {
        Err(r) => return r,
        Ok(Some((user, via))) => match st.catalog.viewer_of(&user, None).await {
            Ok(viewer) => Identity {
                viewer,
                via,
                cookie: None,
                new_cookie: false,
                session: None,
            },
            Err(e) => return super::AppError::from(e).into_response(),
        },
        Ok(None) => match cookie_value(headers, COOKIE) {
            Some(secret) => {
                let session = match st.catalog.session(&secret).await {
                    Ok(s) => s,
                    Err(e) => return super::AppError::from(e).into_response(),
                };
                let viewer = match &session {
                    Some(s) => match st.catalog.viewer_of(&s.user, s.project.as_deref()).await {
                        Ok(v) => v,
                        Err(e) => return super::AppError::from(e).into_response(),
                    },
                    None => Viewer::anonymous(),
                };
                let mut viewer = viewer;
                viewer.browser = Some(secret_hash(&secret));
                Identity {
                    viewer,
                    via: Via::Cookie,
                    cookie: Some(secret),
                    new_cookie: false,
                    session,
                }
            }
            None => {
                let mut id = Identity::anonymous();
                let page = matches!(*req.method(), Method::GET | Method::HEAD)
                    && !is_machine_path(req.uri().path());
                if page {
                    let secret = crate::catalog::access::new_secret();
                    id.viewer.browser = Some(secret_hash(&secret));
                    id.cookie = Some(secret);
                    id.new_cookie = true;
                }
                id
            }
        },
    };
    let identity = Arc::new(identity);
    req.extensions_mut().insert(Arc::clone(&identity));
    let mut response = next.run(req).await;
    if identity.new_cookie
        && let Some(secret) = &identity.cookie
        && let Ok(v) = HeaderValue::from_str(&set_cookie(&st, secret, None))
    {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// A `Set-Cookie` value for the browser cookie (`max_age` in seconds;
/// `None`: a session's lifetime).
pub fn set_cookie(st: &AppState, secret: &str, max_age: Option<i64>) -> String {
    let secure = if st.config.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let age = max_age.unwrap_or(crate::catalog::access::SESSION_DAYS * 86_400);
    format!("{COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={age}{secure}")
}

/// The router state as the request's identity sees it: what handlers take
/// instead of `State<AppState>`.
pub struct Scoped(pub AppState);

impl FromRequestParts<AppState> for Scoped {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Self, Self::Rejection> {
        let identity = parts
            .extensions
            .get::<Arc<Identity>>()
            .cloned()
            .unwrap_or_else(|| Arc::new(Identity::anonymous()));
        Ok(Scoped(st.scoped(identity)))
    }
}
