//! The VO problems real clients tripped on (issue 16, items 1–7), each
//! reproduced through the router: these tests failed before the fixes.

use std::collections::HashMap;

use axum::http::StatusCode;
use wisecut::catalog::lineage::Direction;
use wisecut::imaging::wcs::{Section, Wcs};
use wisecut::model::{Frame, FrameClass};
use wisecut::vo::obscore::ivoid;

use super::common;
use super::web::state;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// The rows of a TABLEDATA VOTable (as wisecut writes it) as field name →
/// cell text, entities decoded.
fn rows(xml: &str) -> Vec<HashMap<String, String>> {
    let attr = |tag: &str, name: &str| -> String {
        let key = format!("{name}=\"");
        tag.find(&key)
            .map(|i| {
                let rest = &tag[i + key.len()..];
                rest[..rest.find('"').unwrap_or(rest.len())].to_owned()
            })
            .unwrap_or_default()
    };
    let table = &xml[xml.find("<TABLE").unwrap_or(0)..];
    let names: Vec<String> = table
        .split("<FIELD ")
        .skip(1)
        .map(|f| attr(&f[..f.find('>').unwrap_or(f.len())], "name"))
        .collect();
    let unescape = |t: &str| {
        t.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
    };
    table
        .split("<TR>")
        .skip(1)
        .map(|tr| {
            let tr = &tr[..tr.find("</TR>").unwrap_or(tr.len())];
            let mut cells = Vec::new();
            let mut rest = tr;
            while let Some(i) = rest.find("<TD") {
                rest = &rest[i + 3..];
                if let Some(r) = rest.strip_prefix("/>") {
                    cells.push(String::new());
                    rest = r;
                } else {
                    let body = &rest[1..];
                    let end = body.find("</TD>").unwrap_or(body.len());
                    cells.push(unescape(&body[..end]));
                    rest = &body[end..];
                }
            }
            names.iter().cloned().zip(cells).collect()
        })
        .collect()
}

fn number(row: &HashMap<String, String>, name: &str) -> f64 {
    row.get(name)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name}: not a number in {row:?}"))
}

async fn sia(st: &wisecut::web::AppState, query: &[(&str, String)]) -> String {
    let q = serde_urlencoded::to_string(query).unwrap();
    let (status, _, body) = common::fetch(st, &format!("/vo/sia/query?{q}")).await;
    assert_eq!(status, StatusCode::OK, "{q}: {}", text(&body));
    text(&body)
}

/// The frames a frame was made from, one step up.
async fn inputs(db: &common::TestDb, f: &Frame) -> Vec<Frame> {
    let id = f.target.object_id;
    let lineage = db.catalog.lineage(id, Direction::Up, 1).await.unwrap();
    let mut out = Vec::new();
    for (_, parent) in lineage.next(id) {
        out.push(db.catalog.frame(parent).await.unwrap());
    }
    out
}

/// Item 1: a coadd covers the time from its first input's start to its
/// last input's end, and its `t_exptime` is the depth of one pixel (each
/// exposure once, not once per chip).
#[tokio::test]
async fn a_coadds_time_coverage_spans_its_inputs_and_its_exptime_is_one_pixels_depth() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let coadd = common::first_frame(&db.catalog, FrameClass::CoaddedRegriddedFrame).await;
    let ins = inputs(&db, &coadd).await;
    assert!(ins.len() > 1, "a coadd of several frames");
    let start = ins
        .iter()
        .map(|f| f.mjd_obs.unwrap())
        .fold(f64::MAX, f64::min);
    let end = ins
        .iter()
        .map(|f| f.mjd_obs.unwrap() + f.exptime.unwrap() / 86_400.0)
        .fold(f64::MIN, f64::max);
    // One exposure per start time, whatever the number of its chips.
    let mut exposures: Vec<(i64, f64)> = ins
        .iter()
        .map(|f| {
            (
                (f.mjd_obs.unwrap() * 86_400.0).round() as i64,
                f.exptime.unwrap(),
            )
        })
        .collect();
    exposures.sort_by_key(|e| e.0);
    exposures.dedup_by_key(|e| e.0);
    assert!(
        exposures.len() < ins.len(),
        "chips of one exposure share it"
    );
    let depth: f64 = exposures.iter().map(|e| e.1).sum();

    let xml = sia(&st, &[("ID", ivoid(coadd.target.object_id))]).await;
    let r = &rows(&xml)[0];
    assert!((number(r, "t_min") - start).abs() < 1e-6, "{r:?}");
    assert!(
        (number(r, "t_max") - end).abs() < 2e-5,
        "t_max {} but the last input ends at {end}",
        number(r, "t_max")
    );
    assert!(
        (number(r, "t_exptime") - depth).abs() < 1e-6,
        "t_exptime {} but one pixel saw {depth} s",
        number(r, "t_exptime")
    );
    // A TIME search inside the last input's exposure finds the coadd.
    let last = ins
        .iter()
        .max_by(|a, b| a.mjd_obs.partial_cmp(&b.mjd_obs).unwrap())
        .unwrap();
    let mid = last.mjd_obs.unwrap() + last.exptime.unwrap() / 2.0 / 86_400.0;
    let found = sia(
        &st,
        &[
            ("TIME", format!("{mid} {}", mid + 1e-4)),
            ("COLLECTION", "CoaddedRegriddedFrame".into()),
        ],
    )
    .await;
    assert!(
        rows(&found)
            .iter()
            .any(|r| r["obs_publisher_did"] == ivoid(coadd.target.object_id)),
        "TIME={mid} (during the last input) does not find the coadd"
    );
}

/// Item 2: SPATRES is in arcsec (as `s_resolution`), and TIMERES and
/// SPECRP constrain `t_resolution` and `em_res_power`.
#[tokio::test]
async fn resolution_constraints_use_the_columns_and_units_of_the_answer() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let did = ivoid(f.target.object_id);
    let xml = sia(&st, &[("ID", did.clone())]).await;
    let r = &rows(&xml)[0];
    let (s, t, p) = (
        number(r, "s_resolution"),
        number(r, "t_resolution"),
        number(r, "em_res_power"),
    );
    assert!(s > 0.3 && s < 5.0, "seeing in arcsec: {s}");
    let count = |xml: String| rows(&xml).len();
    for (name, value, hits) in [
        ("SPATRES", format!("{} {}", s - 0.01, s + 0.01), 1),
        (
            "SPATRES",
            format!("{} {}", s / 3600.0 - 1e-4, s / 3600.0 + 1e-4),
            0,
        ),
        ("TIMERES", format!("{} {}", t - 1.0, t + 1.0), 1),
        ("TIMERES", format!("{} +Inf", t + 1.0), 0),
        ("SPECRP", format!("{} {}", p - 0.1, p + 0.1), 1),
        ("SPECRP", format!("{} +Inf", p + 1.0), 0),
    ] {
        let n = count(sia(&st, &[("ID", did.clone()), (name, value.clone())]).await);
        assert_eq!(n, hits, "{name}={value}");
    }
}

/// Item 3: every DAL service accepts DALI's RUNID and ignores parameters
/// it does not know, saying so where its answer can.
#[tokio::test]
async fn runid_and_unknown_parameters_are_accepted_everywhere() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let (ra, dec) = f.center.unwrap();
    let did = ivoid(f.target.object_id);
    let q = |extra: &[(&str, String)]| {
        let mut v: Vec<(&str, String)> = vec![("RUNID", "run-7".into()), ("COLOUR", "red".into())];
        v.extend_from_slice(extra);
        serde_urlencoded::to_string(v).unwrap()
    };
    let (status, _, body) = common::fetch(
        &st,
        &format!(
            "/vo/sia/query?{}",
            q(&[("POS", format!("CIRCLE {ra} {dec} 0.01"))])
        ),
    )
    .await;
    let b = text(&body);
    assert_eq!(status, StatusCode::OK, "{b}");
    assert!(b.contains(r#"<INFO name="RUNID" value="run-7"/>"#), "{b}");
    assert!(
        b.contains(r#"name="ignored_parameters" value="COLOUR""#),
        "{b}"
    );
    assert!(b.contains(r#"<INFO name="QUERY_STATUS" value="OK"/>"#));
    assert!(!rows(&b).is_empty());
    let (status, _, body) =
        common::fetch(&st, &format!("/vo/links?{}", q(&[("ID", did.clone())]))).await;
    let b = text(&body);
    assert_eq!(status, StatusCode::OK, "{b}");
    assert!(b.contains(r#"<INFO name="RUNID" value="run-7"/>"#), "{b}");
    let (status, ct, body) = common::fetch(
        &st,
        &format!(
            "/vo/soda/sync?{}",
            q(&[("ID", did.clone()), ("CIRCLE", format!("{ra} {dec} 0.002"))])
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", text(&body));
    assert!(ct.contains("fits"), "{ct}");
    let (status, _, body) = common::fetch(
        &st,
        &format!("/prov?{}", q(&[("ID", f.target.object_id.0.to_string())])),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", text(&body));
    let (status, headers, body) =
        common::fetch_full(&st, "/vo/moc?RUNID=run-7&colour=red&depth=8").await;
    assert_eq!(status, StatusCode::OK, "{}", text(&body));
    assert_eq!(
        headers
            .get("x-wisecut-ignored-parameters")
            .and_then(|v| v.to_str().ok()),
        Some("colour")
    );
    // Known parameters are still checked.
    let (status, _, body) = common::fetch(&st, "/vo/sia/query?RUNID=x&MAXREC=-1").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("MAXREC"));
}

/// Item 4: SIA answers carry a SODA service descriptor bound to each row's
/// DID, so clients cut instead of downloading whole frames.
#[tokio::test]
async fn sia_answers_describe_the_soda_service_for_each_row() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::RegriddedFrame).await;
    let xml = sia(&st, &[("ID", ivoid(f.target.object_id))]).await;
    let soda = xml
        .split("<RESOURCE type=\"meta\"")
        .find(|r| r.contains("ivo://ivoa.net/std/SODA#sync-1.0"))
        .unwrap_or_else(|| panic!("no SODA descriptor: {xml}"));
    assert!(soda.contains("/vo/soda/sync\"/>"), "{soda}");
    assert!(
        soda.contains(r#"name="ID""#) && soda.contains(r#"ref="obs_publisher_did""#),
        "the ID parameter takes each row's obs_publisher_did: {soda}"
    );
    assert!(xml.contains(r#"ID="obs_publisher_did""#));
    assert!(soda.contains(r#"name="CIRCLE""#) && soda.contains(r#"name="POLYGON""#));
}

/// Item 5: SIA answers at its base URL, the URL the /vo page gives.
#[tokio::test]
async fn sia_answers_at_its_base_url() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::CoaddedRegriddedFrame).await;
    let (ra, dec) = f.center.unwrap();
    let q = format!("POS=CIRCLE+{ra}+{dec}+0.01");
    let (status, ct, base) = common::fetch(&st, &format!("/vo/sia?{q}")).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&base));
    assert!(ct.starts_with("application/x-votable+xml"));
    let (_, _, query) = common::fetch(&st, &format!("/vo/sia/query?{q}")).await;
    assert_eq!(text(&base), text(&query));
    assert!(!rows(&text(&base)).is_empty());
    let (_, _, page) = common::fetch(&st, "/vo").await;
    assert!(text(&page).contains("/vo/sia</code>"));
}

/// Item 6: RESPONSEFORMAT's media type and serialization are honoured.
#[tokio::test]
async fn responseformat_chooses_media_type_and_serialization() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let did = ivoid(f.target.object_id);
    let get = |path: &str, format: &str| {
        format!(
            "{path}?{}",
            serde_urlencoded::to_string([("ID", did.as_str()), ("RESPONSEFORMAT", format)])
                .unwrap()
        )
    };
    let (status, ct, body) = common::fetch(&st, &get("/vo/sia/query", "text/xml")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ct.starts_with("text/xml"), "{ct}");
    assert!(text(&body).contains("<TABLEDATA>"));
    for path in ["/vo/sia/query", "/vo/links"] {
        let (status, ct, body) = common::fetch(
            &st,
            &get(path, "application/x-votable+xml;serialization=BINARY2"),
        )
        .await;
        let b = text(&body);
        assert_eq!(status, StatusCode::OK, "{path}: {b}");
        assert!(ct.contains("serialization=BINARY2"), "{path}: {ct}");
        assert!(
            b.contains("<BINARY2>") && !b.contains("<TABLEDATA>"),
            "{path}: {b}"
        );
    }
    for format in ["text/csv", "application/x-votable+xml;serialization=FITS"] {
        let (status, _, body) = common::fetch(&st, &get("/vo/sia/query", format)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{format}");
        assert!(text(&body).contains("RESPONSEFORMAT"), "{format}");
    }
}

/// Item 7: a raw frame's footprint is its data section (the overscan
/// strip images no sky), `facility_name` is `TELESCOP`, a bow-tie polygon
/// is refused, and an exported AssociateList carries its members'
/// positions with the right main-id UCDs.
#[tokio::test]
async fn footprints_facility_polygons_and_association_exports() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let raw = common::first_frame(&db.catalog, FrameClass::RawScienceFrame).await;
    let (n1, n2) = (raw.naxis1 as usize, raw.naxis2 as usize);
    let section = |key: &str| {
        raw.extra
            .get(key)
            .and_then(|v| v.as_str())
            .and_then(Section::parse)
            .unwrap_or_else(|| panic!("{key} of {}", raw.filename))
    };
    let (bias, data) = (section("BIASSEC"), section("DATASEC"));
    let wcs = Wcs::new(raw.wcs.as_ref().unwrap(), n1, n2).unwrap();
    let centre = |s: &Section| {
        wcs.pix_to_sky((s.x1 + s.x2) as f64 / 2.0, (s.y1 + s.y2) as f64 / 2.0)
            .unwrap()
    };
    let did = ivoid(raw.target.object_id);
    let hits = |(ra, dec): (f64, f64)| {
        let st = st.clone();
        let did = did.clone();
        async move {
            rows(
                &sia(
                    &st,
                    &[
                        ("ID", did),
                        ("POS", format!("CIRCLE {ra} {dec} {}", 0.5 / 3600.0)),
                    ],
                )
                .await,
            )
            .len()
        }
    };
    assert_eq!(
        hits(centre(&data)).await,
        1,
        "the data section is on the sky"
    );
    assert_eq!(
        hits(centre(&bias)).await,
        0,
        "a circle on the overscan strip {bias:?} found the frame"
    );

    let telescope = raw.extra["TELESCOP"].as_str().unwrap().to_owned();
    let xml = sia(&st, &[("ID", did.clone())]).await;
    assert_eq!(rows(&xml)[0]["facility_name"], telescope);
    let found = sia(&st, &[("ID", did.clone()), ("FACILITY", telescope.clone())]).await;
    assert_eq!(rows(&found).len(), 1, "FACILITY={telescope}");
    let none = sia(&st, &[("ID", did.clone()), ("FACILITY", "Hubble".into())]).await;
    assert_eq!(rows(&none).len(), 0);

    let (status, _, body) =
        common::fetch(&st, "/vo/sia/query?POS=POLYGON+10+10+11+11+11+10+10+11").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        text(&body).contains("POS") && text(&body).contains("cross"),
        "{}",
        text(&body)
    );

    // A calibration frame has no region: its answer keeps the column but
    // drops the polygon xtype (votlint rejects an empty polygon); a sky
    // frame's answer keeps it.
    let bias_frame = common::first_frame(&db.catalog, FrameClass::BiasFrame).await;
    let cal = sia(&st, &[("ID", ivoid(bias_frame.target.object_id))]).await;
    let region_field = |xml: &str| {
        xml.split("<FIELD ")
            .find(|f| f.starts_with(r#"name="s_region""#))
            .map(|f| f[..f.find('>').unwrap()].to_owned())
            .expect("an s_region field")
    };
    assert_eq!(rows(&cal).len(), 1);
    assert!(
        !region_field(&cal).contains("xtype"),
        "{}",
        region_field(&cal)
    );
    assert!(region_field(&xml).contains(r#"xtype="polygon""#));

    let (_, _, body) = common::fetch(&st, "/table/AssociateList?format=votable").await;
    let lists = rows(&text(&body));
    let alid = &lists[0]["alid"];
    let (status, _, body) =
        common::fetch(&st, &format!("/table/AssociateList/{alid}?format=votable")).await;
    let xml = text(&body);
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert!(xml.contains(r#"name="ra""#) && xml.contains(r#"ucd="pos.eq.ra;meta.main""#));
    assert!(xml.contains(r#"ucd="pos.eq.dec;meta.main""#));
    let aid_field = xml
        .split("<FIELD")
        .find(|f| f.contains(r#"name="aid""#))
        .unwrap();
    assert!(!aid_field.contains("meta.main"), "{aid_field}");
    // Each member's position is its source's.
    let members = rows(&xml);
    assert!(!members.is_empty());
    for m in members.iter().take(20) {
        let s = db
            .catalog
            .source(
                wisecut::ids::Slid(m["slid"].parse().unwrap()),
                wisecut::ids::Sid(m["sid"].parse().unwrap()),
            )
            .await
            .unwrap();
        assert!((number(m, "ra") - s.ra).abs() < 1e-9 && (number(m, "dec") - s.dec).abs() < 1e-9);
    }
}
