//! The table browser: `/table/{name}` for every frame class, `SourceList`,
//! `AssociateList`, and `/table/SourceList/{slid}` / `/table/AssociateList/{alid}`
//! for the rows of one list. The whole query lives in the URL (`q` conditions,
//! `sort`, `page`, `size`, `cols`), so any result can be bookmarked and
//! shared; `format=csv|json` exports the same query.
//!
//! Works without JavaScript: the query form is a plain GET form.

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};

use super::{AppError, AppState};
use crate::catalog::browse::{self, Cell, Column, Dir, Op, PAGE_SIZES, Query, Table};
use crate::ids::{Alid, Slid};
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
];

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
}

fn parse_request(table: &Table, raw: Option<&str>) -> Result<Request, AppError> {
    let bad = |e: browse::BrowseError| AppError::BadRequest(e.to_string());
    let mut query = Query::new(table);
    let mut columns: Option<Vec<&'static Column>> = None;
    let mut format = None;
    let mut explicit_page = false;
    let mut votable = (Serialization::TableData, true);
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
    State(st): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let table = table_named(&name)?;
    let base = super::vo_endpoints::base_url(&st, &headers);
    respond(&st, table, &format!("/table/{name}"), raw.as_deref(), &base).await
}

/// `GET /table/{name}/{id}`: the sources of a SourceList or the
/// associations of an AssociateList.
pub async fn list_rows(
    State(st): State<AppState>,
    headers: HeaderMap,
    Path((name, id)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let id: i64 = id
        .parse()
        .map_err(|_| AppError::BadRequest(format!("{id:?} is not a list id")))?;
    let table = match name.as_str() {
        "SourceList" => {
            st.catalog.source_list(Slid(id)).await?;
            Table::Sources(Slid(id))
        }
        "AssociateList" => {
            st.catalog.associate_list(Alid(id)).await?;
            Table::Associations(Alid(id))
        }
        other => {
            return Err(AppError::BadRequest(format!(
                "{other:?} has no rows to list; use SourceList/ID or AssociateList/ID"
            )));
        }
    };
    let base = super::vo_endpoints::base_url(&st, &headers);
    respond(
        &st,
        table,
        &format!("/table/{name}/{id}"),
        raw.as_deref(),
        &base,
    )
    .await
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

/// One table cell as shown: text and an optional link.
pub struct ShownCell {
    /// Text.
    pub text: String,
    /// Link target.
    pub href: Option<String>,
    /// Right-aligned (numbers).
    pub num: bool,
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
    pub rows: Vec<Vec<ShownCell>>,
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
}

impl UrlBuilder<'_> {
    fn url(&self, page: u64, sort: Option<&str>, format: Option<&str>) -> String {
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
        if let Some(f) = format {
            pairs.push(("format", f.to_owned()));
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

async fn respond(
    st: &AppState,
    table: Table,
    path: &str,
    raw: Option<&str>,
    base: &str,
) -> Result<Response, AppError> {
    let mut req = parse_request(&table, raw)?;
    let all = table.columns();
    let index: Vec<usize> = req
        .columns
        .iter()
        .map(|c| all.iter().position(|a| a == *c).unwrap_or(0))
        .collect();
    if let Some(format) = req.format.clone() {
        if !req.explicit_page {
            req.query.page = 1;
            req.query.page_size = EXPORT_LIMIT + 1;
        }
        let page = st.catalog.browse(&table, &req.query).await?;
        if format == "votable" {
            return votable_export(st, &table, &req, page, base).await;
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
        return Ok((
            [
                (header::CONTENT_TYPE, mime.to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"{file}\""),
                ),
            ],
            body,
        )
            .into_response());
    }

    let page = st.catalog.browse(&table, &req.query).await?;
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
        path,
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
    };
    let headers = req
        .columns
        .iter()
        .map(|c| Header {
            name: c.name,
            unit: c.unit,
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
    let rows = page
        .rows
        .iter()
        .map(|row| {
            index
                .iter()
                .zip(&req.columns)
                .map(|(&i, c)| ShownCell {
                    text: row[i].display(),
                    href: link(&table, c, &row[i]),
                    num: matches!(row[i], Cell::Int(_) | Cell::Float(_)),
                })
                .collect()
        })
        .collect();
    let first = if page.rows.is_empty() {
        0
    } else {
        (q.page - 1) * q.page_size + 1
    };
    let view = TablePage {
        deps_list: match table {
            Table::Sources(slid) => Some(("slid", slid.0)),
            Table::Associations(alid) => Some(("alid", alid.0)),
            _ => None,
        },
        title: table.title(),
        path: path.to_owned(),
        total: page.total,
        first,
        last: first + page.rows.len() as u64 - u64::from(first > 0),
        page: q.page,
        pages,
        size: q.page_size,
        sizes: PAGE_SIZES.to_vec(),
        conditions: urls.conditions.clone(),
        all_columns: all.iter().map(|c| c.name).collect(),
        operators: Op::SPELLINGS.iter().rev().map(|(s, _)| *s).collect(),
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
        csv_url: urls.url(1, None, Some("csv")),
        json_url: urls.url(1, None, Some("json")),
        votable_url: urls.url(1, None, Some("votable")),
        votable_samp_url: format!("{base}{}", urls.url(1, None, Some("votable"))),
    };
    Ok(Html(view.render()?).into_response())
}

/// The tables index.
#[derive(Template)]
#[template(path = "tables.html")]
pub struct TablesPage {
    /// (name, rows) per table.
    pub tables: Vec<(String, i64)>,
}

/// `GET /tables`: every table with its row count.
pub async fn tables(State(st): State<AppState>) -> Result<Html<String>, AppError> {
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
