//! The TAP service over HTTP on both backends: sync answers and their
//! limits, errors, the UWS life of an async job, uploads, the VOSI
//! documents; and, with a live server, pyvo and `stilts taplint`
//! (`tests/peer/check_tap.py`).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::common;
use super::web::state;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

fn sync_url(query: &str, extra: &[(&str, &str)]) -> String {
    let mut pairs = vec![("LANG", "ADQL"), ("QUERY", query)];
    pairs.extend_from_slice(extra);
    format!(
        "/vo/tap/sync?{}",
        serde_urlencoded::to_string(pairs).unwrap()
    )
}

/// The cells of the rows of a TABLEDATA answer.
fn cells(xml: &str) -> Vec<Vec<String>> {
    xml.split("<TR>")
        .skip(1)
        .map(|tr| {
            let tr = &tr[..tr.find("</TR>").unwrap_or(tr.len())];
            tr.split("<TD")
                .skip(1)
                .map(|td| {
                    if td.starts_with("/>") {
                        String::new()
                    } else {
                        let t = &td[1..];
                        t[..t.find("</TD>").unwrap_or(t.len())].to_owned()
                    }
                })
                .collect()
        })
        .collect()
}

async fn send(
    st: &wisecut::web::AppState,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let r = wisecut::web::app(st.clone()).oneshot(req).await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    (status, headers, text(&body))
}

fn post_form(uri: &str, form: &[(&str, &str)]) -> Request<Body> {
    Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(serde_urlencoded::to_string(form).unwrap()))
        .unwrap()
}

#[tokio::test]
async fn sync_queries_answer_count_overflow_and_errors_on_both_backends() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let frames = common::sql(
            &common::raw_db(&db).await,
            "SELECT COUNT(*) AS n FROM frame",
            vec![],
        )
        .await[0]
            .try_get::<i64>("", "n")
            .unwrap();
        let (status, ct, body) = common::fetch(
            &st,
            &sync_url("SELECT COUNT(*) AS n FROM ivoa.obscore", &[]),
        )
        .await;
        let xml = text(&body);
        assert_eq!(status, StatusCode::OK, "{}: {xml}", db.backend);
        assert!(ct.starts_with("application/x-votable+xml"));
        assert_eq!(cells(&xml)[0][0], frames.to_string(), "{}", db.backend);

        // MAXREC cuts, and says so before and after the table.
        let (_, _, body) = common::fetch(
            &st,
            &sync_url(
                "SELECT obs_publisher_did, access_url FROM ivoa.obscore",
                &[("MAXREC", "2")],
            ),
        )
        .await;
        let xml = text(&body);
        assert_eq!(cells(&xml).len(), 2);
        let after = &xml[xml.find("</TABLE>").unwrap()..];
        assert!(after.contains(r#"<INFO name="QUERY_STATUS" value="OVERFLOW"/>"#));
        assert!(xml.starts_with("<?xml") && xml.contains(r#"value="OVERFLOW""#));
        // Paths become absolute links of this server.
        assert!(cells(&xml)[0][1].starts_with("http://"), "{xml}");
        // TOP below MAXREC is not an overflow.
        let (_, _, body) = common::fetch(
            &st,
            &sync_url("SELECT TOP 2 obs_publisher_did FROM ivoa.obscore", &[]),
        )
        .await;
        assert!(!text(&body).contains("OVERFLOW"));

        for (query, extra, needle) in [
            ("SELECT nosuch FROM ivoa.obscore", vec![], "nosuch"),
            ("SELECT * FROM frame", vec![], "frame"),
            ("SELEKT 1", vec![], ""),
            ("SELECT 1 FROM ivoa.obscore", vec![("LANG", "SQL")], "LANG"),
            (
                "SELECT * FROM ivoa.obscore",
                vec![("MAXREC", "99999999")],
                "MAXREC",
            ),
        ] {
            let mut pairs = vec![("QUERY", query)];
            if !extra.iter().any(|(k, _)| *k == "LANG") {
                pairs.push(("LANG", "ADQL"));
            }
            pairs.extend(extra.iter().copied());
            let uri = format!(
                "/vo/tap/sync?{}",
                serde_urlencoded::to_string(&pairs).unwrap()
            );
            let (status, ct, body) = common::fetch(&st, &uri).await;
            let b = text(&body);
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {b}");
            assert!(ct.starts_with("application/x-votable+xml"), "{query}");
            assert!(
                b.contains(r#"value="ERROR""#) && b.contains(needle),
                "{query}: {b}"
            );
        }
        // The same through a form POST.
        let (status, _, b) = send(
            &st,
            post_form(
                "/vo/tap/sync",
                &[
                    ("LANG", "ADQL"),
                    ("QUERY", "SELECT TOP 1 frame_id FROM ivoa.obscore"),
                ],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert_eq!(cells(&b).len(), 1);
    }
}

#[tokio::test]
async fn an_async_job_goes_through_its_uws_phases() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let worker = st.services.jobs.start();
    let (status, headers, _) = send(
        &st,
        post_form(
            "/vo/tap/async",
            &[
                ("LANG", "ADQL"),
                (
                    "QUERY",
                    "SELECT frame_id FROM ivoa.obscore ORDER BY frame_id",
                ),
                ("RUNID", "mine"),
            ],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let location = headers[header::LOCATION].to_str().unwrap().to_owned();
    let path = location[location.find("/vo/tap/async/").unwrap()..].to_owned();
    let (_, _, job) = common::fetch(&st, &path).await;
    let job = text(&job);
    assert!(job.contains("<uws:phase>PENDING</uws:phase>"), "{job}");
    assert!(job.contains("<uws:runId>mine</uws:runId>"));
    // Created without cookie or token, the job has no owner: its
    // unguessable URL reaches it, no listing shows it (owners' lists:
    // tests/it/access_jobs.rs).
    let (_, _, list) = common::fetch(&st, "/vo/tap/async").await;
    assert!(!text(&list).contains(&location), "{}", text(&list));
    // Parameters may change while pending.
    let (status, _, _) = send(
        &st,
        post_form(&format!("{path}/parameters"), &[("MAXREC", "3")]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, params) = common::fetch(&st, &format!("{path}/parameters")).await;
    assert!(text(&params).contains(r#"<uws:parameter id="MAXREC">3</uws:parameter>"#));
    let (status, _, _) = send(
        &st,
        post_form(&format!("{path}/phase"), &[("PHASE", "RUN")]),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut phase = String::new();
    for _ in 0..100 {
        let (_, _, p) = common::fetch(&st, &format!("{path}/phase")).await;
        phase = text(&p);
        if phase == "COMPLETED" || phase == "ERROR" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(phase, "COMPLETED");
    let (_, _, results) = common::fetch(&st, &format!("{path}/results")).await;
    assert!(text(&results).contains(&format!("{location}/results/result")));
    let (status, ct, result) = common::fetch(&st, &format!("{path}/results/result")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("application/x-votable+xml"));
    let rows = cells(&text(&result));
    assert_eq!(rows.len(), 3, "MAXREC=3 set while pending");
    assert!(text(&result).contains(r#"value="OVERFLOW""#));
    // Parameters of a finished job are fixed.
    let (status, _, _) = send(
        &st,
        post_form(&format!("{path}/parameters"), &[("MAXREC", "5")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // DELETE removes it.
    let (status, _, _) = send(
        &st,
        Request::delete(path.as_str()).body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, _, _) = common::fetch(&st, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A bad query: ERROR with the message; an aborted pending job: ABORTED.
    let (_, headers, _) = send(
        &st,
        post_form(
            "/vo/tap/async",
            &[
                ("LANG", "ADQL"),
                ("QUERY", "SELECT nosuch FROM ivoa.obscore"),
                ("PHASE", "RUN"),
            ],
        ),
    )
    .await;
    let bad = headers[header::LOCATION].to_str().unwrap().to_owned();
    let bad = bad[bad.find("/vo/tap/async/").unwrap()..].to_owned();
    let (_, _, doc) = common::fetch(&st, &format!("{bad}?WAIT=20")).await;
    let mut doc = text(&doc);
    for _ in 0..100 {
        if doc.contains("<uws:phase>ERROR") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        doc = text(&common::fetch(&st, &bad).await.2);
    }
    assert!(
        doc.contains("<uws:phase>ERROR</uws:phase>") && doc.contains("nosuch"),
        "{doc}"
    );
    let (_, _, err) = common::fetch(&st, &format!("{bad}/error")).await;
    assert!(text(&err).contains(r#"value="ERROR""#) && text(&err).contains("nosuch"));
    let (_, headers, _) = send(
        &st,
        post_form(
            "/vo/tap/async",
            &[("LANG", "ADQL"), ("QUERY", "SELECT 1 FROM ivoa.obscore")],
        ),
    )
    .await;
    let pending = headers[header::LOCATION].to_str().unwrap().to_owned();
    let pending = pending[pending.find("/vo/tap/async/").unwrap()..].to_owned();
    send(
        &st,
        post_form(&format!("{pending}/phase"), &[("PHASE", "ABORT")]),
    )
    .await;
    assert_eq!(
        text(&common::fetch(&st, &format!("{pending}/phase")).await.2),
        "ABORTED"
    );
    let (status, _, _) = send(
        &st,
        post_form(&format!("{pending}/phase"), &[("PHASE", "FLY")]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    worker.abort();
}

#[tokio::test]
async fn an_uploaded_table_is_crossmatched_against_the_sources() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
        let sources: Vec<(i64, f64, f64)> = common::sql(
            &common::raw_db(&db).await,
            "SELECT sid, ra, dec FROM source WHERE slid = $1 ORDER BY sid LIMIT 4",
            vec![slid.into()],
        )
        .await
        .iter()
        .map(|r| {
            (
                r.try_get("", "sid").unwrap(),
                r.try_get("", "ra").unwrap(),
                r.try_get("", "dec").unwrap(),
            )
        })
        .collect();
        let mut vot = String::from(
            r#"<?xml version="1.0"?><VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE><FIELD name="pid" datatype="long"/><FIELD name="ra" datatype="double"/><FIELD name="dec" datatype="double"/><DATA><TABLEDATA>"#,
        );
        for (i, (_, ra, dec)) in sources.iter().enumerate() {
            vot.push_str(&format!("<TR><TD>{i}</TD><TD>{ra}</TD><TD>{dec}</TD></TR>"));
        }
        vot.push_str("</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>");
        let query = format!(
            "SELECT u.pid, s.sid FROM TAP_UPLOAD.mine AS u JOIN wisecut.sources AS s \
             ON 1 = CONTAINS(POINT('ICRS', s.ra, s.dec), CIRCLE('ICRS', u.ra, u.dec, 0.00003)) \
             WHERE s.slid = {slid} ORDER BY u.pid"
        );
        let boundary = "XxBoundary";
        let mut body = String::new();
        for (name, value, file) in [
            ("LANG", "ADQL".to_owned(), false),
            ("QUERY", query.clone(), false),
            ("UPLOAD", "mine,param:t1".to_owned(), false),
            ("t1", vot.clone(), true),
        ] {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\""
            ));
            if file {
                body.push_str("; filename=\"t1.xml\"\r\nContent-Type: application/x-votable+xml");
            }
            body.push_str(&format!("\r\n\r\n{value}\r\n"));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let req = Request::post("/vo/tap/sync")
            .header(
                header::CONTENT_TYPE,
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(Body::from(body))
            .unwrap();
        let (status, _, xml) = send(&st, req).await;
        assert_eq!(status, StatusCode::OK, "{}: {xml}", db.backend);
        let got: Vec<(usize, i64)> = cells(&xml)
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect();
        for (i, (sid, _, _)) in sources.iter().enumerate() {
            assert!(
                got.contains(&(i, *sid)),
                "{}: upload row {i} did not find source {sid}: {got:?}",
                db.backend
            );
        }
        // The same table from a URL (TAP's upload-http), served on loopback.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let served = vot.clone();
        let file_server = tokio::spawn(async move {
            let app = axum::Router::new().route(
                "/t.xml",
                axum::routing::get(move || {
                    let v = served.clone();
                    async move { v }
                }),
            );
            axum::serve(listener, app).await
        });
        let url = format!("mine,http://{addr}/t.xml");
        let (status, _, body) =
            common::fetch(&st, &sync_url(&query, &[("UPLOAD", url.as_str())])).await;
        let xml = text(&body);
        assert_eq!(status, StatusCode::OK, "{}: {xml}", db.backend);
        let by_url: Vec<(usize, i64)> = cells(&xml)
            .iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect();
        assert_eq!(by_url, got, "{}: URL upload = inline upload", db.backend);
        let missing = format!("mine,http://{addr}/nothere.xml");
        let (status, _, body) =
            common::fetch(&st, &sync_url(&query, &[("UPLOAD", missing.as_str())])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text(&body).contains("404"), "{}", text(&body));
        file_server.abort();
        // An upload the query names but the request lacks.
        let (status, _, body) = common::fetch(
            &st,
            &sync_url(
                "SELECT * FROM TAP_UPLOAD.mine",
                &[("UPLOAD", "mine,param:nothere")],
            ),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text(&body).contains("nothere"));
    }
}

#[tokio::test]
async fn vosi_tables_and_capabilities_describe_every_published_table() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (status, _, body) = common::fetch(&st, "/vo/tap/tables").await;
    assert_eq!(status, StatusCode::OK);
    let tables = text(&body);
    for t in wisecut::vo::tap_schema::published() {
        assert!(
            tables.contains(&format!("<name>{}</name>", t.qualified_name())),
            "{}",
            t.qualified_name()
        );
        // Each is queryable.
        let (status, _, b) = common::fetch(
            &st,
            &sync_url(&format!("SELECT TOP 1 * FROM {}", t.qualified_name()), &[]),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{}: {}",
            t.qualified_name(),
            text(&b)
        );
    }
    let (_, _, caps) = common::fetch(&st, "/vo/tap/capabilities").await;
    let caps = text(&caps);
    assert!(caps.contains(r#"standardID="ivo://ivoa.net/std/TAP""#));
    assert!(caps.contains("/vo/tap</accessURL>"));
    assert!(caps.contains("ivo://ivoa.net/std/TAPRegExt#upload-inline"));
}

/// pyvo (sync, async, geometry, lineage join, upload) and `stilts taplint`
/// against a live server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyvo_and_taplint_accept_the_tap_service() {
    let Some(python) = common::peer_python("the TAP client check") else {
        return;
    };
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let worker = st.services.jobs.start();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, wisecut::web::app(st)).await });
    let mut args: Vec<std::ffi::OsString> = vec![format!("http://{addr}").into()];
    match std::env::var("WISECUT_STILTS") {
        Ok(s) => {
            args.push("--stilts".into());
            args.push(s.into());
        }
        Err(_) => assert!(std::env::var("CI").is_err(), "CI must set WISECUT_STILTS"),
    }
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        common::run_peer(&python, "check_tap.py", &args)
    })
    .await
    .unwrap();
    server.abort();
    worker.abort();
    for area in ["sync", "geo", "lineage", "async", "upload"] {
        assert!(out.contains(&format!("tap: {area} ok")), "{out}");
    }
    if std::env::var("WISECUT_STILTS").is_ok() {
        assert!(out.contains("tap: taplint ok"), "{out}");
    }
}
