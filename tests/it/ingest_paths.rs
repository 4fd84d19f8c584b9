//! `wisecut ingest PATH…` on hand-made directories: versions, data roots and
//! copies, manifest overrides, and bad input (not FITS, truncated, a WCS
//! that does not parse, a reference with two candidates, a cycle), each a
//! per-file error with nothing written, or with `--keep-going` the rest
//! ingested and the failures listed.

use crate::common;
use std::path::{Path, PathBuf};
use wisecut::catalog::ingest::batch::PathIngest;
use wisecut::imaging::fits::{self, Card, Compression, PixelData};
use wisecut::imaging::raster::Raster;

fn write(path: &Path, cards: Vec<Card>, level: f32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // A pipeline run again overwrites its products.
    let _ = std::fs::remove_file(path);
    let mut img = Raster::<f32>::filled(32, 24, 0.0);
    for (i, v) in img.data.iter_mut().enumerate() {
        *v = level + (i % 7) as f32;
    }
    fits::write_image(path, PixelData::F32(&img), &cards, &Compression::None).unwrap();
}

fn bias(i: usize) -> Vec<Card> {
    vec![
        Card::new("IMAGETYP", "zero", ""),
        Card::new("CHIPID", "ccd1", ""),
        Card::new("EXPTIME", i as f64 * 0.0, ""),
    ]
}

/// A night: three raw biases and a master bias combining them.
fn night(dir: &Path, level: f32) {
    let mut master = vec![
        Card::new("IMAGETYP", "zero", ""),
        Card::new("NCOMBINE", 3i64, ""),
        Card::new("CHIPID", "ccd1", ""),
    ];
    for i in 1..=3 {
        write(
            &dir.join(format!("raw/b{i}.fits")),
            bias(i),
            100.0 + i as f32,
        );
        master.push(Card::new(
            format!("IMCMB{i:03}"),
            format!("b{i}.fits").as_str(),
            "",
        ));
    }
    write(&dir.join("cal/masterbias.fits"), master, level);
}

async fn frames(db: &common::TestDb) -> Vec<(i64, String, String, String, Option<i64>)> {
    let conn = common::raw_db(db).await;
    common::sql(
        &conn,
        "SELECT f.object_id, f.filename, f.store, f.path, t.superseded_by FROM frame f \
         JOIN process_target t ON t.object_id = f.object_id ORDER BY f.object_id",
        vec![],
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r.try_get("", "object_id").unwrap(),
            r.try_get("", "filename").unwrap(),
            r.try_get("", "store").unwrap(),
            r.try_get("", "path").unwrap(),
            r.try_get("", "superseded_by").unwrap(),
        )
    })
    .collect()
}

fn req(paths: Vec<PathBuf>) -> PathIngest {
    PathIngest {
        paths,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_file_is_a_new_version_and_the_old_one_is_kept() {
    for db in common::all_backends().await {
        let be = db.backend;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("n1");
        night(&dir, 5.0);
        let r = PathIngest {
            roots: vec![("n1".into(), dir.clone())],
            ..req(vec![dir.clone()])
        };
        let first = db.catalog.ingest_paths(&r, tmp.path()).await.unwrap();
        assert_eq!(first.report.frames, 4, "{be}");
        // The pipeline re-made the master bias: same place, new pixels.
        night(&dir, 6.0);
        let second = db.catalog.ingest_paths(&r, tmp.path()).await.unwrap();
        assert_eq!(second.report.frames, 1, "{be}: only the master is new");
        assert_eq!(second.plan.unchanged.len(), 3, "{be}");
        assert_eq!(second.report.superseded.len(), 1, "{be}");
        let rows = frames(&db).await;
        let masters: Vec<_> = rows
            .iter()
            .filter(|r| r.3 == "cal/masterbias.fits")
            .collect();
        assert_eq!(masters.len(), 2, "{be}: both versions kept: {rows:?}");
        let (old, new) = (masters[0], masters[1]);
        assert_eq!(
            old.4,
            Some(new.0),
            "{be}: the old version points at the new"
        );
        assert_eq!(new.4, None, "{be}");
        assert_eq!(
            new.1, "masterbias.fits",
            "{be}: the newest answers to the name"
        );
        assert_eq!(old.1, format!("masterbias.fits;{}", old.0), "{be}");
        // The name resolves to the newest valid version.
        let f = db
            .catalog
            .frame_by_filename("masterbias.fits")
            .await
            .unwrap();
        assert_eq!(f.target.object_id.0, new.0, "{be}");
        assert_eq!(f.target.superseded_by, None, "{be}");
        // Both have their lineage.
        let conn = common::raw_db(&db).await;
        for id in [old.0, new.0] {
            let n = common::sql(
                &conn,
                "SELECT COUNT(*) AS n FROM dependency WHERE child_id = $1",
                vec![id.into()],
            )
            .await[0]
                .try_get::<i64>("", "n")
                .unwrap();
            assert_eq!(n, 3, "{be}: version #{id} has its three raw biases");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn files_outside_every_root_are_refused_unless_named_or_copied() {
    let db = common::sqlite().await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let dir = tmp.path().join("elsewhere");
    night(&dir, 5.0);
    let err = db
        .catalog
        .ingest_paths(&req(vec![dir.clone()]), &store)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("outside every data root") && err.contains("--allow-outside"),
        "{err}"
    );
    assert!(frames(&db).await.is_empty());
    // Copied into the store: recorded in the `local` store, files there.
    let copied = PathIngest {
        copy: true,
        ..req(vec![dir.join("raw")])
    };
    let out = db.catalog.ingest_paths(&copied, &store).await.unwrap();
    assert_eq!(out.report.frames, 3);
    for (_, _, st, path, _) in frames(&db).await {
        assert_eq!(st, "local");
        assert!(store.join(&path).is_file(), "{path} not in the store");
    }
    // Named: the batch's own directory becomes root `elsewhere`; the raw
    // biases are already in (same checksums), the master is added under
    // the root, and a frame of the root opens through it.
    let named = PathIngest {
        allow_outside: Some("elsewhere".into()),
        ..req(vec![dir.clone()])
    };
    let out = db.catalog.ingest_paths(&named, &store).await.unwrap();
    assert_eq!((out.report.frames, out.plan.unchanged.len()), (1, 3));
    let f = db
        .catalog
        .frame_by_filename("masterbias.fits")
        .await
        .unwrap();
    assert_eq!(
        (f.store.as_str(), f.path.as_str()),
        ("elsewhere", "cal/masterbias.fits")
    );
    assert_eq!(
        f.file_path(&store),
        dir.canonicalize().unwrap().join("cal/masterbias.fits")
    );
    assert_eq!(
        db.catalog.data_roots()["elsewhere"],
        dir.canonicalize().unwrap()
    );
    // A root name cannot be moved silently.
    let other = tmp.path().join("store");
    let err = db
        .catalog
        .register_root("elsewhere", &other)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("already"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_are_named_and_nothing_is_written_unless_keep_going() {
    for db in common::all_backends().await {
        let be = db.backend;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("n");
        night(&dir, 5.0);
        // Not FITS, truncated, a WCS that does not parse.
        std::fs::write(dir.join("raw/notes.fits"), "this is not FITS").unwrap();
        let good = dir.join("raw/b1.fits");
        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(dir.join("raw/cut.fits"), &bytes[..bytes.len() - 2880]).unwrap();
        let mut badwcs = bias(9);
        badwcs.extend([
            Card::new("CTYPE1", "RA---XYZ", ""),
            Card::new("CTYPE2", "DEC--XYZ", ""),
            Card::new("CRVAL1", 10.0, ""),
            Card::new("CRVAL2", 10.0, ""),
        ]);
        write(&dir.join("raw/badwcs.fits"), badwcs, 1.0);
        let r = PathIngest {
            roots: vec![("n".into(), dir.clone())],
            ..req(vec![dir.clone()])
        };
        let err = db
            .catalog
            .ingest_paths(&r, tmp.path())
            .await
            .unwrap_err()
            .to_string();
        for (file, what) in [
            ("notes.fits", "not a FITS file"),
            ("cut.fits", "incomplete"),
            ("badwcs.fits", "WCS"),
        ] {
            assert!(
                err.lines().any(|l| l.contains(file) && l.contains(what)),
                "{be}: {file} should fail with {what:?}:\n{err}"
            );
        }
        assert!(frames(&db).await.is_empty(), "{be}: a failed batch wrote");
        let keep = PathIngest {
            keep_going: true,
            ..r
        };
        let out = db.catalog.ingest_paths(&keep, tmp.path()).await.unwrap();
        assert_eq!(out.report.frames, 4, "{be}: the good night went in");
        assert_eq!(out.failures.len(), 3, "{be}: {:?}", out.failures);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_candidates_and_cycles_are_errors_and_their_children_wait() {
    let db = common::sqlite().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    // Two master biases named alike in different directories; a reduced
    // frame's ZEROCOR names "masterbias" — which one?
    for sub in ["a", "b"] {
        write(
            &dir.join(format!("{sub}/masterbias.fits")),
            vec![
                Card::new("IMAGETYP", "zero", ""),
                Card::new("NCOMBINE", 2i64, ""),
            ],
            if sub == "a" { 1.0 } else { 2.0 },
        );
    }
    write(
        &dir.join("red/r1.fits"),
        vec![
            Card::new("IMAGETYP", "object", ""),
            Card::new("ZEROCOR", "masterbias", ""),
        ],
        3.0,
    );
    // Two combined flats naming each other.
    write(
        &dir.join("c/f1.fits"),
        vec![
            Card::new("IMAGETYP", "flat", ""),
            Card::new("IMCMB001", "f2.fits", ""),
        ],
        4.0,
    );
    write(
        &dir.join("c/f2.fits"),
        vec![
            Card::new("IMAGETYP", "flat", ""),
            Card::new("IMCMB001", "f1.fits", ""),
        ],
        5.0,
    );
    let r = PathIngest {
        roots: vec![("n".into(), dir.clone())],
        keep_going: true,
        ..req(vec![dir.clone()])
    };
    let plan = db.catalog.plan_paths(&r).await.unwrap();
    let errors: Vec<String> = plan.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        errors
            .iter()
            .any(|e| e.contains("r1.fits") && e.contains("2 files of this batch")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("f1.fits") && e.contains("cycle")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("f2.fits") && e.contains("cycle")),
        "{errors:?}"
    );
    let out = db.catalog.ingest_paths(&r, tmp.path()).await.unwrap();
    // Both master biases go in: same file name, so the second is recorded
    // by its path in the root.
    let mut names: Vec<String> = frames(&db).await.into_iter().map(|f| f.1).collect();
    names.sort();
    assert_eq!(names, ["b/masterbias.fits", "masterbias.fits"]);
    assert_eq!(out.failures.len(), 3, "{:?}", out.failures);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_toml_manifest_completes_what_headers_do_not_say() {
    let db = common::sqlite().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    night(&dir, 5.0);
    // A frame with no IMAGETYP and an unconventional name: the manifest
    // gives its class and its flat.
    write(
        &dir.join("red/ngc253_r.fits"),
        vec![Card::new("FILTER", "r", "")],
        7.0,
    );
    let plan = db
        .catalog
        .plan_paths(&PathIngest {
            roots: vec![("n".into(), dir.clone())],
            ..req(vec![dir.clone()])
        })
        .await
        .unwrap();
    assert!(
        plan.errors
            .iter()
            .any(|e| e.to_string().contains("cannot tell its class")),
        "{}",
        plan.explain()
    );
    std::fs::write(
        tmp.path().join("fix.toml"),
        r#"
[[frames]]
key = "red"
class = "ReducedScienceFrame"
path = "n/red/ngc253_r.fits"
deps = [{ role = "bias", key = "mb" }]

[[frames]]
key = "mb"
class = "BiasFrame"
path = "n/cal/masterbias.fits"
"#,
    )
    .unwrap();
    let r = PathIngest {
        roots: vec![("n".into(), dir.clone())],
        manifest: Some(tmp.path().join("fix.toml")),
        ..req(vec![dir.clone()])
    };
    let plan = db.catalog.plan_paths(&r).await.unwrap();
    let text = plan.explain();
    assert!(plan.errors.is_empty(), "{text}");
    assert!(
        text.contains("ReducedScienceFrame (HDU 0)  [manifest:"),
        "{text}"
    );
    assert!(
        text.contains("bias    ← masterbias.fits  [manifest:"),
        "{text}"
    );
    // Headers still decide what the manifest does not mention.
    assert!(text.contains("raw     ← b1.fits  [iraf_imcmb:"), "{text}");
    let out = db.catalog.ingest_paths(&r, tmp.path()).await.unwrap();
    assert_eq!(out.report.frames, 5);
}

#[test]
fn the_cli_explains_ingests_and_says_what_it_did() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("n");
    night(&dir, 5.0);
    let url = wisecut::config::Config::sqlite_url(&tmp.path().join("cli.db"));
    let run = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wisecut"))
            .arg("ingest")
            .args(extra)
            .arg(&dir)
            .arg("--root")
            .arg(format!("n={}", dir.display()))
            .args(["--db", &url, "--data"])
            .arg(tmp.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, plan, said) = run(&["--explain"]);
    assert!(ok, "{said}");
    assert!(
        plan.contains("BiasFrame (HDU 0)  [iraf_imagetyp: IMAGETYP = 'zero', combined]"),
        "{plan}"
    );
    assert!(
        plan.contains("[iraf_imcmb: IMCMB002 = 'b2.fits']"),
        "{plan}"
    );
    assert!(
        said.contains("4 files would be ingested") && said.contains("nothing written"),
        "{said}"
    );
    let (ok, _, said) = run(&[]);
    assert!(ok && said.contains("ingested 4 frames"), "{said}");
    let (ok, _, said) = run(&[]);
    assert!(
        ok && said.contains("ingested 0 frames") && said.contains("unchanged"),
        "{said}"
    );
    std::fs::write(dir.join("raw/broken.fits"), "SIMPLE  = T").unwrap();
    let (ok, _, said) = run(&[]);
    assert!(!ok, "{said}");
    assert!(
        said.contains("broken.fits") && said.contains("nothing was ingested"),
        "{said}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_multi_extension_file_is_refused_not_cut_to_its_first_chip() {
    let db = common::sqlite().await;
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("mef.fits");
    // A camera's multi-extension file, written card by card: an empty
    // primary and two 4 × 4 chips.
    let block = |cards: &[String]| {
        let mut h: String = cards.iter().map(|c| format!("{c:<80}")).collect();
        h.push_str(&format!("{:<80}", "END"));
        let mut b = h.into_bytes();
        b.resize(b.len().div_ceil(2880) * 2880, b' ');
        b
    };
    let num = |k: &str, v: i64| format!("{k:<8}= {v:>20}");
    let mut bytes = block(&[
        "SIMPLE  =                    T".into(),
        num("BITPIX", 8),
        num("NAXIS", 0),
        "EXTEND  =                    T".into(),
    ]);
    for chip in 1..=2 {
        bytes.extend(block(&[
            "XTENSION= 'IMAGE   '".into(),
            num("BITPIX", 8),
            num("NAXIS", 2),
            num("NAXIS1", 4),
            num("NAXIS2", 4),
            num("PCOUNT", 0),
            num("GCOUNT", 1),
            format!("EXTNAME = 'CCD{chip}    '"),
        ]));
        let mut data = vec![chip as u8; 16];
        data.resize(2880, 0);
        bytes.extend(data);
    }
    std::fs::write(&path, bytes).unwrap();
    assert_eq!(fits::hdu_count(&path).unwrap(), 3);
    let r = PathIngest {
        copy: true,
        ..req(vec![path.clone()])
    };
    let plan = db.catalog.plan_paths(&r).await.unwrap();
    let e = plan
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        e.contains("mef.fits") && e.contains("multi-extension file of 2 images"),
        "{e}"
    );
}
