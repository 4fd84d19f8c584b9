//! The catalogue: wisecut's database of frames, catalogs and their lineage.
//!
//! sea-orm entities stay inside this module; callers get [`crate::model`]
//! types. Every query must run on SQLite and PostgreSQL: raw SQL is written
//! once with PostgreSQL's `$n` placeholders and rewritten to SQLite's `?n`
//! (see [`Catalog::stmt`]), and only portable SQL (`WITH RECURSIVE`, plain
//! joins and aggregates) is used.

pub mod access;
pub mod associate;
pub mod browse;
pub mod entity;
pub mod ingest;
pub mod job_records;
pub mod lineage;
pub mod sky_index;
pub mod sources;
pub mod tap_query;

use crate::ids::{ObjectId, Slid};
use crate::imaging::wcs::WcsKeywords;
use crate::model::{
    AssocType, AssociateListInfo, Frame, FrameClass, ProcessTarget, SourceListInfo,
};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr,
    EntityTrait, QueryFilter, Statement, Value,
};
use std::time::Duration;

/// HEALPix depth of the `source.hpx` index: cells of about 3.2 arcsec, small
/// enough that a cone of a few arcsec touches few cells, large enough that a
/// degree-wide cone still becomes a short list of index ranges.
pub const HPX_DEPTH: u8 = 16;

/// Errors of the catalogue layer.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The requested object does not exist.
    #[error("{what} {id} does not exist")]
    NotFound {
        /// What kind of object was asked for.
        what: &'static str,
        /// The id that was asked for.
        id: String,
    },
    /// Input that cannot be ingested (names the file or entry at fault).
    #[error("{0}")]
    Invalid(String),
    /// A query the caller must narrow or change (names the parameter).
    #[error("{0}")]
    Query(String),
    /// A database error.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
}

/// Longest wait for a database connection before a request is answered
/// 503 (the database is down or every connection is busy).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

impl CatalogError {
    /// Whether the database could not be reached (down, restarting, every
    /// connection lost or busy) rather than refusing the query: the web edge
    /// answers these 503 with `Retry-After`, not 500.
    pub fn unavailable(&self) -> bool {
        let CatalogError::Db(e) = self else {
            return false;
        };
        let runtime = match e {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => return true,
            DbErr::Exec(r) | DbErr::Query(r) => r,
            _ => return false,
        };
        let sea_orm::RuntimeErr::SqlxError(x) = runtime else {
            return false;
        };
        use sea_orm::sqlx::Error as X;
        match &**x {
            X::Io(_) | X::PoolTimedOut | X::PoolClosed | X::Tls(_) | X::Protocol(_) => true,
            X::WorkerCrashed => true,
            // SQLSTATE class 08 (connection exception) and 57 (operator
            // intervention: shutdown, terminated backend).
            X::Database(d) => d
                .code()
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
            _ => false,
        }
    }
}

/// What a client is told when the database cannot be reached.
pub fn unavailable_message(e: &CatalogError) -> String {
    tracing::warn!("database unavailable: {e}");
    "the database is unreachable or restarting; retry in a few seconds \
     (the server reconnects by itself)"
        .to_owned()
}

/// How long a server trusts the data roots it read: a root moved by
/// another process (`wisecut root set`) is followed within this time.
pub const ROOTS_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The named data roots as last read, and when.
#[derive(Debug, Default)]
struct Roots {
    by_name: std::collections::HashMap<String, std::path::PathBuf>,
    read_at: Option<std::time::Instant>,
}

/// A handle on the catalogue database; cheap to clone.
#[derive(Clone, Debug)]
pub struct Catalog {
    db: DatabaseConnection,
    /// Named data roots (`data_root`) and when they were read: read again
    /// when a frame names a root not seen yet (an ingest in another process
    /// added it) and once they are [`ROOTS_TTL`] old (another process's
    /// `wisecut root set` moved one).
    roots: std::sync::Arc<std::sync::RwLock<Roots>>,
    /// Whose view of the catalogue this is (`None`: the system's, which
    /// sees everything); see [`access`].
    viewer: Option<std::sync::Arc<access::Viewer>>,
}

/// The number of rows of one table category, for the home page.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CategoryCount {
    /// Category name (a frame class, `SourceList`, `Source`, …).
    pub category: String,
    /// Number of rows.
    pub count: i64,
}

/// The valid frames on the sky of one grid target, class and filter,
/// counted: what the RGB maker can be asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFrames {
    /// The grid target (`OBJECT`).
    pub object: String,
    /// The frame class.
    pub class: FrameClass,
    /// The filter, when the frames have one.
    pub filter: Option<String>,
    /// Number of valid frames.
    pub count: i64,
}

impl Catalog {
    /// Connects to `url` (`sqlite://path?mode=rwc` or `postgres://…`) and
    /// brings the schema up to date.
    pub async fn connect(url: &str) -> Result<Self, CatalogError> {
        let mut opts = ConnectOptions::new(url.to_owned());
        // A connection the database dropped (a restart, a failover,
        // `pg_terminate_backend`) is noticed by a ping before it is handed
        // out and replaced, so the server recovers without a restart; and a
        // database that is down fails a request after a bounded wait (then
        // answered 503, see `CatalogError::unavailable`) instead of holding
        // it for the pool's default 30 s.
        opts.sqlx_logging(false)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .test_before_acquire(true)
            .max_connections(16);
        let db = Database::connect(opts).await?;
        if db.get_database_backend() == DbBackend::Sqlite {
            // WAL lets readers proceed while an ingest writes, and the busy
            // timeout turns brief lock contention into waiting, not errors.
            db.execute_unprepared("PRAGMA journal_mode=WAL; PRAGMA busy_timeout=10000;")
                .await?;
        }
        // All pending migrations in one transaction: SQLite and PostgreSQL
        // both take DDL in transactions, so a process killed mid-migration
        // leaves the schema as it was, not half changed (a rerun would then
        // meet a table or column that already exists).
        let txn = sea_orm::TransactionTrait::begin(&db).await?;
        Migrator::up(&txn, None).await?;
        txn.commit().await?;
        let catalog = Self {
            db,
            roots: Default::default(),
            viewer: None,
        };
        catalog.reload_roots().await?;
        // Frames from before the sky index (or written without it) are
        // indexed before anything queries by position.
        let indexed = catalog.backfill_sky_index().await?;
        if indexed > 0 {
            tracing::info!(
                frames = indexed,
                "sky index: indexed frames that had no cells"
            );
        }
        Ok(catalog)
    }

    /// Closes the connection pool (so a SQLite file can be moved).
    pub async fn close(self) -> Result<(), CatalogError> {
        self.db.close().await?;
        Ok(())
    }

    /// The underlying connection, for the catalogue's own submodules.
    pub(crate) fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which database this is.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// The largest value of an id column (`slid`, `alid`), 0 for an empty
    /// table: what the next list number is counted from, inside the
    /// writer's transaction.
    pub(crate) async fn max_id(
        txn: &impl ConnectionTrait,
        table: &'static str,
        column: &'static str,
    ) -> Result<i64, CatalogError> {
        let sql = format!("SELECT COALESCE(MAX({column}), 0) AS m FROM {table}");
        Ok(txn
            .query_one_raw(Self::stmt(txn.get_database_backend(), &sql, vec![]))
            .await?
            .map(|r| r.try_get::<i64>("", "m"))
            .transpose()?
            .unwrap_or(0))
    }

    /// Builds a statement from SQL written with `$n` placeholders.
    pub(crate) fn stmt(backend: DbBackend, sql: &str, values: Vec<Value>) -> Statement {
        let sql = match backend {
            // SQLite understands numbered `?n` parameters with the same
            // meaning as PostgreSQL's `$n`, so one SQL text serves both.
            DbBackend::Sqlite => sql.replace('$', "?"),
            _ => sql.to_owned(),
        };
        Statement::from_sql_and_values(backend, sql, values)
    }

    /// Row counts per table category: every frame class (zero included),
    /// source lists, sources, associate lists and associations.
    pub async fn category_counts(&self) -> Result<Vec<CategoryCount>, CatalogError> {
        let b = self.backend();
        let rows = self
            .db
            .query_all_raw(Self::stmt(
                b,
                &format!(
                    "SELECT f.frame_class, COUNT(*) AS n FROM frame f \
                     JOIN process_target t ON t.object_id = f.object_id \
                     WHERE {} GROUP BY f.frame_class",
                    self.visible("t")
                ),
                vec![],
            ))
            .await?;
        let mut by_class = std::collections::HashMap::new();
        for r in rows {
            by_class.insert(
                r.try_get::<String>("", "frame_class")?,
                r.try_get::<i64>("", "n")?,
            );
        }
        let mut out: Vec<CategoryCount> = FrameClass::ALL
            .iter()
            .map(|c| CategoryCount {
                category: c.name().to_owned(),
                count: by_class.get(c.name()).copied().unwrap_or(0),
            })
            .collect();
        // Sources are counted from their lists' `n_sources` (a source is
        // visible exactly when its list is): a count of a hundred million
        // source rows would take minutes on every home page.
        for (category, table, count) in [
            ("SourceList", "source_list", "COUNT(*)"),
            ("Source", "source_list", "COALESCE(SUM(x.n_sources), 0)"),
            ("AssociateList", "associate_list", "COUNT(*)"),
            ("Association", "association", "COUNT(*)"),
        ] {
            let row = self
                .db
                .query_one_raw(Self::stmt(
                    b,
                    &format!(
                        "SELECT CAST({count} AS BIGINT) AS n FROM {table} x WHERE {}",
                        // The tables' own rule: the counts are what they show.
                        self.row_visibility(table, "x")
                            .unwrap_or_else(|| "1=1".to_owned())
                    ),
                    vec![],
                ))
                .await?
                .ok_or_else(|| CatalogError::Invalid(format!("no count for {table}")))?;
            out.push(CategoryCount {
                category: category.to_owned(),
                count: row.try_get::<i64>("", "n")?,
            });
        }
        Ok(out)
    }

    /// The creation dates of the oldest and the newest object of the
    /// archive (`None` when it is empty): when its content began and when
    /// it last changed, for the registry record (`/vo/resource`).
    pub async fn creation_span(
        &self,
    ) -> Result<Option<(chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>)>, CatalogError>
    {
        use entity::process_target::{Column, Entity};
        use sea_orm::QueryOrder;
        let first = Entity::find()
            .filter(self.visible_cond("process_target"))
            .order_by_asc(Column::CreationDate)
            .one(&self.db)
            .await?;
        let last = Entity::find()
            .filter(self.visible_cond("process_target"))
            .order_by_desc(Column::CreationDate)
            .one(&self.db)
            .await?;
        Ok(first
            .zip(last)
            .map(|(f, l)| (f.creation_date, l.creation_date)))
    }

    /// The grid targets of valid frames that have a sky WCS, per class and
    /// filter, ordered by target, class and filter.
    pub async fn sky_targets(&self) -> Result<Vec<TargetFrames>, CatalogError> {
        let rows = self
            .db
            .query_all_raw(Self::stmt(
                self.backend(),
                &format!(
                    "SELECT f.object, f.frame_class, f.filter, COUNT(*) AS n \
                     FROM frame f JOIN process_target t ON t.object_id = f.object_id \
                     WHERE f.object IS NOT NULL AND f.wcs IS NOT NULL AND t.is_valid > 0 \
                     AND {} \
                     GROUP BY f.object, f.frame_class, f.filter \
                     ORDER BY f.object, f.frame_class, f.filter",
                    self.visible("t")
                ),
                vec![],
            ))
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            // Classes this build does not know are not offered.
            let Ok(class) = r.try_get::<String>("", "frame_class")?.parse() else {
                continue;
            };
            out.push(TargetFrames {
                object: r.try_get("", "object")?,
                class,
                filter: r.try_get("", "filter")?,
                count: r.try_get("", "n")?,
            });
        }
        Ok(out)
    }

    /// The process-target row of an object.
    pub async fn process_target(&self, id: ObjectId) -> Result<ProcessTarget, CatalogError> {
        entity::process_target::Entity::find_by_id(id.0)
            .filter(self.visible_cond("process_target"))
            .one(&self.db)
            .await?
            .map(target_from_model)
            .ok_or_else(|| CatalogError::NotFound {
                what: "object",
                id: id.to_string(),
            })
    }

    /// A frame by object id.
    pub async fn frame(&self, id: ObjectId) -> Result<Frame, CatalogError> {
        let f = entity::frame::Entity::find_by_id(id.0)
            .filter(self.visible_cond("frame"))
            .one(&self.db)
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what: "frame",
                id: id.to_string(),
            })?;
        let t = self.process_target(id).await?;
        self.frame_from_models(t, f).await
    }

    /// A frame by its unique file name.
    pub async fn frame_by_filename(&self, filename: &str) -> Result<Frame, CatalogError> {
        let f = entity::frame::Entity::find()
            .filter(entity::frame::Column::Filename.eq(filename))
            .filter(self.visible_cond("frame"))
            .one(&self.db)
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what: "frame",
                id: filename.to_owned(),
            })?;
        let t = self.process_target(ObjectId(f.object_id)).await?;
        self.frame_from_models(t, f).await
    }

    /// The first frame (by object id) of the most processed class that has
    /// one `on_sky` accepts: a coadd when there is one — the frame examples
    /// and default views show.
    pub async fn most_processed_frame(
        &self,
        on_sky: impl Fn(&Frame) -> bool,
    ) -> Result<Option<Frame>, CatalogError> {
        for c in FrameClass::ALL.into_iter().rev() {
            if let Some(f) = self.frames_of_class(c).await?.into_iter().find(&on_sky) {
                return Ok(Some(f));
            }
        }
        Ok(None)
    }

    /// All frames of one class, ordered by object id.
    pub async fn frames_of_class(&self, class: FrameClass) -> Result<Vec<Frame>, CatalogError> {
        let frames = entity::frame::Entity::find()
            .filter(entity::frame::Column::FrameClass.eq(class.name()))
            .all(&self.db)
            .await?;
        self.with_targets(frames).await
    }

    /// Frames of `classes` (all when empty) visible to this viewer, in
    /// object-id order, keeping those `keep` accepts until more than
    /// `limit` are kept (then `limit` + 1 are returned): a query without a
    /// position reads the frame table in pages of 1000 and stops once its
    /// answer is full, so its memory follows the answer, not the survey.
    pub async fn frames_until(
        &self,
        classes: &[FrameClass],
        keep: impl Fn(&Frame) -> bool,
        limit: usize,
    ) -> Result<Vec<Frame>, CatalogError> {
        use sea_orm::{QueryOrder, QuerySelect};
        let mut kept = Vec::new();
        let mut after = i64::MIN;
        loop {
            let mut q = entity::frame::Entity::find()
                .filter(entity::frame::Column::ObjectId.gt(after))
                .order_by_asc(entity::frame::Column::ObjectId)
                .limit(1000);
            if !classes.is_empty() && classes.len() < FrameClass::ALL.len() {
                q = q.filter(
                    entity::frame::Column::FrameClass.is_in(classes.iter().map(|c| c.name())),
                );
            }
            let page = q.all(&self.db).await?;
            let Some(last) = page.last() else { break };
            after = last.object_id;
            kept.extend(self.with_targets(page).await?.into_iter().filter(&keep));
            if kept.len() > limit {
                break;
            }
        }
        // At most one more than asked: enough to tell the caller it
        // overflowed.
        kept.truncate(limit.saturating_add(1));
        Ok(kept)
    }

    /// Frames whose sky bounding box contains (`ra`, `dec`), optionally of
    /// one class and filter, ordered by object id. The box is a superset of
    /// the footprint; callers that need exact coverage test the WCS.
    pub async fn frames_covering(
        &self,
        ra: f64,
        dec: f64,
        class: Option<FrameClass>,
        filter: Option<&str>,
    ) -> Result<Vec<Frame>, CatalogError> {
        use entity::frame::Column as C;
        use sea_orm::Condition;
        use sea_orm::sea_query::{Expr, ExprTrait};
        let ra = ra.rem_euclid(360.0);
        // A box that crosses RA = 0 has ra_min > ra_max.
        let in_ra = Condition::any()
            .add(
                Condition::all()
                    .add(Expr::col(C::RaMin).lte(Expr::col(C::RaMax)))
                    .add(C::RaMin.lte(ra))
                    .add(C::RaMax.gte(ra)),
            )
            .add(
                Condition::all()
                    .add(Expr::col(C::RaMin).gt(Expr::col(C::RaMax)))
                    .add(Condition::any().add(C::RaMin.lte(ra)).add(C::RaMax.gte(ra))),
            );
        // The sky index narrows the frames to the few that share the
        // position's HEALPix cell; the box test then runs on those alone.
        let cell = sky_index::point_cell(ra, dec);
        let mut q = entity::frame::Entity::find()
            .filter(Expr::cust(format!(
                "\"frame\".\"object_id\" IN (SELECT frame_id FROM frame_cell WHERE cell = {cell})"
            )))
            .filter(C::DecMin.lte(dec))
            .filter(C::DecMax.gte(dec))
            .filter(in_ra);
        if let Some(c) = class {
            q = q.filter(C::FrameClass.eq(c.name()));
        }
        if let Some(f) = filter {
            q = q.filter(C::Filter.eq(f));
        }
        let frames = q.all(&self.db).await?;
        self.with_targets(frames).await
    }

    /// Frames by object id (ids that are not frames are left out), ordered
    /// by object id.
    pub async fn frames_by_ids(&self, ids: &[ObjectId]) -> Result<Vec<Frame>, CatalogError> {
        let mut frames = Vec::with_capacity(ids.len());
        // Bounded IN lists: SQLite allows at most 32766 bound parameters.
        for chunk in ids.chunks(1000) {
            frames.extend(
                entity::frame::Entity::find()
                    .filter(entity::frame::Column::ObjectId.is_in(chunk.iter().map(|i| i.0)))
                    .all(&self.db)
                    .await?,
            );
        }
        self.with_targets(frames).await
    }

    /// An AssociateList by ALID.
    pub async fn associate_list(
        &self,
        alid: crate::ids::Alid,
    ) -> Result<AssociateListInfo, CatalogError> {
        let al = entity::associate_list::Entity::find()
            .filter(entity::associate_list::Column::Alid.eq(alid.0))
            .filter(self.visible_cond("associate_list"))
            .one(&self.db)
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what: "AssociateList ALID",
                id: alid.to_string(),
            })?;
        self.associate_list_info(al).await
    }

    /// The members (SLID, SID) of the given associations of one list, by
    /// AID then SLID.
    pub async fn association_members(
        &self,
        alid: crate::ids::Alid,
        aids: &[crate::ids::Aid],
    ) -> Result<Vec<(crate::ids::Aid, Slid, crate::ids::Sid)>, CatalogError> {
        use entity::association::Column as C;
        let mut out = Vec::new();
        for chunk in aids.chunks(1000) {
            let rows = entity::association::Entity::find()
                .filter(C::Alid.eq(alid.0))
                .filter(self.visible_list_cond())
                .filter(C::Aid.is_in(chunk.iter().map(|a| a.0)))
                .all(&self.db)
                .await?;
            out.extend(
                rows.into_iter()
                    .map(|r| (crate::ids::Aid(r.aid), Slid(r.slid), crate::ids::Sid(r.sid))),
            );
        }
        out.sort();
        Ok(out)
    }

    /// Frame rows joined with their process targets, ordered by object id
    /// (one query for all targets).
    async fn with_targets(
        &self,
        frames: Vec<entity::frame::Model>,
    ) -> Result<Vec<Frame>, CatalogError> {
        let ids: Vec<i64> = frames.iter().map(|f| f.object_id).collect();
        let targets = entity::process_target::Entity::find()
            .filter(entity::process_target::Column::ObjectId.is_in(ids))
            .filter(self.visible_cond("process_target"))
            .all(&self.db)
            .await?;
        let mut by_id: std::collections::HashMap<i64, _> =
            targets.into_iter().map(|t| (t.object_id, t)).collect();
        let mut out = Vec::with_capacity(frames.len());
        for f in frames {
            let Some(t) = by_id.remove(&f.object_id) else {
                // Frames the viewer may not see are left out, as if they
                // did not exist.
                if self.viewer.is_some() {
                    continue;
                }
                return Err(CatalogError::Invalid(format!(
                    "frame {} has no process target",
                    f.object_id
                )));
            };
            out.push(self.frame_from_models(target_from_model(t), f).await?);
        }
        out.sort_by_key(|f| f.target.object_id);
        Ok(out)
    }

    /// A SourceList by SLID.
    pub async fn source_list(&self, slid: Slid) -> Result<SourceListInfo, CatalogError> {
        let sl = entity::source_list::Entity::find()
            .filter(entity::source_list::Column::Slid.eq(slid.0))
            .filter(self.visible_cond("source_list"))
            .one(&self.db)
            .await?
            .ok_or_else(|| CatalogError::NotFound {
                what: "SourceList SLID",
                id: slid.to_string(),
            })?;
        let t = self.process_target(ObjectId(sl.object_id)).await?;
        Ok(SourceListInfo {
            target: t,
            slid: Slid(sl.slid),
            name: sl.name,
            frame_id: sl.frame_id.map(ObjectId),
            filter: sl.filter,
            chip: sl.chip,
            n_sources: sl.n_sources,
        })
    }

    /// All AssociateLists.
    pub async fn associate_lists(&self) -> Result<Vec<AssociateListInfo>, CatalogError> {
        let lists = entity::associate_list::Entity::find()
            .filter(self.visible_cond("associate_list"))
            .all(&self.db)
            .await?;
        let mut out = Vec::new();
        for al in lists {
            out.push(self.associate_list_info(al).await?);
        }
        Ok(out)
    }

    /// An associate-list row with its process target, as the domain type.
    async fn associate_list_info(
        &self,
        al: entity::associate_list::Model,
    ) -> Result<AssociateListInfo, CatalogError> {
        let t = self.process_target(ObjectId(al.object_id)).await?;
        Ok(AssociateListInfo {
            target: t,
            alid: crate::ids::Alid(al.alid),
            assoc_type: AssocType::parse(&al.assoc_type).ok_or_else(|| {
                CatalogError::Invalid(format!("unknown association type {}", al.assoc_type))
            })?,
            name: al.name,
            search_distance: al.search_distance,
            n_associations: al.n_associations,
            n_members: al.n_members,
        })
    }
}

impl Catalog {
    /// [`Catalog::visible_id`] on the `object_id` column of `table` (as
    /// sea-orm names it in its queries), as a filter.
    pub(crate) fn visible_cond(&self, table: &str) -> sea_orm::sea_query::SimpleExpr {
        sea_orm::sea_query::Expr::cust(self.visible_id(&format!("\"{table}\".\"object_id\"")))
    }

    /// Association rows of visible lists whose member SourceList is
    /// visible too: a public AssociateList does not show a private list's
    /// sources.
    pub(crate) fn visible_list_cond(&self) -> sea_orm::sea_query::SimpleExpr {
        sea_orm::sea_query::Expr::cust(
            self.row_visibility("association", "\"association\"")
                .unwrap_or_else(|| "1=1".to_owned()),
        )
    }
}

fn target_from_model(t: entity::process_target::Model) -> ProcessTarget {
    ProcessTarget {
        object_id: ObjectId(t.object_id),
        class_name: t.class_name,
        creation_date: t.creation_date,
        is_valid: t.is_valid,
        quality_flags: t.quality_flags,
        process_status: t.process_status,
        creator: t.creator,
        project: t.project,
        privileges: t.privileges,
        superseded_by: t.superseded_by.map(ObjectId),
    }
}

impl Catalog {
    /// Re-reads the named data roots.
    pub async fn reload_roots(&self) -> Result<(), CatalogError> {
        let rows = entity::data_root::Entity::find().all(&self.db).await?;
        let map = rows
            .into_iter()
            .map(|r| (r.name, std::path::PathBuf::from(r.path)))
            .collect();
        *self.roots.write().unwrap_or_else(|e| e.into_inner()) = Roots {
            by_name: map,
            read_at: Some(std::time::Instant::now()),
        };
        Ok(())
    }

    /// The named data roots, by name.
    pub fn data_roots(&self) -> std::collections::HashMap<String, std::path::PathBuf> {
        self.roots
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_name
            .clone()
    }

    /// The directory of the data root `store`, if it is a named root.
    async fn root_dir(&self, store: &str) -> Result<Option<std::path::PathBuf>, CatalogError> {
        if store == "local" || store == "file" {
            return Ok(None);
        }
        let known = |c: &Self| {
            let roots = c.roots.read().unwrap_or_else(|e| e.into_inner());
            let fresh = roots.read_at.is_some_and(|t| t.elapsed() < ROOTS_TTL);
            (roots.by_name.get(store).cloned(), fresh)
        };
        if let (Some(dir), true) = known(self) {
            return Ok(Some(dir));
        }
        self.reload_roots().await?;
        Ok(known(self).0)
    }

    async fn frame_from_models(
        &self,
        target: ProcessTarget,
        f: entity::frame::Model,
    ) -> Result<Frame, CatalogError> {
        let root_dir = self.root_dir(&f.store).await?;
        let mut frame = frame_from_models(target, f)?;
        frame.root_dir = root_dir;
        Ok(frame)
    }
}

fn frame_from_models(
    target: ProcessTarget,
    f: entity::frame::Model,
) -> Result<Frame, CatalogError> {
    let bad = |what: &str, e: serde_json::Error| {
        CatalogError::Invalid(format!(
            "frame {}: stored {what} unreadable: {e}",
            f.object_id
        ))
    };
    let class = f.frame_class.parse::<FrameClass>().ok().ok_or_else(|| {
        CatalogError::Invalid(format!(
            "frame {}: unknown class {}",
            f.object_id, f.frame_class
        ))
    })?;
    let wcs: Option<WcsKeywords> = match &f.wcs {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| bad("WCS", e))?),
        None => None,
    };
    let footprint: Option<Vec<(f64, f64)>> = match &f.footprint {
        Some(s) => Some(serde_json::from_str(s).map_err(|e| bad("footprint", e))?),
        None => None,
    };
    let extra = serde_json::from_str(&f.extra).map_err(|e| bad("attributes", e))?;
    Ok(Frame {
        target,
        class,
        filename: f.filename,
        store: f.store,
        root_dir: None,
        path: f.path,
        hdu: f.hdu,
        checksum: f.checksum,
        file_size: f.file_size,
        file_mtime_ns: f.file_mtime_ns,
        store_etag: f.store_etag,
        compressed: f.compressed,
        instrument: f.instrument,
        filter: f.filter,
        chip: f.chip,
        object: f.object,
        date_obs: f.date_obs,
        mjd_obs: f.mjd_obs,
        exptime: f.exptime,
        naxis1: f.naxis1,
        naxis2: f.naxis2,
        bitpix: f.bitpix,
        wcs,
        center: f.ra_center.zip(f.dec_center),
        footprint,
        zeropoint: f.zeropoint,
        seeing: f.seeing,
        timestamp_start: f.timestamp_start,
        timestamp_end: f.timestamp_end,
        extra,
    })
}
