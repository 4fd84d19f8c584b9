//! Users, projects and privileges on the tables and the VO services: the
//! DBviewer's tables (rows, totals, CSV and VOTable exports), the cone
//! search, SIA, SODA, DataLink, MOC, TAP and `/data/{id}` show an outsider
//! exactly the archive without the secret part, and its owners the whole.
//!
//! Expected answers are derived independently of the code under test: from
//! the fixture's raw rows and from what the superuser (who sees all) gets,
//! minus what the fixture made secret.

use super::access::{Secret, Who, catalog_as, get_as};
use super::common;
use axum::http::StatusCode;
use wisecut::ids::{ObjectId, Sid, Slid};

const EVERYONE: [Who; 5] = [Who::Anonymous, Who::Owner, Who::Member, Who::Eve, Who::Root];

/// An id no object has.
const MISSING: i64 = 987_654_321;

fn text(body: &[u8]) -> String {
    String::from_utf8_lossy(body).into_owned()
}

/// The data lines of a CSV export (without its header).
fn csv_rows(body: &[u8]) -> Vec<String> {
    text(body)
        .lines()
        .skip(1)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The `#total` of an HTML table page.
fn html_total(body: &[u8]) -> u64 {
    let doc = scraper::Html::parse_document(&text(body));
    doc.select(&common::sel("#total"))
        .next()
        .expect("a #total")
        .text()
        .collect::<String>()
        .trim()
        .parse()
        .expect("a number")
}

/// The number of rows of an HTML table page.
fn html_rows(body: &[u8]) -> usize {
    let doc = scraper::Html::parse_document(&text(body));
    doc.select(&common::sel("#results tbody tr")).count()
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

/// `body` with `id` replaced by `N`, to compare a hidden object's answer
/// with a missing one's.
fn masked(body: &[u8], id: i64) -> String {
    text(body).replace(&id.to_string(), "N")
}

/// How many of the two secret objects `who` may not see among `ids`.
fn hidden_among(s: &Secret, who: Who, ids: &[ObjectId]) -> usize {
    let mut n = 0;
    if !Secret::sees_private(who) && ids.contains(&s.private_frame) {
        n += 1;
    }
    if !Secret::sees_project(who) && ids.contains(&s.project_frame) {
        n += 1;
    }
    n
}

#[tokio::test]
async fn tables_totals_and_exports_hold_only_what_one_may_see_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let sys = &s.db.catalog;
        let private_list = sys.source_list(Slid(s.private_slid)).await.unwrap();
        assert!(private_list.n_sources > 0, "the private list has sources");
        let conn = common::raw_db(&s.db).await;
        let raw_count = |sql: &'static str| {
            let conn = conn.clone();
            async move {
                common::sql(&conn, sql, vec![]).await[0]
                    .try_get::<i64>("", "n")
                    .unwrap() as u64
            }
        };
        let reduced_all =
            raw_count("SELECT COUNT(*) AS n FROM frame WHERE frame_class = 'ReducedScienceFrame'")
                .await;
        let lists_all = raw_count("SELECT COUNT(*) AS n FROM source_list").await;
        // The project condition the issue names: `project = SECRET`.
        let secret_q = "q=project%20%3D%20SECRET&cols=object_id,filename&format=csv";
        for who in EVERYONE {
            let hidden = u64::from(!Secret::sees_private(who));
            // The frames of a class: total, rows and the CSV export.
            let (status, body) = get_as(&st, &s, who, "/table/ReducedScienceFrame?size=1000").await;
            assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
            assert_eq!(
                html_total(&body),
                reduced_all - hidden,
                "{backend} {who:?}: total of reduced frames"
            );
            assert_eq!(html_rows(&body) as u64, reduced_all - hidden);
            assert_eq!(
                text(&body).contains(&s.private_filename),
                Secret::sees_private(who),
                "{backend} {who:?}: the private frame's row"
            );
            let (_, csv) = get_as(
                &st,
                &s,
                who,
                "/table/ReducedScienceFrame?cols=object_id&format=csv",
            )
            .await;
            assert_eq!(csv_rows(&csv).len() as u64, reduced_all - hidden);
            let (status, csv) = get_as(
                &st,
                &s,
                who,
                &format!("/table/ReducedScienceFrame?{secret_q}"),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{backend} {who:?}: {}", text(&csv));
            let rows = csv_rows(&csv);
            if Secret::sees_private(who) {
                assert_eq!(rows.len(), 1, "{backend} {who:?}: {rows:?}");
                assert!(rows[0].starts_with(&format!("{},", s.private_frame)));
            } else {
                assert!(rows.is_empty(), "{backend} {who:?}: {rows:?}");
            }
            let (_, csv) = get_as(
                &st,
                &s,
                who,
                &format!("/table/CoaddedRegriddedFrame?{secret_q}"),
            )
            .await;
            assert_eq!(
                csv_rows(&csv).len(),
                usize::from(Secret::sees_project(who)),
                "{backend} {who:?}: the project-level coadd in CSV"
            );
            // SourceLists: the HTML total and the VOTable export.
            let (_, body) = get_as(&st, &s, who, "/table/SourceList?size=1000").await;
            assert_eq!(
                html_total(&body),
                lists_all - hidden,
                "{backend} {who:?}: total of SourceLists"
            );
            let (_, vot) = get_as(&st, &s, who, "/table/SourceList?format=votable").await;
            let vot = text(&vot);
            assert_eq!(
                vot.matches("<TR>").count() as u64,
                lists_all - hidden,
                "{backend} {who:?}: SourceList VOTable"
            );
            // The sources of the private list: 404 exactly as a missing list.
            let uri = format!("/table/SourceList/{}", s.private_slid);
            let (status, body) = get_as(&st, &s, who, &uri).await;
            if Secret::sees_private(who) {
                assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
                assert_eq!(html_total(&body), private_list.n_sources as u64);
                let (_, csv) = get_as(&st, &s, who, &format!("{uri}?format=csv")).await;
                assert_eq!(csv_rows(&csv).len() as i64, private_list.n_sources);
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?} {uri}");
                let (mstatus, missing) =
                    get_as(&st, &s, who, &format!("/table/SourceList/{MISSING}")).await;
                assert_eq!(mstatus, StatusCode::NOT_FOUND);
                assert_eq!(
                    common::error_message(&masked(&body, s.private_slid)),
                    common::error_message(&masked(&missing, MISSING)),
                    "{backend} {who:?}"
                );
                for fmt in ["csv", "votable", "json"] {
                    let (status, _) = get_as(&st, &s, who, &format!("{uri}?format={fmt}")).await;
                    assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?} {fmt}");
                }
            }
            // The list's object id where a SLID is asked: the hint naming
            // the SLID must not tell an outsider that the list exists.
            let (_, body) = get_as(
                &st,
                &s,
                who,
                &format!("/table/SourceList/{}", s.private_list),
            )
            .await;
            let hint = format!("/table/SourceList/{}", s.private_slid);
            if !Secret::sees_private(who) {
                assert!(
                    !text(&body).contains(&hint),
                    "{backend} {who:?}: the object-id hint leaks the private list"
                );
            }
            // The catalogue calls behind those pages.
            let c = catalog_as(&s, who).await;
            let sees = Secret::sees_private(who);
            assert_eq!(
                c.slid_of_object(s.private_list).await.unwrap(),
                sees.then_some(Slid(s.private_slid)),
                "{backend} {who:?}: slid_of_object"
            );
            assert_eq!(
                c.first_int(
                    &wisecut::catalog::browse::Table::SourceLists,
                    &format!("frame_id = {}", s.private_frame),
                    "slid"
                )
                .await
                .unwrap(),
                sees.then_some(s.private_slid),
                "{backend} {who:?}: first_int"
            );
        }
    }
}

#[tokio::test]
async fn associations_of_a_private_list_are_hidden_with_it_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let sys = &s.db.catalog;
        // Associate the private list with another list (as the system,
        // which sees both): a public AssociateList with private members.
        let conn = common::raw_db(&s.db).await;
        let other: i64 = common::sql(
            &conn,
            "SELECT slid FROM source_list WHERE slid <> $1 ORDER BY n_sources DESC",
            vec![s.private_slid.into()],
        )
        .await[0]
            .try_get("", "slid")
            .unwrap();
        let req = wisecut::catalog::associate::AssociateRequest::new(
            vec![Slid(s.private_slid), Slid(other)],
            wisecut::model::AssocType::Chain,
            5.0,
        );
        let al = sys.associate(&req).await.unwrap();
        let alid = al.alid;
        let members = common::sql(
            &conn,
            "SELECT COUNT(*) AS n FROM association WHERE alid = $1 AND slid = $2",
            vec![alid.0.into(), s.private_slid.into()],
        )
        .await[0]
            .try_get::<i64>("", "n")
            .unwrap() as u64;
        let all = common::sql(
            &conn,
            "SELECT COUNT(*) AS n FROM association WHERE alid = $1",
            vec![alid.0.into()],
        )
        .await[0]
            .try_get::<i64>("", "n")
            .unwrap() as u64;
        assert!(
            members > 0 && all > members,
            "{backend}: {members} of {all}"
        );
        // Every association row, and those whose member is in the private
        // list (in any AssociateList).
        let raw = |sql: &'static str| {
            let conn = conn.clone();
            let slid = s.private_slid;
            async move {
                common::sql(&conn, sql, vec![slid.into()]).await[0]
                    .try_get::<i64>("", "n")
                    .unwrap() as u64
            }
        };
        let rows_all = raw("SELECT COUNT(*) AS n FROM association WHERE $1 = $1").await;
        let rows_private = raw("SELECT COUNT(*) AS n FROM association WHERE slid = $1").await;
        let st = s.state();
        for who in EVERYONE {
            let hidden = if Secret::sees_private(who) {
                0
            } else {
                members
            };
            let uri = format!("/table/AssociateList/{alid}?size=1000");
            let (status, body) = get_as(&st, &s, who, &uri).await;
            assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
            assert_eq!(
                html_total(&body),
                all - hidden,
                "{backend} {who:?}: association members"
            );
            let (_, csv) = get_as(
                &st,
                &s,
                who,
                &format!("/table/AssociateList/{alid}?format=csv&cols=slid"),
            )
            .await;
            let rows = csv_rows(&csv);
            assert_eq!(rows.len() as u64, all - hidden);
            assert_eq!(
                rows.iter().any(|r| r.trim() == s.private_slid.to_string()),
                Secret::sees_private(who),
                "{backend} {who:?}"
            );
            // The count of the Association category leaves out the members
            // of the private list, as the tables do.
            let counts = catalog_as(&s, who).await.category_counts().await.unwrap();
            let n = counts
                .iter()
                .find(|c| c.category == "Association")
                .unwrap()
                .count;
            let hidden_rows = if Secret::sees_private(who) {
                0
            } else {
                rows_private
            };
            assert_eq!(
                n as u64,
                rows_all - hidden_rows,
                "{backend} {who:?}: Association count"
            );
        }
    }
}

#[tokio::test]
async fn cone_searches_and_source_lookups_skip_private_lists_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let conn = common::raw_db(&s.db).await;
        let first = &common::sql(
            &conn,
            "SELECT sid, ra, dec FROM source WHERE slid = $1 ORDER BY sid",
            vec![s.private_slid.into()],
        )
        .await[0];
        let sid: i64 = first.try_get("", "sid").unwrap();
        let ra: f64 = first.try_get("", "ra").unwrap();
        let dec: f64 = first.try_get("", "dec").unwrap();
        let r = 60.0 / 3600.0;
        let root = text(
            &get_as(
                &st,
                &s,
                Who::Root,
                &format!("/vo/scs?RA={ra}&DEC={dec}&SR={r}"),
            )
            .await
            .1,
        );
        let root_ids: Vec<String> = cells(&root).into_iter().map(|c| c[0].clone()).collect();
        let prefix = format!("{}:", s.private_slid);
        let private_hits = root_ids.iter().filter(|i| i.starts_with(&prefix)).count();
        assert!(
            private_hits > 0,
            "{backend}: the cone holds private sources"
        );
        for who in EVERYONE {
            let sees = Secret::sees_private(who);
            let (status, body) =
                get_as(&st, &s, who, &format!("/vo/scs?RA={ra}&DEC={dec}&SR={r}")).await;
            assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
            let ids: Vec<String> = cells(&text(&body))
                .into_iter()
                .map(|c| c[0].clone())
                .collect();
            let want: Vec<String> = root_ids
                .iter()
                .filter(|i| sees || !i.starts_with(&prefix))
                .cloned()
                .collect();
            assert_eq!(ids, want, "{backend} {who:?}: SCS");
            // The private list's own cone search: as for a missing list.
            let (status, body) = get_as(
                &st,
                &s,
                who,
                &format!("/vo/scs/{}?RA={ra}&DEC={dec}&SR={r}", s.private_slid),
            )
            .await;
            if sees {
                assert_eq!(status, StatusCode::OK);
                assert_eq!(cells(&text(&body)).len(), private_hits, "{backend} {who:?}");
            } else {
                let (mstatus, missing) = get_as(
                    &st,
                    &s,
                    who,
                    &format!("/vo/scs/{MISSING}?RA={ra}&DEC={dec}&SR={r}"),
                )
                .await;
                assert_eq!(status, mstatus, "{backend} {who:?}");
                assert_eq!(
                    masked(&body, s.private_slid),
                    masked(&missing, MISSING),
                    "{backend} {who:?}: SCS of the private list"
                );
            }
            // The catalogue calls.
            let c = catalog_as(&s, who).await;
            let one = c.source(Slid(s.private_slid), Sid(sid)).await;
            assert_eq!(one.is_ok(), sees, "{backend} {who:?}: source");
            if let Err(e) = one {
                let missing = c.source(Slid(MISSING), Sid(sid)).await.unwrap_err();
                assert_eq!(
                    e.to_string().replace(&s.private_slid.to_string(), "N"),
                    missing.to_string().replace(&MISSING.to_string(), "N")
                );
            }
            let some = c
                .sources_in(Slid(s.private_slid), &[Sid(sid)])
                .await
                .unwrap();
            assert_eq!(
                some.len(),
                usize::from(sees),
                "{backend} {who:?}: sources_in"
            );
            let cone = c
                .cone_search(ra, dec, r, Some(Slid(s.private_slid)), 100_000)
                .await
                .unwrap();
            assert_eq!(cone.len(), if sees { private_hits } else { 0 });
        }
    }
}

#[tokio::test]
async fn sia_soda_datalink_data_and_moc_answer_outsiders_as_if_absent_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let sys = &s.db.catalog;
        let frame = sys.frame(s.private_frame).await.unwrap();
        let (ra, dec) = frame.center.expect("the private frame has a centre");
        let coadd = sys.frame(s.project_frame).await.unwrap();
        let sia =
            |ra: f64, dec: f64| format!("/vo/sia/query?POS=CIRCLE+{ra}+{dec}+0.001&MAXREC=10000");
        let did = |id: ObjectId| format!("<TD>ivo://wisecut/obj?{id}</TD>");
        let root_private = text(&get_as(&st, &s, Who::Root, &sia(ra, dec)).await.1);
        let (cra, cdec) = coadd.center.expect("the coadd has a centre");
        let root_coadd = text(&get_as(&st, &s, Who::Root, &sia(cra, cdec)).await.1);
        assert!(
            root_private.contains(&did(s.private_frame)),
            "{backend}: SIA finds it"
        );
        assert!(
            root_coadd.contains(&did(s.project_frame)),
            "{backend}: SIA finds the coadd"
        );
        let missing_links = get_as(
            &st,
            &s,
            Who::Anonymous,
            &format!("/vo/links?ID=ivo://wisecut/obj?{MISSING}"),
        )
        .await;
        let (mstatus, missing_data) =
            get_as(&st, &s, Who::Anonymous, &format!("/data/{MISSING}")).await;
        assert_eq!(mstatus, StatusCode::NOT_FOUND);
        let soda =
            |id: i64| format!("/vo/soda/sync?ID=ivo://wisecut/obj?{id}&CIRCLE={ra}+{dec}+0.003");
        let missing_soda = get_as(&st, &s, Who::Anonymous, &soda(MISSING)).await;
        assert_eq!(missing_soda.0, StatusCode::NOT_FOUND);
        for who in EVERYONE {
            // SIA: the records at each secret frame's centre.
            for (root_xml, (a, d), id, sees) in [
                (
                    &root_private,
                    (ra, dec),
                    s.private_frame,
                    Secret::sees_private(who),
                ),
                (
                    &root_coadd,
                    (cra, cdec),
                    s.project_frame,
                    Secret::sees_project(who),
                ),
            ] {
                let xml = text(&get_as(&st, &s, who, &sia(a, d)).await.1);
                assert_eq!(xml.contains(&did(id)), sees, "{backend} {who:?}: SIA {id}");
                // Every other record is the same.
                let ids = |x: &str| -> Vec<ObjectId> {
                    x.split("<TD>ivo://wisecut/obj?")
                        .skip(1)
                        .filter_map(|t| t[..t.find('<').unwrap_or(0)].parse().ok())
                        .map(ObjectId)
                        .collect()
                };
                let all = ids(root_xml);
                let got = ids(&xml);
                assert_eq!(
                    got.len(),
                    all.len() - hidden_among(&s, who, &all),
                    "{backend} {who:?}: SIA records"
                );
            }
            // SODA: 404 exactly as a missing frame.
            let (status, body) = get_as(&st, &s, who, &soda(s.private_frame.0)).await;
            if Secret::sees_private(who) {
                assert_eq!(status, StatusCode::OK, "{backend} {who:?}: {}", text(&body));
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?}");
                assert_eq!(
                    masked(&body, s.private_frame.0),
                    masked(&missing_soda.1, MISSING),
                    "{backend} {who:?}: SODA"
                );
            }
            // /data/{id}.
            let (status, body) = get_as(&st, &s, who, &format!("/data/{}", s.private_frame)).await;
            if Secret::sees_private(who) {
                assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
                assert_eq!(body.len() as i64, frame.file_size);
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?}");
                assert_eq!(
                    masked(&body, s.private_frame.0),
                    masked(&missing_data, MISSING),
                    "{backend} {who:?}: /data"
                );
            }
            // DataLink: of the frame and of its SourceList.
            for id in [s.private_frame, s.private_list] {
                let (status, body) = get_as(
                    &st,
                    &s,
                    who,
                    &format!("/vo/links?ID=ivo://wisecut/obj?{id}"),
                )
                .await;
                assert_eq!(status, missing_links.0);
                if Secret::sees_private(who) {
                    assert!(text(&body).contains("<TD>#this</TD>"), "{backend} {who:?}");
                } else {
                    assert_eq!(
                        masked(&body, id.0),
                        masked(&missing_links.1, MISSING),
                        "{backend} {who:?}: DataLink of {id}"
                    );
                }
            }
            if Secret::sees_private(who) {
                let (_, body) = get_as(
                    &st,
                    &s,
                    who,
                    &format!("/vo/links?ID=ivo://wisecut/obj?{}", s.private_list),
                )
                .await;
                assert!(
                    text(&body).contains(&format!(
                        "/table/SourceList/{}?format=votable",
                        s.private_slid
                    )),
                    "{backend} {who:?}: the list's table link"
                );
            }
        }
        // MOC: the coverage of the frames one may see. Computed here from
        // the frames' stored footprints, the secret ones left out.
        let reduced = sys
            .frames_of_class(wisecut::model::FrameClass::ReducedScienceFrame)
            .await
            .unwrap();
        let moc_of = |skip: bool| {
            let fps: Vec<wisecut::vo::coverage::Footprint> = reduced
                .iter()
                .filter(|f| !(skip && f.target.object_id == s.private_frame))
                .filter_map(|f| {
                    let fp = f.footprint.as_deref().filter(|v| v.len() == 4)?;
                    Some(wisecut::vo::coverage::Footprint {
                        class: "ReducedScienceFrame".into(),
                        filter: f.filter.clone(),
                        corners: [fp[0], fp[1], fp[2], fp[3]],
                    })
                })
                .collect();
            let cov = wisecut::vo::coverage::footprint_moc(&fps, 10);
            (cov.frames, wisecut::vo::coverage::to_json(&cov.moc))
        };
        let (n_all, moc_all) = moc_of(false);
        let (n_public, moc_public) = moc_of(true);
        assert_eq!(
            n_public + 1,
            n_all,
            "{backend}: the private frame has a footprint"
        );
        for who in EVERYONE {
            let (status, headers, body) = super::access::request_as(
                &st,
                &s,
                who,
                axum::http::Method::GET,
                "/vo/moc?class=ReducedScienceFrame&depth=10",
                None,
            )
            .await;
            assert_eq!(status, StatusCode::OK);
            let frames = headers["x-wisecut-frames"].to_str().unwrap().to_owned();
            let (n, moc) = if Secret::sees_private(who) {
                (n_all, &moc_all)
            } else {
                (n_public, &moc_public)
            };
            assert_eq!(frames, n.to_string(), "{backend} {who:?}: MOC frames");
            assert_eq!(&text(&body), moc, "{backend} {who:?}: MOC");
        }
    }
}

/// A TAP sync query as `who`: its rows.
async fn tap(st: &wisecut::web::AppState, s: &Secret, who: Who, adql: &str) -> Vec<Vec<String>> {
    let q = serde_urlencoded::to_string([("LANG", "ADQL"), ("QUERY", adql), ("MAXREC", "20000")])
        .unwrap();
    let (status, body) = get_as(st, s, who, &format!("/vo/tap/sync?{q}")).await;
    let xml = text(&body);
    assert_eq!(status, StatusCode::OK, "{adql}: {xml}");
    assert!(
        xml.contains(r#"<INFO name="QUERY_STATUS" value="OK"/>"#),
        "{adql}: {xml}"
    );
    cells(&xml)
}

async fn tap_count(st: &wisecut::web::AppState, s: &Secret, who: Who, adql: &str) -> i64 {
    tap(st, s, who, adql).await[0][0].parse().unwrap()
}

#[tokio::test]
async fn tap_tables_hold_only_visible_rows_on_both_backends() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let conn = common::raw_db(&s.db).await;
        let count = |sql: &'static str, v: Vec<sea_orm::Value>| {
            let conn = conn.clone();
            async move {
                common::sql(&conn, sql, v).await[0]
                    .try_get::<i64>("", "n")
                    .unwrap()
            }
        };
        let obscore_all = count("SELECT COUNT(*) AS n FROM obscore", vec![]).await;
        let in_obscore = |id: ObjectId| {
            count(
                "SELECT COUNT(*) AS n FROM obscore WHERE frame_id = $1",
                vec![id.0.into()],
            )
        };
        let private_in = in_obscore(s.private_frame).await;
        let coadd_in = in_obscore(s.project_frame).await;
        assert_eq!((private_in, coadd_in), (1, 1), "{backend}: both in ObsCore");
        let sources_all = count("SELECT COUNT(*) AS n FROM source", vec![]).await;
        let n_private = count(
            "SELECT COUNT(*) AS n FROM source WHERE slid = $1",
            vec![s.private_slid.into()],
        )
        .await;
        let lists_all = count("SELECT COUNT(*) AS n FROM source_list", vec![]).await;
        let deps_all = count("SELECT COUNT(*) AS n FROM dependency", vec![]).await;
        let deps_of = |id: ObjectId| {
            count(
                "SELECT COUNT(*) AS n FROM dependency WHERE parent_id = $1 OR child_id = $1",
                vec![id.0.into()],
            )
        };
        let deps_private = deps_of(s.private_frame).await;
        let deps_coadd = deps_of(s.project_frame).await;
        assert!(
            deps_private > 0 && deps_coadd > 0,
            "{backend}: secret edges"
        );
        let schema_tables = tap_count(
            &st,
            &s,
            Who::Root,
            "SELECT COUNT(*) FROM TAP_SCHEMA.columns",
        )
        .await;
        for who in EVERYONE {
            let (hp, hc) = (!Secret::sees_private(who), !Secret::sees_project(who));
            let (p, c) = (i64::from(hp), i64::from(hc));
            assert_eq!(
                tap_count(&st, &s, who, "SELECT COUNT(*) FROM ivoa.ObsCore").await,
                obscore_all - p - c,
                "{backend} {who:?}: ObsCore count"
            );
            let dids = tap(
                &st,
                &s,
                who,
                "SELECT TOP 20000 obs_publisher_did FROM ivoa.ObsCore ORDER BY obs_publisher_did",
            )
            .await;
            assert_eq!(dids.len() as i64, obscore_all - p - c);
            assert_eq!(
                dids.iter()
                    .any(|r| r[0] == format!("ivo://wisecut/obj?{}", s.private_frame)),
                !hp,
                "{backend} {who:?}"
            );
            // TOP is exact over the visible part.
            assert_eq!(
                tap(
                    &st,
                    &s,
                    who,
                    "SELECT TOP 3 frame_id FROM ivoa.ObsCore ORDER BY frame_id"
                )
                .await
                .len(),
                3
            );
            let rows = tap(
                &st,
                &s,
                who,
                &format!(
                    "SELECT * FROM wisecut.sources WHERE slid = {}",
                    s.private_slid
                ),
            )
            .await;
            assert_eq!(
                rows.len() as i64,
                if hp { 0 } else { n_private },
                "{backend} {who:?}"
            );
            assert_eq!(
                tap_count(&st, &s, who, "SELECT COUNT(*) FROM wisecut.sources").await,
                sources_all - p * n_private,
                "{backend} {who:?}: sources count"
            );
            assert_eq!(
                tap_count(&st, &s, who, "SELECT COUNT(*) FROM wisecut.source_lists").await,
                lists_all - p,
                "{backend} {who:?}: source_lists count"
            );
            // A join keeps the rule on both sides.
            assert_eq!(
                tap_count(
                    &st,
                    &s,
                    who,
                    "SELECT COUNT(*) FROM wisecut.sources s JOIN wisecut.source_lists l ON l.slid = s.slid"
                )
                .await,
                sources_all - p * n_private
            );
            let edges = tap(
                &st,
                &s,
                who,
                &format!(
                    "SELECT parent_id, child_id FROM wisecut.dependency WHERE parent_id = {0} OR child_id = {0}",
                    s.private_frame
                ),
            )
            .await;
            assert_eq!(
                edges.len() as i64,
                if hp { 0 } else { deps_private },
                "{backend} {who:?}: edges"
            );
            assert_eq!(
                tap_count(&st, &s, who, "SELECT COUNT(*) FROM wisecut.dependency").await,
                deps_all - hidden_edges(&conn, &s, who).await,
                "{backend} {who:?}: dependency count"
            );
            // The description is public.
            assert_eq!(
                tap_count(&st, &s, who, "SELECT COUNT(*) FROM TAP_SCHEMA.columns").await,
                schema_tables
            );
            // An async job runs on the catalogue it is given: the runner's
            // catalogue scoped to the submitter sees what the submitter sees.
            let cat = catalog_as(&s, who).await;
            let req = wisecut::vo::tap::Request::parse(
                &wisecut::vo::DalParams::parse("LANG=ADQL&QUERY=SELECT+COUNT(*)+FROM+ivoa.ObsCore")
                    .unwrap(),
            )
            .unwrap();
            let doc = wisecut::vo::tap::run(&cat, &req, vec![], "").await.unwrap();
            assert_eq!(
                doc.rows[0][0],
                wisecut::catalog::browse::Cell::Int(obscore_all - p - c),
                "{backend} {who:?}: tap::run"
            );
        }
    }
}

/// The dependency edges with an end `who` may not see (the private frame
/// and list, the project-level coadd), counted in the raw database.
async fn hidden_edges(conn: &sea_orm::DatabaseConnection, s: &Secret, who: Who) -> i64 {
    let mut hidden: Vec<i64> = Vec::new();
    if !Secret::sees_private(who) {
        hidden.extend([s.private_frame.0, s.private_list.0]);
    }
    if !Secret::sees_project(who) {
        hidden.push(s.project_frame.0);
    }
    if hidden.is_empty() {
        return 0;
    }
    let ids: Vec<String> = hidden.iter().map(i64::to_string).collect();
    let ids = ids.join(", ");
    let sql = format!(
        "SELECT COUNT(*) AS n FROM dependency WHERE parent_id IN ({ids}) OR child_id IN ({ids})"
    );
    let rows = sea_orm::ConnectionTrait::query_all_raw(
        conn,
        sea_orm::Statement::from_string(conn.get_database_backend(), sql),
    )
    .await
    .unwrap();
    rows[0].try_get::<i64>("", "n").unwrap()
}
