//! Where each source falls on every frame of its lineage.
//!
//! The walk starts at the frame a source was measured on (its SourceList's
//! frame) and goes both ways:
//!
//! * **up**, through every parent: frames on the sky (raw, reduced,
//!   regridded, coadd) are placed through their own WCS and kept only when the
//!   source falls on them — that is what picks, for a coadd source, the
//!   regridded frames that cover it out of all those stacked; calibration
//!   frames and frames without a sky WCS are placed at the source's
//!   *detector* position on the same chip, carried down from the science
//!   frame they calibrate;
//! * **down**, only into science products (reduced → regridded → coadd), so
//!   a raw frame's fringe frame does not drag in every other exposure.
//!
//! The walk is breadth first, so each frame is reached by its shortest path
//! and remembers the frame it came from (`via`) and the role of that edge.
//! That is what tells the frames a science product was *directly* made with
//! (reached from a science frame: the reduced frame's `flat`) from those
//! that only entered the lineage through another calibration product (the
//! flats of other bands behind a cold-pixel map, the bias of another night
//! behind a fringe frame): [`Placement::indirect`]. Depth first, the cold
//! map's r flat was reached before the reduced frame's own i flat, and the
//! pipeline GIF showed the wrong flat.
//!
//! Detector positions are in *trimmed* pixels: a frame with a `DATASEC`
//! (raw frames with overscan) is shifted by the section's origin, so a raw
//! frame's pixel (x, y) and a master bias's pixel (x − x₀, y − y₀) are the
//! same piece of silicon. A calibration frame reached through several
//! science frames (one bias for many dithers) is placed once per distinct
//! position.
//!
//! The lineage is walked as the catalogue's viewer sees it: a frame the
//! viewer may not see is a restricted node (class only) that the walk does
//! not pass. Wherever a placed frame has such a neighbour, the source gets
//! a [`Restricted`] entry for that class — "there is a frame here you may
//! not see" — with no pixels, file or position; hidden frames are never
//! placed, cut or animated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use crate::catalog::lineage::{Direction, MAX_DEPTH};
use crate::catalog::sources::Source;
use crate::catalog::{Catalog, CatalogError};
use crate::ids::ObjectId;
use crate::imaging::wcs::Wcs;
use crate::model::{Frame, FrameClass};

/// The science classes a downward walk may enter.
const DOWNSTREAM: [FrameClass; 3] = [
    FrameClass::ReducedScienceFrame,
    FrameClass::RegriddedFrame,
    FrameClass::CoaddedRegriddedFrame,
];

/// A frame of a lineage graph with what placement needs.
#[derive(Debug)]
pub struct FrameNode {
    /// The catalogue record.
    pub frame: Frame,
    /// Its sky transform, for science frames with a usable WCS.
    pub wcs: Option<Wcs>,
    /// Origin of its data section (`DATASEC`), zero-based: frame pixel =
    /// detector pixel + offset.
    pub offset: (f64, f64),
}

impl FrameNode {
    fn new(frame: Frame) -> Self {
        let wcs = if frame.class.is_calibration() {
            None
        } else {
            frame.wcs.as_ref().and_then(|k| {
                Wcs::new(
                    k,
                    frame.naxis1.max(0) as usize,
                    frame.naxis2.max(0) as usize,
                )
                .ok()
            })
        };
        let offset = frame
            .extra
            .get("DATASEC")
            .and_then(|v| v.as_str())
            .and_then(section_origin)
            .unwrap_or((0.0, 0.0));
        FrameNode { frame, wcs, offset }
    }

    /// Mean pixel scale in arcsec, for frames on the sky.
    pub fn scale_arcsec(&self) -> Option<f64> {
        self.wcs
            .as_ref()
            .map(|w| w.keywords().pixel_scale_arcsec())
            .filter(|s| s.is_finite() && *s > 0.0)
    }

    /// Whether the 1-based position lies on the image.
    fn contains(&self, x: f64, y: f64) -> bool {
        let (w, h) = (f64::from(self.frame.naxis1), f64::from(self.frame.naxis2));
        (0.5..w + 0.5).contains(&x) && (0.5..h + 0.5).contains(&y)
    }
}

/// Zero-based origin of a FITS section `[x1:x2,y1:y2]`.
fn section_origin(s: &str) -> Option<(f64, f64)> {
    let s = crate::imaging::wcs::Section::parse(s)?;
    Some((s.x1 as f64 - 1.0, s.y1 as f64 - 1.0))
}

/// The lineage of one SourceList's frame, loaded once for all its sources.
#[derive(Debug)]
pub struct Graph {
    /// The frame the sources were measured on.
    pub root: ObjectId,
    /// Every frame reached, by id.
    pub frames: HashMap<ObjectId, Arc<FrameNode>>,
    /// Parents of each object with the role of the edge, in (role,
    /// ordinal) order.
    parents: HashMap<ObjectId, Vec<(ObjectId, String)>>,
    /// Science children of each object, with the role the object plays in
    /// each.
    children: HashMap<ObjectId, Vec<(ObjectId, String)>>,
    /// For each coadd downstream of the root: the regridded frames stacked
    /// into it (the candidates of the epoch sequence) that the viewer may
    /// see.
    pub coadd_inputs: BTreeMap<ObjectId, Vec<ObjectId>>,
    /// The frames the viewer may not see, by placeholder id (unique over
    /// both walks): their class.
    restricted: HashMap<ObjectId, FrameClass>,
}

/// A frame of a source's lineage the viewer may not see: its class only.
#[derive(Debug, Clone)]
pub struct Restricted {
    /// Its placeholder id in the lineage walk (negative; not an object id).
    pub placeholder: ObjectId,
    /// Its class.
    pub class: FrameClass,
    /// The placed frame it neighbours.
    pub via: Arc<FrameNode>,
    /// The role it plays in `via`, when reached walking up.
    pub role: Option<String>,
    /// Edges from the source's own frame.
    pub level: u32,
}

impl Graph {
    /// Loads the up and down lineage of `root` and the frames in it.
    pub async fn load(catalog: &Catalog, root: ObjectId) -> Result<Self, CatalogError> {
        let up = catalog.lineage(root, Direction::Up, MAX_DEPTH).await?;
        let mut down = catalog.lineage(root, Direction::Down, MAX_DEPTH).await?;
        // Each walk numbers its restricted nodes -1, -2, …: the downward
        // ones are moved below the upward ones so the two never share one.
        let shift = up.nodes.iter().filter(|n| n.is_restricted()).count() as i64;
        let moved = |id: &mut ObjectId| {
            if id.0 < 0 {
                id.0 -= shift;
            }
        };
        for n in &mut down.nodes {
            moved(&mut n.object_id);
        }
        for e in &mut down.edges {
            moved(&mut e.child);
            moved(&mut e.parent);
        }
        let restricted: HashMap<ObjectId, FrameClass> = up
            .nodes
            .iter()
            .chain(&down.nodes)
            .filter(|n| n.is_restricted())
            .filter_map(|n| Some((n.object_id, n.class_name.parse::<FrameClass>().ok()?)))
            .collect();
        let mut parents: HashMap<ObjectId, Vec<(ObjectId, String)>> = HashMap::new();
        for e in &up.edges {
            parents
                .entry(e.child)
                .or_default()
                .push((e.parent, e.role.clone()));
        }
        let down_class: HashMap<ObjectId, &str> = down
            .nodes
            .iter()
            .map(|n| (n.object_id, n.class_name.as_str()))
            .collect();
        let science = |id: &ObjectId| {
            down_class
                .get(id)
                .and_then(|c| c.parse::<FrameClass>().ok())
                .is_some_and(|c| DOWNSTREAM.contains(&c))
        };
        let mut children: HashMap<ObjectId, Vec<(ObjectId, String)>> = HashMap::new();
        for e in down.edges.iter().filter(|e| science(&e.child)) {
            children
                .entry(e.parent)
                .or_default()
                .push((e.child, e.role.clone()));
        }
        // The coadds the root's products went into, and what else was
        // stacked in them: other epochs of the same sky.
        let mut coadds: Vec<ObjectId> = down
            .nodes
            .iter()
            .chain(std::iter::once(&up.nodes[0]))
            .filter(|n| n.class_name == FrameClass::CoaddedRegriddedFrame.name())
            .filter(|n| !n.is_restricted())
            .map(|n| n.object_id)
            .collect();
        coadds.sort();
        coadds.dedup();
        let mut coadd_inputs = BTreeMap::new();
        for c in coadds {
            let one = catalog.lineage(c, Direction::Up, 1).await?;
            let inputs: Vec<ObjectId> = one
                .nodes
                .iter()
                .filter(|n| n.class_name == FrameClass::RegriddedFrame.name())
                .filter(|n| !n.is_restricted())
                .map(|n| n.object_id)
                .collect();
            coadd_inputs.insert(c, inputs);
        }
        let mut ids: HashSet<ObjectId> = up
            .nodes
            .iter()
            .chain(&down.nodes)
            .filter(|n| !n.is_restricted())
            .map(|n| n.object_id)
            .collect();
        ids.extend(coadd_inputs.values().flatten().copied());
        let ids: Vec<ObjectId> = ids.into_iter().collect();
        let frames = catalog
            .frames_by_ids(&ids)
            .await?
            .into_iter()
            .map(|f| (f.target.object_id, Arc::new(FrameNode::new(f))))
            .collect();
        Ok(Graph {
            root,
            frames,
            parents,
            children,
            coadd_inputs,
            restricted,
        })
    }

    /// The frames next to `placements` (those [`Self::place`] made) that
    /// the viewer may not see, each once: what the dependency cutouts show
    /// as restricted cells. Walking up from the source's own frame and the
    /// frames placed walking up, down from it and those placed walking down.
    pub fn restricted_near(&self, placements: &[Placement]) -> Vec<Restricted> {
        let mut out: Vec<Restricted> = Vec::new();
        for p in placements {
            let directions: &[Direction] = match (&p.via, &p.role) {
                (None, _) => &[Direction::Up, Direction::Down],
                (Some(_), Some(_)) => &[Direction::Up],
                (Some(_), None) => &[Direction::Down],
            };
            for &d in directions {
                for (next, role) in self.next(p.frame.frame.target.object_id, d) {
                    let Some(&class) = self.restricted.get(next) else {
                        continue;
                    };
                    // As `place_on`: the science exposures a calibration
                    // product was made from are another pointing.
                    if p.frame.frame.class.is_calibration() && !class.is_calibration() {
                        continue;
                    }
                    if out.iter().any(|r| r.placeholder == *next) {
                        continue;
                    }
                    out.push(Restricted {
                        placeholder: *next,
                        class,
                        via: p.frame.clone(),
                        role: (d == Direction::Up).then(|| role.clone()),
                        level: p.level + 1,
                    });
                }
            }
        }
        out
    }

    /// Places `source` on every frame of the lineage; see the module doc.
    pub fn place(&self, source: &Source) -> Vec<Placement> {
        let Some(root) = self.frames.get(&self.root) else {
            return Vec::new();
        };
        let start = Placement {
            frame: root.clone(),
            x: source.x,
            y: source.y,
            det: (source.x - root.offset.0, source.y - root.offset.1),
            scale: root.scale_arcsec(),
            via: None,
            role: None,
            level: 0,
        };
        let mut out = vec![start.clone()];
        let mut seen: HashSet<(ObjectId, i64, i64)> = HashSet::new();
        seen.insert(start.key());
        self.walk(&start, source, Direction::Up, &mut out, &mut seen);
        self.walk(&start, source, Direction::Down, &mut out, &mut seen);
        out
    }

    /// The frames one step from `id` with the role of the edge: its parents
    /// walking up, its science children walking down.
    fn next(&self, id: ObjectId, direction: Direction) -> &[(ObjectId, String)] {
        let map = match direction {
            Direction::Up => &self.parents,
            Direction::Down => &self.children,
        };
        map.get(&id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Places the source on everything reachable from `start` in
    /// `direction`, breadth first, each (frame, position) once: by its
    /// shortest path and, between paths of one length, through a science
    /// frame rather than a calibration product.
    fn walk(
        &self,
        start: &Placement,
        source: &Source,
        direction: Direction,
        out: &mut Vec<Placement>,
        seen: &mut HashSet<(ObjectId, i64, i64)>,
    ) {
        let mut frontier = vec![start.clone()];
        let mut level = 0;
        while !frontier.is_empty() && level < MAX_DEPTH {
            level += 1;
            let mut reached: Vec<Placement> = Vec::new();
            for at in &frontier {
                for (next, role) in self.next(at.frame.frame.target.object_id, direction) {
                    // Not a frame: a catalogue (illumination ← photometric
                    // catalogs).
                    let Some(node) = self.frames.get(next) else {
                        continue;
                    };
                    if let Some(mut p) = self.place_on(node, at, source) {
                        // Walking down, the edge's role is the one `at`
                        // plays in `p`, not `p`'s own.
                        p.role = (direction == Direction::Up).then(|| role.clone());
                        p.level = level;
                        reached.push(p);
                    }
                }
            }
            // Stable: the walk order is kept among equals.
            reached.sort_by_key(Placement::indirect);
            frontier = reached
                .into_iter()
                .filter(|p| seen.insert(p.key()))
                .collect();
            out.extend(frontier.iter().cloned());
        }
    }

    /// Where the source falls on `node`, reached from `from`; `None` when it
    /// falls off the image or the frame is on another chip.
    fn place_on(
        &self,
        node: &Arc<FrameNode>,
        from: &Placement,
        source: &Source,
    ) -> Option<Placement> {
        let via = Some(from.frame.clone());
        if node.wcs.is_some() && from.frame.frame.class.is_calibration() {
            // A science exposure a calibration frame was built from (the
            // inputs of a fringe frame): another pointing, not this source's
            // history.
            return None;
        }
        if let Some(wcs) = &node.wcs {
            let (x, y) = wcs.sky_to_pix(source.ra, source.dec)?;
            if !(x.is_finite() && y.is_finite() && node.contains(x, y)) {
                return None;
            }
            return Some(Placement {
                frame: node.clone(),
                x,
                y,
                det: (x - node.offset.0, y - node.offset.1),
                scale: node.scale_arcsec(),
                via,
                role: None,
                level: from.level + 1,
            });
        }
        let same_chip = match (&node.frame.chip, &from.frame.frame.chip) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        };
        if !same_chip {
            return None;
        }
        let (x, y) = (from.det.0 + node.offset.0, from.det.1 + node.offset.1);
        node.contains(x, y).then(|| Placement {
            frame: node.clone(),
            x,
            y,
            det: from.det,
            // No sky WCS: its pixels are the detector's, so the scale is the
            // one of the science frame it was reached from.
            scale: from.scale,
            via,
            role: None,
            level: from.level + 1,
        })
    }

    /// The epoch sequence of a source: the regridded frames of the coadds it
    /// went into that cover it, or, without a coadd, the reduced frames of its
    /// placements; sorted by observation date.
    pub fn epochs(&self, placements: &[Placement], source: &Source) -> Vec<Placement> {
        let mut out: Vec<Placement> = Vec::new();
        let coadds: Vec<&Placement> = placements
            .iter()
            .filter(|p| p.frame.frame.class == FrameClass::CoaddedRegriddedFrame)
            .collect();
        for c in &coadds {
            let inputs = self
                .coadd_inputs
                .get(&c.frame.frame.target.object_id)
                .into_iter()
                .flatten();
            for id in inputs {
                if out.iter().any(|p| p.frame.frame.target.object_id == *id) {
                    continue;
                }
                let Some(node) = self.frames.get(id) else {
                    continue;
                };
                if let Some(p) = self.place_on(node, c, source) {
                    out.push(p);
                }
            }
        }
        if out.is_empty() {
            out = placements
                .iter()
                .filter(|p| p.frame.frame.class == FrameClass::ReducedScienceFrame)
                .cloned()
                .collect();
        }
        out.sort_by(|a, b| {
            let key = |p: &Placement| (p.frame.frame.mjd_obs, p.frame.frame.target.object_id);
            key(a)
                .partial_cmp(&key(b))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        out
    }
}

/// A source placed on one frame.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The frame.
    pub frame: Arc<FrameNode>,
    /// FITS 1-based column of the source on it.
    pub x: f64,
    /// FITS 1-based row.
    pub y: f64,
    /// Trimmed detector position (x, y).
    pub det: (f64, f64),
    /// Arcsec per pixel of this frame (or of the science frame it
    /// calibrates).
    pub scale: Option<f64>,
    /// The frame it was reached from (`None` for the source's own frame).
    pub via: Option<Arc<FrameNode>>,
    /// The role it plays in `via` (`flat`, `coldpixelmap`, …), when it was
    /// reached walking up; `None` for the source's own frame and for the
    /// products made from it (walking down).
    pub role: Option<String>,
    /// Edges from the source's own frame.
    pub level: u32,
}

impl Placement {
    /// Whether the frame entered the lineage only through another
    /// calibration product (a flat behind a cold-pixel map) rather than by
    /// an edge from a science frame (the reduced frame's own flat).
    pub fn indirect(&self) -> bool {
        self.via
            .as_ref()
            .is_some_and(|v| v.frame.class.is_calibration())
    }

    /// Identity for de-duplication: frame and position to 1/100 pixel.
    fn key(&self) -> (ObjectId, i64, i64) {
        (
            self.frame.frame.target.object_id,
            (self.x * 100.0).round() as i64,
            (self.y * 100.0).round() as i64,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_sections_give_zero_based_origins() {
        assert_eq!(section_origin("[1:512,1:512]"), Some((0.0, 0.0)));
        assert_eq!(section_origin(" [33:544, 5:516] "), Some((32.0, 4.0)));
        assert_eq!(section_origin("1:512,1:512"), None);
        assert_eq!(section_origin("[a:512,1:512]"), None);
    }
}
