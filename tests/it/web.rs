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
