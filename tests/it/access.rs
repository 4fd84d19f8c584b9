//! Users, projects and privileges: the fixture every access test shares,
//! and the catalogue-level tests of the visibility rule.
//!
//! The fixture is the tiny sample with a secret part: one reduced frame
//! and its SourceList made private (creator `owner1`, project SECRET), one
//! coadd made project-level in SECRET. `owner1` and `member2` belong to
//! SECRET, `eve` to OTHER; `root` is a superuser. Each user has an API
//! token, so router requests can be made as any of them.

use super::common::{self, TestDb};
use axum::http::StatusCode;
use wisecut::catalog::access::Role;
use wisecut::ids::ObjectId;
use wisecut::model::FrameClass;
use wisecut::web::AppState;

/// Who a request is made as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Who {
    /// No credentials.
    Anonymous,
    /// The creator of the secret objects (member of SECRET).
    Owner,
    /// Another member of SECRET.
    Member,
    /// A member of OTHER only.
    Eve,
    /// The superuser.
    Root,
}

impl Who {
    /// Those who must not see the secret part.
    pub(crate) const OUTSIDERS: [Who; 2] = [Who::Anonymous, Who::Eve];
}

/// The fixture.
pub(crate) struct Secret {
    /// The database (tiny sample ingested).
    pub db: TestDb,
    /// The private reduced frame (creator owner1, project SECRET).
    pub private_frame: ObjectId,
    /// Its file name.
    pub private_filename: String,
    /// The SLID of its SourceList (private too).
    pub private_slid: i64,
    /// The SourceList's object id.
    pub private_list: ObjectId,
    /// A project-level coadd of SECRET.
    pub project_frame: ObjectId,
    /// A public regridded frame made from the private reduced frame.
    pub public_child: Option<ObjectId>,
    /// API tokens by user.
    tokens: Vec<(Who, String)>,
}

pub(crate) const PASSWORD: &str = "correct horse battery";

impl Secret {
    /// Builds the fixture on `db` (which must be fresh).
    pub(crate) async fn new(db: TestDb) -> Secret {
        let db = common::ingested(db).await;
        let c = &db.catalog;
        for (u, su) in [
            ("owner1", false),
            ("member2", false),
            ("eve", false),
            ("root", true),
        ] {
            c.add_user(u, PASSWORD, su).await.unwrap();
        }
        c.add_project("SECRET", "proprietary data").await.unwrap();
        c.add_project("OTHER", "someone else's").await.unwrap();
        c.set_member("SECRET", "owner1", Role::Member)
            .await
            .unwrap();
        c.set_member("SECRET", "member2", Role::Member)
            .await
            .unwrap();
        c.set_member("OTHER", "eve", Role::Admin).await.unwrap();
        let mut tokens = Vec::new();
        for (who, u) in [
            (Who::Owner, "owner1"),
            (Who::Member, "member2"),
            (Who::Eve, "eve"),
            (Who::Root, "root"),
        ] {
            tokens.push((who, c.create_token(u, "tests").await.unwrap()));
        }
        let reduced = c
            .frames_of_class(FrameClass::ReducedScienceFrame)
            .await
            .unwrap();
        // A reduced frame that has a SourceList and a regridded child.
        let conn = common::raw_db(&db).await;
        let mut chosen = None;
        for f in &reduced {
            let lists = common::sql(
                &conn,
                "SELECT slid, object_id FROM source_list WHERE frame_id = $1",
                vec![f.target.object_id.0.into()],
            )
            .await;
            if let Some(r) = lists.first() {
                chosen = Some((
                    f.clone(),
                    r.try_get::<i64>("", "slid").unwrap(),
                    r.try_get::<i64>("", "object_id").unwrap(),
                ));
                break;
            }
        }
        let (frame, slid, list) = chosen.expect("a reduced frame with a SourceList");
        let child = common::sql(
            &conn,
            "SELECT child_id FROM dependency WHERE parent_id = $1",
            vec![frame.target.object_id.0.into()],
        )
        .await
        .into_iter()
        .map(|r| r.try_get::<i64>("", "child_id").unwrap())
        .find(|&id| id != list);
        let coadd = c
            .frames_of_class(FrameClass::CoaddedRegriddedFrame)
            .await
            .unwrap()
            .into_iter()
            .next()
            .expect("a coadd");
        for (id, level) in [
            (frame.target.object_id.0, 1),
            (list, 1),
            (coadd.target.object_id.0, 2),
        ] {
            common::sql(
                &conn,
                "UPDATE process_target SET creator = 'owner1', project = 'SECRET', \
                 privileges = $1 WHERE object_id = $2",
                vec![level.into(), id.into()],
            )
            .await;
        }
        wisecut::vo::obscore::sync_table(c).await.unwrap();
        Secret {
            private_frame: frame.target.object_id,
            private_filename: frame.filename.clone(),
            private_slid: slid,
            private_list: ObjectId(list),
            project_frame: coadd.target.object_id,
            public_child: child.map(ObjectId),
            tokens,
            db,
        }
    }

    /// The `Authorization` header value of `who` (`None`: anonymous).
    pub(crate) fn auth(&self, who: Who) -> Option<String> {
        self.tokens
            .iter()
            .find(|(w, _)| *w == who)
            .map(|(_, t)| format!("Bearer {t}"))
    }

    /// Whether `who` may see the private frame (its creator, the superuser).
    pub(crate) fn sees_private(who: Who) -> bool {
        matches!(who, Who::Owner | Who::Root)
    }

    /// Whether `who` may see the project-level coadd.
    pub(crate) fn sees_project(who: Who) -> bool {
        matches!(who, Who::Owner | Who::Member | Who::Root)
    }

    /// A router state over the fixture.
    pub(crate) fn state(&self) -> AppState {
        super::web::state(&self.db)
    }
}

/// A request as `who` through the router.
pub(crate) async fn request_as(
    st: &AppState,
    secret: &Secret,
    who: Who,
    method: axum::http::Method,
    uri: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let mut b = axum::http::Request::builder().method(method).uri(uri);
    if let Some(a) = secret.auth(who) {
        b = b.header("authorization", a);
    }
    let req = match body {
        Some((ct, bytes)) => b
            .header("content-type", ct)
            .body(axum::body::Body::from(bytes)),
        None => b.body(axum::body::Body::empty()),
    }
    .unwrap();
    let res = wisecut::web::app(st.clone()).oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

/// A GET as `who`.
pub(crate) async fn get_as(
    st: &AppState,
    secret: &Secret,
    who: Who,
    uri: &str,
) -> (StatusCode, Vec<u8>) {
    let (s, _, b) = request_as(st, secret, who, axum::http::Method::GET, uri, None).await;
    (s, b)
}

/// The catalogue as `who` sees it.
pub(crate) async fn catalog_as(secret: &Secret, who: Who) -> wisecut::catalog::Catalog {
    let c = &secret.db.catalog;
    let viewer = match who {
        Who::Anonymous => wisecut::catalog::access::Viewer::anonymous(),
        Who::Owner => c.viewer_of("owner1", None).await.unwrap(),
        Who::Member => c.viewer_of("member2", None).await.unwrap(),
        Who::Eve => c.viewer_of("eve", None).await.unwrap(),
        Who::Root => c.viewer_of("root", None).await.unwrap(),
    };
    c.for_viewer(viewer)
}

const EVERYONE: [Who; 5] = [Who::Anonymous, Who::Owner, Who::Member, Who::Eve, Who::Root];

#[tokio::test]
async fn frames_lists_and_counts_follow_the_privileges_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let all = s.db.catalog.category_counts().await.unwrap();
        let n = |counts: &[wisecut::catalog::CategoryCount], cat: &str| {
            counts.iter().find(|c| c.category == cat).unwrap().count
        };
        for who in EVERYONE {
            let c = catalog_as(&s, who).await;
            let private = c.frame(s.private_frame).await;
            assert_eq!(
                private.is_ok(),
                Secret::sees_private(who),
                "{backend} {who:?}: private frame"
            );
            if let Err(e) = private {
                // Exactly what a missing object says.
                let missing = c.frame(ObjectId(987_654_321)).await.unwrap_err();
                assert_eq!(
                    e.to_string().replace(&s.private_frame.to_string(), "N"),
                    missing.to_string().replace("987654321", "N"),
                    "{backend} {who:?}"
                );
            }
            assert_eq!(
                c.frame_by_filename(&s.private_filename).await.is_ok(),
                Secret::sees_private(who),
                "{backend} {who:?}: by file name"
            );
            assert_eq!(
                c.frame(s.project_frame).await.is_ok(),
                Secret::sees_project(who),
                "{backend} {who:?}: project frame"
            );
            assert_eq!(
                c.source_list(wisecut::ids::Slid(s.private_slid))
                    .await
                    .is_ok(),
                Secret::sees_private(who),
                "{backend} {who:?}: private SourceList"
            );
            let counts = c.category_counts().await.unwrap();
            let hidden_reduced = i64::from(!Secret::sees_private(who));
            assert_eq!(
                n(&counts, "ReducedScienceFrame"),
                n(&all, "ReducedScienceFrame") - hidden_reduced,
                "{backend} {who:?}: count of reduced frames"
            );
            assert_eq!(
                n(&counts, "SourceList"),
                n(&all, "SourceList") - hidden_reduced,
                "{backend} {who:?}: count of SourceLists"
            );
            let list_rows =
                s.db.catalog
                    .source_list(wisecut::ids::Slid(s.private_slid))
                    .await
                    .unwrap()
                    .n_sources;
            assert_eq!(
                n(&counts, "Source"),
                n(&all, "Source") - hidden_reduced * list_rows,
                "{backend} {who:?}: count of sources"
            );
            let reduced = c
                .frames_of_class(FrameClass::ReducedScienceFrame)
                .await
                .unwrap();
            assert_eq!(
                reduced
                    .iter()
                    .any(|f| f.target.object_id == s.private_frame),
                Secret::sees_private(who),
                "{backend} {who:?}: frames of a class"
            );
        }
    }
}

#[tokio::test]
async fn object_pages_answer_404_to_outsiders_as_for_a_missing_object() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let missing = get_as(&st, &s, Who::Anonymous, "/object/987654321").await;
        assert_eq!(missing.0, StatusCode::NOT_FOUND);
        for who in EVERYONE {
            for (id, sees) in [
                (s.private_frame, Secret::sees_private(who)),
                (s.private_list, Secret::sees_private(who)),
                (s.project_frame, Secret::sees_project(who)),
            ] {
                let (status, body) = get_as(&st, &s, who, &format!("/object/{id}")).await;
                if sees {
                    assert_eq!(status, StatusCode::OK, "{backend} {who:?} /object/{id}");
                } else {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{backend} {who:?} /object/{id}"
                    );
                    assert!(Who::OUTSIDERS.contains(&who) || who == Who::Member);
                    let text = String::from_utf8_lossy(&body).replace(&id.to_string(), "N");
                    let want = String::from_utf8_lossy(&missing.1).replace("987654321", "N");
                    assert_eq!(common::error_message(&text), common::error_message(&want));
                }
            }
        }
        let private_uri = format!("/object/{}", s.private_frame);
        let (status, _, _) = request_as(
            &st,
            &s,
            Who::Anonymous,
            axum::http::Method::GET,
            &private_uri,
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(s.public_child.is_some(), "the fixture has a public child");
    }
}

/// pyvo (over requests) as a script authenticates: a Bearer token, HTTP
/// Basic, another project's token and nothing, against a live server with
/// its job worker (`tests/peer/check_access.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vo_clients_see_private_data_only_with_their_owners_credentials() {
    let Some(python) = common::peer_python("the VO access check") else {
        return;
    };
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let frame = s.db.catalog.frame(s.private_frame).await.unwrap();
        let (ra, dec) = frame.center.expect("the private frame is on the sky");
        let st = s.state();
        let worker = st.services.jobs.start();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server =
            tokio::spawn(async move { axum::serve(listener, wisecut::web::app(st)).await });
        let token = |who| {
            s.auth(who)
                .unwrap()
                .trim_start_matches("Bearer ")
                .to_owned()
        };
        let args: Vec<String> = vec![
            format!("http://{addr}"),
            "--token".into(),
            token(Who::Owner),
            "--eve-token".into(),
            token(Who::Eve),
            "--user".into(),
            "owner1".into(),
            "--password".into(),
            PASSWORD.into(),
            "--private".into(),
            s.private_frame.0.to_string(),
            "--ra".into(),
            ra.to_string(),
            "--dec".into(),
            dec.to_string(),
        ];
        let python = python.clone();
        let out = tokio::task::spawn_blocking(move || {
            let args: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
            common::run_peer(&python, "check_access.py", &args)
        })
        .await
        .unwrap();
        server.abort();
        worker.abort();
        for area in ["sia", "tap", "async", "denied"] {
            assert!(
                out.contains(&format!("access: {area} ok")),
                "{backend}: {area}\n{out}"
            );
        }
    }
}

#[tokio::test]
async fn one_query_viewers_agree_with_the_long_way_and_revocation_is_immediate() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let c = &s.db.catalog;
        for (who, user) in [
            (Who::Owner, "owner1"),
            (Who::Eve, "eve"),
            (Who::Root, "root"),
        ] {
            let token = s
                .auth(who)
                .unwrap()
                .trim_start_matches("Bearer ")
                .to_owned();
            let quick = c.viewer_by_token(&token).await.unwrap();
            let long = c.viewer_of(user, None).await.unwrap();
            assert_eq!(quick.as_ref(), Some(&long), "{backend} {user}: by token");
            let secret = c.create_session(user, Some("SECRET")).await.unwrap();
            let (session, v) = c.viewer_by_session(&secret).await.unwrap().unwrap();
            assert_eq!(session.user, user);
            assert_eq!(
                v,
                c.viewer_of(user, Some("SECRET")).await.unwrap(),
                "{backend} {user}: by session"
            );
            c.end_session(&secret).await.unwrap();
            assert!(c.viewer_by_session(&secret).await.unwrap().is_none());
        }
        let token = c.create_token("member2", "to revoke").await.unwrap();
        assert!(c.viewer_by_token(&token).await.unwrap().is_some());
        let id = c.tokens("member2").await.unwrap()[0].id;
        c.revoke_token("member2", id).await.unwrap();
        assert!(
            c.viewer_by_token(&token).await.unwrap().is_none(),
            "{backend}: a revoked token still works"
        );
        // Someone else's token number is "not found", not revocable.
        let eves = c.tokens("eve").await.unwrap()[0].id;
        assert!(c.revoke_token("member2", eves).await.is_err());
        assert!(c.viewer_by_token("wct_nothing").await.unwrap().is_none());
    }
}

/// `html` with every CSRF token blanked: each anonymous page view gets a
/// fresh browser cookie, hence its own token, and comparisons of a hidden
/// object's page with a missing one's must not see that difference.
pub(crate) fn without_csrf(html: &str) -> String {
    let mut out = html.to_owned();
    for marker in ["name=\"csrf-token\" content=\"", "name=\"csrf\" value=\""] {
        let mut from = 0;
        while let Some(i) = out[from..].find(marker) {
            let start = from + i + marker.len();
            let end = out[start..].find('"').map_or(out.len(), |j| start + j);
            out.replace_range(start..end, "CSRF");
            from = start + 4;
        }
    }
    out
}
