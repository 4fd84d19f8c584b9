//! The table browser through the router, on SQLite and PostgreSQL: counts,
//! conditions with every operator, sorting, paging, the column chooser,
//! exports, and bad input (HTML checked with CSS selectors).

use super::common::{self, sel};
use super::web::state;
use axum::http::StatusCode;
use scraper::Html;
use wisecut::model::FrameClass;
use wisecut::web::AppState;

async fn get(st: &AppState, uri: &str) -> (StatusCode, String) {
    let (status, _, body) = common::fetch(st, uri).await;
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn enc(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).unwrap()[2..].to_owned()
}

/// (total, header names, rows as text) of a table page.
fn parse_table(body: &str) -> (u64, Vec<String>, Vec<Vec<String>>) {
    let doc = Html::parse_document(body);
    let total = doc
        .select(&sel("#total"))
        .next()
        .expect("a total")
        .text()
        .collect::<String>()
        .trim()
        .parse()
        .unwrap();
    let headers = doc
        .select(&sel("#results thead th"))
        .map(|h| h.value().attr("data-column").unwrap().to_owned())
        .collect();
    let rows = doc
        .select(&sel("#results tbody tr"))
        .map(|r| {
            r.select(&sel("td"))
                .map(|c| c.text().collect::<String>().trim().to_owned())
                .collect()
        })
        .collect();
    (total, headers, rows)
}

fn column(headers: &[String], rows: &[Vec<String>], name: &str) -> Vec<String> {
    let i = headers.iter().position(|h| h == name).unwrap();
    rows.iter().map(|r| r[i].clone()).collect()
}

#[tokio::test]
async fn frame_tables_filter_sort_page_and_export() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let b = db.backend;
        let reduced = db
            .catalog
            .frames_of_class(FrameClass::ReducedScienceFrame)
            .await
            .unwrap();

        // The index lists every table with its count.
        let (status, body) = get(&st, "/tables").await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let doc = Html::parse_document(&body);
        let row = doc
            .select(&sel("tr[data-table=ReducedScienceFrame] td.num"))
            .next()
            .unwrap();
        assert_eq!(row.text().collect::<String>(), reduced.len().to_string());

        // Unfiltered: the total is the class count.
        let (status, body) = get(&st, "/table/ReducedScienceFrame?size=10").await;
        assert_eq!(status, StatusCode::OK, "{b}: {body}");
        let (total, headers, rows) = parse_table(&body);
        assert_eq!(total as usize, reduced.len(), "{b}");
        assert_eq!(rows.len(), 10.min(reduced.len()));
        assert!(headers.contains(&"filename".to_owned()));

        // A condition: only g frames, and exactly as many as there are.
        let n_g = reduced
            .iter()
            .filter(|f| f.filter.as_deref() == Some("g"))
            .count();
        let (_, body) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}&size=1000",
                enc("filter = g")
            ),
        )
        .await;
        let (total, headers, rows) = parse_table(&body);
        assert_eq!(total as usize, n_g, "{b}");
        assert!(column(&headers, &rows, "filter").iter().all(|f| f == "g"));

        // like ignores case; not like is its complement.
        let (_, body) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}",
                enc("filename like RED_%_G_%")
            ),
        )
        .await;
        assert_eq!(parse_table(&body).0 as usize, n_g, "{b}");
        let (_, body) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}",
                enc("filename not like red_%_g_%")
            ),
        )
        .await;
        assert_eq!(parse_table(&body).0 as usize, reduced.len() - n_g, "{b}");

        // Sorting descending by exposure date, then by a numeric column.
        let (_, body) = get(
            &st,
            "/table/ReducedScienceFrame?sort=-mjd_obs&cols=filename,mjd_obs&size=1000",
        )
        .await;
        let (_, headers, rows) = parse_table(&body);
        assert_eq!(headers, vec!["filename", "mjd_obs"], "{b}: column chooser");
        let mjd: Vec<f64> = column(&headers, &rows, "mjd_obs")
            .iter()
            .map(|v| v.parse().unwrap())
            .collect();
        assert!(mjd.windows(2).all(|w| w[0] >= w[1]), "{b}: {mjd:?}");

        // Dates: between two instants covers night 1 only.
        let mut dates: Vec<_> = reduced.iter().filter_map(|f| f.date_obs).collect();
        dates.sort();
        let first = dates[0];
        let n_first_day = dates
            .iter()
            .filter(|d| d.date_naive() == first.date_naive())
            .count();
        let day = first.format("%Y-%m-%d").to_string();
        let cond = format!("date_obs between {day},{day} 23:59:59");
        let (_, body) = get(&st, &format!("/table/ReducedScienceFrame?q={}", enc(&cond))).await;
        assert_eq!(parse_table(&body).0 as usize, n_first_day, "{b}: {cond}");
        let cond = format!("date_obs > {day} 23:59:59");
        let (_, body) = get(&st, &format!("/table/ReducedScienceFrame?q={}", enc(&cond))).await;
        assert_eq!(
            parse_table(&body).0 as usize,
            reduced.len() - n_first_day,
            "{b}: {cond}"
        );

        // Two conditions combine with AND.
        let (_, body) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}&q={}",
                enc("filter = g"),
                enc("chip = ccd1")
            ),
        )
        .await;
        let n = reduced
            .iter()
            .filter(|f| f.filter.as_deref() == Some("g") && f.chip.as_deref() == Some("ccd1"))
            .count();
        assert_eq!(parse_table(&body).0 as usize, n, "{b}");

        // SQL in a value is data: nothing matches and nothing breaks.
        let (status, body) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}",
                enc("filter = ' OR 1=1 --")
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert_eq!(parse_table(&body).0, 0, "{b}");
        let (status, body) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}",
                enc("filename like %'; DROP TABLE frame; --")
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{b}");
        assert_eq!(parse_table(&body).0, 0);
        assert_eq!(
            db.catalog
                .frames_of_class(FrameClass::ReducedScienceFrame)
                .await
                .unwrap()
                .len(),
            reduced.len()
        );

        // A page past the end is empty, not an error.
        let (status, body) = get(&st, "/table/ReducedScienceFrame?page=999").await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let (total, _, rows) = parse_table(&body);
        assert_eq!((total as usize, rows.len()), (reduced.len(), 0));

        // Exports hold the whole query.
        let (status, csv) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}&cols=filename,filter&format=csv",
                enc("filter = g")
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{b}");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "filename,filter");
        assert_eq!(lines.len() - 1, n_g);
        assert!(lines[1..].iter().all(|l| l.ends_with(",g")));
        let (status, json) = get(
            &st,
            &format!(
                "/table/ReducedScienceFrame?q={}&format=json",
                enc("filter = g")
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(v["total"].as_u64().unwrap() as usize, n_g);
        assert_eq!(v["rows"].as_array().unwrap().len(), n_g);
    }
}

#[tokio::test]
async fn source_tables_and_links() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (status, body) = get(&st, "/table/SourceList?size=1000").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (total, headers, rows) = parse_table(&body);
    assert!(total > 0);
    let slids = column(&headers, &rows, "slid");
    // Each SLID links to its sources.
    let doc = Html::parse_document(&body);
    let link = doc
        .select(&sel(&format!(
            "#results a[href='/table/SourceList/{}']",
            slids[0]
        )))
        .next();
    assert!(link.is_some(), "SLID links to its sources");
    let (big, _, n_big) = common::biggest_source_list(&db.catalog).await;
    let i = slids.iter().position(|s| *s == big.to_string()).unwrap();
    let n_sources: u64 = column(&headers, &rows, "n_sources")[i].parse().unwrap();
    assert_eq!(n_sources as i64, n_big);
    let (status, body) = get(
        &st,
        &format!("/table/SourceList/{big}?sort=mag_auto&size=1000"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (total, headers, rows) = parse_table(&body);
    assert_eq!(total, n_sources);
    let mags: Vec<f64> = column(&headers, &rows, "mag_auto")
        .iter()
        .filter(|m| !m.is_empty())
        .map(|m| m.parse().unwrap())
        .collect();
    assert!(mags.windows(2).all(|w| w[0] <= w[1]), "{mags:?}");
    assert!(mags.len() > 10, "a real list is sorted");
    let cut = mags[mags.len() / 2];
    let (_, body) = get(
        &st,
        &format!(
            "/table/SourceList/{big}?q={}",
            enc(&format!("mag_auto < {cut}"))
        ),
    )
    .await;
    let bright = mags.iter().filter(|&&m| m < cut).count();
    assert!(bright > 0);
    assert_eq!(parse_table(&body).0 as usize, bright);
    let (status, _) = get(&st, "/table/SourceList/999999").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = get(&st, "/table/AssociateList").await;
    assert_eq!(status, StatusCode::OK);
    assert!(parse_table(&body).0 > 0);
}

#[tokio::test]
async fn bad_table_queries_are_400_with_the_allowed_values() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let cases = [
        (
            "/table/NoSuchFrame",
            vec!["valid tables", "ReducedScienceFrame"],
        ),
        (
            &*format!("/table/ReducedScienceFrame?q={}", enc("colour = red")),
            vec!["valid columns", "filename"],
        ),
        (
            &*format!("/table/ReducedScienceFrame?q={}", enc("filter ~ r")),
            vec!["allowed", "not between"],
        ),
        (
            &*format!(
                "/table/ReducedScienceFrame?q={}",
                enc("mjd_obs between 61000")
            ),
            vec!["two values"],
        ),
        (
            "/table/ReducedScienceFrame?sort=colour",
            vec!["sort", "valid columns"],
        ),
        (
            "/table/ReducedScienceFrame?size=7",
            vec!["size", "10, 25, 50"],
        ),
        ("/table/ReducedScienceFrame?page=0", vec!["page"]),
        (
            "/table/ReducedScienceFrame?format=xls",
            vec!["format", "csv, json"],
        ),
        (
            "/table/ReducedScienceFrame?bogus=1",
            vec!["bogus", "allowed"],
        ),
    ];
    for (uri, needles) in cases {
        let (status, body) = get(&st, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        let msg = common::error_message(&body);
        for n in needles {
            assert!(msg.contains(n), "{uri}: {msg:?} lacks {n:?}");
        }
    }
}

#[tokio::test]
async fn the_help_page_explains_the_query_syntax_and_the_tree() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (status, body) = get(&st, "/help").await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&body);
    let ops: String = doc
        .select(&sel("#operators"))
        .next()
        .unwrap()
        .text()
        .collect();
    for op in ["not between", "like", "!="] {
        assert!(ops.contains(op), "{op}");
    }
    assert!(doc.select(&sel("h2#lineage")).next().is_some());
    let nav: Vec<String> = doc
        .select(&sel("header nav a"))
        .map(|a| a.text().collect())
        .collect();
    assert!(nav.contains(&"Tables".to_owned()) && nav.contains(&"Help".to_owned()));
}

#[tokio::test]
async fn the_cone_search_box_is_exact() {
    for db in common::all_backends().await {
        let db = common::ingested(db).await;
        let st = state(&db);
        let b = db.backend;
        // All sources of a list with positions, from the JSON export.
        let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
        let (_, json) = get(
            &st,
            &format!("/table/SourceList/{slid}?cols=sid,ra,dec&format=json"),
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let pos: Vec<(i64, f64, f64)> = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["sid"].as_i64().unwrap(),
                    r["ra"].as_f64().unwrap(),
                    r["dec"].as_f64().unwrap(),
                )
            })
            .collect();
        let (_, ra, dec) = pos[pos.len() / 2];
        for radius_arcsec in [5.0, 30.0, 90.0] {
            let expected: Vec<i64> = pos
                .iter()
                .filter(|(_, r, d)| {
                    wisecut::imaging::sphere::separation_deg(ra, dec, *r, *d) * 3600.0
                        <= radius_arcsec
                })
                .map(|p| p.0)
                .collect();
            let (status, body) = get(
                &st,
                &format!(
                    "/table/SourceList/{slid}?ra={ra}&dec={dec}&radius={radius_arcsec}&cols=sid&size=1000"
                ),
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{b}: {body}");
            let (total, headers, rows) = parse_table(&body);
            assert_eq!(total as usize, expected.len(), "{b}: r = {radius_arcsec}\"");
            let mut got: Vec<i64> = column(&headers, &rows, "sid")
                .iter()
                .map(|s| s.parse().unwrap())
                .collect();
            got.sort();
            assert_eq!(got, expected, "{b}");
        }
        // Paging inside a cone keeps the total.
        let (_, body) = get(
            &st,
            &format!("/table/SourceList/{slid}?ra={ra}&dec={dec}&radius=90&size=10&page=2"),
        )
        .await;
        let (total, _, rows) = parse_table(&body);
        assert!(rows.len() <= 10 && total > 0);

        // Frames: a cone at a frame's centre finds it.
        let f = db
            .catalog
            .frames_of_class(FrameClass::RegriddedFrame)
            .await
            .unwrap()
            .remove(0);
        let (ra, dec) = f.center.unwrap();
        let (_, body) = get(
            &st,
            &format!("/table/RegriddedFrame?ra={ra}&dec={dec}&radius=1&cols=object_id"),
        )
        .await;
        let (total, headers, rows) = parse_table(&body);
        assert!(total >= 1, "{b}");
        assert!(column(&headers, &rows, "object_id").contains(&f.target.object_id.to_string()));
    }
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    for (uri, needle) in [
        ("/table/SourceList?ra=10&dec=2&radius=5", "no positions"),
        ("/table/ReducedScienceFrame?ra=10&dec=2", "together"),
        ("/table/ReducedScienceFrame?ra=10&dec=2&radius=-1", "radius"),
        ("/table/ReducedScienceFrame?ra=10&dec=99&radius=1", "dec"),
    ] {
        let (status, body) = get(&st, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(body.contains(needle), "{uri}");
    }
}
