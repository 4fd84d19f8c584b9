//! The tables TAP publishes, described once: the ADQL translator takes its
//! whitelist of tables and columns (and the output FIELD metadata) from
//! here, `TAP_SCHEMA` is generated from it, and VOSI `/vo/tables` is written
//! from the same structs.
//!
//! Published tables:
//! - `ivoa.ObsCore`: one row per frame, the SIA answer's columns (from
//!   [`super::sia::obscore_fields`], so both services describe a frame the
//!   same way) in the SQL table `obscore` (see [`super::obscore::sync_table`]),
//!   with the object id as `frame_id` so lineage joins work;
//! - `wisecut.sources`, `wisecut.source_lists`, `wisecut.associate_lists`,
//!   `wisecut.associations` and `wisecut.dependency` (the lineage edges);
//! - `TAP_SCHEMA.schemas`, `.tables`, `.columns`, `.keys`, `.key_columns`,
//!   served from rows generated here (bound values in a `UNION ALL`
//!   subquery), so they can never disagree with what the translator accepts.
//!
//! Upload tables (`TAP_UPLOAD.name`) are described by [`upload_table`].

use sea_orm::Value;

use super::votable::{DataType, Field};
pub use crate::catalog::tap_query::{ColumnKind, UploadTable};

/// What SQL a published table reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// A table of the catalogue (or a temporary upload table).
    Table(String),
    /// A fixed subquery over catalogue tables (no parameters).
    Subquery(&'static str),
    /// Constant rows (one value per column), served as a subquery.
    Rows(Vec<Vec<Value>>),
    /// A subquery made for one query: a published relation limited to the
    /// rows the asking viewer may see (see [`scoped`]).
    Scoped(String),
}

/// One column of a published table.
#[derive(Debug, Clone, PartialEq)]
pub struct TapColumn {
    /// The ADQL name, as TAP_SCHEMA lists it (matched case-insensitively).
    pub name: String,
    /// The column of the SQL relation that holds it.
    pub sql: String,
    /// Description.
    pub description: String,
    /// VOTable datatype.
    pub datatype: DataType,
    /// VOTable arraysize (`*` for text and polygons).
    pub arraysize: Option<String>,
    /// VOTable xtype (`polygon` for `s_region`).
    pub xtype: Option<String>,
    /// VOUnit, empty when none.
    pub unit: String,
    /// UCD, empty when none.
    pub ucd: String,
    /// utype, empty when none.
    pub utype: String,
    /// Worth showing by default.
    pub principal: bool,
    /// Backed by an index.
    pub indexed: bool,
    /// Defined by an IVOA standard.
    pub std: bool,
    /// How values are read from SQL.
    pub kind: ColumnKind,
    /// The stored value is a path (`/data/ID`) that the service must
    /// prefix with its public base URL.
    pub relative_url: bool,
}

impl TapColumn {
    /// A column with only a name, SQL column, type and description.
    pub fn new(name: &str, kind: ColumnKind, description: &str) -> Self {
        let datatype = match kind {
            ColumnKind::Int => DataType::Long,
            ColumnKind::Float => DataType::Double,
            ColumnKind::Text => DataType::Char,
            ColumnKind::Bool => DataType::Boolean,
        };
        Self {
            name: name.to_owned(),
            sql: name.to_ascii_lowercase(),
            description: description.to_owned(),
            datatype,
            arraysize: (datatype == DataType::Char).then(|| "*".to_owned()),
            xtype: None,
            unit: String::new(),
            ucd: String::new(),
            utype: String::new(),
            principal: false,
            indexed: false,
            std: false,
            kind,
            relative_url: false,
        }
    }

    fn unit(mut self, u: &str) -> Self {
        self.unit = u.to_owned();
        self
    }

    fn ucd(mut self, u: &str) -> Self {
        self.ucd = u.to_owned();
        self
    }

    fn principal(mut self) -> Self {
        self.principal = true;
        self
    }

    fn indexed(mut self) -> Self {
        self.indexed = true;
        self
    }

    fn int32(mut self) -> Self {
        self.datatype = DataType::Int;
        self
    }

    /// The VOTable FIELD of this column, named `name` in a result.
    pub fn field(&self, name: &str) -> Field {
        let mut f = Field::new(name, self.datatype)
            .unit(&self.unit)
            .ucd(&self.ucd);
        f.arraysize = self.arraysize.clone();
        f.xtype = self.xtype.clone();
        if !self.utype.is_empty() {
            f = f.utype(&self.utype);
        }
        if !self.description.is_empty() {
            f = f.describe(&self.description);
        }
        f
    }
}

/// A foreign key: the columns of this table that refer to another table.
#[derive(Debug, Clone, PartialEq)]
pub struct ForeignKey {
    /// A unique id (TAP_SCHEMA.keys.key_id).
    pub key_id: String,
    /// The qualified name of the table referred to.
    pub target_table: String,
    /// (from column, target column) pairs.
    pub columns: Vec<(String, String)>,
    /// What the link means.
    pub description: String,
}

/// A published (or uploaded) table.
#[derive(Debug, Clone, PartialEq)]
pub struct TapTable {
    /// Schema name (`ivoa`, `wisecut`, `TAP_SCHEMA`, `TAP_UPLOAD`).
    pub schema: String,
    /// Table name without the schema (`ObsCore`, `sources`).
    pub name: String,
    /// Description.
    pub description: String,
    /// utype (`ivo://ivoa.net/std/obscore#table-1.1` for ObsCore), or empty.
    pub utype: String,
    /// The columns, in order.
    pub columns: Vec<TapColumn>,
    /// Where the rows come from.
    pub relation: Relation,
    /// Foreign keys of this table.
    pub foreign_keys: Vec<ForeignKey>,
}

impl TapTable {
    /// `schema.name`, as queries and TAP_SCHEMA write it.
    pub fn qualified_name(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }

    /// The column called `name` (case-insensitive).
    pub fn column(&self, name: &str) -> Option<&TapColumn> {
        self.columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
    }

    /// The rows of an upload of this table's shape, for
    /// [`crate::catalog::Catalog::tap_rows`]. `None` unless this is an
    /// upload table.
    pub fn upload_data(&self, rows: Vec<Vec<crate::catalog::browse::Cell>>) -> Option<UploadTable> {
        let Relation::Table(sql_name) = &self.relation else {
            return None;
        };
        (self.schema == UPLOAD_SCHEMA).then(|| UploadTable {
            sql_name: sql_name.clone(),
            columns: self.columns.iter().map(|c| c.kind).collect(),
            rows,
        })
    }
}

/// The xtype of region columns in TAP answers (STC-S text).
pub const REGION_XTYPE: &str = "adql:REGION";

/// The schema of uploaded tables.
pub const UPLOAD_SCHEMA: &str = "TAP_UPLOAD";

/// Whether `name` may name an uploaded table: an ADQL regular identifier
/// (a letter, then letters, digits or underscores), at most 48 characters.
pub fn valid_upload_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 48
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "upload table name {:?} is not allowed: use a letter followed by letters, digits or underscores (at most 48)",
            crate::params::shown(name)
        ))
    }
}

/// The description of an uploaded table `TAP_UPLOAD.name` with `columns`
/// (whose `sql` names are replaced by `c0, c1, …`). The caller checks the
/// name with [`valid_upload_name`] first; any other character is dropped
/// from the SQL name here, so it can never reach SQL.
pub fn upload_table(name: &str, columns: Vec<TapColumn>) -> TapTable {
    let clean: String = name
        .to_ascii_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(48)
        .collect();
    let columns = columns
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            c.sql = format!("c{i}");
            c
        })
        .collect();
    TapTable {
        schema: UPLOAD_SCHEMA.to_owned(),
        name: name.to_owned(),
        description: "a table uploaded with the query".into(),
        utype: String::new(),
        columns,
        relation: Relation::Table(format!("tap_upload_{clean}")),
        foreign_keys: vec![],
    }
}

/// Every published table: the data tables, then TAP_SCHEMA's.
pub fn published() -> Vec<TapTable> {
    let mut tables = vec![
        obscore(),
        sources(),
        source_lists(),
        associate_lists(),
        associations(),
        dependency(),
    ];
    let meta = tap_schema_tables(&tables);
    tables.extend(meta);
    tables
}

/// The catalogue table whose rows a published data table shows (the
/// owner of each row decides its visibility); `None` for TAP_SCHEMA and
/// uploads, which are not the archive's objects.
fn owner_table(t: &TapTable) -> Option<&'static str> {
    if t.schema == UPLOAD_SCHEMA || t.schema.eq_ignore_ascii_case("TAP_SCHEMA") {
        return None;
    }
    Some(match t.name.as_str() {
        "ObsCore" => "obscore",
        "sources" => "source",
        "source_lists" => "source_list",
        "associate_lists" => "associate_list",
        "associations" => "association",
        "dependency" => "dependency",
        // Unknown data tables get the catalogue's fail-closed rule.
        _ => "",
    })
}

/// `tables` as `catalog`'s viewer sees them: every published data table
/// reads only the rows the viewer may see (the condition is the
/// catalogue's, [`Catalog::row_visibility`]), so TOP, ORDER BY, COUNT
/// and joins are exact over the visible part. TAP_SCHEMA (the description)
/// and uploads stay as they are. The system view changes nothing.
///
/// [`Catalog::row_visibility`]: crate::catalog::Catalog::row_visibility
pub fn scoped(mut tables: Vec<TapTable>, catalog: &crate::catalog::Catalog) -> Vec<TapTable> {
    for t in &mut tables {
        let Some(owner) = owner_table(t) else {
            continue;
        };
        let Some(cond) = catalog.row_visibility(owner, "vis") else {
            continue;
        };
        let inner = match &t.relation {
            Relation::Table(name) => name.clone(),
            Relation::Subquery(q) => format!("({q})"),
            Relation::Scoped(q) => format!("({q})"),
            // Constant rows are not archive objects.
            Relation::Rows(_) => continue,
        };
        t.relation = Relation::Scoped(format!("SELECT * FROM {inner} vis WHERE {cond}"));
    }
    tables
}

/// The SQL columns of the `obscore` table that hold ObsCore values, in the
/// order of [`super::sia::obscore_fields`] (`object_id` is `frame_id`).
fn obscore() -> TapTable {
    const STD_EXTRA: &[&str] = &["frame_id", "filter", "chip", "preview", "datalink"];
    const PRINCIPAL: &[&str] = &[
        "obs_collection",
        "obs_publisher_did",
        "access_url",
        "s_ra",
        "s_dec",
        "s_region",
        "t_min",
        "t_exptime",
        "em_min",
        "em_max",
        "frame_id",
        "filter",
    ];
    const INDEXED: &[&str] = &["frame_id", "obs_collection", "obs_publisher_did"];
    let columns = super::sia::obscore_fields()
        .into_iter()
        .map(|f| {
            let name = if f.name == "object_id" {
                "frame_id".to_owned()
            } else {
                f.name.clone()
            };
            let kind = match (f.datatype, f.xtype.as_deref()) {
                (_, Some(_)) | (DataType::Char, _) => ColumnKind::Text,
                (DataType::Double, _) => ColumnKind::Float,
                (DataType::Boolean, _) => ColumnKind::Bool,
                (DataType::Int | DataType::Long, _) => ColumnKind::Int,
            };
            let description = match name.as_str() {
                "frame_id" => "wisecut object id of the frame (joins wisecut.dependency, wisecut.source_lists)".to_owned(),
                _ => f.description.clone().unwrap_or_default(),
            };
            let mut col = TapColumn {
                sql: name.clone(),
                principal: PRINCIPAL.contains(&name.as_str()),
                indexed: INDEXED.contains(&name.as_str()),
                std: !STD_EXTRA.contains(&name.as_str()),
                relative_url: matches!(name.as_str(), "access_url" | "preview" | "datalink"),
                description,
                datatype: f.datatype,
                arraysize: f.arraysize.clone(),
                xtype: f.xtype.clone(),
                unit: f.unit.clone().unwrap_or_default(),
                ucd: f.ucd.clone().unwrap_or_default(),
                utype: f.utype.clone().unwrap_or_default(),
                kind,
                name,
            };
            // TAP clients and `stilts taplint` (ObsCore 1.1) expect the
            // region as an ADQL REGION: an STC-S string, which also has a
            // null (an empty char cell) for frames without a footprint. SIA
            // answers keep the DALI polygon. `vo::tap::run` writes the
            // STC-S form of the stored polygon.
            if col.name == "s_region" {
                col.datatype = DataType::Char;
                col.arraysize = Some("*".into());
                col.xtype = Some(REGION_XTYPE.into());
                col.unit = String::new();
            }
            col
        })
        .collect();
    TapTable {
        schema: "ivoa".into(),
        name: "ObsCore".into(),
        description: "ObsCore 1.1 description of every frame (the SIA 2.0 answer's columns)".into(),
        utype: "ivo://ivoa.net/std/obscore#table-1.1".into(),
        columns,
        relation: Relation::Table("obscore".into()),
        foreign_keys: vec![],
    }
}

fn sources() -> TapTable {
    use ColumnKind::{Float, Int};
    let c = TapColumn::new;
    TapTable {
        schema: "wisecut".into(),
        name: "sources".into(),
        description: "sources extracted from frames, by source list (SLID) and id (SID)".into(),
        utype: String::new(),
        columns: vec![
            c("slid", Int, "source list id")
                .ucd("meta.id;meta.dataset")
                .principal()
                .indexed(),
            c("sid", Int, "source id within its list")
                .ucd("meta.id")
                .principal()
                .indexed(),
            c("ra", Float, "right ascension (ICRS)")
                .unit("deg")
                .ucd("pos.eq.ra;meta.main")
                .principal()
                .indexed(),
            c("dec", Float, "declination (ICRS)")
                .unit("deg")
                .ucd("pos.eq.dec;meta.main")
                .principal()
                .indexed(),
            c("x", Float, "x on the list's frame (FITS pixel)")
                .unit("pixel")
                .ucd("pos.cartesian.x;instr.det"),
            c("y", Float, "y on the list's frame (FITS pixel)")
                .unit("pixel")
                .ucd("pos.cartesian.y;instr.det"),
            c("a", Float, "semi-major axis")
                .unit("pixel")
                .ucd("phys.size.smajAxis"),
            c("b", Float, "semi-minor axis")
                .unit("pixel")
                .ucd("phys.size.sminAxis"),
            c("theta", Float, "position angle")
                .unit("deg")
                .ucd("pos.posAng"),
            c("mag_auto", Float, "MAG_AUTO")
                .unit("mag")
                .ucd("phot.mag")
                .principal(),
            c("magerr_auto", Float, "MAGERR_AUTO")
                .unit("mag")
                .ucd("stat.error;phot.mag"),
            c("flux_auto", Float, "FLUX_AUTO")
                .unit("adu")
                .ucd("phot.flux"),
            c("fwhm", Float, "full width at half maximum")
                .unit("pixel")
                .ucd("phys.size;instr.det.psf"),
            c("class_star", Float, "CLASS_STAR star/galaxy classifier").ucd("src.class.starGalaxy"),
            c("flags", Int, "extraction flags")
                .ucd("meta.code.qual")
                .int32(),
        ],
        relation: Relation::Table("source".into()),
        foreign_keys: vec![ForeignKey {
            key_id: "sources_slid".into(),
            target_table: "wisecut.source_lists".into(),
            columns: vec![("slid".into(), "slid".into())],
            description: "the source list of a source".into(),
        }],
    }
}

fn source_lists() -> TapTable {
    use ColumnKind::{Int, Text};
    let c = TapColumn::new;
    TapTable {
        schema: "wisecut".into(),
        name: "source_lists".into(),
        description: "source lists (catalogs extracted from one frame)".into(),
        utype: String::new(),
        columns: vec![
            c("slid", Int, "source list id")
                .ucd("meta.id;meta.dataset")
                .principal()
                .indexed(),
            c("object_id", Int, "wisecut object id of the list")
                .ucd("meta.id")
                .indexed(),
            c("name", Text, "name").ucd("meta.id").principal(),
            c(
                "frame_id",
                Int,
                "object id of the frame the sources were extracted from",
            )
            .ucd("meta.id;obs.image")
            .principal(),
            c("filter", Text, "filter")
                .ucd("meta.id;instr.filter")
                .principal(),
            c("chip", Text, "detector").ucd("meta.id;instr.det"),
            c("n_sources", Int, "number of sources")
                .ucd("meta.number")
                .principal(),
            c("is_valid", Int, "manual validity flag (0 = invalid)")
                .ucd("meta.code.qual")
                .int32(),
        ],
        relation: Relation::Subquery(
            "SELECT s.slid, s.object_id, s.name, s.frame_id, s.filter, s.chip, s.n_sources, \
             t.is_valid FROM source_list s JOIN process_target t ON t.object_id = s.object_id",
        ),
        foreign_keys: vec![ForeignKey {
            key_id: "source_lists_frame".into(),
            target_table: "ivoa.ObsCore".into(),
            columns: vec![("frame_id".into(), "frame_id".into())],
            description: "the frame a source list was extracted from".into(),
        }],
    }
}

fn associate_lists() -> TapTable {
    use ColumnKind::{Float, Int, Text};
    let c = TapColumn::new;
    TapTable {
        schema: "wisecut".into(),
        name: "associate_lists".into(),
        description: "associate lists (cross-matches of source lists)".into(),
        utype: String::new(),
        columns: vec![
            c("alid", Int, "associate list id")
                .ucd("meta.id;meta.dataset")
                .principal()
                .indexed(),
            c("object_id", Int, "wisecut object id of the list")
                .ucd("meta.id")
                .indexed(),
            c("name", Text, "name").ucd("meta.id").principal(),
            c("assoc_type", Text, "association type")
                .ucd("meta.code")
                .principal(),
            c("search_distance", Float, "matching radius")
                .unit("arcsec")
                .ucd("pos.angDistance")
                .principal(),
            c("n_associations", Int, "number of associations")
                .ucd("meta.number")
                .principal(),
            c("n_members", Int, "number of source lists matched")
                .ucd("meta.number")
                .int32(),
            c("is_valid", Int, "manual validity flag (0 = invalid)")
                .ucd("meta.code.qual")
                .int32(),
        ],
        relation: Relation::Subquery(
            "SELECT a.alid, a.object_id, a.name, a.assoc_type, a.search_distance, \
             a.n_associations, a.n_members, t.is_valid \
             FROM associate_list a JOIN process_target t ON t.object_id = a.object_id",
        ),
        foreign_keys: vec![],
    }
}

fn associations() -> TapTable {
    use ColumnKind::Int;
    let c = TapColumn::new;
    TapTable {
        schema: "wisecut".into(),
        name: "associations".into(),
        description: "associations: which sources (SLID, SID) an association (ALID, AID) groups"
            .into(),
        utype: String::new(),
        columns: vec![
            c("alid", Int, "associate list id")
                .ucd("meta.id;meta.dataset")
                .principal()
                .indexed(),
            c("aid", Int, "association id within its list")
                .ucd("meta.id")
                .principal()
                .indexed(),
            c("slid", Int, "source list of the member")
                .ucd("meta.id;meta.dataset")
                .principal()
                .indexed(),
            c("sid", Int, "source id of the member")
                .ucd("meta.id")
                .principal()
                .indexed(),
            c("flag", Int, "association flag").ucd("meta.code").int32(),
        ],
        relation: Relation::Table("association".into()),
        foreign_keys: vec![
            ForeignKey {
                key_id: "associations_alid".into(),
                target_table: "wisecut.associate_lists".into(),
                columns: vec![("alid".into(), "alid".into())],
                description: "the associate list of an association".into(),
            },
            ForeignKey {
                key_id: "associations_source".into(),
                target_table: "wisecut.sources".into(),
                columns: vec![("slid".into(), "slid".into()), ("sid".into(), "sid".into())],
                description: "the member source".into(),
            },
        ],
    }
}

fn dependency() -> TapTable {
    use ColumnKind::{Int, Text};
    let c = TapColumn::new;
    TapTable {
        schema: "wisecut".into(),
        name: "dependency".into(),
        description:
            "lineage edges: child_id was made from parent_id (object ids of frames and lists)"
                .into(),
        utype: String::new(),
        columns: vec![
            c("child_id", Int, "object id of the product")
                .ucd("meta.id")
                .principal()
                .indexed(),
            c("parent_id", Int, "object id of an input")
                .ucd("meta.id")
                .principal()
                .indexed(),
            c(
                "role",
                Text,
                "what the input was used as (bias, flat, input, …)",
            )
            .ucd("meta.code")
            .principal(),
            c("ordinal", Int, "order among inputs of the same role")
                .ucd("meta.number")
                .int32(),
        ],
        relation: Relation::Table("dependency".into()),
        foreign_keys: vec![
            ForeignKey {
                key_id: "dependency_child".into(),
                target_table: "ivoa.ObsCore".into(),
                columns: vec![("child_id".into(), "frame_id".into())],
                description: "the product frame".into(),
            },
            ForeignKey {
                key_id: "dependency_parent".into(),
                target_table: "ivoa.ObsCore".into(),
                columns: vec![("parent_id".into(), "frame_id".into())],
                description: "the input frame".into(),
            },
        ],
    }
}

/// TAP_SCHEMA's five tables, describing `data` and themselves.
fn tap_schema_tables(data: &[TapTable]) -> Vec<TapTable> {
    use ColumnKind::{Int, Text};
    let c = |name: &str, kind: ColumnKind, d: &str| {
        let mut col = TapColumn::new(name, kind, d).principal();
        col.std = true;
        if kind == Int {
            col.datatype = DataType::Int;
        }
        col
    };
    let table = |name: &str, description: &str, columns: Vec<TapColumn>| TapTable {
        schema: "TAP_SCHEMA".into(),
        name: name.into(),
        description: description.into(),
        utype: String::new(),
        columns,
        relation: Relation::Rows(vec![]),
        foreign_keys: vec![],
    };
    let mut meta = vec![
        table(
            "schemas",
            "the schemas of this service",
            vec![
                c("schema_name", Text, "schema name"),
                c("utype", Text, "utype"),
                c("description", Text, "description"),
                c("schema_index", Int, "order of the schemas"),
            ],
        ),
        table(
            "tables",
            "the tables of this service",
            vec![
                c("schema_name", Text, "schema name"),
                c("table_name", Text, "qualified table name"),
                c("table_type", Text, "table or view"),
                c("utype", Text, "utype"),
                c("description", Text, "description"),
                c("table_index", Int, "order of the tables"),
            ],
        ),
        table(
            "columns",
            "the columns of the tables of this service",
            vec![
                c("table_name", Text, "qualified table name"),
                c("column_name", Text, "column name"),
                c("utype", Text, "utype"),
                c("ucd", Text, "UCD"),
                c("unit", Text, "unit"),
                c("description", Text, "description"),
                c("datatype", Text, "VOTable datatype"),
                c("arraysize", Text, "VOTable arraysize"),
                c("xtype", Text, "VOTable xtype"),
                c("size", Int, "deprecated: arraysize as a number"),
                c("principal", Int, "1 when worth showing by default"),
                c("indexed", Int, "1 when backed by an index"),
                c("std", Int, "1 when defined by a standard"),
                c("column_index", Int, "order of the columns"),
            ],
        ),
        table(
            "keys",
            "foreign keys between tables",
            vec![
                c("key_id", Text, "key id"),
                c("from_table", Text, "table with the foreign key"),
                c("target_table", Text, "table referred to"),
                c("utype", Text, "utype"),
                c("description", Text, "description"),
            ],
        ),
        table(
            "key_columns",
            "the columns of foreign keys",
            vec![
                c("key_id", Text, "key id"),
                c("from_column", Text, "column of from_table"),
                c("target_column", Text, "column of target_table"),
            ],
        ),
    ];
    meta[2].foreign_keys.push(ForeignKey {
        key_id: "columns_table".into(),
        target_table: "TAP_SCHEMA.tables".into(),
        columns: vec![("table_name".into(), "table_name".into())],
        description: "the table of a column".into(),
    });
    meta[1].foreign_keys.push(ForeignKey {
        key_id: "tables_schema".into(),
        target_table: "TAP_SCHEMA.schemas".into(),
        columns: vec![("schema_name".into(), "schema_name".into())],
        description: "the schema of a table".into(),
    });
    meta[3].foreign_keys.push(ForeignKey {
        key_id: "keys_from".into(),
        target_table: "TAP_SCHEMA.tables".into(),
        columns: vec![("from_table".into(), "table_name".into())],
        description: "the table holding a key".into(),
    });
    meta[3].foreign_keys.push(ForeignKey {
        key_id: "keys_target".into(),
        target_table: "TAP_SCHEMA.tables".into(),
        columns: vec![("target_table".into(), "table_name".into())],
        description: "the table a key refers to".into(),
    });
    meta[4].foreign_keys.push(ForeignKey {
        key_id: "key_columns_key".into(),
        target_table: "TAP_SCHEMA.keys".into(),
        columns: vec![("key_id".into(), "key_id".into())],
        description: "the key of a key column".into(),
    });
    let all: Vec<&TapTable> = data.iter().chain(meta.iter()).collect();
    let rows = tap_schema_rows(&all);
    for (t, r) in meta.iter_mut().zip(rows) {
        t.relation = Relation::Rows(r);
    }
    meta
}

/// The rows of schemas, tables, columns, keys and key_columns.
fn tap_schema_rows(all: &[&TapTable]) -> [Vec<Vec<Value>>; 5] {
    let s = |v: &str| Value::String(Some(v.to_owned()));
    let opt = |v: &str| Value::String((!v.is_empty()).then(|| v.to_owned()));
    let i = |v: usize| Value::BigInt(Some(v as i64));
    let flag = |v: bool| Value::BigInt(Some(i64::from(v)));
    let mut schemas: Vec<&str> = Vec::new();
    for t in all {
        if !schemas.contains(&t.schema.as_str()) {
            schemas.push(&t.schema);
        }
    }
    let describe = |schema: &str| match schema {
        "ivoa" => "IVOA standard data models (ObsCore)",
        "wisecut" => "wisecut's own tables: sources, catalogs, associations, lineage",
        "TAP_SCHEMA" => "the description of this service's tables",
        _ => "",
    };
    let schema_rows = schemas
        .iter()
        .enumerate()
        .map(|(n, sc)| vec![s(sc), opt(""), opt(describe(sc)), i(n)])
        .collect();
    let table_rows = all
        .iter()
        .enumerate()
        .map(|(n, t)| {
            vec![
                s(&t.schema),
                s(&t.qualified_name()),
                s("table"),
                opt(&t.utype),
                opt(&t.description),
                i(n),
            ]
        })
        .collect();
    let mut column_rows = Vec::new();
    let mut key_rows = Vec::new();
    let mut key_column_rows = Vec::new();
    for t in all {
        for (n, c) in t.columns.iter().enumerate() {
            let f = c.field(&c.name);
            column_rows.push(vec![
                s(&t.qualified_name()),
                s(&adql_name(&c.name)),
                opt(&c.utype),
                opt(&c.ucd),
                opt(&c.unit),
                opt(&c.description),
                s(datatype_name(c.datatype)),
                opt(f.arraysize.as_deref().unwrap_or("")),
                opt(c.xtype.as_deref().unwrap_or("")),
                Value::BigInt(f.arraysize.as_deref().and_then(|a| a.parse::<i64>().ok())),
                flag(c.principal),
                flag(c.indexed),
                flag(c.std),
                i(n),
            ]);
        }
        for k in &t.foreign_keys {
            key_rows.push(vec![
                s(&k.key_id),
                s(&t.qualified_name()),
                s(&k.target_table),
                opt(""),
                opt(&k.description),
            ]);
            for (from, to) in &k.columns {
                key_column_rows.push(vec![s(&k.key_id), s(from), s(to)]);
            }
        }
    }
    [
        schema_rows,
        table_rows,
        column_rows,
        key_rows,
        key_column_rows,
    ]
}

/// ADQL reserved words that are also column names here (TAP_SCHEMA's
/// `size`): metadata must name them delimited (`"size"`), as a query must.
const RESERVED_COLUMN_NAMES: &[&str] = &["size"];

/// A column's name as ADQL must write it: delimited when it is a reserved
/// word.
pub fn adql_name(name: &str) -> String {
    if RESERVED_COLUMN_NAMES
        .iter()
        .any(|r| r.eq_ignore_ascii_case(name))
    {
        format!("\"{name}\"")
    } else {
        name.to_owned()
    }
}

/// The VOTable name of a datatype.
pub fn datatype_name(d: DataType) -> &'static str {
    match d {
        DataType::Boolean => "boolean",
        DataType::Int => "int",
        DataType::Long => "long",
        DataType::Double => "double",
        DataType::Char => "char",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_published_data_table_has_a_visibility_owner() {
        // A data table without a known owner would show nothing to a
        // viewer (fail closed): each must name its catalogue table.
        for t in published() {
            match owner_table(&t) {
                None => assert_eq!(t.schema, "TAP_SCHEMA", "{}", t.qualified_name()),
                Some(o) => assert!(!o.is_empty(), "{} has no owner", t.qualified_name()),
            }
        }
    }

    #[test]
    fn every_table_is_described_in_tap_schema() {
        let tables = published();
        let names: Vec<String> = tables.iter().map(TapTable::qualified_name).collect();
        for n in [
            "ivoa.ObsCore",
            "wisecut.sources",
            "wisecut.dependency",
            "TAP_SCHEMA.columns",
            "TAP_SCHEMA.key_columns",
        ] {
            assert!(names.iter().any(|x| x == n), "{n} missing from {names:?}");
        }
        let Relation::Rows(tables_rows) = &tables
            .iter()
            .find(|t| t.qualified_name() == "TAP_SCHEMA.tables")
            .unwrap()
            .relation
        else {
            panic!("TAP_SCHEMA.tables has no rows")
        };
        assert_eq!(tables_rows.len(), tables.len());
        let columns = tables
            .iter()
            .find(|t| t.qualified_name() == "TAP_SCHEMA.columns")
            .unwrap();
        let Relation::Rows(rows) = &columns.relation else {
            panic!()
        };
        let total: usize = tables.iter().map(|t| t.columns.len()).sum();
        assert_eq!(rows.len(), total);
        // Every row has one value per column.
        assert!(rows.iter().all(|r| r.len() == columns.columns.len()));
    }

    #[test]
    fn obscore_has_the_mandatory_columns_and_frame_id() {
        let t = obscore();
        for n in [
            "dataproduct_type",
            "calib_level",
            "obs_collection",
            "obs_id",
            "obs_publisher_did",
            "access_url",
            "access_format",
            "access_estsize",
            "target_name",
            "s_ra",
            "s_dec",
            "s_fov",
            "s_region",
            "s_resolution",
            "s_xel1",
            "s_xel2",
            "t_min",
            "t_max",
            "t_exptime",
            "t_resolution",
            "t_xel",
            "em_min",
            "em_max",
            "em_res_power",
            "em_xel",
            "o_ucd",
            "pol_states",
            "pol_xel",
            "facility_name",
            "instrument_name",
            "frame_id",
        ] {
            assert!(t.column(n).is_some(), "{n}");
        }
        let region = t.column("s_region").unwrap();
        assert_eq!(region.xtype.as_deref(), Some(REGION_XTYPE));
        assert_eq!(region.datatype, DataType::Char);
        assert_eq!(region.kind, ColumnKind::Text);
        assert!(t.column("S_RA").unwrap().std);
        assert!(!t.column("frame_id").unwrap().std);
    }

    #[test]
    fn every_obscore_column_is_in_the_sql_table() {
        for c in &obscore().columns {
            assert!(
                c.sql == "frame_id"
                    || crate::catalog::tap_query::OBSCORE_COLUMNS.contains(&c.sql.as_str()),
                "{} is published but the obscore table has no such column",
                c.sql
            );
        }
    }

    #[test]
    fn upload_names_never_reach_sql_unchecked() {
        assert!(valid_upload_name("mine_2").is_ok());
        assert!(valid_upload_name("x; DROP TABLE frame").is_err());
        assert!(valid_upload_name("2x").is_err());
        let t = upload_table(
            "x\"; DROP TABLE frame; --",
            vec![TapColumn::new("ra", ColumnKind::Float, "")],
        );
        assert_eq!(
            t.relation,
            Relation::Table("tap_upload_xdroptableframe".into())
        );
        assert_eq!(t.columns[0].sql, "c0");
    }
}
