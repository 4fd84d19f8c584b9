//! Associations: the same object found in several source lists.
//!
//! The sample survey carries one associate list of each rule wisecut
//! stores, so that the ingest and the association pages meet both: across
//! epochs, the reduced frames of one filter are linked friends-of-friends
//! (the "chain" rule), and across filters the coadds' sources are matched
//! one to one (the "matched" rule: an association has a member in every
//! list).

use super::Run;
use super::coadding::Coadd;
use super::fits_output::create_parent;
use super::lineage_records::{Lineage, processing};
use super::observing_run::DEC0;
use super::reduction::ScienceFrames;
use super::regridding::SkyGrid;
use crate::imaging::fits::{self, Column, ColumnData};
use crate::sample::SampleError;
use crate::sample::sky_simulator::BANDS;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How close two detections must be to be one object, arcsec.
const RADIUS: f64 = 1.0;

/// One row of an associate list: (AID, member list index, SID, FLAG).
type Row = (i64, i64, i64, i32);

/// Chains the source lists of the reduced frames of each filter across
/// epochs.
pub(super) fn associate_epochs(
    run: &Run,
    science: &ScienceFrames<'_>,
    lineage: &mut Lineage,
) -> Result<(), SampleError> {
    for band in 0..3 {
        let lists: Vec<(String, Vec<(f64, f64)>)> = science
            .iter()
            .filter(|(s, _, _)| s.exp.band == band)
            .map(|(s, r, _)| {
                let pos = r
                    .dets
                    .iter()
                    .map(|d| r.wcs.pix_to_sky(d.x, d.y).unwrap_or((f64::NAN, f64::NAN)))
                    .collect();
                (format!("sl_red_{}", s.name()), pos)
            })
            .collect();
        let rows = associate_chain(&lists, RADIUS);
        let key = format!("al_epochs_{}", BANDS[band]);
        write_associations(run, &key, &rows)?;
        lineage.associate_list(
            &key,
            format!("Epoch associations, {} band", BANDS[band]),
            "chain",
            lists.into_iter().map(|l| l.0).collect(),
            processing(6000 + band),
        );
    }
    Ok(())
}

/// Matches the source lists of the three coadds across filters.
pub(super) fn associate_filters(
    run: &Run,
    coadds: &[Coadd],
    grid: &SkyGrid,
    lineage: &mut Lineage,
) -> Result<(), SampleError> {
    let coadd_pos: Vec<Vec<(f64, f64)>> = coadds
        .iter()
        .map(|c| {
            c.dets
                .iter()
                .map(|d| {
                    grid.wcs
                        .pix_to_sky(d.x, d.y)
                        .unwrap_or((f64::NAN, f64::NAN))
                })
                .collect()
        })
        .collect();
    let rows = associate_matched(&coadd_pos, RADIUS);
    write_associations(run, "al_filters", &rows)?;
    lineage.associate_list(
        "al_filters",
        "Colour associations g, r, i (coadds)".into(),
        "matched",
        (0..3).map(|b| format!("sl_coadd_{}", BANDS[b])).collect(),
        processing(6100),
    );
    Ok(())
}

/// Positions hashed into cells of the match radius, so that the
/// candidates for a match are those of the 3 × 3 cells around a position.
struct SkyHash {
    radius: f64,
    cells: HashMap<(i64, i64), Vec<usize>>,
}

impl SkyHash {
    fn new(radius: f64) -> Self {
        SkyHash {
            radius,
            cells: HashMap::new(),
        }
    }

    fn insert(&mut self, p: (f64, f64), item: usize) {
        self.cells
            .entry(cell(p.0, p.1, self.radius))
            .or_default()
            .push(item);
    }

    /// The items of the cells around `p`, in a fixed order.
    fn near(&self, p: (f64, f64)) -> impl Iterator<Item = usize> + '_ {
        let (cx, cy) = cell(p.0, p.1, self.radius);
        (-1..=1)
            .flat_map(move |dx| (-1..=1).map(move |dy| (cx + dx, cy + dy)))
            .flat_map(|c| self.cells.get(&c).map(Vec::as_slice).unwrap_or(&[]))
            .copied()
    }
}

/// Spatial hash of positions in cells of `radius` arcsec.
fn cell(ra: f64, dec: f64, radius: f64) -> (i64, i64) {
    let s = radius / 3600.0;
    (
        (ra * DEC0.to_radians().cos() / s).floor() as i64,
        (dec / s).floor() as i64,
    )
}

fn sep_arcsec(a: (f64, f64), b: (f64, f64)) -> f64 {
    let dra = (a.0 - b.0) * a.1.to_radians().cos();
    (dra.hypot(a.1 - b.1)) * 3600.0
}

/// Friends-of-friends across all lists: detections within `radius` of each
/// other, in any two lists, are one association (the "chain" rule). Rows are
/// (AID, member index, SID, FLAG); single detections are not associations.
fn associate_chain(lists: &[(String, Vec<(f64, f64)>)], radius: f64) -> Vec<Row> {
    let mut items = Vec::new();
    for (m, (_, pos)) in lists.iter().enumerate() {
        for (i, p) in pos.iter().enumerate() {
            if p.0.is_finite() {
                items.push((m, i, *p));
            }
        }
    }
    let mut parent: Vec<usize> = (0..items.len()).collect();
    fn find(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    let mut hash = SkyHash::new(radius);
    for (k, it) in items.iter().enumerate() {
        hash.insert(it.2, k);
    }
    for (k, it) in items.iter().enumerate() {
        for j in hash.near(it.2) {
            if j > k && items[j].0 != it.0 && sep_arcsec(it.2, items[j].2) < radius {
                let (a, b) = (find(&mut parent, k), find(&mut parent, j));
                if a != b {
                    parent[a.max(b)] = a.min(b);
                }
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for k in 0..items.len() {
        let r = find(&mut parent, k);
        groups.entry(r).or_default().push(k);
    }
    let mut rows = Vec::new();
    let mut aid = 0;
    for (_, members) in groups {
        if members.len() < 2 {
            continue;
        }
        aid += 1;
        // More than one detection from the same list means a blend merged
        // two chains: keep it, but flag it.
        let mut lists_seen = HashSet::new();
        let flag = i32::from(!members.iter().all(|&k| lists_seen.insert(items[k].0)));
        for k in members {
            rows.push((aid, items[k].0 as i64, items[k].1 as i64 + 1, flag));
        }
    }
    rows
}

/// Associations with a member in every list: the nearest neighbour in
/// every other list of each source of `lists[1]` (the r band of the
/// survey), the "matched" rule.
fn associate_matched(lists: &[Vec<(f64, f64)>], radius: f64) -> Vec<Row> {
    let hashes: Vec<SkyHash> = lists
        .iter()
        .map(|pos| {
            let mut h = SkyHash::new(radius);
            for (i, p) in pos.iter().enumerate() {
                if p.0.is_finite() {
                    h.insert(*p, i);
                }
            }
            h
        })
        .collect();
    let mut rows = Vec::new();
    let mut aid = 0;
    for (i, &p) in lists[1].iter().enumerate() {
        if !p.0.is_finite() {
            continue;
        }
        let mut members = vec![(1usize, i)];
        for (m, pos) in lists.iter().enumerate() {
            if m == 1 {
                continue;
            }
            let mut best: Option<(f64, usize)> = None;
            for j in hashes[m].near(p) {
                let d = sep_arcsec(p, pos[j]);
                if d < radius && best.is_none_or(|b| d < b.0) {
                    best = Some((d, j));
                }
            }
            match best {
                Some((_, j)) => members.push((m, j)),
                None => break,
            }
        }
        if members.len() == lists.len() {
            aid += 1;
            members.sort();
            for (m, j) in members {
                rows.push((aid, m as i64, j as i64 + 1, 0));
            }
        }
    }
    rows
}

/// Writes the associate list `cat/{key}.fits`.
fn write_associations(run: &Run, key: &str, rows: &[Row]) -> Result<(), SampleError> {
    let aid: Vec<i64> = rows.iter().map(|r| r.0).collect();
    let member: Vec<i64> = rows.iter().map(|r| r.1).collect();
    let sid: Vec<i64> = rows.iter().map(|r| r.2).collect();
    let flag: Vec<i32> = rows.iter().map(|r| r.3).collect();
    let cols = [
        Column::new("AID", "", ColumnData::I64(&aid)),
        Column::new("MEMBER", "", ColumnData::I64(&member)),
        Column::new("SID", "", ColumnData::I64(&sid)),
        Column::new("FLAG", "", ColumnData::I32(&flag)),
    ];
    let path = run.dir.join(format!("cat/{key}.fits"));
    create_parent(&path)?;
    fits::write_table(&path, "ASSOCIATIONS", &cols, &[])?;
    run.tick("associate lists");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_association_links_detections_across_lists_only() {
        let a = ("a".to_string(), vec![(150.0, 2.0), (150.01, 2.0)]);
        let b = ("b".to_string(), vec![(150.0 + 0.3 / 3600.0, 2.0)]);
        let rows = associate_chain(&[a, b], 1.0);
        // One association of two members; the lone source is not associated.
        assert_eq!(rows, vec![(1, 0, 1, 0), (1, 1, 1, 0)]);
    }
}
