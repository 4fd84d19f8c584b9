//! Dependency-cutout speed, measured through the router (server time, no
//! network):
//!
//! ```text
//! cargo bench --bench deps
//! ```
//!
//! 1. `/api/deps?slid=<a ReducedScienceFrame SourceList>&ids=1:6` with all
//!    ten classes, PNGs and both GIFs, answered inline; **cold**: every run
//!    gets a fresh jobs directory and a fresh image cache (no opened files,
//!    no decompressed sidecars), as the first request after a start.
//! 2. A 100-source job (`ids=1:100` of the largest SourceList with at least
//!    100 sources), queued and made by the worker, polled until done: its
//!    wall time and the progress values seen while polling.
//!
//! Builds the `small` sample survey (4 × 512² chips) in a temporary
//! directory on SQLite first; `WISECUT_BENCH_RUNS` sets the number of cold
//! runs of (1) (default 10).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use sea_orm::{ConnectionTrait, Database, Statement};
use tower::ServiceExt;
use wisecut::catalog::Catalog;
use wisecut::config::Config;
use wisecut::sample::{self, SampleSpec};
use wisecut::web::{AppState, app};

/// One GET through the router: status, JSON body, milliseconds.
/// A request through the router (jobs are submitted with POST, the
/// parameters in the URL).
async fn call(
    st: &AppState,
    method: axum::http::Method,
    uri: &str,
) -> (StatusCode, serde_json::Value, f64) {
    let t = Instant::now();
    let res = app(st.clone())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|_| panic!("{uri}: {status}: {}", String::from_utf8_lossy(&body)));
    (status, json, ms)
}

/// A state with its own (empty) cache and jobs directories.
fn fresh_state(
    catalog: &Catalog,
    url: &str,
    data: &std::path::Path,
    root: &std::path::Path,
    inline_sources: usize,
) -> AppState {
    let cache = tempfile::tempdir_in(root).unwrap().keep();
    let mut config = Config::new(
        url.to_owned(),
        data.to_path_buf(),
        cache,
        "127.0.0.1:0".parse().unwrap(),
    );
    config.inline_sources = inline_sources;
    AppState::new(catalog.clone(), Arc::new(config)).unwrap()
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// SLID of the largest SourceList of a frame class with at least `min`
/// sources.
async fn largest_list(url: &str, class: &str, min: i64) -> Option<(i64, i64)> {
    let db = Database::connect(url).await.unwrap();
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            format!(
                "SELECT l.slid, l.n_sources FROM source_list l JOIN frame f ON f.object_id = l.frame_id \
                 WHERE f.frame_class = '{class}' AND l.n_sources >= {min} \
                 ORDER BY l.n_sources DESC, l.slid LIMIT 1"
            ),
        ))
        .await
        .unwrap()?;
    Some((
        row.try_get("", "slid").unwrap(),
        row.try_get("", "n_sources").unwrap(),
    ))
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::var("WISECUT_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10)
        .max(1);
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    eprintln!("deps bench: building the small survey…");
    sample::build_sample_db(
        dir.path(),
        &SampleSpec::small(sample::DEFAULT_SEED),
        Arc::new(|_: usize, _: usize, _: &str| {}),
    )
    .await
    .unwrap();
    eprintln!("  built in {:.1} s", t.elapsed().as_secs_f64());
    let url = Config::sqlite_url(&Config::sample_db_file(dir.path()));
    let data = Config::sample_data_dir(dir.path());
    let catalog = Catalog::connect(&url).await.unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();

    // 1. Six sources of a reduced frame, all classes, cold each time.
    let (slid, n) = largest_list(&url, "ReducedScienceFrame", 6)
        .await
        .expect("a reduced SourceList of six sources");
    let uri = format!("/api/deps?slid={slid}&ids=1:6");
    eprintln!("deps bench: {uri} (SourceList of {n} sources), {runs} cold runs…");
    let mut times = Vec::new();
    let mut files = 0;
    let mut make_ms = Vec::new();
    for _ in 0..runs {
        let st = fresh_state(&catalog, &url, &data, &scratch, 24);
        let (status, v, ms) = call(&st, axum::http::Method::POST, &uri).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        assert_eq!(v["status"], "done", "{v}");
        files = v["result"]["files"].as_u64().unwrap();
        make_ms.push(v["result"]["make_ms"].as_f64().unwrap());
        times.push(ms);
    }
    let min = times.iter().copied().fold(f64::INFINITY, f64::min);
    println!(
        "deps 1:6 cold: median {:.1} ms (min {:.1}) over {runs} runs, {files} files \
         (of which cutting and writing: median {:.1} ms)",
        median(&times),
        min,
        median(&make_ms)
    );

    // 2. A 100-source job through the queue.
    let (slid, n) = match largest_list(&url, "CoaddedRegriddedFrame", 100).await {
        Some(x) => x,
        None => largest_list(&url, "ReducedScienceFrame", 100)
            .await
            .expect("a SourceList of 100 sources"),
    };
    let st = fresh_state(&catalog, &url, &data, &scratch, 10);
    let worker = st.services.jobs.start();
    let uri = format!("/api/deps?slid={slid}&ids=1:100");
    eprintln!("deps bench: {uri} (SourceList of {n} sources) as a job…");
    let t = Instant::now();
    let (status, v, _) = call(&st, axum::http::Method::POST, &uri).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{v}");
    let id = v["id"].as_i64().unwrap();
    let mut progress: Vec<f64> = Vec::new();
    let v = loop {
        let (_, v, _) = call(&st, axum::http::Method::GET, &format!("/api/jobs/{id}")).await;
        let p = v["progress"].as_f64().unwrap();
        if progress.last() != Some(&p) {
            progress.push(p);
        }
        if v["status"] == "done" || v["status"] == "failed" {
            break v;
        }
        assert!(t.elapsed() < Duration::from_secs(600), "job {id} too slow");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let wall = t.elapsed().as_secs_f64() * 1000.0;
    worker.abort();
    assert_eq!(v["status"], "done", "{v}");
    let seen: Vec<String> = progress.iter().map(|p| format!("{p:.2}")).collect();
    println!(
        "deps 1:100 job: {:.1} ms wall from request to done, {} files, {} bytes, \
         cutting and writing {:.1} ms; progress seen: {}",
        wall,
        v["result"]["files"],
        v["result"]["bytes"],
        v["result"]["make_ms"].as_f64().unwrap_or(f64::NAN),
        seen.join(" ")
    );
}
