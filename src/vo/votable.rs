//! A VOTable 1.4 writer: TABLEDATA and BINARY2 serialisations, FIELD and
//! PARAM metadata (datatype, arraysize, unit, ucd, utype, xtype), COOSYS,
//! INFO elements (`QUERY_STATUS` OK/OVERFLOW/ERROR) and DataLink service
//! descriptors (`RESOURCE type="meta" utype="adhoc:service"`).
//!
//! Why not the CDS `votable` crate: its 0.7 release needs `serde` pinned to
//! 1.0.228, which would hold back every other crate of the workspace, and
//! wisecut only ever *writes* VOTables of a few fixed shapes. This writer is
//! small, has no dependencies beyond `base64`, and is checked against the
//! real readers instead: astropy with `verify='exception'`, the VOTable 1.4
//! XML schema, STILTS `votlint`, pyvo and TOPCAT (see `tests/it/vo.rs`).
//!
//! Values are [`Cell`]s, the type the table browser already returns, so a
//! browse page becomes a VOTable without copying. Nulls: an empty `<TD/>` in
//! TABLEDATA (allowed for every datatype since VOTable 1.3) and the leading
//! null-flag bits in BINARY2, so integer columns need no magic null value.

use std::fmt::Write as _;

use base64::Engine as _;

use crate::catalog::browse::Cell;

/// The VOTable namespace of version 1.4 (1.3 and 1.4 share it).
pub const NAMESPACE: &str = "http://www.ivoa.net/xml/VOTable/v1.3";
/// Where the 1.4 schema lives, for `xsi:schemaLocation`.
pub const SCHEMA: &str =
    "http://www.ivoa.net/xml/VOTable/v1.3 http://www.ivoa.net/xml/VOTable/votable-1.4.xsd";
/// The MIME type of a VOTable.
pub const MIME: &str = "application/x-votable+xml";

/// How TABLE data are serialised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Serialization {
    /// XML `<TR><TD>` rows: every reader understands it.
    TableData,
    /// Base64 binary with per-row null flags: compact and exact.
    Binary2,
}

impl Serialization {
    /// Parses `tabledata` / `binary2` (case-insensitive).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "tabledata" => Some(Self::TableData),
            "binary2" => Some(Self::Binary2),
            _ => None,
        }
    }
}

/// VOTable primitive datatypes wisecut writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `boolean`.
    Boolean,
    /// `int` (32-bit).
    Int,
    /// `long` (64-bit).
    Long,
    /// `double`.
    Double,
    /// `char`, variable length (`arraysize="*"`), UTF-8 passed through as
    /// bytes (readers treat it as text; wisecut's text is ASCII in practice).
    Char,
}

impl DataType {
    fn name(self) -> &'static str {
        match self {
            Self::Boolean => "boolean",
            Self::Int => "int",
            Self::Long => "long",
            Self::Double => "double",
            Self::Char => "char",
        }
    }
}

/// A FIELD (a column) or, with a value, a PARAM.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// `name`.
    pub name: String,
    /// `ID`, when something refers to the field.
    pub id: Option<String>,
    /// `datatype`.
    pub datatype: DataType,
    /// `arraysize`: `*` for text, otherwise scalar unless set.
    pub arraysize: Option<String>,
    /// `unit` (VOUnit syntax).
    pub unit: Option<String>,
    /// `ucd`.
    pub ucd: Option<String>,
    /// `utype`.
    pub utype: Option<String>,
    /// `xtype` (`timestamp`, `circle`, `polygon`, …).
    pub xtype: Option<String>,
    /// `ref`: the COOSYS (or field) it refers to.
    pub reference: Option<String>,
    /// `<DESCRIPTION>`.
    pub description: Option<String>,
}

impl Field {
    /// A field with only a name and a datatype; text fields get
    /// `arraysize="*"`.
    pub fn new(name: impl Into<String>, datatype: DataType) -> Self {
        Self {
            name: name.into(),
            id: None,
            datatype,
            arraysize: (datatype == DataType::Char).then(|| "*".to_owned()),
            unit: None,
            ucd: None,
            utype: None,
            xtype: None,
            reference: None,
            description: None,
        }
    }

    /// Sets the unit (empty means none).
    pub fn unit(mut self, unit: &str) -> Self {
        self.unit = (!unit.is_empty()).then(|| unit.to_owned());
        self
    }

    /// Sets the UCD (empty means none).
    pub fn ucd(mut self, ucd: &str) -> Self {
        self.ucd = (!ucd.is_empty()).then(|| ucd.to_owned());
        self
    }

    /// Sets the utype.
    pub fn utype(mut self, utype: &str) -> Self {
        self.utype = Some(utype.to_owned());
        self
    }

    /// Sets the xtype.
    pub fn xtype(mut self, xtype: &str) -> Self {
        self.xtype = Some(xtype.to_owned());
        self
    }

    /// Sets the ID.
    pub fn id(mut self, id: &str) -> Self {
        self.id = Some(id.to_owned());
        self
    }

    /// Sets the `ref` attribute.
    pub fn reference(mut self, r: &str) -> Self {
        self.reference = Some(r.to_owned());
        self
    }

    /// Sets the description.
    pub fn describe(mut self, text: &str) -> Self {
        self.description = Some(text.to_owned());
        self
    }

    /// Sets the arraysize (e.g. `3` for a circle, `*` for a polygon).
    pub fn arraysize(mut self, size: &str) -> Self {
        self.arraysize = Some(size.to_owned());
        self
    }

    /// Writes the attributes shared by FIELD and PARAM.
    fn write_attributes(&self, out: &mut String) {
        attr(out, "name", &self.name);
        if let Some(id) = &self.id {
            attr(out, "ID", id);
        }
        attr(out, "datatype", self.datatype.name());
        if let Some(a) = &self.arraysize {
            attr(out, "arraysize", a);
        }
        for (name, value) in [
            ("unit", &self.unit),
            ("ucd", &self.ucd),
            ("utype", &self.utype),
            ("xtype", &self.xtype),
            ("ref", &self.reference),
        ] {
            if let Some(v) = value {
                attr(out, name, v);
            }
        }
    }

    fn write_description(&self, out: &mut String) {
        if let Some(d) = &self.description {
            out.push_str("<DESCRIPTION>");
            escape_into(out, d);
            out.push_str("</DESCRIPTION>");
        }
    }
}

/// A PARAM: a field with a constant value, or a reference to a column of
/// the results table (`ref`), as service descriptors' input parameters are.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The metadata.
    pub field: Field,
    /// `value` (empty for a parameter the client fills in).
    pub value: String,
    /// Allowed range or options, written as `<VALUES>`.
    pub values: Option<Values>,
}

/// A PARAM's `<VALUES>`: a range or a list of options.
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    /// `<MIN>`/`<MAX>`.
    Range(String, String),
    /// `<OPTION>`s.
    Options(Vec<String>),
}

impl Param {
    /// A text PARAM with a value.
    pub fn text(name: &str, value: &str) -> Self {
        Self {
            field: Field::new(name, DataType::Char),
            value: value.to_owned(),
            values: None,
        }
    }

    fn write(&self, out: &mut String) {
        out.push_str("<PARAM");
        self.field.write_attributes(out);
        attr(out, "value", &self.value);
        if self.field.description.is_none() && self.values.is_none() {
            out.push_str("/>\n");
            return;
        }
        out.push('>');
        self.field.write_description(out);
        match &self.values {
            Some(Values::Range(min, max)) => {
                out.push_str("<VALUES>");
                if !min.is_empty() {
                    out.push_str("<MIN");
                    attr(out, "value", min);
                    out.push_str("/>");
                }
                if !max.is_empty() {
                    out.push_str("<MAX");
                    attr(out, "value", max);
                    out.push_str("/>");
                }
                out.push_str("</VALUES>");
            }
            Some(Values::Options(opts)) => {
                out.push_str("<VALUES>");
                for o in opts {
                    out.push_str("<OPTION");
                    attr(out, "value", o);
                    out.push_str("/>");
                }
                out.push_str("</VALUES>");
            }
            None => {}
        }
        out.push_str("</PARAM>\n");
    }
}

/// An INFO element.
#[derive(Debug, Clone, PartialEq)]
pub struct Info {
    /// `name`.
    pub name: String,
    /// `value`.
    pub value: String,
    /// Text content (e.g. an error message).
    pub content: Option<String>,
}

impl Info {
    /// An INFO with a name and a value.
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            value: value.into(),
            content: None,
        }
    }

    /// With text content.
    pub fn with_content(mut self, text: impl Into<String>) -> Self {
        self.content = Some(text.into());
        self
    }

    fn write(&self, out: &mut String) {
        out.push_str("<INFO");
        attr(out, "name", &self.name);
        attr(out, "value", &self.value);
        match &self.content {
            Some(c) => {
                out.push('>');
                escape_into(out, c);
                out.push_str("</INFO>\n");
            }
            None => out.push_str("/>\n"),
        }
    }
}

/// A DataLink service descriptor: a `RESOURCE type="meta"
/// utype="adhoc:service"` telling clients how to call a service (DataLink
/// `{links}` or SODA `{sync}`) for a row or a link.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceDescriptor {
    /// The RESOURCE's `ID` (DataLink `service_def` values point at it).
    pub id: String,
    /// `standardID` (e.g. `ivo://ivoa.net/std/DataLink#links-1.1`).
    pub standard_id: String,
    /// `accessURL`.
    pub access_url: String,
    /// A human description.
    pub description: String,
    /// The `inputParams` GROUP.
    pub input_params: Vec<Param>,
}

impl ServiceDescriptor {
    fn write(&self, out: &mut String) {
        out.push_str("<RESOURCE type=\"meta\" utype=\"adhoc:service\"");
        attr(out, "ID", &self.id);
        out.push_str(">\n<DESCRIPTION>");
        escape_into(out, &self.description);
        out.push_str("</DESCRIPTION>\n");
        Param::text("standardID", &self.standard_id).write(out);
        Param::text("accessURL", &self.access_url).write(out);
        out.push_str("<GROUP name=\"inputParams\">\n");
        for p in &self.input_params {
            p.write(out);
        }
        out.push_str("</GROUP>\n</RESOURCE>\n");
    }
}

/// A whole VOTable document with one results table.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Document {
    /// The document's DESCRIPTION.
    pub description: String,
    /// Whether to declare the ICRS COOSYS (`ID="icrs"`) that position
    /// fields refer to.
    pub icrs: bool,
    /// INFOs before the table (QUERY_STATUS first, then anything else).
    pub infos: Vec<Info>,
    /// PARAMs of the results resource.
    pub params: Vec<Param>,
    /// The table's name.
    pub table_name: String,
    /// Columns.
    pub fields: Vec<Field>,
    /// Rows, one cell per field.
    pub rows: Vec<Vec<Cell>>,
    /// Service descriptors written after the results resource.
    pub services: Vec<ServiceDescriptor>,
    /// INFOs after the table (DALI places an overflow's QUERY_STATUS
    /// there, where a streaming writer learns of it).
    pub trailing_infos: Vec<Info>,
}

/// The status a DAL response reports in `INFO name="QUERY_STATUS"`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryStatus {
    /// Everything asked for is there.
    Ok,
    /// The result was cut at the limit (MAXREC or the export limit).
    Overflow,
    /// The query failed; the message says why.
    Error(String),
}

impl QueryStatus {
    /// The INFO element.
    pub fn info(&self) -> Info {
        match self {
            Self::Ok => Info::new("QUERY_STATUS", "OK"),
            Self::Overflow => Info::new("QUERY_STATUS", "OVERFLOW"),
            Self::Error(m) => Info::new("QUERY_STATUS", "ERROR").with_content(m.clone()),
        }
    }
}

impl Document {
    /// Serialises the document.
    pub fn to_xml(&self, ser: Serialization) -> String {
        let mut out = String::with_capacity(1024 + self.rows.len() * self.fields.len() * 12);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        out.push_str("<VOTABLE version=\"1.4\"");
        attr(&mut out, "xmlns", NAMESPACE);
        attr(
            &mut out,
            "xmlns:xsi",
            "http://www.w3.org/2001/XMLSchema-instance",
        );
        attr(&mut out, "xsi:schemaLocation", SCHEMA);
        out.push_str(">\n");
        if !self.description.is_empty() {
            out.push_str("<DESCRIPTION>");
            escape_into(&mut out, &self.description);
            out.push_str("</DESCRIPTION>\n");
        }
        if self.icrs {
            out.push_str("<COOSYS ID=\"icrs\" system=\"ICRS\"/>\n");
        }
        out.push_str("<RESOURCE type=\"results\">\n");
        for i in &self.infos {
            i.write(&mut out);
        }
        for p in &self.params {
            p.write(&mut out);
        }
        // An error document has no columns; the schema wants a TABLE to
        // have some, so it has no TABLE at all (DALI needs only the INFO).
        if !self.fields.is_empty() {
            self.write_table(&mut out, ser);
        }
        for i in &self.trailing_infos {
            i.write(&mut out);
        }
        out.push_str("</RESOURCE>\n");
        for s in &self.services {
            s.write(&mut out);
        }
        out.push_str("</VOTABLE>\n");
        out
    }

    fn write_table(&self, out: &mut String, ser: Serialization) {
        out.push_str("<TABLE");
        attr(out, "name", &self.table_name);
        out.push_str(">\n");
        for (i, f) in self.fields.iter().enumerate() {
            out.push_str("<FIELD");
            // DALI has no null shape, and `stilts votlint` rejects an empty
            // cell under a shape xtype: a column with an empty cell in this
            // answer loses its claim to hold shapes (a calibration frame's
            // `s_region` in an SIA answer); answers without one keep it.
            let shape = matches!(f.xtype.as_deref(), Some("point" | "circle" | "polygon"));
            if shape
                && self
                    .rows
                    .iter()
                    .any(|r| matches!(r.get(i), Some(Cell::Null) | None))
            {
                let mut plain = f.clone();
                plain.xtype = None;
                plain.write_attributes(out);
            } else {
                f.write_attributes(out);
            }
            if f.description.is_some() {
                out.push('>');
                f.write_description(out);
                out.push_str("</FIELD>\n");
            } else {
                out.push_str("/>\n");
            }
        }
        out.push_str("<DATA>");
        match ser {
            Serialization::TableData => self.write_tabledata(out),
            Serialization::Binary2 => self.write_binary2(out),
        }
        out.push_str("</DATA>\n</TABLE>\n");
    }

    fn write_tabledata(&self, out: &mut String) {
        out.push_str("<TABLEDATA>\n");
        for row in &self.rows {
            out.push_str("<TR>");
            for (cell, field) in row.iter().zip(&self.fields) {
                match text_value(cell, field.datatype) {
                    None => out.push_str("<TD/>"),
                    Some(t) => {
                        out.push_str("<TD>");
                        escape_into(out, &t);
                        out.push_str("</TD>");
                    }
                }
            }
            out.push_str("</TR>\n");
        }
        out.push_str("</TABLEDATA>");
    }

    fn write_binary2(&self, out: &mut String) {
        let nflags = self.fields.len().div_ceil(8);
        let mut bytes = Vec::with_capacity(self.rows.len() * (nflags + 8 * self.fields.len()));
        for row in &self.rows {
            let flags_at = bytes.len();
            bytes.resize(flags_at + nflags, 0u8);
            for (i, (cell, field)) in row.iter().zip(&self.fields).enumerate() {
                let null = binary_value(cell, field.datatype, &mut bytes);
                if null {
                    // Most significant bit first: field 0 is bit 7 of byte 0.
                    bytes[flags_at + i / 8] |= 0x80 >> (i % 8);
                }
            }
        }
        out.push_str("<BINARY2><STREAM encoding=\"base64\">\n");
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        // Line breaks keep huge exports readable; base64 readers skip them.
        for chunk in encoded.as_bytes().chunks(76) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str("</STREAM></BINARY2>");
    }
}

/// The TABLEDATA text of a cell, `None` for null.
fn text_value(cell: &Cell, datatype: DataType) -> Option<String> {
    match cell {
        Cell::Null => None,
        Cell::Float(f) if !f.is_finite() => None,
        Cell::Bool(b) => Some(if *b { "T" } else { "F" }.to_owned()),
        Cell::Int(i) if datatype == DataType::Boolean => {
            Some(if *i != 0 { "T" } else { "F" }.to_owned())
        }
        Cell::Time(t) => Some(iso_time(t)),
        // Debug is the shortest round-trip form and switches to exponents
        // for tiny and huge values (4.05e-7 rather than 0.000000405).
        Cell::Float(f) => Some(format!("{f:?}")),
        other => Some(other.display()),
    }
}

/// ISO 8601 as DALI timestamps are written (`xtype="timestamp"`).
pub fn iso_time(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

/// Appends the BINARY2 bytes of a cell; returns whether it is null. A null
/// still occupies its fixed-size slot (zeros), as the standard requires.
fn binary_value(cell: &Cell, datatype: DataType, out: &mut Vec<u8>) -> bool {
    match datatype {
        DataType::Boolean => {
            let v = match cell {
                Cell::Bool(b) => Some(*b),
                Cell::Int(i) => Some(*i != 0),
                _ => None,
            };
            out.push(match v {
                Some(true) => b'T',
                Some(false) => b'F',
                None => b'?',
            });
            v.is_none()
        }
        DataType::Int => {
            let v = match cell {
                Cell::Int(i) => i32::try_from(*i).ok(),
                Cell::Bool(b) => Some(i32::from(*b)),
                _ => None,
            };
            out.extend_from_slice(&v.unwrap_or(0).to_be_bytes());
            v.is_none()
        }
        DataType::Long => {
            let v = match cell {
                Cell::Int(i) => Some(*i),
                Cell::Bool(b) => Some(i64::from(*b)),
                _ => None,
            };
            out.extend_from_slice(&v.unwrap_or(0).to_be_bytes());
            v.is_none()
        }
        DataType::Double => {
            let v = match cell {
                Cell::Float(f) => Some(*f),
                Cell::Int(i) => Some(*i as f64),
                _ => None,
            };
            out.extend_from_slice(&v.unwrap_or(f64::NAN).to_be_bytes());
            v.is_none_or(|f| f.is_nan())
        }
        DataType::Char => {
            let text = text_value(cell, datatype);
            let bytes = text.as_deref().unwrap_or("").as_bytes();
            out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
            out.extend_from_slice(bytes);
            text.is_none()
        }
    }
}

/// Appends ` name="value"` with the value escaped.
fn attr(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}=\"");
    escape_into(out, value);
    out.push('"');
}

pub use crate::markup::{escape, escape_into};

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Document {
        Document {
            description: "test <&>".into(),
            icrs: true,
            infos: vec![QueryStatus::Ok.info()],
            params: vec![],
            table_name: "t".into(),
            fields: vec![
                Field::new("id", DataType::Long).ucd("meta.id;meta.main"),
                Field::new("ra", DataType::Double)
                    .unit("deg")
                    .ucd("pos.eq.ra;meta.main")
                    .reference("icrs"),
                Field::new("name", DataType::Char),
                Field::new("ok", DataType::Boolean),
            ],
            rows: vec![
                vec![
                    Cell::Int(1),
                    Cell::Float(10.5),
                    Cell::Text("a\"b<c".into()),
                    Cell::Bool(true),
                ],
                vec![Cell::Null, Cell::Float(f64::NAN), Cell::Null, Cell::Null],
            ],
            services: vec![],
            trailing_infos: vec![],
        }
    }

    #[test]
    fn tabledata_escapes_and_writes_nulls_as_empty_cells() {
        let xml = doc().to_xml(Serialization::TableData);
        assert!(xml.contains("<DESCRIPTION>test &lt;&amp;&gt;</DESCRIPTION>"));
        assert!(xml.contains("<TR><TD>1</TD><TD>10.5</TD><TD>a&quot;b&lt;c</TD><TD>T</TD></TR>"));
        assert!(xml.contains("<TR><TD/><TD/><TD/><TD/></TR>"));
        assert!(xml.contains("ref=\"icrs\""));
        assert!(xml.contains("<INFO name=\"QUERY_STATUS\" value=\"OK\"/>"));
    }

    #[test]
    fn binary2_rows_have_null_flags_and_big_endian_values() {
        let xml = doc().to_xml(Serialization::Binary2);
        let start = xml.find("base64\">").unwrap() + 8;
        let end = xml.find("</STREAM>").unwrap();
        let text: String = xml[start..end].split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .unwrap();
        // Row 1: 1 flag byte, long, double, u32 length + 5 bytes, boolean.
        let row1 = 1 + 8 + 8 + 4 + 5 + 1;
        assert_eq!(bytes[0], 0);
        assert_eq!(&bytes[1..9], &1i64.to_be_bytes());
        assert_eq!(&bytes[9..17], &10.5f64.to_be_bytes());
        assert_eq!(&bytes[17..21], &5u32.to_be_bytes());
        assert_eq!(&bytes[21..26], b"a\"b<c");
        assert_eq!(bytes[26], b'T');
        // Row 2: all four fields null → the top four bits.
        assert_eq!(bytes[row1], 0b1111_0000);
        assert_eq!(bytes.len(), row1 + 1 + 8 + 8 + 4 + 1);
    }

    #[test]
    fn control_characters_never_reach_the_xml() {
        assert_eq!(escape("a\u{1}b"), "a\u{FFFD}b");
        assert_eq!(escape("x'y"), "x&apos;y");
    }
}
