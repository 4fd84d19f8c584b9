//! Benchmark: cone searches on a large synthetic source catalogue on
//! PostgreSQL stay index-backed and fast (issue 16's speed goal: "stays
//! index-backed on 10 million sources").
//!
//! ```text
//! WISECUT_BENCH_PG=postgres://postgres@127.0.0.1:55433 \
//! WISECUT_BENCH_SOURCES=10000000 WISECUT_BENCH_CONES=300 \
//!   cargo bench --bench scs_cone
//! ```
//!
//! - `WISECUT_BENCH_PG` (required): a PostgreSQL server (no database name);
//!   the bench creates `wisecut_bench_scs_<N>` there and keeps it, so a
//!   second run skips the load (`WISECUT_BENCH_FRESH=1` reloads it).
//! - `WISECUT_BENCH_SOURCES` (default 10,000,000): sources, spread
//!   uniformly over a 10° × 10° patch around (150°, 2°) in 100 SourceLists
//!   of one square degree each (about 28 sources per arcmin² at 10 M).
//! - `WISECUT_BENCH_CONES` (default 200): random cones per radius.
//!
//! It bulk-loads with `COPY … FROM STDIN` (the hpx and magnitude indexes
//! are dropped for the load and rebuilt after it, as a bulk load should),
//! runs `ANALYZE`, then times `Catalog::cone_search` — the very call the
//! Simple Cone Search service makes — for cones of 10 arcsec and 1 arcmin
//! over every list and within one list, and prints p50, p95 and the worst
//! latency with the mean number of sources found; then the same cones
//! through the `/vo/scs` service (the router without a socket: parameters,
//! search, list lookups and the VOTable). Last it prints
//! `EXPLAIN (ANALYZE, BUFFERS)` of both steps of the search (the candidate
//! scan over the HEALPix ranges, and the fetch by primary key) and fails
//! if either plan reads the table sequentially.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use tower::ServiceExt;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, Value};
use wisecut::catalog::Catalog;
use wisecut::catalog::ingest::hpx_index;
use wisecut::catalog::sources::cone_candidates_sql;
use wisecut::config::Config;
use wisecut::ids::Slid;
use wisecut::web::{AppState, app};

/// Centre and half-width of the synthetic patch, degrees.
const RA0: f64 = 150.0;
const DEC0: f64 = 2.0;
const HALF: f64 = 5.0;
/// Lists: a 10 × 10 grid of one-degree tiles.
const GRID: i64 = 10;

#[tokio::main]
async fn main() {
    let Ok(server) = std::env::var("WISECUT_BENCH_PG") else {
        eprintln!(
            "scs_cone bench: set WISECUT_BENCH_PG=postgres://user@host:port (see the module doc)"
        );
        return;
    };
    let n: i64 = env_number("WISECUT_BENCH_SOURCES", 10_000_000);
    let cones: usize = env_number("WISECUT_BENCH_CONES", 200) as usize;
    let name = format!("wisecut_bench_scs_{n}");
    let admin = Database::connect(format!("{server}/postgres"))
        .await
        .expect("PostgreSQL reachable");
    let exists = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT 1 AS x FROM pg_database WHERE datname = '{name}'"),
        ))
        .await
        .unwrap()
        .is_some();
    let fresh = std::env::var("WISECUT_BENCH_FRESH").is_ok_and(|v| v == "1");
    if exists && fresh {
        admin
            .execute_unprepared(&format!("DROP DATABASE {name}"))
            .await
            .unwrap();
    }
    if !exists || fresh {
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
    }
    let url = format!("{server}/{name}");
    let catalog = Catalog::connect(&url).await.expect("catalogue");
    let db = Database::connect(&url).await.unwrap();
    let have = count(&db, "SELECT COUNT(*) AS n FROM source").await;
    if have != n {
        load(&db, n).await;
    } else {
        eprintln!("scs_cone bench: {name} already holds {n} sources");
    }

    let mut rng = ChaCha8Rng::seed_from_u64(16);
    println!(
        "scs_cone bench: {n} sources in {} lists, PostgreSQL",
        GRID * GRID
    );
    for (label, radius) in [("10 arcsec", 10.0 / 3600.0), ("1 arcmin", 60.0 / 3600.0)] {
        for one_list in [false, true] {
            let mut ms = Vec::with_capacity(cones);
            let mut found = 0usize;
            for _ in 0..cones {
                let ra = RA0 + rng.random_range(-HALF + 0.1..HALF - 0.1);
                let dec = DEC0 + rng.random_range(-HALF + 0.1..HALF - 0.1);
                let slid = one_list.then(|| Slid(tile_of(ra, dec)));
                let t = Instant::now();
                let hits = catalog
                    .cone_search(ra, dec, radius, slid, 10_000)
                    .await
                    .unwrap();
                ms.push(t.elapsed().as_secs_f64() * 1000.0);
                found += hits.len();
            }
            ms.sort_by(f64::total_cmp);
            let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
            println!(
                "  {label:>9} cone, {:<9}: p50 {:6.2} ms  p95 {:6.2} ms  max {:6.2} ms  ({:.1} sources per cone, {cones} cones)",
                if one_list { "one list" } else { "all lists" },
                at(0.5),
                at(0.95),
                ms[ms.len() - 1],
                found as f64 / cones as f64
            );
        }
    }

    // The same cones through the Simple Cone Search service (the router,
    // no socket): parameters, search, list lookups and the VOTable.
    let tmp = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        url.clone(),
        tmp.path().join("data"),
        tmp.path().join("cache"),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.limits.concurrency = 0;
    config.limits.rate_per_s = 0.0;
    let st = AppState::new(catalog.clone(), Arc::new(config)).unwrap();
    for (label, radius) in [("10 arcsec", 10.0 / 3600.0), ("1 arcmin", 60.0 / 3600.0)] {
        let mut ms = Vec::with_capacity(cones);
        for _ in 0..cones {
            let ra = RA0 + rng.random_range(-HALF + 0.1..HALF - 0.1);
            let dec = DEC0 + rng.random_range(-HALF + 0.1..HALF - 0.1);
            let uri = format!("/vo/scs?RA={ra}&DEC={dec}&SR={radius}");
            let t = Instant::now();
            let res = app(st.clone())
                .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            let status = res.status();
            let body = res.into_body().collect().await.unwrap().to_bytes();
            ms.push(t.elapsed().as_secs_f64() * 1000.0);
            assert!(
                status.is_success() && body.windows(12).any(|w| w == b"QUERY_STATUS"),
                "{uri}: {status}"
            );
        }
        ms.sort_by(f64::total_cmp);
        let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
        println!(
            "  {label:>9} cone through /vo/scs: p50 {:6.2} ms  p95 {:6.2} ms  max {:6.2} ms",
            at(0.5),
            at(0.95),
            ms[ms.len() - 1]
        );
    }

    // The plans of both steps, for a 1-arcmin cone in the middle.
    let (sql, values) =
        cone_candidates_sql(RA0 + 0.3, DEC0 + 0.3, 60.0 / 3600.0, None).expect("cells");
    let scan = explain(&db, &sql, values).await;
    println!("EXPLAIN candidate scan:\n{}", summarise(&scan));
    let fetch = explain(
        &db,
        "SELECT * FROM source WHERE slid = $1 AND sid IN ($2, $3, $4)",
        vec![
            tile_of(RA0 + 0.3, DEC0 + 0.3).into(),
            1i64.into(),
            2i64.into(),
            3i64.into(),
        ],
    )
    .await;
    println!("EXPLAIN fetch by key:\n{fetch}");
    for (what, plan) in [("candidate scan", &scan), ("fetch", &fetch)] {
        assert!(
            !plan.contains("Seq Scan") && plan.contains("Index"),
            "the {what} is not index-backed:\n{plan}"
        );
    }
}

/// A plan with its repeated `Bitmap Index Scan` nodes (one per HEALPix
/// range) shown once, followed by how many there are.
fn summarise(plan: &str) -> String {
    let mut out = Vec::new();
    let mut scans = 0;
    let mut skipping = false;
    for line in plan.lines() {
        let t = line.trim_start();
        if t.starts_with("->  Bitmap Index Scan") {
            scans += 1;
            skipping = scans > 1;
            if skipping {
                continue;
            }
        } else if skipping && (t.starts_with("Index Cond") || t.starts_with("Buffers")) {
            continue;
        } else {
            skipping = false;
        }
        // The Recheck condition repeats every range: its start is enough.
        if t.starts_with("Recheck Cond") && line.len() > 160 {
            out.push(format!("{}…", &line[..160]));
        } else {
            out.push(line.to_owned());
        }
    }
    out.push(format!(
        "  ({scans} Bitmap Index Scans in all, one per index range)"
    ));
    out.join("\n")
}

/// A whole number from the environment, or `default`.
fn env_number(name: &str, default: i64) -> i64 {
    std::env::var(name)
        .ok()
        .map(|v| v.replace('_', "").parse().expect(name))
        .unwrap_or(default)
}

/// The list (1-based tile of the grid) a position falls in.
fn tile_of(ra: f64, dec: f64) -> i64 {
    let i = ((ra - (RA0 - HALF)).floor() as i64).clamp(0, GRID - 1);
    let j = ((dec - (DEC0 - HALF)).floor() as i64).clamp(0, GRID - 1);
    1 + j * GRID + i
}

async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "n")
        .unwrap()
}

async fn explain(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> String {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("EXPLAIN (ANALYZE, BUFFERS) {sql}"),
            values,
        ))
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.try_get::<String>("", "QUERY PLAN").unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `n` synthetic sources in `GRID × GRID` lists, through `COPY`.
async fn load(db: &DatabaseConnection, n: i64) {
    use sea_orm::sqlx::postgres::PgPoolCopyExt;
    let t = Instant::now();
    for sql in [
        "DELETE FROM source",
        "DELETE FROM source_list WHERE object_id >= 900000000",
        "DELETE FROM process_target WHERE object_id >= 900000000",
        "DROP INDEX IF EXISTS ix_source_hpx",
        "DROP INDEX IF EXISTS ix_source_mag",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    let per_list = n / (GRID * GRID);
    for slid in 1..=GRID * GRID {
        let oid = 900_000_000 + slid;
        db.execute_unprepared(&format!(
            "INSERT INTO process_target (object_id, class_name, creation_date, is_valid, \
             quality_flags, process_status, creator, project, privileges) VALUES \
             ({oid}, 'SourceList', now(), 1, 0, 0, 'bench', 'bench', 1)"
        ))
        .await
        .unwrap();
        let size = per_list
            + if slid == GRID * GRID {
                n % (GRID * GRID)
            } else {
                0
            };
        db.execute_unprepared(&format!(
            "INSERT INTO source_list (object_id, slid, name, frame_id, filter, chip, n_sources) \
             VALUES ({oid}, {slid}, 'bench_{slid}', NULL, 'r', NULL, {size})"
        ))
        .await
        .unwrap();
    }
    let pool = db.get_postgres_connection_pool();
    let mut rng = ChaCha8Rng::seed_from_u64(10_000_000);
    let mut done = 0i64;
    for slid in 1..=GRID * GRID {
        let size = per_list
            + if slid == GRID * GRID {
                n % (GRID * GRID)
            } else {
                0
            };
        let (i, j) = ((slid - 1) % GRID, (slid - 1) / GRID);
        let (ra_lo, dec_lo) = (RA0 - HALF + i as f64, DEC0 - HALF + j as f64);
        let mut copy = pool
            .copy_in_raw(
                "COPY source (slid, sid, ra, dec, x, y, a, b, theta, mag_auto, magerr_auto, \
                 flux_auto, fwhm, class_star, flags, hpx) FROM STDIN",
            )
            .await
            .unwrap();
        let mut buf = String::with_capacity(8 << 20);
        for sid in 1..=size {
            let ra = ra_lo + rng.random::<f64>();
            // Uniform on the sphere within the tile's Dec band.
            let (s0, s1) = (dec_lo.to_radians().sin(), (dec_lo + 1.0).to_radians().sin());
            let dec = (s0 + (s1 - s0) * rng.random::<f64>()).asin().to_degrees();
            let mag = 16.0 + 8.0 * rng.random::<f64>();
            buf.push_str(&format!(
                "{slid}\t{sid}\t{ra}\t{dec}\t{:.2}\t{:.2}\t2.0\t1.5\t30.0\t{mag:.3}\t0.05\t1000.0\t3.0\t0.9\t0\t{}\n",
                (ra - ra_lo) * 4000.0,
                (dec - dec_lo) * 4000.0,
                hpx_index(ra, dec)
            ));
            if buf.len() > (8 << 20) - 512 {
                copy.send(buf.as_bytes()).await.unwrap();
                buf.clear();
            }
        }
        copy.send(buf.as_bytes()).await.unwrap();
        copy.finish().await.unwrap();
        done += size;
        eprintln!(
            "scs_cone bench: {done} / {n} sources loaded ({:.0} s)",
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!("scs_cone bench: rebuilding the indexes…");
    for sql in [
        "CREATE INDEX ix_source_hpx ON source (hpx)",
        "CREATE INDEX ix_source_mag ON source (mag_auto)",
        "ANALYZE",
    ] {
        db.execute_unprepared(sql).await.unwrap();
    }
    eprintln!(
        "scs_cone bench: loaded and indexed in {:.0} s",
        t.elapsed().as_secs_f64()
    );
}
