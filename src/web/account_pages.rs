//! Signing in and out, the project a browser session works in, and the
//! account page: `GET/POST /login`, `POST /logout`, `POST /context`,
//! `GET /account`, `POST /account/tokens` (a new API token, its secret
//! shown once) and `POST /account/tokens/{id}/revoke`.
//!
//! Every POST here carries the browser cookie and so passes the CSRF guard
//! of [`super::auth::identify`] first; the forms carry the token through
//! [`super::auth::csrf_token`].

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{Scoped, set_cookie};
use super::{AppError, AppState};
use crate::catalog::access::TokenInfo;

/// The log-in form.
#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage {
    /// What went wrong with the last attempt.
    pub error: Option<String>,
    /// The user name given.
    pub user: String,
    /// Where to go after signing in.
    pub next: String,
}

/// `GET /login` query.
#[derive(Debug, Deserialize, Default)]
pub struct LoginQuery {
    /// Where to go after signing in (a local path).
    #[serde(default)]
    pub next: Option<String>,
}

/// `POST /login` form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The user name.
    #[serde(default)]
    pub user: String,
    /// The password.
    #[serde(default)]
    pub password: String,
    /// Where to go after signing in.
    #[serde(default)]
    pub next: Option<String>,
}

/// `next` if it is a path on this server, else `/`: never a redirect to
/// another site (`//host`, `/\host`, `https://…`).
pub fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.starts_with("/\\")
                && !n.chars().any(|c| c.is_control()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A 303 to `to` (after a form POST, the browser GETs the page).
fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

/// `response` with the browser cookie set to `secret`.
fn with_cookie(st: &AppState, mut response: Response, secret: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(&set_cookie(st, secret, None)) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

/// `GET /login`.
pub async fn login_page(Query(q): Query<LoginQuery>) -> Result<Html<String>, AppError> {
    Ok(Html(
        LoginPage {
            error: None,
            user: String::new(),
            next: local_next(q.next.as_deref()),
        }
        .render()?,
    ))
}

/// The one answer to a wrong user name and to a wrong password.
pub const WRONG_LOGIN: &str = "user, password: wrong user name or password";

/// `POST /login`: on success a new session (in the user's first project)
/// and a 303 to `next`; on failure the form again, 401, with one message
/// whether the name or the password was wrong.
pub async fn login_post(Scoped(st): Scoped, Form(f): Form<LoginForm>) -> Response {
    let next = local_next(f.next.as_deref());
    let user = f.user.trim().to_owned();
    let checked = if user.is_empty() || f.password.is_empty() {
        Ok(None)
    } else {
        st.catalog.check_password(&user, &f.password).await
    };
    let name = match checked {
        Ok(Some(name)) => name,
        Ok(None) => {
            let page = LoginPage {
                error: Some(WRONG_LOGIN.to_owned()),
                user,
                next,
            };
            return match page.render() {
                // A form-based challenge: browsers show the page and do not
                // pop up a Basic dialog for an unknown scheme.
                Ok(html) => (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Form realm=\"wisecut\"")],
                    Html(html),
                )
                    .into_response(),
                Err(e) => AppError::from(e).into_response(),
            };
        }
        Err(e) => return AppError::from(e).into_response(),
    };
    let first = match st.catalog.memberships(&name).await {
        Ok(m) => m.into_iter().next().map(|(p, _)| p),
        Err(e) => return AppError::from(e).into_response(),
    };
    // The old cookie (anonymous, or another user's session) is replaced:
    // a session id is never one that existed before signing in.
    if let Some(old) = &st.identity.cookie
        && let Err(e) = st.catalog.end_session(old).await
    {
        return AppError::from(e).into_response();
    }
    match st.catalog.create_session(&name, first.as_deref()).await {
        Ok(secret) => with_cookie(&st, see_other(&next), &secret),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `POST /logout`: ends the session; the browser gets a new anonymous
/// cookie, so the old one names nothing any more.
pub async fn logout(Scoped(st): Scoped) -> Response {
    if let Some(old) = &st.identity.cookie
        && let Err(e) = st.catalog.end_session(old).await
    {
        return AppError::from(e).into_response();
    }
    let fresh = crate::catalog::access::new_secret();
    with_cookie(&st, see_other("/"), &fresh)
}

/// `POST /context` form.
#[derive(Debug, Deserialize)]
pub struct ContextForm {
    /// The project to work in (empty: public data only).
    #[serde(default)]
    pub project: String,
    /// Where to go back to.
    #[serde(default)]
    pub next: Option<String>,
}

/// `POST /context`: the project the session works in — one the user
/// belongs to, or empty for public data only.
pub async fn context_post(Scoped(st): Scoped, Form(f): Form<ContextForm>) -> Response {
    let signed_in = st.identity.session.is_some();
    let Some(secret) = st.identity.cookie.as_ref().filter(|_| signed_in) else {
        return AppError::BadRequest(
            "project: only a signed-in browser session works in a project; log in first".into(),
        )
        .into_response();
    };
    let wanted = f.project.trim();
    let allowed: Vec<&str> = st
        .identity
        .viewer
        .memberships
        .iter()
        .map(|(p, _)| p.as_str())
        .collect();
    let project = if wanted.is_empty() {
        None
    } else if allowed.contains(&wanted) {
        Some(wanted)
    } else {
        let mut choices = vec!["'' (public data only)".to_owned()];
        choices.extend(allowed.iter().map(|p| (*p).to_owned()));
        return AppError::BadRequest(format!(
            "project: {:?} is not a project you belong to; allowed: {}",
            crate::params::shown(wanted),
            choices.join(", ")
        ))
        .into_response();
    };
    if let Err(e) = st.catalog.set_session_project(secret, project).await {
        return AppError::from(e).into_response();
    }
    see_other(&local_next(f.next.as_deref()))
}

/// The account page.
#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage {
    /// The user.
    pub user: String,
    /// Whether the user is a superuser.
    pub superuser: bool,
    /// The project worked in.
    pub project: Option<String>,
    /// Projects and roles.
    pub memberships: Vec<(String, &'static str)>,
    /// API tokens (never their secrets).
    pub tokens: Vec<TokenInfo>,
    /// A token just made: its label and secret, shown this once.
    pub new_token: Option<(String, String)>,
    /// A message (a token revoked, an error).
    pub notice: Option<String>,
}

/// The user of a signed-in browser session.
fn signed_in(st: &AppState) -> Option<String> {
    st.identity
        .user()
        .filter(|_| st.identity.session.is_some())
        .map(str::to_owned)
}

/// Where a browser that is not signed in is sent from the account pages.
fn to_login() -> Response {
    see_other("/login?next=/account")
}

async fn account(
    st: &AppState,
    user: &str,
    new_token: Option<(String, String)>,
    notice: Option<String>,
) -> Response {
    let info = match st.catalog.user(user).await {
        Ok(u) => u,
        Err(e) => return AppError::from(e).into_response(),
    };
    let tokens = match st.catalog.tokens(user).await {
        Ok(t) => t,
        Err(e) => return AppError::from(e).into_response(),
    };
    let page = AccountPage {
        user: user.to_owned(),
        superuser: info.is_some_and(|i| i.superuser),
        project: st.identity.session.as_ref().and_then(|s| s.project.clone()),
        memberships: st
            .identity
            .viewer
            .memberships
            .iter()
            .map(|(p, r)| (p.clone(), r.name()))
            .collect(),
        tokens,
        new_token,
        notice,
    };
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `GET /account`.
pub async fn account_page(Scoped(st): Scoped) -> Response {
    match signed_in(&st) {
        Some(user) => account(&st, &user, None, None).await,
        None => to_login(),
    }
}

/// `POST /account/tokens` form.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    /// What the token is for.
    #[serde(default)]
    pub label: String,
}

/// `POST /account/tokens`: a new API token; the page shows its secret once.
pub async fn token_create(Scoped(st): Scoped, Form(f): Form<TokenForm>) -> Response {
    let Some(user) = signed_in(&st) else {
        return to_login();
    };
    let label = f.label.trim().to_owned();
    match st.catalog.create_token(&user, &label).await {
        Ok(secret) => {
            let mut r = account(&st, &user, Some((label, secret)), None).await;
            // The secret must not linger in caches.
            r.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `POST /account/tokens/{id}/revoke`: the token stops working at once.
pub async fn token_revoke(Scoped(st): Scoped, Path(id): Path<String>) -> Response {
    let Some(user) = signed_in(&st) else {
        return to_login();
    };
    let id: i64 = match id.trim().parse() {
        Ok(n) => n,
        Err(_) => {
            return AppError::BadRequest(format!(
                "id: {:?} is not a token number",
                crate::params::shown(&id)
            ))
            .into_response();
        }
    };
    match st.catalog.revoke_token(&user, id).await {
        Ok(()) => see_other("/account"),
        Err(e) => AppError::from(e).into_response(),
    }
}
