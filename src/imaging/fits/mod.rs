//! Reading and writing FITS files: 2-D images (plain or RICE tile-compressed),
//! header cards and simple binary tables, on top of cfitsio.
//!
//! This is the only place in wisecut that talks to cfitsio. Everything above it
//! works with [`Raster`](crate::imaging::raster::Raster) buffers, [`Card`]s and
//! plain vectors, so the rest of the code never sees a cfitsio handle or status
//! code. The public items of the submodules are re-exported here, so callers
//! name them as `fits::read_header`, `fits::Card` and so on, whichever file
//! they live in.
//!
//! # Why every function opens and closes its own handle
//!
//! A cfitsio `fitsfile*` carries mutable state (the current HDU, its I/O
//! buffers, a pending compression request) and must not be shared between
//! threads; `fitsio::FitsFile` is therefore not `Send`-friendly. Instead of
//! caching handles, each public function opens the file, does one complete job
//! and closes it again before returning. Callers can then run these functions
//! from any thread (e.g. inside `spawn_blocking`) without coordination: cfitsio
//! is built with `--enable-reentrant`, and read-only opens of the same file get
//! separate cfitsio handles, so concurrent readers never share state. Opening
//! costs one header read, which is negligible next to pixel I/O. Closing
//! explicitly (rather than relying on `Drop`) also lets writers report a failed
//! final flush instead of silently producing a truncated file.
//!
//! One caveat remains for callers: cfitsio attaches a second *read-write* open
//! of a file that is already open read-write in the same process to the same
//! internal state, so two concurrent [`write_table`] calls on one path must be
//! serialised by the caller (writing one file from two threads is a bug
//! anyway). Reading a file while it is being written gives undefined content,
//! as with any file.
//!
//! # Other design points
//!
//! * Files are opened and created with `fits_open_diskfile` /
//!   `fits_create_diskfile`, which switch off cfitsio's "extended filename
//!   syntax": a path is always just a path, so names containing `[`, `(`, `!`
//!   or `mem://` are never interpreted as filters or clobber requests.
//! * Writing is byte-for-byte deterministic: no `DATE`, no checksums, no
//!   clock-seeded dithering (tile compression is only offered for integer
//!   images, where RICE is lossless and needs no `ZDITHER0`). Header cards are
//!   formatted here rather than by cfitsio, so the bytes depend only on the
//!   inputs.
//! * Header cards are parsed here as well (quotes with `''` escapes, comments
//!   after `/`, `D` exponents, the `CONTINUE` long-string convention,
//!   `HIERARCH`), from the 80-character records cfitsio hands back. For a
//!   tile-compressed image HDU cfitsio first rebuilds the header of the
//!   uncompressed image, so callers see `BITPIX`/`NAXISn` rather than
//!   `ZBITPIX`/`ZNAXISn`.
//! * All calls into `fitsio-sys` live in small private methods of one handle
//!   type, each marked `#[allow(unsafe_code)]` with its own `SAFETY` note.
//!   Only `handle.rs` creates or frees a `fitsfile*`; the methods that move
//!   pixels, header text or table columns are `impl` blocks beside the code
//!   that calls them, so each unsafe call is read next to the buffers it is
//!   handed.
//!
//! # Layout
//!
//! * `handle`: the cfitsio handle (open, create, close, move between HDUs),
//!   the restated cfitsio constants, status codes turned into [`FitsError`]s,
//!   and the new-file lifecycle that removes half-written files.
//! * `cards`: [`Card`] and [`HeaderValue`], formatting cards into
//!   80-character records and parsing them back, and reading headers.
//! * `image_hdu`: writing images and reading them whole or by region.
//! * `table_hdu`: writing and reading binary tables.
//! * `encode`: [`RawPixels`] and the in-memory encoding of a one-HDU file.

use std::path::{Path, PathBuf};

mod cards;
mod encode;
mod handle;
mod image_hdu;
mod table_hdu;
#[cfg(test)]
mod test_fixtures;

pub use cards::{
    Card, HeaderValue, card_is_writable, parse_header_lines, parse_header_records, read_header,
    read_keyword,
};
pub use encode::{RawPixels, encode_header, encode_image};
pub use handle::hdu_count;
pub use image_hdu::{
    Compression, HduLayout, ImageInfo, PixelData, ScaledPixel, first_image_hdu, hdu_layout,
    image_info, read_image_f32, read_region, write_image,
};
pub use table_hdu::{
    Column, ColumnData, read_column_f64, read_column_i64, read_column_string, table_rows,
    write_table,
};

/// Everything that can go wrong in this module. Every variant carries the path
/// of the file involved, and its message starts with that path, because a bare
/// cfitsio status ("could not open the named file") is useless in a server log
/// that handles thousands of files.
#[derive(Debug, thiserror::Error)]
pub enum FitsError {
    /// cfitsio returned a non-zero status (the wrapped fitsio/cfitsio error).
    #[error("{}: {op}: cfitsio status {status}: {message}", .path.display())]
    Cfitsio {
        /// File being accessed.
        path: PathBuf,
        /// What this module was doing when cfitsio failed.
        op: String,
        /// The cfitsio status code (see `fitsio.h`).
        status: i32,
        /// cfitsio's short text for the status code.
        message: String,
    },
    /// The HDU exists but is not a 2-D image (a table, or an image with
    /// NAXIS != 2).
    #[error("{}: HDU {hdu} is not a 2-D image HDU: {detail}", .path.display())]
    NotAnImage {
        /// File being accessed.
        path: PathBuf,
        /// Zero-based HDU index.
        hdu: usize,
        /// What was found instead.
        detail: String,
    },
    /// The HDU exists but is not a table.
    #[error("{}: HDU {hdu} is not a table HDU", .path.display())]
    NotATable {
        /// File being accessed.
        path: PathBuf,
        /// Zero-based HDU index.
        hdu: usize,
    },
    /// The file has fewer HDUs than the requested index.
    #[error("{}: HDU {hdu} does not exist", .path.display())]
    NoSuchHdu {
        /// File being accessed.
        path: PathBuf,
        /// Zero-based HDU index that was requested.
        hdu: usize,
    },
    /// No HDU of the file holds a 2-D image.
    #[error("{}: no HDU holds a 2-D image", .path.display())]
    NoImage {
        /// File being accessed.
        path: PathBuf,
    },
    /// The image uses a BITPIX value that cfitsio / this module cannot handle.
    #[error("{}: unsupported BITPIX: {detail}", .path.display())]
    UnsupportedBitpix {
        /// File being accessed.
        path: PathBuf,
        /// The offending value or cfitsio's description of it.
        detail: String,
    },
    /// A keyword that was asked for is not in the header.
    #[error("{}: HDU {hdu}: missing keyword {key}", .path.display())]
    MissingKeyword {
        /// File being accessed.
        path: PathBuf,
        /// Zero-based HDU index.
        hdu: usize,
        /// The keyword that was looked for.
        key: String,
    },
    /// A table has no column of the requested name.
    #[error("{}: HDU {hdu}: no column named {name:?}", .path.display())]
    NoSuchColumn {
        /// File being accessed.
        path: PathBuf,
        /// Zero-based HDU index.
        hdu: usize,
        /// The column name that was looked for.
        name: String,
    },
    /// The request itself is invalid: a bad header card, a region outside the
    /// image, RICE compression of a float image, mismatched column lengths...
    #[error("{}: {message}", .path.display())]
    Invalid {
        /// File being accessed.
        path: PathBuf,
        /// What is wrong with the request.
        message: String,
    },
    /// [`write_image`] refuses to overwrite an existing file.
    #[error("{}: file already exists", .path.display())]
    AlreadyExists {
        /// File that already exists.
        path: PathBuf,
    },
    /// An operating-system level I/O error (missing file, failed removal of a
    /// partial file...).
    #[error("{}: {source}", .path.display())]
    Io {
        /// File being accessed.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl FitsError {
    /// The path of the file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Cfitsio { path, .. }
            | Self::NotAnImage { path, .. }
            | Self::NotATable { path, .. }
            | Self::NoSuchHdu { path, .. }
            | Self::NoImage { path }
            | Self::UnsupportedBitpix { path, .. }
            | Self::MissingKeyword { path, .. }
            | Self::NoSuchColumn { path, .. }
            | Self::Invalid { path, .. }
            | Self::AlreadyExists { path }
            | Self::Io { path, .. } => path,
        }
    }
}

/// The error for a request that is wrong in itself (see
/// [`FitsError::Invalid`]); every submodule reports those with the path.
fn invalid(path: &Path, message: impl Into<String>) -> FitsError {
    FitsError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::test_fixtures::*;
    use super::*;
    use std::fs;

    // Here rather than with the writers: determinism is a promise of the
    // module as a whole, so one test holds images and tables to it.
    #[test]
    fn writing_is_deterministic() {
        let dir = tmp();
        let cards = [
            Card::new("OBJECT", "M 31", "target"),
            Card::new("EXPTIME", 30.5, "s"),
            Card::new("HISTORY", "made by a test", ""),
        ];
        for kind in ALL_KINDS {
            for (name, c) in [
                ("plain", Compression::None),
                ("rice", Compression::Rice { tile: (64, 64) }),
            ] {
                if kind == "f32" && name == "rice" {
                    continue;
                }
                let a = dir.path().join(format!("{kind}-{name}-a.fits"));
                let b = dir.path().join(format!("{kind}-{name}-b.fits"));
                write_kind(&a, kind, 100, 70, &cards, &c).unwrap();
                write_kind(&b, kind, 100, 70, &cards, &c).unwrap();
                assert_eq!(
                    fs::read(&a).unwrap(),
                    fs::read(&b).unwrap(),
                    "{kind}/{name}"
                );
                // Two quick writes usually share a clock second, so also check
                // that nothing clock-derived is in the file at all.
                for (cards, _) in raw_hdus(&a) {
                    for key in ["DATE", "CHECKSUM", "DATASUM", "ZDITHER0"] {
                        assert!(cards.iter().all(|c| c.key != key), "{kind}/{name}: {key}");
                    }
                }
            }
        }
        let names = vec!["a".to_owned(), "bb".to_owned()];
        let table = |path: &Path| {
            let cols = [
                Column::new("ID", "", ColumnData::I64(&[1, 2])),
                Column::new("NAME", "", ColumnData::Str(&names)),
            ];
            write_table(path, "CAT", &cols, &cards).unwrap();
        };
        let (a, b) = (dir.path().join("t-a.fits"), dir.path().join("t-b.fits"));
        table(&a);
        table(&b);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "table");
    }
}
