//! Jobs belong to their submitter (issue 17): URLs name them by an
//! unguessable public id; a job is private by default, shareable by link
//! or with its project; an anonymous browser sees its own jobs only; the
//! runner makes a job with its owner's view of the catalogue.
//!
//! Uses the access fixture ([`super::access::Secret`]): owner1 and member2
//! in SECRET, eve in OTHER, each with an API token.

use super::access::{Secret, Who, get_as, request_as};
use super::common;
use axum::http::{HeaderMap, Method, StatusCode};
use wisecut::catalog::job_records::{JobKind, JobOwner, JobStatus};
use wisecut::model::FrameClass;
use wisecut::web::AppState;

/// The CSRF token of a browser's forms, as the auth layer derives it from
/// the cookie (`Identity::csrf_token`): 32 hex digits of
/// sha256("csrf\0" + cookie), computed here independently.
pub(crate) fn csrf_of(cookie: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"csrf\0");
    h.update(cookie.as_bytes());
    hex::encode(h.finalize())[..32].to_owned()
}

/// A request from a browser with cookie `cookie` (no session row: an
/// anonymous browser), carrying the CSRF token its forms would.
pub(crate) async fn browser_request(
    st: &AppState,
    cookie: &str,
    method: Method,
    uri: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let b = axum::http::Request::builder()
        .method(method)
        .uri(uri)
        .header("cookie", format!("wisecut_session={cookie}"))
        .header("x-csrf-token", csrf_of(cookie));
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

fn text(b: &[u8]) -> String {
    super::access::without_csrf(&String::from_utf8_lossy(b))
}

/// A well-formed public id that names no job.
const MISSING: &str = "0123456789abcdef0123456789abcdef";

/// The four job URLs of `id` (page, API, one file, ZIP).
fn job_urls(id: &str) -> [String; 4] {
    [
        format!("/jobs/{id}"),
        format!("/api/jobs/{id}"),
        format!("/jobs/{id}/files/summary.json"),
        format!("/jobs/{id}/zip"),
    ]
}

/// Asserts `who` gets every job URL of `id` answered exactly as for a job
/// that does not exist (404, the same message with the id replaced).
async fn unseen(st: &AppState, s: &Secret, who: Who, id: &str, what: &str) {
    for (uri, missing_uri) in job_urls(id).iter().zip(job_urls(MISSING).iter()) {
        let (status, body) = get_as(st, s, who, uri).await;
        let (m_status, m_body) = get_as(st, s, who, missing_uri).await;
        assert_eq!(m_status, StatusCode::NOT_FOUND, "{what}: {missing_uri}");
        assert_eq!(status, StatusCode::NOT_FOUND, "{what} {who:?}: {uri}");
        assert_eq!(
            text(&body).replace(id, "ID"),
            text(&m_body).replace(MISSING, "ID"),
            "{what} {who:?}: {uri} answers unlike a missing job"
        );
    }
    let (status, body) = get_as(st, s, who, "/jobs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(!text(&body).contains(id), "{what} {who:?}: listed in /jobs");
}

/// Asserts `who` may read every job URL of the finished job `id`, and
/// returns its JSON.
async fn seen(st: &AppState, s: &Secret, who: Who, id: &str, what: &str) -> serde_json::Value {
    for uri in job_urls(id) {
        let (status, body) = get_as(st, s, who, &uri).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{what} {who:?}: {uri}: {}",
            text(&body)
        );
    }
    let (_, body) = get_as(st, s, who, &format!("/api/jobs/{id}")).await;
    serde_json::from_slice(&body).unwrap()
}

/// Whether `who`'s `/jobs` list links job `id`.
async fn listed(st: &AppState, s: &Secret, who: Who, id: &str) -> bool {
    let (status, body) = get_as(st, s, who, "/jobs").await;
    assert_eq!(status, StatusCode::OK);
    text(&body).contains(&format!("/jobs/{id}"))
}

/// Polls a job as `who` until it is done or failed.
async fn wait_done(st: &AppState, s: &Secret, who: Who, id: &str) -> serde_json::Value {
    for _ in 0..1200 {
        let (status, body) = get_as(st, s, who, &format!("/api/jobs/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        if v["status"] == "done" || v["status"] == "failed" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish in 60 s");
}

/// A batch CSV of one position on a frame everyone may see.
async fn public_csv(s: &Secret, name: &str) -> String {
    let anon = super::access::catalog_as(s, Who::Anonymous).await;
    let frames = anon
        .frames_of_class(FrameClass::ReducedScienceFrame)
        .await
        .unwrap();
    let (ra, dec) = frames
        .iter()
        .find_map(|f| f.center)
        .expect("a public frame with a centre");
    format!("RA,DEC,NAME,XSIZE\n{ra},{dec},{name},0.2\n")
}

/// Submits a batch as `who`; returns the job's public id.
async fn batch_as(st: &AppState, s: &Secret, who: Who, csv: &str) -> String {
    let (status, headers, body) = request_as(
        st,
        s,
        who,
        Method::POST,
        "/api/batch",
        Some(("text/csv", csv.as_bytes().to_vec())),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{}", text(&body));
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = v["id"].as_str().expect("the id is a string").to_owned();
    assert!(super::jobs::is_public_id(&id), "{id}");
    assert!(
        headers["location"]
            .to_str()
            .unwrap()
            .ends_with(&format!("/api/jobs/{id}")),
        "{headers:?}"
    );
    id
}

/// Changes a job's sharing as `who`; returns the status.
async fn share_as(st: &AppState, s: &Secret, who: Who, id: &str, share: &str) -> StatusCode {
    let (status, _, _) = request_as(
        st,
        s,
        who,
        Method::POST,
        &format!("/jobs/{id}/share"),
        Some((
            "application/x-www-form-urlencoded",
            format!("share={share}&csrf=x").into_bytes(),
        )),
    )
    .await;
    status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_csv_is_its_owners_until_shared_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let worker = st.services.jobs.start();
        let secret_name = "owner1-private-target";
        let csv = public_csv(&s, secret_name).await;
        let id = batch_as(&st, &s, Who::Owner, &csv).await;
        // Ids are not sequential: another job's id has nothing in common
        // with it, and neither is the internal number.
        let other = batch_as(&st, &s, Who::Owner, &public_csv(&s, "second").await).await;
        assert_ne!(id, other);
        let (n1, n2) = (
            super::jobs::job_number(&s.db, &id).await.0,
            super::jobs::job_number(&s.db, &other).await.0,
        );
        assert_eq!(n2, n1 + 1, "{backend}: the internal numbers are sequential");
        assert_ne!(id, format!("{n1:032x}"));

        let done = wait_done(&st, &s, Who::Owner, &id).await;
        assert_eq!(done["status"], "done", "{backend}: {done:#}");
        let v = seen(&st, &s, Who::Owner, &id, backend).await;
        assert!(
            v.to_string().contains(secret_name),
            "the owner reads the CSV"
        );
        assert_eq!(v["share"], "private");
        assert!(listed(&st, &s, Who::Owner, &id).await);

        // Nobody else: anonymous, another project, nor a member of the
        // owner's own project while it is private.
        for who in [Who::Anonymous, Who::Eve, Who::Member] {
            unseen(&st, &s, who, &id, &format!("{backend} private")).await;
        }
        // Others cannot change its sharing either: "not found".
        for who in [Who::Anonymous, Who::Eve, Who::Member] {
            assert_eq!(
                share_as(&st, &s, who, &id, "link").await,
                StatusCode::NOT_FOUND,
                "{backend} {who:?}"
            );
        }
        // A bad value is a 400 naming the field and the choices.
        let (status, _, body) = request_as(
            &st,
            &s,
            Who::Owner,
            Method::POST,
            &format!("/jobs/{id}/share"),
            Some((
                "application/x-www-form-urlencoded",
                b"share=everyone".to_vec(),
            )),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", text(&body));
        let msg = text(&body);
        assert!(
            msg.contains("share") && msg.contains("private") && msg.contains("link"),
            "{msg}"
        );

        // Shared with the project: member2 sees and lists it, eve and
        // anonymous visitors still do not.
        assert_eq!(
            share_as(&st, &s, Who::Owner, &id, "project").await,
            StatusCode::SEE_OTHER
        );
        let v = seen(&st, &s, Who::Member, &id, &format!("{backend} project")).await;
        assert_eq!(v["share"], "project");
        assert!(listed(&st, &s, Who::Member, &id).await);
        for who in [Who::Anonymous, Who::Eve] {
            unseen(&st, &s, who, &id, &format!("{backend} project")).await;
        }
        // A member it is shared with still may not change its sharing.
        assert_eq!(
            share_as(&st, &s, Who::Member, &id, "link").await,
            StatusCode::NOT_FOUND
        );

        // Shared by link: anyone with the id sees it; nobody else lists it.
        assert_eq!(
            share_as(&st, &s, Who::Owner, &id, "link").await,
            StatusCode::SEE_OTHER
        );
        for who in [Who::Anonymous, Who::Eve, Who::Member] {
            seen(&st, &s, who, &id, &format!("{backend} link")).await;
            assert!(!listed(&st, &s, who, &id).await, "{backend} {who:?}");
        }
        // Private again: gone for everyone else.
        assert_eq!(
            share_as(&st, &s, Who::Owner, &id, "private").await,
            StatusCode::SEE_OTHER
        );
        for who in [Who::Anonymous, Who::Eve, Who::Member] {
            unseen(&st, &s, who, &id, &format!("{backend} private again")).await;
        }
        // The superuser sees everything.
        seen(&st, &s, Who::Root, &id, &format!("{backend} root")).await;
        worker.abort();
    }
}

#[tokio::test]
async fn an_anonymous_browser_sees_its_own_jobs_only_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let csv = public_csv(&s, "browser-a-target").await;
        let (a, b) = (
            wisecut::catalog::access::new_secret(),
            wisecut::catalog::access::new_secret(),
        );
        let submit = |cookie: String| {
            let (st, csv) = (st.clone(), csv.clone());
            async move {
                let (status, _, body) = browser_request(
                    &st,
                    &cookie,
                    Method::POST,
                    "/api/batch",
                    Some(("text/csv", csv.into_bytes())),
                )
                .await;
                assert_eq!(status, StatusCode::ACCEPTED, "{}", text(&body));
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                v["id"].as_str().unwrap().to_owned()
            }
        };
        let id = submit(a.clone()).await;
        assert!(super::jobs::is_public_id(&id));
        // Browser A: its page, its JSON, its list.
        for uri in [format!("/jobs/{id}"), format!("/api/jobs/{id}")] {
            let (status, _, body) = browser_request(&st, &a, Method::GET, &uri, None).await;
            assert_eq!(status, StatusCode::OK, "{backend} {uri}: {}", text(&body));
        }
        let (_, _, list) = browser_request(&st, &a, Method::GET, "/jobs", None).await;
        assert!(text(&list).contains(&format!("/jobs/{id}")), "{backend}");
        // Its page offers the owner the share control, with the CSRF token.
        let (_, _, page) =
            browser_request(&st, &a, Method::GET, &format!("/jobs/{id}"), None).await;
        let doc = scraper::Html::parse_document(&String::from_utf8_lossy(&page));
        let token = doc
            .select(&common::sel("form#share-form input[name=csrf]"))
            .next()
            .and_then(|e| e.value().attr("value").map(str::to_owned));
        assert_eq!(token.as_deref(), Some(csrf_of(&a).as_str()), "{backend}");
        // Browser B, a script without cookie, a signed-in user: not found,
        // as a missing job.
        for uri in [format!("/jobs/{id}"), format!("/api/jobs/{id}")] {
            let (status, _, _) = browser_request(&st, &b, Method::GET, &uri, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend} B {uri}");
        }
        let (_, _, list) = browser_request(&st, &b, Method::GET, "/jobs", None).await;
        assert!(!text(&list).contains(&id), "{backend}: B lists A's job");
        unseen(
            &st,
            &s,
            Who::Anonymous,
            &id,
            &format!("{backend} no cookie"),
        )
        .await;
        unseen(&st, &s, Who::Eve, &id, &format!("{backend} eve")).await;
        // The same request: the same job for A, another for B and owner1.
        assert_eq!(submit(a.clone()).await, id, "{backend}: A's resubmission");
        let id_b = submit(b.clone()).await;
        assert_ne!(id_b, id, "{backend}: two browsers share a job");
        let id_owner = batch_as(&st, &s, Who::Owner, &csv).await;
        assert!(id_owner != id && id_owner != id_b, "{backend}");
        // Shared by link, B sees it (but does not list it).
        let (status, _, body) = browser_request(
            &st,
            &a,
            Method::POST,
            &format!("/jobs/{id}/share"),
            Some((
                "application/x-www-form-urlencoded",
                format!("share=link&csrf={}", csrf_of(&a)).into_bytes(),
            )),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}: {}", text(&body));
        let (status, _, _) =
            browser_request(&st, &b, Method::GET, &format!("/api/jobs/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{backend}");
        let (_, _, list) = browser_request(&st, &b, Method::GET, "/jobs", None).await;
        assert!(!text(&list).contains(&id), "{backend}");
        // An anonymous browser's job cannot be shared with a project.
        let (status, _, _) = browser_request(
            &st,
            &a,
            Method::POST,
            &format!("/jobs/{id}/share"),
            Some((
                "application/x-www-form-urlencoded",
                b"share=project".to_vec(),
            )),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{backend}");
    }
}

#[tokio::test]
async fn a_job_submitted_without_identity_is_reachable_by_its_link_only() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let id = batch_as(&st, &s, Who::Anonymous, &public_csv(&s, "script").await).await;
        let job = s.db.catalog.job_by_public_id(&id).await.unwrap();
        assert!(job.is_ownerless(), "{backend}: {job:?}");
        for who in [Who::Anonymous, Who::Eve, Who::Owner] {
            let (status, _) = get_as(&st, &s, who, &format!("/api/jobs/{id}")).await;
            assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
            assert!(!listed(&st, &s, who, &id).await, "{backend} {who:?}");
        }
        // Nobody owns it, so nobody may make it private.
        assert_eq!(
            share_as(&st, &s, Who::Owner, &id, "private").await,
            StatusCode::NOT_FOUND
        );
    }
}

#[tokio::test]
async fn deps_jobs_use_their_owners_view_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let uri = |slid: i64| format!("/api/deps?slid={slid}&ids=1&classes=reduced&size=16");
        // Anonymous (no cookie) and eve: the private SourceList is "not
        // found", exactly as one that does not exist.
        let missing_slid = 987_654_321;
        for who in [Who::Anonymous, Who::Eve] {
            let (status, _, body) =
                request_as(&st, &s, who, Method::POST, &uri(s.private_slid), None).await;
            let (m_status, _, m_body) =
                request_as(&st, &s, who, Method::POST, &uri(missing_slid), None).await;
            assert_eq!(
                status,
                StatusCode::NOT_FOUND,
                "{backend} {who:?}: {}",
                text(&body)
            );
            assert_eq!(m_status, StatusCode::NOT_FOUND);
            assert_eq!(
                text(&body).replace(&s.private_slid.to_string(), "N"),
                text(&m_body).replace(&missing_slid.to_string(), "N"),
                "{backend} {who:?}"
            );
        }
        // owner1: made, with cutouts.
        let (status, _, body) = request_as(
            &st,
            &s,
            Who::Owner,
            Method::POST,
            &uri(s.private_slid),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{backend}: {}", text(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "done", "{backend}: {v:#}");
        let row = &v["result"]["rows"][0];
        assert!(row["error"].is_null(), "{backend}: {row}");
        let cutouts: usize = row["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_array().unwrap().len())
            .sum();
        assert!(cutouts >= 1, "{backend}: {row}");

        // The runner itself makes a job with its owner's view, not the
        // system's: the same stored request, queued for an anonymous
        // browser, for owner1, and naming a list that does not exist.
        let params = |slid: i64| {
            serde_json::to_value(wisecut::products::dependency_cutouts::DepParams {
                slid: Some(slid),
                ids: "1".into(),
                classes: "reduced".into(),
                size: Some(16.0),
                ..Default::default()
            })
            .unwrap()
        };
        let c = &s.db.catalog;
        let queue = |owner: JobOwner, slid: i64| {
            let params = params(slid);
            async move {
                c.create_keyed_job(
                    JobKind::DependencyCutouts,
                    "runner view",
                    &params,
                    None,
                    None,
                    &owner,
                )
                .await
                .unwrap()
            }
        };
        let stranger = queue(JobOwner::browser("an-anonymous-browser"), s.private_slid).await;
        let owner = queue(JobOwner::user("owner1", Some("SECRET")), s.private_slid).await;
        let nothing = queue(JobOwner::user("owner1", Some("SECRET")), missing_slid).await;
        let worker = st.services.jobs.start();
        let mut finished = Vec::new();
        for job in [&stranger, &owner, &nothing] {
            let mut j = c.job(job.id).await.unwrap();
            for _ in 0..1200 {
                if matches!(j.status, JobStatus::Done | JobStatus::Failed) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                j = c.job(job.id).await.unwrap();
            }
            finished.push(j);
        }
        worker.abort();
        let (stranger, owner, nothing) = (&finished[0], &finished[1], &finished[2]);
        assert_eq!(owner.status, JobStatus::Done, "{backend}: {owner:?}");
        assert_eq!(stranger.status, nothing.status, "{backend}: {stranger:?}");
        assert_eq!(
            stranger
                .error
                .as_deref()
                .unwrap_or_default()
                .replace(&s.private_slid.to_string(), "N"),
            nothing
                .error
                .as_deref()
                .unwrap_or_default()
                .replace(&missing_slid.to_string(), "N"),
            "{backend}: the stranger's job fails as for a missing list"
        );
        assert!(
            stranger.status == JobStatus::Failed
                || stranger.result.as_ref().is_some_and(|r| r["files"] == 0),
            "{backend}: {stranger:?}"
        );
    }
}

#[tokio::test]
async fn tap_async_jobs_belong_to_their_submitter_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let (status, headers, body) = request_as(
            &st,
            &s,
            Who::Owner,
            Method::POST,
            "/vo/tap/async",
            Some((
                "application/x-www-form-urlencoded",
                b"LANG=ADQL&QUERY=SELECT+TOP+1+frame_id+FROM+ivoa.obscore".to_vec(),
            )),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}: {}", text(&body));
        let location = headers["location"].to_str().unwrap().to_owned();
        let path = location[location.find("/vo/tap/async/").unwrap()..].to_owned();
        let id = path.trim_start_matches("/vo/tap/async/").to_owned();
        assert!(super::jobs::is_public_id(&id), "{backend}: {location}");
        let (status, body) = get_as(&st, &s, Who::Owner, &path).await;
        assert_eq!(status, StatusCode::OK, "{backend}");
        assert!(text(&body).contains(&id));
        let (_, list) = get_as(&st, &s, Who::Owner, "/vo/tap/async").await;
        assert!(text(&list).contains(&id), "{backend}: the owner lists it");
        let missing = format!("/vo/tap/async/{MISSING}");
        for who in [Who::Anonymous, Who::Eve, Who::Member] {
            let (status, body) = get_as(&st, &s, who, &path).await;
            let (m_status, m_body) = get_as(&st, &s, who, &missing).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?}");
            assert_eq!(m_status, StatusCode::NOT_FOUND);
            assert_eq!(
                text(&body).replace(&id, "ID"),
                text(&m_body).replace(MISSING, "ID"),
                "{backend} {who:?}"
            );
            let (status, _) = get_as(&st, &s, who, &format!("{path}/phase")).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?}");
            let (_, list) = get_as(&st, &s, who, "/vo/tap/async").await;
            assert!(!text(&list).contains(&id), "{backend} {who:?} lists it");
            // Nor may they delete it.
            let (status, _, _) = request_as(&st, &s, who, Method::DELETE, &path, None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?}");
        }
        let (status, _) = get_as(&st, &s, Who::Owner, &path).await;
        assert_eq!(status, StatusCode::OK, "{backend}: still there");
    }
}
