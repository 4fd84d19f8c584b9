//! What every demo of the default sample survey shows, measured: i-band
//! fringes removed down to the level of the r band (which has none), and no
//! bright boxes around the brightest stars of the coadds.
//!
//! Both once failed: a fringe frame subtracted at a fixed scale, made with a
//! 49-px box filter as its sky, left fringes 3× the r-band background
//! scatter and printed a 49-px square around every bright star in `coadd_i`
//! (issue 14). The measures are in units of each frame's own pixel noise, so
//! a band with a brighter sky is not judged noisier for it.

use super::common;
use std::path::Path;
use wisecut::catalog::ingest::Manifest;
use wisecut::imaging::fits;
use wisecut::imaging::raster::Raster;

fn image(path: &Path) -> Raster<f32> {
    let hdu = fits::first_image_hdu(path).unwrap();
    fits::read_image_f32(path, hdu).unwrap()
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median absolute deviation scaled to a Gaussian sigma.
fn mad_sigma(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    let m = median(&mut v);
    let mut dev: Vec<f64> = v.iter().map(|x| (x - m).abs()).collect();
    1.4826 * median(&mut dev)
}

/// The pixel noise of an image: the MAD sigma of its finite pixels.
fn pixel_noise(img: &Raster<f32>) -> f64 {
    let finite: Vec<f64> = img
        .data
        .iter()
        .filter(|v| v.is_finite())
        .map(|v| f64::from(*v))
        .collect();
    mad_sigma(&finite)
}

/// Background structure on the scale of fringes, in units of the pixel
/// noise: the scatter of 16×16-pixel block medians once a quadratic surface
/// (the illumination and sky gradients, which are not fringes) is removed.
/// Pure noise gives about 1.25/16 ≈ 0.08; the old i band gave 0.3–0.5.
fn fringe_scatter(img: &Raster<f32>) -> f64 {
    let pixel_noise = pixel_noise(img);
    const B: usize = 16;
    let (nx, ny) = (img.width / B, img.height / B);
    let mut blocks = Vec::new();
    for j in 0..ny {
        for i in 0..nx {
            let mut v: Vec<f64> = (j * B..(j + 1) * B)
                .flat_map(|y| (i * B..(i + 1) * B).map(move |x| (x, y)))
                .map(|(x, y)| f64::from(img.get(x, y)))
                .filter(|v| v.is_finite())
                .collect();
            if v.len() > B * B / 2 {
                let u = (i as f64 + 0.5) / nx as f64;
                let w = (j as f64 + 0.5) / ny as f64;
                blocks.push(([1.0, u, w, u * u, u * w, w * w], median(&mut v)));
            }
        }
    }
    let coeffs = least_squares(&blocks);
    let residuals: Vec<f64> = blocks
        .iter()
        .map(|(t, z)| z - t.iter().zip(&coeffs).map(|(a, c)| a * c).sum::<f64>())
        .collect();
    mad_sigma(&residuals) / pixel_noise
}

/// Least squares of the six-term quadratic by the normal equations.
fn least_squares(points: &[([f64; 6], f64)]) -> [f64; 6] {
    let mut a = [[0f64; 7]; 6];
    for (t, z) in points {
        for i in 0..6 {
            for j in 0..6 {
                a[i][j] += t[i] * t[j];
            }
            a[i][6] += t[i] * z;
        }
    }
    for c in 0..6 {
        let p = (c..6)
            .max_by(|&p, &q| a[p][c].abs().total_cmp(&a[q][c].abs()))
            .unwrap();
        a.swap(c, p);
        for r in 0..6 {
            if r != c {
                let f = a[r][c] / a[c][c];
                for k in c..7 {
                    a[r][k] -= f * a[c][k];
                }
            }
        }
    }
    std::array::from_fn(|i| a[i][6] / a[i][i])
}

/// Mean [`fringe_scatter`] of the frames of `class` in `band`.
fn mean_scatter(dir: &Path, m: &Manifest, class: &str, band: &str) -> f64 {
    let tag = format!("_{band}_");
    let v: Vec<f64> = m
        .frames
        .iter()
        .filter(|f| f.class == class && f.key.contains(&tag))
        .map(|f| fringe_scatter(&image(&dir.join(&f.path))))
        .collect();
    assert!(v.len() >= 4, "{class} {band}: only {} frames", v.len());
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn i_band_fringes_are_removed_down_to_the_r_band_background() {
    let dir = common::small_sample();
    let m = Manifest::load(&dir.join("manifest.json")).unwrap();
    let mut report = Vec::new();
    for class in ["ReducedScienceFrame", "RegriddedFrame"] {
        let (r, i) = (
            mean_scatter(dir, &m, class, "r"),
            mean_scatter(dir, &m, class, "i"),
        );
        report.push(format!("{class}: r {r:.3} i {i:.3}"));
        assert!(
            i <= 1.2 * r,
            "{class}: i-band scatter {i:.3} > 1.2 × r {r:.3}"
        );
    }
    let coadd = |band: &str| fringe_scatter(&image(&dir.join(format!("coadd/coadd_{band}.fits"))));
    let (r, i) = (coadd("r"), coadd("i"));
    report.push(format!("coadds: r {r:.3} i {i:.3}"));
    assert!(
        i <= 1.2 * r,
        "coadd_i scatter {i:.3} > 1.2 × coadd_r {r:.3}"
    );
    println!(
        "fringe scatter (block rms / pixel noise): {}",
        report.join("; ")
    );
}

/// The `n` brightest peaks of `img` at least `apart` pixels from each other
/// and `margin` from the edges.
fn brightest_peaks(
    img: &Raster<f32>,
    n: usize,
    apart: usize,
    margin: usize,
) -> Vec<(usize, usize)> {
    let mut order: Vec<usize> = (0..img.data.len())
        .filter(|p| img.data[*p].is_finite())
        .collect();
    order.sort_by(|a, b| img.data[*b].total_cmp(&img.data[*a]));
    let mut peaks: Vec<(usize, usize)> = Vec::new();
    for p in order {
        let (x, y) = (p % img.width, p / img.width);
        if x < margin || y < margin || x + margin >= img.width || y + margin >= img.height {
            continue;
        }
        if peaks
            .iter()
            .all(|(px, py)| x.abs_diff(*px).pow(2) + y.abs_diff(*py).pow(2) > apart * apart)
        {
            peaks.push((x, y));
            if peaks.len() == n {
                break;
            }
        }
    }
    peaks
}

/// Median of the finite pixels between radii `r0` and `r1` around (x, y).
fn annulus_median(img: &Raster<f32>, (x, y): (usize, usize), r0: f64, r1: f64) -> f64 {
    let r = r1.ceil() as i64;
    let mut v = Vec::new();
    for dy in -r..=r {
        for dx in -r..=r {
            let d = ((dx * dx + dy * dy) as f64).sqrt();
            if d >= r0 && d < r1 {
                let val = img.get((x as i64 + dx) as usize, (y as i64 + dy) as usize);
                if val.is_finite() {
                    v.push(f64::from(val));
                }
            }
        }
    }
    median(&mut v)
}

#[test]
fn the_brightest_stars_of_each_coadd_sit_on_a_flat_background() {
    // A box of raised background around a star shows as annuli brighter
    // than the background further out. The wings of the stars themselves are
    // far below the noise at 12 px (5 FWHM) in these coadds.
    let dir = common::small_sample();
    for band in ["g", "r", "i"] {
        let img = image(&dir.join(format!("coadd/coadd_{band}.fits")));
        let noise = pixel_noise(&img);
        let peaks = brightest_peaks(&img, 8, 100, 90);
        assert_eq!(peaks.len(), 8, "coadd_{band}: too few bright stars");
        let mut inner = Vec::new();
        let mut ring = Vec::new();
        for p in &peaks {
            let outer = annulus_median(&img, *p, 60.0, 85.0);
            inner.push((annulus_median(&img, *p, 12.0, 22.0) - outer) / noise);
            ring.push((annulus_median(&img, *p, 22.0, 36.0) - outer) / noise);
        }
        let mean_inner = inner.iter().sum::<f64>() / inner.len() as f64;
        let worst_ring = ring.iter().copied().fold(f64::MIN, f64::max);
        println!(
            "coadd_{band}: annulus 12–22 px {mean_inner:+.3} σ (mean), 22–36 px {worst_ring:+.3} σ (worst)"
        );
        assert!(
            mean_inner < 0.2,
            "coadd_{band}: background 12–22 px from the brightest stars is {mean_inner:.3} σ above that 60–85 px away"
        );
        assert!(
            worst_ring < 0.4,
            "coadd_{band}: background 22–36 px from a bright star is {worst_ring:.3} σ above that 60–85 px away"
        );
    }
}
