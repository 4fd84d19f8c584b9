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

pub mod coverage;
pub mod datalink;
pub mod export;
pub mod obscore;
pub mod prov;
pub mod scs;
pub mod sia;
pub mod soda;
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

    /// Adds the pairs of another request (a POST body after the query).
    pub fn extend(&mut self, other: DalParams) {
        self.0.extend(other.0);
    }
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
