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
    fn a_huge_cone_asks_for_no_index() {
        assert!(cone_cells(0.0, 0.0, 120.0).is_none());
        assert!(cone_cells(0.0, 0.0, 1.0).is_some());
    }
}
