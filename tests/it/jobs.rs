//! Jobs: a large request is queued and made by the worker, jobs of a dead
//! process are rebuilt (or given up) and their half-written output removed,
//! retention removes old results but keeps their records, and two claimers
//! never get the same job.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::common::{self, TestDb};
use super::deps::bright_star;
use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use wisecut::catalog::Catalog;
use wisecut::catalog::job_records::{JobKind, JobRecord, JobStatus};
use wisecut::ids::JobId;
use wisecut::jobs::MAX_ATTEMPTS;
use wisecut::products::dependency_cutouts::DepParams;
use wisecut::web::AppState;

/// Polls `/api/jobs/{id}` until the job is done or failed (60 s at most),
/// returning its last JSON and every progress value seen.
async fn wait_for(st: &AppState, id: &str) -> (Json, Vec<f64>) {
    let t0 = Instant::now();
    let mut seen = Vec::new();
    loop {
        let v = common::fetch_json(st, &format!("/api/jobs/{id}")).await;
        seen.push(v["progress"].as_f64().unwrap());
        if v["status"] == "done" || v["status"] == "failed" {
            return (v, seen);
        }
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "job {id} not finished after 60 s: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// The internal number of the job whose public id is `public` (its
/// directory's name).
pub(crate) async fn job_number(db: &TestDb, public: &str) -> JobId {
    db.catalog.job_by_public_id(public).await.unwrap().id
}

/// Whether `id` looks like a public job id: 32 lower-case hex digits.
pub(crate) fn is_public_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Stored parameters of a small dependency request.
fn params(slid: i64, ids: &str) -> Json {
    serde_json::to_value(DepParams {
        slid: Some(slid),
        ids: ids.into(),
        classes: "raw,reduced".into(),
        size: Some(20.0),
        ..Default::default()
    })
    .unwrap()
}

/// Makes a running job look abandoned: heartbeat minutes ago, and
/// optionally a given number of attempts.
async fn age_heartbeat(db: &TestDb, id: JobId, attempts: Option<i32>) {
    let conn = common::raw_db(db).await;
    let old = chrono::Utc::now() - chrono::Duration::minutes(5);
    common::sql(
        &conn,
        "UPDATE job SET heartbeat_at = $1 WHERE id = $2",
        vec![old.into(), id.0.into()],
    )
    .await;
    if let Some(n) = attempts {
        common::sql(
            &conn,
            "UPDATE job SET attempts = $1 WHERE id = $2",
            vec![n.into(), id.0.into()],
        )
        .await;
    }
}

/// Names of the entries of a directory.
/// The entries of a jobs directory but its `.node-id` (which server made
/// the jobs in it: every jobs directory has one).
fn entries(dir: &std::path::Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".node-id")
        .collect()
}

#[tokio::test]
async fn a_large_request_is_queued_and_the_worker_makes_it() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| c.inline_sources = 2);
    let star = bright_star(&db).await;
    let (status, headers, body) = common::submit_full(
        &st,
        &format!(
            "/api/deps?slid={}&ids=1:5&classes=raw,reduced,regridded&size=24",
            star.slid
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "{}",
        String::from_utf8_lossy(&body)
    );
    let v: Json = serde_json::from_slice(&body).unwrap();
    let id = v["id"].as_str().unwrap().to_owned();
    assert!(is_public_id(&id), "{id}");
    let number = job_number(&db, &id).await;
    assert_eq!(v["status"], "queued");
    assert!(v["result"].is_null());
    let location = headers["location"].to_str().unwrap().to_owned();
    // Absolute, from the configured URL (no Host header here).
    assert_eq!(location, format!("{}/api/jobs/{id}", st.config.public_url));

    // Nothing runs it before a worker starts.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = common::fetch_json(&st, &location).await;
    assert_eq!(
        (v["status"].as_str(), v["progress"].as_f64()),
        (Some("queued"), Some(0.0))
    );
    assert!(!st.config.jobs_dir.join(number.to_string()).exists());

    let worker = st.services.jobs.start();
    let (v, seen) = wait_for(&st, &id).await;
    worker.abort();
    assert_eq!(v["status"], "done", "{v:#}");
    assert_eq!(v["progress"].as_f64(), Some(1.0));
    assert_eq!(v["attempts"], 1);
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]) && seen.iter().all(|p| (0.0..=1.0).contains(p)),
        "progress goes from 0 to 1: {seen:?}"
    );
    let rows = v["result"]["rows"].as_array().unwrap();
    let sids: Vec<i64> = rows.iter().map(|r| r["sid"].as_i64().unwrap()).collect();
    assert_eq!(sids, vec![1, 2, 3, 4, 5]);
    for r in rows {
        assert!(r["error"].is_null(), "{}", r["error"]);
        let cutouts: usize = r["cells"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_array().unwrap().len())
            .sum();
        assert!(cutouts >= 3, "SID {}: {cutouts} cutouts", r["sid"]);
    }
    assert_eq!(v["summary"]["rows"], 5);
    // Planning and making are timed apart (the survey-scale benchmark
    // reads the planning time).
    let plan_ms = v["summary"]["plan_ms"].as_f64().unwrap();
    let make_ms = v["summary"]["make_ms"].as_f64().unwrap();
    assert!(plan_ms > 0.0 && make_ms > 0.0, "{}", v["summary"]);
    let log = v["log"].as_str().unwrap();
    assert!(log.contains(" frame positions in "), "{log}");
    for line in ["queued", "started (attempt 1)", "done"] {
        assert!(log.contains(line), "{line:?} not in the log:\n{log}");
    }
    assert!(!st.config.jobs_dir.join(format!("{number}.part")).exists());
    // Its page shows it (who lists which jobs: tests/it/access_jobs.rs;
    // a job submitted without cookie or token is listed to nobody).
    let (status, _, body) = common::fetch(&st, &format!("/jobs/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains(&format!("/jobs/{id}/zip")));
}

#[tokio::test]
async fn jobs_of_a_dead_server_are_rebuilt_once_or_given_up() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let catalog = &db.catalog;
    let star = bright_star(&db).await;
    let dir = st.config.jobs_dir.clone();
    // A job its (dead) server had started, with a half-written output.
    let dead = catalog
        .create_job(
            JobKind::DependencyCutouts,
            "interrupted",
            &params(star.slid, "1:3"),
            Some("dead-owner"),
        )
        .await
        .unwrap();
    assert_eq!((dead.status, dead.attempts), (JobStatus::Running, 1));
    // One interrupted as often as allowed.
    let spent = catalog
        .create_job(
            JobKind::DependencyCutouts,
            "spent",
            &params(star.slid, "4"),
            Some("dead-owner-2"),
        )
        .await
        .unwrap();
    // One whose server is alive.
    let alive = catalog
        .create_job(
            JobKind::DependencyCutouts,
            "alive",
            &params(star.slid, "5"),
            Some("live-owner"),
        )
        .await
        .unwrap();
    age_heartbeat(&db, dead.id, None).await;
    age_heartbeat(&db, spent.id, Some(MAX_ATTEMPTS)).await;
    for j in [&dead, &spent, &alive] {
        let part = dir.join(format!("{}.part", j.id));
        std::fs::create_dir_all(&part).unwrap();
        std::fs::write(part.join("junk.fits"), b"half written").unwrap();
    }

    st.services.jobs.recover().await.unwrap();
    let d = catalog.job(dead.id).await.unwrap();
    assert_eq!(d.status, JobStatus::Queued, "{d:?}");
    assert_eq!(d.owner, None);
    assert!(d.log.contains("interrupted"), "{}", d.log);
    let s = catalog.job(spent.id).await.unwrap();
    assert_eq!(s.status, JobStatus::Failed, "{s:?}");
    assert!(
        s.error
            .as_deref()
            .unwrap_or_default()
            .contains("interrupted"),
        "{:?}",
        s.error
    );
    assert!(s.log.contains("failed"), "{}", s.log);
    let a = catalog.job(alive.id).await.unwrap();
    assert_eq!(
        (a.status, a.owner.as_deref()),
        (JobStatus::Running, Some("live-owner"))
    );
    assert!(
        !dir.join(format!("{}.part", dead.id)).exists(),
        "junk of the requeued job"
    );
    assert!(
        !dir.join(format!("{}.part", spent.id)).exists(),
        "junk of the failed job"
    );
    assert!(
        dir.join(format!("{}.part", alive.id)).exists(),
        "a live job's work stays"
    );

    let worker = st.services.jobs.start();
    let (v, _) = wait_for(&st, &dead.public_id).await;
    assert_eq!(v["status"], "done", "{v:#}");
    assert_eq!(v["attempts"], 2);
    // Nothing runs it again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    worker.abort();
    let d = catalog.job(dead.id).await.unwrap();
    assert_eq!((d.status, d.attempts), (JobStatus::Done, 2));
    assert!(d.log.contains("started (attempt 2)"), "{}", d.log);
    assert_eq!(d.log.matches(": done").count(), 1, "{}", d.log);
    assert_eq!(
        entries(&dir),
        BTreeSet::from([dead.id.to_string(), format!("{}.part", alive.id)]),
        "one result directory, no junk"
    );
    let result = dir.join(dead.id.to_string());
    assert!(!result.join("junk.fits").exists());
    assert!(result.join("manifest.json").is_file());
    let v = common::fetch_json(&st, &format!("/api/jobs/{}", dead.public_id)).await;
    assert_eq!(v["result"]["rows"].as_array().unwrap().len(), 3);
    let a = catalog.job(alive.id).await.unwrap();
    assert_eq!(a.status, JobStatus::Running, "the live job is left alone");
}

/// Sleeps long enough for `now` to move past every stored timestamp.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn a_lapsed_lease_requeues_until_the_attempts_run_out_on_every_backend() {
    let zero = chrono::Duration::zero();
    let lease = chrono::Duration::seconds(30);
    for db in common::all_backends().await {
        let be = db.backend;
        let c = &db.catalog;
        let job = c
            .create_job(JobKind::DependencyCutouts, "t", &params(1, "1"), Some("w0"))
            .await
            .unwrap();
        // Another job, requeued alongside by the zero lease.
        c.create_job(
            JobKind::DependencyCutouts,
            "other",
            &params(1, "2"),
            Some("w9"),
        )
        .await
        .unwrap();
        let mut owner = "w0".to_owned();
        for attempt in 1..MAX_ATTEMPTS {
            tick().await;
            // A fresh heartbeat is respected.
            let r = c.recover_jobs(lease, MAX_ATTEMPTS).await.unwrap();
            assert!(r.requeued.is_empty() && r.failed.is_empty(), "{be}: {r:?}");
            let r = c.recover_jobs(zero, MAX_ATTEMPTS).await.unwrap();
            assert!(
                r.requeued.contains(&job.id),
                "{be} attempt {attempt}: {r:?}"
            );
            assert!(!r.failed.contains(&job.id));
            let j = c.job(job.id).await.unwrap();
            assert_eq!(
                (j.status, j.owner.as_deref()),
                (JobStatus::Queued, None),
                "{be}"
            );
            // The previous owner can no longer write.
            assert!(!c.job_progress(job.id, &owner, 0.5).await.unwrap(), "{be}");
            owner = format!("w{attempt}");
            let claimed: JobRecord = loop {
                // The other job was requeued too; claims go in id order.
                let j = c.claim_job(&owner).await.unwrap().expect("a queued job");
                if j.id == job.id {
                    break j;
                }
            };
            assert_eq!(claimed.attempts, attempt + 1, "{be}");
            assert!(
                !c.finish_job(job.id, "w0", &json!({}), 1).await.unwrap(),
                "{be}: a stale owner cannot finish it"
            );
            assert!(c.job_progress(job.id, &owner, 0.25).await.unwrap(), "{be}");
        }
        tick().await;
        let r = c.recover_jobs(zero, MAX_ATTEMPTS).await.unwrap();
        assert!(r.failed.contains(&job.id), "{be}: {r:?}");
        let j = c.job(job.id).await.unwrap();
        assert_eq!(j.status, JobStatus::Failed, "{be}");
        assert!(j.error.unwrap().contains("interrupted"), "{be}");
        assert_eq!(
            j.log.matches("interrupted").count(),
            MAX_ATTEMPTS as usize,
            "{be}: {}",
            j.log
        );
    }
}

#[tokio::test]
async fn retention_expires_the_older_result_and_keeps_its_record() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| c.jobs_bytes = 1);
    let star = bright_star(&db).await;
    let q = |ids: &str| {
        format!(
            "/api/deps?slid={}&ids={ids}&classes=raw,reduced&size=16",
            star.slid
        )
    };
    let first = common::submit_json(&st, &q("1")).await;
    let a = first["id"].as_str().unwrap().to_owned();
    assert_eq!(first["status"], "done", "{first:#}");
    let second = common::submit_json(&st, &q("2")).await;
    let b = second["id"].as_str().unwrap().to_owned();
    assert_eq!(second["status"], "done");
    assert!(job_number(&db, &a).await < job_number(&db, &b).await);

    let old = db.catalog.job_by_public_id(&a).await.unwrap();
    assert_eq!(
        (old.status, old.expired),
        (JobStatus::Done, true),
        "{old:?}"
    );
    assert!(old.bytes > 1, "the record keeps the size it had");
    assert!(old.log.contains("retention"), "{}", old.log);
    assert!(!st.config.jobs_dir.join(old.id.to_string()).exists());
    let (status, _, body) = common::fetch(&st, &format!("/jobs/{a}/zip")).await;
    assert_eq!(
        status,
        StatusCode::GONE,
        "{}",
        String::from_utf8_lossy(&body)
    );
    // Its files are gone (410), as its ZIP.
    let (status, _, _) = common::fetch(&st, &format!("/jobs/{a}/files/manifest.json")).await;
    assert_eq!(status, StatusCode::GONE);
    let v = common::fetch_json(&st, &format!("/api/jobs/{a}")).await;
    assert_eq!(v["expired"], true);
    assert!(v["zip"].is_null() && v["result"].is_null());

    // The newest result stays, though alone it exceeds the bound.
    let new = db.catalog.job_by_public_id(&b).await.unwrap();
    assert!(!new.expired, "{new:?}");
    assert!(second["result"]["rows"].is_array(), "{second:#}");
    let (status, _, _) = common::fetch(&st, &format!("/jobs/{b}/zip")).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_claims_never_get_the_same_job() {
    const N: usize = 40;
    for db in common::all_backends().await {
        let be = db.backend;
        let mut ids = BTreeSet::new();
        for i in 0..N {
            let j = db
                .catalog
                .create_job(
                    JobKind::DependencyCutouts,
                    &format!("j{i}"),
                    &params(1, "1"),
                    None,
                )
                .await
                .unwrap();
            ids.insert(j.id);
        }
        // Two servers: two connection pools, claiming as fast as they can.
        let mut tasks = Vec::new();
        for k in 0..4 {
            let catalog = Catalog::connect(&db.url).await.unwrap();
            tasks.push(tokio::spawn(async move {
                let owner = format!("owner-{k}");
                let mut got = Vec::new();
                loop {
                    match catalog.claim_job(&owner).await.unwrap() {
                        Some(j) => got.push(j),
                        None => {
                            let (left, _) = catalog
                                .jobs(None, Some(JobStatus::Queued), 0, 1)
                                .await
                                .unwrap();
                            if left == 0 {
                                break;
                            }
                            tokio::task::yield_now().await;
                        }
                    }
                }
                (owner, got)
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            let (owner, got) = t.await.unwrap();
            for j in &got {
                assert_eq!(j.owner.as_deref(), Some(owner.as_str()), "{be}");
                assert_eq!((j.status, j.attempts), (JobStatus::Running, 1), "{be}");
            }
            all.extend(got.into_iter().map(|j| (j.id, owner.clone())));
        }
        let claimed: BTreeSet<JobId> = all.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            claimed.len(),
            all.len(),
            "{be}: a job was claimed twice: {all:?}"
        );
        assert_eq!(claimed, ids, "{be}: every job claimed");
        for (id, owner) in &all {
            let j = db.catalog.job(*id).await.unwrap();
            assert_eq!(j.owner.as_deref(), Some(owner.as_str()), "{be}: job {id}");
        }
    }
}

#[tokio::test]
async fn an_inline_request_abandoned_by_its_client_is_recovered_and_finished() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let catalog = db.catalog.clone();
    let star = bright_star(&db).await;
    // Heavy enough to be caught while it runs: 24 sources, ten classes.
    let uri = format!("/api/deps?slid={}&ids=1:24&size=400", star.slid);
    let client = {
        let st = st.clone();
        tokio::spawn(async move { common::submit(&st, &uri).await })
    };
    let t0 = Instant::now();
    let job = loop {
        let (_, jobs) = catalog.jobs(None, None, 0, 1).await.unwrap();
        if let Some(j) = jobs.into_iter().next() {
            break j;
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "no job");
        tokio::time::sleep(Duration::from_millis(2)).await;
    };
    // The client goes away (the server drops the request's future).
    client.abort();
    assert!(client.await.unwrap_err().is_cancelled());
    let j = catalog.job(job.id).await.unwrap();
    assert_eq!(j.status, JobStatus::Running, "caught while running: {j:?}");
    // Its owner no longer works on it, so its lease must run out.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let h1 = catalog.job(job.id).await.unwrap().heartbeat_at;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let h2 = catalog.job(job.id).await.unwrap().heartbeat_at;
    assert_eq!(h1, h2, "an abandoned job's heartbeat stops");
    // Once the lease has run out, the worker rebuilds it.
    let r = catalog
        .recover_jobs(chrono::Duration::milliseconds(500), MAX_ATTEMPTS)
        .await
        .unwrap();
    assert_eq!(r.requeued, vec![job.id]);
    let worker = st.services.jobs.start();
    let (v, _) = wait_for(&st, &job.public_id).await;
    worker.abort();
    assert_eq!(
        (v["status"].as_str(), v["attempts"].as_i64()),
        (Some("done"), Some(2)),
        "{v:#}"
    );
    assert_eq!(v["result"]["rows"].as_array().unwrap().len(), 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_zip_downloads_get_the_same_valid_archive() {
    let db = common::ingested(common::sqlite().await).await;
    let st = super::web::state(&db);
    let star = bright_star(&db).await;
    let v = common::submit_json(
        &st,
        &format!("/api/deps?slid={}&ids=1:12&size=48", star.slid),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_owned();
    let n_files = v["result"]["files"].as_u64().unwrap() as usize;
    // Several downloads of a ZIP not made yet, at the same time.
    let downloads: Vec<_> = (0..6)
        .map(|_| {
            let (st, id) = (st.clone(), id.clone());
            tokio::spawn(async move { common::fetch(&st, &format!("/jobs/{id}/zip")).await })
        })
        .collect();
    let mut listings = Vec::new();
    for d in downloads {
        let (status, _, body) = d.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(body))
            .unwrap_or_else(|e| panic!("a broken ZIP: {e}"));
        assert_eq!(zip.len(), n_files + 1, "every file and the manifest");
        let mut listing = Vec::new();
        for i in 0..zip.len() {
            let mut e = zip.by_index(i).unwrap();
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut bytes).unwrap();
            assert_eq!(bytes.len() as u64, e.size());
            listing.push((e.name().unwrap().to_string(), bytes));
        }
        listings.push(listing);
    }
    assert!(
        listings.windows(2).all(|w| w[0] == w[1]),
        "the same files in every ZIP"
    );
    // No temporary file is left beside the results.
    let left: Vec<String> = entries(&st.config.jobs_dir)
        .into_iter()
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
