//! The TAP query core on a real catalogue (SQLite and PostgreSQL): ADQL is
//! translated and run, and its answers are checked against independent
//! ones — the catalogue's own queries, SIA's footprint test, the sphere
//! module's separation, the lineage walk.

use std::collections::BTreeSet;

use wisecut::catalog::Catalog;
use wisecut::catalog::browse::Cell;
use wisecut::catalog::lineage::Direction;
use wisecut::imaging::sphere::separation_deg;
use wisecut::model::FrameClass;
use wisecut::vo::adql::{ColumnKind, translate};
use wisecut::vo::sia::Region;
use wisecut::vo::tap_schema::{TapColumn, TapTable, published, upload_table};

use crate::common;

async fn run_with(
    cat: &Catalog,
    adql: &str,
    tables: &[TapTable],
    uploads: &[wisecut::catalog::tap_query::UploadTable],
) -> Vec<Vec<Cell>> {
    let t =
        translate(adql, tables, cat.backend(), 1_000_000).unwrap_or_else(|e| panic!("{adql}: {e}"));
    cat.tap_rows(&t.sql, t.values, &t.kinds, uploads)
        .await
        .unwrap_or_else(|e| panic!("{:?}: {adql}\n{}: {e}", cat.backend(), t.sql))
}

async fn run(cat: &Catalog, adql: &str) -> Vec<Vec<Cell>> {
    run_with(cat, adql, &published(), &[]).await
}

fn int(c: &Cell) -> i64 {
    match c {
        Cell::Int(i) => *i,
        other => panic!("not an integer: {other:?}"),
    }
}

fn float(c: &Cell) -> f64 {
    match c {
        Cell::Float(f) => *f,
        other => panic!("not a number: {other:?}"),
    }
}

async fn all_frames(cat: &Catalog) -> Vec<wisecut::model::Frame> {
    let mut v = Vec::new();
    for c in FrameClass::ALL {
        v.extend(cat.frames_of_class(c).await.unwrap());
    }
    v
}

async fn ready(db: common::TestDb) -> common::TestDb {
    // `ingested` syncs the ObsCore rows, as `wisecut ingest` does; a second
    // sync finds nothing to do.
    let db = common::ingested(db).await;
    let n = wisecut::vo::obscore::sync_table(&db.catalog).await.unwrap();
    assert_eq!(n, 0, "{}: a second sync wrote rows", db.backend);
    db
}

#[tokio::test]
async fn tap_counts_agree_with_the_catalogue_and_sync_is_idempotent() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        // Nothing left to write the second time.
        assert_eq!(wisecut::vo::obscore::sync_table(cat).await.unwrap(), 0);
        let frames = all_frames(cat).await;
        let rows = run(cat, "SELECT COUNT(*) FROM ivoa.ObsCore").await;
        assert_eq!(int(&rows[0][0]), frames.len() as i64, "{}", db.backend);
        let per_class = run(
            cat,
            "SELECT obs_collection, COUNT(*) AS n FROM ivoa.obscore GROUP BY obs_collection ORDER BY obs_collection",
        )
        .await;
        for r in &per_class {
            let Cell::Text(class) = &r[0] else {
                panic!("{r:?}")
            };
            let expected = frames.iter().filter(|f| f.class.name() == class).count();
            assert_eq!(int(&r[1]), expected as i64, "{}: {class}", db.backend);
        }
        let counts = cat.category_counts().await.unwrap();
        let sources = counts
            .iter()
            .find(|c| c.category == "Source")
            .unwrap()
            .count;
        let rows = run(
            cat,
            "SELECT COUNT(*), COUNT(DISTINCT slid), AVG(mag_auto), SUM(flags) FROM wisecut.sources",
        )
        .await;
        assert_eq!(int(&rows[0][0]), sources, "{}", db.backend);
        assert!(matches!(rows[0][2], Cell::Float(_)), "{:?}", rows[0]);
        assert!(matches!(rows[0][3], Cell::Int(_)), "{:?}", rows[0]);
        // TAP_SCHEMA describes what the translator accepts.
        let rows = run(
            cat,
            "SELECT COUNT(*) FROM TAP_SCHEMA.columns WHERE table_name = 'ivoa.ObsCore'",
        )
        .await;
        let obscore = published().into_iter().next().unwrap();
        assert_eq!(int(&rows[0][0]), obscore.columns.len() as i64);
        let rows = run(
            cat,
            "SELECT k.from_table, c.from_column FROM TAP_SCHEMA.keys k JOIN TAP_SCHEMA.key_columns c ON c.key_id = k.key_id WHERE k.target_table = 'ivoa.ObsCore' ORDER BY 1, 2",
        )
        .await;
        assert!(
            rows.iter().any(|r| r[1] == Cell::Text("parent_id".into())),
            "{rows:?}"
        );
    }
}

#[tokio::test]
async fn math_functions_run_on_both_backends() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        // SQLite must have been built with its math functions.
        let direct = cat
            .tap_rows("SELECT sin(1.0)", vec![], &[ColumnKind::Float], &[])
            .await
            .unwrap_or_else(|e| panic!("{}: sin() missing: {e}", db.backend));
        assert!((float(&direct[0][0]) - 1f64.sin()).abs() < 1e-12);
        let rows = run(
            cat,
            "SELECT TOP 1 SIN(1.0), ROUND(2.345, 2), MOD(7, 3), MOD(7.5, 2), TRUNCATE(2.7), TRUNCATE(2.789, 1), LOG10(1000), LOG(EXP(2)), POWER(2, 10), ATAN2(1, 1), DEGREES(PI()), CEILING(1.2), FLOOR(-1.2), ABS(-3), SQRT(16), LOWER('AbC') || UPPER('x'), CAST(3.9 AS INTEGER), 7 / 2 FROM wisecut.sources",
        )
        .await;
        let r = &rows[0];
        let close = |c: &Cell, v: f64| (float(c) - v).abs() < 1e-9;
        assert!(close(&r[0], 1f64.sin()), "{}: {r:?}", db.backend);
        assert!(
            close(&r[1], 2.35) || close(&r[1], 2.34),
            "{}: {r:?}",
            db.backend
        );
        assert_eq!(int(&r[2]), 1);
        assert!(close(&r[3], 1.5), "{}: {r:?}", db.backend);
        assert!(close(&r[4], 2.0), "{}: {r:?}", db.backend);
        assert!(close(&r[5], 2.7), "{}: {r:?}", db.backend);
        assert!(close(&r[6], 3.0), "{}: {r:?}", db.backend);
        assert!(close(&r[7], 2.0), "{}: {r:?}", db.backend);
        assert!(close(&r[8], 1024.0), "{}: {r:?}", db.backend);
        assert!(
            close(&r[9], std::f64::consts::FRAC_PI_4),
            "{}: {r:?}",
            db.backend
        );
        assert!(close(&r[10], 180.0), "{}: {r:?}", db.backend);
        assert!(
            close(&r[11], 2.0) && close(&r[12], -2.0),
            "{}: {r:?}",
            db.backend
        );
        assert_eq!(int(&r[13]), 3);
        assert!(close(&r[14], 4.0));
        assert_eq!(r[15], Cell::Text("abcX".into()));
        assert!(matches!(int(&r[16]), 3 | 4), "{}: {r:?}", db.backend);
        assert_eq!(int(&r[17]), 3, "{}: integer division", db.backend);
        // LIKE is case-sensitive on both backends.
        let like = run(
            cat,
            "SELECT COUNT(*) FROM ivoa.ObsCore WHERE obs_collection LIKE 'coadded%'",
        )
        .await;
        assert_eq!(int(&like[0][0]), 0, "{}", db.backend);
        let ilike = run(
            cat,
            "SELECT COUNT(*) FROM ivoa.ObsCore WHERE obs_collection ILIKE 'coadded%'",
        )
        .await;
        assert!(int(&ilike[0][0]) > 0, "{}", db.backend);
    }
}

#[tokio::test]
async fn a_cone_on_sources_finds_what_cone_search_finds() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        let coadd = cat
            .frames_of_class(FrameClass::CoaddedRegriddedFrame)
            .await
            .unwrap()[0]
            .clone();
        let (ra, dec) = coadd.center.unwrap();
        for r in [0.002, 0.01, 0.05] {
            let expected: BTreeSet<(i64, i64)> = cat
                .cone_search(ra, dec, r, None, usize::MAX)
                .await
                .unwrap()
                .into_iter()
                .map(|(_, s)| (s.slid.0, s.sid.0))
                .collect();
            let q = format!(
                "SELECT slid, sid FROM wisecut.sources WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', {ra}, {dec}, {r})) = 1"
            );
            let got: BTreeSet<(i64, i64)> = run(cat, &q)
                .await
                .iter()
                .map(|row| (int(&row[0]), int(&row[1])))
                .collect();
            assert_eq!(got, expected, "{}: radius {r}", db.backend);
            if r == 0.05 {
                assert!(
                    got.len() > 5,
                    "{}: the cone should hold sources",
                    db.backend
                );
            }
            // And the count agrees when computed by SQL.
            let q = format!(
                "SELECT COUNT(*) FROM wisecut.sources s WHERE 1 = CONTAINS(POINT(s.ra, s.dec), CIRCLE({ra}, {dec}, {r}))"
            );
            assert_eq!(int(&run(cat, &q).await[0][0]), expected.len() as i64);
        }
    }
}

#[tokio::test]
async fn distance_agrees_with_the_sphere_module_to_a_milliarcsecond() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        let (ra0, dec0) = (150.1, 2.2);
        let rows = run(
            cat,
            &format!("SELECT TOP 200 ra, dec, DISTANCE(POINT(ra, dec), POINT({ra0}, {dec0})) AS d FROM wisecut.sources ORDER BY d"),
        )
        .await;
        assert!(!rows.is_empty());
        let mut last = 0.0;
        for r in &rows {
            let expected = separation_deg(float(&r[0]), float(&r[1]), ra0, dec0);
            let got = float(&r[2]);
            assert!(
                (got - expected).abs() * 3.6e6 < 1.0,
                "{}: {got} vs {expected}",
                db.backend
            );
            assert!(got >= last, "ORDER BY d");
            last = got;
        }
        // Tiny separations: a source against itself shifted by 1 mas.
        let rows = run(
            cat,
            "SELECT TOP 5 ra, dec, DISTANCE(POINT(ra, dec), POINT(ra, dec + 1.0 / 3600000)) FROM wisecut.sources",
        )
        .await;
        for r in &rows {
            assert!(
                (float(&r[2]) * 3.6e6 - 1.0).abs() < 1e-3,
                "{}: {r:?}",
                db.backend
            );
        }
    }
}

#[tokio::test]
async fn intersects_on_obscore_agrees_with_sia_for_every_frame() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        let frames = all_frames(cat).await;
        let on_sky: Vec<_> = frames.iter().filter(|f| f.footprint.is_some()).collect();
        assert!(on_sky.len() > 4);
        let c = on_sky[0].center.unwrap();
        let corner = on_sky[0].footprint.as_ref().unwrap()[0];
        // Circles inside a frame, around a corner, just beside the survey,
        // and big ones; polygons likewise.
        let mut regions = vec![
            Region::Circle(c.0, c.1, 0.001),
            Region::Circle(corner.0, corner.1, 0.002),
            Region::Circle(corner.0 + 0.01, corner.1 - 0.01, 0.013),
            Region::Circle(c.0 + 0.3, c.1, 0.05),
            Region::Circle(c.0, c.1, 1.0),
        ];
        for f in on_sky.iter().step_by(3).take(6) {
            let k = f.footprint.as_ref().unwrap()[2];
            regions.push(Region::Circle(k.0 + 0.004, k.1 + 0.003, 0.005));
        }
        // Circles that reach a frame only through an edge (no corner
        // inside, centre outside), and ones that just miss it.
        for f in on_sky.iter().step_by(2).take(8) {
            let fp = f.footprint.as_ref().unwrap();
            let centre = f.center.unwrap();
            for i in 0..fp.len() {
                let (a, b) = (fp[i], fp[(i + 1) % fp.len()]);
                let mid = ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0);
                let cosd = mid.1.to_radians().cos();
                let (dx, dy) = ((mid.0 - centre.0) * cosd, mid.1 - centre.1);
                let len = (dx * dx + dy * dy).sqrt();
                let out = |d: f64| (mid.0 + dx / len * d / cosd, mid.1 + dy / len * d);
                let p = out(0.002);
                regions.push(Region::Circle(p.0, p.1, 0.0025));
                regions.push(Region::Circle(p.0, p.1, 0.0015));
            }
            // A thin strip through the frame whose vertices are all outside
            // it and which holds no corner: only edge crossings find it.
            let span = fp
                .iter()
                .map(|q| separation_deg(q.0, q.1, centre.0, centre.1))
                .fold(0.0, f64::max)
                * 3.0;
            let cosd = centre.1.to_radians().cos();
            regions.push(Region::Polygon(vec![
                (centre.0 - span / cosd, centre.1 - 0.0005),
                (centre.0 + span / cosd, centre.1 - 0.0005),
                (centre.0 + span / cosd, centre.1 + 0.0005),
                (centre.0 - span / cosd, centre.1 + 0.0005),
            ]));
        }
        regions.push(Region::Polygon(vec![
            (c.0, c.1),
            (c.0 + 0.02, c.1),
            (c.0 + 0.02, c.1 + 0.02),
        ]));
        regions.push(Region::Polygon(vec![
            (corner.0 - 0.01, corner.1 - 0.01),
            (corner.0 + 0.001, corner.1 - 0.01),
            (corner.0 + 0.001, corner.1 + 0.001),
            (corner.0 - 0.01, corner.1 + 0.001),
        ]));
        let mut nonempty = 0;
        for region in &regions {
            let shape = match region {
                Region::Circle(ra, dec, r) => format!("CIRCLE('ICRS', {ra}, {dec}, {r})"),
                Region::Polygon(v) => format!(
                    "POLYGON('ICRS', {})",
                    v.iter()
                        .map(|(r, d)| format!("{r}, {d}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                Region::Range(..) => unreachable!(),
            };
            let expected: BTreeSet<i64> = frames
                .iter()
                .filter(|f| f.footprint.as_deref().is_some_and(|fp| region.overlaps(fp)))
                .map(|f| f.target.object_id.0)
                .collect();
            let q = format!(
                "SELECT frame_id FROM ivoa.ObsCore WHERE INTERSECTS(s_region, {shape}) = 1"
            );
            let got: BTreeSet<i64> = run(cat, &q).await.iter().map(|r| int(&r[0])).collect();
            assert_eq!(got, expected, "{}: {shape}", db.backend);
            nonempty += usize::from(!got.is_empty() && got.len() < on_sky.len());
        }
        assert!(
            nonempty >= 4,
            "the regions should discriminate between frames"
        );
    }
}

#[tokio::test]
async fn obscore_rows_are_the_sia_rows() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        let frames = all_frames(cat).await;
        let t = translate(
            "SELECT * FROM ivoa.ObsCore ORDER BY frame_id",
            &published(),
            cat.backend(),
            1_000_000,
        )
        .unwrap();
        let rows = cat.tap_rows(&t.sql, t.values, &t.kinds, &[]).await.unwrap();
        assert_eq!(rows.len(), frames.len());
        let sia_fields = wisecut::vo::sia::obscore_fields();
        for row in &rows {
            let id = int(&row[t.fields.iter().position(|f| f.name == "frame_id").unwrap()]);
            let f = frames.iter().find(|f| f.target.object_id.0 == id).unwrap();
            let sia = wisecut::vo::sia::obscore_row(f, "");
            for (k, field) in t.fields.iter().enumerate() {
                let name = if field.name == "frame_id" {
                    "object_id"
                } else {
                    &field.name
                };
                let j = sia_fields.iter().position(|s| s.name == name).unwrap();
                let same = match (&row[k], &sia[j]) {
                    (Cell::Float(a), Cell::Float(b)) => (a - b).abs() <= 1e-12 * b.abs().max(1.0),
                    (a, b) => a == b,
                };
                assert!(
                    same,
                    "{}: frame {id} {name}: {:?} vs {:?}",
                    db.backend, row[k], sia[j]
                );
            }
        }
    }
}

#[tokio::test]
async fn the_lineage_join_lists_a_coadds_inputs() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        let coadd = cat
            .frames_of_class(FrameClass::CoaddedRegriddedFrame)
            .await
            .unwrap()[0]
            .clone();
        let id = coadd.target.object_id;
        let walk = cat.lineage(id, Direction::Up, 1).await.unwrap();
        let frame_ids: BTreeSet<i64> = all_frames(cat)
            .await
            .iter()
            .map(|f| f.target.object_id.0)
            .collect();
        let expected: BTreeSet<String> = walk
            .edges
            .iter()
            .filter(|e| e.child == id && frame_ids.contains(&e.parent.0))
            .map(|e| wisecut::vo::obscore::ivoid(e.parent))
            .collect();
        assert!(!expected.is_empty());
        let q = format!(
            "SELECT o.obs_publisher_did FROM ivoa.obscore o JOIN wisecut.dependency d ON d.parent_id = o.frame_id WHERE d.child_id = {}",
            id.0
        );
        let got: BTreeSet<String> = run(cat, &q)
            .await
            .into_iter()
            .map(|r| match &r[0] {
                Cell::Text(s) => s.clone(),
                c => panic!("{c:?}"),
            })
            .collect();
        assert_eq!(got, expected, "{}", db.backend);
    }
}

#[tokio::test]
async fn an_upload_crossmatches_against_sources() {
    for db in common::all_backends().await {
        let db = ready(db).await;
        let cat = &db.catalog;
        let some = run(
            cat,
            "SELECT TOP 3 slid, sid, ra, dec FROM wisecut.sources ORDER BY mag_auto",
        )
        .await;
        let table = upload_table(
            "mine",
            vec![
                TapColumn::new("id", ColumnKind::Int, ""),
                TapColumn::new("ra", ColumnKind::Float, ""),
                TapColumn::new("dec", ColumnKind::Float, ""),
            ],
        );
        let rows: Vec<Vec<Cell>> = some
            .iter()
            .enumerate()
            .map(|(i, r)| vec![Cell::Int(i as i64), r[2].clone(), r[3].clone()])
            .collect();
        let upload = table.upload_data(rows.clone()).unwrap();
        let mut tables = published();
        tables.push(table);
        let radius = 1.0 / 3600.0;
        let got = run_with(
            cat,
            &format!("SELECT u.id, s.slid, s.sid FROM TAP_UPLOAD.mine AS u JOIN wisecut.sources AS s ON CONTAINS(POINT(s.ra, s.dec), CIRCLE(u.ra, u.dec, {radius})) = 1 ORDER BY u.id, s.slid, s.sid"),
            &tables,
            std::slice::from_ref(&upload),
        )
        .await;
        let mut expected = Vec::new();
        for (i, r) in rows.iter().enumerate() {
            for (_, s) in cat
                .cone_search(float(&r[1]), float(&r[2]), radius, None, usize::MAX)
                .await
                .unwrap()
            {
                expected.push(vec![
                    Cell::Int(i as i64),
                    Cell::Int(s.slid.0),
                    Cell::Int(s.sid.0),
                ]);
            }
        }
        expected.sort_by_key(|r| (int(&r[0]), int(&r[1]), int(&r[2])));
        assert_eq!(got, expected, "{}", db.backend);
        assert!(got.len() >= 3);
        // The upload is gone after the query.
        let again = cat
            .tap_rows(
                "SELECT COUNT(*) FROM tap_upload_mine",
                vec![],
                &[ColumnKind::Int],
                &[],
            )
            .await;
        assert!(
            again.is_err(),
            "{}: the temporary table outlived its query",
            db.backend
        );
    }
}
