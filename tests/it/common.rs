//! Shared fixtures: fresh databases on every backend under test, and the tiny
//! sample survey generated once per test run.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wisecut::catalog::Catalog;
use wisecut::config::Config;
use wisecut::sample::{self, SampleSpec};

/// Seed of the shared tiny survey.
pub const SEED: u64 = 7;

/// The default sample survey's files (what every demo shows): the one CI
/// generated (`WISECUT_PEER_SAMPLE`), or generated here once per run with
/// the default seed (files only).
pub fn small_sample() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        if let Ok(dir) = std::env::var("WISECUT_PEER_SAMPLE") {
            return PathBuf::from(dir);
        }
        let dir = tempfile::Builder::new()
            .prefix("wisecut-small-")
            .tempdir()
            .expect("temp dir")
            .keep();
        let spec = SampleSpec::small(sample::DEFAULT_SEED);
        sample::generate(&dir, &spec, &|_, _, _| {}).expect("small sample");
        dir
    })
}

/// The directory of the tiny sample survey's files and manifest, generated on
/// first use (files only; each test ingests into its own database).
pub fn tiny_sample() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("wisecut-tiny-")
            .tempdir()
            .expect("temp dir")
            .keep();
        sample::generate(&dir, &SampleSpec::tiny(SEED), &|_, _, _| {}).expect("tiny sample");
        dir
    })
}

/// A catalogue on a fresh database, with the guard that keeps it alive.
pub struct TestDb {
    /// Backend name, for assertion messages.
    pub backend: &'static str,
    /// The catalogue.
    pub catalog: Catalog,
    /// Its URL.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh SQLite database in a temporary directory.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = Config::sqlite_url(&dir.path().join("test.db"));
    let catalog = Catalog::connect(&url).await.expect("sqlite connects");
    TestDb {
        backend: "sqlite",
        catalog,
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database when `WISECUT_TEST_PG` names a server
/// (`postgres://user@host:port`). In CI its absence is an error, so the
/// PostgreSQL half of the suite can never be skipped silently.
pub async fn postgres() -> Option<TestDb> {
    let Ok(base) = std::env::var("WISECUT_TEST_PG") else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set WISECUT_TEST_PG so database tests run on PostgreSQL too"
        );
        eprintln!("note: WISECUT_TEST_PG not set; PostgreSQL half of this test not run");
        return None;
    };
    use sea_orm::{ConnectionTrait, Database};
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "wisecut_test_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    let admin = Database::connect(format!("{base}/postgres"))
        .await
        .expect("PostgreSQL server reachable");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create test database");
    let url = format!("{base}/{name}");
    let catalog = Catalog::connect(&url).await.expect("postgres connects");
    Some(TestDb {
        backend: "postgres",
        catalog,
        url,
        _dir: None,
    })
}

/// Every backend under test, each with a fresh database.
pub async fn all_backends() -> Vec<TestDb> {
    let mut v = vec![sqlite().await];
    if let Some(pg) = postgres().await {
        v.push(pg);
    }
    v
}

/// A fresh database with the tiny sample ingested.
pub async fn ingested(db: TestDb) -> TestDb {
    let dir = tiny_sample();
    db.catalog
        .ingest(&dir.join("manifest.json"), dir)
        .await
        .unwrap_or_else(|e| panic!("{}: ingest failed: {e}", db.backend));
    // As `wisecut ingest` and `serve` do: TAP's ObsCore rows follow.
    wisecut::vo::obscore::sync_table(&db.catalog)
        .await
        .unwrap_or_else(|e| panic!("{}: ObsCore sync failed: {e}", db.backend));
    db
}

/// The SourceList with the most sources: (SLID, its frame's object id, size).
pub async fn biggest_source_list(catalog: &Catalog) -> (i64, i64, i64) {
    use wisecut::catalog::browse::{Cell, Dir, Query, Table};
    let t = Table::SourceLists;
    let mut q = Query::new(&t);
    q.sort = (t.column("n_sources").unwrap(), Dir::Desc);
    q.page_size = 1;
    let page = catalog.browse(&t, &q).await.unwrap();
    let row = &page.rows[0];
    let get = |name: &str| {
        let i = t.columns().iter().position(|c| c.name == name).unwrap();
        match row[i] {
            Cell::Int(v) => v,
            ref other => panic!("{name}: {other:?}"),
        }
    };
    let n = get("n_sources");
    assert!(n > 10, "the tiny survey has a SourceList with sources");
    (get("slid"), get("frame_id"), n)
}

/// A GET through the router without a socket: status, content type, body.
pub async fn fetch(
    st: &wisecut::web::AppState,
    uri: &str,
) -> (axum::http::StatusCode, String, Vec<u8>) {
    with_content_type(fetch_full(st, uri).await)
}

/// An answer with its content type instead of its headers.
fn with_content_type(
    (status, headers, body): (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>),
) -> (axum::http::StatusCode, String, Vec<u8>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    (status, content_type, body)
}

/// The JSON of an answer that must be 200.
fn json_of(what: &str, status: axum::http::StatusCode, body: &[u8]) -> serde_json::Value {
    assert_eq!(
        status,
        axum::http::StatusCode::OK,
        "{what}: {}",
        String::from_utf8_lossy(body)
    );
    serde_json::from_slice(body).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"))
}

/// The Python of the peer checks (`WISECUT_PYTHON`, set by `.ci/run`), or
/// `None` with a note outside CI; in CI its absence is a failure.
pub(crate) fn peer_python(check: &str) -> Option<String> {
    match std::env::var("WISECUT_PYTHON") {
        Ok(p) => Some(p),
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set WISECUT_PYTHON to a Python with astropy"
            );
            eprintln!("note: WISECUT_PYTHON not set; {check} not run");
            None
        }
    }
}

/// Runs `tests/peer/SCRIPT ARGS…` with the peer Python; it must succeed.
/// Prints and returns its output (the `astropy…` lines `.ci/run` shows).
pub(crate) fn run_peer(python: &str, script: &str, args: &[&std::ffi::OsStr]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peer")
        .join(script);
    let out = std::process::Command::new(python)
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // stderr (the FAIL line and any traceback) first: a log shortened
    // in its middle still shows why.
    assert!(
        out.status.success(),
        "astropy disagrees ({script}):\n{stderr}\n--- its stdout:\n{stdout}"
    );
    eprintln!("astropy: {stdout}");
    stdout
}

/// Reads FITS bytes (through a temporary file) into pixels and a header.
pub(crate) fn read_fits(
    bytes: &[u8],
) -> (
    wisecut::imaging::raster::Raster<f32>,
    wisecut::imaging::wcs::Header,
) {
    use wisecut::imaging::fits;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.fits");
    std::fs::write(&path, bytes).unwrap();
    let img = fits::read_image_f32(&path, 0).unwrap();
    let header = wisecut::imaging::wcs::Header::new(&fits::read_header(&path, 0).unwrap());
    (img, header)
}

/// A CSS selector (panics on a typo in the test).
pub fn sel(s: &str) -> scraper::Selector {
    scraper::Selector::parse(s).unwrap()
}

/// The first frame (lowest object id) of a class.
pub async fn first_frame(
    catalog: &Catalog,
    class: wisecut::model::FrameClass,
) -> wisecut::model::Frame {
    catalog
        .frames_of_class(class)
        .await
        .unwrap()
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {class:?} frame in the tiny sample"))
}

/// The text of an HTML error page's message.
pub fn error_message(html: &str) -> String {
    scraper::Html::parse_document(html)
        .select(&sel("p.error-message"))
        .next()
        .expect("an error page")
        .text()
        .collect()
}

/// An application state like `web::state` but with the configuration
/// adjusted first (small `inline_sources`, tiny `jobs_bytes`, …).
pub(crate) fn state_with(db: &TestDb, adjust: impl FnOnce(&mut Config)) -> wisecut::web::AppState {
    let cache = tempfile::tempdir().unwrap().keep();
    let data = tiny_sample().to_path_buf();
    let mut config = Config::new(db.url.clone(), data, cache, "127.0.0.1:0".parse().unwrap());
    without_client_limits(&mut config);
    adjust(&mut config);
    wisecut::web::AppState::new(db.catalog.clone(), std::sync::Arc::new(config)).unwrap()
}

/// Turns the per-client limits off: every request of a router test is one
/// client (`unknown`), and a test of another feature must not be refused
/// for asking quickly. `robustness.rs` tests the limits on their own.
pub(crate) fn without_client_limits(config: &mut Config) {
    config.limits.concurrency = 0;
    config.limits.rate_per_s = 0.0;
    config.limits.jobs_per_minute = 0;
}

/// A second connection to a test database, for SQL the catalogue does not
/// offer (finding test subjects, ageing a heartbeat).
pub(crate) async fn raw_db(db: &TestDb) -> sea_orm::DatabaseConnection {
    sea_orm::Database::connect(db.url.as_str())
        .await
        .unwrap_or_else(|e| panic!("{}: second connection: {e}", db.backend))
}

/// Runs SQL written with `$n` placeholders on either backend.
pub(crate) async fn sql(
    conn: &sea_orm::DatabaseConnection,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> Vec<sea_orm::QueryResult> {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let backend = conn.get_database_backend();
    let text = match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    conn.query_all_raw(Statement::from_sql_and_values(backend, text, values))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// A GET through the router that also hands back the headers.
pub(crate) async fn fetch_full(
    st: &wisecut::web::AppState,
    uri: &str,
) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
    request_full(st, axum::http::Method::GET, uri).await
}

/// A request with `method` and no body through the router.
pub(crate) async fn request_full(
    st: &wisecut::web::AppState,
    method: axum::http::Method,
    uri: &str,
) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = wisecut::web::app(st.clone())
        .oneshot(
            axum::http::Request::builder()
                .method(method)
                .uri(uri)
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let body = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, body)
}

/// A job submission: POST with the parameters in the URL.
pub(crate) async fn submit_full(
    st: &wisecut::web::AppState,
    uri: &str,
) -> (axum::http::StatusCode, axum::http::HeaderMap, Vec<u8>) {
    request_full(st, axum::http::Method::POST, uri).await
}

/// [`submit_full`] with the content type instead of the headers.
pub(crate) async fn submit(
    st: &wisecut::web::AppState,
    uri: &str,
) -> (axum::http::StatusCode, String, Vec<u8>) {
    with_content_type(submit_full(st, uri).await)
}

/// A job submission that must answer 200 with JSON.
pub(crate) async fn submit_json(st: &wisecut::web::AppState, uri: &str) -> serde_json::Value {
    let (status, _, body) = submit_full(st, uri).await;
    json_of(&format!("POST {uri}"), status, &body)
}

/// A GET that must answer 200 with JSON.
pub(crate) async fn fetch_json(st: &wisecut::web::AppState, uri: &str) -> serde_json::Value {
    let (status, _, body) = fetch(st, uri).await;
    json_of(uri, status, &body)
}

/// Copies a directory tree (a survey's files, to change them in a test).
pub(crate) fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A free TCP port on the loopback interface.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange with a server process on loopback: status,
/// lower-cased head and body bytes (de-chunked); `None` when the server
/// cannot be reached or answers nothing readable.
pub(crate) fn http_exchange(port: u16, method: &str, path: &str) -> Option<(u16, String, Vec<u8>)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(90)))
        .ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    let split = out.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&out[..split]).to_ascii_lowercase();
    let mut body = out[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head, body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let n = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&b[eol + 2..eol + 2 + n]);
        b = &b[eol + 2 + n + 2..];
    }
}
