//! The object view (`/object/{id}`): every attribute of any object, its
//! dependency tree upward (what it was made from) and downward (what was made
//! from it) as nested, expandable `<details>` elements with role names,
//! class, file, date and validity, a thumbnail for each frame, and links to
//! every node and back to its table with a query for similar objects.
//!
//! A SourceList or AssociateList is titled by its SLID or ALID, the number
//! every other page asks for, with the object id beside it ("SourceList
//! SLID 145 (object 540)"). Numbers are shown by column kind
//! (`super::cell_format`), positions in sexagesimal with `coords=sex`.
//!
//! Also `/thumb/{id}`: a whole frame rendered small (zscale, 128 px), through
//! the product cache, for the thumbnails.
//!
//! Everything goes through the request's scoped catalogue: an object the
//! viewer may not see is a 404 exactly like a missing one, and in a tree
//! it is a "restricted <class>" leaf without a link, a name or a
//! thumbnail (the lineage walk itself makes it so).
//!
//! `POST /object/{id}/privileges` (`level`, and the `csrf` field of the
//! browser session) changes an object's privileges level, for its creator,
//! an admin of its project or a superuser; the object page shows the form
//! to them.

use std::collections::HashSet;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::AppError;
use super::cell_format::{self, Coords};
use super::query_params::QueryParams;
use crate::catalog::browse::{self, Cell, Query, Table};
use crate::catalog::lineage::{Direction, Lineage, MAX_DEPTH};
use crate::ids::ObjectId;
use crate::model::FrameClass;
use crate::products::cutout::CutoutRequest;

/// Parameters of `/object/{id}`.
pub const PARAMS: &[&str] = &["coords"];

/// One attribute row.
pub struct Attribute {
    /// Column name.
    pub name: &'static str,
    /// Value as text.
    pub value: String,
    /// The full-precision value when `value` rounds it.
    pub full: Option<String>,
    /// Unit.
    pub unit: &'static str,
    /// A link, for ids.
    pub href: Option<String>,
}

/// One node of a rendered tree.
pub struct TreeNode {
    /// Object id.
    pub id: i64,
    /// Role of the edge that leads here (empty for the root).
    pub role: String,
    /// Level (steps from the root).
    pub level: u32,
    /// Class name.
    pub class_name: String,
    /// File or list name.
    pub name: String,
    /// Creation date.
    pub date: String,
    /// Valid flag.
    pub valid: bool,
    /// Whether this is a frame (gets a thumbnail).
    pub frame: bool,
    /// Already shown earlier in this tree.
    pub repeat: bool,
    /// The viewer may not see it: shown by class only, without a link.
    pub restricted: bool,
    /// Children.
    pub children: Vec<TreeNode>,
}

/// The object page.
#[derive(Template)]
#[template(path = "object.html")]
pub struct ObjectPage {
    /// Object id.
    pub id: i64,
    /// Class name.
    pub class_name: String,
    /// Display name.
    pub name: String,
    /// The heading: the class and the id people use for it (a SLID, an
    /// ALID, or the object id of a frame).
    pub heading: String,
    /// For lists: (`slid` or `alid`, its value), shown prominently and
    /// offering dependency cutouts.
    pub list_id: Option<(&'static str, i64)>,
    /// This page with positions in degrees, and in sexagesimal.
    pub coords_urls: (String, String),
    /// Positions are shown in sexagesimal.
    pub sexagesimal: bool,
    /// Whether it is a frame.
    pub frame: bool,
    /// Attributes.
    pub attributes: Vec<Attribute>,
    /// Upward tree, as HTML list items (built in Rust: templates cannot
    /// recurse).
    pub up_html: String,
    /// Number of objects upward (root excluded).
    pub n_up: usize,
    /// Downward tree, as HTML list items.
    pub down_html: String,
    /// Number of objects downward.
    pub n_down: usize,
    /// Link to the object's table filtered to similar objects.
    pub similar_url: String,
    /// Link to the rows of a list (sources, associations).
    pub rows_url: Option<String>,
    /// The privileges form, for those who may change them.
    pub privileges: Option<PrivilegesForm>,
}

/// The privileges form of the object page.
pub struct PrivilegesForm {
    /// The current level.
    pub level: i32,
    /// The levels offered: (value, label, current).
    pub levels: Vec<(i32, &'static str, bool)>,
    /// The browser session's CSRF token (none for API clients).
    pub csrf: Option<String>,
}

/// The privileges levels, Astro-WISE's, with what each means.
pub const LEVELS: [(i32, &str); 5] = [
    (1, "1 private (creator, in the project)"),
    (2, "2 project (members working in it)"),
    (3, "3 signed-in users"),
    (4, "4 public"),
    (5, "5 public (world)"),
];

/// `GET /object/{id}`.
pub async fn object(
    super::auth::Scoped(st): super::auth::Scoped,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, AppError> {
    let id = super::object_id(&id).map_err(AppError::BadRequest)?;
    let p = QueryParams::parse(raw.as_deref(), PARAMS)?;
    let coords = Coords::parse(p.get("coords").unwrap_or("")).map_err(AppError::BadRequest)?;
    let target = st.catalog.process_target(ObjectId(id)).await?;
    let class = target.class_name.clone();
    let table = match class.as_str() {
        "SourceList" => Table::SourceLists,
        "AssociateList" => Table::AssociateLists,
        c => Table::Frames(
            c.parse::<FrameClass>()
                .ok()
                .ok_or_else(|| AppError::Internal(format!("object {id} has unknown class {c}")))?,
        ),
    };
    // The attributes come through the same query model as the tables, so
    // the object view and its table always agree.
    let mut query = Query::new(&table);
    query.conditions.push(
        browse::parse_condition(&table, &format!("object_id = {id}"))
            .map_err(|e| AppError::Internal(e.to_string()))?,
    );
    let page = st.catalog.browse(&table, &query).await?;
    let row = page
        .rows
        .first()
        .ok_or_else(|| AppError::NotFound(format!("there is no object {id}")))?;
    let columns = table.columns();
    let value = |name: &str| {
        columns
            .iter()
            .position(|c| c.name == name)
            .map(|i| row[i].display())
            .unwrap_or_default()
    };
    let attributes = columns
        .iter()
        .zip(row)
        .map(|(c, cell)| {
            let kind = cell_format::kind(c);
            let shown = cell_format::show(kind, cell, coords);
            Attribute {
                name: c.name,
                value: shown.text,
                full: shown.full,
                unit: cell_format::unit(kind, coords, c.unit),
                href: match (c.name, cell) {
                    ("frame_id", Cell::Int(v)) => Some(format!("/object/{v}")),
                    ("slid", Cell::Int(v)) => Some(format!("/table/SourceList/{v}")),
                    ("alid", Cell::Int(v)) => Some(format!("/table/AssociateList/{v}")),
                    _ => None,
                },
            }
        })
        .collect();
    let (name, similar, rows_url) = match table {
        Table::Frames(c) => {
            let mut q = vec![];
            for key in ["filter", "chip"] {
                let v = value(key);
                if !v.is_empty() {
                    q.push(("q", format!("{key} = {v}")));
                }
            }
            (
                value("filename"),
                format!(
                    "/table/{}?{}",
                    c.name(),
                    serde_urlencoded::to_string(&q).unwrap_or_default()
                ),
                None,
            )
        }
        Table::SourceLists => (
            value("name"),
            "/table/SourceList".to_owned(),
            Some(format!("/table/SourceList/{}", value("slid"))),
        ),
        _ => (
            value("name"),
            "/table/AssociateList".to_owned(),
            Some(format!("/table/AssociateList/{}", value("alid"))),
        ),
    };
    let up = st
        .catalog
        .lineage(ObjectId(id), Direction::Up, MAX_DEPTH)
        .await?;
    let down = st
        .catalog
        .lineage(ObjectId(id), Direction::Down, MAX_DEPTH)
        .await?;
    let list_id = match table {
        Table::SourceLists => value("slid").parse().ok().map(|v| ("slid", v)),
        Table::AssociateLists => value("alid").parse().ok().map(|v| ("alid", v)),
        _ => None,
    };
    let heading = match list_id {
        Some((kind, v)) => format!("{class} {} {v} (object {id})", kind.to_ascii_uppercase()),
        None => format!("{class} {id}"),
    };
    let page = ObjectPage {
        id,
        class_name: class,
        name,
        heading,
        list_id,
        coords_urls: (format!("/object/{id}"), format!("/object/{id}?coords=sex")),
        sexagesimal: coords == Coords::Sexagesimal,
        frame: matches!(table, Table::Frames(_)),
        attributes,
        n_up: up.nodes.len().saturating_sub(1),
        n_down: down.nodes.len().saturating_sub(1),
        up_html: tree(&up, up.root, "", 0, &mut HashSet::new()).html(true),
        down_html: tree(&down, down.root, "", 0, &mut HashSet::new()).html(true),
        similar_url: similar,
        rows_url,
        privileges: st
            .identity
            .viewer
            .can_change_privileges(&target)
            .then(|| PrivilegesForm {
                level: target.privileges,
                levels: LEVELS
                    .iter()
                    .map(|&(v, label)| (v, label, v == target.privileges))
                    .collect(),
                csrf: st.identity.csrf_token(),
            }),
    };
    Ok(Html(page.render()?).into_response())
}

/// The tree below `id`; a node met again is shown once more, marked, without
/// its subtree (as Astro-WISE's "(see above)").
/// `level` is the depth in this tree, as `wisecut lineage` prints it.
fn tree(
    l: &Lineage,
    id: ObjectId,
    role: &str,
    level: u32,
    seen: &mut HashSet<ObjectId>,
) -> TreeNode {
    let repeat = !seen.insert(id);
    let n = l.node(id);
    let restricted = n.is_some_and(|n| n.is_restricted());
    if restricted {
        // Its class, and nothing that would tell which object it is.
        return TreeNode {
            id: 0,
            role: role.to_owned(),
            level,
            class_name: n.map(|n| n.class_name.clone()).unwrap_or_default(),
            name: String::new(),
            date: String::new(),
            valid: true,
            frame: false,
            repeat: false,
            restricted: true,
            children: Vec::new(),
        };
    }
    let children = if repeat {
        Vec::new()
    } else {
        l.next(id)
            .into_iter()
            .map(|(edge, next)| tree(l, next, &edge.role, level + 1, seen))
            .collect()
    };
    TreeNode {
        id: id.0,
        role: role.to_owned(),
        level,
        class_name: n.map(|n| n.class_name.clone()).unwrap_or_default(),
        name: n
            .map(|n| n.filename.clone().unwrap_or_else(|| n.name.clone()))
            .unwrap_or_default(),
        date: n
            .map(|n| n.creation_date.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
        valid: n.is_some_and(|n| n.is_valid > 0),
        frame: n.is_some_and(|n| n.class_name.parse::<FrameClass>().is_ok()),
        repeat,
        restricted: false,
        children,
    }
}

impl TreeNode {
    /// The node as an `<li>`: a `<details>` element (open at the root and
    /// level 1) when it has children, so the tree expands level by level
    /// without JavaScript.
    pub fn html(&self, open: bool) -> String {
        let mut out = String::new();
        self.write(open, &mut out);
        out
    }

    fn write(&self, open: bool, out: &mut String) {
        use std::fmt::Write;
        if self.restricted {
            let role = if self.role.is_empty() {
                String::new()
            } else {
                format!(
                    "<span class=\"role\">+{}</span> ",
                    crate::markup::escape(&self.role)
                )
            };
            let _ = write!(
                out,
                "<li class=\"node restricted\" data-level=\"{level}\" data-class=\"{class}\">\
                 <div class=\"leaf\">{role}<span class=\"level\">[level: {level}]</span> \
                 <span class=\"restricted\">restricted {class}</span></div></li>",
                level = self.level,
                class = crate::markup::escape(&self.class_name),
            );
            return;
        }
        let _ = write!(
            out,
            "<li class=\"node{}\" data-object=\"{}\" data-level=\"{}\" data-class=\"{}\">",
            if self.valid { "" } else { " invalid" },
            self.id,
            self.level,
            crate::markup::escape(&self.class_name)
        );
        let mut label = String::new();
        if !self.role.is_empty() {
            let _ = write!(
                label,
                "<span class=\"role\">+{}</span> ",
                crate::markup::escape(&self.role)
            );
        }
        let _ = write!(
            label,
            "<span class=\"level\">[level: {}]</span> ",
            self.level
        );
        if self.frame {
            let _ = write!(
                label,
                "<img class=\"thumb\" loading=\"lazy\" alt=\"\" src=\"/thumb/{}\"> ",
                self.id
            );
        }
        let _ = write!(
            label,
            "<a href=\"/object/{id}\">{} {id}</a> <span class=\"name\">{}</span> <span class=\"date\">{}</span>",
            crate::markup::escape(&self.class_name),
            crate::markup::escape(&self.name),
            crate::markup::escape(&self.date),
            id = self.id
        );
        if !self.valid {
            label.push_str(" <span class=\"badge\">invalid</span>");
        }
        if self.repeat {
            label.push_str(" <span class=\"repeat\">(see above)</span>");
        }
        if self.children.is_empty() {
            let _ = write!(out, "<div class=\"leaf\">{label}</div>");
        } else {
            let _ = write!(
                out,
                "<details{}><summary>{label}</summary><ul>",
                if open { " open" } else { "" }
            );
            for c in &self.children {
                // Open down to level 1; deeper levels expand on click.
                c.write(self.level == 0, out);
            }
            out.push_str("</ul></details>");
        }
        out.push_str("</li>");
    }
}

/// Longest side of a thumbnail.
pub const THUMB_PX: usize = 128;

/// `GET /thumb/{id}`: the whole frame, zscale, linear, at most 128 px, JPEG.
/// A missing file is a 404, a damaged one a 500, as for any cutout.
pub async fn thumbnail(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let started = std::time::Instant::now();
    let id = super::object_id(&id).map_err(AppError::BadRequest)?;
    let frame = st.catalog.frame(ObjectId(id)).await?;
    let product = st
        .services
        .products
        .cutout(
            CutoutRequest::thumbnail(&frame, THUMB_PX),
            super::cutout_api::if_none_match(&headers),
        )
        .await?;
    Ok(super::cutout_api::product_response(product, started))
}

/// `POST /object/{id}/privileges` (form: `level`, and `csrf` from a
/// browser session): sets the object's privileges level and redirects
/// (303) back to its page. An object the viewer may not see is a 404 like
/// a missing one; one it sees but may not change is a 403 saying who may;
/// a bad level is a 400 naming `level` and the allowed values.
pub async fn set_privileges(
    super::auth::Scoped(st): super::auth::Scoped,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, AppError> {
    let id = super::object_id(&id).map_err(AppError::BadRequest)?;
    let target = st.catalog.process_target(ObjectId(id)).await?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| AppError::BadRequest(format!("the form is malformed: {e}")))?;
    let given = fields
        .iter()
        .find(|(k, _)| k == "level")
        .map(|(_, v)| v.trim())
        .unwrap_or("");
    let level = parse_level(given).map_err(AppError::BadRequest)?;
    let viewer = &st.identity.viewer;
    if !viewer.can_change_privileges(&target) {
        let who = if viewer.user.is_none() {
            "sign in: "
        } else {
            ""
        };
        return Ok(super::error::error_page(
            StatusCode::FORBIDDEN,
            format!(
                "{who}only the creator of object {id} ({}), an admin of its project {} or a \
                 superuser may change its privileges",
                target.creator, target.project
            ),
        ));
    }
    st.catalog
        .set_privileges(Some(viewer), &[ObjectId(id)], level)
        .await?;
    // The frame memo is per viewer: entries made while the object was
    // visible to someone must not outlive the change.
    st.services.products.frames.forget_all();
    Ok(Redirect::to(&format!("/object/{id}")).into_response())
}

/// A privileges level, `1` to `5`; the error names `level` and the
/// allowed values.
pub fn parse_level(text: &str) -> Result<i32, String> {
    text.parse::<i32>()
        .ok()
        .filter(|l| LEVELS.iter().any(|(v, _)| v == l))
        .ok_or_else(|| {
            let shown: String = text.chars().take(40).collect();
            format!(
                "level: {shown:?} is not a privileges level; use 1 (private), 2 (project), \
                 3 (signed-in users), 4 or 5 (public)"
            )
        })
}
