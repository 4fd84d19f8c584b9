//! DataLink 1.1 `{links}`: for each identifier, the rows a client follows
//! from a dataset — the file (`#this`), a preview (`#preview`), SODA
//! cutouts (`#cutout`, through a service descriptor), and the processing
//! lineage one step each way.
//!
//! Lineage semantics (DataLink core vocabulary): a parent that is a master
//! bias or a raw bias is `#bias`, a master flat or a raw flat `#flat`, other
//! calibration inputs (fringe frame, hot/cold pixel maps, illumination
//! correction) `#calibration`; science inputs (raw exposure, reduced or
//! regridded frames) are `#progenitor`. Products made from the dataset are
//! `#derivation`. Each lineage row points at that object's own `{links}`,
//! so a client can walk the whole tree link by link.
//!
//! An identifier that names nothing gets one row with `error_message`
//! starting `NotFoundFault:`; the other identifiers are still answered.

use super::obscore::ivoid;
use super::votable::{DataType, Document, Field, Param, QueryStatus, ServiceDescriptor, Values};
use crate::catalog::browse::Cell;
use crate::ids::ObjectId;
use crate::model::FrameClass;

/// DataLink's standard identifier.
pub const STANDARD_ID: &str = "ivo://ivoa.net/std/DataLink#links-1.1";
/// SODA sync's standard identifier.
pub const SODA_STANDARD_ID: &str = "ivo://ivoa.net/std/SODA#sync-1.0";
/// The MIME type of a `{links}` answer.
pub const LINKS_MIME: &str = "application/x-votable+xml;content=datalink";
/// Most identifiers in one request.
pub const MAX_IDS: usize = 1000;

/// `{links}` URL of an identifier.
pub fn links_url(base: &str, did: &str) -> String {
    format!(
        "{base}/vo/links?{}",
        serde_urlencoded::to_string([("ID", did)]).unwrap_or_default()
    )
}

/// The DataLink service descriptor of a table whose field with ID
/// `id_field` (`obs_publisher_did`, `cutout_did`) holds identifiers.
pub fn links_descriptor(base: &str, id_field: &str) -> ServiceDescriptor {
    ServiceDescriptor {
        id: "datalink".into(),
        standard_id: STANDARD_ID.into(),
        access_url: format!("{base}/vo/links"),
        description:
            "DataLink: files, previews, SODA cutouts and the processing lineage of each row".into(),
        input_params: vec![Param {
            field: Field::new("ID", DataType::Char)
                .ucd("meta.id;meta.main")
                .reference(id_field),
            value: String::new(),
            values: None,
        }],
    }
}

/// The columns of a `{links}` table (DataLink 1.1 §3.2).
pub fn fields() -> Vec<Field> {
    use DataType::{Char, Long};
    vec![
        Field::new("ID", Char).ucd("meta.id;meta.main"),
        Field::new("access_url", Char).ucd("meta.ref.url"),
        Field::new("service_def", Char).ucd("meta.ref"),
        Field::new("error_message", Char).ucd("meta.code.error"),
        Field::new("semantics", Char).ucd("meta.code"),
        Field::new("description", Char).ucd("meta.note"),
        Field::new("content_type", Char).ucd("meta.code.mime"),
        Field::new("content_length", Long)
            .ucd("phys.size;meta.file")
            .unit("byte"),
        Field::new("content_qualifier", Char).ucd("meta.code.class"),
        Field::new("local_semantics", Char).ucd("meta.code"),
        Field::new("link_auth", Char).ucd("meta.code"),
        Field::new("link_authorized", DataType::Boolean).ucd("meta.code"),
    ]
}

/// One `{links}` row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Link {
    /// The identifier asked for.
    pub id: String,
    /// Where to go.
    pub access_url: Option<String>,
    /// The service descriptor to use instead.
    pub service_def: Option<String>,
    /// Why there is no link.
    pub error: Option<String>,
    /// A DataLink vocabulary term (`#this`, `#progenitor`, …).
    pub semantics: String,
    /// For people.
    pub description: String,
    /// MIME type.
    pub content_type: Option<String>,
    /// Bytes.
    pub content_length: Option<i64>,
    /// What the target is (ObsCore dataproduct type or `#this`-like term).
    pub content_qualifier: Option<String>,
    /// wisecut's own term: the role name of a lineage edge.
    pub local_semantics: Option<String>,
}

impl Link {
    fn row(&self) -> Vec<Cell> {
        let text = |s: &Option<String>| s.clone().map_or(Cell::Null, Cell::Text);
        vec![
            Cell::Text(self.id.clone()),
            text(&self.access_url),
            text(&self.service_def),
            text(&self.error),
            Cell::Text(self.semantics.clone()),
            Cell::Text(self.description.clone()),
            text(&self.content_type),
            self.content_length.map_or(Cell::Null, Cell::Int),
            text(&self.content_qualifier),
            text(&self.local_semantics),
            Cell::Text("false".into()),
            Cell::Null,
        ]
    }
}

/// What the links of one object are built from.
#[derive(Debug, Clone)]
pub struct Subject {
    /// The identifier as asked (echoed in every row).
    pub asked: String,
    /// The object.
    pub id: ObjectId,
    /// Its class name.
    pub class_name: String,
    /// A frame's file size (`None` for catalogues).
    pub file_size: Option<i64>,
    /// Whether the frame has a sky WCS (SODA cutouts need one).
    pub on_sky: bool,
    /// A catalogue's own VOTable (`None` for frames).
    pub table_url: Option<String>,
    /// Objects it was made from: (id, class name, role).
    pub parents: Vec<(ObjectId, String, String)>,
    /// Objects made from it: (id, class name, role).
    pub children: Vec<(ObjectId, String, String)>,
}

/// The semantics of a parent of class `class`.
pub fn parent_semantics(class: &str) -> &'static str {
    use FrameClass::*;
    match class.parse::<FrameClass>().ok() {
        Some(BiasFrame | RawBiasFrame) => "#bias",
        Some(MasterFlatFrame | RawDomeFlatFrame) => "#flat",
        Some(FringeFrame | HotPixelMap | ColdPixelMap | IlluminationCorrection) => "#calibration",
        _ => "#progenitor",
    }
}

fn product_type(class: &str) -> &'static str {
    if class.parse::<FrameClass>().is_ok() {
        "image"
    } else {
        "catalog"
    }
}

/// The rows of one subject; `soda` is the ID of its SODA descriptor.
pub fn links(base: &str, s: &Subject, soda: Option<&str>) -> Vec<Link> {
    let mut out = Vec::new();
    let base_link = |semantics: &str, description: String| Link {
        id: s.asked.clone(),
        semantics: semantics.to_owned(),
        description,
        ..Default::default()
    };
    match (&s.table_url, s.file_size) {
        (Some(url), _) => out.push(Link {
            access_url: Some(url.clone()),
            content_type: Some("application/x-votable+xml".into()),
            content_qualifier: Some("catalog".into()),
            ..base_link("#this", format!("{} {} as a VOTable", s.class_name, s.id))
        }),
        (None, size) => {
            out.push(Link {
                access_url: Some(format!("{base}/data/{}", s.id.0)),
                content_type: Some("image/fits".into()),
                content_length: size,
                content_qualifier: Some("image".into()),
                ..base_link(
                    "#this",
                    format!("{} {}: the stored FITS file", s.class_name, s.id),
                )
            });
            out.push(Link {
                access_url: Some(format!("{base}/thumb/{}", s.id.0)),
                content_type: Some("image/jpeg".into()),
                content_qualifier: Some("image".into()),
                ..base_link(
                    "#preview",
                    "JPEG preview of the whole frame (zscale)".into(),
                )
            });
            if let Some(sd) = soda {
                out.push(Link {
                    service_def: Some(sd.to_owned()),
                    content_type: Some("image/fits".into()),
                    content_qualifier: Some("image".into()),
                    ..base_link(
                        "#cutout",
                        "SODA cutout: give CIRCLE, POLYGON or POS; the answer is trimmed to the frame".into(),
                    )
                });
            }
        }
    }
    out.push(Link {
        access_url: Some(format!(
            "{base}/prov?ID={}&DEPTH=ALL&DIRECTION=BACK",
            s.id.0
        )),
        content_type: Some("application/json".into()),
        // The core vocabulary has no provenance term; #auxiliary with a
        // local term is how DataLink marks such extras.
        local_semantics: Some("provenance".into()),
        ..base_link(
            "#auxiliary",
            "W3C PROV-JSON of the full processing history".into(),
        )
    });
    out.push(Link {
        access_url: Some(format!("{base}/object/{}", s.id.0)),
        content_type: Some("text/html".into()),
        ..base_link(
            "#documentation",
            "wisecut object view with the dependency tree".into(),
        )
    });
    for (id, class, role) in &s.parents {
        out.push(Link {
            access_url: Some(links_url(base, &ivoid(*id))),
            content_type: Some(LINKS_MIME.into()),
            content_qualifier: Some(product_type(class).into()),
            local_semantics: Some(role.clone()),
            ..base_link(
                parent_semantics(class),
                format!("{class} {id} ({role}), used to make this"),
            )
        });
    }
    for (id, class, role) in &s.children {
        out.push(Link {
            access_url: Some(links_url(base, &ivoid(*id))),
            content_type: Some(LINKS_MIME.into()),
            content_qualifier: Some(product_type(class).into()),
            local_semantics: Some(role.clone()),
            ..base_link(
                "#derivation",
                format!("{class} {id}, made from this as {role}"),
            )
        });
    }
    out
}

/// The rows of a cutout DID: the cutout as FITS (`#this`) and PNG
/// (`#preview`), made on request by the cutout API, and the frame it is
/// cut from (`#progenitor`).
pub fn cutout_links(base: &str, asked: &str, frame: ObjectId, query: &str) -> Vec<Link> {
    let link = |semantics: &str, description: &str| Link {
        id: asked.to_owned(),
        semantics: semantics.to_owned(),
        description: description.to_owned(),
        content_qualifier: Some("image".into()),
        ..Default::default()
    };
    vec![
        Link {
            access_url: Some(format!("{base}/api/cutout?{query}&format=fits")),
            content_type: Some("image/fits".into()),
            ..link("#this", "the cutout as FITS (pixels and WCS of the frame)")
        },
        Link {
            access_url: Some(format!("{base}/api/cutout?{query}&format=png")),
            content_type: Some("image/png".into()),
            ..link("#preview", "the cutout as PNG")
        },
        Link {
            access_url: Some(links_url(base, &ivoid(frame))),
            content_type: Some(LINKS_MIME.into()),
            local_semantics: Some("cut from".into()),
            ..link(
                "#progenitor",
                &format!("frame {frame}, which the cutout is cut from"),
            )
        },
    ]
}

/// The row for an identifier that names nothing (or cannot be answered).
pub fn fault(asked: &str, kind: &str, message: &str) -> Link {
    Link {
        id: asked.to_owned(),
        error: Some(format!("{kind}: {message}")),
        semantics: "#this".into(),
        description: message.to_owned(),
        ..Default::default()
    }
}

/// Which dataset a SODA descriptor cuts: one named dataset (in a DataLink
/// answer) or the dataset of each row, from the field with this ID (in an
/// SIA answer, `obs_publisher_did`).
#[derive(Debug, Clone, Copy)]
pub enum SodaDataset<'a> {
    /// One publisher DID.
    Did(&'a str),
    /// The ID of the field holding each row's DID.
    Column(&'a str),
}

/// The SODA service descriptor for one dataset, or for the dataset of
/// every row of a table (pyvo's `record.processed(circle=…)` looks for it
/// there, and downloads the whole file when there is none).
pub fn soda_descriptor(base: &str, sd_id: &str, dataset: SodaDataset) -> ServiceDescriptor {
    let param = |name: &str, dt: DataType, ucd: &str| Field::new(name, dt).ucd(ucd);
    let (id_field, id_value, description) = match dataset {
        SodaDataset::Did(did) => (
            param("ID", DataType::Char, "meta.id;meta.dataset"),
            did.to_owned(),
            format!("SODA sync cutout of {did}"),
        ),
        SodaDataset::Column(field) => (
            param("ID", DataType::Char, "meta.id;meta.dataset").reference(field),
            String::new(),
            "SODA sync: the pixels of a row's frame inside a region".to_owned(),
        ),
    };
    ServiceDescriptor {
        id: sd_id.to_owned(),
        standard_id: SODA_STANDARD_ID.into(),
        access_url: format!("{base}/vo/soda/sync"),
        description,
        input_params: vec![
            Param {
                field: id_field,
                value: id_value,
                values: None,
            },
            Param {
                field: param("CIRCLE", DataType::Double, "phys.angArea;obs")
                    .unit("deg")
                    .arraysize("3")
                    .xtype("circle")
                    .describe("ra dec radius (ICRS, degrees)"),
                value: String::new(),
                values: None,
            },
            Param {
                field: param("POLYGON", DataType::Double, "pos.outline;obs")
                    .unit("deg")
                    .arraysize("*")
                    .xtype("polygon")
                    .describe("ra1 dec1 ra2 dec2 ra3 dec3 … (ICRS, degrees)"),
                value: String::new(),
                values: None,
            },
            Param {
                field: param("POS", DataType::Char, "pos.outline;obs")
                    .describe("CIRCLE ra dec r | RANGE ra1 ra2 dec1 dec2 | POLYGON ra1 dec1 …"),
                value: String::new(),
                values: None,
            },
            Param {
                field: param("RESPONSEFORMAT", DataType::Char, "meta.code.mime"),
                value: "application/fits".into(),
                values: Some(Values::Options(vec!["application/fits".into()])),
            },
        ],
    }
}

/// The whole `{links}` answer: rows of every identifier and one SODA
/// descriptor per frame with a sky WCS.
pub fn document(rows: &[Link], soda: Vec<ServiceDescriptor>) -> Document {
    Document {
        description: "wisecut DataLink 1.1 links".into(),
        icrs: false,
        infos: vec![QueryStatus::Ok.info()],
        params: vec![],
        table_name: "links".into(),
        fields: fields(),
        rows: rows.iter().map(Link::row).collect(),
        services: soda,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_parents_get_narrow_terms() {
        assert_eq!(parent_semantics("BiasFrame"), "#bias");
        assert_eq!(parent_semantics("RawDomeFlatFrame"), "#flat");
        assert_eq!(parent_semantics("FringeFrame"), "#calibration");
        assert_eq!(parent_semantics("RawScienceFrame"), "#progenitor");
        assert_eq!(parent_semantics("SourceList"), "#progenitor");
    }

    #[test]
    fn a_frame_has_file_preview_cutout_and_lineage_rows() {
        let s = Subject {
            asked: "ivo://wisecut/obj?9".into(),
            id: ObjectId(9),
            class_name: "ReducedScienceFrame".into(),
            file_size: Some(1234),
            on_sky: true,
            table_url: None,
            parents: vec![
                (
                    ObjectId(1),
                    "RawScienceFrame".into(),
                    "raw_science_frame".into(),
                ),
                (ObjectId(2), "BiasFrame".into(), "bias".into()),
            ],
            children: vec![(ObjectId(20), "SourceList".into(), "frame".into())],
        };
        let rows = links("http://h", &s, Some("soda-1"));
        let sem: Vec<&str> = rows.iter().map(|r| r.semantics.as_str()).collect();
        assert_eq!(
            sem,
            [
                "#this",
                "#preview",
                "#cutout",
                "#auxiliary",
                "#documentation",
                "#progenitor",
                "#bias",
                "#derivation"
            ]
        );
        assert!(rows.iter().all(|r| r.id == s.asked));
        assert_eq!(rows[2].service_def.as_deref(), Some("soda-1"));
        assert!(
            rows[5]
                .access_url
                .as_deref()
                .unwrap()
                .contains("ID=ivo%3A%2F%2Fwisecut%2Fobj%3F1")
        );
    }
}
