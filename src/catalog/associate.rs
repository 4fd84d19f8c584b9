//! Associations: SourceLists matched by position into an AssociateList.
//!
//! The matcher ([`match_lists`]) is pure and synchronous; [`Catalog::associate`]
//! reads the members' sources, runs it on a blocking thread and writes the
//! new AssociateList in one transaction.
//!
//! ## The rules
//! Everything is built from one primitive, the *pairing* of two lists:
//! every pair of sources (one from each list) closer than or exactly at the
//! search radius is a candidate, and candidates are accepted nearest first,
//! one to one — a source already paired is not paired again (the
//! "symmetric best match" of TOPCAT). Equal separations are taken in input
//! order: the pair whose source in the first list comes first, then the one
//! whose source in the second list comes first; [`Catalog::associate`]
//! passes sources ordered by SID, so the lower SID wins a tie. A source
//! whose only candidates were all taken by closer pairs stays unpaired.
//!
//! * **chain** ([`AssocType::Chain`]): list 1 is paired with list 2, list 2
//!   with list 3, …; an association is a maximal run of paired sources
//!   through consecutive lists. It may miss lists, and an object missing
//!   from one list breaks its chain there (lists that are not neighbours
//!   are never compared).
//! * **master** ([`AssocType::Master`]): every other list is paired with the
//!   first; an association is a source of the first list with its partners.
//!   Sources of other lists without a partner in the first are left out.
//! * **matched** ([`AssocType::Matched`]): the master associations that have
//!   a member in every list.
//!
//! A source belongs to at most one association, and an association has at
//! most one member per list; a lone source is not an association.
//!
//! ## FLAG
//! The `association.flag` column says whether the matching had a choice to
//! make, as the sample survey's chains do (1 when a blend gave a chain two
//! detections of one list): [`flag::CLEAN`] (0) when every pairing inside
//! the association had exactly one candidate on both sides, and
//! [`flag::AMBIGUOUS`] (1) when a member had another source within the
//! radius in a list it was paired with (the nearest was taken). The flag is
//! the association's, written on each of its members.
//!
//! ## The spatial index
//! Each list is sorted by HEALPix cell at the depth whose cells are wider
//! than the radius (`cdshealpix::best_starting_depth`): everything within
//! the radius of a source lies in its cell or the cell's neighbours, so a
//! source is compared only with those cells' members, not with every
//! source. Separations are exact ([`sphere::separation_deg`]), and HEALPix
//! has no seam at RA = 0/360 nor a singularity at the poles.
//!
//! ## Memory
//! Every position of every member list is held while matching (a match is
//! certain only once all candidates are known): about 24 bytes a source
//! plus 12 for the index. Candidate pairs are bounded by
//! [`MAX_CANDIDATES`]: a radius so large for the lists' density that more
//! pairs fall within it is refused rather than allowed to fill memory.

use super::{Catalog, CatalogError, entity};
use crate::ids::{Alid, ObjectId, Slid};
use crate::imaging::sphere;
use crate::model::{ASSOCIATE_LIST_CLASS, AssocType, privileges, process_status};
use rayon::prelude::*;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};
use serde::Serialize;
use std::collections::HashSet;

/// The largest search radius, arcsec: one degree is already far beyond any
/// positional match and keeps the index cells small enough to be useful.
pub const MAX_RADIUS_ARCSEC: f64 = 3600.0;

/// Values of `association.flag`.
pub mod flag {
    /// Every pairing of the association had a single candidate.
    pub const CLEAN: i32 = 0;
    /// Some member had another candidate within the radius; the nearest won.
    pub const AMBIGUOUS: i32 = 1;
}

/// A source to match: its SID and position in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Position {
    /// SID within its list.
    pub sid: i64,
    /// RA, degrees.
    pub ra: f64,
    /// Dec, degrees.
    pub dec: f64,
}

/// One member of an association: (AID, index of its list, SID, FLAG).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Member {
    /// Association id, from 1, in order of the association's first member.
    pub aid: i64,
    /// Index of the member's list in the input.
    pub list: usize,
    /// SID of the member.
    pub sid: i64,
    /// [`flag`] of the association.
    pub flag: i32,
}

/// Checks a search radius: finite, above 0, at most [`MAX_RADIUS_ARCSEC`].
pub fn check_radius(radius_arcsec: f64) -> Result<(), CatalogError> {
    if radius_arcsec.is_finite() && radius_arcsec > 0.0 && radius_arcsec <= MAX_RADIUS_ARCSEC {
        Ok(())
    } else {
        Err(CatalogError::Query(format!(
            "radius: {radius_arcsec} arcsec is not allowed: give a search radius in arcsec \
             greater than 0 and at most {MAX_RADIUS_ARCSEC}"
        )))
    }
}

/// Sources of one list ordered by HEALPix cell, so a cell's members are a
/// contiguous run found by binary search.
struct CellIndex {
    depth: u8,
    /// (cell, index into the list), sorted.
    cells: Vec<(u64, u32)>,
}

/// Whether a position can be matched at all (finite, Dec within ±90°).
fn usable(p: &Position) -> bool {
    p.ra.is_finite() && p.dec.is_finite() && (-90.0..=90.0).contains(&p.dec)
}

fn cell_of(depth: u8, p: &Position) -> u64 {
    cdshealpix::nested::hash(depth, p.ra.to_radians(), p.dec.to_radians())
}

impl CellIndex {
    fn new(depth: u8, list: &[Position]) -> Self {
        let mut cells: Vec<(u64, u32)> = list
            .iter()
            .enumerate()
            .filter(|(_, p)| usable(p))
            .map(|(i, p)| (cell_of(depth, p), i as u32))
            .collect();
        cells.par_sort_unstable();
        Self { depth, cells }
    }

    /// Indices of the sources in `p`'s cell and its neighbours: a superset
    /// of those within the radius the depth was chosen for.
    fn near(&self, p: &Position, out: &mut Vec<u32>) {
        out.clear();
        let centre = cell_of(self.depth, p);
        for cell in cdshealpix::nested::neighbours(self.depth, centre, true).values_vec() {
            let start = self.cells.partition_point(|&(c, _)| c < cell);
            out.extend(
                self.cells[start..]
                    .iter()
                    .take_while(|&&(c, _)| c == cell)
                    .map(|&(_, i)| i),
            );
        }
    }
}

/// The index depth for a radius: the shallowest whose cells are wider than
/// it, so that the cell and its 8 (or 7) neighbours hold every source within
/// the radius.
fn depth_for(radius_deg: f64) -> u8 {
    cdshealpix::best_starting_depth(radius_deg.to_radians())
}

/// The one-to-one pairing of two lists (indices into each).
struct Pairing {
    /// Partner in `b` of each source of `a`, with the pair's ambiguity.
    a_to_b: Vec<Option<(u32, bool)>>,
    /// Whether each source of `b` has a partner in `a`.
    b_taken: Vec<bool>,
}

/// Candidate pairs one pairing may hold (16 bytes each): beyond this the
/// radius is too large for the lists' density to mean a positional match,
/// and memory would grow with the square of the radius.
pub const MAX_CANDIDATES: usize = 10_000_000;

fn pair(
    a: &[Position],
    b: &[Position],
    b_index: &CellIndex,
    radius_deg: f64,
    max_candidates: usize,
) -> Result<Pairing, CatalogError> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let total = AtomicUsize::new(0);
    // Candidates (separation, i in a, j in b), found in parallel; once the
    // count passes the bound the remaining sources are skipped.
    let mut candidates: Vec<(f64, u32, u32)> = a
        .par_iter()
        .enumerate()
        .filter(|(_, p)| usable(p))
        .fold(
            || (Vec::new(), Vec::new()),
            |(mut found, mut near), (i, p)| {
                if total.load(Ordering::Relaxed) > max_candidates {
                    return (found, near);
                }
                let before = found.len();
                b_index.near(p, &mut near);
                for &j in near.iter() {
                    let q = &b[j as usize];
                    let d = sphere::separation_deg(p.ra, p.dec, q.ra, q.dec);
                    if d <= radius_deg {
                        found.push((d, i as u32, j));
                    }
                }
                total.fetch_add(found.len() - before, Ordering::Relaxed);
                (found, near)
            },
        )
        .map(|(found, _)| found)
        .reduce(Vec::new, |mut x, mut y| {
            x.append(&mut y);
            x
        });
    if candidates.len() > max_candidates {
        return Err(CatalogError::Query(format!(
            "radius: more than {max_candidates} pairs of sources lie within {} arcsec of \
             each other; give a smaller radius",
            radius_deg * 3600.0
        )));
    }
    // Nearest first; equal separations in input order (the tie rule).
    candidates
        .par_sort_unstable_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let mut n_a = vec![0u32; a.len()];
    let mut n_b = vec![0u32; b.len()];
    for &(_, i, j) in &candidates {
        n_a[i as usize] += 1;
        n_b[j as usize] += 1;
    }
    let mut a_to_b = vec![None; a.len()];
    let mut b_taken = vec![false; b.len()];
    for &(_, i, j) in &candidates {
        let (i, j) = (i as usize, j as usize);
        if a_to_b[i].is_none() && !b_taken[j] {
            a_to_b[i] = Some((j as u32, n_a[i] > 1 || n_b[j] > 1));
            b_taken[j] = true;
        }
    }
    Ok(Pairing { a_to_b, b_taken })
}

/// Matches `lists` by position within `radius_arcsec` under `kind`'s rule
/// (see the module documentation). Members come ordered by AID, then list.
/// Sources without a usable position (non-finite, Dec outside ±90°) are never
/// matched. Fails on a radius [`check_radius`] refuses, and when a pairing
/// would hold more than [`MAX_CANDIDATES`] candidate pairs.
pub fn match_lists(
    lists: &[Vec<Position>],
    kind: AssocType,
    radius_arcsec: f64,
) -> Result<Vec<Member>, CatalogError> {
    match_capped(lists, kind, radius_arcsec, MAX_CANDIDATES)
}

/// [`match_lists`] with a bound on the candidate pairs of one pairing.
fn match_capped(
    lists: &[Vec<Position>],
    kind: AssocType,
    radius_arcsec: f64,
    max_candidates: usize,
) -> Result<Vec<Member>, CatalogError> {
    check_radius(radius_arcsec)?;
    if lists.len() < 2 {
        return Ok(Vec::new());
    }
    let radius_deg = radius_arcsec / 3600.0;
    let depth = depth_for(radius_deg);
    let index = |k: usize| CellIndex::new(depth, &lists[k]);
    // Each association as its (list, index) members and its flag.
    let mut groups: Vec<(Vec<(usize, usize)>, bool)> = Vec::new();
    match kind {
        AssocType::Chain => {
            let pairings: Vec<Pairing> = (0..lists.len() - 1)
                .map(|k| {
                    pair(
                        &lists[k],
                        &lists[k + 1],
                        &index(k + 1),
                        radius_deg,
                        max_candidates,
                    )
                })
                .collect::<Result<_, _>>()?;
            for (k, list) in lists.iter().enumerate().take(lists.len() - 1) {
                for start in 0..list.len() {
                    // A chain starts where no earlier list reaches it.
                    if k > 0 && pairings[k - 1].b_taken[start] {
                        continue;
                    }
                    let mut members = vec![(k, start)];
                    let mut ambiguous = false;
                    let (mut m, mut i) = (k, start);
                    while m < pairings.len() {
                        let Some((j, amb)) = pairings[m].a_to_b[i] else {
                            break;
                        };
                        ambiguous |= amb;
                        m += 1;
                        i = j as usize;
                        members.push((m, i));
                    }
                    if members.len() > 1 {
                        groups.push((members, ambiguous));
                    }
                }
            }
        }
        AssocType::Master | AssocType::Matched => {
            let pairings: Vec<Pairing> = (1..lists.len())
                .map(|k| pair(&lists[0], &lists[k], &index(k), radius_deg, max_candidates))
                .collect::<Result<_, _>>()?;
            for i in 0..lists[0].len() {
                let mut members = vec![(0, i)];
                let mut ambiguous = false;
                for (k, p) in pairings.iter().enumerate() {
                    if let Some((j, amb)) = p.a_to_b[i] {
                        members.push((k + 1, j as usize));
                        ambiguous |= amb;
                    }
                }
                let complete = members.len() == lists.len();
                if members.len() > 1 && (kind == AssocType::Master || complete) {
                    groups.push((members, ambiguous));
                }
            }
        }
    }
    let mut out = Vec::with_capacity(groups.iter().map(|g| g.0.len()).sum());
    for (n, (members, ambiguous)) in groups.into_iter().enumerate() {
        let flag = if ambiguous {
            flag::AMBIGUOUS
        } else {
            flag::CLEAN
        };
        for (list, i) in members {
            out.push(Member {
                aid: n as i64 + 1,
                list,
                sid: lists[list][i].sid,
                flag,
            });
        }
    }
    Ok(out)
}

/// What to associate, and who owns the new AssociateList.
#[derive(Debug, Clone, PartialEq)]
pub struct AssociateRequest {
    /// The member SourceLists, in order (the first is the master).
    pub slids: Vec<Slid>,
    /// The rule.
    pub kind: AssocType,
    /// Search radius, arcsec.
    pub radius_arcsec: f64,
    /// Name; by default one saying the rule, the lists and the radius.
    pub name: Option<String>,
    /// Creator of the new object.
    pub creator: String,
    /// Its project.
    pub project: String,
    /// Its privilege level.
    pub privileges: i32,
}

impl AssociateRequest {
    /// A request with ingest's defaults for the owner (project `default`,
    /// public) and `associate` as the creator.
    pub fn new(slids: Vec<Slid>, kind: AssocType, radius_arcsec: f64) -> Self {
        Self {
            slids,
            kind,
            radius_arcsec,
            name: None,
            creator: "associate".into(),
            project: "default".into(),
            privileges: privileges::PUBLIC,
        }
    }

    /// The name the list gets.
    fn list_name(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let ids: Vec<i64> = self.slids.iter().map(|s| s.0).collect();
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            // The member order matters (chain, master), so it is written
            // out unless it is simply ascending.
            let lists = if sorted == ids {
                crate::params::id_ranges::format_ids(&ids)
            } else {
                ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
            };
            let mut name = format!(
                "{} association of SLIDs {lists} within {} arcsec",
                self.kind.name(),
                self.radius_arcsec
            );
            if name.len() > MAX_NAME {
                name = format!(
                    "{} association of {} SourceLists within {} arcsec",
                    self.kind.name(),
                    ids.len(),
                    self.radius_arcsec
                );
            }
            name
        })
    }

    fn validate(&self) -> Result<(), CatalogError> {
        if self.slids.len() < 2 {
            return Err(CatalogError::Query(format!(
                "slids: an AssociateList needs at least 2 SourceLists, {} given",
                self.slids.len()
            )));
        }
        let mut seen = HashSet::new();
        if let Some(dup) = self.slids.iter().find(|s| !seen.insert(s.0)) {
            return Err(CatalogError::Query(format!(
                "slids: SLID {dup} is named twice; name each SourceList once"
            )));
        }
        check_radius(self.radius_arcsec)?;
        if let Some(n) = &self.name
            && (n.trim().is_empty() || n.len() > MAX_NAME)
        {
            return Err(CatalogError::Query(format!(
                "name: give a name of 1 to {MAX_NAME} bytes ({} given)",
                n.len()
            )));
        }
        Ok(())
    }
}

/// The `associate_list.name` column's width.
const MAX_NAME: usize = 255;

/// What [`Catalog::associate`] made.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AssociateReport {
    /// The new AssociateList's ALID.
    pub alid: Alid,
    /// Its object id.
    pub object_id: ObjectId,
    /// Its name.
    pub name: String,
    /// Number of associations.
    pub associations: usize,
    /// Number of association rows (members).
    pub rows: usize,
    /// Associations flagged [`flag::AMBIGUOUS`].
    pub ambiguous: usize,
}

impl Catalog {
    /// Matches the sources of `req.slids` and stores the result as a new
    /// AssociateList, depending on each member list (role `sourcelist`,
    /// ordinal = member index). All or nothing: an unknown SLID or a bad
    /// parameter writes nothing. Memory is proportional to the members'
    /// sources (every position is needed before the first match is
    /// certain), about 24 bytes a source plus the index.
    pub async fn associate(&self, req: &AssociateRequest) -> Result<AssociateReport, CatalogError> {
        req.validate()?;
        let mut members = Vec::with_capacity(req.slids.len());
        for &slid in &req.slids {
            members.push(self.source_list_row(slid).await?);
        }
        let mut lists = Vec::with_capacity(members.len());
        for m in &members {
            lists.push(self.positions(Slid(m.slid)).await?);
        }
        let (kind, radius) = (req.kind, req.radius_arcsec);
        let rows = tokio::task::spawn_blocking(move || match_lists(&lists, kind, radius))
            .await
            .map_err(|e| CatalogError::Invalid(format!("association worker failed: {e}")))??;
        self.write_associate_list(req, &members, &rows).await
    }

    /// A source-list row by SLID; a missing one is named.
    async fn source_list_row(
        &self,
        slid: Slid,
    ) -> Result<entity::source_list::Model, CatalogError> {
        entity::source_list::Entity::find()
            .filter(entity::source_list::Column::Slid.eq(slid.0))
            .one(self.db())
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what: "SourceList SLID",
                id: slid.to_string(),
            })
    }

    /// The positions of a list's sources, by SID.
    async fn positions(&self, slid: Slid) -> Result<Vec<Position>, CatalogError> {
        use entity::source::Column as C;
        let rows: Vec<(i64, f64, f64)> = entity::source::Entity::find()
            .select_only()
            .columns([C::Sid, C::Ra, C::Dec])
            .filter(C::Slid.eq(slid.0))
            .order_by_asc(C::Sid)
            .into_tuple()
            .all(self.db())
            .await?;
        Ok(rows
            .into_iter()
            .map(|(sid, ra, dec)| Position { sid, ra, dec })
            .collect())
    }

    async fn write_associate_list(
        &self,
        req: &AssociateRequest,
        members: &[entity::source_list::Model],
        rows: &[Member],
    ) -> Result<AssociateReport, CatalogError> {
        let name = req.list_name();
        let txn = self.db().begin().await?;
        // The lists were read outside the transaction: make sure none went
        // away meanwhile (SQLite may not enforce the foreign keys).
        for m in members {
            let still = entity::source_list::Entity::find_by_id(m.object_id)
                .one(&txn)
                .await?;
            if still.is_none() {
                return Err(CatalogError::NotFound {
                    what: "SourceList SLID",
                    id: m.slid.to_string(),
                });
            }
        }
        let id = entity::process_target::Entity::insert(entity::process_target::ActiveModel {
            class_name: Set(ASSOCIATE_LIST_CLASS.to_owned()),
            creation_date: Set(chrono::Utc::now()),
            is_valid: Set(1),
            quality_flags: Set(0),
            process_status: Set(process_status::COMPLETED),
            creator: Set(req.creator.clone()),
            project: Set(req.project.clone()),
            privileges: Set(req.privileges),
            ..Default::default()
        })
        .exec(&txn)
        .await?
        .last_insert_id;
        let alid = Catalog::max_id(&txn, "associate_list", "alid").await? + 1;
        let n_assoc = rows.last().map_or(0, |r| r.aid as usize);
        let ambiguous = rows
            .iter()
            .filter(|r| r.flag == flag::AMBIGUOUS)
            .map(|r| r.aid)
            .collect::<HashSet<_>>()
            .len();
        entity::associate_list::Entity::insert(entity::associate_list::ActiveModel::from(
            entity::associate_list::Model {
                object_id: id,
                alid,
                name: name.clone(),
                assoc_type: req.kind.name().into(),
                search_distance: req.radius_arcsec,
                n_associations: n_assoc as i64,
                n_members: members.len() as i32,
            },
        ))
        .exec(&txn)
        .await?;
        entity::dependency::Entity::insert_many(members.iter().enumerate().map(|(i, m)| {
            entity::dependency::ActiveModel::from(entity::dependency::Model {
                child_id: id,
                parent_id: m.object_id,
                role: "sourcelist".into(),
                ordinal: i as i32,
            })
        }))
        .exec(&txn)
        .await?;
        let association_rows: Vec<entity::association::Model> = rows
            .iter()
            .map(|r| entity::association::Model {
                alid,
                aid: r.aid,
                slid: members[r.list].slid,
                sid: r.sid,
                flag: r.flag,
            })
            .collect();
        crate::catalog::ingest::bulk::insert_associations(&txn, &association_rows).await?;
        txn.commit().await?;
        Ok(AssociateReport {
            alid: Alid(alid),
            object_id: ObjectId(id),
            name,
            associations: n_assoc,
            rows: rows.len(),
            ambiguous,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARCSEC: f64 = 1.0 / 3600.0;

    fn at(sid: i64, ra: f64, dec: f64) -> Position {
        Position { sid, ra, dec }
    }

    /// Members as (AID, list, SID, FLAG) tuples, for short assertions.
    fn tuples(m: &[Member]) -> Vec<(i64, usize, i64, i32)> {
        m.iter().map(|m| (m.aid, m.list, m.sid, m.flag)).collect()
    }

    #[test]
    fn a_shifted_copy_matches_source_by_source_and_decoys_stay_out() {
        // List A: a 10 × 10 grid 20" apart. List B: A shifted by 0.5" in
        // Dec (SID + 1000), plus a decoy 3" east of every source (SID +
        // 2000). With a 1" radius every A source has exactly one candidate.
        let dec0: f64 = 30.0;
        let mut a = Vec::new();
        let mut b = Vec::new();
        for k in 0..100 {
            let ra = 150.0 + (k % 10) as f64 * 20.0 * ARCSEC / dec0.to_radians().cos();
            let dec = dec0 + (k / 10) as f64 * 20.0 * ARCSEC;
            a.push(at(k + 1, ra, dec));
            b.push(at(k + 1001, ra, dec + 0.5 * ARCSEC));
            b.push(at(
                k + 2001,
                ra + 3.0 * ARCSEC / dec.to_radians().cos(),
                dec,
            ));
        }
        let rows = match_lists(&[a.clone(), b.clone()], AssocType::Chain, 1.0).unwrap();
        let want: Vec<_> = (0..100)
            .flat_map(|k| [(k + 1, 0, k + 1, 0), (k + 1, 1, k + 1001, 0)])
            .collect();
        assert_eq!(tuples(&rows), want);
        // With a 4" radius the decoys are candidates too: the nearest (the
        // 0.5" partner) still wins, and the association is flagged.
        let rows = match_lists(&[a, b], AssocType::Chain, 4.0).unwrap();
        let want: Vec<_> = (0..100)
            .flat_map(|k| [(k + 1, 0, k + 1, 1), (k + 1, 1, k + 1001, 1)])
            .collect();
        assert_eq!(tuples(&rows), want);
    }

    #[test]
    fn matching_is_one_to_one_nearest_first_with_ties_to_the_first_source() {
        // Two A sources 0.4" and 0.6" from one B source: the nearer wins,
        // the other stays unmatched although the B source is within 1".
        let a = vec![at(1, 10.0, 0.6 * ARCSEC), at(2, 10.0, -0.4 * ARCSEC)];
        let b = vec![at(7, 10.0, 0.0)];
        let rows = match_lists(&[a, b], AssocType::Master, 1.0).unwrap();
        assert_eq!(tuples(&rows), vec![(1, 0, 2, 1), (1, 1, 7, 1)]);
        // Exactly equal separations: the source that comes first wins.
        let a = vec![at(1, 10.0, 0.5 * ARCSEC), at(2, 10.0, -0.5 * ARCSEC)];
        let b = vec![at(7, 10.0, 0.0)];
        let rows = match_lists(&[a, b], AssocType::Master, 1.0).unwrap();
        assert_eq!(tuples(&rows), vec![(1, 0, 1, 1), (1, 1, 7, 1)]);
    }

    /// Three lists along a meridian at RA 10°, Dec offsets in arcsec, radius
    /// 1":
    ///
    /// | object | A     | B     | C     |
    /// |--------|-------|-------|-------|
    /// | P      | 0     | 0.6   | 1.2   |
    /// | Q      | 100   | —     | 100.3 |
    /// | R      | 200   | 200.2 | 200.4 |
    /// | S      | —     | 300   | 300.5 |
    ///
    /// chain (A–B, B–C): P = A1 B1 C1 (C1 is 1.2" from A1, but 0.6" from
    /// B1), R = A3 B2 C3, S = B3 C4; Q has no B, so A2 and C2 never meet.
    /// master (B–A, C–A): P = A1 B1 (C1 too far from A1), Q = A2 C2,
    /// R = A3 B2 C3; S has no A. matched: only R is in every list.
    #[test]
    fn chain_master_and_matched_differ_as_worked_out_by_hand() {
        let p = |sid: i64, off: f64| at(sid, 10.0, off * ARCSEC);
        let a = vec![p(1, 0.0), p(2, 100.0), p(3, 200.0)];
        let b = vec![p(1, 0.6), p(2, 200.2), p(3, 300.0)];
        let c = vec![p(1, 1.2), p(2, 100.3), p(3, 200.4), p(4, 300.5)];
        let lists = [a, b, c];
        assert_eq!(
            tuples(&match_lists(&lists, AssocType::Chain, 1.0).unwrap()),
            vec![
                (1, 0, 1, 0),
                (1, 1, 1, 0),
                (1, 2, 1, 0),
                (2, 0, 3, 0),
                (2, 1, 2, 0),
                (2, 2, 3, 0),
                (3, 1, 3, 0),
                (3, 2, 4, 0),
            ]
        );
        assert_eq!(
            tuples(&match_lists(&lists, AssocType::Master, 1.0).unwrap()),
            vec![
                (1, 0, 1, 0),
                (1, 1, 1, 0),
                (2, 0, 2, 0),
                (2, 2, 2, 0),
                (3, 0, 3, 0),
                (3, 1, 2, 0),
                (3, 2, 3, 0),
            ]
        );
        assert_eq!(
            tuples(&match_lists(&lists, AssocType::Matched, 1.0).unwrap()),
            vec![(1, 0, 3, 0), (1, 1, 2, 0), (1, 2, 3, 0)]
        );
    }

    #[test]
    fn matches_cross_ra_zero_and_the_poles() {
        // 359.99995° and 0.00005° at the equator are 0.36" apart.
        let a = vec![at(1, 359.999_95, 0.0), at(2, 180.0, 89.999_95)];
        // Near the pole RA means little: 0.18" from the pole on the other
        // side is 0.36" from A2, though 180° away in RA.
        let b = vec![at(5, 0.000_05, 0.0), at(6, 0.0, 89.999_95)];
        let rows = match_lists(&[a.clone(), b.clone()], AssocType::Chain, 0.5).unwrap();
        assert_eq!(
            tuples(&rows),
            vec![(1, 0, 1, 0), (1, 1, 5, 0), (2, 0, 2, 0), (2, 1, 6, 0)]
        );
        // The same at the south pole, and at an exact pole.
        let a = vec![at(1, 45.0, -89.999_95), at(2, 0.0, 90.0)];
        let b = vec![at(5, 225.0, -89.999_95), at(6, 123.0, 89.999_99)];
        let rows = match_lists(&[a, b], AssocType::Chain, 0.5).unwrap();
        assert_eq!(
            tuples(&rows),
            vec![(1, 0, 1, 0), (1, 1, 5, 0), (2, 0, 2, 0), (2, 1, 6, 0)]
        );
    }

    #[test]
    fn the_index_finds_what_all_pairs_find() {
        // Pseudo-random positions in a 2' field around RA 0 at several
        // radii: the indexed matcher must agree with a brute-force count of
        // pairs within the radius wherever a pair is unambiguous.
        let mut state = 12345u64;
        let mut next = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let field = 120.0 * ARCSEC;
        let mut mk = |n: i64| -> Vec<Position> {
            (1..=n)
                .map(|sid| {
                    let ra = ((next() - 0.5) * field).rem_euclid(360.0);
                    let dec = -40.0 + (next() - 0.5) * field;
                    at(sid, ra, dec)
                })
                .collect()
        };
        let (a, b) = (mk(300), mk(300));
        for radius in [0.5, 2.0, 5.0, 20.0] {
            let r = radius * ARCSEC;
            let rows = match_lists(&[a.clone(), b.clone()], AssocType::Master, radius).unwrap();
            let matched: std::collections::HashMap<i64, i64> = rows
                .chunks(2)
                .map(|pair| (pair[0].sid, pair[1].sid))
                .collect();
            for p in &a {
                let near: Vec<&Position> = b
                    .iter()
                    .filter(|q| sphere::separation_deg(p.ra, p.dec, q.ra, q.dec) <= r)
                    .collect();
                if near.is_empty() {
                    assert!(!matched.contains_key(&p.sid), "radius {radius}");
                }
                // An isolated pair (one candidate each way) must be found.
                if near.len() == 1 {
                    let q = near[0];
                    let back = a
                        .iter()
                        .filter(|x| sphere::separation_deg(x.ra, x.dec, q.ra, q.dec) <= r)
                        .count();
                    if back == 1 {
                        assert_eq!(matched.get(&p.sid), Some(&q.sid), "radius {radius}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_radius_that_makes_too_many_pairs_is_refused() {
        // 40 sources within 4" of each other and a 10" radius: 1,600
        // candidate pairs, over a bound of 1,000 (and under one of 2,000).
        let list: Vec<Position> = (0..40)
            .map(|k| at(k, 10.0, k as f64 * 0.1 * ARCSEC))
            .collect();
        let lists = [list.clone(), list];
        let e = match_capped(&lists, AssocType::Chain, 10.0, 1000)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("radius: more than 1000 pairs"), "{e}");
        assert_eq!(
            match_capped(&lists, AssocType::Chain, 10.0, 2000)
                .unwrap()
                .len(),
            80
        );
    }

    #[test]
    fn bad_radii_and_lists_are_refused_with_the_allowed_values() {
        for r in [0.0, -1.0, f64::NAN, f64::INFINITY, 3600.5] {
            let e = check_radius(r).unwrap_err().to_string();
            assert!(
                e.starts_with("radius:") && e.contains("at most 3600"),
                "{e}"
            );
        }
        assert!(check_radius(3600.0).is_ok() && check_radius(1e-3).is_ok());
        let one = AssociateRequest::new(vec![Slid(1)], AssocType::Chain, 1.0);
        assert!(
            one.validate()
                .unwrap_err()
                .to_string()
                .contains("at least 2")
        );
        let dup = AssociateRequest::new(vec![Slid(1), Slid(1)], AssocType::Chain, 1.0);
        assert!(dup.validate().unwrap_err().to_string().contains("twice"));
    }

    #[test]
    fn default_names_say_rule_lists_and_radius() {
        let r = AssociateRequest::new(vec![Slid(1), Slid(2), Slid(3)], AssocType::Master, 1.5);
        assert_eq!(
            r.list_name(),
            "master association of SLIDs 1:3 within 1.5 arcsec"
        );
        let r = AssociateRequest::new(vec![Slid(3), Slid(1)], AssocType::Chain, 1.0);
        assert_eq!(
            r.list_name(),
            "chain association of SLIDs 3,1 within 1 arcsec"
        );
    }
}
