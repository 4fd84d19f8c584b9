//! Lineage: what an object was made from (upward) and what was made from it
//! (downward), to any depth, with role names and levels.
//!
//! One `WITH RECURSIVE` query collects the reachable objects; `UNION` (not
//! `UNION ALL`) on (object, depth) keeps the walk linear in the size of the
//! graph even though a pipeline DAG reaches the same bias frame through many
//! paths. Each object's level is its shortest distance from the root, which is
//! what the object view's "level" means.
//!
//! Walks honour the catalogue's viewer: an object the viewer may not see
//! is reached as a *restricted* node — its class name only, under a
//! placeholder id (negative, unique within the walk, so edges can still be
//! drawn) — and the walk does not go beyond it, so what it was made from
//! (or what was made from it) stays unseen. A public product made from a
//! private one shows that it was, and nothing more. A root the viewer may
//! not see is "not found", exactly as a missing one.

use super::{Catalog, CatalogError};
use crate::ids::ObjectId;
use crate::model::FrameClass;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value};
use serde::Serialize;
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

/// Pipelines are a dozen levels deep at most; the cap keeps a corrupt (cyclic)
/// graph from running a query forever.
pub const MAX_DEPTH: u32 = 256;

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Towards what the object was made from.
    Up,
    /// Towards what was made from the object.
    Down,
}

/// An object reached by a lineage walk.
///
/// A restricted node (one the viewer may not see; see the module doc) has
/// a negative placeholder `object_id`, its class name and level, and
/// nothing else: no file name, filter, chip, date or validity (those fields
/// hold neutral values and are left out when it is serialized, as
/// `{"object_id": -1, "class_name": …, "level": …, "restricted": true}`).
#[derive(Debug, Clone, PartialEq)]
pub struct LineageNode {
    /// The object; a negative placeholder for a restricted node (real
    /// object ids are positive).
    pub object_id: ObjectId,
    /// Its class name.
    pub class_name: String,
    /// Shortest distance from the root (root = 0).
    pub level: u32,
    /// File name, for frames.
    pub filename: Option<String>,
    /// What to call it: the file name of a frame, the name of a catalog.
    pub name: String,
    /// Filter, for frames.
    pub filter: Option<String>,
    /// Chip, for frames.
    pub chip: Option<String>,
    /// MJD of observation, for frames.
    pub mjd_obs: Option<f64>,
    /// Validity flag.
    pub is_valid: i32,
    /// Creation date.
    pub creation_date: DateTime<Utc>,
}

impl LineageNode {
    /// Whether the viewer may not see this object: only its class is
    /// known, and its id is a placeholder.
    pub fn is_restricted(&self) -> bool {
        self.object_id.0 < 0
    }

    /// The restricted node standing for a hidden object of `class_name`.
    fn restricted(placeholder: ObjectId, class_name: String, level: u32) -> Self {
        LineageNode {
            object_id: placeholder,
            class_name,
            level,
            filename: None,
            name: String::new(),
            filter: None,
            chip: None,
            mjd_obs: None,
            is_valid: 1,
            creation_date: DateTime::<Utc>::UNIX_EPOCH,
        }
    }
}

impl Serialize for LineageNode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        if self.is_restricted() {
            // Only what the viewer may know: that an object of this class
            // is there.
            let mut st = s.serialize_struct("LineageNode", 4)?;
            st.serialize_field("object_id", &self.object_id)?;
            st.serialize_field("class_name", &self.class_name)?;
            st.serialize_field("level", &self.level)?;
            st.serialize_field("restricted", &true)?;
            return st.end();
        }
        let mut st = s.serialize_struct("LineageNode", 11)?;
        st.serialize_field("object_id", &self.object_id)?;
        st.serialize_field("class_name", &self.class_name)?;
        st.serialize_field("level", &self.level)?;
        st.serialize_field("filename", &self.filename)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("filter", &self.filter)?;
        st.serialize_field("chip", &self.chip)?;
        st.serialize_field("mjd_obs", &self.mjd_obs)?;
        st.serialize_field("is_valid", &self.is_valid)?;
        st.serialize_field("creation_date", &self.creation_date)?;
        st.serialize_field("restricted", &false)?;
        st.end()
    }
}

/// One dependency edge: `child` was made from `parent` in `role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LineageEdge {
    /// The product.
    pub child: ObjectId,
    /// What it was made from.
    pub parent: ObjectId,
    /// Role of the parent.
    pub role: String,
    /// Position among parents of the same role.
    pub ordinal: i32,
}

/// The result of a walk: the nodes (root included) and the edges among them.
#[derive(Debug, Clone, Serialize)]
pub struct Lineage {
    /// Where the walk started.
    pub root: ObjectId,
    /// Which way it went.
    pub direction: Direction,
    /// The depth limit it was given.
    pub max_depth: u32,
    /// Reached objects, by level, then class, then id.
    pub nodes: Vec<LineageNode>,
    /// Edges walked, in (child, role, ordinal) order.
    pub edges: Vec<LineageEdge>,
}

impl Lineage {
    /// The walk without its restricted nodes and the edges that touch
    /// them: for exports whose records must name real objects (PROV
    /// entities, DataLink rows), where "an object of this class you may
    /// not see" has no faithful form.
    pub fn without_restricted(mut self) -> Self {
        self.nodes.retain(|n| !n.is_restricted());
        self.edges.retain(|e| e.child.0 >= 0 && e.parent.0 >= 0);
        self
    }

    /// A node by id.
    pub fn node(&self, id: ObjectId) -> Option<&LineageNode> {
        self.nodes.iter().find(|n| n.object_id == id)
    }

    /// The nodes of one frame class the viewer may see (restricted nodes
    /// are left out: their ids are placeholders).
    pub fn of_class(&self, class: FrameClass) -> Vec<&LineageNode> {
        self.nodes
            .iter()
            .filter(|n| n.class_name == class.name() && !n.is_restricted())
            .collect()
    }

    /// The next step of the walk from `id`: its parents (walking up) or its
    /// children (walking down), each with the role of the edge.
    pub fn next(&self, id: ObjectId) -> Vec<(&LineageEdge, ObjectId)> {
        self.edges
            .iter()
            .filter_map(|e| match self.direction {
                Direction::Up if e.child == id => Some((e, e.parent)),
                Direction::Down if e.parent == id => Some((e, e.child)),
                _ => None,
            })
            .collect()
    }

    /// A text tree in the manner of Astro-WISE's `+bias [level: 2]`, for the
    /// command line. An object reached a second time is shown once more by
    /// name only, so shared calibration frames do not repeat whole subtrees.
    pub fn render_tree(&self) -> String {
        let mut out = String::new();
        let mut seen = HashSet::new();
        self.render_node(self.root, None, 0, &mut seen, &mut out);
        out
    }

    fn render_node(
        &self,
        id: ObjectId,
        role: Option<&str>,
        depth: usize,
        seen: &mut HashSet<ObjectId>,
        out: &mut String,
    ) {
        let indent = "  ".repeat(depth);
        let label = match self.node(id) {
            Some(n) if n.is_restricted() => format!("{} (restricted)", n.class_name),
            Some(n) => {
                let name = &n.name;
                let valid = if n.is_valid > 0 { "" } else { " INVALID" };
                format!("{} {} {}{}", n.class_name, n.object_id, name, valid)
            }
            None => format!("object {id}"),
        };
        let prefix = role.map(|r| format!("+{r} ")).unwrap_or_default();
        let repeat = !seen.insert(id);
        let _ = writeln!(
            out,
            "{indent}{prefix}[level: {depth}] {label}{}",
            if repeat && !self.next(id).is_empty() {
                " (see above)"
            } else {
                ""
            }
        );
        if repeat {
            return;
        }
        for (edge, next) in self.next(id) {
            self.render_node(next, Some(&edge.role), depth + 1, seen, out);
        }
    }
}

impl Catalog {
    /// Walks the lineage of `root` in `direction` up to `max_depth` levels
    /// (capped at [`MAX_DEPTH`]), as this catalogue's viewer may see it:
    /// hidden objects become restricted leaves (see the module doc), and a
    /// hidden root is [`CatalogError::NotFound`] like a missing one.
    pub async fn lineage(
        &self,
        root: ObjectId,
        direction: Direction,
        max_depth: u32,
    ) -> Result<Lineage, CatalogError> {
        let max_depth = max_depth.min(MAX_DEPTH);
        let (from, to) = match direction {
            Direction::Up => ("child_id", "parent_id"),
            Direction::Down => ("parent_id", "child_id"),
        };
        // What the walk says about each object it reaches.
        let cols = "pt.class_name, pt.is_valid, pt.creation_date, f.filename, f.filter, f.chip, \
                    f.mjd_obs, sl.name AS sl_name, al.name AS al_name";
        let joins = |id: &str| {
            format!(
                "LEFT JOIN frame f ON f.object_id = {id} \
                 LEFT JOIN source_list sl ON sl.object_id = {id} \
                 LEFT JOIN associate_list al ON al.object_id = {id}"
            )
        };
        // The walk goes on only from objects the viewer may see: a hidden
        // one is reached (and shown restricted) but not walked through.
        // The system view needs no join.
        let (walk_join, walk_cond, near_join, near_cond) = if self.viewer().is_some() {
            (
                "JOIN process_target wt ON wt.object_id = w.node".to_owned(),
                format!(" AND {}", self.visible("wt")),
                format!("JOIN process_target npt ON npt.object_id = d.{from}"),
                format!(" AND {}", self.visible("npt")),
            )
        } else {
            (String::new(), String::new(), String::new(), String::new())
        };
        let walk = format!(
            "WITH RECURSIVE walk(node, depth) AS ( \
               SELECT CAST($1 AS BIGINT), 0 \
               UNION \
               SELECT d.{to}, w.depth + 1 FROM dependency d \
                 JOIN walk w ON d.{from} = w.node {walk_join} \
                 WHERE w.depth < $2{walk_cond} \
             ), levels AS (SELECT node, MIN(depth) AS level FROM walk GROUP BY node)"
        );
        // One row per edge, carrying the far end's attributes: every object
        // but the root is the far end of some edge, and one query of edges is
        // much cheaper than a query of nodes plus a query of edges.
        let edge_sql = format!(
            "{walk} SELECT d.child_id, d.parent_id, d.role, d.ordinal, \
               CAST(l2.level AS BIGINT) AS level, \
               CAST(CASE WHEN {} THEN 1 ELSE 0 END AS BIGINT) AS shown, {cols} \
             FROM dependency d \
               JOIN levels l ON d.{from} = l.node \
               JOIN levels l2 ON l2.node = d.{to} {near_join} \
               JOIN process_target pt ON pt.object_id = d.{to} {} \
             WHERE l.level < $2{near_cond}",
            self.visible("pt"),
            joins(&format!("d.{to}"))
        );
        let root_sql = format!(
            "SELECT CAST(0 AS BIGINT) AS level, {cols} FROM process_target pt {} \
             WHERE pt.object_id = $1 AND {}",
            joins("pt.object_id"),
            self.visible("pt")
        );
        let b = self.backend();
        let db = self.db();
        let root_row = db
            .query_one_raw(Self::stmt(b, &root_sql, vec![Value::from(root.0)]))
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what: "object",
                id: root.to_string(),
            })?;
        let edge_rows = db
            .query_all_raw(Self::stmt(
                b,
                &edge_sql,
                vec![Value::from(root.0), Value::from(i64::from(max_depth))],
            ))
            .await?;
        let level_of = |r: &sea_orm::QueryResult| -> Result<u32, sea_orm::DbErr> {
            Ok(u32::try_from(r.try_get::<i64>("", "level")?).unwrap_or(u32::MAX))
        };
        let node_from =
            |id: ObjectId, r: &sea_orm::QueryResult| -> Result<LineageNode, sea_orm::DbErr> {
                let filename: Option<String> = r.try_get("", "filename")?;
                let sl_name: Option<String> = r.try_get("", "sl_name")?;
                let al_name: Option<String> = r.try_get("", "al_name")?;
                Ok(LineageNode {
                    name: filename.clone().or(sl_name).or(al_name).unwrap_or_default(),
                    object_id: id,
                    class_name: r.try_get("", "class_name")?,
                    level: level_of(r)?,
                    filename,
                    filter: r.try_get("", "filter")?,
                    chip: r.try_get("", "chip")?,
                    mjd_obs: r.try_get("", "mjd_obs")?,
                    is_valid: r.try_get("", "is_valid")?,
                    creation_date: r.try_get("", "creation_date")?,
                })
            };
        let mut nodes = vec![node_from(root, &root_row)?];
        let mut seen = HashSet::from([root]);
        // Hidden objects reached: (level, class rank, id) → class name.
        let mut hidden: BTreeMap<(u32, usize, ObjectId), String> = BTreeMap::new();
        let mut edges = Vec::with_capacity(edge_rows.len());
        for r in &edge_rows {
            let edge = LineageEdge {
                child: ObjectId(r.try_get("", "child_id")?),
                parent: ObjectId(r.try_get("", "parent_id")?),
                role: r.try_get("", "role")?,
                ordinal: r.try_get("", "ordinal")?,
            };
            let far = match direction {
                Direction::Up => edge.parent,
                Direction::Down => edge.child,
            };
            if seen.insert(far) {
                if r.try_get::<i64>("", "shown")? != 0 {
                    nodes.push(node_from(far, r)?);
                } else {
                    let class: String = r.try_get("", "class_name")?;
                    hidden.insert((level_of(r)?, class_rank(&class), far), class);
                }
            }
            edges.push(edge);
        }
        // Placeholders in a fixed order, so one walk always draws the same;
        // the real ids go no further than this function.
        let mut placeholder = std::collections::HashMap::with_capacity(hidden.len());
        for (n, ((level, _, id), class)) in hidden.into_iter().enumerate() {
            let p = ObjectId(-1 - i64::try_from(n).unwrap_or(i64::MAX - 1));
            placeholder.insert(id, p);
            nodes.push(LineageNode::restricted(p, class, level));
        }
        for e in &mut edges {
            for end in [&mut e.child, &mut e.parent] {
                if let Some(p) = placeholder.get(end) {
                    *end = *p;
                }
            }
        }
        nodes.sort_by(|a, b| {
            (a.level, class_rank(&a.class_name), a.object_id).cmp(&(
                b.level,
                class_rank(&b.class_name),
                b.object_id,
            ))
        });
        edges.sort_by(|a, b| {
            (a.child, &a.role, a.ordinal, a.parent).cmp(&(b.child, &b.role, b.ordinal, b.parent))
        });
        Ok(Lineage {
            root,
            direction,
            max_depth,
            nodes,
            edges,
        })
    }

    /// Every frame of `class` anywhere upstream of `root` that the viewer
    /// may see, by object id.
    pub async fn ancestors_of_class(
        &self,
        root: ObjectId,
        class: FrameClass,
    ) -> Result<Vec<ObjectId>, CatalogError> {
        let lineage = self.lineage(root, Direction::Up, MAX_DEPTH).await?;
        let mut ids: Vec<ObjectId> = lineage
            .of_class(class)
            .into_iter()
            .map(|n| n.object_id)
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// Pipeline order of a class name, so that a level lists raw before coadd.
fn class_rank(name: &str) -> usize {
    FrameClass::ALL
        .iter()
        .position(|c| c.name() == name)
        .unwrap_or(FrameClass::ALL.len())
}
