//! `kill -9` at the worst moment: the real binary is killed while it writes
//! (a dependency-cutout job, an ingest) and started again. Nothing
//! half-written may be served or kept: a job's half-filled `<id>.part/`
//! never becomes its result and is rebuilt from scratch; an interrupted
//! ingest leaves the catalogue as it was, and running it again completes it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::common;

use common::free_port;

/// One HTTP/1.1 exchange: status and body.
fn http(port: u16, method: &str, path: &str) -> Option<(u16, String)> {
    let (status, _, body) = common::http_exchange(port, method, path)?;
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

/// `wisecut serve` on `port`, waited for until it answers.
fn serve(db: &str, cache: &Path, port: u16) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_wisecut"))
        .args(["serve", "--db", db, "--data"])
        .arg(common::tiny_sample())
        .arg("--cache")
        .arg(cache)
        .args(["--bind", &format!("127.0.0.1:{port}")])
        // Every request is a queued job, and this test is one fast client.
        .args([
            "--inline-sources",
            "0",
            "--client-rate",
            "0",
            "--client-concurrency",
            "0",
        ])
        .args(["--client-jobs-per-minute", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while http(port, "GET", "/health").is_none() {
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the server did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

fn kill_9(mut child: Child) {
    // `Child::kill` is SIGKILL on Unix: no destructor, no graceful shutdown.
    child.kill().unwrap();
    child.wait().unwrap();
}

fn dir_has_files(dir: &Path) -> bool {
    walk(dir).next().is_some()
}

fn walk(dir: &Path) -> impl Iterator<Item = std::path::PathBuf> {
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.into_iter()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_during_a_job_never_serves_its_half_result_and_rebuilds_it() {
    let db = common::ingested(common::sqlite().await).await;
    let (slid, _, n) = common::biggest_source_list(&db.catalog).await;
    let cache = tempfile::tempdir().unwrap();
    let jobs = cache.path().join("jobs");
    let port = free_port();
    let server = serve(&db.url, cache.path(), port);
    // Heavy enough to be caught while it runs: every source, every class,
    // 150 px (within the default --job-mib).
    let (s, body) = http(
        port,
        "POST",
        &format!("/api/deps?slid={slid}&ids=1:{n}&size=150"),
    )
    .unwrap();
    assert_eq!(s, 202, "{body}");
    let id = json(&body)["id"].as_str().unwrap().to_owned();
    // The directories are named by the job's internal number.
    let number = super::jobs::job_number(&db, &id).await.0;
    let part = jobs.join(format!("{number}.part"));
    let result = jobs.join(number.to_string());
    let t = Instant::now();
    loop {
        let (_, body) = http(port, "GET", &format!("/api/jobs/{id}")).unwrap();
        let status = json(&body)["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_ne!(
            status, "done",
            "the job finished before it could be interrupted; make it heavier"
        );
        if status == "running" && dir_has_files(&part) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(120),
            "the job never started writing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    kill_9(server);
    assert!(
        dir_has_files(&part),
        "killed while writing: a half-filled part directory"
    );
    assert!(!result.exists(), "a half result was published");

    // The dead server's lease runs out (aged here instead of waited for:
    // lease timing has tests of its own), and a new server takes the job
    // over: the half-filled directory is not reused but rebuilt.
    let conn = common::raw_db(&db).await;
    let old = chrono::Utc::now() - chrono::Duration::minutes(5);
    common::sql(
        &conn,
        "UPDATE job SET heartbeat_at = $1 WHERE id = $2",
        vec![old.into(), number.into()],
    )
    .await;
    let port = free_port();
    let server = serve(&db.url, cache.path(), port);
    let t = Instant::now();
    let done = loop {
        let (_, body) = http(port, "GET", &format!("/api/jobs/{id}")).unwrap();
        let v = json(&body);
        match v["status"].as_str() {
            Some("done") => break v,
            Some("failed") => panic!("the job failed after the restart: {v:#}"),
            _ => {}
        }
        assert!(t.elapsed() < Duration::from_secs(300), "not rebuilt: {v:#}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(done["attempts"], 2, "{done:#}");
    assert!(!part.exists(), "the part directory was left behind");
    // Every file of the manifest is there with its size, and nothing else.
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.join("manifest.json")).unwrap()).unwrap();
    let listed: std::collections::BTreeMap<String, u64> = manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(listed.len() > n as usize, "{} files", listed.len());
    for (p, bytes) in &listed {
        let meta = std::fs::metadata(result.join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
        assert_eq!(meta.len(), *bytes, "{p}");
    }
    let on_disk: std::collections::BTreeSet<String> = walk(&result)
        .map(|p| {
            p.strip_prefix(&result)
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .filter(|p| p != "manifest.json" && p != "result.json")
        .collect();
    let listed_names: std::collections::BTreeSet<String> = listed.keys().cloned().collect();
    assert_eq!(on_disk, listed_names, "files outside the manifest");
    let (s, _) = http(port, "GET", &format!("/jobs/{id}/zip")).unwrap();
    assert_eq!(s, 200);
    kill_9(server);
}

/// Frames in a catalogue database.
async fn frames(url: &str) -> i64 {
    use sea_orm::{ConnectionTrait, Statement};
    let conn = sea_orm::Database::connect(url).await.unwrap();
    let backend = conn.get_database_backend();
    let stmt = Statement::from_string(backend, "SELECT COUNT(*) AS n FROM frame");
    match conn.query_one_raw(stmt).await {
        Ok(Some(row)) => row.try_get::<i64>("", "n").unwrap(),
        // Killed before the migrations created the table: nothing ingested.
        _ => 0,
    }
}

fn ingest(url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_wisecut"));
    c.arg("ingest")
        .arg(common::tiny_sample().join("manifest.json"))
        .args(["--db", url, "--data"])
        .arg(common::tiny_sample())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingest_killed_midway_leaves_nothing_and_can_be_run_again() {
    // How long a whole ingest takes, and what it gives.
    let reference = tempfile::tempdir().unwrap();
    let url = wisecut::config::Config::sqlite_url(&reference.path().join("ref.db"));
    let t = Instant::now();
    assert!(ingest(&url).status().unwrap().success());
    let whole = t.elapsed();
    let all = frames(&url).await;
    assert!(all > 100, "{all} frames");
    // Killed from a tenth to three quarters of the way: the tiny survey
    // commits early (bulk inserts) and spends the rest on ObsCore rows.
    let mut interrupted = 0;
    for fraction in [0.1, 0.2, 0.35, 0.5, 0.75] {
        let dir = tempfile::tempdir().unwrap();
        let url = wisecut::config::Config::sqlite_url(&dir.path().join("x.db"));
        let mut child = ingest(&url).spawn().unwrap();
        std::thread::sleep(whole.mul_f64(fraction));
        let finished = child.try_wait().unwrap().is_some();
        kill_9(child);
        let seen = frames(&url).await;
        eprintln!("killed at {fraction} of {whole:?}: finished {finished}, {seen} of {all} frames");
        assert!(
            seen == 0 || seen == all,
            "killed at {fraction}: {seen} of {all} frames — a partial ingest"
        );
        if finished {
            assert_eq!(seen, all, "finished at {fraction}");
            continue;
        }
        if seen == 0 {
            interrupted += 1;
            assert!(
                ingest(&url).status().unwrap().success(),
                "rerun at {fraction}"
            );
            assert_eq!(frames(&url).await, all, "rerun at {fraction}");
        }
    }
    assert!(
        interrupted > 0,
        "no kill landed before the ingest committed"
    );
}
