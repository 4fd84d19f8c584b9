//! Security headers on every response: what a browser may load into our
//! pages, and that nobody may frame them or sniff a type we did not send.
//!
//! - `Content-Security-Policy`: everything from this server, plus what the
//!   pages really need, found by reading `templates/`:
//!   - scripts: `'self'` and `'unsafe-inline'`, because `image.html` has
//!     an inline `<script>` (the cursor read-out) and `sky.html` an inline
//!     JSON configuration element;
//!   - styles: `'self'` and `'unsafe-inline'` (`image.html` sizes its
//!     viewer with a `style` attribute; Aladin Lite injects its styles);
//!   - images: `'self' data: blob:`;
//!   - connections: `'self'` and the SAMP Web Profile hub
//!     `http://localhost:21012` that `templates/samp.js` talks to;
//!   - no plugins, no foreign `<base>`, forms only to this server, and
//!     `frame-ancestors 'none'` (no clickjacking through a frame).
//!
//!   The sky view (`/sky`) has a wider policy of its own: Aladin Lite
//!   compiles WebAssembly (`'wasm-unsafe-eval'`) fetched from a `data:`
//!   URL, runs workers from `blob:` URLs, is loaded from
//!   `--aladin-url`'s origin when there is no local copy, and, when online,
//!   fetches HiPS tiles and catalogues from CDS servers (`https:` images
//!   and connections).
//! - `X-Content-Type-Options: nosniff`: a VOTable or a text error is never
//!   run as a script or shown as HTML.
//! - `Referrer-Policy: same-origin`: query strings (object ids, positions)
//!   are not sent to other sites.
//! - `X-Frame-Options: DENY`: `frame-ancestors` for older browsers.
//!
//! A header a handler set itself is left as it is.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::Config;

/// The SAMP Web Profile hub's well-known address (see `templates/samp.js`).
pub const SAMP_HUB: &str = "http://localhost:21012";

/// The headers, built once from the configuration.
#[derive(Debug, Clone)]
pub struct SecurityHeaders {
    pages: HeaderValue,
    sky: HeaderValue,
}

impl SecurityHeaders {
    /// The headers for a server configured by `config`.
    pub fn new(config: &Config) -> Self {
        let value = |csp: String| {
            // Built from fixed text and a checked origin: always valid.
            HeaderValue::from_str(&csp)
                .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
        };
        Self {
            pages: value(content_security_policy(config, false)),
            sky: value(content_security_policy(config, true)),
        }
    }

    /// The policy for a path.
    pub fn policy_for(&self, path: &str) -> &HeaderValue {
        if path == "/sky" {
            &self.sky
        } else {
            &self.pages
        }
    }
}

/// The `Content-Security-Policy` of the pages, or of the sky view.
pub fn content_security_policy(config: &Config, sky: bool) -> String {
    let mut script = vec!["'self'", "'unsafe-inline'"];
    let mut img = vec!["'self'", "data:", "blob:"];
    let mut connect = vec!["'self'", SAMP_HUB];
    let mut extra = Vec::new();
    let aladin = if config.aladin_dir.is_none() {
        origin(&config.aladin_url)
    } else {
        None
    };
    if sky {
        script.push("'wasm-unsafe-eval'");
        if let Some(o) = aladin.as_deref() {
            script.push(o);
        }
        img.push("https:");
        connect.extend(["data:", "blob:", "https:"]);
        extra.push("worker-src 'self' blob:".to_owned());
        extra.push("font-src 'self' data:".to_owned());
    }
    let mut parts = vec![
        "default-src 'self'".to_owned(),
        format!("script-src {}", script.join(" ")),
        "style-src 'self' 'unsafe-inline'".to_owned(),
        format!("img-src {}", img.join(" ")),
        format!("connect-src {}", connect.join(" ")),
    ];
    parts.extend(extra);
    parts.extend([
        "object-src 'none'".to_owned(),
        "base-uri 'self'".to_owned(),
        "form-action 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]);
    parts.join("; ")
}

/// `scheme://host[:port]` of an http(s) URL, if it is one whose host is
/// made only of host characters (nothing that could end a CSP source).
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    ok.then(|| format!("{scheme}://{host}"))
}

/// The middleware: adds the headers a response lacks.
pub async fn add(State(h): State<Arc<SecurityHeaders>>, req: Request, next: Next) -> Response {
    let csp = h.policy_for(req.uri().path()).clone();
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    let fixed: [(HeaderName, HeaderValue); 4] = [
        (header::CONTENT_SECURITY_POLICY, csp),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    for (name, value) in fixed {
        headers.entry(name).or_insert(value);
    }
    // Clients (and `stilts taplint`) like to know what answered; the
    // version only, no build details.
    headers
        .entry(header::SERVER)
        .or_insert(HeaderValue::from_static(concat!(
            "wisecut/",
            env!("CARGO_PKG_VERSION")
        )));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::new(
            "sqlite://x".into(),
            ".".into(),
            "cache".into(),
            "127.0.0.1:0".parse().unwrap(),
        )
    }

    #[test]
    fn the_cds_origin_is_allowed_only_on_the_sky_and_only_without_a_local_copy() {
        let mut c = config();
        let pages = content_security_policy(&c, false);
        assert!(
            pages.contains("script-src 'self' 'unsafe-inline';"),
            "{pages}"
        );
        assert!(!pages.contains("https:"), "{pages}");
        assert!(pages.contains("connect-src 'self' http://localhost:21012;"));
        assert!(pages.ends_with("frame-ancestors 'none'"));
        let sky = content_security_policy(&c, true);
        assert!(
            sky.contains("script-src 'self' 'unsafe-inline' 'wasm-unsafe-eval' https://aladin.cds.unistra.fr;"),
            "{sky}"
        );
        assert!(sky.contains("img-src 'self' data: blob: https:;"), "{sky}");
        c.aladin_dir = Some("node_modules/aladin-lite/dist".into());
        let sky = content_security_policy(&c, true);
        assert!(!sky.contains("aladin.cds"), "{sky}");
    }

    #[test]
    fn origins_are_checked() {
        assert_eq!(
            origin("https://aladin.cds.unistra.fr/AladinLite/api/v3/latest/aladin.js").as_deref(),
            Some("https://aladin.cds.unistra.fr")
        );
        assert_eq!(
            origin("http://localhost:8000/a.js").as_deref(),
            Some("http://localhost:8000")
        );
        assert_eq!(origin("https://x; script-src *"), None);
        assert_eq!(origin("javascript:alert(1)"), None);
        assert_eq!(origin("/static/aladin.js"), None);
    }
}
