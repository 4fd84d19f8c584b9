//! Helpers shared by the tests of the `fits` submodules: temporary
//! directories, test images whose every pixel differs, NaN-aware comparison,
//! and a reader of raw on-disk headers that does not go through cfitsio, so
//! that tests can check what was really written rather than what cfitsio
//! reports.

use std::fs;
use std::path::Path;

use super::cards::parse_record;
use super::{Card, Compression, FitsError, HeaderValue, PixelData, read_header, write_image};
use crate::imaging::raster::Raster;

pub(super) fn tmp() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("wisecut-fits-")
        .tempdir()
        .expect("temp dir")
}

/// A test image whose every pixel differs, built from `f(ix, iy)`.
pub(super) fn make<T: Copy>(w: usize, h: usize, f: impl Fn(usize, usize) -> T) -> Raster<T> {
    let mut data = Vec::with_capacity(w * h);
    for iy in 0..h {
        for ix in 0..w {
            data.push(f(ix, iy));
        }
    }
    Raster::from_vec(w, h, data)
}

pub(super) fn u8_image(w: usize, h: usize) -> Raster<u8> {
    make(w, h, |x, y| ((x * 7 + y * 13) % 256) as u8)
}
pub(super) fn i16_image(w: usize, h: usize) -> Raster<i16> {
    make(w, h, |x, y| match (x + y * w) % 5 {
        0 => i16::MIN,
        1 => i16::MAX,
        _ => (x as i16)
            .wrapping_mul(97)
            .wrapping_sub((y as i16).wrapping_mul(31)),
    })
}
pub(super) fn u16_image(w: usize, h: usize) -> Raster<u16> {
    make(w, h, |x, y| match (x + y * w) % 7 {
        0 => 0,
        1 => u16::MAX,
        2 => 32768,
        3 => 32767,
        _ => ((x * 1031 + y * 17) % 65536) as u16,
    })
}
pub(super) fn i32_image(w: usize, h: usize) -> Raster<i32> {
    make(w, h, |x, y| match (x + y * w) % 6 {
        0 => i32::MIN,
        1 => i32::MAX,
        _ => (x as i32 - 50) * 10_007 + (y as i32) * 3,
    })
}
pub(super) fn f32_image(w: usize, h: usize) -> Raster<f32> {
    make(w, h, |x, y| match (x + y * w) % 11 {
        0 => f32::NAN,
        1 => -0.0,
        2 => f32::MAX,
        3 => f32::MIN_POSITIVE,
        4 => f32::INFINITY,
        5 => f32::from_bits(1), // subnormal
        6 => f32::NEG_INFINITY,
        _ => (x as f32) * 0.37 - (y as f32) * 1.5e-3,
    })
}

/// Pixel-exact comparison that treats NaN as equal to NaN.
pub(super) fn assert_same(actual: &Raster<f32>, expected: &Raster<f32>, what: &str) {
    assert_eq!(
        (actual.width, actual.height),
        (expected.width, expected.height),
        "{what}: size"
    );
    for (i, (a, e)) in actual.data.iter().zip(&expected.data).enumerate() {
        let same = (a.is_nan() && e.is_nan()) || a.to_bits() == e.to_bits();
        assert!(
            same,
            "{what}: pixel {i} (x {}, y {}) is {a}, expected {e}",
            i % actual.width,
            i / actual.width
        );
    }
}

/// The raw (on-disk) header cards of every HDU and the byte offset where
/// each HDU's data starts, parsed from the file bytes without cfitsio.
pub(super) fn raw_hdus(path: &Path) -> Vec<(Vec<Card>, usize)> {
    let bytes = fs::read(path).unwrap();
    assert_eq!(bytes.len() % 2880, 0, "file length is a multiple of 2880");
    let mut pos = 0;
    let mut hdus = Vec::new();
    while pos < bytes.len() {
        let mut cards = Vec::new();
        loop {
            let record = std::str::from_utf8(&bytes[pos..pos + 80]).unwrap();
            pos += 80;
            match parse_record(record) {
                Some(card) => cards.push(card),
                None => break,
            }
        }
        pos = pos.div_ceil(2880) * 2880;
        let get = |k: &str| {
            cards
                .iter()
                .find(|c| c.key == k)
                .and_then(|c| c.value.as_i64())
        };
        let naxis = get("NAXIS").unwrap();
        let data_len = if naxis == 0 {
            0
        } else {
            let pixels: i64 = (1..=naxis)
                .map(|n| get(&format!("NAXIS{n}")).unwrap())
                .product();
            get("BITPIX").unwrap().abs() / 8
                * get("GCOUNT").unwrap_or(1)
                * (get("PCOUNT").unwrap_or(0) + pixels)
        };
        hdus.push((cards, pos));
        pos += usize::try_from(data_len).unwrap().div_ceil(2880) * 2880;
    }
    hdus
}

pub(super) fn raw_value(cards: &[Card], key: &str) -> Option<HeaderValue> {
    cards.iter().find(|c| c.key == key).map(|c| c.value.clone())
}

pub(super) fn header_value(path: &Path, hdu: usize, key: &str) -> Option<HeaderValue> {
    read_header(path, hdu)
        .unwrap()
        .into_iter()
        .find(|c| c.key == key)
        .map(|c| c.value)
}

pub(super) const ALL_KINDS: [&str; 5] = ["u8", "i16", "u16", "i32", "f32"];

/// Writes an image of the given kind; returns what reading it back as f32
/// must give.
pub(super) fn write_kind(
    path: &Path,
    kind: &str,
    w: usize,
    h: usize,
    cards: &[Card],
    c: &Compression,
) -> Result<(usize, Raster<f32>, i32), FitsError> {
    Ok(match kind {
        "u8" => {
            let img = u8_image(w, h);
            (
                write_image(path, PixelData::U8(&img), cards, c)?,
                img.map(f32::from),
                8,
            )
        }
        "i16" => {
            let img = i16_image(w, h);
            (
                write_image(path, PixelData::I16(&img), cards, c)?,
                img.map(f32::from),
                16,
            )
        }
        "u16" => {
            let img = u16_image(w, h);
            (
                write_image(path, PixelData::U16(&img), cards, c)?,
                img.map(f32::from),
                16,
            )
        }
        "i32" => {
            let img = i32_image(w, h);
            // cfitsio converts with a plain C cast, as `as` does.
            (
                write_image(path, PixelData::I32(&img), cards, c)?,
                img.map(|v| v as f32),
                32,
            )
        }
        "f32" => {
            let img = f32_image(w, h);
            (
                write_image(path, PixelData::F32(&img), cards, c)?,
                img.clone(),
                -32,
            )
        }
        _ => unreachable!(),
    })
}
