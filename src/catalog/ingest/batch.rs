//! `wisecut ingest PATH…`: a pipeline's directories taken in without a
//! hand-written manifest.
//!
//! The steps: expand the paths and read what every file is (`scan`, in
//! parallel, off the async runtime); ask the catalogue what it already
//! holds (same checksums, frames that references may name, names that are
//! taken, older versions at the same place); infer classes and edges
//! (`infer`); then either explain the plan (`--explain`) or turn it into a
//! manifest and write it through the one ingest path, in one transaction.
//! Files are recorded in place under a named data root, or copied into the
//! store (`--copy`); a file outside every root is refused.

use super::infer::{
    self, Input, ItemKind, Known, KnownProduct, Override, OverrideParent, Parent, Plan,
};
use super::scan::{self, FileError};
use super::{DepRef, FrameEntry, IngestReport, Manifest, SourceListEntry};
use crate::catalog::{Catalog, CatalogError, entity};
use crate::model::privileges;
use rayon::prelude::*;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

/// Reports how many of the batch's files have been read.
pub type Progress = std::sync::Arc<dyn Fn(usize, usize) + Send + Sync>;

/// An ingest of paths.
#[derive(Clone, Default)]
pub struct PathIngest {
    /// Files, directories and glob patterns.
    pub paths: Vec<PathBuf>,
    /// A manifest (JSON or TOML) that overrides or completes the headers.
    pub manifest: Option<PathBuf>,
    /// Data roots to register (`--root NAME=DIR`).
    pub roots: Vec<(String, PathBuf)>,
    /// Register the batch's own directory as this root when its files are
    /// outside every root (`--allow-outside NAME`).
    pub allow_outside: Option<String>,
    /// Copy the files into the store instead of recording them in place.
    pub copy: bool,
    /// Ingest what can be ingested; list the failures.
    pub keep_going: bool,
    /// Catalog column mapping (`RA=ra_deg,DEC=dec_deg`).
    pub columns: Option<String>,
    /// Creator, project and privileges of the new products.
    pub creator: Option<String>,
    /// Project.
    pub project: Option<String>,
    /// Privilege level.
    pub privileges: Option<i32>,
    /// Called as files are read (the CLI's progress bar).
    pub progress: Option<Progress>,
}

/// What an ingest of paths did.
#[derive(Debug, Default)]
pub struct PathIngestOutcome {
    /// The plan it followed (after `--keep-going` dropped failures).
    pub plan: Plan,
    /// What was written.
    pub report: IngestReport,
    /// Every file that was not ingested, with why (errors, unresolved
    /// references, and products whose parent failed).
    pub failures: Vec<FileError>,
}

fn invalid(e: impl std::fmt::Display) -> CatalogError {
    CatalogError::Invalid(e.to_string())
}

/// Reads a manifest's overrides, keyed by absolute path and by file name.
fn overrides_of(
    manifest: &Manifest,
    dir: &Path,
) -> Result<HashMap<String, Override>, CatalogError> {
    let mut out = HashMap::new();
    for f in &manifest.frames {
        let class = f
            .class
            .parse()
            .map_err(|e| invalid(format!("manifest frame {}: {e}", f.key)))?;
        let key_to_path: HashMap<&str, &str> = manifest
            .frames
            .iter()
            .map(|g| (g.key.as_str(), g.path.as_str()))
            .collect();
        let deps = f
            .deps
            .iter()
            .map(|d| match (&d.key, d.object_id) {
                (Some(k), _) => Ok((
                    d.role.clone(),
                    OverrideParent::File(
                        key_to_path.get(k.as_str()).copied().unwrap_or(k).to_owned(),
                    ),
                )),
                (None, Some(id)) => Ok((d.role.clone(), OverrideParent::Object(id))),
                _ => Err(invalid(format!(
                    "manifest frame {}: a dependency names neither key nor object_id",
                    f.key
                ))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ov = Override {
            class: Some(class),
            deps,
        };
        let abs = dir.join(&f.path);
        let abs = abs.canonicalize().unwrap_or(abs);
        out.insert(abs.to_string_lossy().into_owned(), ov.clone());
        if let Some(n) = Path::new(&f.path).file_name() {
            out.insert(n.to_string_lossy().into_owned(), ov);
        }
    }
    Ok(out)
}

/// The deepest directory holding every path.
fn common_dir(paths: &[PathBuf]) -> Option<PathBuf> {
    let mut it = paths.iter();
    let mut acc = it.next()?.parent()?.to_path_buf();
    for p in it {
        while !p.starts_with(&acc) {
            acc = acc.parent()?.to_path_buf();
        }
    }
    Some(acc)
}

/// A data root's name: 1–64 letters, digits, `_`, `-` or `.`, and not one
/// of the store names frames use for themselves (`local`, `file`).
fn check_root_name(name: &str) -> Result<(), CatalogError> {
    let ok_name = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !matches!(name, "local" | "file");
    if !ok_name {
        return Err(invalid(format!(
            "data root name {name:?}: use 1–64 letters, digits, '_', '-' or '.', and not 'local' or 'file'"
        )));
    }
    Ok(())
}

impl Catalog {
    /// Registers (or confirms) a named data root. A name already bound to
    /// another directory is an error: moving a root is a deliberate act.
    pub async fn register_root(&self, name: &str, dir: &Path) -> Result<PathBuf, CatalogError> {
        check_root_name(name)?;
        let dir = dir
            .canonicalize()
            .map_err(|e| invalid(format!("data root {name}: {}: {e}", dir.display())))?;
        if !dir.is_dir() {
            return Err(invalid(format!(
                "data root {name}: {} is not a directory",
                dir.display()
            )));
        }
        match self.data_roots().get(name) {
            Some(d) if *d == dir => return Ok(dir),
            Some(d) => {
                return Err(invalid(format!(
                    "data root {name} is already {}; pick another name for {}",
                    d.display(),
                    dir.display()
                )));
            }
            None => {}
        }
        entity::data_root::Entity::insert(entity::data_root::ActiveModel {
            name: sea_orm::Set(name.to_owned()),
            path: sea_orm::Set(dir.to_string_lossy().into_owned()),
            created_at: sea_orm::Set(chrono::Utc::now()),
        })
        .exec(self.db())
        .await?;
        self.reload_roots().await?;
        Ok(dir)
    }

    /// Registers data root `name` at `location` (a directory or a remote
    /// store's URL), or moves it there: its frames are then read from the
    /// new location under the same relative paths.
    pub async fn set_data_root(&self, name: &str, location: &str) -> Result<String, CatalogError> {
        check_root_name(name)?;
        let path = match crate::stores::Location::parse(location).map_err(invalid)? {
            crate::stores::Location::Url(url) => url.trim_end_matches('/').to_owned(),
            crate::stores::Location::Dir(dir) => {
                let dir = dir
                    .canonicalize()
                    .map_err(|e| invalid(format!("data root {name}: {}: {e}", dir.display())))?;
                if !dir.is_dir() {
                    return Err(invalid(format!(
                        "data root {name}: {} is not a directory",
                        dir.display()
                    )));
                }
                dir.to_string_lossy().into_owned()
            }
        };
        let row = entity::data_root::ActiveModel {
            name: sea_orm::Set(name.to_owned()),
            path: sea_orm::Set(path.clone()),
            created_at: sea_orm::Set(chrono::Utc::now()),
        };
        entity::data_root::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(entity::data_root::Column::Name)
                    .update_column(entity::data_root::Column::Path)
                    .to_owned(),
            )
            .exec(self.db())
            .await?;
        // The root's objects are other objects now: what `root verify`
        // recorded of the old ones says nothing about them.
        entity::frame::Entity::update_many()
            .col_expr(
                entity::frame::Column::StoreEtag,
                sea_orm::sea_query::Expr::value(Option::<String>::None),
            )
            .filter(entity::frame::Column::Store.eq(name))
            .exec(self.db())
            .await?;
        self.reload_roots().await?;
        Ok(path)
    }

    /// The files of data root `name` after object id `after`, at most
    /// `n`, in object-id order: (object id, relative path, size, SHA-256).
    pub async fn frame_files_in_root(
        &self,
        name: &str,
        after: i64,
        n: u64,
    ) -> Result<Vec<(i64, String, i64, String)>, CatalogError> {
        use sea_orm::{QueryOrder, QuerySelect};
        Ok(entity::frame::Entity::find()
            .select_only()
            .columns([
                entity::frame::Column::ObjectId,
                entity::frame::Column::Path,
                entity::frame::Column::FileSize,
                entity::frame::Column::Checksum,
            ])
            .filter(entity::frame::Column::Store.eq(name))
            .filter(entity::frame::Column::ObjectId.gt(after))
            .order_by_asc(entity::frame::Column::ObjectId)
            .limit(n)
            .into_tuple()
            .all(self.db())
            .await?)
    }

    /// Records (or clears) the ETag of a frame's object verified against
    /// its ingest SHA-256.
    pub async fn set_store_etag(
        &self,
        object_id: i64,
        etag: Option<&str>,
    ) -> Result<(), CatalogError> {
        entity::frame::Entity::update_many()
            .col_expr(
                entity::frame::Column::StoreEtag,
                sea_orm::sea_query::Expr::value(etag.map(str::to_owned)),
            )
            .filter(entity::frame::Column::ObjectId.eq(object_id))
            .exec(self.db())
            .await?;
        Ok(())
    }

    /// What the catalogue holds that the batch's files may be or name.
    async fn known_for(&self, inputs: &[Input]) -> Result<Known, CatalogError> {
        let mut known = Known::default();
        let sums: Vec<String> = inputs.iter().map(|i| i.checksum.clone()).collect();
        for chunk in sums.chunks(500) {
            for f in entity::frame::Entity::find()
                .filter(entity::frame::Column::Checksum.is_in(chunk.to_vec()))
                .all(self.db())
                .await?
            {
                known.by_checksum.insert(
                    f.checksum.clone(),
                    KnownProduct {
                        object_id: f.object_id,
                        filename: f.filename,
                        class: f.frame_class,
                    },
                );
            }
            for l in entity::source_list::Entity::find()
                .filter(entity::source_list::Column::Checksum.is_in(chunk.to_vec()))
                .all(self.db())
                .await?
            {
                if let Some(sum) = l.checksum.clone() {
                    known.by_checksum.insert(
                        sum,
                        KnownProduct {
                            object_id: l.object_id,
                            filename: l.name,
                            class: crate::model::SOURCE_LIST_CLASS.into(),
                        },
                    );
                }
            }
        }
        let names: Vec<String> = infer::reference_names(inputs);
        for chunk in names.chunks(500) {
            let frames = entity::frame::Entity::find()
                .filter(entity::frame::Column::Filename.is_in(chunk.to_vec()))
                .all(self.db())
                .await?;
            let ids: Vec<i64> = frames.iter().map(|f| f.object_id).collect();
            let superseded: HashSet<i64> = entity::process_target::Entity::find()
                .filter(entity::process_target::Column::ObjectId.is_in(ids))
                .filter(entity::process_target::Column::SupersededBy.is_not_null())
                .all(self.db())
                .await?
                .into_iter()
                .map(|t| t.object_id)
                .collect();
            for f in frames
                .into_iter()
                .filter(|f| !superseded.contains(&f.object_id))
            {
                known.add_frame(KnownProduct {
                    object_id: f.object_id,
                    filename: f.filename,
                    class: f.frame_class,
                });
            }
        }
        Ok(known)
    }

    /// Reads the paths and infers the plan, writing nothing.
    pub async fn plan_paths(&self, req: &PathIngest) -> Result<Plan, CatalogError> {
        let paths = req.paths.clone();
        let progress = req.progress.clone();
        let done = std::sync::atomic::AtomicUsize::new(0);
        // Walking directories, reading headers and hashing are file I/O:
        // all of it on a blocking thread, none on the async executor.
        let scanned = tokio::task::spawn_blocking(move || {
            let files = scan::expand(&paths)?;
            let total = files.len();
            let scanned = files
                .par_iter()
                .map(|(p, explicit)| {
                    let file = scan::scan(p, *explicit)?;
                    let (checksum, _) = crate::file_identity::sha256(p).map_err(|e| FileError {
                        path: p.clone(),
                        message: e.to_string(),
                    })?;
                    if let Some(report) = &progress {
                        report(
                            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
                            total,
                        );
                    }
                    Ok(Input { file, checksum })
                })
                .collect::<Vec<Result<Input, FileError>>>();
            Ok::<_, FileError>(scanned)
        })
        .await
        .map_err(|e| invalid(format!("ingest worker failed: {e}")))?
        .map_err(invalid)?;
        let mut inputs = Vec::new();
        let mut read_errors = Vec::new();
        for r in scanned {
            match r {
                Ok(i) => inputs.push(i),
                Err(e) => read_errors.push(e),
            }
        }
        let overrides = match &req.manifest {
            Some(m) => {
                let manifest = Manifest::load(m)?;
                let dir = m
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| PathBuf::from("."));
                overrides_of(&manifest, &dir)?
            }
            None => HashMap::new(),
        };
        let known = self.known_for(&inputs).await?;
        let mut plan = infer::infer(inputs, &known, &overrides);
        plan.errors.splice(0..0, read_errors);
        Ok(plan)
    }

    /// Ingests the paths: the plan, placed under data roots (or copied into
    /// `data_dir`), written in one transaction. Without `keep_going` any
    /// error or unresolved reference fails the whole batch before a write.
    pub async fn ingest_paths(
        &self,
        req: &PathIngest,
        data_dir: &Path,
    ) -> Result<PathIngestOutcome, CatalogError> {
        let mut plan = self.plan_paths(req).await?;
        let mut failures: Vec<FileError> = plan
            .errors
            .iter()
            .chain(&plan.unresolved)
            .cloned()
            .collect();
        if !failures.is_empty() {
            if !req.keep_going {
                return Err(invalid(format!(
                    "nothing was ingested: {} file{} cannot be ({}); fix them, or use --keep-going to ingest the rest:\n{}",
                    failures.len(),
                    if failures.len() == 1 { "" } else { "s" },
                    "errors and unresolved references",
                    failures
                        .iter()
                        .map(|e| format!("  {e}"))
                        .collect::<Vec<_>>()
                        .join("\n")
                )));
            }
            failures.extend(plan.drop_failed());
        }
        // Roots are registered once the batch is known to be good, so a
        // refused batch leaves the catalogue as it was.
        for (name, dir) in &req.roots {
            self.register_root(name, dir).await?;
        }
        if plan.items.is_empty() {
            return Ok(PathIngestOutcome {
                plan,
                report: IngestReport::default(),
                failures,
            });
        }
        // Where each file will be recorded.
        let data_dir = data_dir
            .canonicalize()
            .unwrap_or_else(|_| data_dir.to_path_buf());
        let mut roots: Vec<(String, PathBuf)> = self.data_roots().into_iter().collect();
        roots.push(("local".into(), data_dir.clone()));
        // The deepest root wins (a root inside another).
        roots.sort_by_key(|r| std::cmp::Reverse(r.1.components().count()));
        let place = |p: &Path, roots: &[(String, PathBuf)]| {
            roots.iter().find_map(|(n, d)| {
                p.strip_prefix(d)
                    .ok()
                    .map(|rel| (n.clone(), rel.to_string_lossy().into_owned()))
            })
        };
        let mut copies: Vec<PathBuf> = Vec::new();
        let mut placements: Vec<(String, String)> = Vec::with_capacity(plan.items.len());
        if req.copy {
            let files: Vec<(PathBuf, String)> = plan
                .items
                .iter()
                .map(|it| {
                    (
                        it.path.clone(),
                        format!("ingested/{}/{}", &it.checksum[..12], it.name),
                    )
                })
                .collect();
            placements = files
                .iter()
                .map(|(_, rel)| ("local".to_owned(), rel.clone()))
                .collect();
            // Copies can be gigabytes: made on a blocking thread.
            let dir = data_dir.clone();
            copies = tokio::task::spawn_blocking(move || copy_into_store(&files, &dir))
                .await
                .map_err(|e| invalid(format!("copy worker failed: {e}")))??;
        } else {
            let outside: Vec<&Path> = plan
                .items
                .iter()
                .filter(|it| place(&it.path, &roots).is_none())
                .map(|it| it.path.as_path())
                .collect();
            if !outside.is_empty() {
                match &req.allow_outside {
                    Some(name) => {
                        // The root is what the user named: the directories
                        // given (a file stands for its directory).
                        let named: Vec<PathBuf> = req
                            .paths
                            .iter()
                            .filter_map(|p| p.canonicalize().ok())
                            // `common_dir` takes parents: a named directory
                            // stands in as a child of itself.
                            .map(|p| if p.is_dir() { p.join("-") } else { p })
                            .chain(outside.iter().map(|p| p.to_path_buf()))
                            .collect();
                        let dir = common_dir(&named)
                            .ok_or_else(|| invalid("the files have no common directory"))?;
                        let dir = self.register_root(name, &dir).await?;
                        roots.insert(0, (name.clone(), dir));
                    }
                    None => {
                        return Err(invalid(format!(
                            "nothing was ingested: {} file{} lie outside every data root ({}), e.g. {}; \
                             register one with --root NAME=DIR, name one with --allow-outside NAME, \
                             or use --copy to copy them into the store",
                            outside.len(),
                            if outside.len() == 1 { "" } else { "s" },
                            roots
                                .iter()
                                .map(|(n, d)| format!("{n} = {}", d.display()))
                                .collect::<Vec<_>>()
                                .join(", "),
                            outside[0].display()
                        )));
                    }
                }
            }
            for it in &plan.items {
                placements.push(place(&it.path, &roots).ok_or_else(|| invalid("unplaced file"))?);
            }
        }
        let result = self.write_plan(req, &plan, placements).await;
        if result.is_err() {
            remove_copies(&copies);
        }
        let report = result?;
        Ok(PathIngestOutcome {
            plan,
            report,
            failures,
        })
    }

    /// Turns the plan into a manifest (names, versions) and writes it.
    async fn write_plan(
        &self,
        req: &PathIngest,
        plan: &Plan,
        placements: Vec<(String, String)>,
    ) -> Result<IngestReport, CatalogError> {
        let key = |i: usize| plan.items[i].path.to_string_lossy().into_owned();
        // Names: a file's own name unless another product has it; an older
        // version at the same place gives its name up.
        let names: Vec<String> = plan.items.iter().map(|i| i.name.clone()).collect();
        let mut taken: HashMap<String, entity::frame::Model> = HashMap::new();
        for chunk in names.chunks(500) {
            for f in entity::frame::Entity::find()
                .filter(entity::frame::Column::Filename.is_in(chunk.to_vec()))
                .all(self.db())
                .await?
            {
                taken.insert(f.filename.clone(), f);
            }
        }
        let mut used: HashSet<String> = HashSet::new();
        let mut m = Manifest {
            creator: req.creator.clone().unwrap_or_else(|| "ingest".into()),
            project: req.project.clone().unwrap_or_else(|| "default".into()),
            privileges: req.privileges.unwrap_or(privileges::PUBLIC),
            ..Default::default()
        };
        for (i, it) in plan.items.iter().enumerate() {
            let placement = placements[i].clone();
            let deps: Vec<DepRef> = it
                .edges
                .iter()
                .map(|e| match &e.parent {
                    Parent::Batch(j) => DepRef::key(&e.role, &key(*j)),
                    Parent::Catalogue(k) => DepRef {
                        role: e.role.clone(),
                        key: None,
                        object_id: Some(k.object_id),
                    },
                })
                .collect();
            match &it.kind {
                ItemKind::Frame { class, hdu } => {
                    let mut entry = FrameEntry::new(&key(i), class.name(), &key(i), deps);
                    entry.hdu = Some(*hdu as i32);
                    // The same place and class, another content: a new version.
                    let previous = entity::frame::Entity::find()
                        .filter(entity::frame::Column::Store.eq(placement.0.clone()))
                        .filter(entity::frame::Column::Path.eq(placement.1.clone()))
                        .filter(entity::frame::Column::FrameClass.eq(class.name()))
                        .all(self.db())
                        .await?;
                    let mut current = None;
                    for f in previous {
                        let t = entity::process_target::Entity::find_by_id(f.object_id)
                            .one(self.db())
                            .await?;
                        if t.is_some_and(|t| t.superseded_by.is_none()) {
                            current = Some(f);
                        }
                    }
                    let mut name = it.name.clone();
                    match (&current, taken.get(&name)) {
                        (Some(old), _) if old.filename == name => {
                            entry.supersedes = Some((
                                old.object_id,
                                format!("{};{}", old.filename, old.object_id),
                            ));
                        }
                        (Some(old), _) => {
                            entry.supersedes = Some((old.object_id, old.filename.clone()));
                            if taken.contains_key(&name) {
                                name = placement.1.clone();
                            }
                        }
                        (None, Some(_)) => name = placement.1.clone(),
                        (None, None) => {}
                    }
                    if used.contains(&name) {
                        name = placement.1.clone();
                    }
                    if (taken.contains_key(&name) && entry.supersedes.is_none() && name != it.name)
                        || !used.insert(name.clone())
                    {
                        return Err(invalid(format!(
                            "{}: the catalogue already has a frame named {name:?}",
                            it.path.display()
                        )));
                    }
                    if name != it.name {
                        entry.filename = Some(name);
                    }
                    entry.placement = Some(placement);
                    m.frames.push(entry);
                }
                ItemKind::SourceList { hdu, .. } => {
                    let frame = it.edges.iter().find(|e| e.role == "frame");
                    let (frame_key, frame_object_id) = match frame.map(|e| &e.parent) {
                        Some(Parent::Batch(j)) => (key(*j), None),
                        Some(Parent::Catalogue(k)) => (String::new(), Some(k.object_id)),
                        None => {
                            return Err(invalid(format!(
                                "{}: no frame for the catalog",
                                it.path.display()
                            )));
                        }
                    };
                    m.source_lists.push(SourceListEntry {
                        key: key(i),
                        name: it.name.clone(),
                        frame: frame_key,
                        frame_object_id,
                        path: key(i),
                        hdu: Some(*hdu as i32),
                        columns: req.columns.clone(),
                        placement: Some(placement),
                        checksum: Some(it.checksum.clone()),
                        ..Default::default()
                    });
                }
            }
        }
        self.ingest_manifest(&m, Path::new("/"), Path::new("/"))
            .await
    }
}

/// Copies `(source, path in the store)` pairs into `data_dir`, each through
/// a `.part` file renamed when complete; returns the files it made (a file
/// already there is the same content: its name holds the checksum). On a
/// failure the copies made so far are removed again.
fn copy_into_store(
    files: &[(PathBuf, String)],
    data_dir: &Path,
) -> Result<Vec<PathBuf>, CatalogError> {
    let mut copies = Vec::new();
    for (src, rel) in files {
        let dest = data_dir.join(rel);
        if dest.exists() {
            continue;
        }
        let copied = (|| {
            std::fs::create_dir_all(dest.parent().unwrap_or(data_dir))?;
            let tmp = dest.with_extension("part");
            std::fs::copy(src, &tmp)?;
            std::fs::rename(&tmp, &dest)
        })();
        if let Err(e) = copied {
            remove_copies(&copies);
            return Err(invalid(format!(
                "copying {} into the store: {e}",
                src.display()
            )));
        }
        copies.push(dest);
    }
    Ok(copies)
}

fn remove_copies(copies: &[PathBuf]) {
    for c in copies {
        let _ = std::fs::remove_file(c);
        if let Some(d) = c.parent() {
            let _ = std::fs::remove_dir(d);
        }
    }
}
