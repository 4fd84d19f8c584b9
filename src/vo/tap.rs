//! TAP 1.1 queries: the request parameters, uploaded tables, and running a
//! query on the catalogue into a VOTable. The HTTP side (sync, the UWS
//! async endpoints, VOSI) is `web::tap_endpoints`; the asynchronous runs are
//! ordinary wisecut jobs (`jobs`, kind `tap`).
//!
//! Decisions:
//! - `LANG` must be ADQL (`ADQL`, `ADQL-2.0`, `ADQL-2.1`); `REQUEST`, when
//!   given, must be `doQuery`; `FORMAT` is a synonym of `RESPONSEFORMAT`.
//! - `MAXREC` defaults to [`DEFAULT_MAXREC`] and may not exceed
//!   [`MAX_MAXREC`]: every result is held in memory once while it is
//!   written, so the limit is what bounds a query's memory. A result cut at
//!   MAXREC says `QUERY_STATUS=OVERFLOW`, before and after the table (pyvo
//!   reads the first, DALI puts it after the table).
//! - Uploads (`UPLOAD=name,param:part` inline, or `UPLOAD=name,http://…`,
//!   which the HTTP edge fetches and turns into an inline part) are
//!   VOTables in any serialization, read by CDS's `votable` crate, of at
//!   most [`MAX_UPLOAD_ROWS`] rows; scalar columns only (numbers, booleans,
//!   text).
//! - Parameters TAP does not know are ignored and named in an INFO; RUNID
//!   is echoed.

use super::adql::{self, ColumnKind};
use super::tap_schema::{self, TapColumn, TapTable};
use super::votable::{DataType, Document, Info, QueryStatus};
use super::{DalParams, VoTableFormat};
use crate::catalog::browse::Cell;
use crate::catalog::tap_query::UploadTable;
use crate::catalog::{Catalog, CatalogError};

/// The parameters of a TAP query (sync or async).
pub const PARAMS: &[&str] = &[
    "LANG",
    "QUERY",
    "REQUEST",
    "VERSION",
    "MAXREC",
    "RESPONSEFORMAT",
    "FORMAT",
    "UPLOAD",
    "RUNID",
    "PHASE",
];

/// Rows returned when the client does not say.
pub const DEFAULT_MAXREC: u64 = 10_000;
/// Most rows one answer holds.
pub const MAX_MAXREC: u64 = 20_000;
/// Most rows of one uploaded table.
pub const MAX_UPLOAD_ROWS: usize = 20_000;
/// Most uploaded tables per query.
pub const MAX_UPLOADS: usize = 4;

/// A parsed TAP query request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The ADQL text.
    pub query: String,
    /// Rows to return at most.
    pub maxrec: u64,
    /// How to write the answer.
    pub format: VoTableFormat,
    /// Uploads: table name and the name of the request part holding it.
    pub uploads: Vec<(String, String)>,
    /// RUNID and ignored-parameter INFOs.
    pub infos: Vec<Info>,
    /// The parameters as given (for the UWS parameter list).
    pub given: Vec<(String, String)>,
}

impl Request {
    /// Parses and checks the parameters; errors name the parameter and
    /// what is allowed.
    pub fn parse(p: &DalParams) -> Result<Self, String> {
        match p.one("LANG")?.map(str::trim) {
            None => {
                return Err(
                    "LANG: missing; this service speaks LANG=ADQL (ADQL 2.0 and 2.1)".into(),
                );
            }
            Some(l)
                if ["ADQL", "ADQL-2.0", "ADQL-2.1"]
                    .iter()
                    .any(|a| a.eq_ignore_ascii_case(l)) => {}
            Some(l) => {
                return Err(format!(
                    "LANG: {:?} is not supported; allowed: ADQL, ADQL-2.0, ADQL-2.1",
                    crate::params::shown(l)
                ));
            }
        }
        if let Some(r) = p.one("REQUEST")?
            && !r.trim().eq_ignore_ascii_case("doQuery")
        {
            return Err(format!(
                "REQUEST: {:?} is not supported; allowed: doQuery",
                crate::params::shown(r)
            ));
        }
        let query = p
            .one("QUERY")?
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or("QUERY: missing; give an ADQL query, e.g. SELECT TOP 10 * FROM ivoa.obscore")?
            .to_owned();
        let maxrec = match p.one("MAXREC")? {
            None => DEFAULT_MAXREC,
            Some(m) => m
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|m| *m <= MAX_MAXREC)
                .ok_or_else(|| {
                    format!(
                        "MAXREC: {:?} is not allowed; give a row count from 0 to {MAX_MAXREC}",
                        crate::params::shown(m)
                    )
                })?,
        };
        let format_value = match (p.one("RESPONSEFORMAT")?, p.one("FORMAT")?) {
            (Some(a), Some(b)) if a != b => {
                return Err(
                    "RESPONSEFORMAT and FORMAT disagree; give one of them (FORMAT is its old name)"
                        .into(),
                );
            }
            (a, b) => a.or(b),
        };
        let format = VoTableFormat::parse(format_value, super::votable::MIME)?;
        let mut uploads = Vec::new();
        for spec in p.all("UPLOAD") {
            for one in spec.split(';').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, source) = one.split_once(',').ok_or_else(|| {
                    format!(
                        "UPLOAD: {:?} is not `name,param:part`",
                        crate::params::shown(one)
                    )
                })?;
                let name = name.trim();
                tap_schema::valid_upload_name(name).map_err(|e| format!("UPLOAD: {e}"))?;
                let part = source.trim().strip_prefix("param:").ok_or_else(|| {
                    format!(
                        "UPLOAD: {:?}: give `{name},param:part` (the table sent as part `part` of a multipart POST) or `{name},http://…`",
                        crate::params::shown(source)
                    )
                })?;
                if uploads
                    .iter()
                    .any(|(n, _): &(String, String)| n.eq_ignore_ascii_case(name))
                {
                    return Err(format!("UPLOAD: table {name} is uploaded twice"));
                }
                uploads.push((name.to_owned(), part.trim().to_owned()));
            }
        }
        if uploads.len() > MAX_UPLOADS {
            return Err(format!(
                "UPLOAD: {} tables; at most {MAX_UPLOADS} per query",
                uploads.len()
            ));
        }
        Ok(Self {
            query,
            maxrec,
            format,
            uploads,
            infos: super::request_infos(p, PARAMS),
            given: p.pairs().to_vec(),
        })
    }
}

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum TapError {
    /// The client's fault (bad ADQL, a bad upload): a UsageError.
    #[error("{0}")]
    Usage(String),
    /// The catalogue failed.
    #[error(transparent)]
    Catalog(#[from] CatalogError),
}

/// An uploaded VOTable read into a table description and its rows.
pub fn read_upload(name: &str, bytes: &[u8]) -> Result<(TapTable, UploadTable), String> {
    use votable::data::DataElem;
    use votable::impls::mem::InMemTableDataRows;
    use votable::table::TableElem;
    use votable::votable::VOTableWrapper;
    let fail = |e: &dyn std::fmt::Display| format!("UPLOAD {name}: not a readable VOTable: {e}");
    let mut w =
        VOTableWrapper::<InMemTableDataRows>::from_ivoa_xml_bytes(bytes).map_err(|e| fail(&e))?;
    w.to_tabledata().map_err(|e| fail(&e))?;
    let vot = w.unwrap();
    let table = vot
        .get_first_table()
        .ok_or_else(|| format!("UPLOAD {name}: the VOTable has no TABLE"))?;
    let fields: Vec<&votable::field::Field> = table
        .elems
        .iter()
        .filter_map(|e| match e {
            TableElem::Field(f) => Some(f),
            _ => None,
        })
        .collect();
    if fields.is_empty() {
        return Err(format!("UPLOAD {name}: the table has no FIELD"));
    }
    let mut columns = Vec::with_capacity(fields.len());
    let mut seen: Vec<String> = Vec::new();
    for f in &fields {
        let cname = f.name.trim().to_owned();
        tap_schema::valid_upload_name(&cname).map_err(|_| {
            format!(
                "UPLOAD {name}: column {:?} is not an ADQL name (a letter, then letters, digits or underscores)",
                crate::params::shown(&cname)
            )
        })?;
        if seen.iter().any(|s| s.eq_ignore_ascii_case(&cname)) {
            return Err(format!("UPLOAD {name}: column {cname} appears twice"));
        }
        seen.push(cname.clone());
        let (kind, datatype) = upload_kind(f).ok_or_else(|| {
            format!(
                "UPLOAD {name}: column {cname} is an array or of an unsupported type; uploads take scalar numbers, booleans and text"
            )
        })?;
        let mut c = TapColumn::new(&cname, kind, "uploaded column");
        c.datatype = datatype;
        c.xtype = f.xtype.clone();
        c.unit = f.unit.clone().unwrap_or_default();
        c.ucd = f.ucd.clone().unwrap_or_default();
        columns.push(c);
    }
    let rows: &[Vec<votable::impls::VOTableValue>] = match table.data.as_ref().map(|d| &d.data) {
        None => &[],
        Some(DataElem::TableData(td)) => &td.content.rows,
        Some(_) => {
            return Err(format!(
                "UPLOAD {name}: the data are in a FITS stream; send TABLEDATA, BINARY or BINARY2"
            ));
        }
    };
    if rows.len() > MAX_UPLOAD_ROWS {
        return Err(format!(
            "UPLOAD {name}: {} rows; at most {MAX_UPLOAD_ROWS} per table",
            rows.len()
        ));
    }
    let cells: Vec<Vec<Cell>> = rows
        .iter()
        .map(|r| r.iter().map(cell_of).collect())
        .collect();
    let described = tap_schema::upload_table(name, columns);
    let data = described
        .upload_data(cells)
        .ok_or_else(|| format!("UPLOAD {name}: not an upload table"))?;
    Ok((described, data))
}

/// The uploads `req` names, each read from the request part (name, VOTable
/// text) it names: what the sync endpoint and an async job both run on.
pub fn read_uploads(
    req: &Request,
    parts: &[(String, String)],
) -> Result<Vec<(TapTable, UploadTable)>, String> {
    req.uploads
        .iter()
        .map(|(name, part)| {
            let body = parts
                .iter()
                .find(|(n, _)| n == part)
                .map(|(_, b)| b.as_bytes())
                .ok_or_else(|| format!("UPLOAD {name}: the request has no part named {part:?}"))?;
            read_upload(name, body)
        })
        .collect()
}

/// How an uploaded FIELD is stored, `None` for arrays (other than text)
/// and complex numbers.
fn upload_kind(f: &votable::field::Field) -> Option<(ColumnKind, DataType)> {
    use votable::datatype::Datatype as D;
    let array = f.arraysize.is_some();
    Some(match f.datatype {
        D::CharASCII | D::CharUnicode => (ColumnKind::Text, DataType::Char),
        _ if array => return None,
        D::Logical => (ColumnKind::Bool, DataType::Boolean),
        D::Byte | D::ShortInt | D::Int => (ColumnKind::Int, DataType::Int),
        D::LongInt => (ColumnKind::Int, DataType::Long),
        D::Float | D::Double => (ColumnKind::Float, DataType::Double),
        _ => return None,
    })
}

fn cell_of(v: &votable::impls::VOTableValue) -> Cell {
    use votable::impls::VOTableValue as V;
    match v {
        V::Null => Cell::Null,
        V::Bool(b) => Cell::Bool(*b),
        V::Byte(b) => Cell::Int(i64::from(*b)),
        V::Short(i) => Cell::Int(i64::from(*i)),
        V::Int(i) => Cell::Int(i64::from(*i)),
        V::Long(i) => Cell::Int(*i),
        V::Double(f) if f.is_finite() => Cell::Float(*f),
        V::Float(f) if f.is_finite() => Cell::Float(f64::from(*f)),
        V::Double(_) | V::Float(_) => Cell::Null,
        V::CharASCII(c) | V::CharUnicode(c) => Cell::Text(c.to_string()),
        // Fixed-size char cells come padded with NULs.
        V::String(s) => match s.trim_end_matches('\0') {
            "" => Cell::Null,
            t => Cell::Text(t.to_owned()),
        },
        _ => Cell::Null,
    }
}

/// Runs `req` (its uploads already read) on the catalogue: the answer's
/// VOTable document. Paths in URL columns get `base` in front.
pub async fn run(
    catalog: &Catalog,
    req: &Request,
    uploads: Vec<(TapTable, UploadTable)>,
    base: &str,
) -> Result<Document, TapError> {
    // The catalogue's viewer decides which rows the data tables hold (the
    // submitter's, for an async job the runner scoped to them).
    let mut tables = tap_schema::scoped(tap_schema::published(), catalog);
    let mut data = Vec::with_capacity(uploads.len());
    for (t, d) in uploads {
        tables.push(t);
        data.push(d);
    }
    let t = adql::translate(&req.query, &tables, catalog.backend(), req.maxrec)
        .map_err(|e| TapError::Usage(e.to_string()))?;
    let mut rows = catalog.tap_rows(&t.sql, t.values, &t.kinds, &data).await?;
    let limit = usize::try_from(t.limit).unwrap_or(usize::MAX);
    // More rows than the limit only when MAXREC (not TOP) cut the answer.
    let overflow = rows.len() > limit;
    rows.truncate(limit);
    let regions: Vec<bool> = t
        .fields
        .iter()
        .map(|f| f.xtype.as_deref() == Some(tap_schema::REGION_XTYPE))
        .collect();
    for row in &mut rows {
        for ((cell, relative), region) in row.iter_mut().zip(&t.relative_urls).zip(&regions) {
            match cell {
                Cell::Text(path) if *relative => *path = format!("{base}{path}"),
                // The stored DALI polygon (`ra dec ra dec …`) as STC-S.
                Cell::Text(poly) if *region && !poly.starts_with(char::is_alphabetic) => {
                    *poly = format!("POLYGON ICRS {poly}");
                }
                _ => {}
            }
        }
    }
    let fields = t.fields;
    let status = if overflow {
        QueryStatus::Overflow
    } else {
        QueryStatus::Ok
    };
    Ok(Document {
        description: "wisecut TAP query result".into(),
        icrs: fields
            .iter()
            .any(|f| f.reference.as_deref() == Some("icrs")),
        infos: std::iter::once(status.info())
            .chain(std::iter::once(Info::new("QUERY", req.query.clone())))
            .chain(req.infos.iter().cloned())
            .collect(),
        params: vec![],
        table_name: "result".into(),
        fields,
        rows,
        services: vec![],
        trailing_infos: if overflow {
            vec![QueryStatus::Overflow.info()]
        } else {
            vec![]
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(q: &str) -> DalParams {
        DalParams::parse(q).unwrap()
    }

    #[test]
    fn requests_need_adql_and_a_query_and_name_what_is_wrong() {
        let r = Request::parse(&params("LANG=ADQL&QUERY=SELECT+1&MAXREC=5&RUNID=x&FOO=1")).unwrap();
        assert_eq!((r.query.as_str(), r.maxrec), ("SELECT 1", 5));
        assert!(r.infos.iter().any(|i| i.name == "RUNID"));
        for (q, name) in [
            ("QUERY=SELECT+1", "LANG"),
            ("LANG=SQL&QUERY=SELECT+1", "LANG"),
            ("LANG=ADQL", "QUERY"),
            ("LANG=ADQL&QUERY=SELECT+1&MAXREC=-1", "MAXREC"),
            ("LANG=ADQL&QUERY=SELECT+1&MAXREC=999999999", "MAXREC"),
            (
                "LANG=ADQL&QUERY=SELECT+1&REQUEST=getCapabilities",
                "REQUEST",
            ),
            (
                "LANG=ADQL&QUERY=SELECT+1&RESPONSEFORMAT=fits",
                "RESPONSEFORMAT",
            ),
            ("LANG=ADQL&QUERY=SELECT+1&UPLOAD=t,ftp://x/y", "UPLOAD"),
            ("LANG=ADQL&QUERY=SELECT+1&UPLOAD=1t,param:a", "UPLOAD"),
        ] {
            let e = Request::parse(&params(q)).unwrap_err();
            assert!(e.starts_with(name), "{q}: {e}");
        }
        let r = Request::parse(&params("LANG=ADQL&QUERY=SELECT+1&UPLOAD=mine,param:t1")).unwrap();
        assert_eq!(r.uploads, vec![("mine".to_owned(), "t1".to_owned())]);
    }

    #[test]
    fn uploads_are_read_from_tabledata_votables() {
        let xml = r#"<?xml version="1.0"?>
<VOTABLE version="1.4" xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>
<FIELD name="id" datatype="int"/><FIELD name="ra" datatype="double" unit="deg"/>
<FIELD name="dec" datatype="double"/><FIELD name="label" datatype="char" arraysize="*"/>
<DATA><TABLEDATA>
<TR><TD>1</TD><TD>150.1</TD><TD>2.2</TD><TD>a</TD></TR>
<TR><TD>2</TD><TD>150.2</TD><TD></TD><TD/></TR>
</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>"#;
        let (t, d) = read_upload("mine", xml.as_bytes()).unwrap();
        assert_eq!(t.qualified_name().to_ascii_lowercase(), "tap_upload.mine");
        assert_eq!(t.columns.len(), 4);
        assert_eq!(d.rows.len(), 2);
        assert_eq!(d.rows[0][1], Cell::Float(150.1));
        assert_eq!(d.rows[1][2], Cell::Null);
        assert!(
            read_upload("x", b"not xml")
                .unwrap_err()
                .contains("UPLOAD x")
        );
        let arr = xml
            .replace(
                r#"name="dec" datatype="double""#,
                r#"name="dec" datatype="double" arraysize="2""#,
            )
            .replace("<TD>2.2</TD>", "<TD>2.2 2.3</TD>")
            .replace("<TD></TD>", "<TD>1 2</TD>");
        let e = read_upload("x", arr.as_bytes()).unwrap_err();
        assert!(e.contains("dec") && e.contains("array"), "{e}");
    }
}
