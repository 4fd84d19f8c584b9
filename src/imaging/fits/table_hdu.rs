//! Binary-table HDUs: appending a table of named columns to a file (or
//! creating a file for it) and reading columns back by name.
//!
//! Only what wisecut's catalogues need is supported: scalar numeric and
//! fixed-width string columns on the write side, any fixed-size column on the
//! read side (converted by cfitsio), no variable-length arrays.

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::Path;
use std::ptr;

use fitsio::sys;

use super::cards::{Card, MAX_SINGLE_CARD_STRING, format_user_cards, is_printable_ascii};
use super::handle::{
    ASCII_TBL, BINARY_TBL, BYTE_IMG, CfitsioType, Handle, TSTRING, finish_new_file,
};
use super::{FitsError, invalid};

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

impl Handle {
    /// Creates an empty primary HDU (NAXIS = 0), which a new file needs
    /// before its first table.
    #[allow(unsafe_code)]
    fn create_empty_primary(&self) -> Result<(), FitsError> {
        let mut status: c_int = 0;
        // SAFETY: valid handle; with NAXIS = 0 the axes pointer is not read.
        unsafe { sys::ffcrimll(self.raw(), BYTE_IMG, 0, ptr::null_mut(), &mut status) };
        self.check("create empty primary HDU", status)
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
                self.c_size(rows)?,
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

    /// Writes a numeric column.
    #[allow(unsafe_code)]
    fn write_column<T: CfitsioType>(&self, colnum: c_int, data: &[T]) -> Result<(), FitsError> {
        if data.is_empty() {
            return Ok(());
        }
        let n = self.c_size(data.len())?;
        let mut status: c_int = 0;
        // SAFETY: valid handle; `data` holds `n` elements of the C type named
        // by `T::TYPE_CODE`; cfitsio only reads the array.
        unsafe {
            sys::ffpcl(
                self.raw(),
                T::TYPE_CODE,
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
        let n = self.c_size(data.len())?;
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
    /// converted by cfitsio to `T`.
    #[allow(unsafe_code)]
    fn read_column<T: CfitsioType + Default>(
        &self,
        colnum: c_int,
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
        // named by `T::TYPE_CODE`, and `nulval` is a value of that type.
        unsafe {
            sys::ffgcv(
                self.raw(),
                T::TYPE_CODE,
                colnum,
                1,
                1,
                self.c_size(n)?,
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
                self.c_size(n)?,
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

/// TFORM and C strings for one column, validated.
struct PreparedColumn {
    name: CString,
    form: CString,
    unit: CString,
    strings: Option<Vec<CString>>,
}

/// Whether `s` can be a table name, column name or unit: printable ASCII no
/// longer than the longest string a single card holds, since cfitsio writes
/// each as the string value of one `EXTNAME`, `TTYPEn` or `TUNITn` card.
fn fits_on_one_card(s: &str) -> bool {
    is_printable_ascii(s) && s.len() <= MAX_SINGLE_CARD_STRING
}

fn prepare_column(path: &Path, column: &Column<'_>) -> Result<PreparedColumn, FitsError> {
    let name = column.name;
    if name.is_empty() || !fits_on_one_card(name) {
        return Err(invalid(path, format!("invalid column name {name:?}")));
    }
    if !fits_on_one_card(column.unit) {
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
    if extname.is_empty() || !fits_on_one_card(extname) {
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
        handle.write_records(&records)?;
        for (i, (column, prep)) in columns.iter().zip(&prepared).enumerate() {
            let colnum = c_int::try_from(i + 1).map_err(|_| invalid(path, "too many columns"))?;
            match column.data {
                ColumnData::I32(v) => handle.write_column(colnum, v)?,
                ColumnData::I64(v) => handle.write_column(colnum, v)?,
                ColumnData::F32(v) => handle.write_column(colnum, v)?,
                ColumnData::F64(v) => handle.write_column(colnum, v)?,
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

/// Opens `path` read-only and moves to table HDU `hdu`.
fn open_table(path: &Path, hdu: usize) -> Result<Handle, FitsError> {
    match Handle::open_hdu(path, hdu)? {
        (handle, BINARY_TBL | ASCII_TBL) => Ok(handle),
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
    handle.read_column(colnum, n, f64::NAN)
}

/// Reads column `name` of table HDU `hdu` as i64 (converted by cfitsio; reals
/// are truncated, out-of-range values are an error; TNULL values are returned
/// as stored). A vector column yields all elements, row after row.
pub fn read_column_i64(path: &Path, hdu: usize, name: &str) -> Result<Vec<i64>, FitsError> {
    let (handle, colnum, n, _) = open_column(path, hdu, name)?;
    // A null value of 0 tells cfitsio not to substitute undefined values.
    handle.read_column(colnum, n, 0i64)
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
    use crate::imaging::fits::test_fixtures::*;
    use crate::imaging::fits::{
        Compression, HeaderValue, PixelData, first_image_hdu, hdu_count, read_header,
        read_image_f32, write_image,
    };

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
            Column::new("ID", "", ColumnData::I64(&ids)),
            Column::new("COUNTS", "ct", ColumnData::I32(&counts)),
            Column::new("FLUX", "Jy", ColumnData::F32(&flux)),
            Column::new("RA", "deg", ColumnData::F64(&ra)),
            Column::new("Name", "", ColumnData::Str(&names)),
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
        let cols2 = [Column::new("X", "", ColumnData::F64(&empty))];
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
            let cols = [Column::new("V", "", ColumnData::F64(&v))];
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
                Column::new("A", "", ColumnData::I32(&a)),
                Column::new("B", "", ColumnData::F64(&b)),
            ],
            vec![
                Column::new("A", "", ColumnData::I32(&a)),
                Column::new("a", "", ColumnData::I32(&a)),
            ],
            vec![Column::new("", "", ColumnData::I32(&a))],
            vec![Column::new("S", "", ColumnData::Str(&non_ascii))],
        ];
        for cols in &cases {
            let err = write_table(&path, "T", cols, &[]).unwrap_err();
            assert!(matches!(err, FitsError::Invalid { .. }), "{err}");
            assert!(!path.exists());
        }
    }
}
