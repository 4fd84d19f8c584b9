//! Header cards: the [`Card`] and [`HeaderValue`] types, formatting cards into
//! 80-character records, parsing records back into cards, and reading the
//! header of an HDU.
//!
//! Cards are formatted here rather than by cfitsio so that the bytes written
//! depend only on the inputs (see the module documentation of `fits`), and
//! every rule a user card must obey is checked before a file is created. They
//! are parsed here because cfitsio's own keyword readers stop at the first
//! card of a name and know nothing of `HIERARCH`; reading the whole header as
//! text and parsing it once gives callers every card in file order.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr;

use fitsio::sys;

use super::handle::Handle;
use super::{FitsError, invalid};

/// Length of one header record.
pub(super) const CARD_LEN: usize = 80;
/// Commentary text fits in columns 9..80 of a `COMMENT`/`HISTORY` card.
const COMMENTARY_TEXT_LEN: usize = CARD_LEN - 8;
/// Longest escaped string value that fits on one card between the quotes
/// (columns 12..79), as cfitsio also uses.
pub(super) const MAX_SINGLE_CARD_STRING: usize = 68;
/// Escaped characters per card when a string is split with `CONTINUE`:
/// one column is needed for the `&` continuation marker.
const CONTINUE_CHUNK: usize = MAX_SINGLE_CARD_STRING - 1;

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

pub(super) fn is_printable_ascii(s: &str) -> bool {
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

/// A fixed-format record without its padding: the keyword in columns 1..8,
/// `= ` and the value right-justified in columns 11..30. One place for the
/// layout, so user cards and the mandatory cards of an in-memory file cannot
/// drift apart.
pub(super) fn fixed_record(key: &str, value: impl std::fmt::Display) -> String {
    format!("{key:<8}= {value:>20}")
}

/// Formats a finite float so that it parses back to exactly the same `f64`:
/// Rust's `Debug` output is the shortest round-tripping representation; it is
/// only adjusted to FITS syntax (a decimal point in the mantissa, upper-case
/// `E`).
pub(super) fn format_float(v: f64) -> Option<String> {
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

pub(super) fn pad_card(mut card: String) -> String {
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
    let mut record = fixed_record(key, fixed);
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
pub(super) fn format_user_cards(
    path: &Path,
    cards: &[Card],
    table: bool,
) -> Result<Vec<String>, FitsError> {
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
pub(super) fn parse_record(record: &str) -> Option<Card> {
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

/// Parses header text written one card per line (a SCAMP `.head` file, an
/// ASCII header dump): each line is padded to a record of 80 characters.
pub fn parse_header_lines(text: &str) -> Vec<Card> {
    let records: String = text
        .lines()
        .map(|l| format!("{:<80.80}", l.trim_end_matches('\r')))
        .collect();
    parse_header_records(&records)
}

/// Parses a concatenation of 80-character records up to `END`, merging
/// `CONTINUE` long strings into the card they continue (a FITS header, or
/// the image header SExtractor keeps in a FITS_LDAC `LDAC_IMHEAD` cell).
pub fn parse_header_records(text: &str) -> Vec<Card> {
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

impl Handle {
    /// Appends formatted 80-character records to the current header.
    #[allow(unsafe_code)]
    pub(super) fn write_records(&self, records: &[String]) -> Result<(), FitsError> {
        for record in records {
            let c_record = CString::new(record.as_str())
                .map_err(|_| invalid(&self.path, "NUL in header card"))?;
            let mut status: c_int = 0;
            // SAFETY: valid handle; `c_record` is NUL-terminated and outlives
            // the call, which copies at most 80 bytes of it.
            unsafe { sys::ffprec(self.raw(), c_record.as_ptr(), &mut status) };
            self.check(
                &format!("write header card {:?}", record.trim_end()),
                status,
            )?;
        }
        Ok(())
    }

    /// The header of the current HDU as cfitsio presents it (for a compressed
    /// image: the header of the uncompressed image), parsed into cards.
    #[allow(unsafe_code)]
    pub(super) fn header(&self) -> Result<Vec<Card>, FitsError> {
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
}

/// All header cards of HDU `hdu` in file order, including the mandatory ones
/// (but not `END`). Values are parsed: quoted → `Str`, `T`/`F` → `Bool`,
/// integer → `Int`, real (also with `D` exponent) → `Float`; `CONTINUE`
/// long strings are merged. For a tile-compressed image HDU this is the header
/// of the uncompressed image as cfitsio presents it (`BITPIX`, `NAXISn`
/// instead of `ZBITPIX`, `ZNAXISn`, no table keywords).
pub fn read_header(path: &Path, hdu: usize) -> Result<Vec<Card>, FitsError> {
    let (handle, _) = Handle::open_hdu(path, hdu)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fits::test_fixtures::*;
    use crate::imaging::fits::{
        Column, ColumnData, Compression, PixelData, write_image, write_table,
    };

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
        let cols = [Column::new("A", "", ColumnData::I32(&[1]))];
        assert!(write_table(&path, "T", &cols, &[Card::new("EXTNAME", "X", "")]).is_err());
        assert!(!path.exists());
    }
}
