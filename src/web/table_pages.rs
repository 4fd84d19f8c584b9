//! The table browser: `/table/{name}` for every frame class, `SourceList`,
//! `AssociateList`, and `/table/SourceList/{slid}` / `/table/AssociateList/{alid}`
//! for the rows of one list. The whole query lives in the URL (`q` conditions,
//! `sort`, `page`, `size`, `cols`), so any result can be bookmarked and
//! shared; `format=csv|json` exports the same query.
//!
//! Works without JavaScript: the query form is a plain GET form. A query
//! that cannot be run (a mistyped condition, an unknown column) re-shows the
//! form with the error above it and the input kept, at status 400; exports
//! answer such a query with the plain 400 page.
//!
//! The HTML shows numbers by column kind (`super::cell_format`: RA/Dec to
//! 1e-6 deg or sexagesimal with `coords=sex`, pixels 2 decimals, magnitudes
//! 3), with the full value in the cell's `title`; the exports keep full
//! precision. Rows carry their tools: frames an image-view link, lists and
//! their rows a link to the dependency-cutout request (`GET /deps` only fills
//! in the form), SourceLists and sources a lazy thumbnail (`thumbs=no` hides
//! them).

use askama::Template;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::cell_format::{self, Coords};
use super::{AppError, AppState};
use crate::catalog::browse::{self, Cell, Column, Dir, Op, PAGE_SIZES, Query, Table};
use crate::ids::{Alid, ObjectId, Slid};
use crate::model::FrameClass;
use crate::params::{angle, flag};
use crate::vo::export;
use crate::vo::votable::{self, Serialization};

/// Largest export without explicit paging.
pub const EXPORT_LIMIT: u64 = 100_000;

/// Most `q` conditions in one query: enough for any query a person writes,
/// and far below the bound-parameter limits of the databases (997
/// conditions used to fail inside SQLite as a 500).
pub const MAX_CONDITIONS: usize = 32;

/// Highest page number: (page − 1) × the largest page size must stay a
/// valid SQL `OFFSET` (a page of `i64::MAX` used to overflow into a 500).
pub const MAX_PAGE: u64 = 1_000_000_000;

/// Parameters the table pages accept.
pub const PARAMS: &[&str] = &[
    "q",
    "sort",
    "page",
    "size",
    "cols",
    "format",
    "ra",
    "dec",
    "radius",
    "serialization",
    "datalink",
    "coords",
    "thumbs",
];

/// Side of a source's thumbnail cutout, arcsec: a few seeing discs and
/// their neighbourhood.
pub const SOURCE_THUMB_ARCSEC: f64 = 16.0;

/// Longest side of a row thumbnail, pixels: small enough that a row stays
/// about as tall as two lines of text.
pub const ROW_THUMB_PX: usize = 48;

/// Query-string pairs in order (conditions repeat `q`).
fn pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, AppError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| AppError::BadRequest(format!("the query string is malformed: {e}")))?;
    for (k, _) in &pairs {
        if !PARAMS.contains(&k.to_ascii_lowercase().as_str()) {
            return Err(AppError::BadRequest(format!(
                "{k}: unknown parameter; allowed: {}",
                PARAMS.join(", ")
            )));
        }
    }
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect())
}

/// The parsed request: query, chosen columns, format.
struct Request {
    query: Query,
    columns: Vec<&'static Column>,
    explicit_columns: bool,
    format: Option<String>,
    explicit_page: bool,
    /// VOTable options: serialization and whether to add the DataLink
    /// service descriptor.
    votable: (Serialization, bool),
    /// How positions are shown in HTML.
    coords: Coords,
    /// Whether rows show thumbnails.
    thumbs: bool,
}

fn parse_request(table: &Table, raw: Option<&str>) -> Result<Request, AppError> {
    let bad = |e: browse::BrowseError| AppError::BadRequest(e.to_string());
    let mut query = Query::new(table);
    let mut columns: Option<Vec<&'static Column>> = None;
    let mut format = None;
    let mut explicit_page = false;
    let mut votable = (Serialization::TableData, true);
    let mut coords = Coords::default();
    let mut thumbs = true;
    let mut cone: [Option<String>; 3] = [None, None, None];
    for (k, v) in pairs(raw)? {
        match k.as_str() {
            "ra" | "dec" | "radius" => {
                let i = ["ra", "dec", "radius"]
                    .iter()
                    .position(|n| *n == k)
                    .unwrap_or(0);
                cone[i] = Some(v).filter(|v| !v.trim().is_empty());
            }
            // An empty condition row of the form is not a condition.
            "q" if v.trim().is_empty() => {}
            "q" => {
                if query.conditions.len() == MAX_CONDITIONS {
                    return Err(AppError::BadRequest(format!(
                        "q: at most {MAX_CONDITIONS} conditions in one query"
                    )));
                }
                query
                    .conditions
                    .push(browse::parse_condition(table, &v).map_err(bad)?);
            }
            "sort" => {
                let (name, dir) = match v.trim().strip_prefix('-') {
                    Some(n) => (n, Dir::Desc),
                    None => (v.trim(), Dir::Asc),
                };
                let c = table
                    .column(name)
                    .map_err(|e| AppError::BadRequest(format!("sort: {}", e.message)))?;
                query.sort = (c, dir);
            }
            "page" => {
                explicit_page = true;
                query.page = v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&p| (1..=MAX_PAGE).contains(&p))
                    .ok_or_else(|| {
                        AppError::BadRequest(format!(
                            "page: {:?} is not a page number (1 to {MAX_PAGE})",
                            crate::params::shown(&v)
                        ))
                    })?;
            }
            "size" => {
                explicit_page = true;
                let s: u64 = v.trim().parse().unwrap_or(0);
                if !PAGE_SIZES.contains(&s) {
                    return Err(AppError::BadRequest(format!(
                        "size: {:?} is not a page size; allowed: {}",
                        crate::params::shown(&v),
                        PAGE_SIZES
                            .iter()
                            .map(u64::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
                query.page_size = s;
            }
            "cols" => {
                let mut chosen = columns.take().unwrap_or_default();
                for name in v.split(',').filter(|n| !n.trim().is_empty()) {
                    let c = table
                        .column(name)
                        .map_err(|e| AppError::BadRequest(format!("cols: {}", e.message)))?;
                    if !chosen.contains(&c) {
                        chosen.push(c);
                    }
                }
                columns = Some(chosen);
            }
            "format" => {
                let f = v.trim().to_ascii_lowercase();
                if !matches!(f.as_str(), "html" | "csv" | "json" | "votable") {
                    return Err(AppError::BadRequest(format!(
                        "format: {v:?} is not an export format; allowed: html, csv, json, votable"
                    )));
                }
                format = (f != "html").then_some(f);
            }
            "serialization" => {
                votable.0 = Serialization::parse(&v).ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "serialization: {v:?} is not a VOTable serialization; allowed: tabledata, binary2"
                    ))
                })?;
            }
            "datalink" => {
                votable.1 =
                    flag::flag("datalink", &v).map_err(|e| AppError::BadRequest(e.to_string()))?;
            }
            "coords" => coords = Coords::parse(&v).map_err(AppError::BadRequest)?,
            "thumbs" => {
                thumbs =
                    flag::flag("thumbs", &v).map_err(|e| AppError::BadRequest(e.to_string()))?;
            }
            _ => {}
        }
    }
    query.cone = parse_cone(table, &cone)?;
    let explicit_columns = columns.as_ref().is_some_and(|c| !c.is_empty());
    let columns = match columns {
        Some(c) if !c.is_empty() => c,
        _ => table.columns().iter().filter(|c| c.default).collect(),
    };
    Ok(Request {
        query,
        columns,
        explicit_columns,
        format,
        explicit_page,
        votable,
        coords,
        thumbs,
    })
}

/// The cone-search box: `ra`, `dec` (degrees or sexagesimal) and `radius`
/// (arcsec), all three or none.
fn parse_cone(table: &Table, p: &[Option<String>; 3]) -> Result<Option<browse::Cone>, AppError> {
    let bad = |m: String| AppError::BadRequest(m);
    match p {
        [None, None, None] => Ok(None),
        [Some(ra), Some(dec), Some(r)] => {
            if table.position().is_none() {
                return Err(bad(format!(
                    "ra: {} has no positions; the cone search applies to frames and sources",
                    table.title()
                )));
            }
            let ra = angle::ra("ra", ra).map_err(|e| bad(e.to_string()))?;
            let dec = angle::dec("dec", dec).map_err(|e| bad(e.to_string()))?;
            let radius: f64 = r
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite() && *v > 0.0 && *v <= 36000.0)
                .ok_or_else(|| {
                    bad(format!(
                        "radius: {r:?} is not a radius in arcsec (0 < r <= 36000)"
                    ))
                })?;
            Ok(Some(browse::Cone {
                ra,
                dec,
                radius: radius / 3600.0,
            }))
        }
        _ => Err(bad(
            "ra: a cone search needs ra, dec and radius (arcsec) together".into(),
        )),
    }
}

/// Resolves the table named in the path.
fn table_named(name: &str) -> Result<Table, AppError> {
    match name {
        "SourceList" => Ok(Table::SourceLists),
        "AssociateList" => Ok(Table::AssociateLists),
        other => other
            .parse::<FrameClass>()
            .ok()
            .map(Table::Frames)
            .ok_or_else(|| {
                AppError::BadRequest(format!(
                    "{other:?} is not a table; valid tables: {}, SourceList, AssociateList",
                    FrameClass::ALL.map(|c| c.name()).join(", ")
                ))
            }),
    }
}

/// `GET /table/{name}`.
pub async fn table(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let table = table_named(&name)?;
    let base = super::vo_endpoints::base_url(&st, &headers);
    let at = Where {
        path: &format!("/table/{name}"),
        base: &base,
        list_frame: None,
    };
    respond(&st, table, &at, raw.as_deref()).await
}

/// A kind of list, whose id people may confuse with its object id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// A SourceList, by SLID.
    Source,
    /// An AssociateList, by ALID.
    Associate,
}

impl ListKind {
    /// `SourceList SLID` or `AssociateList ALID`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Source => "SourceList SLID",
            Self::Associate => "AssociateList ALID",
        }
    }
}

/// When `id`, asked for as a SLID (ALID), is none but is the object id of a
/// SourceList (AssociateList): that list's SLID (ALID). An object page shows
/// both numbers, and the wrong one is easily copied.
pub async fn list_of_object(st: &AppState, kind: ListKind, id: i64) -> Option<i64> {
    let found = match kind {
        ListKind::Source => st
            .catalog
            .slid_of_object(ObjectId(id))
            .await
            .map(|s| s.map(|s| s.0)),
        ListKind::Associate => st
            .catalog
            .alid_of_object(ObjectId(id))
            .await
            .map(|a| a.map(|a| a.0)),
    };
    // A failed lookup only costs the hint; the caller still says "not found".
    found.ok().flatten().filter(|&real| real != id)
}

/// "SourceList SLID 540 does not exist; object 540 is SourceList SLID 145"
/// (the second half when [`list_of_object`] found one).
pub fn no_such_list(kind: ListKind, id: i64, real: Option<i64>) -> String {
    let mut m = format!("{} {id} does not exist", kind.label());
    if let Some(real) = real {
        m.push_str(&format!("; object {id} is {} {real}", kind.label()));
    }
    m
}

/// A list that could not be read: a 404 saying, when `id` is the object id
/// of a list, which list that is and where its rows are.
async fn list_missing(
    st: &AppState,
    kind: ListKind,
    id: i64,
    e: crate::catalog::CatalogError,
) -> AppError {
    if !matches!(e, crate::catalog::CatalogError::NotFound { .. }) {
        return e.into();
    }
    let real = list_of_object(st, kind, id).await;
    let mut m = no_such_list(kind, id, real);
    if let Some(real) = real {
        let table = match kind {
            ListKind::Source => "SourceList",
            ListKind::Associate => "AssociateList",
        };
        m.push_str(&format!(": its rows are /table/{table}/{real}"));
    }
    AppError::NotFound(m)
}

/// `GET /table/{name}/{id}`: the sources of a SourceList or the
/// associations of an AssociateList.
pub async fn list_rows(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{id:?} is not a list id")))?;
    let (table, list_frame) = match name.as_str() {
        "SourceList" => match st.catalog.source_list(Slid(id)).await {
            Ok(list) => (Table::Sources(Slid(id)), list.frame_id),
            Err(e) => return Err(list_missing(&st, ListKind::Source, id, e).await),
        },
        "AssociateList" => match st.catalog.associate_list(Alid(id)).await {
            Ok(_) => (Table::Associations(Alid(id)), None),
            Err(e) => return Err(list_missing(&st, ListKind::Associate, id, e).await),
        },
        other => {
            return Err(AppError::BadRequest(format!(
                "{other:?} has no rows to list; use SourceList/ID or AssociateList/ID"
            )));
        }
    };
    let base = super::vo_endpoints::base_url(&st, &headers);
    let at = Where {
        path: &format!("/table/{name}/{id}"),
        base: &base,
        list_frame,
    };
    respond(&st, table, &at, raw.as_deref()).await
}

/// A table export as a VOTable. Beyond [`EXPORT_LIMIT`] rows (without an
/// explicit page) the first rows are sent with `QUERY_STATUS=OVERFLOW`, as
/// VO clients expect, rather than refused.
async fn votable_export(
    st: &AppState,
    table: &Table,
    req: &Request,
    mut page: browse::Page,
    base: &str,
) -> Result<Response, AppError> {
    let overflow = !req.explicit_page && page.total > EXPORT_LIMIT;
    page.rows.truncate(EXPORT_LIMIT as usize);
    let source_frame = match table {
        Table::Sources(slid) => st.catalog.source_list(*slid).await?.frame_id,
        _ => None,
    };
    let ctx = export::Context {
        base: base.to_owned(),
        source_frame,
        cutout_arcsec: 20.0,
        plain: !req.votable.1,
    };
    // Up to EXPORT_LIMIT rows of XML: CPU work, off the async threads.
    let (table, columns, serialization) = (*table, req.columns.clone(), req.votable.0);
    let xml = tokio::task::spawn_blocking(move || {
        export::document(&table, &columns, &page.rows, overflow, page.total, &ctx)
            .to_xml(serialization)
    })
    .await
    .map_err(|e| AppError::Internal(format!("VOTable export: {e}")))?;
    let file = format!(
        "{}.vot",
        table
            .title()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    Ok((
        [
            (header::CONTENT_TYPE, votable::MIME.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        ],
        xml,
    )
        .into_response())
}

/// One table cell as shown: text, the full value when the text rounds it,
/// and an optional link.
pub struct ShownCell {
    /// Text.
    pub text: String,
    /// The full-precision value, for the cell's `title`.
    pub full: Option<String>,
    /// Link target.
    pub href: Option<String>,
    /// Right-aligned (numbers).
    pub num: bool,
}

/// A link of a row to what can be done with it.
pub struct RowTool {
    /// CSS class, also what tests and scripts select it by.
    pub class: &'static str,
    /// Link text.
    pub label: &'static str,
    /// Target.
    pub href: String,
    /// Tooltip.
    pub title: String,
}

/// A row's thumbnail.
pub struct Thumb {
    /// The picture (a cutout or a frame thumbnail).
    pub src: String,
    /// Where a click on it goes.
    pub href: String,
    /// Alternative text.
    pub alt: String,
}

/// One row as shown.
pub struct ShownRow {
    /// The chosen columns.
    pub cells: Vec<ShownCell>,
    /// Links to the row's image view, dependency cutouts, ….
    pub tools: Vec<RowTool>,
    /// A small picture, lazy-loaded.
    pub thumb: Option<Thumb>,
}

/// A column header with its sort links.
pub struct Header {
    /// Column name.
    pub name: &'static str,
    /// Unit.
    pub unit: &'static str,
    /// URL sorting ascending by it.
    pub sort_asc: String,
    /// URL sorting descending by it.
    pub sort_desc: String,
    /// `asc`, `desc` or empty when not the sort column.
    pub sorted: &'static str,
}

/// A column in the chooser.
pub struct Choice {
    /// Name.
    pub name: &'static str,
    /// Currently shown.
    pub shown: bool,
}

/// The table page.
#[derive(Template)]
#[template(path = "table.html")]
pub struct TablePage {
    /// Title.
    pub title: String,
    /// Why the query could not run (the form is shown with the input kept).
    pub error: Option<String>,
    /// For the rows of one list: (`slid` or `alid`, its id), which offers
    /// dependency cutouts of its sources.
    pub deps_list: Option<(&'static str, i64)>,
    /// Path of this table.
    pub path: String,
    /// Matching rows.
    pub total: u64,
    /// First row shown (1-based), 0 when none.
    pub first: u64,
    /// Last row shown.
    pub last: u64,
    /// Page number.
    pub page: u64,
    /// Number of pages.
    pub pages: u64,
    /// Rows per page.
    pub size: u64,
    /// Offered page sizes.
    pub sizes: Vec<u64>,
    /// Conditions as text.
    pub conditions: Vec<String>,
    /// Column names for the condition form.
    pub all_columns: Vec<&'static str>,
    /// Operators for the condition form.
    pub operators: Vec<&'static str>,
    /// Sort parameter value.
    pub sort: String,
    /// Chosen columns parameter (empty for the default set).
    pub cols: String,
    /// Column chooser.
    pub choices: Vec<Choice>,
    /// Headers.
    pub headers: Vec<Header>,
    /// Rows.
    pub rows: Vec<ShownRow>,
    /// Whether rows have tools (a first column for them).
    pub has_tools: bool,
    /// Navigation links.
    pub first_url: String,
    /// Previous page.
    pub prev_url: Option<String>,
    /// Next page.
    pub next_url: Option<String>,
    /// Last page.
    pub last_url: String,
    /// Whether the table has positions (shows the cone box).
    pub has_position: bool,
    /// Cone box values as given.
    pub cone_ra: String,
    /// Cone box values as given.
    pub cone_dec: String,
    /// Cone radius in arcsec.
    pub cone_radius: String,
    /// `coords` as kept in the form (empty for degrees).
    pub coords: &'static str,
    /// This page with positions in degrees and in sexagesimal.
    pub coords_urls: (String, String),
    /// `thumbs` as kept in the form (empty when shown).
    pub thumbs: &'static str,
    /// This page with thumbnails toggled, for tables that have them.
    pub thumbs_toggle: Option<(String, &'static str)>,
    /// CSV export of this query.
    pub csv_url: String,
    /// JSON export.
    pub json_url: String,
    /// VOTable export.
    pub votable_url: String,
    /// The VOTable export as an absolute URL, for SAMP.
    pub votable_samp_url: String,
}

/// Builds URLs of this query with some parameters changed.
struct UrlBuilder<'a> {
    path: &'a str,
    conditions: Vec<String>,
    sort: String,
    size: u64,
    cols: String,
    cone: Vec<(&'static str, String)>,
    coords: Coords,
    thumbs: bool,
}

impl UrlBuilder<'_> {
    fn url(&self, page: u64, sort: Option<&str>, format: Option<&str>) -> String {
        self.url_with(page, sort, format, self.coords, self.thumbs)
    }

    /// The display options (`coords`, `thumbs`) go into page URLs only when
    /// not the default, and never into exports, which ignore them.
    fn url_with(
        &self,
        page: u64,
        sort: Option<&str>,
        format: Option<&str>,
        coords: Coords,
        thumbs: bool,
    ) -> String {
        let mut pairs: Vec<(&str, String)> =
            self.conditions.iter().map(|c| ("q", c.clone())).collect();
        pairs.push(("sort", sort.unwrap_or(&self.sort).to_owned()));
        if format.is_none() {
            pairs.push(("page", page.to_string()));
            pairs.push(("size", self.size.to_string()));
        }
        if !self.cols.is_empty() {
            pairs.push(("cols", self.cols.clone()));
        }
        pairs.extend(self.cone.iter().cloned());
        match format {
            Some(f) => pairs.push(("format", f.to_owned())),
            None => {
                if coords != Coords::Degrees {
                    pairs.push(("coords", coords.name().to_owned()));
                }
                if !thumbs {
                    pairs.push(("thumbs", "no".to_owned()));
                }
            }
        }
        let qs = serde_urlencoded::to_string(&pairs).unwrap_or_default();
        format!("{}?{qs}", self.path)
    }
}

/// Where a cell links to: object ids to their object view, list ids to
/// their rows.
fn link(table: &Table, column: &Column, cell: &Cell) -> Option<String> {
    let Cell::Int(v) = cell else { return None };
    match (table, column.name) {
        (_, "object_id" | "frame_id") => Some(format!("/object/{v}")),
        (Table::SourceLists, "slid") | (Table::Associations(_), "slid") => {
            Some(format!("/table/SourceList/{v}"))
        }
        (Table::AssociateLists, "alid") => Some(format!("/table/AssociateList/{v}")),
        _ => None,
    }
}

/// Where a table page is and what it needs to know beyond its rows.
struct Where<'a> {
    /// The page's path.
    path: &'a str,
    /// The server's absolute base URL, for SAMP and VOTables.
    base: &'a str,
    /// For the sources of a SourceList: the frame it was extracted from,
    /// which thumbnails are cut out of.
    list_frame: Option<ObjectId>,
}

/// A row's values by column name (all columns are in every row).
struct RowValues<'a> {
    table: &'a Table,
    row: &'a [Cell],
}

impl RowValues<'_> {
    fn cell(&self, name: &str) -> Option<&Cell> {
        let i = self.table.columns().iter().position(|c| c.name == name)?;
        self.row.get(i)
    }

    fn int(&self, name: &str) -> Option<i64> {
        match self.cell(name) {
            Some(Cell::Int(v)) => Some(*v),
            _ => None,
        }
    }

    fn float(&self, name: &str) -> Option<f64> {
        match self.cell(name) {
            Some(Cell::Float(v)) if v.is_finite() => Some(*v),
            _ => None,
        }
    }
}

/// The tools and the thumbnail of one row. Dependency-cutout links are
/// `GET /deps` with the request filled in: following one never starts a
/// job (crawlers follow links), it shows the form to confirm.
fn row_tools(
    table: &Table,
    row: &[Cell],
    list_frame: Option<ObjectId>,
    thumbs: bool,
) -> (Vec<RowTool>, Option<Thumb>) {
    let v = RowValues { table, row };
    let deps = |kind: &str, list: i64, ids: Option<i64>, what: String| RowTool {
        class: "deps-link",
        label: "deps",
        href: match ids {
            Some(i) => format!("/deps?{kind}={list}&ids={i}"),
            None => format!("/deps?{kind}={list}"),
        },
        title: what,
    };
    let mut tools = Vec::new();
    let mut thumb = None;
    match table {
        Table::Frames(_) => {
            if let Some(id) = v.int("object_id") {
                tools.push(RowTool {
                    class: "image-link",
                    label: "image",
                    href: format!("/image/{id}"),
                    title: format!("Image view of frame {id}"),
                });
            }
        }
        Table::SourceLists => {
            if let Some(slid) = v.int("slid") {
                tools.push(deps(
                    "slid",
                    slid,
                    None,
                    format!("Dependency cutouts of sources of SLID {slid}"),
                ));
                if let Some(frame) = v.int("frame_id") {
                    let view = format!("/image/{frame}?slid={slid}");
                    tools.push(RowTool {
                        class: "image-link",
                        label: "image",
                        href: view.clone(),
                        title: format!("Frame {frame} with the sources of SLID {slid}"),
                    });
                    thumb = thumbs.then(|| Thumb {
                        src: format!("/thumb/{frame}"),
                        href: view,
                        alt: format!("frame {frame}"),
                    });
                }
            }
        }
        Table::Sources(slid) => {
            if let Some(sid) = v.int("sid") {
                tools.push(deps(
                    "slid",
                    slid.0,
                    Some(sid),
                    format!("Dependency cutouts of SLID {slid} SID {sid}"),
                ));
                if let (Some(frame), Some(ra), Some(dec), true) =
                    (list_frame, v.float("ra"), v.float("dec"), thumbs)
                {
                    let view = match (v.float("x"), v.float("y")) {
                        (Some(x), Some(y)) => format!(
                            "/image/{frame}?slid={slid}&bin=1&cx={x:.1}&cy={y:.1}",
                            frame = frame.0
                        ),
                        _ => format!("/image/{}?slid={slid}", frame.0),
                    };
                    // zscale, as the frame thumbnails: with the cutout
                    // API's default (99.5th percentile) a bright neighbour
                    // at the stamp's edge turns the rest of it black.
                    thumb = Some(Thumb {
                        src: format!(
                            "/api/cutout?frame={}&ra={ra}&dec={dec}&size={SOURCE_THUMB_ARCSEC}&unit=arcsec&format=jpeg&interval=zscale&output_size={ROW_THUMB_PX}",
                            frame.0
                        ),
                        href: view,
                        alt: format!("SID {sid}"),
                    });
                }
            }
        }
        Table::AssociateLists => {
            if let Some(alid) = v.int("alid") {
                tools.push(deps(
                    "alid",
                    alid,
                    None,
                    format!("Dependency cutouts of associations of ALID {alid}"),
                ));
            }
        }
        Table::Associations(alid) => {
            if let Some(aid) = v.int("aid") {
                tools.push(deps(
                    "alid",
                    alid.0,
                    Some(aid),
                    format!("Dependency cutouts of ALID {alid} AID {aid}"),
                ));
            }
        }
    }
    (tools, thumb)
}

/// Whether rows of `table` can have thumbnails.
fn has_thumbs(table: &Table) -> bool {
    matches!(table, Table::SourceLists | Table::Sources(_))
}

/// Whether the raw query asks for an export, whose errors stay plain.
fn asks_export(raw: Option<&str>) -> bool {
    serde_urlencoded::from_str::<Vec<(String, String)>>(raw.unwrap_or(""))
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("format") && !v.trim().eq_ignore_ascii_case("html"))
}

async fn respond(
    st: &AppState,
    table: Table,
    at: &Where<'_>,
    raw: Option<&str>,
) -> Result<Response, AppError> {
    let export = asks_export(raw);
    let req = match parse_request(&table, raw) {
        Ok(r) => r,
        Err(AppError::BadRequest(m)) if !export => {
            return failed_query(&table, at.path, raw, m);
        }
        Err(e) => return Err(e),
    };
    let all = table.columns();
    let index: Vec<usize> = req
        .columns
        .iter()
        .map(|c| all.iter().position(|a| a == *c).unwrap_or(0))
        .collect();
    if let Some(format) = req.format.clone() {
        return export_response(st, &table, req, index, &format, at.base).await;
    }
    let page = match st.catalog.browse(&table, &req.query).await {
        Ok(p) => p,
        Err(crate::catalog::CatalogError::Query(m)) => {
            return failed_query(&table, at.path, raw, m);
        }
        Err(e) => return Err(e.into()),
    };
    let q = &req.query;
    let pages = page.total.div_ceil(q.page_size).max(1);
    let sort_param = match q.sort.1 {
        Dir::Asc => q.sort.0.name.to_owned(),
        Dir::Desc => format!("-{}", q.sort.0.name),
    };
    let cols = if req.explicit_columns {
        req.columns
            .iter()
            .map(|c| c.name)
            .collect::<Vec<_>>()
            .join(",")
    } else {
        String::new()
    };
    let urls = UrlBuilder {
        path: at.path,
        conditions: q.conditions.iter().map(|c| c.text.clone()).collect(),
        sort: sort_param.clone(),
        size: q.page_size,
        cols: cols.clone(),
        cone: q
            .cone
            .map(|c| {
                vec![
                    ("ra", c.ra.to_string()),
                    ("dec", c.dec.to_string()),
                    ("radius", (c.radius * 3600.0).to_string()),
                ]
            })
            .unwrap_or_default(),
        coords: req.coords,
        thumbs: req.thumbs,
    };
    let headers = req
        .columns
        .iter()
        .map(|c| Header {
            name: c.name,
            unit: cell_format::unit(cell_format::kind(c), req.coords, c.unit),
            sort_asc: urls.url(1, Some(c.name), None),
            sort_desc: urls.url(1, Some(&format!("-{}", c.name)), None),
            sorted: if q.sort.0 == *c {
                match q.sort.1 {
                    Dir::Asc => "asc",
                    Dir::Desc => "desc",
                }
            } else {
                ""
            },
        })
        .collect();
    let kinds: Vec<cell_format::Kind> = req.columns.iter().map(|c| cell_format::kind(c)).collect();
    let rows: Vec<ShownRow> = page
        .rows
        .iter()
        .map(|row| {
            let cells = index
                .iter()
                .zip(&req.columns)
                .zip(&kinds)
                .map(|((&i, c), &kind)| {
                    let shown = cell_format::show(kind, &row[i], req.coords);
                    ShownCell {
                        text: shown.text,
                        full: shown.full,
                        href: link(&table, c, &row[i]),
                        num: matches!(row[i], Cell::Int(_) | Cell::Float(_)),
                    }
                })
                .collect();
            let (tools, thumb) = row_tools(&table, row, at.list_frame, req.thumbs);
            ShownRow {
                cells,
                tools,
                thumb,
            }
        })
        .collect();
    let first = if page.rows.is_empty() {
        0
    } else {
        (q.page - 1) * q.page_size + 1
    };
    let here = |coords, thumbs| urls.url_with(q.page, None, None, coords, thumbs);
    let view = TablePage {
        error: None,
        deps_list: deps_list(&table),
        title: table.title(),
        path: at.path.to_owned(),
        total: page.total,
        first,
        last: first + page.rows.len() as u64 - u64::from(first > 0),
        page: q.page,
        pages,
        size: q.page_size,
        sizes: PAGE_SIZES.to_vec(),
        conditions: urls.conditions.clone(),
        all_columns: all.iter().map(|c| c.name).collect(),
        operators: operators(),
        sort: sort_param,
        cols,
        choices: all
            .iter()
            .map(|c| Choice {
                name: c.name,
                shown: req.columns.contains(&c),
            })
            .collect(),
        headers,
        has_tools: rows
            .iter()
            .any(|r| !r.tools.is_empty() || r.thumb.is_some()),
        rows,
        first_url: urls.url(1, None, None),
        prev_url: (q.page > 1).then(|| urls.url((q.page - 1).min(pages), None, None)),
        next_url: (q.page < pages).then(|| urls.url(q.page + 1, None, None)),
        last_url: urls.url(pages, None, None),
        has_position: table.position().is_some(),
        cone_ra: q.cone.map(|c| c.ra.to_string()).unwrap_or_default(),
        cone_dec: q.cone.map(|c| c.dec.to_string()).unwrap_or_default(),
        cone_radius: q
            .cone
            .map(|c| (c.radius * 3600.0).to_string())
            .unwrap_or_default(),
        coords: kept_coords(req.coords),
        coords_urls: (
            here(Coords::Degrees, req.thumbs),
            here(Coords::Sexagesimal, req.thumbs),
        ),
        thumbs: if req.thumbs { "" } else { "no" },
        thumbs_toggle: has_thumbs(&table).then(|| {
            (
                here(req.coords, !req.thumbs),
                if req.thumbs {
                    "hide thumbnails"
                } else {
                    "show thumbnails"
                },
            )
        }),
        csv_url: urls.url(1, None, Some("csv")),
        json_url: urls.url(1, None, Some("json")),
        votable_url: urls.url(1, None, Some("votable")),
        votable_samp_url: format!("{}{}", at.base, urls.url(1, None, Some("votable"))),
    };
    Ok(Html(view.render()?).into_response())
}

fn deps_list(table: &Table) -> Option<(&'static str, i64)> {
    match table {
        Table::Sources(slid) => Some(("slid", slid.0)),
        Table::Associations(alid) => Some(("alid", alid.0)),
        _ => None,
    }
}

fn operators() -> Vec<&'static str> {
    Op::SPELLINGS.iter().rev().map(|(s, _)| *s).collect()
}

fn kept_coords(c: Coords) -> &'static str {
    match c {
        Coords::Degrees => "",
        Coords::Sexagesimal => c.name(),
    }
}

/// The table page for a query that could not run: the error above the form,
/// the form holding what the user typed (every condition as written, the
/// cone box, the chosen columns and page size where valid), no rows; 400.
fn failed_query(
    table: &Table,
    path: &str,
    raw: Option<&str>,
    error: String,
) -> Result<Response, AppError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).unwrap_or_default();
    let given = |name: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    };
    let last = |name: &str| given(name).pop().unwrap_or_default();
    let all = table.columns();
    let mut chosen: Vec<&'static Column> = Vec::new();
    for v in given("cols") {
        for c in v.split(',').filter_map(|n| table.column(n).ok()) {
            if !chosen.contains(&c) {
                chosen.push(c);
            }
        }
    }
    let size = last("size")
        .parse::<u64>()
        .ok()
        .filter(|s| PAGE_SIZES.contains(s))
        .unwrap_or_else(|| Query::new(table).page_size);
    let sort = Some(last("sort"))
        .filter(|s| table.column(s.trim_start_matches('-')).is_ok())
        .unwrap_or_else(|| table.key().name.to_owned());
    let coords = Coords::parse(&last("coords")).unwrap_or_default();
    let thumbs = flag::flag("thumbs", &last("thumbs")).unwrap_or(true);
    let view = TablePage {
        title: table.title(),
        error: Some(crate::params::cut_long_words(&error).into_owned()),
        deps_list: deps_list(table),
        path: path.to_owned(),
        total: 0,
        first: 0,
        last: 0,
        page: 1,
        pages: 1,
        size,
        sizes: PAGE_SIZES.to_vec(),
        conditions: given("q").into_iter().filter(|c| !c.is_empty()).collect(),
        all_columns: all.iter().map(|c| c.name).collect(),
        operators: operators(),
        sort,
        cols: chosen.iter().map(|c| c.name).collect::<Vec<_>>().join(","),
        choices: all
            .iter()
            .map(|c| Choice {
                name: c.name,
                shown: if chosen.is_empty() {
                    c.default
                } else {
                    chosen.contains(&c)
                },
            })
            .collect(),
        headers: Vec::new(),
        rows: Vec::new(),
        has_tools: false,
        first_url: path.to_owned(),
        prev_url: None,
        next_url: None,
        last_url: path.to_owned(),
        has_position: table.position().is_some(),
        cone_ra: last("ra"),
        cone_dec: last("dec"),
        cone_radius: last("radius"),
        coords: kept_coords(coords),
        coords_urls: (path.to_owned(), format!("{path}?coords=sex")),
        thumbs: if thumbs { "" } else { "no" },
        thumbs_toggle: None,
        csv_url: String::new(),
        json_url: String::new(),
        votable_url: String::new(),
        votable_samp_url: String::new(),
    };
    Ok((StatusCode::BAD_REQUEST, Html(view.render()?)).into_response())
}

/// The CSV, JSON or VOTable export of a query, at full precision.
async fn export_response(
    st: &AppState,
    table: &Table,
    mut req: Request,
    index: Vec<usize>,
    format: &str,
    base: &str,
) -> Result<Response, AppError> {
    if !req.explicit_page {
        req.query.page = 1;
        req.query.page_size = EXPORT_LIMIT + 1;
    }
    let page = st.catalog.browse(table, &req.query).await?;
    if format == "votable" {
        return votable_export(st, table, &req, page, base).await;
    }
    if !req.explicit_page && page.total > EXPORT_LIMIT {
        return Err(AppError::BadRequest(format!(
            "format: the query matches {} rows, more than the {EXPORT_LIMIT} an export holds; add conditions, or export page by page with page= and size=",
            page.total
        )));
    }
    let file = format!(
        "{}.{format}",
        table
            .title()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    );
    // Up to EXPORT_LIMIT rows: serialised on a blocking thread.
    let (columns, title) = (req.columns.clone(), table.title());
    let total = page.total;
    let csv = format == "csv";
    let body = tokio::task::spawn_blocking(move || {
        if csv {
            super::csv_document(
                &columns.iter().map(|c| c.name).collect::<Vec<_>>(),
                page.rows.iter().map(|row| {
                    index
                        .iter()
                        .map(|&i| row[i].display())
                        .collect::<Vec<_>>()
                }),
            )
        } else {
            let rows: Vec<serde_json::Value> = page
                .rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        index
                            .iter()
                            .zip(&columns)
                            .map(|(&i, c)| (c.name.to_owned(), row[i].json()))
                            .collect(),
                    )
                })
                .collect();
            serde_json::json!({
                "table": title,
                "total": total,
                "columns": columns.iter().map(|c| serde_json::json!({"name": c.name, "unit": c.unit})).collect::<Vec<_>>(),
                "rows": rows,
            })
            .to_string()
            .into_bytes()
        }
    })
    .await
    .map_err(|e| AppError::Internal(format!("export: {e}")))?;
    let mime = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// The tables index.
#[derive(Template)]
#[template(path = "tables.html")]
pub struct TablesPage {
    /// (name, rows) per table.
    pub tables: Vec<(String, i64)>,
}

/// `GET /tables`: every table with its row count.
pub async fn tables(
    super::auth::Scoped(st): super::auth::Scoped,
) -> Result<Html<String>, AppError> {
    let counts = st.catalog.category_counts().await?;
    let tables = counts
        .into_iter()
        .filter(|c| {
            c.category.parse::<FrameClass>().is_ok()
                || matches!(c.category.as_str(), "SourceList" | "AssociateList")
        })
        .map(|c| (c.category, c.count))
        .collect();
    Ok(Html(TablesPage { tables }.render()?))
}
