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
use axum::body::Body;
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
) -> Result<Option<(Viewer, Via)>, Response> {
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
        // One query: tokens are checked on every request.
        return match catalog.viewer_by_token(rest).await.map_err(db_fault)? {
            Some(viewer) => Ok(Some((viewer, Via::Token))),
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
            return match catalog.viewer_by_token(password).await.map_err(db_fault)? {
                Some(viewer)
                    if viewer.user.as_deref() == Some(name)
                        || name.is_empty()
                        || name == "token" =>
                {
                    Ok(Some((viewer, Via::Basic)))
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
            Some(user) => match catalog.viewer_of(&user, None).await {
                Ok(viewer) => Ok(Some((viewer, Via::Basic))),
                Err(e) => Err(db_fault(e)),
            },
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
        Ok(Some((viewer, via))) => Identity {
            viewer,
            via,
            cookie: None,
            new_cookie: false,
            session: None,
        },
        Ok(None) => match cookie_value(headers, COOKIE) {
            Some(secret) => {
                // One query; a session without a project sees public data
                // only (its context is empty).
                let (session, viewer) = match st.catalog.viewer_by_session(&secret).await {
                    Ok(Some((s, v))) => (Some(s), v),
                    Ok(None) => (None, Viewer::anonymous()),
                    Err(e) => return super::AppError::from(e).into_response(),
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
    // A browser that once answered a Basic prompt resends those
    // credentials on its own, on forged cross-site forms too: such a
    // request is refused (browsers mark it `Sec-Fetch-Site: cross-site`;
    // scripts and VO clients send no such header).
    if identity.via == Via::Basic
        && !is_safe(req.method())
        && req
            .headers()
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"))
    {
        return (
            StatusCode::FORBIDDEN,
            "csrf: a cross-site request may not use Basic credentials a browser remembered\n",
        )
            .into_response();
    }
    if identity.via == Via::Cookie && !is_safe(req.method()) {
        req = match check_csrf(&identity, req).await {
            Ok(req) => req,
            Err(refusal) => return refusal,
        };
    }
    req.extensions_mut().insert(Arc::clone(&identity));
    let here = match req.uri().path_and_query() {
        Some(pq) => pq.as_str().to_owned(),
        None => req.uri().path().to_owned(),
    };
    let context = Arc::new(RequestContext {
        identity: Arc::clone(&identity),
        here,
    });
    let mut response = REQUEST.scope(context, next.run(req)).await;
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

/// Methods that change nothing: no CSRF token needed.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The header scripts on our pages send the CSRF token in.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The form field forms send the CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// Most bytes of a state-changing browser request body read to find its
/// CSRF field: the largest body any route accepts (TAP uploads); handlers
/// with smaller limits still apply theirs.
const MAX_CSRF_BODY: usize = super::tap_endpoints::MAX_BODY_BYTES;

/// The refusal of a state-changing cookie request without the right token.
fn csrf_refusal(req_path: &str, why: &str) -> Response {
    super::error::edge_refusal(
        StatusCode::FORBIDDEN,
        format!(
            "csrf: {why}; a request that changes something and carries the browser's \
             cookie must send the page's CSRF token (form field `csrf` or header \
             X-CSRF-Token). Reload the page and try again; scripts should send no cookie \
             and use an API token instead"
        ),
        !is_machine_path(req_path),
    )
}

/// Checks the CSRF token of a state-changing request made with the browser
/// cookie: from the `X-CSRF-Token` header, else the `csrf` field of a
/// urlencoded form (removed from the body, so that handlers with strict
/// parameter lists never see it) or of a multipart form (left in place;
/// handlers of multipart forms skip it). The body is buffered for this and
/// put back for the handler.
async fn check_csrf(identity: &Identity, req: Request) -> Result<Request, Response> {
    let path = req.uri().path().to_owned();
    let Some(expected) = identity.csrf_token() else {
        return Err(csrf_refusal(&path, "the request has no usable cookie"));
    };
    let matches = |given: &str| {
        use subtle_eq::eq;
        eq(given.trim().as_bytes(), expected.as_bytes())
    };
    if let Some(v) = req.headers().get(CSRF_HEADER) {
        return match v.to_str() {
            Ok(given) if matches(given) => Ok(req),
            _ => Err(csrf_refusal(&path, "the X-CSRF-Token header is wrong")),
        };
    }
    let media = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let form = media == "application/x-www-form-urlencoded";
    let multipart = media == "multipart/form-data";
    if !form && !multipart {
        return Err(csrf_refusal(&path, "the token is missing"));
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_CSRF_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return Err(super::error::edge_refusal(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the request body is larger than {} MiB or was cut off",
                    MAX_CSRF_BODY >> 20
                ),
                !is_machine_path(&path),
            ));
        }
    };
    if form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|_| csrf_refusal(&path, "the form body is malformed"))?;
        let given: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k == CSRF_FIELD).collect();
        match given.as_slice() {
            [] => return Err(csrf_refusal(&path, "the token is missing")),
            [(_, v)] if matches(v) => {}
            _ => return Err(csrf_refusal(&path, "the token is wrong")),
        }
        let rest: Vec<&(String, String)> = pairs.iter().filter(|(k, _)| k != CSRF_FIELD).collect();
        let body = serde_urlencoded::to_string(rest).unwrap_or_default();
        parts.headers.remove(header::CONTENT_LENGTH);
        if let Ok(v) = HeaderValue::from_str(&body.len().to_string()) {
            parts.headers.insert(header::CONTENT_LENGTH, v);
        }
        return Ok(Request::from_parts(parts, Body::from(body)));
    }
    // Multipart: read the parts (from a copy) until the token.
    let probe = Request::from_parts(parts.clone(), Body::from(bytes.clone()));
    let mut found = false;
    if let Ok(mut mp) =
        <axum::extract::Multipart as axum::extract::FromRequest<()>>::from_request(probe, &()).await
    {
        while let Ok(Some(field)) = mp.next_field().await {
            if field.name() == Some(CSRF_FIELD) {
                let text = field.text().await.unwrap_or_default();
                if !matches(&text) {
                    return Err(csrf_refusal(&path, "the token is wrong"));
                }
                found = true;
                break;
            }
        }
    }
    if !found {
        return Err(csrf_refusal(&path, "the token is missing"));
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Constant-time comparison of the token (a mismatch's position must not
/// show in the answer's timing).
mod subtle_eq {
    /// Whether `a` and `b` are equal, in time depending on their lengths only.
    pub fn eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// What the page chrome (the header of every HTML page) needs to know of
/// the request being answered: set by [`identify`] for the handler's whole
/// run, so templates read it without every page struct carrying it.
#[derive(Debug)]
struct RequestContext {
    identity: Arc<Identity>,
    here: String,
}

tokio::task_local! {
    static REQUEST: Arc<RequestContext>;
}

/// The page chrome of the request being answered: who is signed in, the
/// project they work in, the projects they may switch to, and the CSRF
/// token every form carries. Templates call [`chrome`] (base.html does for
/// the header) or [`csrf_token`] (for the hidden `csrf` input of a form).
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// The signed-in user.
    pub user: Option<String>,
    /// The project worked in (`None`: public data only).
    pub project: Option<String>,
    /// The projects the user belongs to.
    pub projects: Vec<String>,
    /// The CSRF token (empty for requests without a cookie).
    pub csrf: String,
    /// The page's own path and query, for `next=` after logging in.
    pub here: String,
}

impl Chrome {
    /// Whether `p` is the project worked in.
    pub fn is_current(&self, p: &str) -> bool {
        self.project.as_deref() == Some(p)
    }

    /// `/login?next=…` back to this page.
    pub fn login_url(&self) -> String {
        let next = if self.here.starts_with("/login") || self.here.is_empty() {
            "/"
        } else {
            self.here.as_str()
        };
        format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
        )
    }
}

/// The chrome of the request being answered (an anonymous one outside a
/// request, e.g. a template rendered by a test).
pub fn chrome() -> Chrome {
    REQUEST
        .try_with(|r| {
            let id = &r.identity;
            Chrome {
                user: id.user().map(str::to_owned),
                project: id.session.as_ref().and_then(|s| s.project.clone()),
                projects: id
                    .viewer
                    .memberships
                    .iter()
                    .map(|(p, _)| p.clone())
                    .collect(),
                csrf: id.csrf_token().unwrap_or_default(),
                here: r.here.clone(),
            }
        })
        .unwrap_or_default()
}

/// The CSRF token of the request being answered, for a form's hidden
/// `<input type="hidden" name="csrf" value="{{ crate::web::auth::csrf_token() }}">`.
pub fn csrf_token() -> String {
    REQUEST
        .try_with(|r| r.identity.csrf_token().unwrap_or_default())
        .unwrap_or_default()
}
