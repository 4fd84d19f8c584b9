//! The VO interfaces through the router (bad input, faults, the SODA box
//! against the cutout API) and, with a live server, through real clients:
//! `tests/peer/check_vo.py` (astropy, pyvo, STILTS votlint, mocpy, prov).

use axum::http::StatusCode;
use wisecut::model::FrameClass;

use super::common;
use super::web::state;
use wisecut::imaging::wcs::KeywordSource;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

#[tokio::test]
async fn table_exports_are_votables_with_status_ucds_and_link_columns() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let (slid, frame_id, n) = common::biggest_source_list(&db.catalog).await;
        let (status, ct, body) =
            common::fetch(&st, &format!("/table/SourceList/{slid}?format=votable")).await;
        assert_eq!(status, StatusCode::OK, "{}", text(&body));
        assert!(ct.starts_with("application/x-votable+xml"), "{ct}");
        let xml = text(&body);
        assert!(xml.contains(r#"<INFO name="QUERY_STATUS" value="OK"/>"#));
        assert!(xml.contains(r#"ucd="pos.eq.ra;meta.main""#) && xml.contains(r#"ref="icrs""#));
        assert_eq!(xml.matches("<TR>").count() as i64, n, "one row per source");
        assert!(
            xml.contains(&format!("/api/cutout?frame={frame_id}&amp;ra=")),
            "cutout_url on the list's frame"
        );
        // Each source's cutout has a DID that DataLink resolves: the FITS
        // it names is the row's cutout, cut from the list's frame.
        let start = xml.find("<TD>ivo://wisecut/cutout?").expect("a cutout_did") + 4;
        let did = xml[start..start + xml[start..].find("</TD>").unwrap()].replace("&amp;", "&");
        let q = serde_urlencoded::to_string([("ID", did.as_str())]).unwrap();
        let links = text(&common::fetch(&st, &format!("/vo/links?{q}")).await.2);
        assert!(links.contains("<TD>#progenitor</TD>"), "{links}");
        let this = links
            .split("<TR>")
            .find(|r| r.contains("<TD>#this</TD>"))
            .expect("a #this row");
        let url_start = this.find("/api/cutout?").unwrap();
        let url = this[url_start..url_start + this[url_start..].find("</TD>").unwrap()]
            .replace("&amp;", "&");
        assert!(url.contains(&format!("frame={frame_id}&")) && url.ends_with("format=fits"));
        let (status, ct, _) = common::fetch(&st, &url).await;
        assert_eq!(status, StatusCode::OK, "{url}");
        assert_eq!(ct, "application/fits");
        // Frames carry the DataLink descriptor unless asked not to.
        let frames = "/table/ReducedScienceFrame?format=votable";
        let xml = text(&common::fetch(&st, frames).await.2);
        assert!(xml.contains(r#"utype="adhoc:service""#));
        let plain = text(&common::fetch(&st, &format!("{frames}&datalink=no")).await.2);
        assert!(!plain.contains("adhoc:service") && plain.contains("<TABLEDATA>"));
        let bin = text(
            &common::fetch(&st, &format!("{frames}&serialization=binary2"))
                .await
                .2,
        );
        assert!(bin.contains("<BINARY2><STREAM encoding=\"base64\">"));
        for bad in ["serialization=fits", "datalink=maybe", "format=votable2"] {
            let (status, _, body) = common::fetch(
                &st,
                &format!("/table/ReducedScienceFrame?format=votable&{bad}"),
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
            let name = bad.split('=').next().unwrap();
            assert!(text(&body).contains(name), "{bad}: {}", text(&body));
        }
    }
}

#[tokio::test]
async fn sia_filters_and_reports_overflow_and_usage_errors() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let coadd = common::first_frame(&db.catalog, FrameClass::CoaddedRegriddedFrame).await;
    let (ra, dec) = coadd.center.unwrap();
    let all = text(
        &common::fetch(
            &st,
            &format!("/vo/sia/query?POS=CIRCLE+{ra}+{dec}+0.01&MAXREC=10000"),
        )
        .await
        .2,
    );
    let n = all.matches("<TR>").count();
    assert!(n >= 2, "several frames cover a coadd's centre: {n}");
    assert!(all.contains(r#"value="OK""#));
    // MAXREC below the count: exactly MAXREC rows and OVERFLOW, never a
    // silent cut.
    let one = text(
        &common::fetch(
            &st,
            &format!("/vo/sia/query?POS=CIRCLE+{ra}+{dec}+0.01&MAXREC=1"),
        )
        .await
        .2,
    );
    assert_eq!(one.matches("<TR>").count(), 1);
    assert!(one.contains(r#"<INFO name="QUERY_STATUS" value="OVERFLOW"/>"#));
    // COLLECTION narrows to the class.
    let coadds = text(
        &common::fetch(
            &st,
            &format!("/vo/sia/query?POS=CIRCLE+{ra}+{dec}+0.01&COLLECTION=CoaddedRegriddedFrame"),
        )
        .await
        .2,
    );
    let rows = coadds.matches("<TR>").count();
    assert!(rows >= 1 && rows < n);
    assert_eq!(
        rows,
        coadds.matches("<TD>CoaddedRegriddedFrame</TD>").count()
    );
    // Far away: nothing.
    let none = text(
        &common::fetch(&st, "/vo/sia/query?POS=CIRCLE+10+-60+0.1")
            .await
            .2,
    );
    assert_eq!(none.matches("<TR>").count(), 0);
    for (q, name) in [
        ("POS=CIRCLE+1+2", "POS"),
        ("POS=BOX+1+2+3+4", "POS"),
        ("BAND=7+3", "BAND"),
        ("COLLECTION=Nope", "COLLECTION"),
        ("MAXREC=-1", "MAXREC"),
        ("POS=POLYGON+10+10+11+11+11+10+10+11", "POS"),
    ] {
        let (status, ct, body) = common::fetch(&st, &format!("/vo/sia/query?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(ct.starts_with("application/x-votable+xml"));
        let b = text(&body);
        assert!(
            b.contains(r#"value="ERROR""#) && b.contains(name),
            "{q}: {b}"
        );
    }
}

#[tokio::test]
async fn soda_cuts_the_same_pixels_as_the_cutout_api_and_faults_clearly() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id.0;
    let (ra, dec) = f.center.unwrap();
    let (status, headers, body) = common::fetch_full(
        &st,
        &format!("/vo/soda/sync?ID=ivo://wisecut/obj?{id}&CIRCLE={ra}+{dec}+0.003"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", text(&body));
    assert_eq!(headers["content-type"], "application/fits");
    let (soda, hdr) = common::read_fits(&body);
    let x0 = hdr.number("ORIGX0").unwrap() as usize;
    let y0 = hdr.number("ORIGY0").unwrap() as usize;
    let (w, h) = (soda.width, soda.height);
    // A 0.003° radius is 2 × 10.8″ across: the box is about that many pixels.
    assert!(w > 10 && h > 10 && w < f.naxis1 as usize, "{w}×{h}");
    let api = format!(
        "/api/cutout?frame={id}&x={}&y={}&width={w}&height={h}&format=fits",
        (x0 + 1) as f64 + w as f64 / 2.0,
        (y0 + 1) as f64 + h as f64 / 2.0
    );
    let (status, _, body) = common::fetch(&st, &api).await;
    assert_eq!(status, StatusCode::OK);
    let (cut, chdr) = common::read_fits(&body);
    assert_eq!(chdr.number("ORIGX0"), Some(x0 as f64));
    assert_eq!(cut.data.len(), soda.data.len());
    assert!(
        cut.data
            .iter()
            .zip(&soda.data)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "SODA and /api/cutout pixels differ"
    );
    // A circle over the corner is trimmed to the frame, not padded.
    let corner = f.footprint.as_ref().unwrap()[0];
    let (_, _, body) = common::fetch(
        &st,
        &format!(
            "/vo/soda/sync?ID={id}&CIRCLE={}+{}+0.01",
            corner.0, corner.1
        ),
    )
    .await;
    let (trim, thdr) = common::read_fits(&body);
    assert_eq!(thdr.number("ORIGX0"), Some(0.0));
    assert_eq!(thdr.number("ORIGY0"), Some(0.0));
    assert!(trim.data.iter().all(|v| !v.is_nan()), "no padding");
    // Faults.
    let (status, _, body) =
        common::fetch(&st, &format!("/vo/soda/sync?ID={id}&CIRCLE=10+-60+0.01")).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{}", text(&body));
    for (q, code, start) in [
        (format!("ID={id}&CIRCLE=1+2"), 400, "UsageError: CIRCLE"),
        (format!("ID={id}&POS=SQUARE+1+2+3"), 400, "UsageError: POS"),
        (format!("ID={id}"), 400, "UsageError"),
        ("CIRCLE=1+2+0.1".into(), 400, "UsageError: ID"),
        ("ID=999999999&CIRCLE=1+2+0.1".into(), 404, "NotFoundFault"),
    ] {
        let (status, ct, body) = common::fetch(&st, &format!("/vo/soda/sync?{q}")).await;
        assert_eq!(status.as_u16(), code, "{q}");
        assert!(ct.starts_with("text/plain"), "{q}: {ct}");
        assert!(text(&body).starts_with(start), "{q}: {}", text(&body));
    }
    // A calibration frame has no sky to cut.
    let bias = common::first_frame(&db.catalog, FrameClass::BiasFrame).await;
    let (status, _, body) = common::fetch(
        &st,
        &format!("/vo/soda/sync?ID={}&CIRCLE=1+2+0.1", bias.target.object_id),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("no sky WCS"));
}

#[tokio::test]
async fn datalink_answers_every_id_with_lineage_and_faults_for_unknown_ones() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
        let id = f.target.object_id;
        let up = db
            .catalog
            .lineage(id, wisecut::catalog::lineage::Direction::Up, 1)
            .await
            .unwrap();
        let parents = up.next(id);
        let (status, ct, body) = common::fetch(
            &st,
            &format!("/vo/links?ID=ivo://wisecut/obj?{id}&ID=ivo://wisecut/obj?999999999&ID=junk"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert!(ct.contains("content=datalink"), "{ct}");
        let xml = text(&body);
        let lineage_rows = ["#progenitor", "#bias", "#flat", "#calibration"]
            .iter()
            .map(|s| xml.matches(&format!("<TD>{s}</TD>")).count())
            .sum::<usize>();
        assert_eq!(lineage_rows, parents.len(), "one row per parent edge");
        assert!(xml.contains("<TD>#bias</TD>") && xml.contains("<TD>#flat</TD>"));
        assert!(xml.contains("<TD>#cutout</TD>") && xml.contains("SODA#sync-1.0"));
        assert_eq!(xml.matches("<TD>NotFoundFault: ").count(), 2);
        // POST with a form body answers the same.
        let res = tower::ServiceExt::oneshot(
            wisecut::web::app(st.clone()),
            axum::http::Request::post("/vo/links")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(axum::body::Body::from(format!("ID={id}")))
                .unwrap(),
        )
        .await
        .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let (status, _, body) = common::fetch(&st, "/vo/links").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text(&body).contains("ID: missing"));
    }
}

#[tokio::test]
async fn provenance_and_moc_parameters_are_checked() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let coadd = common::first_frame(&db.catalog, FrameClass::CoaddedRegriddedFrame).await;
    let id = coadd.target.object_id;
    let json = common::fetch_json(&st, &format!("/prov?ID={id}&DEPTH=ALL")).await;
    let all = db
        .catalog
        .lineage(id, wisecut::catalog::lineage::Direction::Up, 256)
        .await
        .unwrap();
    assert_eq!(json["entity"].as_object().unwrap().len(), all.nodes.len());
    let one = common::fetch_json(&st, &format!("/prov?ID={id}&DEPTH=1")).await;
    assert!(one["entity"].as_object().unwrap().len() < all.nodes.len());
    let (_, ct, body) = common::fetch(&st, &format!("/prov?ID={id}&RESPONSEFORMAT=PROV-N")).await;
    assert!(ct.starts_with("text/provenance-notation"));
    assert!(text(&body).starts_with("document"));
    for (q, name) in [
        ("ID=1&DEPTH=0", "DEPTH"),
        ("ID=1&DIRECTION=UP", "DIRECTION"),
        ("ID=1&RESPONSEFORMAT=xml", "RESPONSEFORMAT"),
        ("DEPTH=1", "ID"),
    ] {
        let (status, _, body) = common::fetch(&st, &format!("/prov?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(
            text(&body).starts_with(&format!("UsageError: {name}")),
            "{q}: {}",
            text(&body)
        );
    }
    let (status, _, _) = common::fetch(&st, "/prov?ID=999999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // MOC: the coadd's centre is covered, a far point is not.
    let (status, _, body) =
        common::fetch(&st, "/vo/moc?class=CoaddedRegriddedFrame&format=fits").await;
    assert_eq!(status, StatusCode::OK);
    let moc = wisecut::vo::coverage::from_fits(&body).unwrap();
    let (ra, dec) = coadd.center.unwrap();
    assert!(wisecut::vo::coverage::contains(&moc, ra, dec));
    assert!(!wisecut::vo::coverage::contains(&moc, ra + 5.0, dec));
    for (q, name) in [
        ("depth=40", "depth"),
        ("class=Nope", "class"),
        ("format=png", "format"),
    ] {
        let (status, _, body) = common::fetch(&st, &format!("/vo/moc?{q}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{q}");
        assert!(text(&body).starts_with(name), "{q}: {}", text(&body));
    }
}

#[tokio::test]
async fn vosi_and_the_sky_page_render() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (_, _, body) = common::fetch(&st, "/vo/sia/capabilities").await;
    let caps = text(&body);
    assert!(caps.contains("ivo://ivoa.net/std/SIA#query-2.0"));
    assert!(caps.contains("/vo/sia/query</accessURL>"));
    let (_, _, body) = common::fetch(&st, "/vo/availability").await;
    assert!(text(&body).contains("<vosi:available>true</vosi:available>"));
    let (slid, frame_id, _) = common::biggest_source_list(&db.catalog).await;
    let (status, _, body) = common::fetch(&st, &format!("/sky?slid={slid}&ids=1:3")).await;
    assert_eq!(status, StatusCode::OK, "{}", text(&body));
    let page = text(&body);
    assert!(
        page.contains(&format!("frame={frame_id}&")),
        "the list's own frame"
    );
    assert!(page.contains("3 dependency-cutout position(s) marked"));
    assert!(page.contains("datalink=no"));
    let (status, _, body) = common::fetch(&st, &format!("/sky?slid={slid}&ids=5:1")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(text(&body).contains("ids:"));
    let bias = common::first_frame(&db.catalog, FrameClass::BiasFrame).await;
    let (status, _, _) = common::fetch(&st, &format!("/sky?frame={}", bias.target.object_id)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// astropy, pyvo, STILTS votlint, mocpy and prov against a live server on
/// the tiny survey.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_vo_clients_accept_every_answer() {
    let Some(python) = common::peer_python("the VO client check") else {
        return;
    };
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, wisecut::web::app(st)).await });
    let stilts = std::env::var("WISECUT_STILTS").ok();
    let base = format!("http://{addr}");
    let mut args: Vec<std::ffi::OsString> = vec![base.into()];
    match stilts {
        Some(s) => {
            args.push("--stilts".into());
            args.push(s.into());
        }
        None => assert!(std::env::var("CI").is_err(), "CI must set WISECUT_STILTS"),
    }
    let out = tokio::task::spawn_blocking(move || {
        let args: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
        common::run_peer(&python, "check_vo.py", &args)
    })
    .await
    .unwrap();
    server.abort();
    assert!(out.contains("vo: votable"), "{out}");
    assert!(out.contains("vo: sia"), "{out}");
    assert!(out.contains("vo: soda"), "{out}");
}
