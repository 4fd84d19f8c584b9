//! Batch positions jobs and the RGB maker through the router: a CSV with a
//! malformed row and an unmatched position gives per-line reports and still
//! processes the other rows; `/api/rgb` makes pictures of the requested size
//! and refuses bad parameters with the parameter's name.

use super::common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;
use wisecut::model::FrameClass;

async fn post(st: &wisecut::web::AppState, uri: &str, body: &str) -> (StatusCode, Vec<u8>) {
    let res = wisecut::web::app(st.clone())
        .oneshot(
            Request::post(uri)
                .header("content-type", "text/csv")
                .body(Body::from(body.to_owned()))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    (
        status,
        res.into_body().collect().await.unwrap().to_bytes().to_vec(),
    )
}

async fn wait_done(st: &wisecut::web::AppState, id: &str) -> serde_json::Value {
    for _ in 0..600 {
        let j = common::fetch_json(st, &format!("/api/jobs/{id}")).await;
        match j["status"].as_str() {
            Some("done") | Some("failed") => return j,
            _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
        }
    }
    panic!("job {id} did not finish in 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_reports_malformed_rows_by_line_and_processes_the_others() {
    let db = common::ingested(common::sqlite().await).await;
    let coadds = db
        .catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap();
    let (ra, dec) = coadds[0].center.unwrap();
    let st = common::state_with(&db, |_| {});
    st.services.jobs.start();
    // Line 1 header, 2 good, 3 comment, 4 malformed DEC, 5 nowhere, 6 good
    // by source, 7 wrong field count.
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let csv = format!(
        "RA,DEC,SLID,SID,NAME,XSIZE\n{ra},{dec},,,centre,0.5\n# a comment\n{ra},abc,,,bad,\n\
         10.0,-40.0,,,nowhere,\n,,{slid},1,bysource,0.3\n1,2,3\n"
    );
    let (status, body) = post(&st, "/api/batch?make_rgb_lupton=true", &csv).await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let job: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let id = job["id"].as_str().unwrap().to_owned();
    assert!(super::jobs::is_public_id(&id), "{id}");
    // The 202 is the job's JSON with absolute links, as /api/deps answers
    // (no Host in this request: the configured public URL).
    for (key, path) in [
        ("poll", format!("/api/jobs/{id}")),
        ("page", format!("/jobs/{id}")),
    ] {
        let url = job[key].as_str().unwrap_or_default();
        assert!(
            url.starts_with("http") && url.ends_with(&path),
            "{key}: {job}"
        );
    }
    let done = wait_done(&st, &id).await;
    assert_eq!(done["status"], "done", "{done}");
    let log = done["log"].as_str().unwrap();
    assert!(log.contains("line 4: DEC"), "{log}");
    assert!(log.contains("line 7:"), "{log}");
    assert!(log.contains("line 5: unmatched"), "{log}");
    // summary.json says the same, and lists the good rows' files.
    let (s, _, body) = common::fetch_full(&st, &format!("/jobs/{id}/files/summary.json")).await;
    assert_eq!(s, StatusCode::OK);
    let summary: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let malformed: Vec<i64> = summary["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["line"].as_i64().unwrap())
        .collect();
    assert_eq!(malformed, vec![4, 7]);
    let unmatched = summary["unmatched"].as_array().unwrap();
    assert_eq!(unmatched.len(), 1);
    assert_eq!(unmatched[0]["line"], 5);
    let rows = summary["rows"].as_array().unwrap();
    let ok: Vec<&serde_json::Value> = rows.iter().filter(|r| r["status"] == "ok").collect();
    assert_eq!(ok.len(), 2, "{rows:?}");
    for r in &ok {
        let files = r["files"].as_array().unwrap();
        assert!(
            files.iter().any(|f| f.as_str().unwrap().ends_with(".fits")),
            "{r}"
        );
        assert!(
            files
                .iter()
                .any(|f| f.as_str().unwrap().ends_with("rgb_lupton.png")),
            "{r}"
        );
        for f in files {
            let (s, _, b) =
                common::fetch_full(&st, &format!("/jobs/{id}/files/{}", f.as_str().unwrap())).await;
            assert_eq!(s, StatusCode::OK, "{f}");
            assert!(!b.is_empty());
        }
    }
    // The row given by source is cut around that source's position.
    let src = db
        .catalog
        .source(wisecut::ids::Slid(slid), wisecut::ids::Sid(1))
        .await
        .unwrap();
    let by_source = rows.iter().find(|r| r["name"] == "bysource").unwrap();
    assert!((by_source["ra"].as_f64().unwrap() - src.ra).abs() < 1e-12);
    // positions_<job>.csv has one line per processed row.
    let (s, _, csv_out) =
        common::fetch_full(&st, &format!("/jobs/{id}/files/positions_{id}.csv")).await;
    assert_eq!(s, StatusCode::OK);
    let text = String::from_utf8(csv_out).unwrap();
    assert_eq!(text.lines().count(), 1 + rows.len(), "{text}");
    assert!(text.contains("unmatched"));
}

#[tokio::test]
async fn batch_with_a_broken_header_is_refused_at_once() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |_| {});
    let (status, body) = post(&st, "/api/batch", "FOO,BAR\n1,2\n").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let msg = String::from_utf8_lossy(&body);
    assert!(
        msg.starts_with("positions:") && msg.contains("FOO"),
        "{msg}"
    );
    let (status, body) = post(&st, "/api/batch?xsize=-1", "RA,DEC\n1,2\n").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = post(&st, "/api/batch", "").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn rgb_pictures_have_the_requested_size_and_reach_the_gallery() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |_| {});
    let coadds = db
        .catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap();
    assert!(coadds.len() >= 3, "the tiny survey has three coadds");
    let (ra, dec) = coadds[0].center.unwrap();
    let ids: Vec<String> = coadds
        .iter()
        .take(3)
        .map(|f| f.target.object_id.to_string())
        .collect();
    // One browser makes them all: the gallery shows a visitor its own
    // pictures (and those shared with its project).
    let cookie = wisecut::catalog::access::new_secret();
    let as_browser = |method: axum::http::Method, uri: String| {
        let (st, cookie) = (st.clone(), cookie.clone());
        async move { super::access_jobs::browser_request(&st, &cookie, method, &uri, None).await }
    };
    for method in ["lupton", "stiff", "linear"] {
        let uri = format!(
            "/api/rgb?red={}&green={}&blue={}&ra={ra}&dec={dec}&size=41&unit=px&method={method}",
            ids[0], ids[1], ids[2]
        );
        let (s, h, body) = as_browser(axum::http::Method::POST, uri).await;
        assert_eq!(
            s,
            StatusCode::OK,
            "{method}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(h["content-type"], "image/png");
        let img = image::load_from_memory(&body).unwrap().to_rgb8();
        assert_eq!(img.dimensions(), (41, 41), "{method}");
        // Not a blank picture.
        let distinct: std::collections::HashSet<_> = img.pixels().map(|p| p.0).collect();
        assert!(distinct.len() > 50, "{method}: {} colours", distinct.len());
    }
    // A whole frame by filename, as JPEG.
    let uri = format!(
        "/api/rgb?red={}&green={}&blue={}&format=jpeg",
        coadds[0].filename, coadds[1].filename, coadds[2].filename
    );
    let (s, h, body) = as_browser(axum::http::Method::POST, uri).await;
    assert_eq!(s, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h["content-type"], "image/jpeg");
    let img = image::load_from_memory(&body).unwrap();
    assert_eq!(
        (img.width() as i32, img.height() as i32),
        (coadds[0].naxis1, coadds[0].naxis2)
    );
    // The gallery shows all four.
    let (s, _, html) = as_browser(axum::http::Method::GET, "/rgb/gallery".into()).await;
    assert_eq!(s, StatusCode::OK);
    let doc = scraper::Html::parse_document(&String::from_utf8(html).unwrap());
    assert_eq!(doc.select(&common::sel("#gallery figure")).count(), 4);
    // A picture whose files are not on this server is not shown (it would
    // be a broken image).
    let (_, rgb_jobs) = db
        .catalog
        .jobs(
            Some(wisecut::catalog::job_records::JobKind::Rgb),
            None,
            0,
            1,
        )
        .await
        .unwrap();
    std::fs::remove_dir_all(st.config.jobs_dir.join(rgb_jobs[0].id.to_string())).unwrap();
    let (_, _, html) = as_browser(axum::http::Method::GET, "/rgb/gallery".into()).await;
    let doc = scraper::Html::parse_document(&String::from_utf8(html).unwrap());
    assert_eq!(doc.select(&common::sel("#gallery figure")).count(), 3);
    // Bad input names the parameter; unknown frames are 404.
    for (uri, param) in [
        (
            format!(
                "/api/rgb?red={}&green={}&blue={}&method=foo",
                ids[0], ids[1], ids[2]
            ),
            "method",
        ),
        (
            format!(
                "/api/rgb?red={}&green={}&blue={}&stretch=0",
                ids[0], ids[1], ids[2]
            ),
            "stretch",
        ),
        (
            format!(
                "/api/rgb?red={}&green={}&blue={}&ra=1",
                ids[0], ids[1], ids[2]
            ),
            "dec",
        ),
        ("/api/rgb?target=X&filters=gr".to_string(), "filters"),
        (format!("/api/rgb?red={}&green={}", ids[0], ids[1]), "red"),
        (
            format!(
                "/api/rgb?red={}&green={}&blue={}&bogus=1",
                ids[0], ids[1], ids[2]
            ),
            "bogus",
        ),
    ] {
        let (s, _, body) = common::submit_full(&st, &uri).await;
        let msg = String::from_utf8_lossy(&body);
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {msg}");
        assert!(msg.starts_with(param), "{uri}: {msg}");
    }
    let (s, _, _) = common::submit_full(
        &st,
        &format!("/api/rgb?red=999999&green={}&blue={}", ids[1], ids[2]),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
