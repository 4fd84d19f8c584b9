//! Simple Cone Search, the VOSI capabilities and registry record, and CORS
//! on the VO routes, through the router; and, with a live server, through
//! STILTS (`stilts cone`, `stilts votlint`, `stilts xsdvalidate`).
//!
//! Expected cones are computed here from the raw `source` rows with a
//! vector formula of the angular distance, not through the HEALPix index
//! the service uses, so an index range that misses a cell shows up.

use std::collections::BTreeSet;

use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::common;
use super::web::state;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// The first cell of every row: the `ID_MAIN` column (`slid:sid`).
fn ids(xml: &str) -> Vec<String> {
    xml.split("<TR>")
        .skip(1)
        .map(|r| {
            let start = r.find("<TD>").expect("a cell") + 4;
            r[start..start + r[start..].find("</TD>").unwrap()].to_owned()
        })
        .collect()
}

/// Every source: (slid, sid, ra, dec).
async fn all_sources(db: &common::TestDb) -> Vec<(i64, i64, f64, f64)> {
    let conn = common::raw_db(db).await;
    common::sql(&conn, "SELECT slid, sid, ra, dec FROM source", vec![])
        .await
        .iter()
        .map(|r| {
            (
                r.try_get::<i64>("", "slid").unwrap(),
                r.try_get::<i64>("", "sid").unwrap(),
                r.try_get::<f64>("", "ra").unwrap(),
                r.try_get::<f64>("", "dec").unwrap(),
            )
        })
        .collect()
}

/// Angular distance in degrees through unit vectors and atan2 (a
/// different formula from the service's haversine).
fn distance(ra1: f64, dec1: f64, ra2: f64, dec2: f64) -> f64 {
    let v = |ra: f64, dec: f64| {
        let (ra, dec) = (ra.to_radians(), dec.to_radians());
        [dec.cos() * ra.cos(), dec.cos() * ra.sin(), dec.sin()]
    };
    let (a, b) = (v(ra1, dec1), v(ra2, dec2));
    let dot = a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
    let cross = [
        a[1] * b[2] - a[2] * b[1],
        a[2] * b[0] - a[0] * b[2],
        a[0] * b[1] - a[1] * b[0],
    ];
    let norm = (cross[0].powi(2) + cross[1].powi(2) + cross[2].powi(2)).sqrt();
    norm.atan2(dot).to_degrees()
}

/// The sources within `r` of (ra, dec), optionally of one list, as
/// `slid:sid`; `None` when one lies so close to the edge that rounding
/// could decide it.
fn expected(
    sources: &[(i64, i64, f64, f64)],
    ra: f64,
    dec: f64,
    r: f64,
    slid: Option<i64>,
) -> Option<BTreeSet<String>> {
    let mut out = BTreeSet::new();
    for &(l, s, sra, sdec) in sources {
        if slid.is_some_and(|want| want != l) {
            continue;
        }
        let d = distance(ra, dec, sra, sdec);
        if (d - r).abs() < 1e-9 {
            return None;
        }
        if d < r {
            out.insert(format!("{l}:{s}"));
        }
    }
    Some(out)
}

/// A busy spot: the source of the biggest list with the most neighbours
/// within `r`, so cones there hold several sources of several lists.
fn busy_centre(sources: &[(i64, i64, f64, f64)], slid: i64, r: f64) -> (f64, f64) {
    sources
        .iter()
        .filter(|s| s.0 == slid)
        .map(|&(_, _, ra, dec)| {
            let n = sources
                .iter()
                .filter(|o| distance(ra, dec, o.2, o.3) < r)
                .count();
            (n, ra, dec)
        })
        .max_by_key(|t| t.0)
        .map(|(_, ra, dec)| (ra, dec))
        .expect("the list has sources")
}

/// A request with extra headers through the router.
async fn send(
    st: &wisecut::web::AppState,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, axum::http::HeaderMap, String) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = wisecut::web::app(st.clone())
        .oneshot(req.body(axum::body::Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, text(&body))
}

#[tokio::test]
async fn cones_find_the_sources_a_brute_force_search_finds() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let sources = all_sources(&db).await;
        let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
        let r = 20.0 / 3600.0;
        let (ra, dec) = busy_centre(&sources, slid, r);
        let want = expected(&sources, ra, dec, r, None).expect("no source on the edge");
        let lists: BTreeSet<&str> = want.iter().map(|i| i.split(':').next().unwrap()).collect();
        assert!(
            want.len() >= 3 && lists.len() >= 2,
            "{}: a busy cone holds sources of several lists: {want:?}",
            db.backend
        );
        let (status, ct, body) =
            common::fetch(&st, &format!("/vo/scs?RA={ra}&DEC={dec}&SR={r}")).await;
        let xml = text(&body);
        assert_eq!(status, StatusCode::OK, "{xml}");
        assert_eq!(ct, "text/xml;content=x-votable");
        assert!(
            xml.contains(r#"<INFO name="QUERY_STATUS" value="OK"/>"#),
            "{xml}"
        );
        let got = ids(&xml);
        assert_eq!(
            got.iter().cloned().collect::<BTreeSet<_>>(),
            want,
            "{}",
            db.backend
        );
        assert_eq!(got.len(), want.len(), "each source once");
        // The same as the catalogue's own cone search, in its order
        // (nearest first).
        let cat = db
            .catalog
            .cone_search(ra, dec, r, None, 100_000)
            .await
            .unwrap();
        let cat_ids: Vec<String> = cat
            .iter()
            .map(|(_, s)| format!("{}:{}", s.slid, s.sid))
            .collect();
        assert_eq!(got, cat_ids, "{}", db.backend);
        // Each row links a cutout of its own list's frame.
        for (_, s) in cat.iter().take(3) {
            let frame = db.catalog.source_list(s.slid).await.unwrap().frame_id;
            let frame = frame.expect("a list with a frame").0;
            assert!(
                xml.contains(&format!("/api/cutout?frame={frame}&amp;ra={}&amp;", s.ra)),
                "{}: cutout link of {}:{}",
                db.backend,
                s.slid,
                s.sid
            );
        }

        // One list: only its sources, and POST answers as GET.
        let want_one = expected(&sources, ra, dec, r, Some(slid)).unwrap();
        assert!(!want_one.is_empty() && want_one.len() < want.len());
        let (status, _, body) = send(
            &st,
            Method::POST,
            &format!("/vo/scs/{slid}"),
            &[("content-type", "application/x-www-form-urlencoded")],
            &format!("RA={ra}&DEC={dec}&SR={r}&VERB=3"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            ids(&body).into_iter().collect::<BTreeSet<_>>(),
            want_one,
            "{}",
            db.backend
        );
        assert!(
            body.contains("name=\"cutout_did\""),
            "VERB=3 has every column"
        );
    }
}

#[tokio::test]
async fn verb_and_metadata_queries_keep_the_mandatory_columns() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let mut counts = Vec::new();
    for (q, rows) in [
        ("RA=150&DEC=2&SR=0", false),
        ("RA=0&DEC=90&SR=0&VERB=3", false),
        ("RA=150&DEC=2&SR=0.1&MAXREC=0", false),
        ("RA=150&DEC=2&SR=0.0001&VERB=1", true),
        ("RA=150&DEC=2&SR=0.0001&VERB=2", true),
        ("RA=150&DEC=2&SR=0.0001&VERB=3", true),
    ] {
        let (status, _, body) = common::fetch(&st, &format!("/vo/scs?{q}")).await;
        let xml = text(&body);
        assert_eq!(status, StatusCode::OK, "{q}");
        assert!(xml.contains(r#"value="OK""#), "{q}: {xml}");
        for ucd in ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"] {
            assert_eq!(
                xml.matches(&format!("ucd=\"{ucd}\"")).count(),
                1,
                "{q}: {ucd}"
            );
        }
        assert_eq!(xml.matches("<TABLE ").count(), 1, "{q}: one TABLE");
        if !rows {
            assert!(!xml.contains("<TR>"), "{q}: metadata only");
        } else {
            counts.push(xml.matches("<FIELD").count());
        }
    }
    assert!(counts[0] < counts[1] && counts[1] < counts[2], "{counts:?}");
}

#[tokio::test]
async fn bad_input_is_an_scs_error_naming_the_parameter() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    for (q, name) in [
        ("/vo/scs?DEC=2&SR=0.1", "RA"),
        ("/vo/scs?RA=abc&DEC=2&SR=0.1", "RA"),
        ("/vo/scs?RA=361&DEC=2&SR=0.1", "RA"),
        ("/vo/scs?RA=150&DEC=91&SR=0.1", "DEC"),
        ("/vo/scs?RA=150&SR=0.1", "DEC"),
        ("/vo/scs?RA=150&DEC=2&SR=-0.1", "SR"),
        ("/vo/scs?RA=150&DEC=2&SR=x", "SR"),
        ("/vo/scs?RA=150&DEC=2&SR=10", "SR"),
        ("/vo/scs?RA=150&DEC=2", "SR"),
        ("/vo/scs?RA=150&DEC=2&SR=0.1&VERB=9", "VERB"),
        ("/vo/scs?RA=150&DEC=2&SR=0.1&MAXREC=many", "MAXREC"),
        (
            "/vo/scs?RA=150&DEC=2&SR=0.1&RESPONSEFORMAT=csv",
            "RESPONSEFORMAT",
        ),
        ("/vo/scs/999999?RA=150&DEC=2&SR=0.1", "SLID"),
        ("/vo/scs/abc?RA=150&DEC=2&SR=0.1", "SLID"),
    ] {
        let (status, ct, body) = common::fetch(&st, q).await;
        let xml = text(&body);
        // SCS 1.03: the error is a VOTable, and clients read it on a 200.
        assert_eq!(status, StatusCode::OK, "{q}");
        assert!(ct.starts_with("text/xml"), "{q}: {ct}");
        let start = xml
            .find(r#"<INFO name="Error" value=""#)
            .unwrap_or_else(|| panic!("{q}: {xml}"));
        let value = &xml[start + 26..];
        assert!(value.starts_with(name), "{q}: {value}");
        assert!(
            xml.contains(r#"<INFO name="QUERY_STATUS" value="ERROR">"#),
            "{q}"
        );
        assert!(!xml.contains("<TABLE "), "{q}");
    }
    // The unknown list is named.
    let (_, _, body) = common::fetch(&st, "/vo/scs/999999?RA=150&DEC=2&SR=0.1").await;
    assert!(text(&body).contains("999999"));
    // Unknown parameters are accepted and reported; RUNID is known.
    let (_, _, body) = common::fetch(&st, "/vo/scs?RA=150&DEC=2&SR=0.01&RUNID=r1&COLOUR=red").await;
    let xml = text(&body);
    assert!(xml.contains(r#"value="OK""#), "{xml}");
    assert!(
        xml.contains(r#"<INFO name="ignored_parameters" value="COLOUR">"#),
        "{xml}"
    );
    assert!(xml.contains(r#"<INFO name="RUNID" value="r1"/>"#));
}

#[tokio::test]
async fn maxrec_cuts_the_nearest_and_says_overflow() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let sources = all_sources(&db).await;
        let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
        let r = 30.0 / 3600.0;
        let (ra, dec) = busy_centre(&sources, slid, r);
        let n = expected(&sources, ra, dec, r, None).unwrap().len();
        assert!(n >= 3, "{n}");
        let base = format!("/vo/scs?RA={ra}&DEC={dec}&SR={r}");
        let full = ids(&text(&common::fetch(&st, &base).await.2));
        assert_eq!(full.len(), n);
        let (_, _, body) = common::fetch(&st, &format!("{base}&MAXREC=2")).await;
        let xml = text(&body);
        assert_eq!(
            ids(&xml),
            full[..2].to_vec(),
            "{}: the two nearest",
            db.backend
        );
        assert!(xml.contains(r#"<INFO name="QUERY_STATUS" value="OVERFLOW"/>"#));
        // Exactly as many as there are: no overflow.
        let (_, _, body) = common::fetch(&st, &format!("{base}&MAXREC={n}")).await;
        let xml = text(&body);
        assert_eq!(ids(&xml).len(), n);
        assert!(xml.contains(r#"<INFO name="QUERY_STATUS" value="OK"/>"#));
        // BINARY2 when asked, with the media type asked for.
        let (_, ct, body) = common::fetch(
            &st,
            &format!("{base}&RESPONSEFORMAT=application/x-votable%2Bxml;serialization=binary2"),
        )
        .await;
        assert_eq!(ct, "application/x-votable+xml;serialization=BINARY2");
        assert!(text(&body).contains("<BINARY2>"));
    }
}

#[tokio::test]
async fn vo_routes_and_data_allow_any_origin_and_pages_do_not() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let frame = common::first_frame(&db.catalog, wisecut::model::FrameClass::ReducedScienceFrame)
        .await
        .target
        .object_id;
    let origin = [("origin", "https://example.org")];
    for uri in [
        "/vo/scs?RA=150&DEC=2&SR=0.01".to_owned(),
        "/vo/capabilities".to_owned(),
        "/vo/resource".to_owned(),
        "/vo/availability".to_owned(),
        "/vo/sia/query?POS=CIRCLE+150+2+0.1".to_owned(),
        format!("/data/{frame}"),
        format!("/prov?ID={frame}"),
        format!("/vo/links?ID={frame}"),
    ] {
        let (status, headers, _) = send(&st, Method::GET, &uri, &origin, "").await;
        assert!(status.is_success(), "{uri}: {status}");
        assert_eq!(
            headers
                .get("access-control-allow-origin")
                .map(|v| v.to_str().unwrap()),
            Some("*"),
            "{uri}"
        );
        // Preflight, as a browser sends it before a cross-origin POST
        // with a non-simple header.
        let (status, headers, _) = send(
            &st,
            Method::OPTIONS,
            &uri,
            &[
                ("origin", "https://example.org"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            "",
        )
        .await;
        assert!(status.is_success(), "preflight {uri}: {status}");
        assert_eq!(headers["access-control-allow-origin"], "*", "{uri}");
        let methods = headers["access-control-allow-methods"].to_str().unwrap();
        assert!(
            methods.contains("GET") && methods.contains("POST"),
            "{uri}: {methods}"
        );
    }
    for uri in ["/", "/tables", "/deps", "/vo"] {
        let (_, headers, _) = send(&st, Method::GET, uri, &origin, "").await;
        assert!(
            headers.get("access-control-allow-origin").is_none(),
            "{uri}: an HTML page must not be readable cross-origin"
        );
    }
}

#[tokio::test]
async fn capabilities_and_the_registry_record_list_every_service() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    for uri in [
        "/vo/capabilities",
        "/vo/scs/capabilities",
        "/vo/sia/capabilities",
    ] {
        let (status, ct, body) = common::fetch(&st, uri).await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.starts_with("text/xml"), "{ct}");
        let xml = text(&body);
        for (id, path) in [
            ("ivo://ivoa.net/std/SIA#query-2.0", "/vo/sia/query"),
            ("ivo://ivoa.net/std/SODA#sync-1.0", "/vo/soda/sync"),
            ("ivo://ivoa.net/std/DataLink#links-1.1", "/vo/links"),
            ("ivo://ivoa.net/std/ConeSearch", "/vo/scs"),
            ("ivo://ivoa.net/std/TAP", "/vo/tap"),
            ("ivo://ivoa.net/std/VOSI#capabilities", "/vo/capabilities"),
            ("ivo://ivoa.net/std/VOSI#availability", "/vo/availability"),
        ] {
            let at = xml
                .find(&format!("standardID=\"{id}\""))
                .unwrap_or_else(|| panic!("{uri}: {id} missing"));
            let cap = &xml[at..at + xml[at..].find("</capability>").unwrap()];
            assert!(
                cap.contains(&format!("://localhost{path}</accessURL>"))
                    || cap.contains(&format!("{path}</accessURL>")),
                "{uri}: {id}: {cap}"
            );
        }
    }
    let (status, _, body) = common::fetch(&st, "/vo/resource").await;
    assert_eq!(status, StatusCode::OK);
    let xml = text(&body);
    assert!(xml.contains("xsi:type=\"vs:CatalogService\""));
    assert!(xml.contains("<identifier>ivo://wisecut</identifier>"));
    assert!(xml.contains("standardID=\"ivo://ivoa.net/std/ConeSearch\""));
    assert!(xml.contains("<curation>") && xml.contains("<content>"));
    let (_, _, body) = common::fetch(&st, "/vo/scs/availability").await;
    assert!(text(&body).contains("<vosi:available>true</vosi:available>"));
}

/// STILTS against a live server: `stilts cone` finds the cone's sources,
/// `votlint` passes the SCS answers, and `xsdvalidate` the capabilities and
/// the registry record (with the IVOA schemas STILTS ships; the registry
/// record's root element, `ri:Resource`, is declared by a one-line schema
/// written here, as RegistryInterface declares it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stilts_cone_votlint_and_xsdvalidate_accept_the_services() {
    let Ok(stilts) = std::env::var("WISECUT_STILTS") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set WISECUT_STILTS so the SCS peer check runs"
        );
        eprintln!("note: WISECUT_STILTS not set; the STILTS cone check not run");
        return;
    };
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let sources = all_sources(&db).await;
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let r = 20.0 / 3600.0;
    let (ra, dec) = busy_centre(&sources, slid, r);
    let want = expected(&sources, ra, dec, r, None).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, wisecut::web::app(st)).await });
    let base = format!("http://{addr}");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().to_path_buf();
    let result = tokio::task::spawn_blocking(move || {
        let run = |args: &[String]| {
            let out = std::process::Command::new(&stilts)
                .args(args)
                .output()
                .expect("stilts runs");
            let all = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            (out.status.success(), all)
        };
        // stilts cone: every source of the cone, as CSV.
        let csv = dir.join("cone.csv");
        let (ok, out) = run(&[
            "cone".into(),
            "servicetype=cone".into(),
            format!("serviceurl={base}/vo/scs"),
            format!("lon={ra}"),
            format!("lat={dec}"),
            format!("radius={r}"),
            "verb=3".into(),
            "ofmt=csv".into(),
            format!("out={}", csv.display()),
        ]);
        assert!(ok, "stilts cone failed: {out}");
        let table = std::fs::read_to_string(&csv).unwrap();
        let mut lines = table.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let id_col = header
            .iter()
            .position(|h| *h == "id")
            .expect("an id column");
        let got: BTreeSet<String> = lines
            .map(|l| {
                l.split(',')
                    .nth(id_col)
                    .unwrap()
                    .trim_matches('"')
                    .to_owned()
            })
            .collect();
        assert_eq!(got, want, "stilts cone");
        // votlint: the answers, an empty one and an error, each silent.
        let mut files = Vec::new();
        for (name, q) in [
            ("verb3", format!("/vo/scs?RA={ra}&DEC={dec}&SR={r}&VERB=3")),
            ("list", format!("/vo/scs/{slid}?RA={ra}&DEC={dec}&SR={r}")),
            ("meta", "/vo/scs?RA=0&DEC=90&SR=0".to_owned()),
            (
                "overflow",
                format!("/vo/scs?RA={ra}&DEC={dec}&SR={r}&MAXREC=1"),
            ),
            ("error", "/vo/scs?RA=abc&DEC=1&SR=1".to_owned()),
            (
                "binary2",
                format!(
                    "/vo/scs?RA={ra}&DEC={dec}&SR={r}&RESPONSEFORMAT=votable;serialization=binary2"
                ),
            ),
        ] {
            let path = dir.join(format!("{name}.vot"));
            let body = http_get(&format!("{base}{q}"));
            std::fs::write(&path, body).unwrap();
            files.push(path);
        }
        for f in &files {
            let (ok, out) = run(&["votlint".into(), format!("votable={}", f.display())]);
            assert!(
                ok && out.trim().is_empty(),
                "votlint {}:\n{out}",
                f.display()
            );
        }
        // xsdvalidate: capabilities and the registry record.
        let ri = dir.join("ri.xsd");
        std::fs::write(&ri, REGISTRY_INTERFACE_XSD).unwrap();
        for (name, path) in [
            ("capabilities", "/vo/capabilities"),
            ("resource", "/vo/resource"),
        ] {
            let file = dir.join(format!("{name}.xml"));
            std::fs::write(&file, http_get(&format!("{base}{path}"))).unwrap();
            let (ok, out) = run(&[
                "xsdvalidate".into(),
                format!("doc={}", file.display()),
                "uselocals=true".into(),
                format!(
                    "schemaloc=http://www.ivoa.net/xml/RegistryInterface/v1.0=file://{}",
                    ri.display()
                ),
            ]);
            assert!(
                ok && !out.to_lowercase().contains("error"),
                "xsdvalidate {name}:\n{out}"
            );
        }
        want.len()
    })
    .await;
    server.abort();
    let n = result.unwrap();
    eprintln!("stilts: cone found {n} sources; votlint and xsdvalidate clean");
}

/// `ri:Resource` as RegistryInterface 1.0 declares it: an element of type
/// `vr:Resource` (the record's `xsi:type` narrows it).
const REGISTRY_INTERFACE_XSD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           xmlns:vr="http://www.ivoa.net/xml/VOResource/v1.0"
           targetNamespace="http://www.ivoa.net/xml/RegistryInterface/v1.0"
           elementFormDefault="unqualified">
  <xs:import namespace="http://www.ivoa.net/xml/VOResource/v1.0"
             schemaLocation="http://www.ivoa.net/xml/VOResource/v1.0"/>
  <xs:element name="Resource" type="vr:Resource"/>
</xs:schema>
"#;

/// A blocking GET of a live server's answer (no HTTP client crate in the
/// tests: HTTP/1.0 over a socket is all this needs).
fn http_get(url: &str) -> Vec<u8> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = std::net::TcpStream::connect(host).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&all[..split]);
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "{url}: {head}"
    );
    all[split..].to_vec()
}

#[test]
fn the_expected_cone_helper_agrees_with_the_haversine() {
    // The test's own distance against the library's on a few pairs: a
    // wrong formula here would make every cone test meaningless.
    for (a, b) in [
        ((10.0, 20.0), (10.001, 20.002)),
        ((359.999, -1.0), (0.001, -1.0)),
        ((150.0, 89.99), (330.0, 89.99)),
    ] {
        let mine = distance(a.0, a.1, b.0, b.1);
        let lib = wisecut::imaging::sphere::separation_deg(a.0, a.1, b.0, b.1);
        assert!((mine - lib).abs() < 1e-10, "{a:?} {b:?}: {mine} {lib}");
    }
}
