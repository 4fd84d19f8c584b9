//! Pixels as stored ([`RawPixels`]) and the in-memory encoding of a one-HDU
//! FITS file ([`encode_image`]).
//!
//! Cutouts of plain images are served without cfitsio: the rows are read with
//! `pread`, decoded here from big-endian, and the answer is encoded here
//! straight into a byte buffer. A server answering thousands of cutouts a
//! second should not round-trip each through a temporary file, and the bytes
//! must be exactly those [`write_image`](super::write_image) would put on
//! disk, so the header is built with the same card formatting.

use std::path::Path;

use super::cards::{CARD_LEN, Card, fixed_record, format_float, format_user_cards, pad_card};
use super::{FitsError, invalid};

/// Length of a FITS block: headers and data units are padded to it.
const BLOCK_LEN: usize = 2880;

/// Decodes big-endian values of `N` bytes each with `f` (the type's
/// `from_be_bytes`); `None` if `bytes` is not a whole number of values.
fn decode_be<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Option<Vec<T>> {
    if !bytes.len().is_multiple_of(N) {
        return None;
    }
    Some(
        bytes
            .chunks_exact(N)
            .map(|c| f(c.try_into().expect("chunk of N bytes")))
            .collect(),
    )
}

/// Appends the big-endian encoding of each value, made by `f` (the type's
/// `to_be_bytes`); the inverse of [`decode_be`].
fn encode_be<const N: usize, T: Copy>(out: &mut Vec<u8>, values: &[T], f: fn(T) -> [u8; N]) {
    values.iter().for_each(|&x| out.extend_from_slice(&f(x)));
}

/// Pixel values exactly as stored for one `BITPIX` (before BSCALE/BZERO), row
/// after row: what a cutout must hand on unchanged.
#[derive(Debug, Clone, PartialEq)]
pub enum RawPixels {
    /// BITPIX 8.
    U8(Vec<u8>),
    /// BITPIX 16.
    I16(Vec<i16>),
    /// BITPIX 32.
    I32(Vec<i32>),
    /// BITPIX 64.
    I64(Vec<i64>),
    /// BITPIX -32.
    F32(Vec<f32>),
    /// BITPIX -64.
    F64(Vec<f64>),
}

impl RawPixels {
    /// `n` pixels of type `bitpix`, all zero.
    pub fn zeros(bitpix: i32, n: usize) -> Option<Self> {
        Some(match bitpix {
            8 => Self::U8(vec![0; n]),
            16 => Self::I16(vec![0; n]),
            32 => Self::I32(vec![0; n]),
            64 => Self::I64(vec![0; n]),
            -32 => Self::F32(vec![0.0; n]),
            -64 => Self::F64(vec![0.0; n]),
            _ => return None,
        })
    }

    /// Decodes big-endian FITS data bytes of type `bitpix`; `None` for an
    /// unknown BITPIX or a length that is not a whole number of pixels.
    pub fn from_be_bytes(bitpix: i32, bytes: &[u8]) -> Option<Self> {
        Some(match bitpix {
            8 => Self::U8(bytes.to_vec()),
            16 => Self::I16(decode_be(bytes, i16::from_be_bytes)?),
            32 => Self::I32(decode_be(bytes, i32::from_be_bytes)?),
            64 => Self::I64(decode_be(bytes, i64::from_be_bytes)?),
            -32 => Self::F32(decode_be(bytes, f32::from_be_bytes)?),
            -64 => Self::F64(decode_be(bytes, f64::from_be_bytes)?),
            _ => return None,
        })
    }

    /// The FITS `BITPIX` of these values.
    pub fn bitpix(&self) -> i32 {
        match self {
            Self::U8(_) => 8,
            Self::I16(_) => 16,
            Self::I32(_) => 32,
            Self::I64(_) => 64,
            Self::F32(_) => -32,
            Self::F64(_) => -64,
        }
    }

    /// Number of pixels.
    pub fn len(&self) -> usize {
        match self {
            Self::U8(v) => v.len(),
            Self::I16(v) => v.len(),
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
        }
    }

    /// Whether there are no pixels.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes per pixel.
    pub fn bytes_per_pixel(&self) -> usize {
        (self.bitpix().unsigned_abs() / 8) as usize
    }

    /// Appends the big-endian encoding of every pixel to `out`.
    pub fn write_be(&self, out: &mut Vec<u8>) {
        out.reserve(self.len() * self.bytes_per_pixel());
        match self {
            Self::U8(v) => out.extend_from_slice(v),
            Self::I16(v) => encode_be(out, v, i16::to_be_bytes),
            Self::I32(v) => encode_be(out, v, i32::to_be_bytes),
            Self::I64(v) => encode_be(out, v, i64::to_be_bytes),
            Self::F32(v) => encode_be(out, v, f32::to_be_bytes),
            Self::F64(v) => encode_be(out, v, f64::to_be_bytes),
        }
    }
}

/// Encodes a single-HDU FITS file in memory: the mandatory keywords for a
/// `width` × `height` image of `pixels`' type, then `BSCALE`/`BZERO` when
/// `scaling` is given and not the identity, then `cards` (checked like
/// [`write_image`](super::write_image)'s), then the data. The result is what
/// `write_image` would put on disk for the same input, without a round trip
/// through a file, which matters for a server answering thousands of cutouts a
/// second.
pub fn encode_image(
    pixels: &RawPixels,
    width: usize,
    height: usize,
    scaling: Option<(f64, f64)>,
    cards: &[Card],
) -> Result<Vec<u8>, FitsError> {
    if pixels.len() != width * height {
        return Err(invalid(
            Path::new("<memory>"),
            format!(
                "{} pixels do not make a {width}x{height} image",
                pixels.len()
            ),
        ));
    }
    let data_len = (pixels.len() * pixels.bytes_per_pixel()).div_ceil(BLOCK_LEN) * BLOCK_LEN;
    let mut out = encode_header(pixels.bitpix(), width, height, scaling, cards, data_len)?;
    let header_len = out.len();
    pixels.write_be(&mut out);
    out.resize(header_len + data_len, 0);
    Ok(out)
}

/// The header blocks of a one-HDU image file, in a buffer with room for
/// `data_capacity` more bytes: [`encode_image`] without the data, for
/// callers that write the big-endian data themselves (a cutout of a plain
/// file whose stored bytes need no conversion).
pub fn encode_header(
    bitpix: i32,
    width: usize,
    height: usize,
    scaling: Option<(f64, f64)>,
    cards: &[Card],
    data_capacity: usize,
) -> Result<Vec<u8>, FitsError> {
    let here = Path::new("<memory>");
    let mut records = vec![
        pad_card(fixed_record("SIMPLE", "T")),
        pad_card(fixed_record("BITPIX", bitpix)),
        pad_card(fixed_record("NAXIS", 2)),
        pad_card(fixed_record("NAXIS1", width)),
        pad_card(fixed_record("NAXIS2", height)),
    ];
    if let Some((bscale, bzero)) = scaling.filter(|&(s, z)| s != 1.0 || z != 0.0) {
        for (key, value) in [("BSCALE", bscale), ("BZERO", bzero)] {
            let text = format_float(value)
                .ok_or_else(|| invalid(here, format!("{key} = {value} is not finite")))?;
            records.push(pad_card(fixed_record(key, text)));
        }
    }
    records.extend(format_user_cards(here, cards, false)?);
    records.push(pad_card("END".to_owned()));
    let header_len = (records.len() * CARD_LEN).div_ceil(BLOCK_LEN) * BLOCK_LEN;
    let mut out = Vec::with_capacity(header_len + data_capacity);
    for record in &records {
        out.extend_from_slice(record.as_bytes());
    }
    out.resize(header_len, b' ');
    Ok(out)
}
