//! The table browser through the router, on SQLite and PostgreSQL: counts,
//! conditions with every operator, sorting, paging, the column chooser,
//! exports, and bad input (HTML checked with CSS selectors); the per-row
//! tools (image view, dependency cutouts, thumbnails), numbers rounded by
//! column in HTML only, and a bad query re-shown with its form.

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
    // The tools column (links and thumbnails of a row) has no data column.
    let headers = doc
        .select(&sel("#results thead th[data-column]"))
        .map(|h| h.value().attr("data-column").unwrap().to_owned())
        .collect();
    let rows = doc
        .select(&sel("#results tbody tr"))
        .map(|r| {
            r.select(&sel("td:not(.tools)"))
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

/// The full-precision values of a column, from the JSON export of the
/// same query.
async fn exported(st: &AppState, uri: &str, column: &str) -> Vec<f64> {
    let (status, json) = get(st, &format!("{uri}&format=json")).await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[column].as_f64().unwrap())
        .collect()
}

/// Decimals of a number as printed.
fn decimals(text: &str) -> usize {
    text.split_once('.').map_or(0, |(_, f)| f.len())
}

/// Issue 14 item 6: `150.13068865329322` in an HTML table pushed columns off
/// the page. The HTML rounds by column (RA/Dec 1e-6 deg or sexagesimal,
/// pixels 2, magnitudes 3, other numbers 4 significant digits) with the full
/// value in `title`; CSV and JSON keep every digit.
#[tokio::test]
async fn html_numbers_are_rounded_by_column_and_exports_keep_full_precision() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let uri = format!(
        "/table/SourceList/{slid}?cols=sid,ra,dec,x,mag_auto,magerr_auto,class_star&size=25"
    );
    let (status, body) = get(&st, &uri).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, headers, rows) = parse_table(&body);
    let full_ra = exported(&st, &uri, "ra").await;
    let ra = column(&headers, &rows, "ra");
    assert_eq!(ra.len(), full_ra.len());
    assert!(
        full_ra.iter().any(|v| decimals(&v.to_string()) > 6),
        "the sample has positions with more than 6 decimals: {full_ra:?}"
    );
    for (shown, full) in ra.iter().zip(&full_ra) {
        assert_eq!(decimals(shown), 6, "{shown}");
        assert!(
            (shown.parse::<f64>().unwrap() - full).abs() <= 5e-7,
            "{shown} vs {full}"
        );
    }
    for (name, places) in [("dec", 6), ("x", 2), ("mag_auto", 3), ("magerr_auto", 3)] {
        for v in column(&headers, &rows, name)
            .iter()
            .filter(|v| !v.is_empty())
        {
            assert_eq!(decimals(v), places, "{name}: {v}");
        }
    }
    for v in column(&headers, &rows, "class_star") {
        let digits = v.trim_start_matches(['0', '.']).replace('.', "");
        assert!(
            digits.len() <= 4,
            "class_star {v}: at most 4 significant digits"
        );
    }
    // The full value is in the cell's title, exactly as the export has it.
    let doc = Html::parse_document(&body);
    let i = headers.iter().position(|h| h == "ra").unwrap();
    let titles: Vec<f64> = doc
        .select(&sel("#results tbody tr"))
        .map(|r| {
            let td = r.select(&sel("td:not(.tools)")).nth(i).unwrap();
            let full = td
                .value()
                .attr("title")
                .map(str::to_owned)
                .unwrap_or_else(|| td.text().collect());
            full.trim().parse().unwrap()
        })
        .collect();
    assert_eq!(titles, full_ra, "titles hold the full values");
    // CSV keeps every digit too.
    let (_, csv) = get(&st, &format!("{uri}&format=csv")).await;
    let csv_ra: Vec<f64> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(csv_ra, full_ra);

    // Sexagesimal on request, kept in the page's links.
    let (status, body) = get(&st, &format!("{uri}&coords=sex")).await;
    assert_eq!(status, StatusCode::OK);
    let (_, headers, rows) = parse_table(&body);
    for ((h, d), (fra, fdec)) in column(&headers, &rows, "ra")
        .iter()
        .zip(column(&headers, &rows, "dec"))
        .zip(full_ra.iter().zip(exported(&st, &uri, "dec").await))
    {
        assert!(h.len() == 12 && h.matches(':').count() == 2, "{h}");
        let back_ra = wisecut::params::angle::parse_ra(h).unwrap();
        let back_dec = wisecut::params::angle::parse_dec(&d).unwrap();
        assert!((back_ra - fra).abs() * 3600.0 < 0.008, "{h} vs {fra}");
        assert!((back_dec - fdec).abs() * 3600.0 < 0.006, "{d} vs {fdec}");
    }
    let doc = Html::parse_document(&body);
    let sort = doc
        .select(&sel("th[data-column=ra] a.sort.asc"))
        .next()
        .unwrap();
    assert!(sort.value().attr("href").unwrap().contains("coords=sex"));
    assert!(
        doc.select(&sel("form.query input[name=coords][value=sex]"))
            .next()
            .is_some()
    );
    assert!(doc.select(&sel("a#coords-deg")).next().is_some());
    let (status, body) = get(&st, &format!("{uri}&coords=radians")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let msg = common::error_message(&body);
    assert!(msg.contains("coords") && msg.contains("deg, sex"), "{msg}");

    // Frames: dates to the second, MJDs without needless digits.
    let uri = "/table/ReducedScienceFrame?cols=object_id,date_obs,mjd_obs,ra,exptime&size=10";
    let (_, body) = get(&st, uri).await;
    let (_, headers, rows) = parse_table(&body);
    for v in column(&headers, &rows, "mjd_obs") {
        assert!(decimals(&v) <= 5, "{v}");
    }
    for v in column(&headers, &rows, "date_obs") {
        assert_eq!(v.len(), "2026-03-01 12:00:00".len(), "{v}");
    }
    for v in column(&headers, &rows, "ra") {
        assert_eq!(decimals(&v), 6, "{v}");
    }
}

/// Issue 14 items 5 and 9: each source row links to the dependency-cutout
/// form filled in for it and shows a small lazy thumbnail cut around it from
/// the list's frame; SourceList rows link to their request and show their
/// frame; frame rows link to their image view.
#[tokio::test]
async fn rows_link_to_their_image_view_dependency_cutouts_and_thumbnails() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (slid, frame, _) = common::biggest_source_list(&db.catalog).await;
    let (status, body) = get(&st, &format!("/table/SourceList/{slid}?size=10")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, headers, rows) = parse_table(&body);
    let sids = column(&headers, &rows, "sid");
    let doc = Html::parse_document(&body);
    let trs: Vec<_> = doc.select(&sel("#results tbody tr")).collect();
    assert_eq!(trs.len(), sids.len());
    let mut thumbs = Vec::new();
    for (tr, sid) in trs.iter().zip(&sids) {
        let deps = tr
            .select(&sel("td.tools a.deps-link"))
            .next()
            .expect("a deps link");
        assert_eq!(
            deps.value().attr("href"),
            Some(&*format!("/deps?slid={slid}&ids={sid}"))
        );
        let img = tr.select(&sel("td.tools img")).next().expect("a thumbnail");
        assert_eq!(img.value().attr("loading"), Some("lazy"));
        let src = img.value().attr("src").unwrap().to_owned();
        assert!(
            src.starts_with(&format!("/api/cutout?frame={frame}&")),
            "{src}"
        );
        thumbs.push(src);
    }
    // The thumbnail is a small JPEG of the source's neighbourhood.
    let (status, ctype, jpg) = common::fetch(&st, &thumbs[0]).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&jpg));
    assert_eq!(ctype, "image/jpeg");
    let img = image::load_from_memory(&jpg).unwrap();
    assert_eq!(img.width().max(img.height()), 48);
    // The deps link only fills in the form: no job starts.
    let (status, body) = get(&st, &format!("/deps?slid={slid}&ids={}", sids[0])).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let doc = Html::parse_document(&body);
    let ids = doc
        .select(&sel("#deps-form input[name=ids]"))
        .next()
        .unwrap();
    assert_eq!(ids.value().attr("value"), Some(sids[0].as_str()));
    assert_eq!(db.catalog.jobs(None, None, 0, 10).await.unwrap().0, 0);
    // Thumbnails can be turned off, and the choice is kept in the links.
    let (_, body) = get(&st, &format!("/table/SourceList/{slid}?size=10&thumbs=no")).await;
    let doc = Html::parse_document(&body);
    assert_eq!(doc.select(&sel("#results img")).count(), 0);
    assert_eq!(doc.select(&sel("#results a.deps-link")).count(), sids.len());
    let next = doc.select(&sel("a#thumbs-toggle")).next().unwrap();
    assert!(!next.value().attr("href").unwrap().contains("thumbs=no"));
    let sort = doc
        .select(&sel("th[data-column=sid] a.sort"))
        .next()
        .unwrap();
    assert!(sort.value().attr("href").unwrap().contains("thumbs=no"));

    // SourceList rows: a request for the list and a thumbnail of its frame.
    let (_, body) = get(&st, "/table/SourceList?size=1000").await;
    let doc = Html::parse_document(&body);
    let row = doc
        .select(&sel("#results tbody tr"))
        .find(|tr| {
            tr.select(&sel(&format!("a[href='/table/SourceList/{slid}']")))
                .next()
                .is_some()
        })
        .unwrap();
    let deps = row.select(&sel("a.deps-link")).next().unwrap();
    assert_eq!(
        deps.value().attr("href"),
        Some(&*format!("/deps?slid={slid}"))
    );
    let img = row.select(&sel("img[loading=lazy]")).next().unwrap();
    assert_eq!(img.value().attr("src"), Some(&*format!("/thumb/{frame}")));

    // Associations link to the request of their AID.
    let (_, body) = get(&st, "/table/AssociateList").await;
    let (_, headers, rows) = parse_table(&body);
    let alid = &column(&headers, &rows, "alid")[0];
    let (_, body) = get(&st, &format!("/table/AssociateList/{alid}?size=10")).await;
    let (_, headers, rows) = parse_table(&body);
    let aid = &column(&headers, &rows, "aid")[0];
    let doc = Html::parse_document(&body);
    assert!(
        doc.select(&sel(&format!(
            "a.deps-link[href='/deps?alid={alid}&ids={aid}']"
        )))
        .next()
        .is_some()
    );

    // Frame rows open their image view directly.
    let (_, body) = get(&st, "/table/ReducedScienceFrame?size=10").await;
    let (_, headers, rows) = parse_table(&body);
    let id = &column(&headers, &rows, "object_id")[0];
    let doc = Html::parse_document(&body);
    let view = doc
        .select(&sel(&format!("#results a.image-link[href='/image/{id}']")))
        .next()
        .expect("an image-view link per frame row");
    let (status, _) = get(&st, view.value().attr("href").unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

/// Issue 14 item 8: `exptime between 90 and 110` used to replace the page
/// with a bare 400 page, losing the form. The table page comes back with
/// the error above the form and every input kept, still with status 400.
#[tokio::test]
async fn a_mistyped_condition_is_shown_above_the_form_with_the_input_kept() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let uri = format!(
        "/table/ReducedScienceFrame?q={}&q={}&cols=filename,exptime&size=25&ra=150.1&dec=2.2&radius=600&coords=sex",
        enc("exptime between 90 and 110"),
        enc("filter = r")
    );
    let (status, body) = get(&st, &uri).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let doc = Html::parse_document(&body);
    let h1: String = doc.select(&sel("h1")).next().unwrap().text().collect();
    assert_eq!(h1, "ReducedScienceFrame");
    let error: String = doc
        .select(&sel("#error"))
        .next()
        .expect("the error")
        .text()
        .collect();
    assert!(
        error.contains("exptime between 90 and 110") && error.contains("two values"),
        "{error}"
    );
    let conditions: Vec<&str> = doc
        .select(&sel("form.query input[name=q]"))
        .filter_map(|i| i.value().attr("value"))
        .filter(|v| !v.is_empty())
        .collect();
    assert_eq!(conditions, ["exptime between 90 and 110", "filter = r"]);
    let checked: Vec<&str> = doc
        .select(&sel("form.query input[name=cols][checked]"))
        .map(|i| i.value().attr("value").unwrap())
        .collect();
    assert_eq!(checked, ["filename", "exptime"]);
    let size = doc
        .select(&sel("select[name=size] option[selected]"))
        .next()
        .unwrap();
    assert_eq!(size.value().attr("value"), Some("25"));
    for (name, value) in [("ra", "150.1"), ("dec", "2.2"), ("radius", "600")] {
        let input = doc
            .select(&sel(&format!("form.query input[name={name}]")))
            .next()
            .unwrap();
        assert_eq!(input.value().attr("value"), Some(value), "{name}");
    }
    assert!(
        doc.select(&sel("form.query input[name=coords][value=sex]"))
            .next()
            .is_some()
    );
    // No result table pretends to answer the query.
    assert!(doc.select(&sel("#results")).next().is_none());
    // A value of the wrong type is refused the same way.
    let (status, body) = get(
        &st,
        &format!("/table/ReducedScienceFrame?q={}", enc("naxis1 < lots")),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        Html::parse_document(&body)
            .select(&sel("form.query"))
            .next()
            .is_some()
    );
    // Exports stay plain 400s for scripts.
    let (status, body) = get(
        &st,
        &format!(
            "/table/ReducedScienceFrame?q={}&format=csv",
            enc("exptime between 90 and 110")
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        Html::parse_document(&body)
            .select(&sel("form.query"))
            .next()
            .is_none()
    );
}
