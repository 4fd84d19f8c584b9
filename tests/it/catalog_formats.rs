//! Catalogs in the formats pipelines write — SExtractor FITS_LDAC, plain FITS
//! binary tables, CSV — ingested as SourceLists through the manifest, on
//! every backend; and a real `source-extractor` run read back.
//!
//! The expected rows are the values the test generated (or, for the real
//! SExtractor, the columns read straight from its file by name), compared
//! with the rows read back from the database over a connection of its own.

use super::common;
use sea_orm::{ColumnTrait, Database, EntityTrait, QueryFilter, QueryOrder};
use std::path::Path;
use wisecut::catalog::Catalog;
use wisecut::catalog::entity::source;
use wisecut::catalog::ingest::tables::{self, ColumnMap, TableFormat};
use wisecut::catalog::ingest::{FrameEntry, Manifest, SourceListEntry};
use wisecut::imaging::fits::{self, Card, Column, ColumnData, Compression, PixelData};
use wisecut::imaging::raster::Raster;
use wisecut::imaging::wcs::{Header, Wcs, WcsKeywords};

const W: usize = 200;
const H: usize = 160;

fn frame_cards() -> Vec<Card> {
    vec![
        Card::new("OBJECT", "FORMATS", ""),
        Card::new("FILTER", "r", ""),
        Card::new("EXPTIME", 30.0, "s"),
        Card::new("CTYPE1", "RA---TAN", ""),
        Card::new("CTYPE2", "DEC--TAN", ""),
        Card::new("CRVAL1", 150.0, ""),
        Card::new("CRVAL2", 2.0, ""),
        Card::new("CRPIX1", 100.5, ""),
        Card::new("CRPIX2", 80.5, ""),
        Card::new("CD1_1", -1.0e-4, ""),
        Card::new("CD1_2", 0.0, ""),
        Card::new("CD2_1", 0.0, ""),
        Card::new("CD2_2", 1.0e-4, ""),
    ]
}

/// Writes `name` as a frame with a few Gaussian stars at `stars` (FITS
/// pixels) on a flat background: real enough for SExtractor.
fn write_frame(dir: &Path, name: &str, stars: &[(f64, f64)]) {
    let mut px = vec![100.0f32; W * H];
    for (j, row) in px.chunks_mut(W).enumerate() {
        for (i, p) in row.iter_mut().enumerate() {
            // A deterministic ripple stands in for noise.
            *p += ((i * 7 + j * 13) % 11) as f32 * 0.5;
            for &(x, y) in stars {
                let (dx, dy) = (i as f64 + 1.0 - x, j as f64 + 1.0 - y);
                *p += (5000.0 * (-(dx * dx + dy * dy) / (2.0 * 2.0 * 2.0)).exp()) as f32;
            }
        }
    }
    let raster = Raster::from_vec(W, H, px);
    fits::write_image(
        &dir.join(name),
        PixelData::F32(&raster),
        &frame_cards(),
        &Compression::None,
    )
    .unwrap();
}

fn frame_wcs(dir: &Path, name: &str) -> Wcs {
    let header = Header::new(&fits::read_header(&dir.join(name), 0).unwrap());
    let k = WcsKeywords::from_header(&header).unwrap().unwrap();
    Wcs::new(&k, W, H).unwrap()
}

/// The values a test catalog holds, column by column.
struct Truth {
    sid: Vec<i64>,
    x: Vec<f64>,
    y: Vec<f64>,
    ra: Vec<f64>,
    dec: Vec<f64>,
    mag: Vec<f64>,
    flags: Vec<i32>,
}

fn truth(wcs: &Wcs, n: usize, first_sid: i64) -> Truth {
    let x: Vec<f64> = (0..n).map(|i| 5.0 + (i * 37 % 190) as f64 + 0.25).collect();
    let y: Vec<f64> = (0..n).map(|i| 3.0 + (i * 53 % 150) as f64 + 0.5).collect();
    let (ra, dec) = x
        .iter()
        .zip(&y)
        .map(|(&x, &y)| wcs.pix_to_sky(x, y).unwrap())
        .unzip();
    Truth {
        // Not in row order, so the reader's general uniqueness check runs.
        sid: (0..n as i64)
            .map(|i| first_sid + (i * 7) % n as i64)
            .collect(),
        x,
        y,
        ra,
        dec,
        mag: (0..n).map(|i| 15.0 + i as f64 * 0.125).collect(),
        flags: (0..n as i32).map(|i| i % 4).collect(),
    }
}

/// An LDAC file laid out as `source-extractor -CATALOG_TYPE FITS_LDAC`
/// writes it (compared with the real tool's output in
/// `real_sextractor_catalogs_are_read_with_their_image_header`): empty
/// primary, `LDAC_IMHEAD` holding the image header as 80-character records
/// in one cell, `LDAC_OBJECTS` with SExtractor's names and types.
fn write_ldac(path: &Path, image_header: &[Card], t: &Truth) {
    let header = fits::encode_header(-32, W, H, None, image_header, 0).unwrap();
    let cell = vec![String::from_utf8(header).unwrap()];
    fits::write_table(
        path,
        tables::LDAC_IMHEAD,
        &[Column::new("Field Header Card", "", ColumnData::Str(&cell))],
        &[],
    )
    .unwrap();
    let number: Vec<i32> = t.sid.iter().map(|&s| s as i32).collect();
    let f32s = |v: &[f64]| v.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let (x, y, mag) = (f32s(&t.x), f32s(&t.y), f32s(&t.mag));
    fits::write_table(
        path,
        tables::LDAC_OBJECTS,
        &[
            Column::new("NUMBER", "", ColumnData::I32(&number)),
            Column::new("ALPHA_J2000", "deg", ColumnData::F64(&t.ra)),
            Column::new("DELTA_J2000", "deg", ColumnData::F64(&t.dec)),
            Column::new("X_IMAGE", "pixel", ColumnData::F32(&x)),
            Column::new("Y_IMAGE", "pixel", ColumnData::F32(&y)),
            Column::new("MAG_AUTO", "mag", ColumnData::F32(&mag)),
            Column::new("FLAGS", "", ColumnData::I32(&t.flags)),
        ],
        &[],
    )
    .unwrap();
}

/// A plain FITS table with wisecut's own column names.
fn write_plain(path: &Path, t: &Truth) {
    fits::write_table(
        path,
        "SOURCES",
        &[
            Column::new("SID", "", ColumnData::I64(&t.sid)),
            Column::new("RA", "deg", ColumnData::F64(&t.ra)),
            Column::new("DEC", "deg", ColumnData::F64(&t.dec)),
            Column::new("X", "pix", ColumnData::F64(&t.x)),
            Column::new("Y", "pix", ColumnData::F64(&t.y)),
            Column::new("MAG_AUTO", "mag", ColumnData::F64(&t.mag)),
            Column::new("FLAGS", "", ColumnData::I32(&t.flags)),
        ],
        &[],
    )
    .unwrap();
}

/// A CSV with positions and magnitudes only: pixel positions must come
/// from the frame's WCS.
fn write_csv(path: &Path, t: &Truth) {
    let mut text = String::from("# a hand-made list\nSID,RA,DEC,MAG_AUTO,FLAGS\n");
    for i in 0..t.sid.len() {
        text += &format!(
            "{},{},{},{},{}\n",
            t.sid[i], t.ra[i], t.dec[i], t.mag[i], t.flags[i]
        );
    }
    std::fs::write(path, text).unwrap();
}

fn list_entry(key: &str, path: &str) -> SourceListEntry {
    SourceListEntry {
        key: key.into(),
        name: key.into(),
        frame: "frame".into(),
        path: path.into(),
        ..Default::default()
    }
}

/// The rows of SourceList `slid`, read over a connection of the test's own.
async fn rows_of(url: &str, slid: i64) -> Vec<source::Model> {
    let db = Database::connect(url).await.unwrap();
    let rows = source::Entity::find()
        .filter(source::Column::Slid.eq(slid))
        .order_by_asc(source::Column::Sid)
        .all(&db)
        .await
        .unwrap();
    db.close().await.unwrap();
    rows
}

/// Checks the database rows against the generated values; `xy_tol` is the
/// pixel-position tolerance (f32 storage in LDAC, or a WCS round trip).
fn assert_rows(what: &str, rows: &[source::Model], t: &Truth, xy_tol: f64, mag_tol: f64) {
    assert_eq!(rows.len(), t.sid.len(), "{what}: row count");
    for r in rows {
        let i = t.sid.iter().position(|&s| s == r.sid).unwrap();
        let ctx = format!("{what}: SID {}", r.sid);
        assert_eq!((r.ra, r.dec), (t.ra[i], t.dec[i]), "{ctx}: RA/DEC exact");
        assert!(
            (r.x - t.x[i]).abs() <= xy_tol && (r.y - t.y[i]).abs() <= xy_tol,
            "{ctx}: x/y {} {} vs {} {}",
            r.x,
            r.y,
            t.x[i],
            t.y[i]
        );
        let mag = r.mag_auto.unwrap();
        assert!((mag - t.mag[i]).abs() <= mag_tol, "{ctx}: mag {mag}");
        assert_eq!(r.flags, t.flags[i], "{ctx}: flags");
        let hpx = cdshealpix::nested::hash(
            wisecut::catalog::HPX_DEPTH,
            r.ra.to_radians(),
            r.dec.to_radians(),
        ) as i64;
        assert_eq!(r.hpx, hpx, "{ctx}: HEALPix cell");
    }
}

async fn totals(c: &Catalog) -> Vec<i64> {
    c.category_counts()
        .await
        .unwrap()
        .iter()
        .map(|c| c.count)
        .collect()
}

#[tokio::test]
async fn ldac_fits_tables_and_csv_become_source_lists() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_frame(dir, "frame.fits", &[]);
    let wcs = frame_wcs(dir, "frame.fits");
    let (t_ldac, t_plain, t_csv) = (truth(&wcs, 40, 1), truth(&wcs, 25, 100), truth(&wcs, 30, 7));
    write_ldac(&dir.join("frame.ldac"), &frame_cards(), &t_ldac);
    write_plain(&dir.join("plain.fits"), &t_plain);
    write_csv(&dir.join("list.csv"), &t_csv);
    for (file, format) in [
        ("frame.ldac", TableFormat::Ldac),
        ("plain.fits", TableFormat::FitsTable),
        ("list.csv", TableFormat::Csv),
    ] {
        assert_eq!(tables::sniff(&dir.join(file)), Some(format), "{file}");
    }
    assert_eq!(tables::sniff(&dir.join("frame.fits")), None, "an image");
    let manifest = Manifest {
        frames: vec![FrameEntry::new(
            "frame",
            "ReducedScienceFrame",
            "frame.fits",
            vec![],
        )],
        source_lists: vec![
            list_entry("ldac", "frame.ldac"),
            list_entry("plain", "plain.fits"),
            list_entry("csv", "list.csv"),
        ],
        ..Default::default()
    };
    for db in common::all_backends().await {
        let report = db
            .catalog
            .ingest_manifest(&manifest, dir, dir)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.backend));
        assert_eq!(report.sources, 95, "{}", db.backend);
        let slid = |k: &str| report.slids[k].0;
        let b = db.backend;
        // LDAC stores X/Y and MAG_AUTO as float32.
        assert_rows(
            &format!("{b} ldac"),
            &rows_of(&db.url, slid("ldac")).await,
            &t_ldac,
            1e-4,
            1e-5,
        );
        assert_rows(
            &format!("{b} plain"),
            &rows_of(&db.url, slid("plain")).await,
            &t_plain,
            0.0,
            0.0,
        );
        // No X/Y in the CSV: placed on the frame by its WCS.
        let csv_rows = rows_of(&db.url, slid("csv")).await;
        assert_rows(&format!("{b} csv"), &csv_rows, &t_csv, 1e-6, 0.0);
        for r in &csv_rows {
            assert_eq!(
                (r.a, r.b, r.fwhm, r.class_star),
                (0.0, 0.0, 0.0, tables::CLASS_STAR_UNKNOWN),
                "{b}: missing columns get the documented values"
            );
        }
        // The LDAC list records the HDU its objects are in.
        let info = db
            .catalog
            .source_list(wisecut::ids::Slid(slid("ldac")))
            .await
            .unwrap();
        assert_eq!(info.n_sources, 40, "{b}");
    }
}

#[tokio::test]
async fn a_catalog_without_ra_names_the_file_and_its_columns_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_frame(dir, "frame.fits", &[]);
    let wcs = frame_wcs(dir, "frame.fits");
    let t = truth(&wcs, 10, 1);
    write_plain(&dir.join("good.fits"), &t);
    let number: Vec<i32> = (1..=10).collect();
    fits::write_table(
        &dir.join("bad.fits"),
        "SOURCES",
        &[
            Column::new("NUMBER", "", ColumnData::I32(&number)),
            Column::new("lon", "deg", ColumnData::F64(&t.ra)),
            Column::new("DELTA_J2000", "deg", ColumnData::F64(&t.dec)),
        ],
        &[],
    )
    .unwrap();
    let manifest = Manifest {
        frames: vec![FrameEntry::new(
            "frame",
            "ReducedScienceFrame",
            "frame.fits",
            vec![],
        )],
        source_lists: vec![
            list_entry("good", "good.fits"),
            list_entry("bad", "bad.fits"),
        ],
        ..Default::default()
    };
    for db in common::all_backends().await {
        let before = totals(&db.catalog).await;
        let err = db
            .catalog
            .ingest_manifest(&manifest, dir, dir)
            .await
            .unwrap_err()
            .to_string();
        for want in [
            "bad.fits",
            "HDU 1",
            "RA",
            "NUMBER, lon, DELTA_J2000",
            "--columns",
        ] {
            assert!(err.contains(want), "{}: {want:?} not in {err}", db.backend);
        }
        assert_eq!(totals(&db.catalog).await, before, "{}", db.backend);
        assert!(
            rows_of(&db.url, 1).await.is_empty(),
            "{}: no sources written",
            db.backend
        );
    }
    // The same file ingests with the manifest's column mapping.
    let mut mapped_manifest = manifest.clone();
    mapped_manifest.source_lists[1].columns = Some("ra=LON".into());
    let db = common::sqlite().await;
    let report = db
        .catalog
        .ingest_manifest(&mapped_manifest, dir, dir)
        .await
        .unwrap();
    let rows = rows_of(&db.url, report.slids["bad"].0).await;
    assert_eq!(rows.len(), 10);
    assert_eq!((rows[3].sid, rows[3].ra), (4, t.ra[3]));
    // And by the reader directly.
    let mapped = tables::read_source_table(
        &dir.join("bad.fits"),
        None,
        &ColumnMap::parse("RA=LON").unwrap(),
    )
    .unwrap();
    assert_eq!(mapped.rows.len(), 10);
    assert_eq!(mapped.rows[3].ra, t.ra[3]);
}

/// `source-extractor` when it is installed; in CI (or with
/// `WISECUT_REQUIRE_PEERS`) its absence is a failure, so the check cannot
/// be skipped silently.
fn sextractor() -> Option<std::path::PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("source-extractor"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").is_err() && std::env::var("WISECUT_REQUIRE_PEERS").is_err(),
            "source-extractor is required (CI / WISECUT_REQUIRE_PEERS) but not on PATH"
        );
        eprintln!("note: source-extractor not on PATH; real-SExtractor check not run");
    }
    found
}

#[tokio::test]
async fn real_sextractor_catalogs_are_read_with_their_image_header() {
    let Some(sex) = sextractor() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let stars = [(40.0, 30.0), (120.5, 60.25), (70.0, 130.0), (170.0, 100.0)];
    write_frame(dir, "frame.fits", &stars);
    std::fs::write(
        dir.join("cat.param"),
        "NUMBER\nALPHA_J2000\nDELTA_J2000\nX_IMAGE\nY_IMAGE\nA_IMAGE\nB_IMAGE\nTHETA_IMAGE\n\
         MAG_AUTO\nMAGERR_AUTO\nFLUX_AUTO\nFWHM_IMAGE\nCLASS_STAR\nFLAGS\n",
    )
    .unwrap();
    let share = Path::new("/usr/share/source-extractor");
    let mut cmd = std::process::Command::new(&sex);
    cmd.current_dir(dir).args([
        "frame.fits",
        "-CATALOG_NAME",
        "frame.ldac",
        "-CATALOG_TYPE",
        "FITS_LDAC",
        "-PARAMETERS_NAME",
        "cat.param",
        "-FILTER",
        "N",
        "-VERBOSE_TYPE",
        "QUIET",
    ]);
    if share.join("default.nnw").exists() {
        cmd.arg("-STARNNW_NAME").arg(share.join("default.nnw"));
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "source-extractor failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cat = dir.join("frame.ldac");
    assert_eq!(tables::sniff(&cat), Some(TableFormat::Ldac));
    assert_eq!(tables::ldac_object_hdus(&cat).unwrap(), vec![2]);
    let table = tables::read_source_table(&cat, None, &ColumnMap::default()).unwrap();
    assert_eq!(table.hdu, Some(2));
    assert_eq!(table.rows.len(), stars.len(), "one source per star");
    // The image header travels whole, SExtractor's cards appended.
    let cards = table.image_cards().unwrap();
    let value = |k: &str| cards.iter().find(|c| c.key == k).map(|c| c.value.clone());
    let image = fits::read_header(&dir.join("frame.fits"), 0).unwrap();
    assert_eq!(
        cards[..image.len()],
        image[..],
        "the image's header comes first, unchanged"
    );
    assert_eq!(value("FITSFILE").unwrap().as_str(), Some("frame.fits"));
    assert!(value("SEXVERS").is_some());

    let manifest = Manifest {
        frames: vec![FrameEntry::new(
            "frame",
            "ReducedScienceFrame",
            "frame.fits",
            vec![],
        )],
        source_lists: vec![list_entry("sex", "frame.ldac")],
        ..Default::default()
    };
    // Expected values read from the file by column name, not through the
    // column map.
    let col = |name: &str| fits::read_column_f64(&cat, 2, name).unwrap();
    let number = fits::read_column_i64(&cat, 2, "NUMBER").unwrap();
    let (ra, dec, x, y) = (
        col("ALPHA_J2000"),
        col("DELTA_J2000"),
        col("X_IMAGE"),
        col("Y_IMAGE"),
    );
    let (mag, class_star) = (col("MAG_AUTO"), col("CLASS_STAR"));
    let flags = fits::read_column_i64(&cat, 2, "FLAGS").unwrap();
    for db in common::all_backends().await {
        let report = db
            .catalog
            .ingest_manifest(&manifest, dir, dir)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", db.backend));
        let rows = rows_of(&db.url, report.slids["sex"].0).await;
        assert_eq!(rows.len(), number.len(), "{}", db.backend);
        for (i, r) in rows.iter().enumerate() {
            assert_eq!(r.sid, number[i]);
            assert_eq!((r.ra, r.dec, r.x, r.y), (ra[i], dec[i], x[i], y[i]));
            assert_eq!(r.mag_auto, Some(mag[i]));
            assert_eq!(
                (r.class_star, i64::from(r.flags)),
                (class_star[i], flags[i])
            );
            // SExtractor found the stars where they were put.
            assert!(
                stars
                    .iter()
                    .any(|&(sx, sy)| (sx - r.x).abs() < 0.5 && (sy - r.y).abs() < 0.5),
                "{}: source at {} {}",
                db.backend,
                r.x,
                r.y
            );
        }
    }
}
