//! Reading source catalogs: SExtractor FITS_LDAC, plain FITS binary tables and
//! CSV/TSV files, into `source` rows ready for the database.
//!
//! # Formats
//!
//! * **FITS_LDAC** (SExtractor's `-CATALOG_TYPE FITS_LDAC`): an empty primary
//!   HDU, then for every image extension SExtractor measured a pair of binary
//!   tables, `LDAC_IMHEAD` and `LDAC_OBJECTS`. `LDAC_IMHEAD` has one row and
//!   one column, `Field Header Card` (`TFORM = 'nA'`, `TDIM = '(80, m)'`),
//!   holding the measured image's header as 80-character records up to `END`:
//!   SExtractor copies the image HDU's own header unchanged (for an extension
//!   of a multi-extension file its `XTENSION` header, without the primary's
//!   cards) and appends `FITSFILE`, `FITSEXT`, `FITSNEXT` and its `SEX*`
//!   configuration cards. That header is what links a catalog to its image,
//!   so it is returned in [`SourceTable::image_header`].
//! * **Plain FITS binary table**: the first table HDU (or the one asked for)
//!   of a file whose primary HDU holds no image.
//! * **CSV** (`.csv`, comma-separated) and **TSV** (`.tsv`, tab-separated):
//!   a header line naming the columns, then one source per line; blank
//!   fields are missing values, lines starting with `#` are comments. Read
//!   as a stream, so only the mapped columns are kept in memory.
//!
//! # Columns
//!
//! A [`ColumnMap`] says which table column feeds which `source` field. By
//! default SExtractor's names (and wisecut's own, as its sample pipeline
//! writes them) are recognised; `--columns RA=ra_deg,DEC=dec_deg` overrides
//! single fields. Only RA and DEC are required. A field with no column gets
//! a value that cannot be mistaken for a measurement where the schema allows
//! it:
//!
//! | field                 | when missing or not finite                        |
//! |-----------------------|---------------------------------------------------|
//! | SID                   | the row number (1, 2, …)                          |
//! | X, Y                  | from the frame's WCS ([`fill_pixel_positions`]), else 0 |
//! | A, B, THETA, FWHM     | 0                                                 |
//! | FLUX_AUTO             | 0                                                 |
//! | MAG_AUTO, MAGERR_AUTO | NULL (also for SExtractor's 99 "no magnitude")    |
//! | CLASS_STAR            | [`CLASS_STAR_UNKNOWN`] (-1, outside SExtractor's 0…1) |
//! | FLAGS                 | 0                                                 |
//!
//! # Speed
//!
//! FITS columns are read whole, one cfitsio call each; rows are assembled in
//! one pass. A million-row LDAC catalog reads in well under a second.

use super::{CatalogError, hpx_index};
use crate::catalog::entity;
use crate::imaging::fits::{self, Card, FitsError, HeaderValue};
use crate::imaging::wcs::{Wcs, WcsKeywords};
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

/// `CLASS_STAR` stored for a source whose catalog has none: the column is
/// NOT NULL (and SQLite cannot store NaN), and SExtractor's classifier only
/// produces values in 0…1, so -1 reads as "not measured".
pub const CLASS_STAR_UNKNOWN: f64 = -1.0;

/// The extension name of SExtractor's object table in FITS_LDAC.
pub const LDAC_OBJECTS: &str = "LDAC_OBJECTS";
/// The extension name of the image header table before each object table.
pub const LDAC_IMHEAD: &str = "LDAC_IMHEAD";

/// The kind of catalog file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TableFormat {
    /// SExtractor FITS_LDAC (`LDAC_IMHEAD` + `LDAC_OBJECTS` pairs).
    Ldac,
    /// A plain FITS binary (or ASCII) table.
    FitsTable,
    /// Comma- (`.csv`) or tab- (`.tsv`) separated text with a header line.
    Csv,
}

impl TableFormat {
    /// A short name for messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ldac => "FITS_LDAC",
            Self::FitsTable => "FITS table",
            Self::Csv => "CSV",
        }
    }
}

impl fmt::Display for TableFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `source` field a catalog column can feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Source id within the list.
    Sid,
    /// Right ascension (deg).
    Ra,
    /// Declination (deg).
    Dec,
    /// FITS pixel x.
    X,
    /// FITS pixel y.
    Y,
    /// Semi-major axis (pixel).
    A,
    /// Semi-minor axis (pixel).
    B,
    /// Position angle (deg).
    Theta,
    /// Kron magnitude.
    MagAuto,
    /// Its error.
    MagerrAuto,
    /// Kron flux (ADU).
    FluxAuto,
    /// FWHM (pixel).
    Fwhm,
    /// Star/galaxy classifier.
    ClassStar,
    /// Extraction flags.
    Flags,
}

/// Every field, in `source` column order.
pub const FIELDS: [Field; 14] = [
    Field::Sid,
    Field::Ra,
    Field::Dec,
    Field::X,
    Field::Y,
    Field::A,
    Field::B,
    Field::Theta,
    Field::MagAuto,
    Field::MagerrAuto,
    Field::FluxAuto,
    Field::Fwhm,
    Field::ClassStar,
    Field::Flags,
];

impl Field {
    /// The name used on the left of `--columns`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Sid => "SID",
            Self::Ra => "RA",
            Self::Dec => "DEC",
            Self::X => "X",
            Self::Y => "Y",
            Self::A => "A",
            Self::B => "B",
            Self::Theta => "THETA",
            Self::MagAuto => "MAG_AUTO",
            Self::MagerrAuto => "MAGERR_AUTO",
            Self::FluxAuto => "FLUX_AUTO",
            Self::Fwhm => "FWHM",
            Self::ClassStar => "CLASS_STAR",
            Self::Flags => "FLAGS",
        }
    }

    /// The column names recognised without a mapping, best first:
    /// SExtractor's, then wisecut's own (and VizieR's for positions).
    pub fn default_columns(self) -> &'static [&'static str] {
        match self {
            Self::Sid => &["NUMBER", "SID"],
            Self::Ra => &["ALPHA_J2000", "ALPHAWIN_J2000", "X_WORLD", "RA", "RAJ2000"],
            Self::Dec => &["DELTA_J2000", "DELTAWIN_J2000", "Y_WORLD", "DEC", "DEJ2000"],
            Self::X => &["X_IMAGE", "XWIN_IMAGE", "X"],
            Self::Y => &["Y_IMAGE", "YWIN_IMAGE", "Y"],
            Self::A => &["A_IMAGE", "A"],
            Self::B => &["B_IMAGE", "B"],
            Self::Theta => &["THETA_IMAGE", "THETA"],
            Self::MagAuto => &["MAG_AUTO"],
            Self::MagerrAuto => &["MAGERR_AUTO"],
            Self::FluxAuto => &["FLUX_AUTO"],
            Self::Fwhm => &["FWHM_IMAGE", "FWHM"],
            Self::ClassStar => &["CLASS_STAR"],
            Self::Flags => &["FLAGS"],
        }
    }

    /// The field a `--columns` target names: wisecut's name or the first
    /// SExtractor name (`NUMBER`, `ALPHA_J2000`, `X_IMAGE`, …), any case.
    pub fn parse(name: &str) -> Option<Self> {
        FIELDS.into_iter().find(|f| {
            f.name().eq_ignore_ascii_case(name)
                || f.default_columns()
                    .first()
                    .is_some_and(|c| c.eq_ignore_ascii_case(name))
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// What a [`ColumnMap`] says about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    /// The first of the field's default names the table has, if any.
    Default,
    /// This column, which must exist.
    Column(String),
    /// Not in the catalog (even if a default name matches): use the
    /// documented missing value.
    Absent,
}

/// Which table column feeds which `source` field (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnMap {
    fields: [Source; 14],
}

impl Default for ColumnMap {
    fn default() -> Self {
        Self {
            fields: std::array::from_fn(|_| Source::Default),
        }
    }
}

impl ColumnMap {
    /// SExtractor's and wisecut's column names, nothing overridden.
    pub fn sextractor() -> Self {
        Self::default()
    }

    /// Parses a `--columns` value: comma-separated `FIELD=column` pairs,
    /// e.g. `RA=ra_deg,DEC=dec_deg,MAG_AUTO=gmag`. Both sides are
    /// case-insensitive; an empty column (`X=`) says the catalog has no such
    /// column. Fields not named keep their defaults.
    pub fn parse(spec: &str) -> Result<Self, CatalogError> {
        let mut map = Self::default();
        let mut seen = Vec::new();
        for pair in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((target, column)) = pair.split_once('=') else {
                return Err(CatalogError::Invalid(format!(
                    "--columns: {pair:?} is not FIELD=column (e.g. RA=ra_deg)"
                )));
            };
            let (target, column) = (target.trim(), column.trim());
            let field = Field::parse(target).ok_or_else(|| {
                CatalogError::Invalid(format!(
                    "--columns: unknown field {target:?}; the fields are {}",
                    FIELDS.map(Field::name).join(", ")
                ))
            })?;
            if seen.contains(&field) {
                return Err(CatalogError::Invalid(format!(
                    "--columns: field {} is mapped twice",
                    field.name()
                )));
            }
            seen.push(field);
            map.fields[field.index()] = if column.is_empty() {
                Source::Absent
            } else {
                Source::Column(column.to_owned())
            };
        }
        Ok(map)
    }

    /// Sets one field's column (builder style, for callers without a
    /// `--columns` string).
    pub fn with(mut self, field: Field, column: &str) -> Self {
        self.fields[field.index()] = Source::Column(column.to_owned());
        self
    }

    /// The position in `columns` of each field's column (`None`: missing),
    /// or an error naming what is missing and what the table has.
    fn resolve(
        &self,
        columns: &[String],
        place: &str,
    ) -> Result<[Option<usize>; 14], CatalogError> {
        let find = |name: &str| {
            columns
                .iter()
                .position(|c| c == name)
                .or_else(|| columns.iter().position(|c| c.eq_ignore_ascii_case(name)))
        };
        let mut out = [None; 14];
        for field in FIELDS {
            out[field.index()] = match &self.fields[field.index()] {
                Source::Absent => None,
                Source::Column(c) => Some(find(c).ok_or_else(|| {
                    unmappable(
                        place,
                        columns,
                        &format!("no column {c:?} (given for {} by --columns)", field.name()),
                    )
                })?),
                Source::Default => field.default_columns().iter().find_map(|c| find(c)),
            };
        }
        for field in [Field::Ra, Field::Dec] {
            if out[field.index()].is_none() {
                let looked = match &self.fields[field.index()] {
                    Source::Absent => "it is mapped to nothing".to_owned(),
                    _ => format!("looked for {}", field.default_columns().join(", ")),
                };
                return Err(unmappable(
                    place,
                    columns,
                    &format!("no column for {} ({looked})", field.name()),
                ));
            }
        }
        Ok(out)
    }

    /// Whether a table with these columns can be read with this map (RA and
    /// DEC found, every explicitly named column present).
    fn fits(&self, columns: &[String]) -> bool {
        self.resolve(columns, "").is_ok()
    }
}

fn unmappable(place: &str, columns: &[String], what: &str) -> CatalogError {
    let has = if columns.is_empty() {
        "no columns".to_owned()
    } else {
        format!("columns {}", columns.join(", "))
    };
    CatalogError::Invalid(format!(
        "{place}: cannot map the catalog: {what}; it has {has}. Name the columns with \
         --columns FIELD=column,… (e.g. --columns RA=ra_deg,DEC=dec_deg; fields: {})",
        FIELDS.map(Field::name).join(", ")
    ))
}

/// A catalog read and checked, ready to insert.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// The sources, `slid` 0 (set when inserted), `hpx` filled. `x`/`y` are
    /// NaN where the catalog has no pixel position: call
    /// [`fill_pixel_positions`] with the frame before inserting.
    pub rows: Vec<entity::source::Model>,
    /// What the file is.
    pub format: TableFormat,
    /// The table's HDU (zero-based); `None` for CSV.
    pub hdu: Option<usize>,
    /// FITS_LDAC only: the measured image's header as 80-character records
    /// (blank-padded, `END` left out), from the `LDAC_IMHEAD` before the
    /// object table.
    pub image_header: Option<Vec<String>>,
}

impl SourceTable {
    /// [`Self::image_header`] parsed into cards (`CONTINUE` strings merged).
    pub fn image_cards(&self) -> Option<Vec<Card>> {
        self.image_header
            .as_ref()
            .map(|records| fits::parse_header_records(&records.concat()))
    }
}

/// Whether `path` looks like a catalog this module reads with the default
/// column names, and which kind (see [`sniff_with`]).
pub fn sniff(path: &Path) -> Option<TableFormat> {
    sniff_with(path, &ColumnMap::default())
}

/// Whether `path` is a catalog readable with `map`: FITS_LDAC (an
/// `LDAC_OBJECTS` extension), a FITS file with no primary image whose first
/// table has RA and DEC columns, or a `.csv`/`.tsv` file whose header line
/// has them. An image, an unreadable file or a table without positions is
/// `None`. Only headers (or the first line) are read.
pub fn sniff_with(path: &Path, map: &ColumnMap) -> Option<TableFormat> {
    if let Some(delimiter) = text_delimiter(path) {
        let mut reader = csv_reader(delimiter).from_path(path).ok()?;
        let columns: Vec<String> = reader.headers().ok()?.iter().map(str::to_owned).collect();
        return map.fits(&columns).then_some(TableFormat::Csv);
    }
    let hdus = fits_hdus(path).ok()?;
    if hdus
        .iter()
        .any(|h| h.extname.as_deref() == Some(LDAC_OBJECTS))
    {
        return Some(TableFormat::Ldac);
    }
    if hdus.first().is_none_or(|p| p.has_image) {
        return None;
    }
    let table = hdus.iter().find(|h| h.columns.is_some())?;
    map.fits(table.columns.as_deref()?)
        .then_some(TableFormat::FitsTable)
}

/// The object tables of a FITS_LDAC file (one per measured image
/// extension), zero-based; empty for anything else.
pub fn ldac_object_hdus(path: &Path) -> Result<Vec<usize>, CatalogError> {
    Ok(fits_hdus(path)
        .map_err(|e| CatalogError::Invalid(format!("{e}")))?
        .iter()
        .filter(|h| h.extname.as_deref() == Some(LDAC_OBJECTS))
        .map(|h| h.index)
        .collect())
}

/// The delimiter of a text catalog, by file extension.
fn text_delimiter(path: &Path) -> Option<u8> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "csv" => Some(b','),
        "tsv" => Some(b'\t'),
        _ => None,
    }
}

fn csv_reader(delimiter: u8) -> csv::ReaderBuilder {
    let mut b = csv::ReaderBuilder::new();
    b.delimiter(delimiter)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .has_headers(true);
    b
}

/// What sniffing and reading need to know of one HDU.
struct HduSummary {
    index: usize,
    extname: Option<String>,
    /// NAXIS > 0 with data (the primary of a catalog has NAXIS = 0).
    has_image: bool,
    /// Column names (`TTYPEn` in order) when the HDU is a table.
    columns: Option<Vec<String>>,
}

fn fits_hdus(path: &Path) -> Result<Vec<HduSummary>, FitsError> {
    let n = fits::hdu_count(path)?;
    (0..n)
        .map(|index| {
            let header = fits::read_header(path, index)?;
            Ok(summarise(index, &header))
        })
        .collect()
}

fn summarise(index: usize, header: &[Card]) -> HduSummary {
    let get = |k: &str| header.iter().find(|c| c.key == k).map(|c| &c.value);
    let text = |k: &str| {
        get(k)
            .and_then(HeaderValue::as_str)
            .map(|s| s.trim().to_owned())
    };
    let int = |k: &str| get(k).and_then(HeaderValue::as_i64);
    let xtension = text("XTENSION").unwrap_or_default();
    // cfitsio presents a tile-compressed image as an image header, so a
    // BINTABLE here is a real table.
    let is_table = matches!(xtension.as_str(), "BINTABLE" | "TABLE");
    let columns = is_table.then(|| {
        let mut named: Vec<(i64, String)> = header
            .iter()
            .filter_map(|c| {
                let n = c.key.strip_prefix("TTYPE")?.parse::<i64>().ok()?;
                Some((n, c.value.as_str()?.trim().to_owned()))
            })
            .collect();
        named.sort_by_key(|(n, _)| *n);
        named.into_iter().map(|(_, name)| name).collect()
    });
    let naxis = int("NAXIS").unwrap_or(0);
    let has_image =
        !is_table && naxis > 0 && (1..=naxis).all(|i| int(&format!("NAXIS{i}")).unwrap_or(0) > 0);
    HduSummary {
        index,
        extname: text("EXTNAME"),
        has_image,
        columns,
    }
}

/// The columns of a catalog, as read: one vector per mapped field.
struct RawColumns {
    n: usize,
    /// Indexed by [`Field::index`]; `None` for fields with no column. SID
    /// and FLAGS are kept as integers (`ints`), the rest as reals.
    reals: [Option<Vec<f64>>; 14],
    sid: Option<Vec<i64>>,
    flags: Option<Vec<i64>>,
}

/// Reads a catalog: FITS_LDAC, a FITS table or CSV/TSV (by extension).
/// `hdu` picks the table (zero-based): by default the first `LDAC_OBJECTS`
/// of an LDAC file, the first table of any other FITS file. Errors name the
/// file, the HDU and the problem (for unmappable catalogs, the columns it
/// has and how to use `--columns`).
pub fn read_source_table(
    path: &Path,
    hdu: Option<usize>,
    map: &ColumnMap,
) -> Result<SourceTable, CatalogError> {
    if let Some(delimiter) = text_delimiter(path) {
        return read_csv(path, delimiter, map);
    }
    let fail = |e: &dyn fmt::Display| {
        CatalogError::Invalid(format!("{}: cannot read the catalog: {e}", path.display()))
    };
    let hdus = fits_hdus(path).map_err(|e| fail(&e))?;
    let is_ldac = hdus
        .iter()
        .any(|h| h.extname.as_deref() == Some(LDAC_OBJECTS));
    let table = match hdu {
        Some(i) => hdus.get(i).ok_or_else(|| {
            fail(&format!(
                "HDU {i} does not exist (the file has {})",
                hdus.len()
            ))
        })?,
        None if is_ldac => hdus
            .iter()
            .find(|h| h.extname.as_deref() == Some(LDAC_OBJECTS))
            .ok_or_else(|| fail(&"no LDAC_OBJECTS table"))?,
        None => hdus
            .iter()
            .find(|h| h.columns.is_some())
            .ok_or_else(|| fail(&"no table HDU (is it an image?)"))?,
    };
    let Some(columns) = &table.columns else {
        return Err(fail(&format!("HDU {} is not a table", table.index)));
    };
    let format = if is_ldac {
        TableFormat::Ldac
    } else {
        TableFormat::FitsTable
    };
    let place = format!("{}: HDU {} ({format})", path.display(), table.index);
    let found = map.resolve(columns, &place)?;
    let index = table.index;
    let read_err = |e: FitsError| CatalogError::Invalid(format!("{place}: {e}"));
    let n = fits::table_rows(path, index).map_err(read_err)?;
    let mut raw = RawColumns {
        n,
        reals: std::array::from_fn(|_| None),
        sid: None,
        flags: None,
    };
    for field in FIELDS {
        let Some(c) = found[field.index()] else {
            continue;
        };
        let name = &columns[c];
        let check_len = |len: usize| {
            if len == n {
                Ok(())
            } else {
                Err(CatalogError::Invalid(format!(
                    "{place}: column {name} has {len} values for {n} rows (a vector column?)"
                )))
            }
        };
        match field {
            Field::Sid | Field::Flags => {
                let v = fits::read_column_i64(path, index, name).map_err(read_err)?;
                check_len(v.len())?;
                if field == Field::Sid {
                    raw.sid = Some(v);
                } else {
                    raw.flags = Some(v);
                }
            }
            _ => {
                let v = fits::read_column_f64(path, index, name).map_err(read_err)?;
                check_len(v.len())?;
                raw.reals[field.index()] = Some(v);
            }
        }
    }
    let rows = assemble(raw, &place, &|i| format!("row {}", i + 1))?;
    let image_header = if is_ldac {
        ldac_image_header(path, &hdus, index)?
    } else {
        None
    };
    Ok(SourceTable {
        rows,
        format,
        hdu: Some(index),
        image_header,
    })
}

/// The image header a FITS_LDAC catalog keeps for object table `hdu` (the
/// `LDAC_IMHEAD` just before it) as cards; `None` when there is none.
pub fn ldac_image_cards(path: &Path, hdu: usize) -> Result<Option<Vec<Card>>, CatalogError> {
    let hdus = fits_hdus(path).map_err(|e| CatalogError::Invalid(format!("{e}")))?;
    Ok(ldac_image_header(path, &hdus, hdu)?
        .map(|records| fits::parse_header_records(&records.concat())))
}

/// The header records in the `LDAC_IMHEAD` just before object table `hdu`.
fn ldac_image_header(
    path: &Path,
    hdus: &[HduSummary],
    hdu: usize,
) -> Result<Option<Vec<String>>, CatalogError> {
    let Some(head) = hdu.checked_sub(1).and_then(|i| hdus.get(i)) else {
        return Ok(None);
    };
    if head.extname.as_deref() != Some(LDAC_IMHEAD) {
        return Ok(None);
    }
    let Some(column) = head.columns.as_ref().and_then(|c| c.first()) else {
        return Ok(None);
    };
    let cells = fits::read_column_string(path, head.index, column).map_err(|e| {
        CatalogError::Invalid(format!(
            "{}: HDU {} ({LDAC_IMHEAD}): {e}",
            path.display(),
            head.index
        ))
    })?;
    Ok(Some(header_records(&cells)))
}

/// Splits the `Field Header Card` cell into 80-character records up to
/// `END`. cfitsio may hand the cell back as one string (trailing blanks
/// trimmed) or, honouring `TDIM`, as one string per record: both are
/// accepted.
fn header_records(cells: &[String]) -> Vec<String> {
    const CARD: usize = 80;
    let pad = |s: &str| format!("{s:<CARD$}");
    let records: Vec<String> = if cells.len() == 1 {
        let text = &cells[0];
        // Records are ASCII; a stray multi-byte character must not split a
        // char, so cut on bytes and re-validate.
        text.as_bytes()
            .chunks(CARD)
            .map(|c| pad(&String::from_utf8_lossy(c)))
            .collect()
    } else {
        cells.iter().map(|c| pad(c)).collect()
    };
    records
        .into_iter()
        .take_while(|r| r.trim_end() != "END")
        .filter(|r| !r.trim().is_empty())
        .collect()
}

/// One parsed CSV record: the fields' bytes back to back and where each ends.
#[derive(Clone, Copy)]
struct CsvRecord<'a> {
    data: &'a [u8],
    ends: &'a [usize],
}

impl<'a> CsvRecord<'a> {
    fn len(&self) -> usize {
        self.ends.len()
    }

    /// Field `i`, trimmed of blanks.
    fn get(&self, i: usize) -> &'a [u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data[start..self.ends[i]].trim_ascii()
    }

    fn strings(&self) -> Vec<String> {
        (0..self.len())
            .map(|i| String::from_utf8_lossy(self.get(i)).into_owned())
            .collect()
    }
}

/// Calls `each(line, record)` for every record of a CSV/TSV file, header
/// included, with the (1-based) line the record starts on and its fields
/// trimmed of blanks. Parsed with `csv-core` (the `csv` crate's own parser)
/// fed straight from a buffered file: the `csv` crate reports the line where
/// the previous record ended, which is wrong after blank or comment lines,
/// and an error that names the wrong line is worse than none.
fn for_each_csv_record(
    path: &Path,
    delimiter: u8,
    mut each: impl FnMut(u64, CsvRecord<'_>) -> Result<(), CatalogError>,
) -> Result<(), CatalogError> {
    use csv_core::ReadRecordResult;
    use std::io::BufRead;
    let io = |e: std::io::Error| CatalogError::Invalid(format!("{}: {e}", path.display()));
    let file = std::fs::File::open(path).map_err(io)?;
    let mut input = std::io::BufReader::with_capacity(1 << 16, file);
    let mut parser = csv_core::ReaderBuilder::new()
        .delimiter(delimiter)
        .comment(Some(b'#'))
        .build();
    let (mut out, mut ends) = (vec![0u8; 1024], vec![0usize; 32]);
    let (mut outlen, mut endlen) = (0, 0);
    loop {
        let buf = input.fill_buf().map_err(io)?;
        let (res, nin, nout, nend) =
            parser.read_record(buf, &mut out[outlen..], &mut ends[endlen..]);
        // Whether this call ended on a line feed, which the parser has
        // already counted although it belongs to the record's last line.
        let ended_on_newline = nin > 0 && buf[nin - 1] == b'\n';
        input.consume(nin);
        outlen += nout;
        endlen += nend;
        match res {
            ReadRecordResult::InputEmpty => {}
            ReadRecordResult::OutputFull => out.resize(out.len() * 2, 0),
            ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
            ReadRecordResult::Record => {
                let data = &out[..outlen];
                let last_line = parser.line() - u64::from(ended_on_newline);
                // Quoted fields may span lines: the record starts earlier.
                let inner = data.iter().filter(|&&b| b == b'\n').count() as u64;
                each(
                    last_line - inner,
                    CsvRecord {
                        data,
                        ends: &ends[..endlen],
                    },
                )?;
                outlen = 0;
                endlen = 0;
            }
            ReadRecordResult::End => return Ok(()),
        }
    }
}

/// Reads a CSV/TSV catalog as a stream: only the mapped columns are kept.
fn read_csv(path: &Path, delimiter: u8, map: &ColumnMap) -> Result<SourceTable, CatalogError> {
    let place = format!("{}", path.display());
    let mut columns: Vec<String> = Vec::new();
    let mut wanted: Vec<(Field, usize)> = Vec::new();
    let mut reals: [Option<Vec<f64>>; 14] = std::array::from_fn(|_| None);
    let (mut sid, mut flags) = (None::<Vec<i64>>, None::<Vec<i64>>);
    let mut lines: Vec<u64> = Vec::new();
    let mut header_seen = false;
    for_each_csv_record(path, delimiter, |line, record| {
        if !header_seen {
            header_seen = true;
            columns = record.strings();
            let found = map.resolve(&columns, &format!("{place} ({})", TableFormat::Csv))?;
            for f in FIELDS {
                let Some(c) = found[f.index()] else { continue };
                wanted.push((f, c));
                match f {
                    Field::Sid => sid = Some(Vec::new()),
                    Field::Flags => flags = Some(Vec::new()),
                    _ => reals[f.index()] = Some(Vec::new()),
                }
            }
            return Ok(());
        }
        if record.len() != columns.len() {
            return Err(CatalogError::Invalid(format!(
                "{place}: line {line} has {} fields but the header line has {}",
                record.len(),
                columns.len()
            )));
        }
        for &(f, c) in &wanted {
            let text = record.get(c);
            let bad = |what: &str| {
                CatalogError::Invalid(format!(
                    "{place}: line {line}, column {} ({}): {:?} is not {what}",
                    columns[c],
                    f.name(),
                    String::from_utf8_lossy(text)
                ))
            };
            let text = std::str::from_utf8(text).map_err(|_| bad("UTF-8 text"))?;
            match f {
                Field::Sid | Field::Flags => {
                    // A blank FLAGS is no flag; a blank SID is an error.
                    let v = if text.is_empty() && f == Field::Flags {
                        0
                    } else {
                        text.parse::<i64>().map_err(|_| bad("an integer"))?
                    };
                    let target = if f == Field::Sid {
                        &mut sid
                    } else {
                        &mut flags
                    };
                    if let Some(t) = target.as_mut() {
                        t.push(v);
                    }
                }
                _ => {
                    // A blank field is a missing value.
                    let v = if text.is_empty() {
                        f64::NAN
                    } else {
                        text.parse::<f64>().map_err(|_| bad("a number"))?
                    };
                    if let Some(t) = reals[f.index()].as_mut() {
                        t.push(v);
                    }
                }
            }
        }
        lines.push(line);
        Ok(())
    })?;
    if !header_seen {
        return Err(CatalogError::Invalid(format!(
            "{place}: empty file: a CSV catalog needs a header line naming its columns"
        )));
    }
    let raw = RawColumns {
        n: lines.len(),
        reals,
        sid,
        flags,
    };
    let rows = assemble(raw, &place, &|i| format!("line {}", lines[i]))?;
    Ok(SourceTable {
        rows,
        format: TableFormat::Csv,
        hdu: None,
        image_header: None,
    })
}

/// Builds the `source` rows from the columns: the checks (valid RA/DEC,
/// unique SID, FLAGS in range) and the missing values of the module docs.
/// `row` names row `i` in messages (`row 7`, `line 9`).
fn assemble(
    raw: RawColumns,
    place: &str,
    row: &dyn Fn(usize) -> String,
) -> Result<Vec<entity::source::Model>, CatalogError> {
    let n = raw.n;
    let col = |f: Field| raw.reals[f.index()].as_deref();
    let (ra, dec) = match (col(Field::Ra), col(Field::Dec)) {
        (Some(r), Some(d)) => (r, d),
        // `ColumnMap::resolve` refuses maps without RA and DEC.
        _ => return Err(CatalogError::Invalid(format!("{place}: no RA/DEC columns"))),
    };
    let sid: Vec<i64> = match raw.sid {
        Some(v) => v,
        None => (1..=n as i64).collect(),
    };
    check_unique_sids(&sid, place, row)?;
    let value = |f: Field, i: usize| col(f).map_or(f64::NAN, |v| v[i]);
    let or_zero = |v: f64| if v.is_finite() { v } else { 0.0 };
    let magnitude = |v: f64| (v.is_finite() && v < 90.0).then_some(v);
    let mut rows = Vec::with_capacity(n);
    for i in 0..n {
        let (r, d) = (ra[i], dec[i]);
        if !(r.is_finite() && d.is_finite() && (-90.0..=90.0).contains(&d)) {
            return Err(CatalogError::Invalid(format!(
                "{place}: {} (SID {}) has no valid RA/DEC (RA {r}, DEC {d})",
                row(i),
                sid[i]
            )));
        }
        let flags = match &raw.flags {
            Some(v) => i32::try_from(v[i]).map_err(|_| {
                CatalogError::Invalid(format!(
                    "{place}: {}: FLAGS {} does not fit in 32 bits",
                    row(i),
                    v[i]
                ))
            })?,
            None => 0,
        };
        let class_star = value(Field::ClassStar, i);
        rows.push(entity::source::Model {
            slid: 0,
            sid: sid[i],
            ra: r.rem_euclid(360.0),
            dec: d,
            // NaN until `fill_pixel_positions` places it on the frame.
            x: value(Field::X, i),
            y: value(Field::Y, i),
            a: or_zero(value(Field::A, i)),
            b: or_zero(value(Field::B, i)),
            theta: or_zero(value(Field::Theta, i)),
            mag_auto: magnitude(value(Field::MagAuto, i)),
            magerr_auto: magnitude(value(Field::MagerrAuto, i)),
            flux_auto: or_zero(value(Field::FluxAuto, i)),
            fwhm: or_zero(value(Field::Fwhm, i)),
            class_star: if class_star.is_finite() {
                class_star
            } else {
                CLASS_STAR_UNKNOWN
            },
            flags,
            hpx: hpx_index(r, d),
        });
    }
    Ok(rows)
}

/// Refuses a repeated SID. SExtractor numbers its sources 1, 2, …, so an
/// increasing column (checked in one pass) is the common case; only other
/// orders pay for a hash map.
fn check_unique_sids(
    sid: &[i64],
    place: &str,
    row: &dyn Fn(usize) -> String,
) -> Result<(), CatalogError> {
    if sid.windows(2).all(|w| w[0] < w[1]) {
        return Ok(());
    }
    let mut first: HashMap<i64, usize> = HashMap::with_capacity(sid.len());
    for (i, &s) in sid.iter().enumerate() {
        if let Some(j) = first.insert(s, i) {
            return Err(CatalogError::Invalid(format!(
                "{place}: SID {s} occurs twice ({} and {})",
                row(j),
                row(i)
            )));
        }
    }
    Ok(())
}

/// Gives every row without a finite pixel position (`x` or `y` NaN: the
/// catalog had no X/Y column or no value) the position of its RA/DEC on the
/// frame's WCS, or 0 when the frame has none (or the position does not
/// project). `frame_wcs` is the frame row's `wcs` JSON.
pub fn fill_pixel_positions(
    rows: &mut [entity::source::Model],
    frame_wcs: Option<&str>,
    naxis1: usize,
    naxis2: usize,
) {
    if rows.iter().all(|r| r.x.is_finite() && r.y.is_finite()) {
        return;
    }
    let wcs = frame_wcs
        .and_then(|j| serde_json::from_str::<WcsKeywords>(j).ok())
        .and_then(|k| Wcs::new(&k, naxis1, naxis2).ok());
    for r in rows
        .iter_mut()
        .filter(|r| !(r.x.is_finite() && r.y.is_finite()))
    {
        let (x, y) = wcs
            .as_ref()
            .and_then(|w| w.sky_to_pix(r.ra, r.dec))
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .unwrap_or((0.0, 0.0));
        r.x = x;
        r.y = y;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::fits::{
        Column, ColumnData, Compression, PixelData, write_image, write_table,
    };

    fn tmp() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_default_map_finds_sextractor_and_wisecut_names() {
        let m = ColumnMap::default();
        let sex = strings(&[
            "NUMBER",
            "ALPHAWIN_J2000",
            "DELTAWIN_J2000",
            "XWIN_IMAGE",
            "YWIN_IMAGE",
            "MAG_AUTO",
            "FLAGS",
        ]);
        let found = m.resolve(&sex, "f").unwrap();
        assert_eq!(found[Field::Sid.index()], Some(0));
        assert_eq!(found[Field::Ra.index()], Some(1));
        assert_eq!(found[Field::Dec.index()], Some(2));
        assert_eq!(found[Field::X.index()], Some(3));
        assert_eq!(found[Field::Flags.index()], Some(6));
        assert_eq!(found[Field::Fwhm.index()], None);
        // SExtractor's barycentre wins over the windowed position when both
        // are there, and names match in any case.
        let both = strings(&["alphawin_j2000", "alpha_j2000", "delta_j2000"]);
        assert_eq!(m.resolve(&both, "f").unwrap()[Field::Ra.index()], Some(1));
        let own = strings(&["SID", "RA", "DEC", "X", "Y", "FWHM"]);
        let found = m.resolve(&own, "f").unwrap();
        assert_eq!(found[Field::Sid.index()], Some(0));
        assert_eq!(found[Field::Fwhm.index()], Some(5));
    }

    #[test]
    fn a_columns_option_overrides_single_fields() {
        let m =
            ColumnMap::parse(" ra=RA_DEG, Dec=dec_deg ,MAG_AUTO=gmag,x_image=,NUMBER=id").unwrap();
        let cols = strings(&["id", "ra_deg", "DEC_DEG", "GMAG", "X_IMAGE", "ALPHA_J2000"]);
        let found = m.resolve(&cols, "f").unwrap();
        assert_eq!(
            found[Field::Ra.index()],
            Some(1),
            "mapping beats the default"
        );
        assert_eq!(found[Field::Dec.index()], Some(2));
        assert_eq!(found[Field::MagAuto.index()], Some(3));
        assert_eq!(found[Field::X.index()], None, "X= means absent");
        assert_eq!(found[Field::Sid.index()], Some(0));
        assert_eq!(ColumnMap::parse("").unwrap(), ColumnMap::default());
    }

    #[test]
    fn bad_columns_options_say_what_is_allowed() {
        let err = ColumnMap::parse("RA=a,MAGNITUDE=b")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("MAGNITUDE") && err.contains("MAG_AUTO, MAGERR_AUTO"),
            "{err}"
        );
        let err = ColumnMap::parse("RA").unwrap_err().to_string();
        assert!(err.contains("FIELD=column"), "{err}");
        let err = ColumnMap::parse("RA=a,ra=b").unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn an_unmappable_table_names_its_columns_and_the_option() {
        let cols = strings(&["ID", "lon", "lat"]);
        let err = ColumnMap::default()
            .resolve(&cols, "cat.fits: HDU 1")
            .unwrap_err()
            .to_string();
        for want in [
            "cat.fits: HDU 1",
            "RA",
            "ALPHA_J2000",
            "ID, lon, lat",
            "--columns",
        ] {
            assert!(err.contains(want), "{want}: {err}");
        }
        let err = ColumnMap::parse("RA=lon,DEC=dek")
            .unwrap()
            .resolve(&cols, "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"dek\"") && err.contains("DEC"), "{err}");
    }

    fn write_csv(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn csv_rows_and_missing_values() {
        let dir = tmp();
        let p = write_csv(
            dir.path(),
            "c.csv",
            "# made by hand\nid, ra ,dec,gmag,CLASS_STAR\n7,10.5,-3.25,21.5,0.9\n9,370,45,,\n",
        );
        let map = ColumnMap::parse("SID=id,MAG_AUTO=gmag").unwrap();
        assert_eq!(sniff_with(&p, &map), Some(TableFormat::Csv));
        let t = read_source_table(&p, None, &map).unwrap();
        assert_eq!(
            (t.format, t.hdu, t.image_header.is_none()),
            (TableFormat::Csv, None, true)
        );
        assert_eq!(t.rows.len(), 2);
        let (a, b) = (&t.rows[0], &t.rows[1]);
        assert_eq!(
            (a.sid, a.ra, a.dec, a.mag_auto, a.class_star),
            (7, 10.5, -3.25, Some(21.5), 0.9)
        );
        assert_eq!(b.ra, 10.0, "RA wrapped into 0..360");
        assert_eq!(
            (b.mag_auto, b.class_star, b.flags),
            (None, CLASS_STAR_UNKNOWN, 0)
        );
        assert!(a.x.is_nan() && a.y.is_nan(), "X/Y wait for the frame's WCS");
        assert_eq!((a.a, a.fwhm, a.flux_auto), (0.0, 0.0, 0.0));
        assert_eq!(a.hpx, hpx_index(10.5, -3.25));
        // TSV by extension.
        let p = write_csv(dir.path(), "t.tsv", "RA\tDEC\n1\t2\n");
        assert_eq!(
            read_source_table(&p, None, &ColumnMap::default())
                .unwrap()
                .rows[0]
                .dec,
            2.0
        );
    }

    #[test]
    fn csv_errors_name_the_line_and_column() {
        let dir = tmp();
        let p = write_csv(dir.path(), "c.csv", "RA,DEC,MAG_AUTO\n1,2,3\n\n4,5,abc\n");
        let err = read_source_table(&p, None, &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("c.csv")
                && err.contains("line 4")
                && err.contains("MAG_AUTO")
                && err.contains("\"abc\""),
            "{err}"
        );
        let p = write_csv(dir.path(), "d.csv", "RA,DEC\n1,2\n3,95\n");
        let err = read_source_table(&p, None, &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("RA/DEC"), "{err}");
        let p = write_csv(dir.path(), "e.csv", "RA,DEC,SID\n1,2,5\n3,4,5\n");
        let err = read_source_table(&p, None, &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SID 5 occurs twice (line 2 and line 3)"),
            "{err}"
        );
        let p = write_csv(dir.path(), "f.csv", "RA,DEC\r\n\r\n# c\r\n1,2,3\r\n");
        let err = read_source_table(&p, None, &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("f.csv: line 4 has 3 fields"), "{err}");
        // A quoted field spanning lines: the record starts on its first.
        let p = write_csv(
            dir.path(),
            "q.csv",
            "RA,DEC,NOTE\n1,2,\"a\nb\"\n\n3,x,\"c\nd\"\n",
        );
        let err = read_source_table(&p, None, &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 5, column DEC"), "{err}");
        let p = write_csv(dir.path(), "g.csv", "lon,lat\n1,2\n");
        assert_eq!(sniff(&p), None);
        let err = read_source_table(&p, None, &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("lon, lat") && err.contains("--columns"),
            "{err}"
        );
    }

    /// Writes an LDAC file laid out as SExtractor 2.25 writes it (see
    /// `tests/it/catalog_formats.rs` for the comparison with the real tool):
    /// empty primary, `LDAC_IMHEAD` with one cell of 80-character records,
    /// `LDAC_OBJECTS`.
    fn write_ldac(path: &Path, header: &[&str], ra: &[f64], dec: &[f64]) {
        let mut cell: String = header.iter().map(|r| format!("{r:<80}")).collect();
        cell.push_str(&format!("{:<80}", "END"));
        let cell = vec![cell];
        write_table(
            path,
            LDAC_IMHEAD,
            &[Column::new("Field Header Card", "", ColumnData::Str(&cell))],
            &[],
        )
        .unwrap();
        let number: Vec<i32> = (1..=ra.len() as i32).collect();
        write_table(
            path,
            LDAC_OBJECTS,
            &[
                Column::new("NUMBER", "", ColumnData::I32(&number)),
                Column::new("ALPHA_J2000", "deg", ColumnData::F64(ra)),
                Column::new("DELTA_J2000", "deg", ColumnData::F64(dec)),
            ],
            &[],
        )
        .unwrap();
    }

    #[test]
    fn ldac_files_give_their_rows_and_image_header() {
        let dir = tmp();
        let p = dir.path().join("cat.ldac");
        let header = [
            "SIMPLE  =                    T / conforms to FITS standard",
            "NAXIS   =                    2",
            "OBJECT  = 'M 31    '",
            "LONGSTR = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa&'",
            "CONTINUE  'bbb'",
            "SEXVERS = 'Source Extractor 2.25.0' / Extraction software",
        ];
        write_ldac(&p, &header, &[10.0, 11.0], &[1.0, 2.0]);
        assert_eq!(sniff(&p), Some(TableFormat::Ldac));
        assert_eq!(ldac_object_hdus(&p).unwrap(), vec![2]);
        let t = read_source_table(&p, None, &ColumnMap::default()).unwrap();
        assert_eq!((t.format, t.hdu), (TableFormat::Ldac, Some(2)));
        assert_eq!(
            t.rows.iter().map(|r| (r.sid, r.ra)).collect::<Vec<_>>(),
            [(1, 10.0), (2, 11.0)]
        );
        let records = t.image_header.clone().unwrap();
        assert_eq!(records.len(), header.len(), "END and padding left out");
        for (got, want) in records.iter().zip(header) {
            assert_eq!(got.len(), 80);
            assert_eq!(got.trim_end(), want);
        }
        let cards = t.image_cards().unwrap();
        let value = |k: &str| cards.iter().find(|c| c.key == k).map(|c| c.value.clone());
        assert_eq!(value("OBJECT"), Some(HeaderValue::Str("M 31".into())));
        assert_eq!(
            value("LONGSTR"),
            Some(HeaderValue::Str(format!("{}bbb", "a".repeat(67))))
        );
        // Asking for the IMHEAD table itself is refused with its columns.
        let err = read_source_table(&p, Some(1), &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("HDU 1") && err.contains("Field Header Card"),
            "{err}"
        );
    }

    #[test]
    fn images_are_not_catalogs_and_plain_tables_are() {
        let dir = tmp();
        // Plain and tile-compressed (a BINTABLE behind an empty primary).
        let pixels = crate::imaging::raster::Raster::from_vec(4, 4, vec![7i32; 16]);
        for (name, c) in [
            ("img.fits", Compression::None),
            ("img.fits.fz", Compression::Rice { tile: (4, 1) }),
        ] {
            let img = dir.path().join(name);
            write_image(&img, PixelData::I32(&pixels), &[], &c).unwrap();
            assert_eq!(sniff(&img), None, "{name}");
            let err = read_source_table(&img, None, &ColumnMap::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(name) && err.contains("no table HDU"), "{err}");
        }
        let t = dir.path().join("t.fits");
        let ra = [1.0, 2.0];
        let dec = [3.0, 4.0];
        let flags = [0i32, 4];
        write_table(
            &t,
            "SOURCES",
            &[
                Column::new("RA", "deg", ColumnData::F64(&ra)),
                Column::new("DEC", "deg", ColumnData::F64(&dec)),
                Column::new("FLAGS", "", ColumnData::I32(&flags)),
            ],
            &[],
        )
        .unwrap();
        assert_eq!(sniff(&t), Some(TableFormat::FitsTable));
        let s = read_source_table(&t, None, &ColumnMap::default()).unwrap();
        assert_eq!(
            (s.format, s.hdu, s.image_header),
            (TableFormat::FitsTable, Some(1), None)
        );
        assert_eq!(s.rows[1].flags, 4);
        let other = dir.path().join("o.fits");
        write_table(
            &other,
            "T",
            &[Column::new("lon", "", ColumnData::F64(&ra))],
            &[],
        )
        .unwrap();
        assert_eq!(sniff(&other), None);
        let err = read_source_table(&other, None, &ColumnMap::default())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("o.fits: HDU 1 (FITS table)") && err.contains("columns lon"),
            "{err}"
        );
    }

    #[test]
    fn header_cells_split_either_way() {
        let one = vec![format!("{:<80}{:<80}END", "A       = 1", "B       = 2")];
        assert_eq!(header_records(&one).len(), 2);
        let many = strings(&["A       = 1", "B       = 2", "END", ""]);
        assert_eq!(header_records(&many).len(), 2);
    }

    #[test]
    fn pixel_positions_come_from_the_frame_wcs() {
        let k = WcsKeywords {
            ctype1: "RA---TAN".into(),
            ctype2: "DEC--TAN".into(),
            crval1: 150.0,
            crval2: 2.0,
            crpix1: 50.0,
            crpix2: 40.0,
            cd: [[-1e-4, 0.0], [0.0, 1e-4]],
            radesys: None,
            equinox: None,
            lonpole: None,
            sip: None,
        };
        let json = serde_json::to_string(&k).unwrap();
        let row = |x: f64| entity::source::Model {
            slid: 0,
            sid: 1,
            ra: 150.0,
            dec: 2.0,
            x,
            y: x,
            a: 0.0,
            b: 0.0,
            theta: 0.0,
            mag_auto: None,
            magerr_auto: None,
            flux_auto: 0.0,
            fwhm: 0.0,
            class_star: 0.0,
            flags: 0,
            hpx: 0,
        };
        let mut rows = vec![row(f64::NAN), row(7.0)];
        fill_pixel_positions(&mut rows, Some(&json), 100, 80);
        assert!(
            (rows[0].x - 50.0).abs() < 1e-6 && (rows[0].y - 40.0).abs() < 1e-6,
            "{rows:?}"
        );
        assert_eq!((rows[1].x, rows[1].y), (7.0, 7.0), "given positions kept");
        let mut rows = vec![row(f64::NAN)];
        fill_pixel_positions(&mut rows, None, 100, 80);
        assert_eq!((rows[0].x, rows[0].y), (0.0, 0.0));
    }
}
