//! The command line as a user meets it.

use super::common;
use std::process::Command;

fn wisecut() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wisecut"))
}

#[test]
fn lineage_of_a_missing_object_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let db = wisecut::config::Config::sqlite_url(&dir.path().join("x.db"));
    let out = wisecut()
        .args(["lineage", "999999", "--db", &db, "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("object 999999 does not exist"), "{err}");
}

#[tokio::test]
async fn lineage_prints_the_tree_of_an_ingested_object() {
    let db = common::ingested(common::sqlite().await).await;
    let coadd = db
        .catalog
        .frames_of_class(wisecut::model::FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap()[0]
        .target
        .object_id;
    let out = wisecut()
        .args([
            "lineage",
            &coadd.to_string(),
            "--depth",
            "2",
            "--db",
            &db.url,
            "--data",
        ])
        .arg(common::tiny_sample())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        tree.starts_with("[level: 0] CoaddedRegriddedFrame"),
        "{tree}"
    );
    assert!(
        tree.contains("+regridded [level: 1] RegriddedFrame"),
        "{tree}"
    );
    assert!(
        tree.contains("+reduced [level: 2] ReducedScienceFrame"),
        "{tree}"
    );
    assert!(!tree.contains("[level: 3]"), "depth limit ignored:\n{tree}");
}

#[test]
fn ingest_of_a_missing_manifest_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = wisecut::config::Config::sqlite_url(&dir.path().join("x.db"));
    let out = wisecut()
        .args([
            "ingest",
            "/nonexistent/manifest.json",
            "--db",
            &db,
            "--data",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/manifest.json"));
}

#[test]
fn a_manifest_alone_refuses_the_file_walking_options_it_would_ignore() {
    let dir = tempfile::tempdir().unwrap();
    let db = wisecut::config::Config::sqlite_url(&dir.path().join("x.db"));
    let manifest = common::tiny_sample().join("manifest.json");
    let out = wisecut()
        .arg("ingest")
        .arg(&manifest)
        .args(["--root", "far=/tmp", "--copy", "--db", &db, "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--root, --copy: not used with a lineage manifest given alone")
            && err.contains("--manifest"),
        "{err}"
    );
}
