//! Several servers, one survey: real `wisecut serve` processes on one
//! PostgreSQL database (and one cache directory, or one shared store: a
//! directory, or an S3 server — moto — on loopback). A job submitted to one
//! runs exactly once and its ZIP downloads from the other with the same
//! bytes; without a shared store the other says 503 naming the setting; a
//! database that drops its connections or goes away and comes back is
//! answered 503 meanwhile and recovered from without a restart.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::common::{self, TestDb};

use common::{free_port, http_exchange as http};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(b: &[u8]) -> serde_json::Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(b)))
}

/// A `wisecut serve` child, killed when dropped.
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `wisecut serve` on the tiny sample with `extra` arguments and `env`.
fn serve(db: &str, cache: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisecut"));
    c.args(["serve", "--db", db, "--data"])
        .arg(common::tiny_sample())
        .arg("--cache")
        .arg(cache)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        .args(["--client-rate", "0", "--client-concurrency", "0"])
        .args(["--client-jobs-per-minute", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let server = Server {
        child: c.spawn().unwrap(),
        port,
    };
    let t = Instant::now();
    while http(port, "GET", "/health").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(90),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Polls `/api/jobs/{id}` on `port` until the job is done.
fn wait_done(port: u16, id: &str) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let (s, _, body) = http(port, "GET", &format!("/api/jobs/{id}")).unwrap();
        assert_eq!(s, 200, "{}", text(&body));
        let j = json(&body);
        match j["status"].as_str().unwrap_or_default() {
            "done" => return j,
            "failed" => panic!("job failed: {j}"),
            _ => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "job never done: {j}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A PostgreSQL database with the tiny sample: `None` outside CI without
/// `WISECUT_TEST_PG` (in CI, `common::postgres` fails instead).
async fn pg_sample() -> Option<TestDb> {
    Some(common::ingested(common::postgres().await?).await)
}

/// Submits `n` distinct queued dependency-cutout jobs to `a`, waits for each
/// on `b`, and checks that each ran exactly once and that its ZIP and a
/// file are the same from both servers.
async fn jobs_run_once_and_are_served_by_both(db: &TestDb, a: &Server, b: &Server, n: i64) {
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let mut ids = Vec::new();
    for k in 1..=n {
        let (s, _, body) = http(
            a.port,
            "POST",
            &format!("/api/deps?slid={slid}&ids={k}&size=30"),
        )
        .unwrap();
        assert_eq!(s, 202, "{}", text(&body));
        ids.push(json(&body)["id"].as_str().unwrap().to_owned());
    }
    let mut owners = std::collections::BTreeSet::new();
    for id in &ids {
        let j = wait_done(b.port, id);
        assert_eq!(j["attempts"], 1, "{j}");
        let log = j["log"].as_str().unwrap_or_default();
        assert_eq!(
            log.matches(": started").count(),
            1,
            "job {id} started exactly once:\n{log}"
        );
        let rec = db.catalog.job_by_public_id(id).await.unwrap();
        owners.insert(rec.owner.unwrap_or_default());
        let (sa, ha, za) = http(a.port, "GET", &format!("/jobs/{id}/zip")).unwrap();
        let (sb, hb, zb) = http(b.port, "GET", &format!("/jobs/{id}/zip")).unwrap();
        assert_eq!((sa, sb), (200, 200), "{} / {}", text(&za), text(&zb));
        assert!(ha.contains("application/zip") && hb.contains("application/zip"));
        assert!(za.len() > 100 && za.starts_with(b"PK"), "a ZIP");
        assert!(za == zb, "job {id}: the two servers' ZIPs differ");
        let (fa, _, ma) = http(a.port, "GET", &format!("/jobs/{id}/files/manifest.json")).unwrap();
        let (fb, _, mb) = http(b.port, "GET", &format!("/jobs/{id}/files/manifest.json")).unwrap();
        assert_eq!((fa, fb), (200, 200));
        assert_eq!(ma, mb);
        let (pb, _, page) = http(b.port, "GET", &format!("/jobs/{id}")).unwrap();
        assert_eq!(pb, 200, "{}", text(&page));
    }
    eprintln!("jobs ran on {owners:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_cache_and_a_shared_directory_serve_each_others_jobs() {
    let Some(db) = pg_sample().await else { return };
    let cache = tempfile::tempdir().unwrap();
    let shared = tempfile::tempdir().unwrap();
    let store = shared.path().to_str().unwrap();
    let args = ["--inline-sources", "0", "--shared-store", store];
    // The same --cache: the second takes <cache>/nodes/1.
    let a = serve(&db.url, cache.path(), &args, &[]);
    let b = serve(&db.url, cache.path(), &args, &[]);
    assert!(
        cache.path().join("nodes/1/.lock").is_file(),
        "the second server claimed a directory of its own"
    );
    jobs_run_once_and_are_served_by_both(&db, &a, &b, 4).await;
    assert!(
        std::fs::read_dir(shared.path().join("jobs"))
            .unwrap()
            .count()
            >= 4,
        "the results are in the shared directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_job_results_through_an_s3_server() {
    let Some(python) = common::peer_python("the S3 shared-store test (moto)") else {
        return;
    };
    let Some(db) = pg_sample().await else { return };
    let port = free_port();
    let mut moto = ChildGuard(
        Command::new(&python)
            .args(["-m", "moto.server", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    let t = Instant::now();
    loop {
        let made = Command::new(&python)
            .args([
                "-c",
                &format!(
                    "import boto3; boto3.client('s3', endpoint_url='{endpoint}', \
                     aws_access_key_id='testing', aws_secret_access_key='testing', \
                     region_name='us-east-1').create_bucket(Bucket='wisecut')"
                ),
            ])
            .stderr(Stdio::null())
            .status()
            .unwrap();
        if made.success() {
            break;
        }
        assert!(t.elapsed() < Duration::from_secs(60), "moto did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    let store = format!("s3://wisecut/results?endpoint={endpoint}&region=us-east-1");
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ];
    let args = ["--inline-sources", "0", "--shared-store", store.as_str()];
    let (ca, cb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = serve(&db.url, ca.path(), &args, &env);
    let b = serve(&db.url, cb.path(), &args, &env);
    jobs_run_once_and_are_served_by_both(&db, &a, &b, 2).await;
    // The store down: the server that made a new job still serves it, the
    // other answers 502 naming the store (not a 500, not a hang).
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let (s, _, body) = http(
        a.port,
        "POST",
        &format!("/api/deps?slid={slid}&ids=9&size=30"),
    )
    .unwrap();
    assert_eq!(s, 202, "{}", text(&body));
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    wait_done(a.port, &id);
    let _ = moto.0.kill();
    let _ = moto.0.wait();
    let mut got: Vec<(u16, String)> = [&a, &b]
        .iter()
        .map(|s| {
            let (st, _, body) = http(s.port, "GET", &format!("/jobs/{id}/zip")).unwrap();
            (st, text(&body))
        })
        .collect();
    got.sort();
    assert_eq!((got[0].0, got[1].0), (200, 502), "{got:?}");
    assert!(got[1].1.contains("shared store s3://wisecut"), "{got:?}");
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_shared_store_the_other_server_answers_503_naming_the_setting() {
    let Some(db) = pg_sample().await else { return };
    let (ca, cb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Inline jobs: made by the server asked, and only there.
    let a = serve(&db.url, ca.path(), &[], &[]);
    let b = serve(&db.url, cb.path(), &[], &[]);
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let (s, _, body) = http(
        a.port,
        "POST",
        &format!("/api/deps?slid={slid}&ids=1:2&size=30"),
    )
    .unwrap();
    assert_eq!(s, 200, "{}", text(&body));
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    for path in [format!("/jobs/{id}/zip"), format!("/api/jobs/{id}")] {
        let (s, head, body) = http(b.port, "GET", &path).unwrap();
        assert_eq!(s, 503, "{path}: {}", text(&body));
        assert!(head.contains("retry-after"), "{head}");
        assert!(text(&body).contains("--shared-store"), "{}", text(&body));
    }
    // Not marked removed by the other server's visit: its maker still
    // serves it.
    let (s, _, zip) = http(a.port, "GET", &format!("/jobs/{id}/zip")).unwrap();
    assert_eq!(s, 200, "{}", text(&zip));
}

/// A TCP forwarder to PostgreSQL that can drop every connection and refuse
/// new ones (the database "down") and come back.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    kill: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (kill, _) = tokio::sync::watch::channel(0u64);
        let (u, k) = (up.clone(), kill.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    continue;
                };
                if !u.load(Ordering::SeqCst) {
                    drop(conn);
                    continue;
                }
                let target = target.clone();
                let mut killed = k.subscribe();
                tokio::spawn(async move {
                    let Ok(mut pg) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut conn, &mut pg) => {}
                        _ = killed.changed() => {}
                    }
                });
            }
        });
        Proxy { port, up, kill }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.kill.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_lost_and_restored_is_recovered_from_without_a_restart() {
    let Some(db) = pg_sample().await else { return };
    // postgres://user@host:port/name → host:port and the database name.
    let (base, name) = db.url.rsplit_once('/').unwrap();
    let hostport = base.rsplit_once('@').map_or(base, |(_, h)| h).to_owned();
    let proxy = Proxy::start(hostport.clone()).await;
    let via = format!(
        "{}@127.0.0.1:{}/{name}",
        base.rsplit_once('@').unwrap().0,
        proxy.port
    );
    let cache = tempfile::tempdir().unwrap();
    let s = serve(&via, cache.path(), &[], &[]);
    // A lookup that always reads the database: an unknown job is a 404.
    let probe = format!("/api/jobs/{}", "0".repeat(32));
    let ask = || http(s.port, "GET", &probe).unwrap();
    assert_eq!(ask().0, 404);

    // 1. Every connection of the server killed by the database.
    use sea_orm::ConnectionTrait;
    let admin = sea_orm::Database::connect(format!("{base}/postgres"))
        .await
        .unwrap();
    admin
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        ))
        .await
        .unwrap();
    let (st, _, body) = ask();
    assert_eq!(st, 404, "after terminated backends: {}", text(&body));

    // 2. The database unreachable: a 503 with Retry-After within the
    // acquire timeout, not a hang or a 500.
    proxy.down();
    let t = Instant::now();
    let (st, head, body) = ask();
    assert_eq!(st, 503, "database down: {}", text(&body));
    assert!(head.contains("retry-after"), "{head}");
    assert!(text(&body).contains("database"), "{}", text(&body));
    assert!(
        t.elapsed() < Duration::from_secs(25),
        "answered after {:?}",
        t.elapsed()
    );

    // 3. Back: the next request is answered, no restart.
    proxy.restore();
    let t = Instant::now();
    loop {
        let (st, _, body) = ask();
        if st == 404 {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "not recovered: {st} {}",
            text(&body)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
