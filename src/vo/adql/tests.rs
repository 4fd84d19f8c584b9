//! Unit tests of the ADQL translator: what it accepts, what SQL it writes
//! for each backend, and what it refuses (with which message).

use sea_orm::{DbBackend, Value};

use super::{ColumnKind, translate};
use crate::vo::tap_schema::{TapColumn, published, upload_table};

const PG: DbBackend = DbBackend::Postgres;
const LITE: DbBackend = DbBackend::Sqlite;

fn ok(adql: &str, b: DbBackend) -> super::Translated {
    translate(adql, &published(), b, 1000).unwrap_or_else(|e| panic!("{adql}: {e}"))
}

fn refused(adql: &str) -> String {
    match translate(adql, &published(), LITE, 1000) {
        Ok(t) => panic!("{adql} was accepted: {}", t.sql),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_plain_query_becomes_bound_sql_for_each_backend() {
    let q = "SELECT TOP 5 s_ra, s_dec AS d FROM ivoa.ObsCore WHERE obs_collection = 'CoaddedRegriddedFrame' ORDER BY d DESC";
    let pg = ok(q, PG);
    assert!(pg.sql.contains("t0.s_ra"), "{}", pg.sql);
    assert!(pg.sql.contains("= $1"), "{}", pg.sql);
    assert!(pg.sql.contains("ORDER BY c1 DESC"), "{}", pg.sql);
    assert!(!pg.sql.contains("Coadded"), "{}", pg.sql);
    assert_eq!(
        pg.values[0],
        Value::String(Some("CoaddedRegriddedFrame".into()))
    );
    assert_eq!(pg.limit, 5);
    assert_eq!(pg.kinds, vec![ColumnKind::Float, ColumnKind::Float]);
    assert_eq!(pg.fields[0].name, "s_ra");
    assert_eq!(pg.fields[0].ucd.as_deref(), Some("pos.eq.ra"));
    assert_eq!(pg.fields[1].name, "d");
    let lite = ok(q, LITE);
    assert!(lite.sql.contains("= ?1"), "{}", lite.sql);
    assert!(!lite.sql.contains('$'), "{}", lite.sql);
}

#[test]
fn maxrec_asks_for_one_row_more_than_may_be_returned() {
    let t = translate("SELECT * FROM wisecut.sources", &published(), LITE, 100).unwrap();
    assert_eq!(t.limit, 100);
    assert_eq!(t.values.last(), Some(&Value::BigInt(Some(101))));
    let t = translate(
        "SELECT TOP 7 * FROM wisecut.sources",
        &published(),
        LITE,
        100,
    )
    .unwrap();
    assert_eq!(t.limit, 7);
    assert_eq!(t.values.last(), Some(&Value::BigInt(Some(7))));
    let t = translate(
        "SELECT TOP 700 * FROM wisecut.sources",
        &published(),
        LITE,
        100,
    )
    .unwrap();
    assert_eq!(t.limit, 100);
    assert_eq!(t.values.last(), Some(&Value::BigInt(Some(101))));
    // `*` expands to the published columns only (no hpx).
    assert_eq!(t.fields.len(), 15);
    assert!(!t.sql.contains("hpx"));
}

#[test]
fn injection_in_literals_stays_a_value() {
    let evil = "'; DROP TABLE frame; --";
    let q = format!(
        "SELECT obs_id FROM ivoa.ObsCore WHERE obs_id = '{}'",
        evil.replace('\'', "''")
    );
    for b in [PG, LITE] {
        let t = ok(&q, b);
        assert!(!t.sql.contains("DROP"), "{}", t.sql);
        assert!(t.values.contains(&Value::String(Some(evil.into()))));
    }
}

#[test]
fn injection_in_identifiers_is_an_unknown_name() {
    let e = refused("SELECT \"x; DROP TABLE frame; --\" FROM ivoa.ObsCore");
    assert!(e.contains("unknown column"), "{e}");
    assert!(e.contains("s_ra"), "lists the columns: {e}");
    let e = refused("SELECT * FROM \"frame; DROP TABLE frame\"");
    assert!(e.contains("unknown table"), "{e}");
    assert!(e.contains("ivoa.ObsCore"), "lists the tables: {e}");
    let e = refused("SELECT * FROM frame");
    assert!(e.contains("unknown table"), "{e}");
    let e = refused("SELECT * FROM ivoa.ObsCore; DROP TABLE frame");
    assert!(e.contains("one query"), "{e}");
    let e = refused("DROP TABLE frame");
    assert!(e.contains("only SELECT"), "{e}");
    let e = refused("SELECT s_ra FROM ivoa.ObsCore o WHERE o.s_ra > (SELECT 1 FROM ivoa.ObsCore)");
    assert!(e.contains("subqueries"), "{e}");
}

#[test]
fn unknown_functions_and_columns_say_what_exists() {
    let e = refused("SELECT FOO(s_ra) FROM ivoa.ObsCore");
    assert!(e.contains("function FOO is not supported"), "{e}");
    assert!(e.contains("DISTANCE"), "{e}");
    let e = refused("SELECT foo FROM ivoa.obscore");
    assert!(e.contains("unknown column \"foo\""), "{e}");
    assert!(
        e.contains("columns of ivoa.ObsCore: dataproduct_type"),
        "{e}"
    );
    let e = refused("SELECT sleep(10) FROM ivoa.obscore");
    assert!(e.contains("SLEEP"), "{e}");
    let e = refused("SELECT TOP 1 ra FROM wisecut.sources LIMIT 3");
    assert!(e.contains("TOP"), "{e}");
}

#[test]
fn identifiers_ignore_case_unless_quoted() {
    ok("select S_RA from IVOA.OBSCORE as O where O.S_DEC > 0", LITE);
    ok("SELECT \"s_ra\" FROM \"ivoa\".\"ObsCore\"", LITE);
    let e = refused("SELECT \"S_RA\" FROM ivoa.ObsCore");
    assert!(e.contains("unknown column"), "{e}");
}

#[test]
fn ambiguous_and_qualified_columns() {
    let e = refused(
        "SELECT slid FROM wisecut.sources s JOIN wisecut.source_lists l ON l.slid = s.slid",
    );
    assert!(e.contains("ambiguous"), "{e}");
    let t = ok(
        "SELECT s.slid, l.name FROM wisecut.sources s JOIN wisecut.source_lists l ON l.slid = s.slid",
        PG,
    );
    assert!(t.sql.contains("JOIN (SELECT s.slid"), "{}", t.sql);
    ok("SELECT wisecut.sources.ra FROM wisecut.sources", LITE);
    let e = refused("SELECT x.ra FROM wisecut.sources s");
    assert!(e.contains("no table called x"), "{e}");
}

#[test]
fn aggregates_group_and_order() {
    let t = ok(
        "SELECT obs_collection, COUNT(*) AS n, AVG(s_fov), MAX(t_min) FROM ivoa.ObsCore GROUP BY obs_collection HAVING COUNT(*) > 1 ORDER BY n DESC, 1",
        PG,
    );
    assert!(t.sql.contains("GROUP BY t0.obs_collection"), "{}", t.sql);
    assert!(t.sql.contains("HAVING (COUNT(*) > $"), "{}", t.sql);
    assert!(t.sql.contains("ORDER BY c1 DESC, 1 ASC"), "{}", t.sql);
    assert_eq!(
        t.kinds,
        vec![
            ColumnKind::Text,
            ColumnKind::Int,
            ColumnKind::Float,
            ColumnKind::Float
        ]
    );
    assert_eq!(t.fields[2].name, "avg");
    let e = refused("SELECT s_ra FROM ivoa.ObsCore WHERE COUNT(*) > 1");
    assert!(e.contains("aggregate"), "{e}");
    ok("SELECT COUNT(DISTINCT slid) FROM wisecut.sources", LITE);
}

#[test]
fn math_functions_are_spelled_per_backend() {
    let q = "SELECT ROUND(ra, 2), TRUNCATE(dec), MOD(flags, 2), MOD(ra, 2.5), LOG(ra), LOG10(ra), DEGREES(PI()), CEILING(ra), FLOOR(ra) FROM wisecut.sources";
    let pg = ok(q, PG);
    assert!(pg.sql.contains("ROUND(CAST("), "{}", pg.sql);
    assert!(pg.sql.contains("AS NUMERIC), CAST("), "{}", pg.sql);
    assert!(pg.sql.contains("LN("), "{}", pg.sql);
    let lite = ok(q, LITE);
    assert!(lite.sql.contains("ROUND(t0.ra, ?"), "{}", lite.sql);
    assert!(lite.sql.contains("MOD(t0.ra"), "{}", lite.sql);
    assert!(lite.sql.contains("LOG10("), "{}", lite.sql);
    assert!(lite.sql.contains("(t0.flags % ?"), "{}", lite.sql);
}

#[test]
fn like_is_case_sensitive_on_both_backends() {
    let lite = ok(
        "SELECT obs_id FROM ivoa.ObsCore WHERE obs_id LIKE 'co_dd%[x]'",
        LITE,
    );
    assert!(lite.sql.contains("GLOB"), "{}", lite.sql);
    assert!(
        lite.values
            .contains(&Value::String(Some("co?dd*[[]x]".into())))
    );
    let pg = ok(
        "SELECT obs_id FROM ivoa.ObsCore WHERE obs_id ILIKE 'co%'",
        PG,
    );
    assert!(pg.sql.contains("ILIKE"), "{}", pg.sql);
}

#[test]
fn mixed_types_and_conditions_as_values_are_refused() {
    let e = refused("SELECT s_ra FROM ivoa.ObsCore WHERE obs_id = 3");
    assert!(e.contains("compares text with an integer"), "{e}");
    let e = refused("SELECT s_ra > 3 FROM ivoa.ObsCore");
    assert!(e.contains("condition"), "{e}");
    let e = refused("SELECT s_ra FROM ivoa.ObsCore WHERE s_ra");
    assert!(e.contains("not a condition"), "{e}");
}

#[test]
fn cone_on_sources_uses_the_healpix_index() {
    let t = ok(
        "SELECT ra, dec FROM wisecut.sources WHERE CONTAINS(POINT('ICRS', ra, dec), CIRCLE('ICRS', 150.1, 2.2, 0.01)) = 1",
        PG,
    );
    assert!(t.sql.contains("t0.hpx >= $"), "{}", t.sql);
    assert!(t.sql.contains("POWER(SIN(RADIANS"), "{}", t.sql);
    // The same cone around an expression cannot use the index but is exact.
    let t = ok(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra + 0, dec), CIRCLE(150.1, 2.2, 0.01)) = 1",
        PG,
    );
    assert!(!t.sql.contains("hpx"), "{}", t.sql);
    // = 0 negates.
    let t = ok(
        "SELECT ra FROM wisecut.sources WHERE 0 = CONTAINS(POINT(ra, dec), CIRCLE(150.1, 2.2, 0.01))",
        LITE,
    );
    assert!(t.sql.contains("(NOT ("), "{}", t.sql);
}

#[test]
fn geometry_errors_say_what_is_allowed() {
    let e = refused(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT('GALACTIC', ra, dec), CIRCLE(1, 2, 3)) = 1",
    );
    assert!(e.contains("'GALACTIC' is not supported"), "{e}");
    let e = refused(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), CIRCLE(1, 2, 3)) > 0",
    );
    assert!(e.contains("compared with 1 or 0"), "{e}");
    let e = refused("SELECT POINT(ra, dec) FROM wisecut.sources");
    assert!(e.contains("geometry"), "{e}");
    let e = refused(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), CIRCLE(1, 2, -3)) = 1",
    );
    assert!(e.contains("radius"), "{e}");
    let e = refused("SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), mag_auto) = 1");
    assert!(e.contains("not a geometry"), "{e}");
}

#[test]
fn polygons_must_be_convex_and_simple() {
    ok(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), POLYGON(10, 10, 11, 10, 11, 11, 10, 11)) = 1",
        LITE,
    );
    // The other winding, and POINT vertices.
    ok(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), POLYGON('ICRS', POINT(10, 11), POINT(11, 11), POINT(11, 10), POINT(10, 10))) = 1",
        LITE,
    );
    let bow_tie = refused(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), POLYGON(10, 10, 11, 11, 11, 10, 10, 11)) = 1",
    );
    assert!(
        bow_tie.contains("bow-tie") || bow_tie.contains("not convex"),
        "{bow_tie}"
    );
    let concave = refused(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), POLYGON(10, 10, 12, 10, 11, 10.5, 12, 12, 10, 12)) = 1",
    );
    assert!(concave.contains("not convex"), "{concave}");
    let e = refused(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), POLYGON(10, 10, 11, 10, 11)) = 1",
    );
    assert!(e.contains("pairs"), "{e}");
    let e = refused(
        "SELECT ra FROM wisecut.sources WHERE CONTAINS(POINT(ra, dec), POLYGON(10, 10, ra, 10, 11, 11)) = 1",
    );
    assert!(e.contains("constant"), "{e}");
}

#[test]
fn region_predicates_use_the_footprint_helpers() {
    let t = ok(
        "SELECT obs_publisher_did, s_region FROM ivoa.ObsCore WHERE INTERSECTS(s_region, CIRCLE(150.1, 2.2, 0.05)) = 1",
        PG,
    );
    assert!(t.sql.contains("t0.dec_max >= $"), "{}", t.sql);
    assert!(t.sql.contains("t0.n1x"), "{}", t.sql);
    // TAP answers the region as an ADQL REGION (STC-S text).
    assert_eq!(t.fields[1].xtype.as_deref(), Some("adql:REGION"));
    assert_eq!(t.kinds[1], ColumnKind::Text);
    ok(
        "SELECT obs_id FROM ivoa.ObsCore WHERE INTERSECTS(POLYGON(150, 2, 150.2, 2, 150.2, 2.2), s_region) = 1",
        LITE,
    );
    ok(
        "SELECT obs_id FROM ivoa.ObsCore WHERE CONTAINS(POINT(150.1, 2.2), s_region) = 1",
        LITE,
    );
    let e =
        refused("SELECT obs_id FROM ivoa.ObsCore WHERE CONTAINS(s_region, CIRCLE(1, 2, 3)) = 1");
    assert!(e.contains("not supported"), "{e}");
}

#[test]
fn distance_uses_haversine_with_the_backends_minimum() {
    let pg = ok(
        "SELECT DISTANCE(POINT(ra, dec), POINT(150, 2)) AS d FROM wisecut.sources",
        PG,
    );
    assert!(pg.sql.contains("LEAST(1.0"), "{}", pg.sql);
    let lite = ok(
        "SELECT DISTANCE(ra, dec, 150, 2), COORD1(POINT(ra, dec)) FROM wisecut.sources",
        LITE,
    );
    assert!(lite.sql.contains("MIN(1.0"), "{}", lite.sql);
    assert_eq!(lite.kinds, vec![ColumnKind::Float, ColumnKind::Float]);
}

#[test]
fn lineage_join_and_tap_schema_translate() {
    let t = ok(
        "SELECT o.obs_publisher_did, d.role FROM ivoa.obscore o JOIN wisecut.dependency d ON d.parent_id = o.frame_id WHERE d.child_id = 123",
        PG,
    );
    assert!(
        t.sql
            .contains("FROM obscore AS t0 JOIN dependency AS t1 ON (t1.parent_id = t0.frame_id)"),
        "{}",
        t.sql
    );
    let t = ok(
        "SELECT column_name, datatype FROM TAP_SCHEMA.columns WHERE table_name = 'ivoa.ObsCore' ORDER BY column_index",
        PG,
    );
    assert!(t.sql.contains("UNION ALL"), "{}", t.sql);
    assert!(t.values.len() > 100);
}

#[test]
fn upload_tables_join_published_ones() {
    let up = upload_table(
        "mine",
        vec![
            TapColumn::new("id", ColumnKind::Int, ""),
            TapColumn::new("ra", ColumnKind::Float, ""),
            TapColumn::new("dec", ColumnKind::Float, ""),
        ],
    );
    let mut tables = published();
    tables.push(up);
    let t = translate(
        "SELECT u.id, s.slid, s.sid FROM TAP_UPLOAD.mine u JOIN wisecut.sources s ON CONTAINS(POINT(s.ra, s.dec), CIRCLE(u.ra, u.dec, 0.001)) = 1",
        &tables,
        LITE,
        10,
    )
    .unwrap();
    assert!(t.sql.contains("tap_upload_mine AS t0"), "{}", t.sql);
    assert!(t.sql.contains("t0.c1"), "{}", t.sql);
}

#[test]
fn deep_nesting_is_refused_not_a_crash() {
    let q = format!(
        "SELECT ra FROM wisecut.sources WHERE {}ra > 1{}",
        "(".repeat(500),
        ")".repeat(500)
    );
    let e = refused(&q);
    assert!(e.contains("nested too deeply"), "{e}");
}
