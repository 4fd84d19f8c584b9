//! The server under heavy and hostile use: memory is a budget (work that
//! cannot fit is refused, work that cannot fit *now* waits or gets a 503),
//! one size limit holds for every way of asking for pixels, and jobs keep a
//! footprint that does not grow with their number of sources.

use std::time::Duration;

use axum::http::StatusCode;
use wisecut::model::FrameClass;

use super::common;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Regression: sixteen 6000² cutouts at once took 4 GB. Now a cutout that
/// could never fit the memory budget is refused before any pixel is read,
/// saying how much it needs and what the budget is.
#[tokio::test]
async fn a_cutout_that_can_never_fit_the_memory_budget_is_refused() {
    let db = common::ingested(common::sqlite().await).await;
    // 100 MiB in all leaves the 64 MiB minimum for work.
    let st = common::state_with(&db, |c| c.memory_bytes = 100 << 20);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id;
    // A picture of 3000² px needs several copies of its pixels (a plain
    // FITS cutout of the same size, copied row by row, would fit).
    let (s, _, body) = common::fetch(
        &st,
        &format!("/api/cutout?frame={id}&x=1&y=1&size=3000&format=png"),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{}", text(&body));
    let msg = text(&body);
    assert!(
        msg.contains("MiB of memory") && msg.contains("64 MiB"),
        "{msg}"
    );
    // A small one is fine.
    let (s, _, _) = common::fetch(&st, &format!("/api/cutout?frame={id}&x=50&y=50&size=64")).await;
    assert_eq!(s, StatusCode::OK);
}

/// Work that would fit but not now waits for memory, for a bounded time,
/// and is then answered 503 with `Retry-After`; once memory is free the
/// same request succeeds.
#[tokio::test]
async fn a_request_waits_for_memory_then_gets_503_with_retry_after() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| {
        c.memory_bytes = 100 << 20;
        c.limits.memory_wait = Duration::from_millis(300);
    });
    let budget = std::sync::Arc::clone(&st.services.products.budget);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let uri = format!(
        "/api/cutout?frame={}&x=50&y=50&size=200&format=png",
        f.target.object_id
    );
    // Everything but a little is taken by someone else.
    let hold = budget
        .reserve(budget.total() - (256 << 10), "the test")
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let (s, h, body) = common::fetch_full(&st, &uri).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{}", text(&body));
    assert!(t.elapsed() >= Duration::from_millis(250), "it waited");
    assert_eq!(h["retry-after"], "2");
    assert!(text(&body).contains("memory"), "{}", text(&body));
    drop(hold);
    let (s, _, _) = common::fetch(&st, &uri).await;
    assert_eq!(s, StatusCode::OK);
    // Nothing stays reserved once the responses are gone.
    assert_eq!(budget.available(), budget.total());
}

/// Regression: `/api/rgb` had a limit of its own (20,000 px) and made a
/// 14,998² picture; thumbnails, the image view's renders and SODA had none.
/// All of them now obey `--max-cutout`.
#[tokio::test]
async fn rgb_thumbnails_renders_and_soda_obey_the_cutout_size_limit() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| c.max_cutout_px = 100);
    let coadds = db
        .catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap();
    let c = &coadds[0];
    assert!(c.naxis1 > 100, "the coadd is bigger than the limit");
    let (ra, dec) = c.center.unwrap();
    let ids: Vec<String> = coadds
        .iter()
        .take(3)
        .map(|f| f.target.object_id.to_string())
        .collect();
    let rgb = format!(
        "/api/rgb?red={}&green={}&blue={}&ra={ra}&dec={dec}&size=200&unit=px",
        ids[0], ids[1], ids[2]
    );
    let id = c.target.object_id;
    for (uri, want) in [
        (rgb.clone(), "limit of 100 px"),
        (format!("/thumb/{id}"), "limit of 100 px"),
        (
            format!("/render/{id}?x=100&y=100&width=150&height=150&format=png"),
            "limit of 100 px",
        ),
        (
            format!("/vo/soda/sync?ID=ivo://wisecut/obj?{id}&CIRCLE={ra}+{dec}+0.05"),
            "UsageError",
        ),
    ] {
        let (s, _, body) = if uri.starts_with("/api/rgb") {
            common::submit(&st, &uri).await
        } else {
            common::fetch(&st, &uri).await
        };
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {}", text(&body));
        assert!(text(&body).contains(want), "{uri}: {}", text(&body));
    }
    // Within the limit, each works.
    let small = rgb.replace("size=200", "size=60");
    let (s, _, body) = common::submit(&st, &small).await;
    assert_eq!(s, StatusCode::OK, "{}", text(&body));
}

/// Regression: a 386-source dependency-cutout job grew to 14 GB because
/// every cutout was kept until the end. Sources are now made one after the
/// other, so the most memory ever reserved for twelve sources is what the
/// largest of them needs alone.
#[tokio::test]
async fn dependency_cutouts_take_the_memory_of_one_source_however_many_are_asked() {
    let db = common::ingested(common::sqlite().await).await;
    let (slid, _, n) = common::biggest_source_list(&db.catalog).await;
    assert!(n >= 12);
    let peak = |ids: String| {
        let db = &db;
        async move {
            let st = common::state_with(db, |c| c.inline_sources = 100);
            let budget = std::sync::Arc::clone(&st.services.products.budget);
            let v =
                common::submit_json(&st, &format!("/api/deps?slid={slid}&ids={ids}&size=48")).await;
            assert_eq!(v["status"], "done", "{v}");
            assert_eq!(budget.available(), budget.total(), "memory given back");
            budget.peak()
        }
    };
    let mut alone = 0;
    for i in 1..=12 {
        alone = alone.max(peak(i.to_string()).await);
    }
    assert!(alone > 0, "sources reserve memory");
    assert_eq!(peak("1:12".into()).await, alone);
}

/// Regression: plain GETs created jobs, so crawlers and link prefetchers
/// started work. Now a GET shows the filled-in form (or the job the same
/// request already has) and only POST submits; the same request written
/// differently gets the same job instead of a second one.
#[tokio::test]
async fn jobs_start_only_on_post_and_the_same_request_gets_the_same_job() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |_| {});
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let jobs = |db: &common::TestDb| {
        let c = db.catalog.clone();
        async move { c.jobs(None, None, 0, 100).await.unwrap().0 }
    };
    // The script endpoints answer a GET with 405 and Allow: POST.
    for uri in [
        format!("/api/deps?slid={slid}&ids=1:3"),
        "/api/rgb?target=X&filters=gri".to_string(),
    ] {
        let (s, h, body) = common::fetch_full(&st, &uri).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{uri}: {}", text(&body));
        assert_eq!(h["allow"], "POST", "{uri}");
        assert!(text(&body).contains("needs POST"), "{uri}: {}", text(&body));
    }
    // The HTML form is filled in, and says nothing has started.
    let (s, _, body) = common::fetch(&st, &format!("/deps?slid={slid}&ids=1:3&size=20")).await;
    assert_eq!(s, StatusCode::OK);
    let doc = scraper::Html::parse_document(&text(&body));
    let notice: String = doc
        .select(&common::sel("#notice"))
        .flat_map(|e| e.text())
        .collect();
    assert!(
        notice.contains("Not started yet") && notice.contains("3 sources"),
        "{notice}"
    );
    let form = doc.select(&common::sel("form#deps-form")).next().unwrap();
    assert_eq!(form.value().attr("method"), Some("post"));
    assert_eq!(jobs(&db).await, 0, "a GET made a job");

    // POST makes one; the same sources in another order, and a resubmitted
    // form body, get that job back.
    let (s, h, _) = common::submit_full(&st, &format!("/deps?slid={slid}&ids=1:3&size=20")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    let first = h["location"].to_str().unwrap().to_owned();
    let again =
        common::submit_json(&st, &format!("/api/deps?slid={slid}&ids=3,2,1&size=20.0")).await;
    assert_eq!(format!("/jobs/{}", again["id"].as_str().unwrap()), first);
    let form_post = {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let res = wisecut::web::app(st.clone())
            .oneshot(
                axum::http::Request::post("/deps")
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(axum::body::Body::from(format!(
                        "slid={slid}&ids=1%3A3&size=20"
                    )))
                    .unwrap(),
            )
            .await
            .unwrap();
        let loc = res.headers()["location"].to_str().unwrap().to_owned();
        let _ = res.into_body().collect().await;
        loc
    };
    assert_eq!(form_post, first);
    assert_eq!(jobs(&db).await, 1);
    // Now the GET of the same request leads to that job.
    let (s, h, _) = common::fetch_full(&st, &format!("/deps?slid={slid}&ids=1:3&size=20")).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert_eq!(h["location"], first.as_str());
    // A different request is a different job.
    let other = common::submit_json(&st, &format!("/api/deps?slid={slid}&ids=1:2&size=20")).await;
    assert_ne!(format!("/jobs/{}", other["id"].as_str().unwrap()), first);
    assert_eq!(jobs(&db).await, 2);
    // When the job's files are gone from this server, the same request is
    // made again (a new job, done), not answered from the missing files.
    let other_id = other["id"].as_str().unwrap().to_owned();
    let other_number = super::jobs::job_number(&db, &other_id).await;
    std::fs::remove_dir_all(st.config.jobs_dir.join(other_number.to_string())).unwrap();
    let again = common::submit_json(&st, &format!("/api/deps?slid={slid}&ids=1:2&size=20")).await;
    assert_ne!(again["id"].as_str().unwrap(), other_id);
    assert_eq!(again["status"], "done", "{again:#}");
    assert_eq!(jobs(&db).await, 3);
    // A body that is not a form is refused, naming the header.
    let (s, body) = {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let res = wisecut::web::app(st.clone())
            .oneshot(
                axum::http::Request::post("/api/deps")
                    .header("content-type", "application/json")
                    .body(axum::body::Body::from("{}"))
                    .unwrap(),
            )
            .await
            .unwrap();
        let s = res.status();
        (s, res.into_body().collect().await.unwrap().to_bytes())
    };
    assert_eq!(s, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(text(&body).starts_with("Content-Type"), "{}", text(&body));
}

/// One HTTP/1.1 exchange over a fresh connection: the status line, the
/// headers (lower-case names) and the body, or what was read when the
/// server closed the connection.
async fn exchange(addr: std::net::SocketAddr, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// The HTTP edge on a real socket: per-client limits answer 429 with
/// `Retry-After` and the limit's name while pages stay available; slow
/// clients are cut off (headers and body each have a deadline); every
/// answer carries the security headers; `X-Forwarded-Host` cannot point a
/// VO answer's links elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_limits_each_client_cuts_off_slow_ones_and_sets_security_headers() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| {
        c.limits.concurrency = 2;
        c.limits.rate_per_s = 0.2;
        c.limits.burst = 3;
        c.limits.header_timeout = Duration::from_secs(1);
        c.limits.body_timeout = Duration::from_secs(1);
    });
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(wisecut::web::server::serve(
        listener,
        st,
        std::future::pending(),
    ));
    let get =
        |path: String| format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // Pages are not limited, and carry the security headers.
    let (s, head, _) = exchange(addr, &get("/".into())).await;
    assert_eq!(s, 200);
    for h in [
        "content-security-policy: default-src 'self'",
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: same-origin",
    ] {
        assert!(head.contains(h), "{h} missing from\n{head}");
    }
    // A client that never finishes its headers is disconnected.
    let t = std::time::Instant::now();
    let (_, head, _) = exchange(addr, &format!("GET / HTTP/1.1\r\nHost: {addr}\r\n")).await;
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "held {:?}",
        t.elapsed()
    );
    assert!(!head.contains("200 ok"), "{head}");
    // One that never finishes its body gets 408 (this takes one token of
    // the client's burst of 3).
    let (s, head, body) = exchange(
        addr,
        &format!(
            "POST /api/batch HTTP/1.1\r\nHost: {addr}\r\nContent-Type: text/csv\r\nContent-Length: 1000\r\n\r\nRA,DEC\n"
        ),
    )
    .await;
    assert_eq!(s, 408, "{head}\n{body}");
    assert!(
        body.contains("not received within the 1 s allowed"),
        "{body}"
    );
    // The rest of the burst, then 429 naming the limit, with Retry-After.
    let cutout = format!("/api/cutout?frame={}&x=40&y=40&size=8", f.target.object_id);
    for i in 0..2 {
        let (s, _, body) = exchange(addr, &get(cutout.clone())).await;
        assert_eq!(s, 200, "cutout {i} of the burst: {body}");
    }
    let (s, head, body) = exchange(addr, &get(cutout.clone())).await;
    assert_eq!(s, 429, "{head}\n{body}");
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no Retry-After in\n{head}"));
    assert!((1..=5).contains(&retry), "{retry}");
    assert!(
        body.contains("per client at most 0.2 expensive requests a second (bursts of 3)"),
        "{body}"
    );
    // Pages still answer the limited client.
    let (s, _, _) = exchange(addr, &get("/help".into())).await;
    assert_eq!(s, 200);
    // A forged X-Forwarded-Host does not reach the links of a VO answer.
    let (s, _, body) = exchange(
        addr,
        &format!(
            "GET /vo/capabilities HTTP/1.1\r\nHost: {addr}\r\nX-Forwarded-Host: evil.example\r\nConnection: close\r\n\r\n"
        ),
    )
    .await;
    assert_eq!(s, 200);
    assert!(!body.contains("evil.example"), "{body}");
    assert!(body.contains(&format!("http://{addr}/")), "{body}");
    server.abort();
}

/// Regression: a frame file overwritten in place kept being served from the
/// product cache as PNG, and its FITS cutout had new pixels under the old
/// ETag, so a revalidating client got 304 and kept stale data. Now every
/// use checks the file against what ingest recorded: touched but equal is
/// fine (hashed once); rewritten is a 500 naming the frame for every
/// product, cached or revalidated, until it is re-ingested.
#[tokio::test]
async fn a_frame_file_rewritten_in_place_is_never_served_or_revalidated() {
    let db = common::ingested(common::sqlite().await).await;
    let data = tempfile::tempdir().unwrap();
    common::copy_dir(common::tiny_sample(), data.path());
    let st = common::state_with(&db, |c| c.data_dir = data.path().to_path_buf());
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id;
    let path = data.path().join(&f.path);
    let png = format!("/api/cutout?frame={id}&x=60&y=60&size=32&format=png");
    let fits = format!("/api/cutout?frame={id}&x=60&y=60&size=32");
    let (s, h, _) = common::fetch_full(&st, &png).await;
    assert_eq!(s, StatusCode::OK);
    let (s, fh, _) = common::fetch_full(&st, &fits).await;
    assert_eq!(s, StatusCode::OK);
    let etag = fh["etag"].to_str().unwrap().to_owned();
    // Touched, same bytes: still served, same ETag.
    let later = std::time::SystemTime::now() + Duration::from_secs(3);
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later)
        .unwrap();
    let (s, h2, _) = common::fetch_full(&st, &png).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h2["etag"], h["etag"]);
    // Rewritten in place, same size, other pixels (the last data block).
    let mut bytes = std::fs::read(&path).unwrap();
    let n = bytes.len();
    for b in &mut bytes[n - 2880..] {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(later + Duration::from_secs(3))
        .unwrap();
    let revalidate = |uri: String, etag: String| {
        let st = st.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let res = wisecut::web::app(st)
                .oneshot(
                    axum::http::Request::get(uri)
                        .header("if-none-match", etag)
                        .body(axum::body::Body::empty())
                        .unwrap(),
                )
                .await
                .unwrap();
            let s = res.status();
            (
                s,
                text(&res.into_body().collect().await.unwrap().to_bytes()),
            )
        }
    };
    for (what, (s, body)) in [
        ("cached PNG", {
            let (s, _, b) = common::fetch(&st, &png).await;
            (s, text(&b))
        }),
        ("FITS", {
            let (s, _, b) = common::fetch(&st, &fits).await;
            (s, text(&b))
        }),
        ("revalidation", revalidate(fits.clone(), etag.clone()).await),
        ("file download", {
            let (s, _, b) = common::fetch(&st, &format!("/data/{id}")).await;
            (s, text(&b))
        }),
    ] {
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR, "{what}: {body}");
        assert!(
            body.contains(&format!("frame {id}"))
                && body.contains("content is not what was ingested"),
            "{what}: {body}"
        );
        assert!(
            !body.contains(data.path().to_str().unwrap()),
            "{what}: {body}"
        );
    }
}

/// Regression: `--jobs-mib` was checked only after a job finished (a
/// 10-row batch wrote 2.4 GB past a 2 GiB bound, then expired every other
/// job's results). Now one job's files are charged as they are written:
/// past `--job-mib` the job fails saying so, leaves no file behind, and
/// the results of other jobs stay.
#[tokio::test]
async fn a_job_passing_its_disk_allowance_fails_and_leaves_nothing() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| c.job_bytes = 200 << 10);
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let small = common::submit_json(
        &st,
        &format!("/api/deps?slid={slid}&ids=1&classes=reduced&size=16"),
    )
    .await;
    assert_eq!(small["status"], "done", "{small:#}");
    let big = common::submit_json(&st, &format!("/api/deps?slid={slid}&ids=1:4&size=100")).await;
    assert_eq!(big["status"], "failed", "{big:#}");
    let error = big["error"].as_str().unwrap_or_default();
    assert!(error.contains("--job-mib"), "{error}");
    let dir = &st.config.jobs_dir;
    let id = super::jobs::job_number(&db, big["id"].as_str().unwrap()).await;
    for name in [id.to_string(), format!("{id}.part")] {
        assert!(!dir.join(&name).exists(), "{name} left behind");
    }
    let small_id = small["id"].as_str().unwrap().to_owned();
    let small_number = super::jobs::job_number(&db, &small_id).await;
    assert!(
        dir.join(small_number.to_string()).is_dir(),
        "the other result was removed"
    );
    let (s, _, _) = common::fetch(&st, &format!("/jobs/{small_id}/zip")).await;
    assert_eq!(s, StatusCode::OK);
}

/// A job's ZIP is counted with its files and removed with them; a result
/// directory removed by hand is a 410 (and the job is marked removed), not
/// a 500; records whose files are long gone are deleted, with their
/// parameters and logs.
#[tokio::test]
async fn zips_are_counted_missing_results_are_gone_and_old_records_are_deleted() {
    let db = common::ingested(common::sqlite().await).await;
    // Room for about one result: the newest stays, older ones go.
    let st = common::state_with(&db, |c| c.jobs_bytes = 1);
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let q = |ids: &str| format!("/api/deps?slid={slid}&ids={ids}&classes=raw,reduced&size=24");
    let first = common::submit_json(&st, &q("1")).await;
    let a_public = first["id"].as_str().unwrap().to_owned();
    let a = super::jobs::job_number(&db, &a_public).await;
    let before = db.catalog.job(a).await.unwrap().bytes;
    let (s, _, zip) = common::fetch(&st, &format!("/jobs/{a_public}/zip")).await;
    assert_eq!(s, StatusCode::OK);
    let after = db.catalog.job(a).await.unwrap().bytes;
    assert_eq!(after - before, zip.len() as i64, "the ZIP is counted");
    let zip_file = st.config.jobs_dir.join(format!("{a}.zip"));
    assert!(zip_file.is_file());
    // A newer result pushes the first one out: its ZIP goes too.
    let second = common::submit_json(&st, &q("2")).await;
    let b_public = second["id"].as_str().unwrap().to_owned();
    let b = super::jobs::job_number(&db, &b_public).await;
    assert!(db.catalog.job(a).await.unwrap().expired);
    assert!(!zip_file.exists(), "the expired job's ZIP was kept");
    // The newest result's directory removed by hand: 410, and marked.
    std::fs::remove_dir_all(st.config.jobs_dir.join(b.to_string())).unwrap();
    for uri in [
        format!("/jobs/{b_public}/zip"),
        format!("/jobs/{b_public}/files/manifest.json"),
    ] {
        let (s, _, body) = common::fetch(&st, &uri).await;
        assert_eq!(s, StatusCode::GONE, "{uri}: {}", text(&body));
        assert!(
            text(&body).contains("no longer on this server") || text(&body).contains("removed"),
            "{uri}: {}",
            text(&body)
        );
    }
    assert!(db.catalog.job(b).await.unwrap().expired);
    // Records finished longer ago than twice the retention age are deleted.
    let conn = common::raw_db(&db).await;
    let long_ago = chrono::Utc::now() - chrono::Duration::days(30);
    common::sql(
        &conn,
        "UPDATE job SET finished_at = $1 WHERE id = $2",
        vec![long_ago.into(), a.0.into()],
    )
    .await;
    st.services.jobs.apply_retention().await.unwrap();
    assert!(
        db.catalog.job(a).await.is_err(),
        "the old record is still there"
    );
    assert!(
        db.catalog.job(b).await.is_ok(),
        "a recent record was deleted"
    );
}
