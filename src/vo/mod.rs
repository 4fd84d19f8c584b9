//! Virtual Observatory interfaces: what TOPCAT, Aladin, pyvo and astropy
//! expect from an image archive.
//!
//! - [`votable`]: the VOTable 1.4 writer every VO response goes through.
//! - [`export`]: the table browser's views and queries as VOTables.
//! - [`obscore`]: how a wisecut frame maps onto ObsCore (the columns of SIA
//!   v2 answers) and the publisher identifiers (`ivo://wisecut/obj?ID`).
//! - [`sia`]: SIA v2 `{query}` parameters (POS, BAND, TIME, COLLECTION, …).
//! - [`soda`]: SODA 1.0 `{sync}` cutout regions, trimmed to the data.
//! - [`datalink`]: DataLink 1.1 `{links}` rows, the lineage included.
//! - [`prov`]: W3C PROV-JSON / PROV-N of a lineage with ProvenanceDM terms.
//! - [`coverage`]: MOC footprints per frame class and filter.
//! - [`scs`]: Simple Cone Search 1.03 over the SourceLists' sources.
//!
//! The HTTP side lives in `web::vo_endpoints`; this module is protocol logic only,
//! so it can be tested without a server.

pub mod adql;
pub mod coverage;
pub mod datalink;
pub mod export;
pub mod obscore;
pub mod prov;
pub mod scs;
pub mod sia;
pub mod soda;
pub mod tap;
pub mod tap_schema;
pub mod uws;
pub mod votable;

/// Parameters of a DAL request, as the VO standards define them: names are
/// case-insensitive, and a parameter may repeat (several `ID`s, several
/// `POS` constraints that are OR-ed).
#[derive(Debug, Clone, Default)]
pub struct DalParams(Vec<(String, String)>);

impl DalParams {
    /// Parses a query string (or a form body); names are upper-cased.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| format!("the query string is malformed: {e}"))?;
        Ok(Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.trim().to_ascii_uppercase(), v))
                .collect(),
        ))
    }

    /// Every value of `name` (upper case), in order.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The single value of `name`; a repeated one is an error naming it.
    pub fn one(&self, name: &str) -> Result<Option<&str>, String> {
        match self.all(name).as_slice() {
            [] => Ok(None),
            [v] => Ok(Some(v)),
            _ => Err(format!("{name}: given more than once; it takes one value")),
        }
    }

    /// Names that are not in `allowed` (upper case).
    pub fn unknown(&self, allowed: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| !allowed.contains(&k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        out.dedup();
        out
    }

    /// Every (name, value) pair, names upper case, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// Adds a pair (a multipart request's text parts).
    pub fn push(&mut self, name: &str, value: String) {
        self.0.push((name.trim().to_ascii_uppercase(), value));
    }

    /// Adds the pairs of another request (a POST body after the query).
    pub fn extend(&mut self, other: DalParams) {
        self.0.extend(other.0);
    }
}

/// How a VOTable answer is written, from DALI's `RESPONSEFORMAT`: the
/// serialization and the media type the response is labelled with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoTableFormat {
    /// TABLEDATA or BINARY2.
    pub serialization: votable::Serialization,
    /// The `Content-Type` of the answer.
    pub media_type: String,
}

impl Default for VoTableFormat {
    fn default() -> Self {
        Self::default_for(votable::MIME)
    }
}

impl VoTableFormat {
    /// TABLEDATA as `application/x-votable+xml`, or `media_type` when a
    /// service labels its VOTables more precisely (DataLink).
    pub fn default_for(media_type: &str) -> Self {
        Self {
            serialization: votable::Serialization::TableData,
            media_type: media_type.to_owned(),
        }
    }

    /// Parses `RESPONSEFORMAT`: `votable`, `application/x-votable+xml` or
    /// `text/xml` (answered as such), each with an optional
    /// `;serialization=TABLEDATA|BINARY2` (DALI 1.1 §3.4.5); `None` keeps
    /// `default`.
    pub fn parse(value: Option<&str>, default: &str) -> Result<Self, String> {
        let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Self::default_for(default));
        };
        let mut parts = v.split(';').map(str::trim);
        let kind = parts.next().unwrap_or("").to_ascii_lowercase();
        let media_type = match kind.as_str() {
            "votable" => default.to_owned(),
            "application/x-votable+xml" => {
                // Keep a more specific default (…;content=datalink).
                if default.starts_with("application/x-votable+xml") {
                    default.to_owned()
                } else {
                    votable::MIME.to_owned()
                }
            }
            "text/xml" => "text/xml".to_owned(),
            _ => {
                return Err(format!(
                    "RESPONSEFORMAT: {:?} is not supported; allowed: votable, application/x-votable+xml, text/xml (each optionally with ;serialization=TABLEDATA or ;serialization=BINARY2)",
                    crate::params::shown(v)
                ));
            }
        };
        let mut serialization = votable::Serialization::TableData;
        let mut serialization_named = None;
        for p in parts.filter(|p| !p.is_empty()) {
            let (k, val) = p.split_once('=').unwrap_or((p, ""));
            if k.trim().eq_ignore_ascii_case("serialization") {
                let val = val.trim().trim_matches('"');
                serialization = votable::Serialization::parse(val).ok_or_else(|| {
                    format!(
                        "RESPONSEFORMAT: serialization={:?} is not supported; allowed: TABLEDATA, BINARY2",
                        crate::params::shown(val)
                    )
                })?;
                serialization_named = Some(val.to_ascii_uppercase());
            }
            // Other media-type parameters (content=…, charset=…) do not
            // change the answer.
        }
        let media_type = match serialization_named {
            Some(name) if media_type != "text/xml" => format!("{media_type};serialization={name}"),
            _ => media_type,
        };
        Ok(Self {
            serialization,
            media_type,
        })
    }
}

/// The INFOs DALI asks of an answer about the request itself: the
/// `RUNID` echoed, and the parameters this service ignored because it does
/// not know them (DALI 1.1 §3.1: services ignore unknown parameters).
pub fn request_infos(p: &DalParams, known: &[&str]) -> Vec<votable::Info> {
    let mut out = Vec::new();
    if let Some(run) = p.all("RUNID").first() {
        out.push(votable::Info::new("RUNID", *run));
    }
    let ignored = p.unknown(known);
    if !ignored.is_empty() {
        out.push(
            votable::Info::new("ignored_parameters", ignored.join(",")).with_content(format!(
                "parameters not known to this service were ignored: {}",
                ignored.join(", ")
            )),
        );
    }
    out
}

/// Parses a whitespace-separated list of numbers, as DALI writes shapes
/// and intervals (`10.5 -3.2 0.1`); `+` stands for a space in URLs and is
/// already decoded by the caller.
pub fn numbers(text: &str) -> Result<Vec<f64>, String> {
    text.split_whitespace()
        .map(|t| {
            t.parse::<f64>()
                .map_err(|_| format!("{t:?} is not a number"))
        })
        .collect()
}
