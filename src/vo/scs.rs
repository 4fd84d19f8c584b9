//! Simple Cone Search 1.03 over the sources of the SourceLists: the
//! parameters (RA, DEC, SR, VERB, MAXREC, RESPONSEFORMAT, RUNID), the
//! columns and the answer, as a [`Document`] for [`super::votable`].
//!
//! What SCS 1.03 asks of the answer, and how wisecut meets it:
//! - exactly one FIELD each with the UCDs `ID_MAIN` (a text id unique in
//!   the table: `slid:sid`), `POS_EQ_RA_MAIN` and `POS_EQ_DEC_MAIN`
//!   (doubles, ICRS). These are UCD1 words, not UCD1+: SCS 1.03 (and the
//!   1.1 draft) names them so, and pyvo's `SCSRecord` looks them up by
//!   exactly these strings. Every other column has a UCD1+ word, the same
//!   as the SourceList VOTable export (`super::export`).
//! - `SR=0` is a metadata query (SCS 1.03 §2, "to discover the fields"):
//!   the FIELDs and no rows, not an error; `MAXREC=0` does the same (DALI).
//! - errors are a VOTable with `<INFO name="Error" value="…"/>` in the
//!   RESOURCE (one of the two places SCS 1.03 allows; the writer puts every
//!   INFO there) next to DALI's `QUERY_STATUS=ERROR`, answered with HTTP
//!   200 by the web layer: SCS 1.03 clients read the document, not the
//!   status.
//! - parameters this service does not know are ignored (SCS 1.03 §2, DALI)
//!   and named in an INFO, so a typo (`RAD=`) is visible to whoever looks.
//!
//! Bounds: `SR` at most [`MAX_SR`] degrees (SCS lets a service refuse a
//! larger cone; the HEALPix search reads every candidate of the cone before
//! it sorts them, so the radius is what bounds its memory) and at most
//! [`MAX_RECORDS`] rows (`MAXREC` above it is lowered to it), nearest
//! first; a cut answer says `QUERY_STATUS=OVERFLOW`.

use std::collections::HashMap;

use super::DalParams;
use super::votable::{DataType, Document, Field, Info, QueryStatus, Serialization};
use crate::catalog::browse::{Cell, Table};
use crate::catalog::sources::Source;
use crate::ids::{ObjectId, Slid};
use crate::params::{ParamError, angle, shown};

/// SCS's `standardID` (1.03 registers under this one).
pub const STANDARD_ID: &str = "ivo://ivoa.net/std/ConeSearch";

/// Parameters the service understands (upper case).
pub const PARAMS: &[&str] = &[
    "RA",
    "DEC",
    "SR",
    "VERB",
    "MAXREC",
    "RESPONSEFORMAT",
    "RUNID",
];

/// The largest cone radius accepted, in degrees (SCS's `MaxSR`).
pub const MAX_SR: f64 = 1.0;

/// Rows when `MAXREC` is not given.
pub const DEFAULT_MAXREC: usize = 10_000;

/// The most rows an answer carries (SCS's `MaxRecords`).
pub const MAX_RECORDS: usize = 50_000;

/// Side of the cutout each row links to, arcsec (as the SourceList export).
pub const CUTOUT_ARCSEC: f64 = 20.0;

/// The media type SCS 1.03 names for its answers (§2: "should be
/// `text/xml`", the `content=x-votable` form allowed).
pub const DEFAULT_MIME: &str = "text/xml;content=x-votable";

/// How many columns an answer has (SCS `VERB`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verb {
    /// Id, position and distance from the centre.
    Minimal = 1,
    /// Also the list, source id, magnitude, flags, class and cutout link
    /// (the default).
    Typical = 2,
    /// Every column of a source, the list's frame and the cutout's DID.
    Full = 3,
}

/// A parsed cone search.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Centre RA, degrees (ICRS).
    pub ra: f64,
    /// Centre Dec, degrees (ICRS).
    pub dec: f64,
    /// Radius, degrees; 0 asks for the metadata only.
    pub sr: f64,
    /// Columns.
    pub verb: Verb,
    /// Most rows to return (already capped at [`MAX_RECORDS`]).
    pub maxrec: usize,
    /// Whether `MAXREC` asked for more than [`MAX_RECORDS`].
    pub maxrec_capped: bool,
    /// Serialization of the table.
    pub serialization: Serialization,
    /// The media type of the answer.
    pub mime: String,
    /// `RUNID`, when given (echoed in an INFO, otherwise ignored).
    pub runid: Option<String>,
    /// Parameters not understood, ignored.
    pub ignored: Vec<String>,
}

impl Query {
    /// Whether the answer is the metadata only (`SR=0` or `MAXREC=0`).
    pub fn metadata_only(&self) -> bool {
        self.sr == 0.0 || self.maxrec == 0
    }

    /// Parses the parameters of a request; the error names the parameter.
    pub fn parse(p: &DalParams) -> Result<Self, ParamError> {
        let one = |name: &'static str| {
            p.one(name)
                .map_err(|_| ParamError::new(name, "given more than once; it takes one value"))
        };
        let required = |name: &'static str, what: &str| -> Result<&str, ParamError> {
            one(name)?
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ParamError::new(name, format!("missing; give {what}")))
        };
        let ra = angle::ra(
            "RA",
            required("RA", "the cone's right ascension in decimal degrees")?,
        )?;
        let dec = angle::dec(
            "DEC",
            required("DEC", "the cone's declination in decimal degrees")?,
        )?;
        let sr_text = required("SR", "the cone's radius in decimal degrees")?;
        let sr = sr_text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| {
                ParamError::invalid("SR", sr_text, "expected a radius in decimal degrees")
            })?;
        if !(0.0..=MAX_SR).contains(&sr) {
            return Err(ParamError::invalid(
                "SR",
                sr_text,
                &format!(
                    "the radius must be between 0 and {MAX_SR} degrees (SR=0 asks for the columns only)"
                ),
            ));
        }
        let verb = match one("VERB")? {
            None => Verb::Typical,
            Some(v) => match v.trim() {
                "1" => Verb::Minimal,
                "2" => Verb::Typical,
                "3" => Verb::Full,
                _ => {
                    return Err(ParamError::invalid(
                        "VERB",
                        v,
                        "expected 1 (fewest columns), 2 (the default) or 3 (all columns)",
                    ));
                }
            },
        };
        let (maxrec, maxrec_capped) = match one("MAXREC")? {
            None => (DEFAULT_MAXREC, false),
            Some(v) => {
                let t = v.trim();
                if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ParamError::invalid(
                        "MAXREC",
                        v,
                        "expected a whole number of rows, 0 or more",
                    ));
                }
                // Any number of digits is a valid request; beyond u64 it
                // is simply more than the limit.
                let n = t.parse::<u64>().unwrap_or(u64::MAX);
                match usize::try_from(n) {
                    Ok(n) if n <= MAX_RECORDS => (n, false),
                    _ => (MAX_RECORDS, true),
                }
            }
        };
        let (serialization, mime) = match one("RESPONSEFORMAT")? {
            None => (Serialization::TableData, DEFAULT_MIME.to_owned()),
            Some(f) => response_format(f)?,
        };
        Ok(Self {
            ra,
            dec,
            sr,
            verb,
            maxrec,
            maxrec_capped,
            serialization,
            mime,
            runid: one("RUNID")?.map(shown),
            ignored: p.unknown(PARAMS).into_iter().map(|n| shown(&n)).collect(),
        })
    }
}

/// `RESPONSEFORMAT`: a VOTable media type (DALI's
/// `application/x-votable+xml`, SCS's `text/xml`, optionally with
/// `content=x-votable`), or the short name `votable`, optionally with
/// `;serialization=TABLEDATA|BINARY2`. The answer's media type is the one
/// asked for.
fn response_format(text: &str) -> Result<(Serialization, String), ParamError> {
    const RULE: &str = "expected votable, application/x-votable+xml or text/xml, \
        optionally with ;serialization=TABLEDATA or ;serialization=BINARY2";
    let mut parts = text.split(';').map(str::trim);
    let base = parts.next().unwrap_or("").to_ascii_lowercase();
    let mime = match base.as_str() {
        "votable" | "application/x-votable+xml" => super::votable::MIME,
        "text/xml" => "text/xml",
        _ => return Err(ParamError::invalid("RESPONSEFORMAT", text, RULE)),
    };
    let mut ser = Serialization::TableData;
    let mut extra = String::new();
    for part in parts.filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        match k.trim().to_ascii_lowercase().as_str() {
            "serialization" => {
                ser = Serialization::parse(v)
                    .ok_or_else(|| ParamError::invalid("RESPONSEFORMAT", text, RULE))?;
                extra.push_str(match ser {
                    Serialization::TableData => ";serialization=TABLEDATA",
                    Serialization::Binary2 => ";serialization=BINARY2",
                });
            }
            "content" if v.trim().eq_ignore_ascii_case("x-votable") => {
                extra.push_str(";content=x-votable");
            }
            _ => return Err(ParamError::invalid("RESPONSEFORMAT", text, RULE)),
        }
    }
    Ok((ser, format!("{mime}{extra}")))
}

/// The columns of an answer at `verb`.
pub fn fields(verb: Verb) -> Vec<Field> {
    let mut out = vec![
        Field::new("id", DataType::Char)
            .ucd("ID_MAIN")
            .describe("The source's unique id in this service: SLID:SID"),
        source_field("ra", "POS_EQ_RA_MAIN").describe("Right ascension (ICRS)"),
        source_field("dec", "POS_EQ_DEC_MAIN").describe("Declination (ICRS)"),
        Field::new("distance", DataType::Double)
            .unit("deg")
            .ucd("pos.angDistance")
            .describe("Angular distance from the cone's centre"),
    ];
    if verb >= Verb::Typical {
        out.extend([
            source_field("slid", "meta.id.parent").describe("The source's SourceList (SLID)"),
            source_field("sid", "meta.id").describe("The source's id in its list (SID)"),
            source_field("mag_auto", ""),
            source_field("magerr_auto", ""),
            source_field("class_star", ""),
            source_field("flags", ""),
            Field::new("cutout_url", DataType::Char)
                .ucd("meta.ref.url")
                .describe(&format!(
                    "FITS cutout of {CUTOUT_ARCSEC} arcsec around the source on its list's frame"
                )),
        ]);
    }
    if verb >= Verb::Full {
        for name in ["x", "y", "a", "b", "theta", "flux_auto", "fwhm"] {
            out.push(source_field(name, ""));
        }
        out.extend([
            Field::new("frame_id", DataType::Long)
                .ucd("meta.id;obs.image")
                .describe("The frame the source list was extracted from"),
            Field::new("cutout_did", DataType::Char)
                .ucd("meta.ref.ivoid")
                .describe("The cutout's identifier, for DataLink"),
        ]);
    }
    out
}

/// A source column as the SourceList export writes it (datatype, unit,
/// UCD), with `ucd` instead when not empty.
fn source_field(name: &str, ucd: &str) -> Field {
    let table = Table::Sources(Slid(0));
    let column = table
        .columns()
        .iter()
        .find(|c| c.name == name)
        .map(|c| super::export::field(&table, c));
    // Every name asked for is a source column; the fallback only keeps
    // this total.
    let mut f = column.unwrap_or_else(|| Field::new(name, DataType::Double));
    if !ucd.is_empty() {
        f.ucd = Some(ucd.to_owned());
    }
    f
}

/// One row at `verb`: the cells of [`fields`].
fn row(distance: f64, s: &Source, verb: Verb, frame: Option<ObjectId>, base: &str) -> Vec<Cell> {
    let float = |v: Option<f64>| v.map_or(Cell::Null, Cell::Float);
    let mut cells = vec![
        Cell::Text(format!("{}:{}", s.slid, s.sid)),
        Cell::Float(s.ra),
        Cell::Float(s.dec),
        Cell::Float(distance),
    ];
    let cutout_query = frame.map(|f| {
        format!(
            "frame={}&ra={}&dec={}&size={CUTOUT_ARCSEC}&unit=arcsec",
            f.0, s.ra, s.dec
        )
    });
    if verb >= Verb::Typical {
        cells.extend([
            Cell::Int(s.slid.0),
            Cell::Int(s.sid.0),
            float(s.mag_auto),
            float(s.magerr_auto),
            Cell::Float(s.class_star),
            Cell::Int(i64::from(s.flags)),
            cutout_query.as_ref().map_or(Cell::Null, |q| {
                Cell::Text(format!("{base}/api/cutout?{q}&format=fits"))
            }),
        ]);
    }
    if verb >= Verb::Full {
        cells.extend(
            [s.x, s.y, s.a, s.b, s.theta, s.flux_auto, s.fwhm]
                .into_iter()
                .map(Cell::Float),
        );
        cells.push(frame.map_or(Cell::Null, |f| Cell::Int(f.0)));
        cells.push(
            cutout_query
                .as_ref()
                .map_or(Cell::Null, |q| Cell::Text(super::obscore::cutout_did(q))),
        );
    }
    cells
}

/// What the answer covers: all lists, or one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Every SourceList.
    All,
    /// One SourceList.
    List(Slid),
}

/// The answer to `q`: `hits` (distance in degrees and source, nearest
/// first, at most `q.maxrec`), `frames` the frame of each hit's list,
/// `overflow` whether more sources were in the cone. With
/// [`Query::metadata_only`] `hits` is empty and only the columns are sent.
pub fn document(
    q: &Query,
    scope: Scope,
    hits: &[(f64, Source)],
    frames: &HashMap<Slid, Option<ObjectId>>,
    overflow: bool,
    base: &str,
) -> Document {
    let status = if overflow {
        QueryStatus::Overflow
    } else {
        QueryStatus::Ok
    };
    let mut infos = vec![status.info()];
    if overflow {
        infos.push(
            Info::new("MAXREC", q.maxrec.to_string()).with_content(if q.maxrec_capped {
                format!("MAXREC was lowered to this service's limit of {MAX_RECORDS} rows; the nearest sources are sent")
            } else {
                "more sources are in the cone: the nearest are sent; raise MAXREC or narrow SR"
                    .to_owned()
            }),
        );
    }
    if let Some(r) = &q.runid {
        infos.push(Info::new("RUNID", r.clone()));
    }
    if !q.ignored.is_empty() {
        infos.push(
            Info::new("ignored_parameters", q.ignored.join(","))
                .with_content("parameters this service does not know, ignored (DALI, SCS 1.03 §2)"),
        );
    }
    let what = match scope {
        Scope::All => "the sources of every SourceList".to_owned(),
        Scope::List(s) => format!("the sources of SourceList SLID {s}"),
    };
    let rows = hits
        .iter()
        .map(|(d, s)| {
            let frame = frames.get(&s.slid).copied().flatten();
            row(*d, s, q.verb, frame, base)
        })
        .collect();
    Document {
        description: format!(
            "wisecut Simple Cone Search over {what}: {} within {} deg of ({}, {})",
            if q.metadata_only() {
                "metadata only, no sources"
            } else {
                "sources"
            },
            q.sr,
            q.ra,
            q.dec
        ),
        icrs: true,
        infos,
        params: vec![],
        table_name: "cone".into(),
        fields: fields(q.verb),
        rows,
        services: vec![],
        trailing_infos: vec![],
    }
}

/// The SCS error document: `INFO name="Error"` (SCS 1.03) and
/// `QUERY_STATUS=ERROR` (DALI), no table.
pub fn error_document(message: &str) -> Document {
    Document {
        description: "wisecut Simple Cone Search: error".into(),
        infos: vec![
            QueryStatus::Error(message.to_owned()).info(),
            Info::new("Error", message),
        ],
        table_name: "error".into(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &str) -> Result<Query, ParamError> {
        Query::parse(&DalParams::parse(q).unwrap())
    }

    #[test]
    fn required_parameters_and_ranges_are_named_in_errors() {
        for (q, name) in [
            ("DEC=1&SR=0.1", "RA"),
            ("RA=1&SR=0.1", "DEC"),
            ("RA=1&DEC=1", "SR"),
            ("RA=400&DEC=1&SR=0.1", "RA"),
            ("RA=1&DEC=91&SR=0.1", "DEC"),
            ("RA=1&DEC=1&SR=-1", "SR"),
            ("RA=1&DEC=1&SR=nan", "SR"),
            ("RA=1&DEC=1&SR=5", "SR"),
            ("RA=1&DEC=1&SR=0.1&VERB=4", "VERB"),
            ("RA=1&DEC=1&SR=0.1&MAXREC=-3", "MAXREC"),
            ("RA=1&DEC=1&SR=0.1&RESPONSEFORMAT=fits", "RESPONSEFORMAT"),
            ("RA=1&RA=2&DEC=1&SR=0.1", "RA"),
        ] {
            let e = parse(q).expect_err(q);
            assert_eq!(e.param, name, "{q}: {e}");
        }
    }

    #[test]
    fn defaults_caps_and_ignored_parameters() {
        let q = parse("ra=10&dec=-5&sr=0.01&RUNID=x&colour=red").unwrap();
        assert_eq!((q.ra, q.dec, q.sr), (10.0, -5.0, 0.01));
        assert_eq!(q.verb, Verb::Typical);
        assert_eq!(q.maxrec, DEFAULT_MAXREC);
        assert_eq!(q.mime, DEFAULT_MIME);
        assert_eq!(q.ignored, vec!["COLOUR".to_owned()]);
        assert_eq!(q.runid.as_deref(), Some("x"));
        let big = parse("RA=1&DEC=1&SR=0.1&MAXREC=99999999999999999999").unwrap();
        assert!(big.maxrec_capped && big.maxrec == MAX_RECORDS);
        assert!(parse("RA=1&DEC=1&SR=0").unwrap().metadata_only());
        assert!(parse("RA=1&DEC=1&SR=0.1&MAXREC=0").unwrap().metadata_only());
        let b = parse(
            "RA=1&DEC=1&SR=0.1&RESPONSEFORMAT=application/x-votable%2Bxml;serialization=binary2",
        )
        .unwrap();
        assert_eq!(b.serialization, Serialization::Binary2);
        assert_eq!(b.mime, "application/x-votable+xml;serialization=BINARY2");
        let t = parse("RA=1&DEC=1&SR=0.1&RESPONSEFORMAT=text/xml").unwrap();
        assert_eq!(t.mime, "text/xml");
    }

    #[test]
    fn each_verb_has_exactly_one_id_ra_and_dec_column() {
        for verb in [Verb::Minimal, Verb::Typical, Verb::Full] {
            let f = fields(verb);
            for ucd in ["ID_MAIN", "POS_EQ_RA_MAIN", "POS_EQ_DEC_MAIN"] {
                assert_eq!(
                    f.iter().filter(|c| c.ucd.as_deref() == Some(ucd)).count(),
                    1,
                    "{verb:?} {ucd}"
                );
            }
            assert!(
                f.iter().all(|c| c.ucd.is_some()),
                "{verb:?}: a column without UCD"
            );
            let id = &f[0];
            assert_eq!(id.datatype, DataType::Char, "ID_MAIN is text");
        }
        assert!(fields(Verb::Minimal).len() < fields(Verb::Typical).len());
        assert!(fields(Verb::Typical).len() < fields(Verb::Full).len());
    }

    #[test]
    fn rows_match_their_fields() {
        let s = Source {
            slid: Slid(3),
            sid: crate::ids::Sid(7),
            ra: 10.0,
            dec: 1.0,
            x: 1.0,
            y: 2.0,
            a: 1.0,
            b: 1.0,
            theta: 0.0,
            mag_auto: None,
            magerr_auto: Some(0.1),
            flux_auto: 5.0,
            fwhm: 2.0,
            class_star: 0.9,
            flags: 0,
        };
        for verb in [Verb::Minimal, Verb::Typical, Verb::Full] {
            let r = row(0.001, &s, verb, Some(ObjectId(42)), "http://h");
            assert_eq!(r.len(), fields(verb).len(), "{verb:?}");
            assert_eq!(r[0], Cell::Text("3:7".into()));
        }
        let r = row(0.0, &s, Verb::Typical, Some(ObjectId(42)), "http://h");
        assert_eq!(
            r.last(),
            Some(&Cell::Text(
                "http://h/api/cutout?frame=42&ra=10&dec=1&size=20&unit=arcsec&format=fits".into()
            ))
        );
    }

    #[test]
    fn the_error_document_has_the_scs_and_dali_forms() {
        let xml = error_document("RA: missing").to_xml(Serialization::TableData);
        assert!(
            xml.contains(r#"<INFO name="Error" value="RA: missing"/>"#),
            "{xml}"
        );
        assert!(xml.contains(r#"<INFO name="QUERY_STATUS" value="ERROR">RA: missing</INFO>"#));
        assert!(!xml.contains("<TABLE"));
    }
}
