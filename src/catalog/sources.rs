//! Sources of source lists: lookups by key and cone searches through the
//! HEALPix index.

use super::{Catalog, CatalogError, HPX_DEPTH, entity};
use crate::ids::{Sid, Slid};
use crate::imaging::sphere::separation_deg;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Value};
use serde::Serialize;

/// One extracted source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    /// Its source list.
    pub slid: Slid,
    /// Its id within the list.
    pub sid: Sid,
    /// RA (deg).
    pub ra: f64,
    /// Dec (deg).
    pub dec: f64,
    /// X on the list's frame (FITS pixel).
    pub x: f64,
    /// Y on the list's frame (FITS pixel).
    pub y: f64,
    /// Semi-major axis (pixel).
    pub a: f64,
    /// Semi-minor axis (pixel).
    pub b: f64,
    /// Position angle (deg).
    pub theta: f64,
    /// MAG_AUTO.
    pub mag_auto: Option<f64>,
    /// MAGERR_AUTO.
    pub magerr_auto: Option<f64>,
    /// FLUX_AUTO.
    pub flux_auto: f64,
    /// FWHM (pixel).
    pub fwhm: f64,
    /// CLASS_STAR.
    pub class_star: f64,
    /// FLAGS.
    pub flags: i32,
}

impl From<entity::source::Model> for Source {
    fn from(m: entity::source::Model) -> Self {
        Source {
            slid: Slid(m.slid),
            sid: Sid(m.sid),
            ra: m.ra,
            dec: m.dec,
            x: m.x,
            y: m.y,
            a: m.a,
            b: m.b,
            theta: m.theta,
            mag_auto: m.mag_auto,
            magerr_auto: m.magerr_auto,
            flux_auto: m.flux_auto,
            fwhm: m.fwhm,
            class_star: m.class_star,
            flags: m.flags,
        }
    }
}

/// The `source.hpx` index ranges (half-open, at [`HPX_DEPTH`]) that cover a
/// cone: a coarse HEALPix coverage keeps the list short, and each coarse
/// cell expands to one contiguous range of fine cells.
pub fn cone_ranges(ra: f64, dec: f64, radius_deg: f64) -> Vec<(i64, i64)> {
    let r = radius_deg.to_radians();
    let depth = (cdshealpix::best_starting_depth(r) + 3).min(HPX_DEPTH);
    let bmoc =
        cdshealpix::nested::cone_coverage_approx(depth, ra.to_radians(), dec.to_radians(), r);
    let shift = 2 * u32::from(HPX_DEPTH - depth);
    bmoc.to_ranges()
        .iter()
        .map(|rg| ((rg.start << shift) as i64, (rg.end << shift) as i64))
        .collect()
}

/// The first step of [`Catalog::cone_search`]: the SQL (with `$n`
/// placeholders) and values that select the `(slid, sid)` of every
/// candidate in the cone's HEALPix index ranges, optionally of one list;
/// `None` when the cone covers no cell. Public so that a benchmark can
/// `EXPLAIN` exactly what the search runs.
pub fn cone_candidates_sql(
    ra: f64,
    dec: f64,
    radius_deg: f64,
    slid: Option<Slid>,
) -> Option<(String, Vec<Value>)> {
    let ranges = cone_ranges(ra, dec, radius_deg);
    if ranges.is_empty() {
        return None;
    }
    let mut values: Vec<Value> = Vec::new();
    let mut clauses = Vec::new();
    for (lo, hi) in &ranges {
        values.push((*lo).into());
        values.push((*hi).into());
        clauses.push(format!(
            "(hpx >= ${} AND hpx < ${})",
            values.len() - 1,
            values.len()
        ));
    }
    let mut sql = format!(
        "SELECT slid, sid FROM source WHERE ({})",
        clauses.join(" OR ")
    );
    if let Some(s) = slid {
        values.push(s.0.into());
        sql.push_str(&format!(" AND slid = ${}", values.len()));
    }
    Some((sql, values))
}

impl Catalog {
    /// The condition that the SLID expression `slid` names a SourceList
    /// this catalogue's viewer may see: sources are as visible as their
    /// list.
    pub(crate) fn visible_slid(&self, slid: &str) -> String {
        if self.viewer().is_none() {
            return "1=1".to_owned();
        }
        self.visible_id(&format!(
            "(SELECT vsl.object_id FROM source_list vsl WHERE vsl.slid = {slid})"
        ))
    }

    /// The condition that the ALID expression `alid` names an
    /// AssociateList this catalogue's viewer may see.
    pub(crate) fn visible_alid(&self, alid: &str) -> String {
        if self.viewer().is_none() {
            return "1=1".to_owned();
        }
        self.visible_id(&format!(
            "(SELECT val.object_id FROM associate_list val WHERE val.alid = {alid})"
        ))
    }

    /// [`Catalog::visible_slid`] as a filter of sea-orm's `source` queries.
    fn visible_source_cond(&self) -> sea_orm::sea_query::SimpleExpr {
        sea_orm::sea_query::Expr::cust(self.visible_slid("\"source\".\"slid\""))
    }

    /// One source by (SLID, SID).
    pub async fn source(&self, slid: Slid, sid: Sid) -> Result<Source, CatalogError> {
        entity::source::Entity::find_by_id((slid.0, sid.0))
            .filter(self.visible_source_cond())
            .one(self.db())
            .await?
            .map(Source::from)
            .ok_or_else(|| CatalogError::NotFound {
                what: "source",
                id: format!("{slid}:{sid}"),
            })
    }

    /// The sources of one list with the given SIDs, by SID; SIDs that do
    /// not exist are simply absent.
    pub async fn sources_in(&self, slid: Slid, sids: &[Sid]) -> Result<Vec<Source>, CatalogError> {
        let mut out = Vec::with_capacity(sids.len());
        for chunk in sids.chunks(1000) {
            let models = entity::source::Entity::find()
                .filter(entity::source::Column::Slid.eq(slid.0))
                .filter(entity::source::Column::Sid.is_in(chunk.iter().map(|s| s.0)))
                .filter(self.visible_source_cond())
                .all(self.db())
                .await?;
            out.extend(models.into_iter().map(Source::from));
        }
        out.sort_by_key(|s| s.sid);
        Ok(out)
    }

    /// The frame of each SourceList in `slids` (`None` for a list without
    /// one), in one query per thousand lists: what a cone search's rows
    /// link to. Lists the viewer may not see are left out.
    pub async fn source_list_frames(
        &self,
        slids: &[Slid],
    ) -> Result<std::collections::HashMap<Slid, Option<crate::ids::ObjectId>>, CatalogError> {
        let mut out = std::collections::HashMap::new();
        for chunk in slids.chunks(1000) {
            let rows = entity::source_list::Entity::find()
                .filter(entity::source_list::Column::Slid.is_in(chunk.iter().map(|s| s.0)))
                .filter(self.visible_cond("source_list"))
                .all(self.db())
                .await?;
            out.extend(
                rows.into_iter()
                    .map(|r| (Slid(r.slid), r.frame_id.map(crate::ids::ObjectId))),
            );
        }
        Ok(out)
    }

    /// Sources within `radius_deg` of (ra, dec), nearest first, at most
    /// `limit`; optionally only from one source list.
    pub async fn cone_search(
        &self,
        ra: f64,
        dec: f64,
        radius_deg: f64,
        slid: Option<Slid>,
        limit: usize,
    ) -> Result<Vec<(f64, Source)>, CatalogError> {
        let Some((mut sql, values)) = cone_candidates_sql(ra, dec, radius_deg, slid) else {
            return Ok(Vec::new());
        };
        // Sources of lists the viewer may not see are not candidates: the
        // cone, its count and its overflow are those of the visible part.
        if self.viewer().is_some() {
            sql.push_str(&format!(" AND {}", self.visible_slid("source.slid")));
        }
        // The candidates' rows in one query: a cone on a deep field meets
        // sources of hundreds of lists, and a query per list cost that
        // many round trips.
        let sql = sql.replacen("SELECT slid, sid FROM source", "SELECT * FROM source", 1);
        let models = entity::source::Entity::find()
            .from_raw_sql(Self::stmt(self.backend(), &sql, values))
            .all(self.db())
            .await?;
        let mut out = Vec::new();
        for m in models {
            let d = separation_deg(ra, dec, m.ra, m.dec);
            if d <= radius_deg {
                out.push((d, Source::from(m)));
            }
        }
        out.sort_by(|a, b| {
            a.0.total_cmp(&b.0)
                .then(a.1.slid.cmp(&b.1.slid))
                .then(a.1.sid.cmp(&b.1.sid))
        });
        out.truncate(limit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cone_ranges_contain_every_cell_inside_the_cone() {
        let (ra, dec, r) = (150.1, 2.2, 30.0 / 3600.0);
        let ranges = cone_ranges(ra, dec, r);
        assert!(!ranges.is_empty() && ranges.len() < 64, "{}", ranges.len());
        // Points on a grid inside the cone all fall in a range; a point far
        // outside falls in none.
        for i in -10..=10 {
            for j in -10..=10 {
                let (pra, pdec) = (
                    ra + i as f64 * r / 10.5 / dec.to_radians().cos(),
                    dec + j as f64 * r / 10.5,
                );
                if separation_deg(ra, dec, pra, pdec) > r {
                    continue;
                }
                let h = super::super::ingest::hpx_index(pra, pdec);
                assert!(
                    ranges.iter().any(|(lo, hi)| (*lo..*hi).contains(&h)),
                    "{pra} {pdec}"
                );
            }
        }
        let far = super::super::ingest::hpx_index(ra + 1.0, dec);
        assert!(!ranges.iter().any(|(lo, hi)| (*lo..*hi).contains(&far)));
    }
}
