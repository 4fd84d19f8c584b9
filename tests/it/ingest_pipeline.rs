//! A real pipeline's products ingested with no manifest: the tiny survey's
//! raw exposures reduced by ccdproc, catalogued by SExtractor, calibrated
//! by SCAMP, resampled and coadded by SWarp (`tests/peer/
//! astromatic_pipeline.py`, which records the lineage it followed in
//! `truth.json`). `wisecut ingest DIR` must find exactly that lineage, every
//! edge both ways, from headers, SWarp's XML and SExtractor's LDAC_IMHEAD,
//! and a SExtractor source's dependency cutouts must reach its raw frame,
//! bias and flat.

use crate::common;
use serde_json::Value as Json;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use wisecut::catalog::ingest::batch::PathIngest;

/// The pipeline's output directory, made once per test run.
fn pipeline_output() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let py = common::peer_python("Astromatic + ccdproc pipeline")?;
        let out = tempfile::Builder::new()
            .prefix("wisecut-pipeline-")
            .tempdir()
            .unwrap()
            .keep()
            .join("night");
        common::run_peer(
            &py,
            "astromatic_pipeline.py",
            &[
                common::tiny_sample().join("raw").as_os_str(),
                out.as_os_str(),
            ],
        );
        Some(out)
    })
    .as_deref()
}

fn truth(out: &Path) -> Json {
    serde_json::from_slice(&std::fs::read(out.join("truth.json")).unwrap()).unwrap()
}

/// Every stored product of root `night` by its path in the directory:
/// (object id, class).
async fn products(db: &common::TestDb) -> BTreeMap<String, (i64, String)> {
    let conn = common::raw_db(db).await;
    let mut out = BTreeMap::new();
    for r in common::sql(
        &conn,
        "SELECT f.object_id, f.frame_class, f.path FROM frame f WHERE f.store = 'night' \
         UNION ALL SELECT l.object_id, 'SourceList', l.path FROM source_list l WHERE l.store = 'night'",
        vec![],
    )
    .await
    {
        let id: i64 = r.try_get("", "object_id").unwrap();
        let class: String = r.try_get("", "frame_class").unwrap();
        let path: String = r.try_get("", "path").unwrap();
        assert!(out.insert(path.clone(), (id, class)).is_none(), "{path} twice");
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_pipelines_directory_ingests_with_the_lineage_its_tools_followed() {
    let Some(out) = pipeline_output() else { return };
    let truth = truth(out);
    let want_classes: BTreeMap<String, String> = truth["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    let want_edges: BTreeSet<(String, String, String)> = truth["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let s = |k: &str| e[k].as_str().unwrap().to_owned();
            (s("child"), s("parent"), s("role"))
        })
        .collect();
    assert!(
        want_edges.len() >= 15,
        "the pipeline recorded {} edges",
        want_edges.len()
    );
    for db in common::all_backends().await {
        let be = db.backend;
        let data = tempfile::tempdir().unwrap();
        let req = PathIngest {
            paths: vec![out.to_path_buf()],
            roots: vec![("night".into(), out.to_path_buf())],
            ..Default::default()
        };
        // The plan first: everything resolved, nothing written.
        let plan = db.catalog.plan_paths(&req).await.unwrap();
        assert!(
            plan.errors.is_empty() && plan.unresolved.is_empty(),
            "{be}:\n{}",
            plan.explain()
        );
        assert_eq!(
            plan.items.len(),
            want_classes.len(),
            "{be}:\n{}",
            plan.explain()
        );
        assert!(products(&db).await.is_empty(), "{be}: planning wrote");

        let outcome = db.catalog.ingest_paths(&req, data.path()).await.unwrap();
        assert!(outcome.failures.is_empty(), "{be}: {:?}", outcome.failures);
        let got = products(&db).await;
        let got_classes: BTreeMap<String, String> = got
            .iter()
            .map(|(p, (_, c))| (p.clone(), c.clone()))
            .collect();
        assert_eq!(got_classes, want_classes, "{be}: classes");

        // Every stored edge among them is one the tools followed, and every
        // edge they followed is stored.
        let by_id: BTreeMap<i64, String> =
            got.iter().map(|(p, (id, _))| (*id, p.clone())).collect();
        let conn = common::raw_db(&db).await;
        let mut got_edges = BTreeSet::new();
        for r in common::sql(
            &conn,
            "SELECT child_id, parent_id, role FROM dependency",
            vec![],
        )
        .await
        {
            let c: i64 = r.try_get("", "child_id").unwrap();
            let p: i64 = r.try_get("", "parent_id").unwrap();
            let role: String = r.try_get("", "role").unwrap();
            got_edges.insert((by_id[&c].clone(), by_id[&p].clone(), role));
        }
        let missing: Vec<_> = want_edges.difference(&got_edges).collect();
        let extra: Vec<_> = got_edges.difference(&want_edges).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{be}: missing {missing:?}, extra {extra:?}"
        );

        // The catalogs hold SExtractor's rows.
        for (path, (id, class)) in &got {
            if class != "SourceList" {
                continue;
            }
            let rows = wisecut::imaging::fits::table_rows(&out.join(path), 2).unwrap();
            let n = common::sql(
                &conn,
                "SELECT n_sources FROM source_list WHERE object_id = $1",
                vec![(*id).into()],
            )
            .await[0]
                .try_get::<i64>("", "n_sources")
                .unwrap();
            assert_eq!(n as usize, rows, "{be}: {path}");
            assert!(rows > 3, "{be}: {path} has {rows} sources");
        }

        // Ingesting the directory again changes nothing.
        let again = db.catalog.ingest_paths(&req, data.path()).await.unwrap();
        assert_eq!(
            (again.report.frames, again.report.slids.len()),
            (0, 0),
            "{be}"
        );
        assert_eq!(again.plan.unchanged.len(), want_classes.len(), "{be}");
        assert_eq!(
            products(&db).await,
            got,
            "{be}: a second ingest changed the catalogue"
        );

        // A SExtractor source of a reduced frame: its dependency cutouts
        // reach the raw exposure, the bias and the flat.
        let (reduced_cat, _) = got
            .iter()
            .find(|(p, (_, c))| c == "SourceList" && p.contains("_red"))
            .expect("a reduced frame's catalog");
        let slid: i64 = common::sql(
            &conn,
            "SELECT slid FROM source_list WHERE path = $1",
            vec![reduced_cat.clone().into()],
        )
        .await[0]
            .try_get("", "slid")
            .unwrap();
        let sid: i64 = common::sql(
            &conn,
            "SELECT sid FROM source WHERE slid = $1 AND flags = 0 ORDER BY mag_auto LIMIT 1",
            vec![slid.into()],
        )
        .await[0]
            .try_get("", "sid")
            .unwrap();
        let st = super::web::state(&db);
        let v = common::submit_json(
            &st,
            &format!("/api/deps?slid={slid}&ids={sid}&classes=raw,bias,flat,reduced&size=20"),
        )
        .await;
        assert_eq!(v["status"], "done", "{be}: {v:#}");
        let result = &v["result"];
        let classes: Vec<&str> = result["classes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap())
            .collect();
        let cells = result["rows"][0]["cells"].as_array().unwrap();
        for want in [
            "RawScienceFrame",
            "BiasFrame",
            "MasterFlatFrame",
            "ReducedScienceFrame",
        ] {
            let k = classes
                .iter()
                .position(|c| *c == want)
                .unwrap_or_else(|| panic!("{be}: no {want} column in {classes:?}"));
            let cell = cells[k].as_array().unwrap();
            assert_eq!(cell.len(), 1, "{be}: {want}: {cell:?}");
            assert!(cell[0]["error"].is_null(), "{be}: {want}: {:#}", cell[0]);
            let file = cell[0]["filename"].as_str().unwrap_or_default();
            assert!(
                want_classes
                    .iter()
                    .any(|(p, c)| c == want && p.ends_with(file)),
                "{be}: the {want} cutout is of {file:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn explain_lists_a_missing_flat_and_writes_nothing() {
    let Some(out) = pipeline_output() else { return };
    // The reduced frames without their calibration: FLATCOR and ZEROCOR
    // name files that are neither in the batch nor in the catalogue.
    let db = common::sqlite().await;
    let req = PathIngest {
        paths: vec![out.join("red"), out.join("raw")],
        roots: vec![("night".into(), out.to_path_buf())],
        ..Default::default()
    };
    let plan = db.catalog.plan_paths(&req).await.unwrap();
    let text = plan.explain();
    assert!(plan.errors.is_empty(), "{text}");
    let unresolved: Vec<String> = plan.unresolved.iter().map(|e| e.to_string()).collect();
    assert_eq!(unresolved.len(), 4, "{text}");
    assert!(
        unresolved
            .iter()
            .any(|u| u.contains("FLATCOR = 'masterflat_g_")),
        "{unresolved:?}"
    );
    assert!(text.contains("[same_exposure:"), "{text}");
    let err = db
        .catalog
        .ingest_paths(&req, Path::new("/tmp"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nothing was ingested") && err.contains("FLATCOR"),
        "{err}"
    );
    assert!(products(&db).await.is_empty(), "a refused batch wrote");
    // With --keep-going the raw frames go in and the reduced ones are listed.
    let keep = PathIngest {
        keep_going: true,
        ..req
    };
    let outcome = db
        .catalog
        .ingest_paths(&keep, Path::new("/tmp"))
        .await
        .unwrap();
    let got = products(&db).await;
    assert!(
        got.values()
            .all(|(_, c)| c == "RawScienceFrame" || c == "RawBiasFrame" || c == "RawDomeFlatFrame"),
        "{got:?}"
    );
    assert_eq!(outcome.failures.len(), 4, "{:?}", outcome.failures);
}
