//! The HTTP application, driven through the router without a socket.

use super::common;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use scraper::{Html, Selector};
use std::sync::Arc;
use tower::ServiceExt;
use wisecut::config::Config;
use wisecut::web::{AppState, app};

async fn get(state: &AppState, uri: &str) -> (StatusCode, String) {
    let res = app(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub(crate) fn state(db: &common::TestDb) -> AppState {
    // Each state gets its own cache directory, kept for the test process.
    let cache = tempfile::tempdir().unwrap().keep();
    let data = common::tiny_sample().to_path_buf();
    let mut config = Config::new(db.url.clone(), data, cache, "127.0.0.1:0".parse().unwrap());
    common::without_client_limits(&mut config);
    AppState::new(db.catalog.clone(), Arc::new(config)).unwrap()
}

#[tokio::test]
async fn the_home_page_lists_every_category_with_its_real_count() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (status, body) = get(&st, "/").await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&body);
    let row = Selector::parse("tr[data-category]").unwrap();
    let num = Selector::parse("td.num").unwrap();
    let shown: std::collections::HashMap<String, i64> = doc
        .select(&row)
        .map(|r| {
            let cat = r.value().attr("data-category").unwrap().to_owned();
            let n = r.select(&num).next().unwrap().text().collect::<String>();
            (cat, n.trim().parse().unwrap())
        })
        .collect();
    let counts = db.catalog.category_counts().await.unwrap();
    assert_eq!(shown.len(), counts.len());
    for c in counts {
        assert_eq!(shown[&c.category], c.count, "{}", c.category);
    }
    assert!(shown["RawScienceFrame"] > 0 && shown["Source"] > 0);
    let nav = Selector::parse("header nav a").unwrap();
    assert!(
        doc.select(&nav)
            .any(|a| a.text().collect::<String>() == "Home")
    );
}

#[tokio::test]
async fn health_answers_and_unknown_pages_are_404_pages() {
    let db = common::sqlite().await;
    let st = state(&db);
    assert_eq!(get(&st, "/health").await, (StatusCode::OK, "ok".into()));
    let (status, body) = get(&st, "/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let doc = Html::parse_document(&body);
    let msg = Selector::parse("p.error-message").unwrap();
    let text: String = doc.select(&msg).next().unwrap().text().collect();
    assert!(text.contains("/no/such/page"), "{text}");
    let (status, css) = get(&st, "/static/style.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("body"));
}

/// Every parameter list a script-facing route accepts, taken from the
/// routes' own constants: `/help` must document each of them (issue 14,
/// item 12: `/help` covered `/api/cutout` in two lines).
fn accepted_parameters() -> Vec<(&'static str, Vec<&'static str>)> {
    use wisecut::web::*;
    vec![
        ("api-cutout", cutout_api::CUTOUT_PARAMS.to_vec()),
        ("api-images", cutout_api::IMAGES_PARAMS.to_vec()),
        ("api-pixel", vec!["frame", "x", "y"]),
        ("api-deps", dependency_cutout_pages::DEP_PARAMS.to_vec()),
        ("api-rgb", rgb_pages::PARAMS.to_vec()),
        (
            "api-batch",
            wisecut::products::batch::positions_csv::column_names()
                .into_iter()
                .map(|(n, _)| n)
                .collect(),
        ),
        ("api-jobs", job_pages::JOBS_PARAMS.to_vec()),
        ("table-export", table_pages::PARAMS.to_vec()),
        ("vo-sia", wisecut::vo::sia::PARAMS.to_vec()),
        ("vo-soda", wisecut::vo::soda::PARAMS.to_vec()),
        ("vo-links", vo_endpoints::LINKS_PARAMS.to_vec()),
        ("vo-prov", vo_endpoints::PROV_PARAMS.to_vec()),
        ("vo-moc", vo_endpoints::MOC_PARAMS.to_vec()),
    ]
}

#[tokio::test]
async fn help_documents_every_parameter_and_its_examples_work() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (status, html) = get(&st, "/help").await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&html);
    let sel = common::sel;
    assert_eq!(doc.select(&sel("tr.undocumented")).count(), 0);
    for (id, params) in accepted_parameters() {
        let rows: Vec<String> = doc
            .select(&sel(&format!("table#params-{id} tbody tr")))
            .map(|tr| {
                let name: String = tr.select(&sel("td.param")).flat_map(|e| e.text()).collect();
                // A documented row has values, a default column and a meaning.
                assert_eq!(tr.select(&sel("td")).count(), 4, "{id} {name}");
                name
            })
            .collect();
        assert_eq!(rows, params, "{id}");
    }
    // The examples use this archive's ids: every link answers 200, every
    // POST command makes its job.
    let links: Vec<String> = doc
        .select(&sel("a.example"))
        .map(|a| a.value().attr("href").unwrap().to_owned())
        .collect();
    assert!(links.len() >= 10, "{links:?}");
    for link in &links {
        let (status, _, body) = common::fetch(&st, link).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{link}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    let commands: Vec<String> = doc
        .select(&sel("code.example-command"))
        .map(|c| c.text().collect())
        .collect();
    let mut posted = 0;
    for c in &commands {
        if !c.contains("-X POST") || c.contains("--data-binary") {
            continue;
        }
        let url = c.split('\'').nth(1).unwrap();
        let path = &url[url.find("/api/").unwrap()..];
        let (status, _, body) = common::submit_full(&st, path).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::ACCEPTED,
            "{c}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        posted += 1;
    }
    assert!(posted >= 2, "{commands:?}");
}

#[tokio::test]
async fn status_is_a_page_with_counts_disk_use_and_limits_and_json_on_request() {
    let db = common::ingested(common::sqlite().await).await;
    let st = state(&db);
    let (status, html) = get(&st, "/status").await;
    assert_eq!(status, StatusCode::OK);
    let doc = Html::parse_document(&html);
    let text = |s: &str| -> String {
        doc.select(&common::sel(s))
            .flat_map(|e| e.text())
            .collect::<String>()
    };
    assert_eq!(text("#version"), wisecut::VERSION);
    assert_eq!(text("#database"), "SQLite");
    let counts = db.catalog.category_counts().await.unwrap();
    assert_eq!(
        doc.select(&common::sel("#status-counts tr")).count(),
        counts.len()
    );
    let limits = text("#status-limits");
    for needle in ["memory budget", "per client", "largest cutout side"] {
        assert!(limits.contains(needle), "{limits}");
    }
    // The same as JSON for scripts.
    let res = app(st.clone())
        .oneshot(
            Request::get("/status")
                .header("accept", "application/json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "application/json");
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["database"], "SQLite");
    for c in &counts {
        let row = v["counts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["category"] == c.category.as_str())
            .unwrap();
        assert_eq!(row["count"], c.count, "{}", c.category);
    }
    assert_eq!(v["cache"]["max_bytes"], st.config.cache_bytes);
    // Probes keep their bare answer; the navigation leads to the page.
    assert_eq!(get(&st, "/health").await, (StatusCode::OK, "ok".into()));
    let nav: Vec<String> = doc
        .select(&common::sel("header nav a"))
        .filter(|a| a.text().collect::<String>() == "Status")
        .map(|a| a.value().attr("href").unwrap().to_owned())
        .collect();
    assert_eq!(nav, ["/status"]);
}

#[tokio::test]
async fn every_page_links_the_favicon_and_it_is_served() {
    let db = common::sqlite().await;
    let st = state(&db);
    let (_, html) = get(&st, "/help").await;
    let doc = Html::parse_document(&html);
    let icon = doc
        .select(&common::sel("link[rel=icon]"))
        .next()
        .expect("a <link rel=icon>")
        .value()
        .attr("href")
        .unwrap()
        .to_owned();
    for uri in [icon.as_str(), "/favicon.ico"] {
        let (status, ct, body) = common::fetch(&st, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert_eq!(ct, "image/svg+xml", "{uri}");
        let svg = String::from_utf8(body).unwrap();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
    }
}
