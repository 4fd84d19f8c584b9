//! Reading and writing FITS files: 2-D images (plain or RICE tile-compressed),
//! header cards and simple binary tables, on top of cfitsio.
//!
//! This is the only place in wisecut that talks to cfitsio. Everything above it
//! works with [`Raster`] buffers, [`Card`]s and plain vectors, so the rest of the
//! code never sees a cfitsio handle or status code.
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

use std::ffi::{CStr, CString, c_char, c_int, c_long, c_void};
use std::path::{Path, PathBuf};
use std::ptr::{self, NonNull};

use fitsio::sys;

use crate::imaging::raster::Raster;

// ---------------------------------------------------------------------------
// cfitsio constants. The bindings export them as `u32` (and some negative ones
// not at all), so the handful used here are restated as `c_int` with the
// values from `fitsio.h` of cfitsio 3.49.

/// `IMAGE_HDU`: also returned for tile-compressed images.
const IMAGE_HDU: c_int = 0;
const ASCII_TBL: c_int = 1;
const BINARY_TBL: c_int = 2;
/// Data type codes for pixel / column transfers.
const TBYTE: c_int = 11;
const TSTRING: c_int = 16;
const TUSHORT: c_int = 20;
const TSHORT: c_int = 21;
const TINT: c_int = 31;
const TFLOAT: c_int = 42;
const TLONGLONG: c_int = 81;
const TDOUBLE: c_int = 82;
/// BITPIX codes for `fits_create_img`; `USHORT_IMG` makes cfitsio write
/// BITPIX = 16 with BZERO = 32768 and BSCALE = 1.
const BYTE_IMG: c_int = 8;
const SHORT_IMG: c_int = 16;
const USHORT_IMG: c_int = 20;
const LONG_IMG: c_int = 32;
const FLOAT_IMG: c_int = -32;
/// Compression algorithm code for `fits_set_compression_type`.
const RICE_1: c_int = 11;
/// `iomode` values for `fits_open_diskfile`.
const READONLY: c_int = 0;
const READWRITE: c_int = 1;
/// Status codes that get their own error variant.
const FILE_NOT_OPENED: c_int = 104;
const END_OF_FILE: c_int = 107;
const BAD_BITPIX: c_int = 211;
const KEY_NO_EXIST: c_int = 202;
/// Size of the buffer `fits_get_errstatus` writes into (`FLEN_STATUS`).
const FLEN_STATUS: usize = 31;
/// cfitsio's limit on file names (`FLEN_FILENAME` - 1).
const MAX_PATH_LEN: usize = 1024;

/// Length of a FITS block: headers and data units are padded to it.
const BLOCK_LEN: usize = 2880;
/// Length of one header record.
const CARD_LEN: usize = 80;
/// Commentary text fits in columns 9..80 of a `COMMENT`/`HISTORY` card.
const COMMENTARY_TEXT_LEN: usize = CARD_LEN - 8;
/// Longest escaped string value that fits on one card between the quotes
/// (columns 12..79), as cfitsio also uses.
const MAX_SINGLE_CARD_STRING: usize = 68;
/// Escaped characters per card when a string is split with `CONTINUE`:
/// one column is needed for the `&` continuation marker.
const CONTINUE_CHUNK: usize = MAX_SINGLE_CARD_STRING - 1;

// ---------------------------------------------------------------------------
// Errors

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

fn invalid(path: &Path, message: impl Into<String>) -> FitsError {
    FitsError::Invalid {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

// ---------------------------------------------------------------------------
// Header cards

/// The value of a header card.
///
/// Values that are neither strings, logicals, integers nor reals (complex
/// numbers, undefined values) are read back as `Str` holding the raw value
/// text (empty for an undefined value). Commentary cards (`COMMENT`,
/// `HISTORY`, blank keyword) carry their text as `Str`.
#[derive(Debug, Clone, PartialEq)]
pub enum HeaderValue {
    /// A character string (quoted in the file).
    Str(String),
    /// An integer.
    Int(i64),
    /// A real number; must be finite to be written.
    Float(f64),
    /// A logical, `T` or `F` in the file.
    Bool(bool),
}

impl HeaderValue {
    /// The string, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value as `f64` if it is numeric (`Int` or `Float`); FITS writers
    /// are free to write `EXPTIME = 30` or `EXPTIME = 30.0`.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            // Precision loss above 2^53 is accepted: callers asking for a
            // float want a float.
            Self::Int(i) => Some(*i as f64),
            Self::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The logical, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Bool(b) => Some(*b),
            _ => None,
        }
    }
}

impl From<&str> for HeaderValue {
    fn from(v: &str) -> Self {
        Self::Str(v.to_owned())
    }
}
impl From<String> for HeaderValue {
    fn from(v: String) -> Self {
        Self::Str(v)
    }
}
impl From<f64> for HeaderValue {
    fn from(v: f64) -> Self {
        Self::Float(v)
    }
}
impl From<i64> for HeaderValue {
    fn from(v: i64) -> Self {
        Self::Int(v)
    }
}
impl From<i32> for HeaderValue {
    fn from(v: i32) -> Self {
        Self::Int(i64::from(v))
    }
}
impl From<bool> for HeaderValue {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

/// One header card: keyword, value and optional comment.
///
/// Writing rules (violations are reported as [`FitsError::Invalid`] before
/// the file is created):
/// * keywords are 1–8 characters of `A-Z 0-9 _ -` (FITS keywords are
///   upper case; lower case is rejected rather than silently changed);
///   `COMMENT`, `HISTORY` and the blank keyword `""` make commentary cards
///   whose text is the value (longer texts are split over several cards) and
///   which take no comment;
/// * keywords that describe the data structure (`BITPIX`, `NAXISn`, `BZERO`,
///   `TFORMn`, `ZIMAGE`, ...) are reserved because this module writes them;
/// * all text must be printable ASCII, floats must be finite;
/// * a string longer than fits on one card is written with the `CONTINUE`
///   long-string convention; trailing blanks of strings are not significant in
///   FITS and are lost;
/// * a comment is truncated to the room left on the 80-character card.
#[derive(Debug, Clone, PartialEq)]
pub struct Card {
    /// Keyword name, e.g. `EXPTIME`.
    pub key: String,
    /// The value.
    pub value: HeaderValue,
    /// The comment after the `/`, if any.
    pub comment: Option<String>,
}

impl Card {
    /// A card; an empty `comment` means no comment.
    pub fn new(key: impl Into<String>, value: impl Into<HeaderValue>, comment: &str) -> Self {
        Self {
            key: key.into(),
            value: value.into(),
            comment: (!comment.is_empty()).then(|| comment.to_owned()),
        }
    }
}

fn is_commentary_key(key: &str) -> bool {
    matches!(key, "COMMENT" | "HISTORY" | "")
}

fn is_printable_ascii(s: &str) -> bool {
    s.bytes().all(|b| (b' '..=b'~').contains(&b))
}

/// Keywords that this module (or cfitsio) writes for structural reasons; a
/// user card with one of these names would corrupt or contradict the file.
fn is_reserved_key(key: &str, table: bool) -> bool {
    const ALWAYS: &[&str] = &[
        "SIMPLE", "BITPIX", "NAXIS", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "BSCALE", "BZERO",
        "END", "CONTINUE", "GROUPS", "TFIELDS", "THEAP", "ZIMAGE", "ZSIMPLE", "ZTENSION",
        "ZBITPIX", "ZNAXIS", "ZEXTEND", "ZBLOCKED", "ZPCOUNT", "ZGCOUNT", "ZCMPTYPE", "ZQUANTIZ",
        "ZDITHER0", "ZHECKSUM", "ZDATASUM", "ZMASKCMP", "ZBLANK", "ZSCALE", "ZZERO",
    ];
    // Indexed keywords: prefix followed by digits only.
    const INDEXED: &[&str] = &[
        "NAXIS", "ZNAXIS", "ZTILE", "ZNAME", "ZVAL", "TTYPE", "TFORM", "TUNIT", "TSCAL", "TZERO",
        "TNULL", "TDISP", "TDIM", "TBCOL",
    ];
    if ALWAYS.contains(&key) || (table && key == "EXTNAME") {
        return true;
    }
    INDEXED.iter().any(|prefix| {
        key.strip_prefix(prefix)
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// Formats a finite float so that it parses back to exactly the same `f64`:
/// Rust's `Debug` output is the shortest round-tripping representation; it is
/// only adjusted to FITS syntax (a decimal point in the mantissa, upper-case
/// `E`).
fn format_float(v: f64) -> Option<String> {
    if !v.is_finite() {
        return None;
    }
    let s = format!("{v:?}");
    Some(match s.split_once('e') {
        None => s,
        Some((mantissa, exp)) => {
            let dot = if mantissa.contains('.') { "" } else { ".0" };
            format!("{mantissa}{dot}E{exp}")
        }
    })
}

/// Text of a value as it appears on a commentary card.
fn value_as_text(value: &HeaderValue) -> Option<String> {
    Some(match value {
        HeaderValue::Str(s) => s.clone(),
        HeaderValue::Int(i) => i.to_string(),
        HeaderValue::Float(f) => format_float(*f)?,
        HeaderValue::Bool(b) => if *b { "T" } else { "F" }.to_owned(),
    })
}

fn pad_card(mut card: String) -> String {
    debug_assert!(card.len() <= CARD_LEN, "card too long: {card:?}");
    card.extend(std::iter::repeat_n(' ', CARD_LEN - card.len()));
    card
}

/// Appends ` / comment` if there is room, truncating the comment to the card.
fn append_comment(card: &mut String, comment: Option<&str>) {
    if let Some(comment) = comment {
        let room = CARD_LEN.saturating_sub(card.len() + 3);
        if room > 0 {
            card.push_str(" / ");
            // Comments are validated as ASCII, so byte slicing is safe.
            card.push_str(&comment[..comment.len().min(room)]);
        }
    }
}

/// Turns one card into one or more 80-character records (more for long
/// commentary text and `CONTINUE` strings). Errors are plain messages; the
/// caller adds the path.
fn format_card(card: &Card, table: bool) -> Result<Vec<String>, String> {
    let key = card.key.as_str();
    let comment = card.comment.as_deref().filter(|c| !c.is_empty());
    if let Some(c) = comment
        && !is_printable_ascii(c)
    {
        return Err(format!("card {key}: comment is not printable ASCII"));
    }

    if is_commentary_key(key) {
        if comment.is_some() {
            return Err(format!("card {key:?}: commentary cards take no comment"));
        }
        let text = value_as_text(&card.value)
            .ok_or_else(|| format!("card {key:?}: value is not finite"))?;
        if !is_printable_ascii(&text) {
            return Err(format!("card {key:?}: text is not printable ASCII"));
        }
        if text.is_empty() {
            return Ok(vec![pad_card(format!("{key:<8}"))]);
        }
        // ASCII, so chunking bytes never splits a character.
        return Ok(text
            .as_bytes()
            .chunks(COMMENTARY_TEXT_LEN)
            .map(|chunk| pad_card(format!("{key:<8}{}", String::from_utf8_lossy(chunk))))
            .collect());
    }

    if key.is_empty()
        || key.len() > 8
        || !key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "invalid keyword {key:?}: use 1-8 characters of A-Z, 0-9, '_' and '-'"
        ));
    }
    if is_reserved_key(key, table) {
        return Err(format!("keyword {key} is reserved: this module writes it"));
    }

    let fixed = match &card.value {
        HeaderValue::Str(s) => {
            if !is_printable_ascii(s) {
                return Err(format!("card {key}: string value is not printable ASCII"));
            }
            return Ok(format_string_card(key, s, comment));
        }
        HeaderValue::Int(i) => i.to_string(),
        HeaderValue::Float(f) => {
            format_float(*f).ok_or_else(|| format!("card {key}: float value {f} is not finite"))?
        }
        HeaderValue::Bool(b) => if *b { "T" } else { "F" }.to_owned(),
    };
    // Fixed format: value right-justified in columns 11..30.
    let mut record = format!("{key:<8}= {fixed:>20}");
    append_comment(&mut record, comment);
    Ok(vec![pad_card(record)])
}

/// A string card, split with the `CONTINUE` long-string convention when the
/// escaped string does not fit on one card. Each part but the last ends in
/// `&`; a doubled quote is never split across cards.
fn format_string_card(key: &str, value: &str, comment: Option<&str>) -> Vec<String> {
    let escaped = value.replace('\'', "''");
    if escaped.len() <= MAX_SINGLE_CARD_STRING {
        // Pad to 8 characters inside the quotes, as cfitsio and most writers
        // do; trailing blanks are not significant.
        let mut record = format!("{key:<8}= '{escaped:<8}'");
        append_comment(&mut record, comment);
        return vec![pad_card(record)];
    }
    // Split into units that must stay together ("''" is one unit).
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut buf = [0u8; 4];
    for ch in value.chars() {
        let piece: &str = if ch == '\'' {
            "''"
        } else {
            ch.encode_utf8(&mut buf)
        };
        if current.len() + piece.len() > CONTINUE_CHUNK {
            chunks.push(std::mem::take(&mut current));
        }
        current.push_str(piece);
    }
    chunks.push(current);
    let last = chunks.len() - 1;
    chunks
        .iter()
        .enumerate()
        .map(|(i, chunk)| {
            let lead = if i == 0 {
                format!("{key:<8}= ")
            } else {
                "CONTINUE  ".to_owned()
            };
            let amp = if i == last { "" } else { "&" };
            let mut record = format!("{lead}'{chunk}{amp}'");
            if i == last {
                append_comment(&mut record, comment);
            }
            pad_card(record)
        })
        .collect()
}

/// Whether `card` could be written as a user card of an image header (valid
/// keyword, printable text, not a structural keyword). Cutouts use it to skip
/// parent cards that cannot be reproduced (e.g. `HIERARCH` keywords).
pub fn card_is_writable(card: &Card) -> bool {
    format_card(card, false).is_ok()
}

/// Formats all user cards, checking for invalid and duplicate keywords.
fn format_user_cards(path: &Path, cards: &[Card], table: bool) -> Result<Vec<String>, FitsError> {
    let mut seen: Vec<&str> = Vec::new();
    let mut records = Vec::new();
    for card in cards {
        if !is_commentary_key(&card.key) {
            if seen.contains(&card.key.as_str()) {
                return Err(invalid(path, format!("keyword {} given twice", card.key)));
            }
            seen.push(&card.key);
        }
        records.extend(format_card(card, table).map_err(|m| invalid(path, m))?);
    }
    Ok(records)
}

/// Parses a quoted FITS string starting at the opening quote. Returns the
/// value (trailing blanks removed, `''` unescaped) and the text after the
/// closing quote. A missing closing quote is tolerated: the rest is the value.
fn parse_quoted(field: &str) -> (String, &str) {
    let mut value = String::new();
    let body = &field[1..];
    let mut chars = body.char_indices().peekable();
    let mut rest = "";
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if let Some(&(_, '\'')) = chars.peek() {
                value.push('\'');
                chars.next();
            } else {
                rest = &body[i + 1..];
                break;
            }
        } else {
            value.push(c);
        }
    }
    let trimmed = value.trim_end_matches(' ').len();
    value.truncate(trimmed);
    (value, rest)
}

fn parse_comment(rest: &str) -> Option<String> {
    let (_, comment) = rest.split_once('/')?;
    let comment = comment.trim();
    (!comment.is_empty()).then(|| comment.to_owned())
}

/// Parses the value field of a card (everything after `= `).
fn parse_value_field(field: &str) -> (HeaderValue, Option<String>) {
    let trimmed = field.trim_start();
    if trimmed.starts_with('\'') {
        let (value, rest) = parse_quoted(trimmed);
        return (HeaderValue::Str(value), parse_comment(rest));
    }
    let (token, comment) = match trimmed.split_once('/') {
        Some((token, _)) => (token.trim(), parse_comment(trimmed)),
        None => (trimmed.trim(), None),
    };
    (parse_scalar(token), comment)
}

/// Parses an unquoted value: logical, integer or real (`E` or `D` exponent).
fn parse_scalar(token: &str) -> HeaderValue {
    match token {
        "T" => return HeaderValue::Bool(true),
        "F" => return HeaderValue::Bool(false),
        _ => {}
    }
    let digits = token.strip_prefix(['+', '-']).unwrap_or(token);
    let has_digit = digits.bytes().any(|b| b.is_ascii_digit());
    // An integer too large for i64 falls through and is kept as a real.
    if has_digit
        && digits.bytes().all(|b| b.is_ascii_digit())
        && let Ok(i) = token.parse::<i64>()
    {
        return HeaderValue::Int(i);
    }
    // Only accept the FITS real syntax, so words such as "NaN" or "inf" that
    // Rust would happily parse stay strings.
    if has_digit
        && digits
            .bytes()
            .all(|b| b.is_ascii_digit() || b".+-EeDd".contains(&b))
        && let Ok(f) = token.replace(['D', 'd'], "E").parse::<f64>()
    {
        return HeaderValue::Float(f);
    }
    HeaderValue::Str(token.to_owned())
}

/// Parses one 80-character record. Returns `None` for `END`.
fn parse_record(record: &str) -> Option<Card> {
    // cfitsio hands back ASCII; anything else is replaced defensively so that
    // byte-based column slicing stays on character boundaries.
    let record: String = record
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect();
    let key = record.get(..8.min(record.len())).unwrap_or("").trim_end();
    if key == "END" {
        return None;
    }
    let tail = record.get(8..).unwrap_or("");
    let text_card = |key: &str| Card {
        key: key.to_owned(),
        value: HeaderValue::Str(tail.trim_end().to_owned()),
        comment: None,
    };
    if is_commentary_key(key) {
        return Some(text_card(key));
    }
    if key == "HIERARCH" {
        // ESO convention: `HIERARCH ESO DET CHIP = value / comment`; the key
        // is reported without the HIERARCH prefix, like astropy does.
        if let Some((name, field)) = tail.split_once('=') {
            let (value, comment) = parse_value_field(field);
            return Some(Card {
                key: name.trim().to_owned(),
                value,
                comment,
            });
        }
        return Some(text_card(key));
    }
    if key == "CONTINUE" {
        // A continuation that did not follow a string ending in `&` is kept
        // as its (parsed) string; `parse_header_records` merges the rest.
        let field = tail.trim_start();
        if field.starts_with('\'') {
            let (value, rest) = parse_quoted(field);
            return Some(Card {
                key: key.to_owned(),
                value: HeaderValue::Str(value),
                comment: parse_comment(rest),
            });
        }
        return Some(text_card(key));
    }
    match tail.strip_prefix("= ") {
        Some(field) => {
            let (value, comment) = parse_value_field(field);
            Some(Card {
                key: key.to_owned(),
                value,
                comment,
            })
        }
        // A keyword without a value indicator is commentary by definition.
        None => Some(text_card(key)),
    }
}

/// Parses a concatenation of 80-character records up to `END`, merging
/// `CONTINUE` long strings into the card they continue.
fn parse_header_records(text: &str) -> Vec<Card> {
    let bytes = text.as_bytes();
    let mut cards: Vec<Card> = Vec::new();
    for chunk in bytes.chunks(CARD_LEN) {
        let record = String::from_utf8_lossy(chunk);
        let Some(card) = parse_record(&record) else {
            break;
        };
        if card.key == "CONTINUE"
            && let HeaderValue::Str(more) = &card.value
            && let Some(prev) = cards.last_mut()
            && !is_commentary_key(&prev.key)
            && let HeaderValue::Str(s) = &mut prev.value
            && s.ends_with('&')
        {
            s.pop();
            s.push_str(more);
            prev.comment = match (prev.comment.take(), card.comment) {
                (Some(a), Some(b)) => Some(format!("{a} {b}")),
                (a, b) => a.or(b),
            };
            continue;
        }
        cards.push(card);
    }
    cards
}

// ---------------------------------------------------------------------------
// Public data types

/// How an image is stored on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// A plain image in the primary HDU.
    None,
    /// RICE tile compression (lossless for integer images), in a binary-table
    /// HDU 1 behind an empty primary HDU, as fpack does. `tile` is
    /// (`NAXIS1` pixels, rows), e.g. `(width, 1)` for row tiles like
    /// Pan-STARRS, or `(256, 256)`. Tile sizes larger than the image are
    /// clamped to the image size; zero is rejected.
    Rice {
        /// Tile size as (pixels along x, rows along y).
        tile: (usize, usize),
    },
}

/// Pixels to write, borrowed from the caller; the variant fixes the on-disk
/// type.
#[derive(Debug, Clone, Copy)]
pub enum PixelData<'a> {
    /// BITPIX 8.
    U8(&'a Raster<u8>),
    /// BITPIX 16.
    I16(&'a Raster<i16>),
    /// BITPIX 16 with BZERO = 32768 (the FITS convention for unsigned 16-bit).
    U16(&'a Raster<u16>),
    /// BITPIX 32.
    I32(&'a Raster<i32>),
    /// BITPIX -32 (cannot be RICE-compressed here; see [`write_image`]).
    F32(&'a Raster<f32>),
}

impl PixelData<'_> {
    fn dims_and_len(&self) -> (usize, usize, usize) {
        match self {
            Self::U8(i) => (i.width, i.height, i.data.len()),
            Self::I16(i) => (i.width, i.height, i.data.len()),
            Self::U16(i) => (i.width, i.height, i.data.len()),
            Self::I32(i) => (i.width, i.height, i.data.len()),
            Self::F32(i) => (i.width, i.height, i.data.len()),
        }
    }

    fn bitpix_code(&self) -> c_int {
        match self {
            Self::U8(_) => BYTE_IMG,
            Self::I16(_) => SHORT_IMG,
            Self::U16(_) => USHORT_IMG,
            Self::I32(_) => LONG_IMG,
            Self::F32(_) => FLOAT_IMG,
        }
    }
}

/// Size and type of the image in an HDU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// `NAXIS1` of the (uncompressed) image.
    pub width: usize,
    /// `NAXIS2` of the (uncompressed) image.
    pub height: usize,
    /// `BITPIX` of the (uncompressed) image as stored, e.g. 16 for unsigned
    /// 16-bit data stored with BZERO = 32768.
    pub bitpix: i32,
    /// Whether the HDU is a tile-compressed image.
    pub compressed: bool,
}

impl ImageInfo {
    /// The f32 null value for reading: NaN (cfitsio maps undefined pixels to
    /// it) for integer images (BLANK) and compressed images (ZBLANK, also for
    /// quantised floats); zero (no check) for plain float images (see
    /// `Handle::read_subset`).
    fn null_value(&self) -> f32 {
        if self.bitpix > 0 || self.compressed {
            f32::NAN
        } else {
            0.0
        }
    }
}

/// Column data of a binary table to write; all columns of a table must have
/// the same length (the number of rows).
#[derive(Debug, Clone, Copy)]
pub enum ColumnData<'a> {
    /// `J` column.
    I32(&'a [i32]),
    /// `K` column.
    I64(&'a [i64]),
    /// `E` column.
    F32(&'a [f32]),
    /// `D` column.
    F64(&'a [f64]),
    /// `nA` column, `n` the longest string (at least 1). Strings must be
    /// printable ASCII; trailing blanks are not significant in FITS and are
    /// lost.
    Str(&'a [String]),
}

impl ColumnData<'_> {
    fn len(&self) -> usize {
        match self {
            Self::I32(v) => v.len(),
            Self::I64(v) => v.len(),
            Self::F32(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::Str(v) => v.len(),
        }
    }
}

/// A named column of a binary table to write.
#[derive(Debug, Clone, Copy)]
pub struct Column<'a> {
    /// `TTYPEn`: printable ASCII, unique in the table (case-insensitively).
    pub name: &'a str,
    /// `TUNITn`; empty for none.
    pub unit: &'a str,
    /// The values.
    pub data: ColumnData<'a>,
}

impl<'a> Column<'a> {
    /// A column with its name, unit (may be empty) and data.
    pub fn new(name: &'a str, unit: &'a str, data: ColumnData<'a>) -> Self {
        Self { name, unit, data }
    }
}

// ---------------------------------------------------------------------------
// The cfitsio handle: every unsafe call of this module is in here.

/// Pixel types that can be handed to cfitsio; the code tells cfitsio the
/// memory layout of the buffer, so each impl must name the matching C type.
trait Pixel: Copy {
    const TYPE_CODE: c_int;
}
impl Pixel for u8 {
    const TYPE_CODE: c_int = TBYTE;
}
impl Pixel for i16 {
    const TYPE_CODE: c_int = TSHORT;
}
impl Pixel for f64 {
    const TYPE_CODE: c_int = TDOUBLE;
}
impl Pixel for u16 {
    const TYPE_CODE: c_int = TUSHORT;
}
impl Pixel for i32 {
    // c_int is i32 on every platform Rust and cfitsio support together.
    const TYPE_CODE: c_int = TINT;
}
impl Pixel for f32 {
    const TYPE_CODE: c_int = TFLOAT;
}

/// The short text cfitsio has for a status code.
#[allow(unsafe_code)]
fn status_text(status: c_int) -> String {
    let mut buf = [0 as c_char; FLEN_STATUS];
    // SAFETY: `ffgerr` writes at most FLEN_STATUS bytes including the NUL
    // terminator into the buffer, which has exactly that size.
    unsafe { sys::ffgerr(status, buf.as_mut_ptr()) };
    // SAFETY: the buffer was zero-initialised and ffgerr NUL-terminates, so a
    // NUL lies within it.
    unsafe { CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn path_cstring(path: &Path) -> Result<CString, FitsError> {
    let s = path
        .to_str()
        .ok_or_else(|| invalid(path, "path is not valid UTF-8"))?;
    // cfitsio skips leading blanks of file names, so such a path would name a
    // different file.
    if s.starts_with(' ') || s.is_empty() {
        return Err(invalid(path, "path is empty or starts with a blank"));
    }
    if s.len() > MAX_PATH_LEN {
        return Err(invalid(
            path,
            "path is longer than cfitsio's 1024-byte limit",
        ));
    }
    CString::new(s).map_err(|_| invalid(path, "path contains a NUL byte"))
}

fn to_c_long(path: &Path, v: usize) -> Result<c_long, FitsError> {
    c_long::try_from(v).map_err(|_| invalid(path, format!("{v} is too large for cfitsio")))
}

fn to_longlong(path: &Path, v: usize) -> Result<i64, FitsError> {
    i64::try_from(v).map_err(|_| invalid(path, format!("{v} is too large for cfitsio")))
}

/// An open cfitsio file. Owns the `fitsfile*`; closed by [`Handle::close`]
/// (checked) or, on error paths, by `Drop` (unchecked). Not `Send`, because of
/// the raw pointer, which is exactly right for cfitsio handles.
struct Handle {
    /// `None` only after `close` has taken it.
    ptr: Option<NonNull<sys::fitsfile>>,
    path: PathBuf,
}

impl Handle {
    fn err(&self, op: &str, status: c_int) -> FitsError {
        status_error(&self.path, op, status)
    }

    fn check(&self, op: &str, status: c_int) -> Result<(), FitsError> {
        if status == 0 {
            Ok(())
        } else {
            Err(self.err(op, status))
        }
    }

    fn raw(&self) -> *mut sys::fitsfile {
        // `close` consumes the handle, so every other method sees `Some`.
        self.ptr.expect("cfitsio handle used after close").as_ptr()
    }

    /// Opens an existing file without extended-filename parsing.
    #[allow(unsafe_code)]
    fn open(path: &Path, writable: bool) -> Result<Self, FitsError> {
        let c_path = path_cstring(path)?;
        let mut fptr: *mut sys::fitsfile = ptr::null_mut();
        let mut status: c_int = 0;
        let mode = if writable { READWRITE } else { READONLY };
        // SAFETY: `fptr` and `status` are valid out-pointers and `c_path` is a
        // NUL-terminated string that outlives the call.
        unsafe { sys::ffdkopn(&mut fptr, c_path.as_ptr(), mode, &mut status) };
        if status != 0 {
            if status == FILE_NOT_OPENED && std::fs::symlink_metadata(path).is_err() {
                return Err(FitsError::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::from(std::io::ErrorKind::NotFound),
                });
            }
            return Err(status_error(path, "open", status));
        }
        let ptr = NonNull::new(fptr).ok_or_else(|| invalid(path, "cfitsio returned no handle"))?;
        Ok(Self {
            ptr: Some(ptr),
            path: path.to_path_buf(),
        })
    }

    /// Creates a new, empty file; cfitsio itself refuses to overwrite.
    #[allow(unsafe_code)]
    fn create(path: &Path) -> Result<Self, FitsError> {
        let c_path = path_cstring(path)?;
        let mut fptr: *mut sys::fitsfile = ptr::null_mut();
        let mut status: c_int = 0;
        // SAFETY: as in `open`.
        unsafe { sys::ffdkinit(&mut fptr, c_path.as_ptr(), &mut status) };
        if status != 0 {
            return Err(status_error(path, "create", status));
        }
        let ptr = NonNull::new(fptr).ok_or_else(|| invalid(path, "cfitsio returned no handle"))?;
        Ok(Self {
            ptr: Some(ptr),
            path: path.to_path_buf(),
        })
    }

    /// Closes the file, flushing buffers, and reports any failure.
    #[allow(unsafe_code)]
    fn close(mut self) -> Result<(), FitsError> {
        let Some(fptr) = self.ptr.take() else {
            return Ok(());
        };
        let mut status: c_int = 0;
        // SAFETY: the pointer came from ffdkopn/ffdkinit and was taken out of
        // the handle, so Drop will not close it a second time.
        unsafe { sys::ffclos(fptr.as_ptr(), &mut status) };
        self.check("close", status)
    }

    /// Moves to zero-based HDU `hdu` and returns its type (`IMAGE_HDU` also
    /// for compressed images).
    #[allow(unsafe_code)]
    fn move_to(&self, hdu: usize) -> Result<c_int, FitsError> {
        let number = c_int::try_from(hdu)
            .ok()
            .and_then(|h| h.checked_add(1))
            .ok_or_else(|| FitsError::NoSuchHdu {
                path: self.path.clone(),
                hdu,
            })?;
        let mut status: c_int = 0;
        let mut hdutype: c_int = 0;
        // SAFETY: valid handle and out-pointers. ffghdt (rather than the type
        // ffmahd reports) reports compressed images as IMAGE_HDU.
        unsafe {
            sys::ffmahd(self.raw(), number, ptr::null_mut(), &mut status);
            sys::ffghdt(self.raw(), &mut hdutype, &mut status);
        }
        match status {
            0 => Ok(hdutype),
            END_OF_FILE => Err(FitsError::NoSuchHdu {
                path: self.path.clone(),
                hdu,
            }),
            s => Err(self.err(&format!("move to HDU {hdu}"), s)),
        }
    }

    /// Number of HDUs in the file.
    #[allow(unsafe_code)]
    fn num_hdus(&self) -> Result<usize, FitsError> {
        let mut status: c_int = 0;
        let mut n: c_int = 0;
        // SAFETY: valid handle and out-pointers.
        unsafe { sys::ffthdu(self.raw(), &mut n, &mut status) };
        self.check("count HDUs", status)?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Zero-based index of the current HDU.
    #[allow(unsafe_code)]
    fn current_hdu(&self) -> usize {
        let mut n: c_int = 0;
        // SAFETY: valid handle and out-pointer; ffghdn cannot fail.
        unsafe { sys::ffghdn(self.raw(), &mut n) };
        usize::try_from(n - 1).unwrap_or(0)
    }

    /// NAXIS, NAXISn (first two), BITPIX and compression of the current image
    /// HDU, all of the uncompressed image.
    #[allow(unsafe_code)]
    fn image_params(&self) -> Result<(c_int, [i64; 2], c_int, bool), FitsError> {
        let mut status: c_int = 0;
        let mut naxis: c_int = 0;
        let mut naxes = [0i64; 2];
        let mut bitpix: c_int = 0;
        // SAFETY: valid handle and out-pointers; ffgiszll writes at most
        // `nlen` = 2 values into `naxes`, which has room for 2.
        let compressed = unsafe {
            sys::ffgidm(self.raw(), &mut naxis, &mut status);
            sys::ffgiszll(self.raw(), 2, naxes.as_mut_ptr(), &mut status);
            sys::ffgidt(self.raw(), &mut bitpix, &mut status);
            sys::fits_is_compressed_image(self.raw(), &mut status)
        };
        self.check("read image size", status)?;
        Ok((naxis, naxes, bitpix, compressed != 0))
    }

    /// Requests RICE compression for the next image created with this handle.
    #[allow(unsafe_code)]
    fn request_rice(&self, tile: (usize, usize)) -> Result<(), FitsError> {
        let mut dims = [
            to_c_long(&self.path, tile.0)?,
            to_c_long(&self.path, tile.1)?,
        ];
        let mut status: c_int = 0;
        // SAFETY: valid handle; `dims` holds the 2 values ndim = 2 announces
        // and is only read.
        unsafe {
            sys::fits_set_compression_type(self.raw(), RICE_1, &mut status);
            sys::fits_set_tile_dim(self.raw(), 2, dims.as_mut_ptr(), &mut status);
        }
        self.check("request RICE compression", status)
    }

    /// Creates an image HDU (the primary one in an empty file, or a
    /// compressed one if requested).
    #[allow(unsafe_code)]
    fn create_image(&self, bitpix: c_int, width: usize, height: usize) -> Result<(), FitsError> {
        let mut naxes = [
            to_longlong(&self.path, width)?,
            to_longlong(&self.path, height)?,
        ];
        let mut status: c_int = 0;
        // SAFETY: valid handle; `naxes` holds NAXIS = 2 values and is only read.
        unsafe { sys::ffcrimll(self.raw(), bitpix, 2, naxes.as_mut_ptr(), &mut status) };
        self.check("create image HDU", status)
    }

    /// Creates an empty primary HDU (NAXIS = 0).
    #[allow(unsafe_code)]
    fn create_empty_primary(&self) -> Result<(), FitsError> {
        let mut status: c_int = 0;
        // SAFETY: valid handle; with NAXIS = 0 the axes pointer is not read.
        unsafe { sys::ffcrimll(self.raw(), BYTE_IMG, 0, ptr::null_mut(), &mut status) };
        self.check("create empty primary HDU", status)
    }

    /// Appends one formatted 80-character record to the current header.
    #[allow(unsafe_code)]
    fn write_record(&self, record: &str) -> Result<(), FitsError> {
        let c_record =
            CString::new(record).map_err(|_| invalid(&self.path, "NUL in header card"))?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `c_record` is NUL-terminated and outlives the
        // call, which copies at most 80 bytes of it.
        unsafe { sys::ffprec(self.raw(), c_record.as_ptr(), &mut status) };
        self.check(
            &format!("write header card {:?}", record.trim_end()),
            status,
        )
    }

    /// Writes all pixels of the current (2-D) image HDU.
    #[allow(unsafe_code)]
    fn write_pixels<T: Pixel>(&self, data: &[T]) -> Result<(), FitsError> {
        let mut first: [c_long; 2] = [1, 1];
        let n = to_longlong(&self.path, data.len())?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `first` holds NAXIS = 2 values; `data` holds
        // `n` elements of the C type T::TYPE_CODE names. cfitsio documents the
        // array as input only and copies it into its own buffers (also when
        // compressing), so handing out a mutable pointer to shared data is
        // sound.
        unsafe {
            sys::ffppx(
                self.raw(),
                T::TYPE_CODE,
                first.as_mut_ptr(),
                n,
                data.as_ptr().cast::<c_void>().cast_mut(),
                &mut status,
            );
        }
        self.check("write pixels", status)
    }

    /// Reads the rectangle with one-based inclusive corners `blc`..`trc` of
    /// the current image HDU as `T` (f32 or f64), scaled. A non-zero `nulval`
    /// (NaN) switches on cfitsio's null check, so undefined pixels (BLANK /
    /// ZBLANK) become NaN; but that check also turns infinities into NaN and
    /// -0.0 and subnormals into 0, so uncompressed float images are read with
    /// zero (no check): their NaNs are NaN anyway.
    #[allow(unsafe_code)]
    fn read_subset<T: Pixel + Default>(
        &self,
        blc: [usize; 2],
        trc: [usize; 2],
        mut nulval: T,
    ) -> Result<Vec<T>, FitsError> {
        let w = trc[0] + 1 - blc[0];
        let h = trc[1] + 1 - blc[1];
        let n = w
            .checked_mul(h)
            .ok_or_else(|| invalid(&self.path, "region too large"))?;
        let mut out = vec![T::default(); n];
        let mut fpixel = [
            to_c_long(&self.path, blc[0])?,
            to_c_long(&self.path, blc[1])?,
        ];
        let mut lpixel = [
            to_c_long(&self.path, trc[0])?,
            to_c_long(&self.path, trc[1])?,
        ];
        let mut inc: [c_long; 2] = [1, 1];
        let mut anynul: c_int = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle; the corner and increment arrays hold NAXIS = 2
        // values and are only read; `out` has room for exactly the w*h values
        // of the inclusive rectangle; `nulval` and `out` are of the C type
        // `T::TYPE_CODE` names.
        unsafe {
            sys::ffgsv(
                self.raw(),
                T::TYPE_CODE,
                fpixel.as_mut_ptr(),
                lpixel.as_mut_ptr(),
                inc.as_mut_ptr(),
                (&raw mut nulval).cast::<c_void>(),
                out.as_mut_ptr().cast::<c_void>(),
                &mut anynul,
                &mut status,
            );
        }
        self.check("read pixels", status)?;
        Ok(out)
    }

    /// Byte offset of the current HDU's data unit in the file.
    #[allow(unsafe_code)]
    fn data_offset(&self) -> Result<u64, FitsError> {
        let (mut head, mut data, mut end) = (0i64, 0i64, 0i64);
        let mut status: c_int = 0;
        // SAFETY: valid handle and out-pointers.
        unsafe { sys::ffghadll(self.raw(), &mut head, &mut data, &mut end, &mut status) };
        self.check("locate data unit", status)?;
        u64::try_from(data).map_err(|_| invalid(&self.path, "negative data offset"))
    }

    /// An integer keyword of the current HDU's header as stored on disk (for a
    /// compressed image: the binary table's own header, where `ZTILEn`
    /// live); `None` when absent.
    #[allow(unsafe_code)]
    fn raw_int_keyword(&self, key: &str) -> Result<Option<i64>, FitsError> {
        let c_key = CString::new(key).map_err(|_| invalid(&self.path, "bad keyword"))?;
        let mut value: std::ffi::c_longlong = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle; NUL-terminated key; a null comment pointer is
        // allowed by cfitsio (the comment is then not returned).
        unsafe {
            sys::ffgkyjj(
                self.raw(),
                c_key.as_ptr(),
                &mut value,
                ptr::null_mut(),
                &mut status,
            )
        };
        match status {
            0 => Ok(Some(value)),
            KEY_NO_EXIST => Ok(None),
            s => Err(self.err(&format!("read keyword {key}"), s)),
        }
    }

    /// The header of the current HDU as cfitsio presents it (for a compressed
    /// image: the header of the uncompressed image), parsed into cards.
    #[allow(unsafe_code)]
    fn header(&self) -> Result<Vec<Card>, FitsError> {
        let mut text_ptr: *mut c_char = ptr::null_mut();
        let mut nkeys: c_int = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle and out-pointers; no exclusion list (nexc = 0,
        // so the null list is not read).
        unsafe {
            sys::ffcnvthdr2str(
                self.raw(),
                0,
                ptr::null_mut(),
                0,
                &mut text_ptr,
                &mut nkeys,
                &mut status,
            );
        }
        let text = if text_ptr.is_null() {
            String::new()
        } else {
            // SAFETY: cfitsio returned a NUL-terminated string it allocated;
            // it is copied out before being freed exactly once with cfitsio's
            // own deallocator.
            let text = unsafe { CStr::from_ptr(text_ptr) }
                .to_string_lossy()
                .into_owned();
            let mut free_status: c_int = 0;
            // SAFETY: see above.
            unsafe { sys::fffree(text_ptr.cast::<c_void>(), &mut free_status) };
            text
        };
        self.check("read header", status)?;
        Ok(parse_header_records(&text))
    }

    /// Appends a binary table HDU at the end of the file (the handle must be
    /// positioned at the last HDU).
    #[allow(unsafe_code)]
    fn create_table(
        &self,
        extname: &CStr,
        names: &[CString],
        forms: &[CString],
        units: &[CString],
        rows: usize,
    ) -> Result<(), FitsError> {
        let as_ptrs = |v: &[CString]| -> Vec<*mut c_char> {
            v.iter().map(|s| s.as_ptr().cast_mut()).collect()
        };
        let mut ttype = as_ptrs(names);
        let mut tform = as_ptrs(forms);
        let mut tunit = as_ptrs(units);
        let tfields =
            c_int::try_from(names.len()).map_err(|_| invalid(&self.path, "too many columns"))?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; the three pointer arrays each hold `tfields`
        // NUL-terminated strings that outlive the call; cfitsio declares them
        // `char **` but only reads them.
        unsafe {
            sys::ffcrtb(
                self.raw(),
                BINARY_TBL,
                to_longlong(&self.path, rows)?,
                tfields,
                ttype.as_mut_ptr(),
                tform.as_mut_ptr(),
                tunit.as_mut_ptr(),
                extname.as_ptr(),
                &mut status,
            );
        }
        self.check("create table HDU", status)
    }

    /// Writes a numeric column (`T` must match `type_code`).
    #[allow(unsafe_code)]
    fn write_column<T: Copy>(
        &self,
        colnum: c_int,
        type_code: c_int,
        data: &[T],
    ) -> Result<(), FitsError> {
        if data.is_empty() {
            return Ok(());
        }
        let n = to_longlong(&self.path, data.len())?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `data` holds `n` elements of the C type named
        // by `type_code` (guaranteed by the private callers); cfitsio only
        // reads the array.
        unsafe {
            sys::ffpcl(
                self.raw(),
                type_code,
                colnum,
                1,
                1,
                n,
                data.as_ptr().cast::<c_void>().cast_mut(),
                &mut status,
            );
        }
        self.check(&format!("write column {colnum}"), status)
    }

    /// Writes a string column.
    #[allow(unsafe_code)]
    fn write_string_column(&self, colnum: c_int, data: &[CString]) -> Result<(), FitsError> {
        if data.is_empty() {
            return Ok(());
        }
        let mut ptrs: Vec<*mut c_char> = data.iter().map(|s| s.as_ptr().cast_mut()).collect();
        let n = to_longlong(&self.path, data.len())?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `ptrs` holds `n` NUL-terminated strings that
        // outlive the call and are only read.
        unsafe { sys::ffpcls(self.raw(), colnum, 1, 1, n, ptrs.as_mut_ptr(), &mut status) };
        self.check(&format!("write column {colnum}"), status)
    }

    /// Deletes the current HDU (used to roll back a half-written table).
    #[allow(unsafe_code)]
    fn delete_current_hdu(&self) {
        let mut status: c_int = 0;
        // SAFETY: valid handle and out-pointers.
        unsafe { sys::ffdhdu(self.raw(), ptr::null_mut(), &mut status) };
    }

    /// Number of rows of the current table HDU.
    #[allow(unsafe_code)]
    fn num_rows(&self) -> Result<usize, FitsError> {
        let mut rows: i64 = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle and out-pointers.
        unsafe { sys::ffgnrwll(self.raw(), &mut rows, &mut status) };
        self.check("read number of rows", status)?;
        Ok(usize::try_from(rows).unwrap_or(0))
    }

    /// Type code, repeat count, width and display width of a column.
    #[allow(unsafe_code)]
    fn column_type(&self, colnum: c_int) -> Result<(c_int, usize, usize, usize), FitsError> {
        let mut typecode: c_int = 0;
        let mut repeat: i64 = 0;
        let mut width: i64 = 0;
        let mut dispwidth: c_int = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle and out-pointers.
        unsafe {
            sys::ffgtclll(
                self.raw(),
                colnum,
                &mut typecode,
                &mut repeat,
                &mut width,
                &mut status,
            );
            sys::ffgcdw(self.raw(), colnum, &mut dispwidth, &mut status);
        }
        self.check(&format!("read type of column {colnum}"), status)?;
        let to_usize = |v: i64| usize::try_from(v).unwrap_or(0);
        Ok((
            typecode,
            to_usize(repeat),
            to_usize(width),
            to_usize(i64::from(dispwidth)),
        ))
    }

    /// Reads `n` numeric values (rows × repeat, in file order) of a column,
    /// converted by cfitsio to `T` (`type_code` must match `T`).
    #[allow(unsafe_code)]
    fn read_column<T: Copy + Default>(
        &self,
        colnum: c_int,
        type_code: c_int,
        n: usize,
        mut nulval: T,
    ) -> Result<Vec<T>, FitsError> {
        let mut out = vec![T::default(); n];
        if n == 0 {
            return Ok(out);
        }
        let mut anynul: c_int = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `out` has room for `n` values of the C type
        // named by `type_code` (guaranteed by the private callers), and
        // `nulval` is a value of that type.
        unsafe {
            sys::ffgcv(
                self.raw(),
                type_code,
                colnum,
                1,
                1,
                to_longlong(&self.path, n)?,
                (&raw mut nulval).cast::<c_void>(),
                out.as_mut_ptr().cast::<c_void>(),
                &mut anynul,
                &mut status,
            );
        }
        self.check(&format!("read column {colnum}"), status)?;
        Ok(out)
    }

    /// Reads `n` values of a column as strings, each at most `width` bytes.
    #[allow(unsafe_code)]
    fn read_string_column(
        &self,
        colnum: c_int,
        n: usize,
        width: usize,
    ) -> Result<Vec<String>, FitsError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut buffers: Vec<Vec<c_char>> = vec![vec![0; width + 1]; n];
        let mut ptrs: Vec<*mut c_char> = buffers.iter_mut().map(|b| b.as_mut_ptr()).collect();
        let mut nulval: [c_char; 1] = [0];
        let mut anynul: c_int = 0;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `ptrs` holds `n` pointers to zeroed buffers of
        // `width + 1` bytes, enough for the widest value cfitsio produces for
        // this column (its width / display width) plus the NUL; `nulval` is an
        // empty NUL-terminated string.
        unsafe {
            sys::ffgcvs(
                self.raw(),
                colnum,
                1,
                1,
                to_longlong(&self.path, n)?,
                nulval.as_mut_ptr(),
                ptrs.as_mut_ptr(),
                &mut anynul,
                &mut status,
            );
        }
        self.check(&format!("read column {colnum}"), status)?;
        Ok(buffers
            .iter()
            .map(|b| {
                let bytes: Vec<u8> = b
                    .iter()
                    .take_while(|&&c| c != 0)
                    .map(|&c| c as u8)
                    .collect();
                // Trailing blanks are not significant in FITS strings (cfitsio
                // leaves one blank for an empty string).
                String::from_utf8_lossy(&bytes)
                    .trim_end_matches(' ')
                    .to_owned()
            })
            .collect())
    }
}

impl Drop for Handle {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if let Some(fptr) = self.ptr.take() {
            let mut status: c_int = 0;
            // SAFETY: the pointer came from ffdkopn/ffdkinit and is taken out
            // of the handle, so it is closed exactly once. Errors cannot be
            // reported from Drop; paths that need them call `close`.
            unsafe { sys::ffclos(fptr.as_ptr(), &mut status) };
        }
    }
}

fn status_error(path: &Path, op: &str, status: c_int) -> FitsError {
    if status == BAD_BITPIX {
        return FitsError::UnsupportedBitpix {
            path: path.to_path_buf(),
            detail: format!("{op}: {}", status_text(status)),
        };
    }
    FitsError::Cfitsio {
        path: path.to_path_buf(),
        op: op.to_owned(),
        status,
        message: status_text(status),
    }
}

// ---------------------------------------------------------------------------
// Writing

/// Closes a handle of a file this call created; on any failure (of `result`
/// or of the close itself) the partial file is removed, so a failed write
/// never leaves a half-written file that a later run would refuse to replace.
fn finish_new_file<T>(handle: Handle, result: Result<T, FitsError>) -> Result<T, FitsError> {
    let path = handle.path.clone();
    let result = match result {
        Ok(v) => handle.close().map(|()| v),
        Err(e) => {
            drop(handle);
            Err(e)
        }
    };
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = std::fs::remove_file(&path);
    }
    result
}

fn ensure_absent(path: &Path) -> Result<(), FitsError> {
    match std::fs::symlink_metadata(path) {
        Ok(_) => Err(FitsError::AlreadyExists {
            path: path.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(FitsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Writes a new FITS file (fails with [`FitsError::AlreadyExists`] if the path
/// exists) holding one image and the given extra header cards, and returns the
/// HDU index of the image.
///
/// * [`Compression::None`]: the image is the primary HDU (index 0).
/// * [`Compression::Rice`]: the primary HDU is empty and the image is the
///   tile-compressed HDU 1 (`ZIMAGE = T`), as fpack does. Only integer images
///   can be compressed: float images would need quantisation with a dither
///   seed, which is lossy and (with cfitsio's default seed) not reproducible,
///   so `F32` + RICE is refused.
///
/// The cards follow the mandatory keywords in the given order (see [`Card`]
/// for the rules). The output is byte-for-byte deterministic: no `DATE`, no
/// checksum, nothing derived from the clock. Everything is validated before
/// the file is created, and a file that fails half-way is removed.
pub fn write_image(
    path: &Path,
    pixels: PixelData<'_>,
    cards: &[Card],
    compression: &Compression,
) -> Result<usize, FitsError> {
    let (width, height, len) = pixels.dims_and_len();
    if width == 0 || height == 0 {
        return Err(invalid(
            path,
            format!("cannot write an empty {width}x{height} image"),
        ));
    }
    if width.checked_mul(height) != Some(len) {
        return Err(invalid(
            path,
            format!("image buffer holds {len} pixels, not {width}x{height}"),
        ));
    }
    let tile = match *compression {
        Compression::None => None,
        Compression::Rice { tile } => {
            if matches!(pixels, PixelData::F32(_)) {
                return Err(invalid(
                    path,
                    "RICE compression of float images is not supported: it would be lossy and not \
                     reproducible; write F32 images uncompressed",
                ));
            }
            if tile.0 == 0 || tile.1 == 0 {
                return Err(invalid(path, format!("invalid RICE tile size {tile:?}")));
            }
            // Clamp so ZTILEn never exceeds NAXISn; some readers reject that.
            Some((tile.0.min(width), tile.1.min(height)))
        }
    };
    let records = format_user_cards(path, cards, false)?;
    ensure_absent(path)?;

    let handle = Handle::create(path)?;
    let result = (|| {
        if let Some(tile) = tile {
            handle.request_rice(tile)?;
        }
        // In an empty file with compression requested, cfitsio writes an
        // empty primary HDU and puts the image in a compressed HDU 1.
        handle.create_image(pixels.bitpix_code(), width, height)?;
        for record in &records {
            handle.write_record(record)?;
        }
        match pixels {
            PixelData::U8(i) => handle.write_pixels(&i.data)?,
            PixelData::I16(i) => handle.write_pixels(&i.data)?,
            PixelData::U16(i) => handle.write_pixels(&i.data)?,
            PixelData::I32(i) => handle.write_pixels(&i.data)?,
            PixelData::F32(i) => handle.write_pixels(&i.data)?,
        }
        Ok(handle.current_hdu())
    })();
    finish_new_file(handle, result)
}

/// TFORM and C strings for one column, validated.
struct PreparedColumn {
    name: CString,
    form: CString,
    unit: CString,
    strings: Option<Vec<CString>>,
}

fn prepare_column(path: &Path, column: &Column<'_>) -> Result<PreparedColumn, FitsError> {
    let name = column.name;
    if name.is_empty() || !is_printable_ascii(name) || name.len() > 68 {
        return Err(invalid(path, format!("invalid column name {name:?}")));
    }
    if !is_printable_ascii(column.unit) || column.unit.len() > 68 {
        return Err(invalid(
            path,
            format!("column {name}: invalid unit {:?}", column.unit),
        ));
    }
    let mut strings = None;
    let form = match column.data {
        ColumnData::I32(_) => "1J".to_owned(),
        ColumnData::I64(_) => "1K".to_owned(),
        ColumnData::F32(_) => "1E".to_owned(),
        ColumnData::F64(_) => "1D".to_owned(),
        ColumnData::Str(values) => {
            if let Some(bad) = values.iter().find(|s| !is_printable_ascii(s)) {
                return Err(invalid(
                    path,
                    format!("column {name}: value {bad:?} is not printable ASCII"),
                ));
            }
            let width = values.iter().map(String::len).max().unwrap_or(0).max(1);
            strings = Some(
                values
                    .iter()
                    .map(|s| CString::new(s.as_str()).expect("printable ASCII has no NUL"))
                    .collect(),
            );
            format!("{width}A")
        }
    };
    let cstr = |s: &str| CString::new(s).expect("validated as printable ASCII");
    Ok(PreparedColumn {
        name: cstr(name),
        form: cstr(&form),
        unit: cstr(column.unit),
        strings,
    })
}

/// Appends a binary-table HDU named `extname` to an existing FITS file, or
/// creates the file with an empty primary HDU first, and returns the new HDU's
/// index. Column names must be unique (case-insensitively, as FITS readers
/// match them); all columns need the same length; cards follow the rules of
/// [`Card`] (`EXTNAME` and the `T*` structure keywords are reserved). The
/// bytes written are deterministic. If writing fails, a newly created file is
/// removed and an appended HDU is deleted again (best effort).
pub fn write_table(
    path: &Path,
    extname: &str,
    columns: &[Column<'_>],
    cards: &[Card],
) -> Result<usize, FitsError> {
    if extname.is_empty() || !is_printable_ascii(extname) || extname.len() > 68 {
        return Err(invalid(path, format!("invalid EXTNAME {extname:?}")));
    }
    let Some(first) = columns.first() else {
        return Err(invalid(path, "a table needs at least one column"));
    };
    let rows = first.data.len();
    for (i, column) in columns.iter().enumerate() {
        if column.data.len() != rows {
            return Err(invalid(
                path,
                format!(
                    "column {} has {} rows but column {} has {rows}",
                    column.name,
                    column.data.len(),
                    first.name
                ),
            ));
        }
        if columns[..i]
            .iter()
            .any(|c| c.name.eq_ignore_ascii_case(column.name))
        {
            return Err(invalid(
                path,
                format!("column name {} given twice", column.name),
            ));
        }
    }
    let prepared = columns
        .iter()
        .map(|c| prepare_column(path, c))
        .collect::<Result<Vec<_>, _>>()?;
    let records = format_user_cards(path, cards, true)?;
    let c_extname = CString::new(extname).expect("validated as printable ASCII");

    let names: Vec<CString> = prepared.iter().map(|p| p.name.clone()).collect();
    let forms: Vec<CString> = prepared.iter().map(|p| p.form.clone()).collect();
    let units: Vec<CString> = prepared.iter().map(|p| p.unit.clone()).collect();

    let fill = |handle: &Handle| -> Result<usize, FitsError> {
        for record in &records {
            handle.write_record(record)?;
        }
        for (i, (column, prep)) in columns.iter().zip(&prepared).enumerate() {
            let colnum = c_int::try_from(i + 1).map_err(|_| invalid(path, "too many columns"))?;
            match column.data {
                ColumnData::I32(v) => handle.write_column(colnum, TINT, v)?,
                ColumnData::I64(v) => handle.write_column(colnum, TLONGLONG, v)?,
                ColumnData::F32(v) => handle.write_column(colnum, TFLOAT, v)?,
                ColumnData::F64(v) => handle.write_column(colnum, TDOUBLE, v)?,
                ColumnData::Str(_) => {
                    handle.write_string_column(colnum, prep.strings.as_deref().unwrap_or(&[]))?;
                }
            }
        }
        Ok(handle.current_hdu())
    };

    match std::fs::symlink_metadata(path) {
        Ok(_) => {
            let handle = Handle::open(path, true)?;
            // New HDUs go after the current one, so move to the last HDU.
            let count = handle.num_hdus()?;
            handle.move_to(count.saturating_sub(1))?;
            handle.create_table(&c_extname, &names, &forms, &units, rows)?;
            match fill(&handle) {
                Ok(index) => handle.close().map(|()| index),
                Err(e) => {
                    handle.delete_current_hdu();
                    drop(handle);
                    Err(e)
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let handle = Handle::create(path)?;
            let result = handle
                .create_empty_primary()
                .and_then(|()| handle.create_table(&c_extname, &names, &forms, &units, rows))
                .and_then(|()| fill(&handle));
            finish_new_file(handle, result)
        }
        Err(source) => Err(FitsError::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

// ---------------------------------------------------------------------------
// Reading

/// Opens `path` read-only, moves to `hdu` and checks that it is a 2-D image;
/// returns the handle and the image info.
fn open_image(path: &Path, hdu: usize) -> Result<(Handle, ImageInfo), FitsError> {
    let handle = Handle::open(path, false)?;
    let hdutype = handle.move_to(hdu)?;
    if hdutype != IMAGE_HDU {
        return Err(FitsError::NotAnImage {
            path: path.to_path_buf(),
            hdu,
            detail: "it is a table".to_owned(),
        });
    }
    let (naxis, naxes, bitpix, compressed) = handle.image_params()?;
    if naxis != 2 {
        return Err(FitsError::NotAnImage {
            path: path.to_path_buf(),
            hdu,
            detail: format!("NAXIS = {naxis}"),
        });
    }
    if ![8, 16, 32, 64, -32, -64].contains(&bitpix) {
        return Err(FitsError::UnsupportedBitpix {
            path: path.to_path_buf(),
            detail: format!("BITPIX = {bitpix}"),
        });
    }
    let dim =
        |v: i64| usize::try_from(v).map_err(|_| invalid(path, format!("bad axis length {v}")));
    let info = ImageInfo {
        width: dim(naxes[0])?,
        height: dim(naxes[1])?,
        bitpix,
        compressed,
    };
    Ok((handle, info))
}

/// Reads the whole 2-D image of HDU `hdu` (zero-based) as f32, with
/// BSCALE/BZERO applied by cfitsio and undefined pixels (BLANK in integer
/// images, ZBLANK in compressed ones) as NaN; plain float images come back
/// bit-exact (NaN, infinities, -0.0 included). Works for plain and
/// tile-compressed HDUs. Integers beyond 2^24 are rounded to the nearest f32.
pub fn read_image_f32(path: &Path, hdu: usize) -> Result<Raster<f32>, FitsError> {
    let (handle, info) = open_image(path, hdu)?;
    let data = handle.read_subset([1, 1], [info.width, info.height], info.null_value())?;
    Ok(Raster::from_vec(info.width, info.height, data))
}

/// Reads only the rectangle `[x0, x0+w) × [y0, y0+h)` (zero-based; it must lie
/// inside the image) of HDU `hdu`, converted like [`read_image_f32`]. For
/// tile-compressed images cfitsio decompresses only the tiles that overlap the
/// rectangle, which is what makes cutouts of large fpacked images cheap. A
/// zero-sized rectangle gives an empty image.
pub fn read_region_f32(
    path: &Path,
    hdu: usize,
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
) -> Result<Raster<f32>, FitsError> {
    let (handle, info) = open_image(path, hdu)?;
    let inside = |start: usize, len: usize, size: usize| {
        start.checked_add(len).is_some_and(|end| end <= size)
    };
    if !inside(x0, w, info.width) || !inside(y0, h, info.height) {
        return Err(invalid(
            path,
            format!(
                "region x {x0}+{w}, y {y0}+{h} lies outside the {}x{} image of HDU {hdu}",
                info.width, info.height
            ),
        ));
    }
    if w == 0 || h == 0 {
        return Ok(Raster::from_vec(w, h, Vec::new()));
    }
    // cfitsio corners are one-based and inclusive.
    let data = handle.read_subset([x0 + 1, y0 + 1], [x0 + w, y0 + h], info.null_value())?;
    Ok(Raster::from_vec(w, h, data))
}

/// Where and how an image HDU's pixels are stored: what a cutout reader needs
/// to fetch a region without going through cfitsio for every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HduLayout {
    /// Size and type of the (uncompressed) image.
    pub info: ImageInfo,
    /// For a plain image: the byte offset of its data unit, whose pixels are
    /// big-endian values of type `BITPIX`, row after row. `None` for a
    /// tile-compressed image.
    pub data_offset: Option<u64>,
    /// For a tile-compressed image: the tile size as (pixels along x, rows),
    /// from `ZTILE1`/`ZTILE2` (default: whole rows, as the convention says).
    pub tile: Option<(usize, usize)>,
}

/// The layout of image HDU `hdu` (zero-based).
pub fn hdu_layout(path: &Path, hdu: usize) -> Result<HduLayout, FitsError> {
    let (handle, info) = open_image(path, hdu)?;
    if info.compressed {
        let dim = |key: &str, default: usize| -> Result<usize, FitsError> {
            match handle.raw_int_keyword(key)? {
                None => Ok(default),
                Some(v) if v >= 1 => Ok(usize::try_from(v).unwrap_or(default)),
                Some(v) => Err(invalid(path, format!("{key} = {v} is not a tile size"))),
            }
        };
        let tile = (dim("ZTILE1", info.width)?, dim("ZTILE2", 1)?);
        return Ok(HduLayout {
            info,
            data_offset: None,
            tile: Some(tile),
        });
    }
    Ok(HduLayout {
        info,
        data_offset: Some(handle.data_offset()?),
        tile: None,
    })
}

/// Reads the rectangle `[x0, x0+w) × [y0, y0+h)` (zero-based, inside the
/// image) of HDU `hdu` as f64 with BSCALE/BZERO applied and undefined pixels
/// as NaN. Meant for tile-compressed images, where cfitsio decompresses only
/// the tiles the rectangle touches; the values are exact for every stored
/// type but 64-bit integers beyond 2^53.
pub fn read_region_f64(
    path: &Path,
    hdu: usize,
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
) -> Result<Vec<f64>, FitsError> {
    let (handle, info) = open_image(path, hdu)?;
    let inside = |start: usize, len: usize, size: usize| {
        start.checked_add(len).is_some_and(|end| end <= size)
    };
    if !inside(x0, w, info.width) || !inside(y0, h, info.height) {
        return Err(invalid(
            path,
            format!(
                "region x {x0}+{w}, y {y0}+{h} lies outside the {}x{} image of HDU {hdu}",
                info.width, info.height
            ),
        ));
    }
    if w == 0 || h == 0 {
        return Ok(Vec::new());
    }
    // Always with the null check: the values go back to their stored type
    // exactly, since every 8-, 16- and 32-bit integer and every f32 is an f64.
    handle.read_subset([x0 + 1, y0 + 1], [x0 + w, y0 + h], f64::NAN)
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
        fn decode<const N: usize, T>(bytes: &[u8], f: fn([u8; N]) -> T) -> Option<Vec<T>> {
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
        Some(match bitpix {
            8 => Self::U8(bytes.to_vec()),
            16 => Self::I16(decode(bytes, i16::from_be_bytes)?),
            32 => Self::I32(decode(bytes, i32::from_be_bytes)?),
            64 => Self::I64(decode(bytes, i64::from_be_bytes)?),
            -32 => Self::F32(decode(bytes, f32::from_be_bytes)?),
            -64 => Self::F64(decode(bytes, f64::from_be_bytes)?),
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
            Self::I16(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Self::I32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Self::I64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Self::F32(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
            Self::F64(v) => v
                .iter()
                .for_each(|x| out.extend_from_slice(&x.to_be_bytes())),
        }
    }
}

/// Encodes a single-HDU FITS file in memory: the mandatory keywords for a
/// `width` × `height` image of `pixels`' type, then `BSCALE`/`BZERO` when
/// `scaling` is given and not the identity, then `cards` (checked like
/// [`write_image`]'s), then the data. The result is what [`write_image`]
/// would put on disk for the same input, without a round trip through a file,
/// which matters for a server answering thousands of cutouts a second.
pub fn encode_image(
    pixels: &RawPixels,
    width: usize,
    height: usize,
    scaling: Option<(f64, f64)>,
    cards: &[Card],
) -> Result<Vec<u8>, FitsError> {
    let here = Path::new("<memory>");
    if pixels.len() != width * height {
        return Err(invalid(
            here,
            format!(
                "{} pixels do not make a {width}x{height} image",
                pixels.len()
            ),
        ));
    }
    let mut records = vec![
        pad_card(format!("{:<8}= {:>20}", "SIMPLE", "T")),
        pad_card(format!("{:<8}= {:>20}", "BITPIX", pixels.bitpix())),
        pad_card(format!("{:<8}= {:>20}", "NAXIS", 2)),
        pad_card(format!("{:<8}= {:>20}", "NAXIS1", width)),
        pad_card(format!("{:<8}= {:>20}", "NAXIS2", height)),
    ];
    if let Some((bscale, bzero)) = scaling.filter(|&(s, z)| s != 1.0 || z != 0.0) {
        for (key, value) in [("BSCALE", bscale), ("BZERO", bzero)] {
            let text = format_float(value)
                .ok_or_else(|| invalid(here, format!("{key} = {value} is not finite")))?;
            records.push(pad_card(format!("{key:<8}= {text:>20}")));
        }
    }
    records.extend(format_user_cards(here, cards, false)?);
    records.push(pad_card("END".to_owned()));
    let header_len = (records.len() * CARD_LEN).div_ceil(BLOCK_LEN) * BLOCK_LEN;
    let data_len = (pixels.len() * pixels.bytes_per_pixel()).div_ceil(BLOCK_LEN) * BLOCK_LEN;
    let mut out = Vec::with_capacity(header_len + data_len);
    for record in &records {
        out.extend_from_slice(record.as_bytes());
    }
    out.resize(header_len, b' ');
    pixels.write_be(&mut out);
    out.resize(header_len + data_len, 0);
    Ok(out)
}

/// All header cards of HDU `hdu` in file order, including the mandatory ones
/// (but not `END`). Values are parsed: quoted → `Str`, `T`/`F` → `Bool`,
/// integer → `Int`, real (also with `D` exponent) → `Float`; `CONTINUE`
/// long strings are merged. For a tile-compressed image HDU this is the header
/// of the uncompressed image as cfitsio presents it (`BITPIX`, `NAXISn`
/// instead of `ZBITPIX`, `ZNAXISn`, no table keywords).
pub fn read_header(path: &Path, hdu: usize) -> Result<Vec<Card>, FitsError> {
    let handle = Handle::open(path, false)?;
    handle.move_to(hdu)?;
    handle.header()
}

/// The first card named `key` in the header of HDU `hdu` (as [`read_header`]
/// presents it), or [`FitsError::MissingKeyword`].
pub fn read_keyword(path: &Path, hdu: usize, key: &str) -> Result<Card, FitsError> {
    read_header(path, hdu)?
        .into_iter()
        .find(|c| c.key == key)
        .ok_or_else(|| FitsError::MissingKeyword {
            path: path.to_path_buf(),
            hdu,
            key: key.to_owned(),
        })
}

/// Width (`NAXIS1`), height (`NAXIS2`), `BITPIX` and compression of the 2-D
/// image in HDU `hdu`; for a compressed HDU the values of the uncompressed
/// image.
pub fn image_info(path: &Path, hdu: usize) -> Result<ImageInfo, FitsError> {
    open_image(path, hdu).map(|(_, info)| info)
}

/// The number of HDUs in the file.
pub fn hdu_count(path: &Path) -> Result<usize, FitsError> {
    Handle::open(path, false)?.num_hdus()
}

/// The index of the first HDU that holds a 2-D image (NAXIS = 2): 0 for a
/// plain file, 1 for an fpacked one. [`FitsError::NoImage`] if there is none.
pub fn first_image_hdu(path: &Path) -> Result<usize, FitsError> {
    let handle = Handle::open(path, false)?;
    for hdu in 0.. {
        match handle.move_to(hdu) {
            Ok(IMAGE_HDU) => {
                if handle.image_params()?.0 == 2 {
                    return Ok(hdu);
                }
            }
            Ok(_) => {}
            Err(FitsError::NoSuchHdu { .. }) => break,
            Err(e) => return Err(e),
        }
    }
    Err(FitsError::NoImage {
        path: path.to_path_buf(),
    })
}

/// Opens `path` read-only and moves to table HDU `hdu`.
fn open_table(path: &Path, hdu: usize) -> Result<Handle, FitsError> {
    let handle = Handle::open(path, false)?;
    match handle.move_to(hdu)? {
        BINARY_TBL | ASCII_TBL => Ok(handle),
        _ => Err(FitsError::NotATable {
            path: path.to_path_buf(),
            hdu,
        }),
    }
}

/// Finds a column by its `TTYPEn` name: an exact match wins, otherwise the
/// first case-insensitive one (FITS column names are case-insensitive).
/// Done on the parsed header rather than with `fits_get_colnum`, which would
/// treat `*`, `?` and `#` in the name as wildcards.
fn find_column(handle: &Handle, hdu: usize, name: &str) -> Result<c_int, FitsError> {
    let header = handle.header()?;
    let columns: Vec<(c_int, &str)> = header
        .iter()
        .filter_map(|card| {
            let n = card.key.strip_prefix("TTYPE")?.parse::<c_int>().ok()?;
            Some((n, card.value.as_str()?))
        })
        .collect();
    columns
        .iter()
        .find(|(_, n)| *n == name)
        .or_else(|| columns.iter().find(|(_, n)| n.eq_ignore_ascii_case(name)))
        .map(|(n, _)| *n)
        .ok_or_else(|| FitsError::NoSuchColumn {
            path: handle.path.clone(),
            hdu,
            name: name.to_owned(),
        })
}

/// Opens the table and returns the handle, column number and the number of
/// values to read (rows × repeat, for vector columns in row order).
fn open_column(
    path: &Path,
    hdu: usize,
    name: &str,
) -> Result<(Handle, c_int, usize, (usize, usize)), FitsError> {
    let handle = open_table(path, hdu)?;
    let colnum = find_column(&handle, hdu, name)?;
    let rows = handle.num_rows()?;
    let (typecode, repeat, width, dispwidth) = handle.column_type(colnum)?;
    if typecode < 0 {
        return Err(invalid(
            path,
            format!("HDU {hdu}: column {name} is a variable-length array, which is not supported"),
        ));
    }
    let per_row = if typecode == TSTRING {
        // A string column of repeat r and width w holds r / w strings per row.
        (repeat / width.max(1)).max(1)
    } else {
        repeat
    };
    let n = rows
        .checked_mul(per_row)
        .ok_or_else(|| invalid(path, "column too large"))?;
    Ok((handle, colnum, n, (width, dispwidth)))
}

/// Reads column `name` of table HDU `hdu` as f64 (converted by cfitsio from
/// any numeric type, TSCAL/TZERO applied, undefined values as NaN). A vector
/// column yields all elements, row after row.
pub fn read_column_f64(path: &Path, hdu: usize, name: &str) -> Result<Vec<f64>, FitsError> {
    let (handle, colnum, n, _) = open_column(path, hdu, name)?;
    handle.read_column(colnum, TDOUBLE, n, f64::NAN)
}

/// Reads column `name` of table HDU `hdu` as i64 (converted by cfitsio; reals
/// are truncated, out-of-range values are an error; TNULL values are returned
/// as stored). A vector column yields all elements, row after row.
pub fn read_column_i64(path: &Path, hdu: usize, name: &str) -> Result<Vec<i64>, FitsError> {
    let (handle, colnum, n, _) = open_column(path, hdu, name)?;
    // A null value of 0 tells cfitsio not to substitute undefined values.
    handle.read_column(colnum, TLONGLONG, n, 0i64)
}

/// Reads column `name` of table HDU `hdu` as strings (trailing blanks
/// removed). Numeric columns are formatted by cfitsio using their display
/// format.
pub fn read_column_string(path: &Path, hdu: usize, name: &str) -> Result<Vec<String>, FitsError> {
    let (handle, colnum, n, (width, dispwidth)) = open_column(path, hdu, name)?;
    handle.read_string_column(colnum, n, width.max(dispwidth).max(1))
}

/// The number of rows of table HDU `hdu`.
pub fn table_rows(path: &Path, hdu: usize) -> Result<usize, FitsError> {
    open_table(path, hdu)?.num_rows()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn tmp() -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix("wisecut-fits-")
            .tempdir()
            .expect("temp dir")
    }

    /// A test image whose every pixel differs, built from `f(ix, iy)`.
    fn make<T: Copy>(w: usize, h: usize, f: impl Fn(usize, usize) -> T) -> Raster<T> {
        let mut data = Vec::with_capacity(w * h);
        for iy in 0..h {
            for ix in 0..w {
                data.push(f(ix, iy));
            }
        }
        Raster::from_vec(w, h, data)
    }

    fn u8_image(w: usize, h: usize) -> Raster<u8> {
        make(w, h, |x, y| ((x * 7 + y * 13) % 256) as u8)
    }
    fn i16_image(w: usize, h: usize) -> Raster<i16> {
        make(w, h, |x, y| match (x + y * w) % 5 {
            0 => i16::MIN,
            1 => i16::MAX,
            _ => (x as i16)
                .wrapping_mul(97)
                .wrapping_sub((y as i16).wrapping_mul(31)),
        })
    }
    fn u16_image(w: usize, h: usize) -> Raster<u16> {
        make(w, h, |x, y| match (x + y * w) % 7 {
            0 => 0,
            1 => u16::MAX,
            2 => 32768,
            3 => 32767,
            _ => ((x * 1031 + y * 17) % 65536) as u16,
        })
    }
    fn i32_image(w: usize, h: usize) -> Raster<i32> {
        make(w, h, |x, y| match (x + y * w) % 6 {
            0 => i32::MIN,
            1 => i32::MAX,
            _ => (x as i32 - 50) * 10_007 + (y as i32) * 3,
        })
    }
    fn f32_image(w: usize, h: usize) -> Raster<f32> {
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
    fn assert_same(actual: &Raster<f32>, expected: &Raster<f32>, what: &str) {
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
    fn raw_hdus(path: &Path) -> Vec<(Vec<Card>, usize)> {
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

    fn raw_value(cards: &[Card], key: &str) -> Option<HeaderValue> {
        cards.iter().find(|c| c.key == key).map(|c| c.value.clone())
    }

    fn header_value(path: &Path, hdu: usize, key: &str) -> Option<HeaderValue> {
        read_header(path, hdu)
            .unwrap()
            .into_iter()
            .find(|c| c.key == key)
            .map(|c| c.value)
    }

    /// Checks that HDU 1 really is a RICE tile-compressed image with the tile
    /// size expected.
    fn assert_rice(path: &Path, tile: (usize, usize)) {
        let hdus = raw_hdus(path);
        assert_eq!(hdus.len(), 2, "primary + compressed HDU");
        assert_eq!(
            raw_value(&hdus[0].0, "NAXIS"),
            Some(HeaderValue::Int(0)),
            "empty primary"
        );
        let cards = &hdus[1].0;
        assert_eq!(raw_value(cards, "XTENSION"), Some("BINTABLE".into()));
        assert_eq!(raw_value(cards, "ZIMAGE"), Some(HeaderValue::Bool(true)));
        assert_eq!(raw_value(cards, "ZCMPTYPE"), Some("RICE_1".into()));
        assert_eq!(
            raw_value(cards, "ZTILE1"),
            Some(HeaderValue::Int(tile.0 as i64))
        );
        assert_eq!(
            raw_value(cards, "ZTILE2"),
            Some(HeaderValue::Int(tile.1 as i64))
        );
        assert_eq!(
            raw_value(cards, "ZDITHER0"),
            None,
            "no clock-derived dither seed"
        );
    }

    const ALL_KINDS: [&str; 5] = ["u8", "i16", "u16", "i32", "f32"];

    /// Writes an image of the given kind; returns what reading it back as f32
    /// must give.
    fn write_kind(
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

    #[test]
    fn plain_round_trip_every_pixel_type() {
        let dir = tmp();
        for kind in ALL_KINDS {
            let path = dir.path().join(format!("plain-{kind}.fits"));
            let (hdu, expected, bitpix) =
                write_kind(&path, kind, 37, 23, &[], &Compression::None).unwrap();
            assert_eq!(hdu, 0, "{kind}: plain image is the primary HDU");
            assert_eq!(hdu_count(&path).unwrap(), 1);
            assert_eq!(first_image_hdu(&path).unwrap(), 0);
            let info = image_info(&path, 0).unwrap();
            assert_eq!(
                info,
                ImageInfo {
                    width: 37,
                    height: 23,
                    bitpix,
                    compressed: false
                },
                "{kind}"
            );
            assert_same(&read_image_f32(&path, 0).unwrap(), &expected, kind);
        }
    }

    #[test]
    fn rice_round_trip_integer_types_with_row_and_square_tiles() {
        let dir = tmp();
        let (w, h) = (150, 97); // not multiples of 64: partial edge tiles
        for kind in ["u8", "i16", "u16", "i32"] {
            for (name, tile, expected_tile) in [
                ("rows", (w, 1), (w, 1)),
                ("64", (64, 64), (64, 64)),
                ("huge", (256, 256), (w, h)),
            ] {
                let path = dir.path().join(format!("rice-{kind}-{name}.fits"));
                let c = Compression::Rice { tile };
                let (hdu, expected, bitpix) = write_kind(&path, kind, w, h, &[], &c).unwrap();
                assert_eq!(hdu, 1, "{kind}/{name}: compressed image is HDU 1");
                assert_rice(&path, expected_tile);
                assert_eq!(first_image_hdu(&path).unwrap(), 1);
                assert_eq!(hdu_count(&path).unwrap(), 2);
                assert_eq!(
                    image_info(&path, 1).unwrap(),
                    ImageInfo {
                        width: w,
                        height: h,
                        bitpix,
                        compressed: true
                    }
                );
                assert_same(
                    &read_image_f32(&path, 1).unwrap(),
                    &expected,
                    &format!("{kind}/{name}"),
                );
                // The empty primary is not an image to read.
                assert!(matches!(
                    read_image_f32(&path, 0),
                    Err(FitsError::NotAnImage { .. })
                ));
            }
        }
    }

    #[test]
    fn rice_really_compresses() {
        let dir = tmp();
        let img = make(512, 512, |x, y| ((x / 8 + y / 8) % 50) as i16);
        let plain = dir.path().join("plain.fits");
        let rice = dir.path().join("rice.fits");
        write_image(&plain, PixelData::I16(&img), &[], &Compression::None).unwrap();
        write_image(
            &rice,
            PixelData::I16(&img),
            &[],
            &Compression::Rice { tile: (512, 1) },
        )
        .unwrap();
        let (p, r) = (
            fs::metadata(&plain).unwrap().len(),
            fs::metadata(&rice).unwrap().len(),
        );
        assert!(
            r * 3 < p,
            "RICE file {r} bytes should be much smaller than plain {p}"
        );
    }

    #[test]
    fn u16_extremes_survive_and_use_bzero() {
        let dir = tmp();
        let img = Raster::from_vec(4, 2, vec![0u16, 65535, 32768, 32767, 1, 65534, 0, 65535]);
        for (name, c) in [
            ("plain", Compression::None),
            ("rice", Compression::Rice { tile: (4, 1) }),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            let hdu = write_image(&path, PixelData::U16(&img), &[], &c).unwrap();
            let back = read_image_f32(&path, hdu).unwrap();
            assert_eq!(
                back.data,
                vec![0.0, 65535.0, 32768.0, 32767.0, 1.0, 65534.0, 0.0, 65535.0],
                "{name}"
            );
            assert_eq!(
                header_value(&path, hdu, "BITPIX"),
                Some(HeaderValue::Int(16)),
                "{name}"
            );
            assert_eq!(
                header_value(&path, hdu, "BZERO").and_then(|v| v.as_f64()),
                Some(32768.0),
                "{name}"
            );
            let region = read_region_f32(&path, hdu, 1, 0, 1, 2).unwrap();
            assert_eq!(region.data, vec![65535.0, 65534.0], "{name}");
        }
    }

    #[test]
    fn regions_equal_windows_of_the_full_image() {
        let dir = tmp();
        let (w, h) = (150, 97);
        let cases = [
            ("plain", Compression::None),
            ("rows", Compression::Rice { tile: (w, 1) }),
            ("64", Compression::Rice { tile: (64, 64) }),
        ];
        let windows = [
            (0, 0, 1, 1),
            (0, 0, w, h),
            (w - 1, h - 1, 1, 1),
            (w - 7, 3, 7, 10),
            (5, h - 4, 20, 4),
            (63, 63, 2, 2), // straddles four 64x64 tiles
            (60, 0, 70, h),
            (0, 40, w, 1),
            (149, 0, 1, 97),
        ];
        for kind in ["i16", "u16", "i32", "f32"] {
            for (name, c) in &cases {
                if kind == "f32" && *name != "plain" {
                    continue;
                }
                let path = dir.path().join(format!("{kind}-{name}.fits"));
                let (hdu, _, _) = write_kind(&path, kind, w, h, &[], c).unwrap();
                let full = read_image_f32(&path, hdu).unwrap();
                for &(x0, y0, rw, rh) in &windows {
                    let region = read_region_f32(&path, hdu, x0, y0, rw, rh).unwrap();
                    let expected = make(rw, rh, |x, y| full.get(x0 + x, y0 + y));
                    assert_same(
                        &region,
                        &expected,
                        &format!("{kind}/{name} window {x0},{y0} {rw}x{rh}"),
                    );
                }
            }
        }
    }

    #[test]
    fn region_outside_the_image_is_refused_and_empty_region_is_empty() {
        let dir = tmp();
        let path = dir.path().join("img.fits");
        write_image(
            &path,
            PixelData::U8(&u8_image(10, 8)),
            &[],
            &Compression::None,
        )
        .unwrap();
        for (x0, y0, w, h) in [
            (0, 0, 11, 1),
            (9, 0, 2, 1),
            (0, 8, 1, 1),
            (0, 7, 1, 2),
            (usize::MAX, 0, 2, 1),
        ] {
            let err = read_region_f32(&path, 0, x0, y0, w, h).unwrap_err();
            assert!(
                matches!(err, FitsError::Invalid { .. }),
                "{x0},{y0} {w}x{h}: {err}"
            );
        }
        let empty = read_region_f32(&path, 0, 3, 3, 0, 5).unwrap();
        assert_eq!((empty.width, empty.height, empty.data.len()), (0, 5, 0));
    }

    /// Overwrites the compressed bytes of the last tile; a read that does not
    /// touch that tile must still succeed and be exact, which proves cfitsio
    /// only decompresses the tiles a region needs.
    fn corrupt_last_tile(path: &Path) {
        let hdus = raw_hdus(path);
        let (cards, data_start) = &hdus[1];
        let get =
            |k: &str| usize::try_from(raw_value(cards, k).unwrap().as_i64().unwrap()).unwrap();
        let (row_len, rows) = (get("NAXIS1"), get("NAXIS2"));
        assert_eq!(raw_value(cards, "TTYPE1"), Some("COMPRESSED_DATA".into()));
        let mut bytes = fs::read(path).unwrap();
        let desc = data_start + (rows - 1) * row_len;
        let be = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let (len, offset) = (be(desc), be(desc + 4));
        let heap = data_start + row_len * rows;
        assert!(len > 0);
        for (i, b) in bytes[heap + offset..heap + offset + len]
            .iter_mut()
            .enumerate()
        {
            *b = (i as u8).wrapping_mul(37) ^ 0xA5;
        }
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn compressed_regions_decompress_only_the_tiles_they_need() {
        let dir = tmp();
        let (w, h) = (150, 97);
        let img = make(w, h, |x, y| ((x * 3 + y * 5) % 1000) as i32);
        let expected = img.map(|v| v as f32);
        for (name, tile, safe) in [
            ("rows", (w, 1), (0, 0, w, h - 1)),
            ("64", (64, 64), (0, 0, 128, 64)),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            write_image(
                &path,
                PixelData::I32(&img),
                &[],
                &Compression::Rice { tile },
            )
            .unwrap();
            corrupt_last_tile(&path);
            let (x0, y0, rw, rh) = safe;
            let region = read_region_f32(&path, 1, x0, y0, rw, rh).unwrap();
            assert_same(
                &region,
                &make(rw, rh, |x, y| expected.get(x0 + x, y0 + y)),
                name,
            );
            // Reading everything does touch the damaged tile.
            match read_image_f32(&path, 1) {
                Err(_) => {}
                Ok(full) => assert_ne!(
                    full.data, expected.data,
                    "{name}: corruption must be visible"
                ),
            }
        }
    }

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
                Column {
                    name: "ID",
                    unit: "",
                    data: ColumnData::I64(&[1, 2]),
                },
                Column {
                    name: "NAME",
                    unit: "",
                    data: ColumnData::Str(&names),
                },
            ];
            write_table(path, "CAT", &cols, &cards).unwrap();
        };
        let (a, b) = (dir.path().join("t-a.fits"), dir.path().join("t-b.fits"));
        table(&a);
        table(&b);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "table");
    }

    fn sample_cards() -> Vec<Card> {
        vec![
            Card::new(
                "OBJECT",
                "O'Brien's \"field\" / no comment",
                "quote, slash inside",
            ),
            Card::new("EMPTY", "", ""),
            Card::new("LEADSP", "  indented", ""),
            Card::new("NEGF", -1.25e-12, "negative float"),
            Card::new("TENTH", 0.1, ""),
            Card::new("BIGF", 6.02214076e300, ""),
            Card::new("SMALLF", -5e-324, "subnormal"),
            Card::new("WHOLEF", 3.0, "stays a float"),
            Card::new("NEGZERO", -0.0, ""),
            Card::new("INT", -42i32, "int"),
            Card::new("I64MIN", i64::MIN, ""),
            Card::new("I64MAX", i64::MAX, ""),
            Card::new("YES", true, ""),
            Card::new("NO", false, "logical false"),
            Card::new(
                "DATE-OBS",
                "2024-01-02T03:04:05.678",
                "with a dash in the key",
            ),
            Card::new("HISTORY", "first history line", ""),
            Card::new("COMMENT", "a comment card", ""),
            Card::new("", "blank keyword commentary", ""),
            Card::new("LONGCOM", 7i32, &"c".repeat(45)),
            Card::new(
                "LONGSTR",
                format!("{}'{}&end", "x".repeat(66), "y".repeat(80)),
                "after continue",
            ),
        ]
    }

    #[test]
    fn header_cards_round_trip_plain_and_compressed() {
        let dir = tmp();
        let cards = sample_cards();
        let img = i16_image(20, 10);
        for (name, c) in [
            ("plain", Compression::None),
            ("rice", Compression::Rice { tile: (20, 1) }),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            let hdu = write_image(&path, PixelData::I16(&img), &cards, &c).unwrap();
            let header = read_header(&path, hdu).unwrap();
            // cfitsio presents the uncompressed header, mandatory cards first.
            assert_eq!(header[0].key, "SIMPLE", "{name}");
            assert_eq!(
                header[1],
                Card::new("BITPIX", 16, header[1].comment.as_deref().unwrap_or("")),
                "{name}"
            );
            assert_eq!(header[2].value, HeaderValue::Int(2), "{name}: NAXIS");
            assert_eq!(header[3].value, HeaderValue::Int(20), "{name}: NAXIS1");
            assert_eq!(header[4].value, HeaderValue::Int(10), "{name}: NAXIS2");
            assert!(
                header
                    .iter()
                    .all(|c| !c.key.starts_with("ZIMAGE") && c.key != "TFIELDS"),
                "{name}"
            );
            // The user cards follow in order, exactly.
            let start = header.iter().position(|c| c.key == "OBJECT").unwrap();
            let ours = &header[start..start + cards.len()];
            for (got, want) in ours.iter().zip(&cards) {
                if want.key == "LONGCOM" {
                    // 80 - "LONGCOM =                    7 / " leaves 47 columns.
                    assert_eq!(got.value, want.value);
                    assert_eq!(got.comment.as_deref(), Some("c".repeat(45).as_str()));
                    continue;
                }
                assert_eq!(got, want, "{name}");
                if let HeaderValue::Float(f) = want.value {
                    assert_eq!(
                        got.value.as_f64().unwrap().to_bits(),
                        f.to_bits(),
                        "{name}: {}",
                        want.key
                    );
                }
            }
            assert_eq!(
                read_keyword(&path, hdu, "TENTH").unwrap().value.as_f64(),
                Some(0.1)
            );
            let err = read_keyword(&path, hdu, "NOPE").unwrap_err();
            assert!(matches!(err, FitsError::MissingKeyword { .. }), "{err}");
        }
    }

    #[test]
    fn long_comments_are_truncated_to_the_card() {
        let dir = tmp();
        let path = dir.path().join("c.fits");
        let long = "0123456789".repeat(10);
        let cards = [Card::new("K", 1i32, &long), Card::new("S", "v", &long)];
        write_image(
            &path,
            PixelData::U8(&u8_image(2, 2)),
            &cards,
            &Compression::None,
        )
        .unwrap();
        let header = read_header(&path, 0).unwrap();
        let k = header.iter().find(|c| c.key == "K").unwrap();
        // "K       =                    1 / " is 33 columns, 47 remain.
        assert_eq!(k.comment.as_deref(), Some(&long[..47]));
        let s = header.iter().find(|c| c.key == "S").unwrap();
        // "S       = 'v       ' / " is 23 columns.
        assert_eq!(s.comment.as_deref(), Some(&long[..57]));
        assert_eq!(s.value, "v".into());
        // Long commentary text is split over several cards.
        let path2 = dir.path().join("h.fits");
        let text = "h".repeat(150);
        write_image(
            &path2,
            PixelData::U8(&u8_image(2, 2)),
            &[Card::new("HISTORY", text.as_str(), "")],
            &Compression::None,
        )
        .unwrap();
        let parts: Vec<String> = read_header(&path2, 0)
            .unwrap()
            .into_iter()
            .filter(|c| c.key == "HISTORY")
            .map(|c| c.value.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(parts, vec!["h".repeat(72), "h".repeat(72), "h".repeat(6)]);
    }

    #[test]
    fn card_formatting_is_fits_fixed_format() {
        let rec = |c: Card| format_card(&c, false).unwrap();
        assert_eq!(
            rec(Card::new("EXPTIME", 30i32, "s"))[0],
            pad_card("EXPTIME =                   30 / s".into())
        );
        assert_eq!(
            rec(Card::new("A", 1.5e20, ""))[0],
            pad_card("A       =               1.5E20".into())
        );
        assert_eq!(
            rec(Card::new("A", 1e-7, ""))[0],
            pad_card("A       =               1.0E-7".into())
        );
        assert_eq!(
            rec(Card::new("B", true, ""))[0],
            pad_card("B       =                    T".into())
        );
        assert_eq!(
            rec(Card::new("S", "it's", ""))[0],
            pad_card("S       = 'it''s   '".into())
        );
        let long = rec(Card::new("S", "a".repeat(100), "c"));
        assert_eq!(long.len(), 2);
        assert_eq!(long[0], format!("S       = '{}&'", "a".repeat(67)));
        assert_eq!(
            long[1],
            pad_card(format!("CONTINUE  '{}' / c", "a".repeat(33)))
        );
        // A doubled quote is never split between cards.
        let quotes = rec(Card::new("Q", "'".repeat(40), ""));
        assert!(quotes.iter().all(|r| r.len() == 80));
        assert_eq!(
            parse_header_records(&quotes.concat())[0].value,
            HeaderValue::Str("'".repeat(40))
        );
        assert_eq!(format_float(100.0).unwrap(), "100.0");
        assert_eq!(format_float(-2.5e-300).unwrap(), "-2.5E-300");
        assert_eq!(format_float(f64::NAN), None);
    }

    #[test]
    fn card_parsing_handles_fits_syntax() {
        let p = |s: &str| parse_record(&format!("{s:<80}")).unwrap();
        let c = p("EXPOSURE=              1.5D+03 / hand-written D exponent");
        assert_eq!(c, Card::new("EXPOSURE", 1500.0, "hand-written D exponent"));
        assert_eq!(
            p("X       =               -.5e-2").value,
            HeaderValue::Float(-0.005)
        );
        assert_eq!(
            p("X       =                  +12").value,
            HeaderValue::Int(12)
        );
        assert_eq!(
            p("X       =                  12.").value,
            HeaderValue::Float(12.0)
        );
        assert_eq!(
            p("X       = 99999999999999999999").value,
            HeaderValue::Float(1e20)
        );
        assert_eq!(
            p("X       = 'a''b/c'   / d/e").value,
            HeaderValue::Str("a'b/c".into())
        );
        assert_eq!(
            p("X       = 'a''b/c'   / d/e").comment.as_deref(),
            Some("d/e")
        );
        assert_eq!(p("X       = ''").value, HeaderValue::Str(String::new()));
        assert_eq!(
            p("X       = '  lead  '").value,
            HeaderValue::Str("  lead".into())
        );
        assert_eq!(
            p("X       =                      / undefined").value,
            HeaderValue::Str(String::new())
        );
        assert_eq!(
            p("X       =                  NaN").value,
            HeaderValue::Str("NaN".into())
        );
        assert_eq!(
            p("X       =           (1.0, 2.0)").value,
            HeaderValue::Str("(1.0, 2.0)".into())
        );
        assert_eq!(
            p("X       =                    F").value,
            HeaderValue::Bool(false)
        );
        let h = p("HIERARCH ESO DET CHIP TEMP = -120.5 / [K]");
        assert_eq!(h, Card::new("ESO DET CHIP TEMP", -120.5, "[K]"));
        assert_eq!(
            p("HISTORY   two spaces = not a value").value,
            HeaderValue::Str("  two spaces = not a value".into())
        );
        assert_eq!(
            p("NOVALUE  just text").value,
            HeaderValue::Str(" just text".into())
        );
        assert_eq!(parse_record(&format!("{:<80}", "END")), None);
        // CONTINUE merging, with a string that itself ends in '&'.
        let recs = [
            format!("{:<80}", "S       = 'abc&'  / first"),
            format!("{:<80}", "CONTINUE  'def&'"),
            format!("{:<80}", "CONTINUE  '&' / last"),
            format!("{:<80}", "T       = 'x&'"),
            format!("{:<80}", "END"),
            format!("{:<80}", "AFTER   = 1"),
        ];
        let cards = parse_header_records(&recs.concat());
        assert_eq!(
            cards,
            vec![
                Card::new("S", "abcdef&", "first last"),
                Card::new("T", "x&", "")
            ]
        );
        // Accessors.
        assert_eq!(HeaderValue::Int(3).as_f64(), Some(3.0));
        assert_eq!(HeaderValue::Float(3.5).as_i64(), None);
        assert_eq!(HeaderValue::Bool(true).as_bool(), Some(true));
    }

    #[test]
    fn invalid_cards_are_refused_before_any_file_is_written() {
        let dir = tmp();
        let img = u8_image(3, 3);
        let bad = [
            Card::new("BITPIX", 8, ""),
            Card::new("NAXIS1", 3, ""),
            Card::new("BZERO", 0.0, ""),
            Card::new("ZIMAGE", true, ""),
            Card::new("TFORM1", "J", ""),
            Card::new("lower", 1, ""),
            Card::new("TOOLONGKEY", 1, ""),
            Card::new("SPACE KEY", 1, ""),
            Card::new("NAN", f64::NAN, ""),
            Card::new("INF", f64::INFINITY, ""),
            Card::new("UTF", "caf\u{e9}", ""),
            Card::new("COMMENT", "text", "a comment on commentary"),
            Card::new("CTRL", "a\tb", ""),
            Card::new("CONTINUE", "x", ""),
        ];
        for card in bad {
            let path = dir.path().join("bad.fits");
            let err = write_image(
                &path,
                PixelData::U8(&img),
                std::slice::from_ref(&card),
                &Compression::None,
            )
            .unwrap_err();
            assert!(matches!(err, FitsError::Invalid { .. }), "{card:?}: {err}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
            assert!(!path.exists(), "{card:?}: no file left behind");
        }
        let dup = [Card::new("A", 1, ""), Card::new("A", 2, "")];
        let path = dir.path().join("dup.fits");
        assert!(write_image(&path, PixelData::U8(&img), &dup, &Compression::None).is_err());
        // Keys that merely look similar are fine.
        let ok = [
            Card::new("NAXISX", 1, ""),
            Card::new("ZP", 25.0, ""),
            Card::new("TTYPE", "x", ""),
            Card::new("EXTNAME", "SCI", ""),
        ];
        let path = dir.path().join("ok.fits");
        write_image(&path, PixelData::U8(&img), &ok, &Compression::None).unwrap();
        // EXTNAME is reserved for tables, where it is an argument.
        let path = dir.path().join("t.fits");
        let cols = [Column {
            name: "A",
            unit: "",
            data: ColumnData::I32(&[1]),
        }];
        assert!(write_table(&path, "T", &cols, &[Card::new("EXTNAME", "X", "")]).is_err());
        assert!(!path.exists());
    }

    #[test]
    fn invalid_images_and_f32_rice_are_refused() {
        let dir = tmp();
        let path = dir.path().join("f.fits");
        let err = write_image(
            &path,
            PixelData::F32(&f32_image(8, 8)),
            &[],
            &Compression::Rice { tile: (8, 1) },
        )
        .unwrap_err();
        assert!(matches!(err, FitsError::Invalid { .. }), "{err}");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
        assert!(!path.exists(), "nothing written for refused F32 + RICE");
        let bad_len = Raster {
            width: 3,
            height: 3,
            data: vec![0u8; 8],
        };
        assert!(matches!(
            write_image(&path, PixelData::U8(&bad_len), &[], &Compression::None),
            Err(FitsError::Invalid { .. })
        ));
        let empty = Raster {
            width: 0,
            height: 3,
            data: Vec::<u8>::new(),
        };
        assert!(matches!(
            write_image(&path, PixelData::U8(&empty), &[], &Compression::None),
            Err(FitsError::Invalid { .. })
        ));
        let zero_tile = Compression::Rice { tile: (0, 1) };
        assert!(matches!(
            write_image(&path, PixelData::U8(&u8_image(2, 2)), &[], &zero_tile),
            Err(FitsError::Invalid { .. })
        ));
        assert!(!path.exists());
    }

    #[test]
    fn existing_files_are_not_overwritten() {
        let dir = tmp();
        let path = dir.path().join("exists.fits");
        fs::write(&path, b"precious").unwrap();
        let err = write_image(
            &path,
            PixelData::U8(&u8_image(2, 2)),
            &[],
            &Compression::None,
        )
        .unwrap_err();
        assert!(matches!(err, FitsError::AlreadyExists { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert_eq!(fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn paths_are_never_extended_filename_syntax() {
        let dir = tmp();
        // In cfitsio's extended syntax these would be a filter, an HDU
        // selector and a clobber request.
        for name in [
            "a[compress R 4,1].fits",
            "b.fits[1]",
            "!c.fits",
            "d (1).fits",
        ] {
            let path = dir.path().join(name);
            write_image(
                &path,
                PixelData::U8(&u8_image(4, 3)),
                &[],
                &Compression::None,
            )
            .unwrap();
            assert!(path.exists(), "{name}");
            assert_eq!(read_image_f32(&path, 0).unwrap().data.len(), 12, "{name}");
        }
    }

    #[test]
    fn blank_becomes_nan_for_integer_images() {
        let dir = tmp();
        let mut img = i16_image(16, 4);
        img.set(3, 2, -999);
        img.set(0, 0, -999);
        let cards = [Card::new("BLANK", -999, "undefined pixel value")];
        for (name, c) in [
            ("plain", Compression::None),
            ("rice", Compression::Rice { tile: (16, 1) }),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            let hdu = write_image(&path, PixelData::I16(&img), &cards, &c).unwrap();
            let back = read_image_f32(&path, hdu).unwrap();
            assert!(back.get(3, 2).is_nan() && back.get(0, 0).is_nan(), "{name}");
            assert_eq!(back.get(1, 0), f32::from(img.get(1, 0)), "{name}");
            assert_eq!(back.data.iter().filter(|v| v.is_nan()).count(), 2, "{name}");
            assert!(
                read_region_f32(&path, hdu, 2, 2, 2, 1)
                    .unwrap()
                    .get(1, 0)
                    .is_nan(),
                "{name}"
            );
        }
    }

    #[test]
    fn tables_round_trip() {
        let dir = tmp();
        let path = dir.path().join("cat.fits");
        let names: Vec<String> = ["M 31", "", "O'Brien", "  lead", "x".repeat(40).as_str()]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ids = [1i64, -2, i64::MAX, i64::MIN, 0];
        let counts = [5i32, -6, i32::MAX, i32::MIN, 0];
        let flux = [1.5f32, -0.25, f32::MAX, f32::NAN, 0.0];
        let ra = [10.684708f64, 0.1, -1e300, f64::MIN_POSITIVE, 359.999999999];
        let cols = [
            Column {
                name: "ID",
                unit: "",
                data: ColumnData::I64(&ids),
            },
            Column {
                name: "COUNTS",
                unit: "ct",
                data: ColumnData::I32(&counts),
            },
            Column {
                name: "FLUX",
                unit: "Jy",
                data: ColumnData::F32(&flux),
            },
            Column {
                name: "RA",
                unit: "deg",
                data: ColumnData::F64(&ra),
            },
            Column {
                name: "Name",
                unit: "",
                data: ColumnData::Str(&names),
            },
        ];
        let cards = [Card::new("SURVEY", "test", "")];
        assert_eq!(write_table(&path, "SOURCES", &cols, &cards).unwrap(), 1);
        assert_eq!(hdu_count(&path).unwrap(), 2);
        assert_eq!(table_rows(&path, 1).unwrap(), 5);
        assert_eq!(read_column_i64(&path, 1, "ID").unwrap(), ids);
        assert_eq!(
            read_column_i64(&path, 1, "COUNTS").unwrap(),
            counts.map(i64::from)
        );
        assert_eq!(
            read_column_f64(&path, 1, "counts").unwrap(),
            counts.map(f64::from),
            "names are case-insensitive"
        );
        let f = read_column_f64(&path, 1, "FLUX").unwrap();
        for (a, e) in f.iter().zip(flux) {
            assert!((a.is_nan() && e.is_nan()) || *a == f64::from(e));
        }
        assert_eq!(read_column_f64(&path, 1, "RA").unwrap(), ra);
        let back = read_column_string(&path, 1, "NAME").unwrap();
        assert_eq!(back, names);
        assert_eq!(
            read_column_string(&path, 1, "COUNTS").unwrap()[1].trim(),
            "-6"
        );
        let header = read_header(&path, 1).unwrap();
        let value = |k: &str| header.iter().find(|c| c.key == k).map(|c| c.value.clone());
        assert_eq!(value("EXTNAME"), Some("SOURCES".into()));
        assert_eq!(value("TUNIT3"), Some("Jy".into()));
        assert_eq!(value("TUNIT1"), None, "no empty units");
        assert_eq!(value("TFORM5"), Some("40A".into()));
        assert_eq!(value("SURVEY"), Some("test".into()));
        assert_eq!(
            read_header(&path, 0).unwrap()[2].value,
            HeaderValue::Int(0),
            "empty primary NAXIS"
        );

        // Appending gives the next index; zero-row tables work.
        let empty: [f64; 0] = [];
        let cols2 = [Column {
            name: "X",
            unit: "",
            data: ColumnData::F64(&empty),
        }];
        assert_eq!(write_table(&path, "EMPTY", &cols2, &[]).unwrap(), 2);
        assert_eq!(table_rows(&path, 2).unwrap(), 0);
        assert!(read_column_f64(&path, 2, "X").unwrap().is_empty());
        assert_eq!(
            read_column_i64(&path, 1, "ID").unwrap(),
            ids,
            "earlier HDU intact"
        );

        // Errors.
        let err = read_column_f64(&path, 1, "NOPE").unwrap_err();
        assert!(matches!(err, FitsError::NoSuchColumn { .. }), "{err}");
        assert!(err.to_string().contains(&path.display().to_string()));
        assert!(
            read_column_f64(&path, 1, "NAME").is_err(),
            "strings are not numbers"
        );
        assert!(matches!(
            read_column_f64(&path, 0, "ID"),
            Err(FitsError::NotATable { .. })
        ));
        assert!(matches!(
            table_rows(&path, 0),
            Err(FitsError::NotATable { .. })
        ));
        assert!(matches!(
            read_column_f64(&path, 7, "ID"),
            Err(FitsError::NoSuchHdu { hdu: 7, .. })
        ));
        assert!(matches!(
            read_image_f32(&path, 1),
            Err(FitsError::NotAnImage { .. })
        ));
        assert!(matches!(
            first_image_hdu(&path),
            Err(FitsError::NoImage { .. })
        ));
    }

    #[test]
    fn tables_can_be_appended_to_image_files() {
        let dir = tmp();
        for (name, c, image_hdu) in [
            ("plain", Compression::None, 0),
            ("rice", Compression::Rice { tile: (8, 8) }, 1),
        ] {
            let path = dir.path().join(format!("{name}.fits"));
            let img = i32_image(8, 8);
            write_image(&path, PixelData::I32(&img), &[], &c).unwrap();
            let v = [1.0, 2.0];
            let cols = [Column {
                name: "V",
                unit: "",
                data: ColumnData::F64(&v),
            }];
            let t = write_table(&path, "EXTRA", &cols, &[]).unwrap();
            assert_eq!(t, image_hdu + 1, "{name}");
            assert_eq!(hdu_count(&path).unwrap(), image_hdu + 2);
            assert_eq!(read_column_f64(&path, t, "V").unwrap(), v);
            assert_eq!(first_image_hdu(&path).unwrap(), image_hdu);
            assert_same(
                &read_image_f32(&path, image_hdu).unwrap(),
                &img.map(|v| v as f32),
                name,
            );
        }
    }

    #[test]
    fn invalid_tables_are_refused() {
        let dir = tmp();
        let path = dir.path().join("t.fits");
        let a = [1i32, 2];
        let b = [1.0f64];
        let non_ascii = vec!["\u{e9}".to_owned()];
        let cases: Vec<Vec<Column<'_>>> = vec![
            vec![],
            vec![
                Column {
                    name: "A",
                    unit: "",
                    data: ColumnData::I32(&a),
                },
                Column {
                    name: "B",
                    unit: "",
                    data: ColumnData::F64(&b),
                },
            ],
            vec![
                Column {
                    name: "A",
                    unit: "",
                    data: ColumnData::I32(&a),
                },
                Column {
                    name: "a",
                    unit: "",
                    data: ColumnData::I32(&a),
                },
            ],
            vec![Column {
                name: "",
                unit: "",
                data: ColumnData::I32(&a),
            }],
            vec![Column {
                name: "S",
                unit: "",
                data: ColumnData::Str(&non_ascii),
            }],
        ];
        for cols in &cases {
            let err = write_table(&path, "T", cols, &[]).unwrap_err();
            assert!(matches!(err, FitsError::Invalid { .. }), "{err}");
            assert!(!path.exists());
        }
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tmp();
        let missing = dir.path().join("missing.fits");
        for err in [
            read_image_f32(&missing, 0).unwrap_err(),
            read_header(&missing, 0).unwrap_err(),
            hdu_count(&missing).unwrap_err(),
            table_rows(&missing, 1).unwrap_err(),
        ] {
            assert!(matches!(err, FitsError::Io { .. }), "{err}");
            assert_eq!(err.path(), missing);
            assert!(
                err.to_string().contains(&missing.display().to_string()),
                "{err}"
            );
        }
        let garbage = dir.path().join("garbage.fits");
        fs::write(&garbage, vec![b'x'; 2880]).unwrap();
        let err = read_image_f32(&garbage, 0).unwrap_err();
        assert!(matches!(err, FitsError::Cfitsio { .. }), "{err}");
        assert!(
            err.to_string().contains(&garbage.display().to_string()),
            "{err}"
        );

        let path = dir.path().join("img.fits");
        write_image(
            &path,
            PixelData::U8(&u8_image(2, 2)),
            &[],
            &Compression::None,
        )
        .unwrap();
        let err = read_image_f32(&path, 3).unwrap_err();
        assert!(matches!(err, FitsError::NoSuchHdu { hdu: 3, .. }), "{err}");
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
        assert!(matches!(
            read_header(&path, usize::MAX),
            Err(FitsError::NoSuchHdu { .. })
        ));
    }

    /// A hand-made FITS file (cards written byte by byte, as another program
    /// might have written them).
    fn handmade(path: &Path, cards: &[&str], data: &[u8]) {
        let mut bytes: Vec<u8> = cards
            .iter()
            .flat_map(|c| format!("{c:<80}").into_bytes())
            .collect();
        bytes.extend(format!("{:<80}", "END").bytes());
        bytes.resize(bytes.len().div_ceil(2880) * 2880, b' ');
        bytes.extend_from_slice(data);
        bytes.resize(bytes.len().div_ceil(2880) * 2880, 0);
        fs::write(path, bytes).unwrap();
    }

    #[test]
    fn foreign_files_scaling_d_exponents_and_bad_bitpix() {
        let dir = tmp();
        let path = dir.path().join("scaled.fits");
        // BITPIX 16 with BSCALE 0.5 and BZERO 100, written with D exponents.
        let raw: [i16; 4] = [0, 1, -2, 1000];
        let data: Vec<u8> = raw.iter().flat_map(|v| v.to_be_bytes()).collect();
        handmade(
            &path,
            &[
                "SIMPLE  =                    T",
                "BITPIX  =                   16",
                "NAXIS   =                    2",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
                "BSCALE  =              5.0D-01 / D exponent",
                "BZERO   =              1.0D+02",
                "GAIN    =              1.5d0",
            ],
            &data,
        );
        let img = read_image_f32(&path, 0).unwrap();
        assert_eq!(img.data, vec![100.0, 100.5, 99.0, 600.0]);
        assert_eq!(
            header_value(&path, 0, "BSCALE"),
            Some(HeaderValue::Float(0.5))
        );
        assert_eq!(
            header_value(&path, 0, "GAIN"),
            Some(HeaderValue::Float(1.5))
        );
        assert_eq!(
            read_region_f32(&path, 0, 1, 1, 1, 1).unwrap().data,
            vec![600.0]
        );

        let cube = dir.path().join("cube.fits");
        handmade(
            &cube,
            &[
                "SIMPLE  =                    T",
                "BITPIX  =                    8",
                "NAXIS   =                    3",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
                "NAXIS3  =                    2",
            ],
            &[0; 8],
        );
        assert!(matches!(
            read_image_f32(&cube, 0),
            Err(FitsError::NotAnImage { .. })
        ));
        assert!(matches!(
            first_image_hdu(&cube),
            Err(FitsError::NoImage { .. })
        ));

        let bad = dir.path().join("bitpix.fits");
        handmade(
            &bad,
            &[
                "SIMPLE  =                    T",
                "BITPIX  =                   12",
                "NAXIS   =                    2",
                "NAXIS1  =                    2",
                "NAXIS2  =                    2",
            ],
            &[0; 6],
        );
        let err = read_image_f32(&bad, 0).unwrap_err();
        assert!(matches!(err, FitsError::UnsupportedBitpix { .. }), "{err}");
        assert!(
            err.to_string().contains(&bad.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn concurrent_readers_of_one_file() {
        let dir = tmp();
        let path = dir.path().join("shared.fits");
        let img = i32_image(200, 120);
        write_image(
            &path,
            PixelData::I32(&img),
            &[],
            &Compression::Rice { tile: (64, 64) },
        )
        .unwrap();
        let expected = img.map(|v| v as f32);
        std::thread::scope(|s| {
            for t in 0..4 {
                let (path, expected) = (&path, &expected);
                s.spawn(move || {
                    for i in 0..20 {
                        let (x0, y0) = ((t * 13 + i * 7) % 150, (t * 5 + i * 11) % 80);
                        let region = read_region_f32(path, 1, x0, y0, 50, 40).unwrap();
                        assert_same(
                            &region,
                            &make(50, 40, |x, y| expected.get(x0 + x, y0 + y)),
                            "thread",
                        );
                    }
                });
            }
        });
    }
}
