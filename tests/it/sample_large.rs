//! The large synthetic survey (`wisecut sample --size large`), small: a few
//! thousand frames on SQLite and PostgreSQL. Counts, lineage reaching the
//! raw frames from a copied coadd, the sky index, a cutout by position of a
//! copied frame on another field landing on the same pixels as the
//! template's, and the refusal of a non-empty catalogue.

use crate::common::{self, TestDb};
use axum::http::StatusCode;
use std::sync::Arc;
use wisecut::catalog::Catalog;
use wisecut::catalog::lineage::{Direction, MAX_DEPTH};
use wisecut::config::Config;
use wisecut::imaging::wcs::Wcs;
use wisecut::model::{Frame, FrameClass};
use wisecut::sample::large::{LargeSpec, build_large};

fn spec() -> LargeSpec {
    LargeSpec {
        frames: 2_000,
        sources: 50_000,
        seed: 7,
        fields: 4,
    }
}

/// The FITS data part of a cutout (after the header's END block), padded.
fn data_part(fits: &[u8]) -> &[u8] {
    let end = fits
        .chunks(80)
        .position(|c| c.starts_with(b"END     ") || c == b"END".as_slice())
        .expect("an END card");
    let header_len = (end * 80 / 2880 + 1) * 2880;
    &fits[header_len..]
}

fn card_value(fits: &[u8], key: &str) -> f64 {
    let card = fits
        .chunks(80)
        .find(|c| c.starts_with(format!("{key:<8}=").as_bytes()))
        .unwrap_or_else(|| panic!("no {key} card"));
    String::from_utf8_lossy(&card[10..])
        .split('/')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

async fn run(db: TestDb) {
    let out = tempfile::tempdir().unwrap();
    let s = build_large(&db.url, out.path(), &spec(), Arc::new(|_, _, _| {}))
        .await
        .unwrap_or_else(|e| panic!("{}: large sample: {e}", db.backend));
    let be = db.backend;
    assert!(s.frames >= 2_000 && s.frames < 2_000 + 300, "{be}: {s:?}");
    assert!(
        s.sources >= 45_000 && s.sources <= 55_000,
        "{be}: {} sources",
        s.sources
    );
    assert!(s.edges > s.frames, "{be}: {s:?}");
    let catalog = Catalog::connect(&db.url).await.unwrap();

    // Every frame with a WCS (about half of them) is in the sky index.
    assert!(s.cells >= s.frames / 2, "{be}: {s:?}");

    // Reading without a position pages the frame table (1000 rows a
    // page): the first n+1 frames in object-id order, or every frame a
    // filter keeps, across pages.
    let all: Vec<i64> = {
        let mut ids = Vec::new();
        for c in FrameClass::ALL {
            ids.extend(
                catalog
                    .frames_of_class(c)
                    .await
                    .unwrap()
                    .iter()
                    .map(|f| f.target.object_id.0),
            );
        }
        ids.sort_unstable();
        ids
    };
    assert_eq!(all.len() as u64, s.frames, "{be}");
    let first = catalog
        .frames_until(&[], |_| true, 1500)
        .await
        .unwrap()
        .iter()
        .map(|f| f.target.object_id.0)
        .collect::<Vec<_>>();
    assert_eq!(first, all[..1501], "{be}");
    let odd = catalog
        .frames_until(&[], |f| f.target.object_id.0 % 2 == 1, usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        odd.len(),
        all.iter().filter(|id| *id % 2 == 1).count(),
        "{be}"
    );
    let coadds = catalog
        .frames_until(&[FrameClass::CoaddedRegriddedFrame], |_| true, usize::MAX)
        .await
        .unwrap();
    assert!(
        !coadds.is_empty()
            && coadds
                .iter()
                .all(|f| f.class == FrameClass::CoaddedRegriddedFrame),
        "{be}"
    );
    // A coadd of the last block reaches raw science, bias and flat frames.
    let coadds = catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap();
    assert!(
        coadds.len() as u64 >= s.blocks,
        "{be}: {} coadds",
        coadds.len()
    );
    let last = coadds
        .iter()
        .max_by_key(|f| f.target.object_id)
        .unwrap()
        .clone();
    assert!(last.filename.starts_with('b'), "{be}: {}", last.filename);
    let walk = catalog
        .lineage(last.target.object_id, Direction::Up, MAX_DEPTH)
        .await
        .unwrap();
    for class in ["RawScienceFrame", "RawBiasFrame", "RawDomeFlatFrame"] {
        let raw: Vec<_> = walk
            .nodes
            .iter()
            .filter(|n| n.class_name == class)
            .collect();
        assert!(!raw.is_empty(), "{be}: the coadd's lineage has no {class}");
        // Copies link within their own block: the ids are the coadd's
        // block's, not the template's.
        assert!(
            raw.iter().all(|n| n.object_id.0 > 300),
            "{be}: {class} of a copied coadd is a template frame"
        );
    }

    // A reduced frame copied onto another field: a cutout by position on
    // it lands on the same pixels as the template frame at its own
    // position.
    let reduced = catalog
        .frames_of_class(FrameClass::ReducedScienceFrame)
        .await
        .unwrap();
    let copy: &Frame = reduced
        .iter()
        .find(|f| f.path.starts_with("fields/f0002/"))
        .expect("a reduced frame on field 2");
    let template_path = copy.path.trim_start_matches("fields/f0002/");
    let template = reduced
        .iter()
        .find(|f| f.path == template_path)
        .expect("its template");
    let (n1, n2) = (copy.naxis1 as usize, copy.naxis2 as usize);
    let wcs_copy = Wcs::new(copy.wcs.as_ref().unwrap(), n1, n2).unwrap();
    let wcs_template = Wcs::new(template.wcs.as_ref().unwrap(), n1, n2).unwrap();
    let (px, py) = (61.0, 73.0);
    let (ra, dec) = wcs_copy.pix_to_sky(px, py).unwrap();
    let (tra, tdec) = wcs_template.pix_to_sky(px, py).unwrap();
    assert!(
        (ra - tra).abs() > 0.1 || (dec - tdec).abs() > 0.1,
        "{be}: the copy is on another field"
    );
    // The position is found on the copy by the catalogue's own search.
    let covering = wisecut::products::frames::covering(
        &catalog,
        ra,
        dec,
        Some(FrameClass::ReducedScienceFrame),
        None,
    )
    .await
    .unwrap();
    assert!(
        covering
            .iter()
            .any(|c| c.frame.target.object_id == copy.target.object_id),
        "{be}: the copy covers its position"
    );
    assert!(
        covering
            .iter()
            .all(|c| !c.frame.path.starts_with("fields/f0001/")),
        "{be}: another field's frames do not"
    );
    let cache = tempfile::tempdir().unwrap();
    let mut config = Config::new(
        db.url.clone(),
        out.path().join("data"),
        cache.path().to_path_buf(),
        "127.0.0.1:0".parse().unwrap(),
    );
    common::without_client_limits(&mut config);
    let st = wisecut::web::AppState::new(catalog.clone(), Arc::new(config)).unwrap();
    let cut = |id: i64, ra: f64, dec: f64| {
        format!("/api/cutout?frame={id}&ra={ra:.10}&dec={dec:.10}&size=11&format=fits")
    };
    let (status, _, body) = common::fetch(&st, &cut(copy.target.object_id.0, ra, dec)).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "{be}: {}",
        String::from_utf8_lossy(&body)
    );
    let (status, _, reference) =
        common::fetch(&st, &cut(template.target.object_id.0, tra, tdec)).await;
    assert_eq!(status, StatusCode::OK, "{be}");
    assert_eq!(
        data_part(&body),
        data_part(&reference),
        "{be}: the copy's cutout has the template's pixels"
    );
    // Its header places it on the copy's field.
    let crval1 = card_value(&body, "CRVAL1");
    assert!(
        (crval1 - copy.wcs.as_ref().unwrap().crval1).abs() < 1e-6,
        "{be}: CRVAL1 {crval1}"
    );

    // A second load into the same catalogue is refused.
    let again = tempfile::tempdir().unwrap();
    let err = build_large(&db.url, again.path(), &spec(), Arc::new(|_, _, _| {}))
        .await
        .expect_err("a non-empty catalogue is refused");
    assert!(err.to_string().contains("not empty"), "{be}: {err}");
}

#[tokio::test]
async fn large_sample_on_sqlite() {
    run(common::sqlite().await).await;
}

#[tokio::test]
async fn large_sample_on_postgres() {
    if let Some(db) = common::postgres().await {
        run(db).await;
    }
}
