//! Polynomial surfaces in normalised chip coordinates (u, v ∈ [−1, 1]):
//! least-squares fits with sigma clipping. Illumination corrections are
//! fitted to star photometry with them, and the sky under the fringes to
//! block medians.

/// The terms of a polynomial surface in (u, v) up to `order` (0, 1 or 2).
fn surface_terms(u: f64, v: f64, order: usize) -> Vec<f64> {
    match order {
        0 => vec![1.0],
        1 => vec![1.0, u, v],
        _ => vec![1.0, u, v, u * u, u * v, v * v],
    }
}

/// The polynomial surface of `order` with `coeffs` at (u, v).
pub(super) fn surface_value(u: f64, v: f64, order: usize, coeffs: &[f64]) -> f64 {
    surface_terms(u, v, order)
        .iter()
        .zip(coeffs)
        .map(|(t, c)| t * c)
        .sum()
}

/// Least-squares fit by the normal equations, solved with partial pivoting.
fn least_squares(points: &[(f64, f64, f64)], order: usize) -> Option<Vec<f64>> {
    let k = surface_terms(0.0, 0.0, order).len();
    let mut a = vec![vec![0f64; k + 1]; k];
    for &(u, v, z) in points {
        let t = surface_terms(u, v, order);
        for i in 0..k {
            for j in 0..k {
                a[i][j] += t[i] * t[j];
            }
            a[i][k] += t[i] * z;
        }
    }
    for col in 0..k {
        let piv = (col..k).max_by(|&p, &q| a[p][col].abs().total_cmp(&a[q][col].abs()))?;
        if a[piv][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, piv);
        for row in 0..k {
            if row != col {
                let f = a[row][col] / a[col][col];
                for c in col..=k {
                    a[row][c] -= f * a[col][c];
                }
            }
        }
    }
    Some((0..k).map(|i| a[i][k] / a[i][i]).collect())
}

/// A surface of `order` fitted with up to five rounds of 3σ clipping,
/// stopping early when nothing more is clipped or too few points remain.
pub(super) fn clipped_fit(points: &[(f64, f64, f64)], order: usize) -> Option<Vec<f64>> {
    let mut pts = points.to_vec();
    let mut coeffs = None;
    for _ in 0..5 {
        let Some(c) = least_squares(&pts, order) else {
            break;
        };
        let res: Vec<f64> = pts
            .iter()
            .map(|p| p.2 - surface_value(p.0, p.1, order, &c))
            .collect();
        let sigma = (res.iter().map(|r| r * r).sum::<f64>() / res.len() as f64).sqrt();
        let kept: Vec<_> = pts
            .iter()
            .zip(&res)
            .filter(|(_, r)| r.abs() <= 3.0 * sigma)
            .map(|(p, _)| *p)
            .collect();
        coeffs = Some(c);
        if kept.len() == pts.len() || kept.len() < 12 {
            break;
        }
        pts = kept;
    }
    coeffs
}
