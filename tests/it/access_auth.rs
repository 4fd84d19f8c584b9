//! Signing in and out, the project a session works in, API tokens and the
//! CSRF guard, through the router on both backends, on the shared access
//! fixture ([`super::access::Secret`]).

use super::access::{PASSWORD, Secret, Who, get_as, request_as};
use super::common;
use axum::http::{HeaderMap, Method, StatusCode, header};
use wisecut::web::AppState;

/// A browser: the cookie it holds.
struct Browser {
    cookie: Option<String>,
}

/// One answer.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// The `Set-Cookie` of the session cookie, if any.
    fn set_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("wisecut_session="))
            .map(str::to_owned)
    }

    /// The hidden CSRF field's value of the page.
    fn csrf(&self) -> String {
        let doc = scraper::Html::parse_document(&self.body);
        let sel = scraper::Selector::parse("input[name=csrf]").unwrap();
        doc.select(&sel)
            .next()
            .and_then(|e| e.value().attr("value"))
            .unwrap_or_else(|| panic!("no csrf field in:\n{}", self.body))
            .to_owned()
    }
}

impl Browser {
    fn new() -> Self {
        Self { cookie: None }
    }

    /// A request as a browser does it: with the cookie; keeps what the
    /// server sets.
    async fn send(
        &mut self,
        st: &AppState,
        method: Method,
        uri: &str,
        body: Option<(&str, Vec<u8>)>,
        extra: &[(&str, &str)],
    ) -> Answer {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        if let Some(c) = &self.cookie {
            b = b.header(header::COOKIE, format!("wisecut_session={c}"));
        }
        for (k, v) in extra {
            b = b.header(*k, *v);
        }
        let req = match body {
            Some((ct, bytes)) => b
                .header(header::CONTENT_TYPE, ct)
                .body(axum::body::Body::from(bytes)),
            None => b.body(axum::body::Body::empty()),
        }
        .unwrap();
        let res = wisecut::web::app(st.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
        let a = Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        if let Some(sc) = a.set_cookie() {
            let v = sc["wisecut_session=".len()..]
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            self.cookie = Some(v);
        }
        a
    }

    async fn get(&mut self, st: &AppState, uri: &str) -> Answer {
        self.send(st, Method::GET, uri, None, &[]).await
    }

    async fn post_form(&mut self, st: &AppState, uri: &str, fields: &[(&str, &str)]) -> Answer {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.send(
            st,
            Method::POST,
            uri,
            Some(("application/x-www-form-urlencoded", body.into_bytes())),
            &[],
        )
        .await
    }

    /// The CSRF token of this browser, read from a page as a user would.
    async fn token(&mut self, st: &AppState) -> String {
        self.get(st, "/login").await.csrf()
    }

    /// Signs in as `user`.
    async fn login(&mut self, st: &AppState, user: &str) -> Answer {
        let t = self.token(st).await;
        self.post_form(
            st,
            "/login",
            &[("csrf", &t), ("user", user), ("password", PASSWORD)],
        )
        .await
    }
}

/// The error message of an HTML page.
fn message(a: &Answer) -> String {
    common::error_message(&a.body)
}

#[tokio::test]
async fn logging_in_and_out_with_cookie_flags_and_one_answer_for_any_wrong_credential() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let mut b = Browser::new();
        let page = b.get(&st, "/login?next=/tables").await;
        assert_eq!(page.status, StatusCode::OK, "{backend}");
        let anon = b
            .cookie
            .clone()
            .expect("a browser cookie on the login page");
        let t = page.csrf();
        // Wrong password and unknown user: the same status and message.
        let wrong = b
            .post_form(
                &st,
                "/login",
                &[
                    ("csrf", &t),
                    ("user", "owner1"),
                    ("password", "not the password"),
                ],
            )
            .await;
        let unknown = b
            .post_form(
                &st,
                "/login",
                &[("csrf", &t), ("user", "nobody"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{backend}");
        assert_eq!(unknown.status, wrong.status, "{backend}");
        let text = |a: &Answer| {
            let doc = scraper::Html::parse_document(&a.body);
            let sel = scraper::Selector::parse("#error").unwrap();
            doc.select(&sel).next().unwrap().text().collect::<String>()
        };
        assert_eq!(text(&wrong), text(&unknown), "{backend}");
        assert!(text(&wrong).contains("password"), "{backend}");
        assert!(wrong.set_cookie().is_none() && unknown.set_cookie().is_none());
        // Right: a 303 to `next`, a new cookie with the flags.
        let ok = b
            .post_form(
                &st,
                "/login",
                &[
                    ("csrf", &t),
                    ("user", "owner1"),
                    ("password", PASSWORD),
                    ("next", "/tables"),
                ],
            )
            .await;
        assert_eq!(ok.status, StatusCode::SEE_OTHER, "{backend}");
        assert_eq!(ok.location(), "/tables", "{backend}");
        let sc = ok.set_cookie().expect("the session cookie");
        for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(sc.contains(flag), "{backend}: {sc} lacks {flag}");
        }
        assert!(!sc.contains("Secure"), "plain http: no Secure flag: {sc}");
        let session = b.cookie.clone().unwrap();
        assert_ne!(session, anon, "{backend}: signing in gives a new cookie");
        // The header names the user and offers "Log out".
        let home = b.get(&st, "/").await;
        assert!(home.body.contains("id=\"user\""), "{backend}");
        assert!(home.body.contains(">owner1<"), "{backend}");
        assert!(home.body.contains("Log out"), "{backend}");
        let acc = b.get(&st, "/account").await;
        assert_eq!(acc.status, StatusCode::OK, "{backend}");
        assert!(acc.body.contains("SECRET"), "{backend}");
        // A foreign `next` is not followed.
        let mut other = Browser::new();
        for evil in [
            "//evil.example/x",
            "https://evil.example/",
            "/\\evil.example",
        ] {
            let t2 = other.token(&st).await;
            let a = other
                .post_form(
                    &st,
                    "/login",
                    &[
                        ("csrf", &t2),
                        ("user", "eve"),
                        ("password", PASSWORD),
                        ("next", evil),
                    ],
                )
                .await;
            assert_eq!(a.status, StatusCode::SEE_OTHER, "{backend}");
            assert_eq!(a.location(), "/", "{backend}: next={evil}");
            // Signed in now: log out for the next round.
            let t3 = other.get(&st, "/").await.csrf();
            let out = other.post_form(&st, "/logout", &[("csrf", &t3)]).await;
            assert_eq!(out.status, StatusCode::SEE_OTHER);
        }
        // Logging out ends the session: the old cookie is anonymous again.
        let t = b.get(&st, "/").await.csrf();
        let out = b.post_form(&st, "/logout", &[("csrf", &t)]).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER, "{backend}");
        assert!(
            out.set_cookie().is_some(),
            "{backend}: a new anonymous cookie"
        );
        assert_ne!(b.cookie.as_deref(), Some(session.as_str()));
        let mut old = Browser {
            cookie: Some(session.clone()),
        };
        let acc = old.get(&st, "/account").await;
        assert_eq!(acc.status, StatusCode::SEE_OTHER, "{backend}");
        assert!(acc.location().starts_with("/login"), "{backend}");
        let home = old.get(&st, "/").await;
        assert!(home.body.contains("Log in") && !home.body.contains(">owner1<"));
        let private = old.get(&st, &format!("/object/{}", s.private_frame)).await;
        assert_eq!(private.status, StatusCode::NOT_FOUND, "{backend}");
    }
}

#[tokio::test]
async fn switching_project_changes_what_the_session_sees() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let private = format!("/object/{}", s.private_frame);
        let project = format!("/object/{}", s.project_frame);
        let mut b = Browser::new();
        assert_eq!(b.login(&st, "owner1").await.status, StatusCode::SEE_OTHER);
        // Signed in, owner1 works in their first (only) project, SECRET.
        assert_eq!(
            b.get(&st, &private).await.status,
            StatusCode::OK,
            "{backend}"
        );
        let t = b.get(&st, "/").await.csrf();
        // Public data only: the private and the project frame are gone.
        let a = b
            .post_form(&st, "/context", &[("csrf", &t), ("project", "")])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{backend}");
        assert_eq!(b.get(&st, &private).await.status, StatusCode::NOT_FOUND);
        assert_eq!(b.get(&st, &project).await.status, StatusCode::NOT_FOUND);
        let home = b.get(&st, "/").await;
        assert!(home.body.contains("public data only"), "{backend}");
        // A project the user is not in: 400 naming `project` and the choices.
        let a = b
            .post_form(&st, "/context", &[("csrf", &t), ("project", "OTHER")])
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{backend}");
        let m = message(&a);
        assert!(m.starts_with("project:") && m.contains("SECRET"), "{m}");
        assert!(!m.contains("OTHER\","), "{m}");
        assert_eq!(b.get(&st, &private).await.status, StatusCode::NOT_FOUND);
        // Back in SECRET.
        let a = b
            .post_form(&st, "/context", &[("csrf", &t), ("project", "SECRET")])
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{backend}");
        assert_eq!(b.get(&st, &private).await.status, StatusCode::OK);
        assert_eq!(b.get(&st, &project).await.status, StatusCode::OK);
        // member2 in SECRET sees the project frame but not owner1's private one.
        let mut m2 = Browser::new();
        m2.login(&st, "member2").await;
        assert_eq!(m2.get(&st, &project).await.status, StatusCode::OK);
        assert_eq!(m2.get(&st, &private).await.status, StatusCode::NOT_FOUND);
        // An anonymous browser cannot pick a project.
        let mut anon = Browser::new();
        let t = anon.token(&st).await;
        let a = anon
            .post_form(&st, "/context", &[("csrf", &t), ("project", "SECRET")])
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{backend}");
        assert_eq!(anon.get(&st, &private).await.status, StatusCode::NOT_FOUND);
    }
}

/// The ReducedScienceFrame table lists the private frame only while owner1
/// works in SECRET.
#[tokio::test]
async fn the_table_shows_the_private_frame_only_in_its_project() {
    for db in common::all_backends().await {
        let s = Secret::new(db).await;
        let st = s.state();
        let mut b = Browser::new();
        b.login(&st, "owner1").await;
        let uri = "/table/ReducedScienceFrame?size=1000";
        let id = format!(">{}<", s.private_frame);
        let body = b.get(&st, uri).await.body;
        assert!(body.contains(&s.private_filename), "owner1 in SECRET");
        let t = b.get(&st, "/").await.csrf();
        b.post_form(&st, "/context", &[("csrf", &t), ("project", "")])
            .await;
        let body = b.get(&st, uri).await.body;
        assert!(!body.contains(&s.private_filename) && !body.contains(&id));
    }
}

/// A multipart body with the fields in order.
fn multipart(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "----wisecut-test-boundary";
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (
        format!("multipart/form-data; boundary={boundary}"),
        body.into_bytes(),
    )
}

#[tokio::test]
async fn every_form_post_with_the_cookie_needs_the_csrf_token() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let mut b = Browser::new();
        assert_eq!(b.login(&st, "owner1").await.status, StatusCode::SEE_OTHER);
        let t = b.get(&st, "/account").await.csrf();
        let slid = s.private_slid.to_string();
        let frame = s.private_frame.to_string();
        let privileges = format!("/object/{frame}/privileges");
        // The guard runs before routing: a job that does not exist still
        // proves the share form's route is covered (404 once past it).
        let share = "/jobs/0123456789abcdef0123456789abcdef/share";
        let forms: Vec<(&str, Vec<(&str, &str)>)> = vec![
            (&privileges, vec![("level", "1")]),
            (share, vec![("share", "link")]),
            ("/deps", vec![("slid", &slid), ("ids", "1")]),
            ("/rgb", vec![("r", &frame), ("g", &frame), ("b", &frame)]),
            ("/context", vec![("project", "SECRET")]),
            ("/account/tokens", vec![("label", "csrf test")]),
        ];
        for (uri, fields) in &forms {
            // Without the token, with a wrong one: 403 naming csrf.
            for bad in [None, Some("0123456789abcdef0123456789abcdef")] {
                let mut f = fields.clone();
                if let Some(x) = bad {
                    f.insert(0, ("csrf", x));
                }
                let a = b.post_form(&st, uri, &f).await;
                assert_eq!(a.status, StatusCode::FORBIDDEN, "{backend} {uri} {bad:?}");
                assert!(message(&a).starts_with("csrf:"), "{}", message(&a));
            }
            // With it: not refused (whatever the form then answers).
            let mut f = fields.clone();
            f.push(("csrf", &t));
            let a = b.post_form(&st, uri, &f).await;
            assert_ne!(
                a.status,
                StatusCode::FORBIDDEN,
                "{backend} {uri}: {}",
                a.body
            );
            assert!(a.status.as_u16() < 500, "{backend} {uri}: {}", a.status);
            // Also in the header, as scripts on our pages send it.
            let body = serde_urlencoded::to_string(fields).unwrap();
            let a = b
                .send(
                    &st,
                    Method::POST,
                    uri,
                    Some(("application/x-www-form-urlencoded", body.into_bytes())),
                    &[("x-csrf-token", &t)],
                )
                .await;
            assert_ne!(a.status, StatusCode::FORBIDDEN, "{backend} {uri} (header)");
        }
        // The multipart batch upload: the field, or the header.
        let csv = "ra,dec\n10.0,-5.0\n";
        let (ct, body) = multipart(&[("csv", csv), ("xsize", "0.1")]);
        let a = b
            .send(&st, Method::POST, "/batch", Some((&ct, body)), &[])
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{backend} /batch");
        let (ct, body) = multipart(&[("csrf", &t), ("csv", csv), ("xsize", "0.1")]);
        let a = b
            .send(&st, Method::POST, "/batch", Some((&ct, body)), &[])
            .await;
        assert_ne!(
            a.status,
            StatusCode::FORBIDDEN,
            "{backend} /batch: {}",
            a.body
        );
        assert!(
            !a.body.contains("csrf"),
            "{backend}: the batch form must not see the csrf field as an option: {}",
            a.body
        );
        // Revoking a token and logging out.
        let acc = b.get(&st, "/account").await;
        let id = s.db.catalog.tokens("owner1").await.unwrap()[0].id;
        assert!(acc.body.contains(&format!("token-{id}")));
        let revoke = format!("/account/tokens/{id}/revoke");
        assert_eq!(
            b.post_form(&st, &revoke, &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            b.post_form(&st, &revoke, &[("csrf", &t)]).await.status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            b.post_form(&st, "/logout", &[]).await.status,
            StatusCode::FORBIDDEN
        );
        assert_eq!(b.get(&st, "/account").await.status, StatusCode::OK);
        // Log in: a cookie browser needs the token too (login CSRF).
        let mut fresh = Browser::new();
        fresh.get(&st, "/").await;
        let a = fresh
            .post_form(&st, "/login", &[("user", "owner1"), ("password", PASSWORD)])
            .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{backend} /login");
        // Another browser's token is no good.
        let other = fresh.token(&st).await;
        let a = b.post_form(&st, "/logout", &[("csrf", &other)]).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{backend}");
        // Requests without a cookie carry no ambient authority: not checked.
        let (status, _, _) = request_as(
            &st,
            &s,
            Who::Owner,
            Method::POST,
            &format!("/api/deps?slid={slid}&ids=1"),
            None,
        )
        .await;
        assert_ne!(status, StatusCode::FORBIDDEN, "{backend} Bearer POST");
    }
}

#[tokio::test]
async fn tokens_from_the_account_page_work_and_stop_at_once_when_revoked() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let mut b = Browser::new();
        b.login(&st, "owner1").await;
        let t = b.get(&st, "/account").await.csrf();
        let made = b
            .post_form(&st, "/account/tokens", &[("csrf", &t), ("label", "laptop")])
            .await;
        assert_eq!(made.status, StatusCode::OK, "{backend}");
        let doc = scraper::Html::parse_document(&made.body);
        let sel = scraper::Selector::parse("#new-token-secret").unwrap();
        let secret: String = doc.select(&sel).next().unwrap().text().collect();
        assert!(secret.starts_with("wct_"), "{secret}");
        // Listed, never shown again.
        let again = b.get(&st, "/account").await;
        assert!(again.body.contains("laptop") && !again.body.contains(&secret));
        let private = format!("/object/{}", s.private_frame);
        let bearer = format!("Bearer {secret}");
        let call = |auth: String, uri: String| {
            let st = st.clone();
            async move {
                let mut x = Browser::new();
                x.send(&st, Method::GET, &uri, None, &[("authorization", &auth)])
                    .await
            }
        };
        assert_eq!(
            call(bearer.clone(), private.clone()).await.status,
            StatusCode::OK,
            "{backend}: Bearer"
        );
        // Basic, with the password and with the token as the password, on
        // a VO endpoint: the private frame is in owner1's SIA answer.
        use base64::Engine;
        let basic = |u: &str, p: &str| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        };
        let sia = "/vo/sia/query?MAXREC=1000".to_owned();
        for auth in [
            basic("owner1", PASSWORD),
            basic("owner1", &secret),
            bearer.clone(),
        ] {
            let a = call(auth.clone(), sia.clone()).await;
            assert_eq!(a.status, StatusCode::OK, "{backend} {auth}");
        }
        // A browser resends remembered Basic credentials on a forged
        // cross-site form too: refused; the same POST from a script (no
        // Sec-Fetch-Site) is not.
        for (site, refused) in [(Some("cross-site"), true), (None, false)] {
            let mut x = Browser::new();
            let auth = basic("owner1", PASSWORD);
            let mut headers = vec![("authorization", auth.as_str())];
            if let Some(v) = site {
                headers.push(("sec-fetch-site", v));
            }
            let a = x
                .send(
                    &st,
                    Method::POST,
                    "/vo/tap/sync",
                    Some((
                        "application/x-www-form-urlencoded",
                        b"LANG=ADQL&QUERY=SELECT%20TOP%201%20obs_id%20FROM%20ivoa.obscore".to_vec(),
                    )),
                    &headers,
                )
                .await;
            assert_eq!(
                a.status == StatusCode::FORBIDDEN,
                refused,
                "{backend} Basic POST, Sec-Fetch-Site {site:?}: {}",
                a.status
            );
        }
        let wrong = call(basic("owner1", "wrong password"), sia.clone()).await;
        assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{backend}");
        assert!(wrong.headers.contains_key(header::WWW_AUTHENTICATE));
        // Revoked: 401 at once.
        let id =
            s.db.catalog
                .tokens("owner1")
                .await
                .unwrap()
                .into_iter()
                .find(|t| t.label == "laptop")
                .unwrap()
                .id;
        let a = b
            .post_form(
                &st,
                &format!("/account/tokens/{id}/revoke"),
                &[("csrf", &t)],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{backend}");
        assert_eq!(
            call(bearer.clone(), private.clone()).await.status,
            StatusCode::UNAUTHORIZED,
            "{backend}: revoked Bearer"
        );
        assert_eq!(
            call(basic("owner1", &secret), sia.clone()).await.status,
            StatusCode::UNAUTHORIZED,
            "{backend}: revoked token as Basic password"
        );
        // Another user's token cannot be revoked from this account (404).
        let eve_id = s.db.catalog.tokens("eve").await.unwrap()[0].id;
        let a = b
            .post_form(
                &st,
                &format!("/account/tokens/{eve_id}/revoke"),
                &[("csrf", &t)],
            )
            .await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{backend}");
        assert_eq!(
            get_as(&st, &s, Who::Eve, "/").await.0,
            StatusCode::OK,
            "{backend}: eve's token still works"
        );
    }
}

/// The `wisecut` binary.
fn wisecut() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_wisecut"))
}

/// Runs `wisecut ARGS --db URL` with `stdin`; (success, stdout, stderr).
fn run(db: &str, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> (bool, String, String) {
    use std::io::Write;
    let mut c = wisecut();
    c.args(args)
        .args(["--db", db])
        .env_remove("WISECUT_PASSWORD")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_adds_users_projects_members_tokens_and_sets_privileges() {
    use wisecut::catalog::access::Role;
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let c = &s.db.catalog;
        let url = s.db.url.clone();
        // Users: the password from stdin or the environment, never an argument.
        let (ok, _, err) = run(
            &url,
            &["user", "add", "alice", "--password-stdin"],
            "alice's password\n",
            &[],
        );
        assert!(ok, "{backend}: {err}");
        assert_eq!(
            c.check_password("alice", "alice's password").await.unwrap(),
            Some("alice".into())
        );
        let (ok, _, _) = run(
            &url,
            &["user", "add", "bob", "--superuser"],
            "",
            &[("WISECUT_PASSWORD", "bob's password")],
        );
        assert!(ok, "{backend}");
        assert!(c.user("bob").await.unwrap().unwrap().superuser);
        let (ok, _, err) = run(&url, &["user", "add", "carol"], "", &[]);
        assert!(!ok && err.contains("password"), "{backend}: {err}");
        let (ok, _, err) = run(
            &url,
            &["user", "add", "alice", "--password-stdin"],
            "another password\n",
            &[],
        );
        assert!(!ok && err.contains("already exists"), "{backend}: {err}");
        let (ok, _, err) = run(
            &url,
            &["user", "passwd", "alice", "--password-stdin"],
            "a new password\n",
            &[],
        );
        assert!(ok, "{backend}: {err}");
        assert!(
            c.check_password("alice", "a new password")
                .await
                .unwrap()
                .is_some()
        );
        // Projects and members.
        let (ok, _, err) = run(
            &url,
            &["project", "add", "DEEPX", "--description", "deep"],
            "",
            &[],
        );
        assert!(ok, "{backend}: {err}");
        let (ok, _, err) = run(
            &url,
            &["project", "member", "DEEPX", "alice", "--role", "admin"],
            "",
            &[],
        );
        assert!(ok, "{backend}: {err}");
        assert_eq!(
            c.memberships("alice").await.unwrap(),
            vec![("DEEPX".to_owned(), Role::Admin)]
        );
        let (ok, _, _) = run(
            &url,
            &["project", "member", "DEEPX", "alice", "--remove"],
            "",
            &[],
        );
        assert!(ok && c.memberships("alice").await.unwrap().is_empty());
        // Tokens: made (printed once), listed without the secret, revoked.
        let (ok, secret, err) = run(
            &url,
            &["user", "token", "alice", "--label", "script"],
            "",
            &[],
        );
        assert!(ok, "{backend}: {err}");
        let secret = secret.trim().to_owned();
        assert_eq!(c.token_user(&secret).await.unwrap(), Some("alice".into()));
        let (ok, list, _) = run(&url, &["user", "token", "alice", "--list"], "", &[]);
        assert!(ok && list.contains("script") && !list.contains(&secret[4..]));
        let id = c.tokens("alice").await.unwrap()[0].id.to_string();
        let (ok, _, _) = run(&url, &["user", "token", "alice", "--revoke", &id], "", &[]);
        assert!(ok);
        assert_eq!(c.token_user(&secret).await.unwrap(), None, "{backend}");
        // Privileges by id, as the database's owner.
        let level = |id: wisecut::ids::ObjectId| async move {
            c.process_target(id).await.unwrap().privileges
        };
        let public = s.public_child.unwrap();
        let (ok, _, err) = run(&url, &["privileges", &public.to_string(), "users"], "", &[]);
        assert!(ok, "{backend}: {err}");
        assert_eq!(level(public).await, 3);
        // As a user: eve may not (she cannot even see the private frame).
        let private = s.private_frame.to_string();
        let (ok, _, err) = run(
            &url,
            &["privileges", &private, "public", "--as", "eve"],
            "",
            &[],
        );
        assert!(!ok && err.contains("does not exist"), "{backend}: {err}");
        assert_eq!(level(s.private_frame).await, 1);
        let (ok, _, err) = run(
            &url,
            &["privileges", &private, "project", "--as", "owner1"],
            "",
            &[],
        );
        assert!(ok, "{backend}: {err}");
        assert_eq!(level(s.private_frame).await, 2);
        // By a browse-table query: every reduced frame in filter r.
        let r_frames: Vec<_> = c
            .frames_of_class(wisecut::model::FrameClass::ReducedScienceFrame)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.filter.as_deref() == Some("r"))
            .map(|f| f.target.object_id)
            .collect();
        assert!(!r_frames.is_empty());
        let (ok, _, err) = run(
            &url,
            &[
                "privileges",
                "--table",
                "ReducedScienceFrame",
                "--query",
                "filter = r",
                "users",
            ],
            "",
            &[],
        );
        assert!(ok, "{backend}: {err}");
        assert!(
            err.contains(&format!("of {} objects", r_frames.len())),
            "{err}"
        );
        for id in &r_frames {
            assert_eq!(level(*id).await, 3, "{backend} {id}");
        }
        let (ok, _, err) = run(&url, &["privileges", &private, "secret"], "", &[]);
        assert!(!ok && err.contains("LEVEL"), "{backend}: {err}");
    }
}

#[tokio::test]
async fn the_sample_demo_project_is_private_to_its_user() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let db = common::ingested(db).await;
        let c = &db.catalog;
        let part = wisecut::sample::add_demo_project(c).await.unwrap();
        assert!(!part.source_lists.is_empty() && !part.regridded.is_empty());
        assert_eq!(
            c.check_password(wisecut::sample::DEMO_USER, wisecut::sample::DEMO_PASSWORD)
                .await
                .unwrap()
                .as_deref(),
            Some("demo")
        );
        let anon = c.for_viewer(wisecut::catalog::access::Viewer::anonymous());
        let public_only = c.for_viewer(c.viewer_of("demo", Some("")).await.unwrap());
        let in_deep = c.for_viewer(c.viewer_of("demo", Some("DEEP")).await.unwrap());
        for id in [part.reduced, part.regridded[0]] {
            assert!(anon.frame(id).await.is_err(), "{backend} {id}");
            assert!(public_only.frame(id).await.is_err(), "{backend} {id}");
            assert!(in_deep.frame(id).await.is_ok(), "{backend} {id}");
        }
        // The rest stays public: the coadds.
        let coadds = anon
            .frames_of_class(wisecut::model::FrameClass::CoaddedRegriddedFrame)
            .await
            .unwrap();
        assert_eq!(coadds.len(), 3, "{backend}");
    }
}
