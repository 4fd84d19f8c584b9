//! The sky index of frames (`frame_cell`): a frame's footprint as the
//! HEALPix nested cells at [`DEPTH`] it touches. A position or region query
//! turns its own area into cells at the same depth and reads only frames that
//! share one, through the `(cell, frame_id)` primary key, on SQLite and
//! PostgreSQL alike; the exact test (the frame's WCS) then runs on those
//! candidates only.
//!
//! Depth 8 cells are about 0.23° across: a typical CCD frame (0.1–0.5°)
//! touches 1–16 of them, a 2° coadd about 100, so a million frames make
//! some ten million small rows, and a point query is one index probe.
//!
//! The index is derived data with one writer per path: [`Catalog::index_frames`]
//! runs inside the ingest transaction (and the large-survey loader writes the
//! same rows by COPY); [`Catalog::backfill_sky_index`] fills frames that
//! have none when a catalogue is opened (a database from before the index).
//! `catalog_state.frames`, the frame table's generation, is bumped in the
//! same transactions, so a server's cached coverage MOC notices another
//! server's ingest.

use std::collections::BTreeSet;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Value};

use super::{Catalog, CatalogError, entity};
use crate::model::{Frame, FrameClass};

/// HEALPix depth of `frame_cell.cell`.
pub const DEPTH: u8 = 8;

/// The most cells a query region may turn into before the index stops
/// paying (an all-sky query reads every frame anyway).
pub const MAX_QUERY_CELLS: usize = 20_000;

/// The cells at [`DEPTH`] a footprint polygon (corners in degrees, in
/// order) touches, sorted and unique. The polygon coverage is approximate
/// in the safe direction (it may add a neighbour cell, never miss one); the
/// corners' own cells are added so a degenerate polygon still has cells.
pub fn footprint_cells(corners: &[(f64, f64)]) -> Vec<i64> {
    let rad: Vec<(f64, f64)> = corners
        .iter()
        .filter(|(ra, dec)| ra.is_finite() && dec.is_finite())
        .map(|&(ra, dec)| {
            (
                ra.rem_euclid(360.0).to_radians(),
                dec.clamp(-90.0, 90.0).to_radians(),
            )
        })
        .collect();
    let mut cells: Vec<i64> = rad
        .iter()
        .map(|&(lon, lat)| cdshealpix::nested::hash(DEPTH, lon, lat) as i64)
        .collect();
    if rad.len() >= 3 {
        let bmoc = cdshealpix::nested::polygon_coverage(DEPTH, &rad, true);
        cells.extend(bmoc.flat_iter().map(|c| c as i64));
    }
    cells.sort_unstable();
    cells.dedup();
    cells
}

/// The cells at [`DEPTH`] a query polygon (vertices in degrees) touches,
/// or `None` when there would be more than [`MAX_QUERY_CELLS`].
pub fn polygon_cells(vertices: &[(f64, f64)]) -> Option<Vec<i64>> {
    let rad: Vec<(f64, f64)> = vertices
        .iter()
        .map(|&(ra, dec)| (ra.rem_euclid(360.0).to_radians(), dec.to_radians()))
        .collect();
    let bmoc = cdshealpix::nested::polygon_coverage(DEPTH, &rad, true);
    if bmoc.deep_size() > MAX_QUERY_CELLS {
        return None;
    }
    let mut cells: Vec<i64> = bmoc.flat_iter().map(|c| c as i64).collect();
    // The vertices' own cells: a sliver polygon may cover no cell centre.
    cells.extend(vertices.iter().map(|&(ra, dec)| point_cell(ra, dec)));
    cells.sort_unstable();
    cells.dedup();
    Some(cells)
}

/// The cells at [`DEPTH`] an RA/Dec box (degrees; `ra1 > ra2` wraps through
/// RA = 0) touches, or `None` when there would be more than
/// [`MAX_QUERY_CELLS`].
pub fn range_cells(ra1: f64, ra2: f64, dec1: f64, dec2: f64) -> Option<Vec<i64>> {
    let (lat1, lat2) = (
        dec1.clamp(-90.0, 90.0).to_radians(),
        dec2.clamp(-90.0, 90.0).to_radians(),
    );
    let zone = |lo: f64, hi: f64| {
        cdshealpix::nested::zone_coverage(DEPTH, lo.to_radians(), lat1, hi.to_radians(), lat2)
    };
    let (a, b) = (ra1.rem_euclid(360.0), ra2.rem_euclid(360.0));
    let parts = if ra2 - ra1 >= 360.0 {
        vec![zone(0.0, 360.0)]
    } else if a <= b {
        vec![zone(a, b)]
    } else {
        vec![zone(a, 360.0), zone(0.0, b)]
    };
    if parts.iter().map(|m| m.deep_size()).sum::<usize>() > MAX_QUERY_CELLS {
        return None;
    }
    let mut cells: Vec<i64> = parts
        .iter()
        .flat_map(|m| m.flat_iter().map(|c| c as i64))
        .collect();
    cells.sort_unstable();
    cells.dedup();
    Some(cells)
}

/// The cell at [`DEPTH`] that holds a position (degrees).
pub fn point_cell(ra: f64, dec: f64) -> i64 {
    cdshealpix::nested::hash(
        DEPTH,
        ra.rem_euclid(360.0).to_radians(),
        dec.clamp(-90.0, 90.0).to_radians(),
    ) as i64
}

/// The cells at [`DEPTH`] a cone (degrees) touches, or `None` when there
/// would be more than [`MAX_QUERY_CELLS`] (use no index then).
pub fn cone_cells(ra: f64, dec: f64, radius_deg: f64) -> Option<Vec<i64>> {
    let r = radius_deg.max(0.0).to_radians();
    if r >= std::f64::consts::PI {
        return None;
    }
    let lon = ra.rem_euclid(360.0).to_radians();
    let lat = dec.clamp(-90.0, 90.0).to_radians();
    let mut cells: Vec<i64> = if r == 0.0 {
        vec![cdshealpix::nested::hash(DEPTH, lon, lat) as i64]
    } else {
        let bmoc = cdshealpix::nested::cone_coverage_approx(DEPTH, lon, lat, r);
        if bmoc.deep_size() > MAX_QUERY_CELLS {
            return None;
        }
        bmoc.flat_iter().map(|c| c as i64).collect()
    };
    cells.sort_unstable();
    cells.dedup();
    Some(cells)
}

/// One frame's footprint, as coverage MOCs read it.
#[derive(Debug, Clone)]
pub struct FrameFootprint {
    /// The frame.
    pub object_id: i64,
    /// Its class name.
    pub class: String,
    /// Its filter.
    pub filter: Option<String>,
    /// Its corners, degrees (empty when the record is unreadable).
    pub corners: Vec<(f64, f64)>,
}

/// Rows per multi-row insert: two bound values each, far below SQLite's
/// 32766-parameter limit.
const CELL_ROWS_PER_INSERT: usize = 2000;

/// A frame's recorded footprint (`frame.footprint`, JSON `[[ra, dec], …]`)
/// as corners, or `None` when it is absent or unreadable.
fn parse_footprint(json: &str) -> Option<Vec<(f64, f64)>> {
    serde_json::from_str::<Vec<(f64, f64)>>(json).ok()
}

impl Catalog {
    /// Writes the cells of frames (object id, footprint corners) on `conn`,
    /// normally the ingest transaction. Returns the number of rows.
    pub(crate) async fn index_frames(
        conn: &impl ConnectionTrait,
        frames: &[(i64, Vec<(f64, f64)>)],
    ) -> Result<usize, CatalogError> {
        let mut rows: Vec<(i64, i64)> = Vec::new();
        for (id, corners) in frames {
            rows.extend(footprint_cells(corners).into_iter().map(|c| (c, *id)));
        }
        let b = conn.get_database_backend();
        for chunk in rows.chunks(CELL_ROWS_PER_INSERT) {
            let mut sql = String::from("INSERT INTO frame_cell (cell, frame_id) VALUES ");
            let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 2);
            for (i, (cell, id)) in chunk.iter().enumerate() {
                if i > 0 {
                    sql.push(',');
                }
                sql.push_str(&format!("(${}, ${})", 2 * i + 1, 2 * i + 2));
                values.push((*cell).into());
                values.push((*id).into());
            }
            conn.execute_raw(Catalog::stmt(b, &sql, values)).await?;
        }
        Ok(rows.len())
    }

    /// Bumps the `catalog_state` counter `name` (`frames` or `visibility`),
    /// inside the writer's transaction.
    pub(crate) async fn bump_state(
        conn: &impl ConnectionTrait,
        name: &'static str,
    ) -> Result<(), CatalogError> {
        let b = conn.get_database_backend();
        conn.execute_raw(Catalog::stmt(
            b,
            "UPDATE catalog_state SET value = value + 1 WHERE name = $1",
            vec![name.into()],
        ))
        .await?;
        Ok(())
    }

    /// The catalogue's generations `(frames, visibility)`: the first changes
    /// whenever frames are added, the second whenever who may see what
    /// changes, on whichever server did it.
    pub async fn generations(&self) -> Result<(i64, i64), CatalogError> {
        let rows = self
            .db()
            .query_all_raw(Catalog::stmt(
                self.backend(),
                "SELECT name, value FROM catalog_state",
                vec![],
            ))
            .await?;
        let (mut frames, mut visibility) = (0, 0);
        for r in rows {
            match r.try_get::<String>("", "name")?.as_str() {
                "frames" => frames = r.try_get("", "value")?,
                "visibility" => visibility = r.try_get("", "value")?,
                _ => {}
            }
        }
        Ok((frames, visibility))
    }

    /// Footprints of visible frames of `classes` (and `filter`, when given)
    /// with object id above `after`, ascending, at most `limit`: the input
    /// of coverage MOCs, read in pages so memory stays bounded.
    pub async fn footprints_page(
        &self,
        classes: &[FrameClass],
        filter: Option<&str>,
        after: i64,
        limit: u64,
    ) -> Result<Vec<FrameFootprint>, CatalogError> {
        let names: Vec<String> = classes.iter().map(|c| format!("'{}'", c.name())).collect();
        let mut values: Vec<Value> = vec![after.into(), (limit as i64).into()];
        let filter_sql = match filter {
            Some(f) => {
                values.push(f.into());
                " AND f.filter = $3"
            }
            None => "",
        };
        // Class names come from the closed `FrameClass` list, never from
        // the request, so they may be written into the SQL.
        let sql = format!(
            "SELECT f.object_id, f.frame_class, f.filter, f.footprint FROM frame f \
             JOIN process_target t ON t.object_id = f.object_id \
             WHERE f.object_id > $1 AND f.footprint IS NOT NULL AND f.frame_class IN ({}) \
             AND {}{filter_sql} ORDER BY f.object_id LIMIT $2",
            names.join(","),
            self.visible("t"),
        );
        let rows = self
            .db()
            .query_all_raw(Catalog::stmt(self.backend(), &sql, values))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let fp: String = r.try_get("", "footprint")?;
            out.push(FrameFootprint {
                object_id: r.try_get("", "object_id")?,
                class: r.try_get("", "frame_class")?,
                filter: r.try_get("", "filter")?,
                corners: parse_footprint(&fp).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Indexes every frame with a footprint and no cells (a catalogue from
    /// before the index, or frames written by a tool that left them out), in
    /// batches, each its own transaction. Returns how many frames it
    /// indexed. On a complete index this is one anti-join that finds nothing.
    pub async fn backfill_sky_index(&self) -> Result<usize, CatalogError> {
        const BATCH: i64 = 5000;
        let b = self.backend();
        let mut done = 0;
        loop {
            let rows = self
                .db()
                .query_all_raw(Catalog::stmt(
                    b,
                    "SELECT f.object_id, f.footprint FROM frame f \
                     WHERE f.footprint IS NOT NULL AND NOT EXISTS \
                     (SELECT 1 FROM frame_cell c WHERE c.frame_id = f.object_id) \
                     ORDER BY f.object_id LIMIT $1",
                    vec![BATCH.into()],
                ))
                .await?;
            let n = rows.len();
            let mut frames = Vec::with_capacity(n);
            for r in rows {
                let id: i64 = r.try_get("", "object_id")?;
                let fp: String = r.try_get("", "footprint")?;
                // A footprint that cannot be read or maps to no cell would be
                // found again by every later pass: a frame without cells is
                // one no position query can find, which is what its missing
                // geometry means anyway.
                match parse_footprint(&fp).filter(|c| !footprint_cells(c).is_empty()) {
                    Some(corners) => frames.push((id, corners)),
                    None => {
                        tracing::warn!(frame = id, "footprint unreadable; not in the sky index")
                    }
                }
            }
            if frames.is_empty() {
                return Ok(done);
            }
            let txn = sea_orm::TransactionTrait::begin(self.db()).await?;
            Self::index_frames(&txn, &frames).await?;
            txn.commit().await?;
            done += frames.len();
            if (n as i64) < BATCH {
                return Ok(done);
            }
        }
    }

    /// Ids of the frames whose cells include any of `cells`, ascending.
    pub async fn frame_ids_in_cells(&self, cells: &[i64]) -> Result<Vec<i64>, CatalogError> {
        let mut ids = BTreeSet::new();
        for chunk in cells.chunks(1000) {
            let rows = entity::frame_cell::Entity::find()
                .filter(entity::frame_cell::Column::Cell.is_in(chunk.iter().copied()))
                .all(self.db())
                .await?;
            ids.extend(rows.into_iter().map(|r| r.frame_id));
        }
        Ok(ids.into_iter().collect())
    }

    /// The frames of `classes` (all when empty) that share a cell with
    /// `cells`, visible to this catalogue's viewer, ordered by object id
    /// (the candidates of a position query), keeping those `keep` accepts
    /// and stopping once more than `limit` are kept: a query answered up
    /// to MAXREC rows reads candidates in growing pages and stops early,
    /// so its memory and time follow MAXREC, not how deep the field is.
    pub async fn frames_in_cells_until(
        &self,
        cells: &[i64],
        classes: &[FrameClass],
        keep: impl Fn(&Frame) -> bool,
        limit: usize,
    ) -> Result<Vec<Frame>, CatalogError> {
        let ids = self.frame_ids_in_cells(cells).await?;
        let mut kept = Vec::new();
        // Pages start near what the answer needs (twice `limit`, at least
        // 64) and double up to 1000: a MAXREC=10 query on a deep field
        // reads tens of candidate rows, not a thousand.
        let mut page = limit.saturating_add(1).saturating_mul(2).clamp(64, 1000);
        let mut rest = &ids[..];
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(page.min(rest.len()));
            rest = tail;
            page = (page * 2).min(1000);
            let mut frames = Vec::new();
            let mut q = entity::frame::Entity::find()
                .filter(entity::frame::Column::ObjectId.is_in(chunk.iter().copied()));
            if !classes.is_empty() {
                q = q.filter(
                    entity::frame::Column::FrameClass.is_in(classes.iter().map(|c| c.name())),
                );
            }
            frames.extend(q.all(self.db()).await?);
            kept.extend(self.with_targets(frames).await?.into_iter().filter(&keep));
            if kept.len() > limit {
                break;
            }
        }
        // At most one more than asked: enough to tell the caller it
        // overflowed.
        kept.truncate(limit.saturating_add(1));
        Ok(kept)
    }

    /// A key that is equal for two catalogues exactly when their viewers
    /// see the same rows: the visibility condition itself.
    pub fn visibility_key(&self) -> String {
        self.visible("t")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_inside_a_footprint_shares_a_cell_with_it() {
        let corners = [(10.0, 20.0), (10.4, 20.0), (10.4, 20.3), (10.0, 20.3)];
        let cells = footprint_cells(&corners);
        assert!(cells.len() >= 2 && cells.len() < 40, "{}", cells.len());
        let inside = cone_cells(10.2, 20.15, 0.0).unwrap();
        assert!(inside.iter().all(|c| cells.binary_search(c).is_ok()));
        let far = cone_cells(40.0, -20.0, 0.0).unwrap();
        assert!(far.iter().all(|c| cells.binary_search(c).is_err()));
    }

    #[test]
    fn query_shapes_reach_the_cells_of_a_frame_inside_them() {
        let frame = footprint_cells(&[(359.9, 1.0), (0.1, 1.0), (0.1, 1.2), (359.9, 1.2)]);
        let hits = |q: &[i64]| q.iter().any(|c| frame.binary_search(c).is_ok());
        // A box across RA = 0, given both ways a client may write it.
        assert!(hits(&range_cells(359.0, 1.0, 0.5, 1.5).unwrap()));
        assert!(hits(&range_cells(-1.0, 1.0, 0.5, 1.5).unwrap()));
        assert!(!hits(&range_cells(10.0, 20.0, 0.5, 1.5).unwrap()));
        let tri = polygon_cells(&[(359.5, 0.8), (0.5, 0.8), (0.0, 1.6)]).unwrap();
        assert!(hits(&tri));
        assert!(range_cells(0.0, 360.0, -90.0, 90.0).is_none());
    }

    #[test]
    fn a_huge_cone_asks_for_no_index() {
        assert!(cone_cells(0.0, 0.0, 120.0).is_none());
        assert!(cone_cells(0.0, 0.0, 1.0).is_some());
    }
}
