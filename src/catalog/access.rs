//! Who is asking, and what they may see: Astro-WISE's contexts and
//! privileges, enforced by the catalogue itself.
//!
//! A [`Viewer`] is the identity of a request: a user (or nobody), the
//! projects whose data it works in (the "project context"), and whether it
//! is a superuser. A [`Catalog`] carries one (see [`Catalog::for_viewer`]);
//! every query of a process target — frames, lists, sources, lineage,
//! tables, counts, TAP — adds [`Catalog::visible`]'s condition, so an
//! object one may not see is indistinguishable from one that does not
//! exist. The catalogue a process opens ([`Catalog::connect`]) is the
//! *system* view (the CLI, ingest, the job runner's own bookkeeping); the
//! web layer never hands it to a handler unscoped.
//!
//! The levels are Astro-WISE's: 1 private (the creator, working in the
//! object's project), 2 project (members working in it), 3 every signed-in
//! user, 4 and 5 public (anonymous visitors included).
//!
//! Users, projects, memberships, sessions and API tokens live here too.
//! Secrets are stored only as argon2 hashes (passwords) or SHA-256
//! (session cookies and tokens: random 256-bit values, so a fast hash
//! suffices and lookups stay one indexed query).

use super::{Catalog, CatalogError};
use crate::model::ProcessTarget;
use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, Value};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The lowest privilege level anonymous visitors see.
pub const PUBLIC_LEVEL: i32 = 4;
/// The level every signed-in user sees (Astro-WISE's "all users").
pub const USERS_LEVEL: i32 = 3;

/// A role in a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Role {
    /// Sees the project's data.
    Member,
    /// Also changes the privileges of the project's objects and adds
    /// members.
    Admin,
}

impl Role {
    /// The stored and shown name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }

    /// Parses `member` or `admin`; the error lists both.
    pub fn parse(s: &str) -> Result<Self, CatalogError> {
        match s {
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            other => Err(CatalogError::Query(format!(
                "role {other:?} is not known: use member or admin"
            ))),
        }
    }
}

/// The identity a request runs with.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Viewer {
    /// The signed-in user, if any.
    pub user: Option<String>,
    /// The projects whose project-level (and, for their creator, private)
    /// objects are visible: the one chosen project of a browser session,
    /// every membership for an API token.
    pub context: Vec<String>,
    /// The projects the user is a member of, with the role in each.
    pub memberships: Vec<(String, Role)>,
    /// Sees everything.
    pub superuser: bool,
    /// The anonymous browser (SHA-256 of its cookie), which owns the jobs
    /// it submitted without signing in.
    pub browser: Option<String>,
}

impl Viewer {
    /// An anonymous visitor.
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Whether the user may see `t` — the same rule as [`Self::sql`], for
    /// objects already in memory (memoised frames).
    pub fn can_see(&self, t: &ProcessTarget) -> bool {
        if self.superuser || t.privileges >= PUBLIC_LEVEL {
            return true;
        }
        let Some(user) = &self.user else {
            return false;
        };
        if t.privileges >= USERS_LEVEL {
            return true;
        }
        self.context.contains(&t.project)
            && (t.privileges >= crate::model::privileges::PROJECT || t.creator == *user)
    }

    /// The SQL condition that `alias` (a `process_target` row) is visible.
    /// Names are checked when users and projects are made
    /// ([`check_name`]) and quoted here, so the condition can be pasted
    /// into any query on either backend without renumbering parameters.
    pub fn sql(&self, alias: &str) -> String {
        if self.superuser {
            return "1=1".to_owned();
        }
        let Some(user) = &self.user else {
            return format!("{alias}.privileges >= {PUBLIC_LEVEL}");
        };
        if self.context.is_empty() {
            return format!("{alias}.privileges >= {USERS_LEVEL}");
        }
        // Names are checked when made; a name that somehow is not (an edited
        // database) denies rather than reaches the SQL text.
        let names_ok = std::iter::once(user)
            .chain(&self.context)
            .all(|n| check_name("name", n).is_ok());
        if !names_ok {
            return format!("{alias}.privileges >= {PUBLIC_LEVEL}");
        }
        let projects: Vec<String> = self.context.iter().map(|p| quote(p)).collect();
        format!(
            "({alias}.privileges >= {USERS_LEVEL} OR ({alias}.project IN ({}) AND \
             ({alias}.privileges >= {} OR {alias}.creator = {})))",
            projects.join(", "),
            crate::model::privileges::PROJECT,
            quote(user)
        )
    }

    /// A short key naming what this viewer sees, for memos shared by all
    /// requests (two viewers with the same key see the same objects).
    pub fn scope_key(&self) -> String {
        if self.superuser {
            return "*".to_owned();
        }
        match &self.user {
            None => String::new(),
            Some(u) => format!("{u}\u{0}{}", self.context.join("\u{0}")),
        }
    }

    /// The role of the user in `project`, if a member.
    pub fn role_in(&self, project: &str) -> Option<Role> {
        self.memberships
            .iter()
            .find(|(p, _)| p == project)
            .map(|(_, r)| *r)
    }

    /// Whether the user may change the privileges of `t`: its creator, an
    /// admin of its project, or a superuser.
    pub fn can_change_privileges(&self, t: &ProcessTarget) -> bool {
        self.superuser
            || self.user.as_deref() == Some(t.creator.as_str())
            || self.role_in(&t.project) == Some(Role::Admin)
    }
}

/// An SQL string literal (single quotes doubled).
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Checks a user or project name: 1–64 letters, digits, `_`, `-`, `.`.
pub fn check_name(what: &str, name: &str) -> Result<(), CatalogError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(CatalogError::Query(format!(
            "{what} {name:?} is not allowed: use 1 to 64 letters, digits, '_', '-' or '.'"
        )))
    }
}

/// SHA-256 of a secret, hex: how session ids and tokens are stored.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// A fresh random secret of 256 bits, URL-safe.
pub fn new_secret() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh unguessable id of 128 bits (job ids in URLs), hex.
pub fn new_public_id() -> String {
    let bytes: [u8; 16] = rand::random();
    hex::encode(bytes)
}

fn hash_password(password: &str) -> Result<String, CatalogError> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CatalogError::Invalid(format!("cannot hash the password: {e}")))
}

fn password_matches(hash: &str, password: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// A hash no password matches, verified when the user does not exist so
/// that a wrong name costs as long as a wrong password.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password("not a password").unwrap_or_default());

/// How long a browser session lasts without signing in again.
pub const SESSION_DAYS: i64 = 14;

/// A signed-in browser session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user.
    pub user: String,
    /// The project the user works in.
    pub project: Option<String>,
}

/// An API token as listed to its owner (never the secret itself).
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenInfo {
    /// Its number, to revoke it by.
    pub id: i64,
    /// What the owner called it.
    pub label: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
    /// When it was revoked.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A user as listed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UserInfo {
    /// The name.
    pub name: String,
    /// Sees and may change everything.
    pub superuser: bool,
}

impl Catalog {
    /// This catalogue as `viewer` sees it: every query of it is limited to
    /// what the viewer may see. Cheap (one `Arc`).
    pub fn for_viewer(&self, viewer: Viewer) -> Catalog {
        let mut c = self.clone();
        c.viewer = Some(Arc::new(viewer));
        c
    }

    /// The viewer this catalogue is limited to; `None` for the system view.
    pub fn viewer(&self) -> Option<&Viewer> {
        self.viewer.as_deref()
    }

    /// The condition that the `process_target` row `alias` is visible to
    /// this catalogue's viewer (`1=1` for the system view).
    pub fn visible(&self, alias: &str) -> String {
        match &self.viewer {
            None => "1=1".to_owned(),
            Some(v) => v.sql(alias),
        }
    }

    /// The condition that the object id expression `id` names a visible
    /// object, for queries that do not join `process_target` themselves.
    pub fn visible_id(&self, id: &str) -> String {
        match &self.viewer {
            None => "1=1".to_owned(),
            // A correlated EXISTS is one primary-key probe per candidate
            // row on both backends; `IN (SELECT …)` would make SQLite build
            // the set of every visible object first.
            Some(v) => format!(
                "EXISTS (SELECT 1 FROM process_target vt WHERE vt.object_id = {id} AND {})",
                v.sql("vt")
            ),
        }
    }

    /// Whether this catalogue's viewer may see `t`.
    pub fn can_see(&self, t: &ProcessTarget) -> bool {
        self.viewer.as_ref().is_none_or(|v| v.can_see(t))
    }

    async fn exec(&self, sql: &str, values: Vec<Value>) -> Result<u64, CatalogError> {
        Ok(self
            .db
            .execute_raw(Self::stmt(self.backend(), sql, values))
            .await?
            .rows_affected())
    }

    /// Adds a user with `password` (argon2-hashed).
    pub async fn add_user(
        &self,
        name: &str,
        password: &str,
        superuser: bool,
    ) -> Result<(), CatalogError> {
        check_name("user name", name)?;
        check_password(password)?;
        if self.user(name).await?.is_some() {
            return Err(CatalogError::Query(format!("user {name} already exists")));
        }
        let hash = hash_password(password)?;
        self.exec(
            "INSERT INTO wc_user (name, password_hash, superuser, created_at) \
             VALUES ($1, $2, $3, $4)",
            vec![
                name.into(),
                hash.into(),
                i32::from(superuser).into(),
                Utc::now().into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Sets a user's password; every session of the user ends.
    pub async fn set_password(&self, name: &str, password: &str) -> Result<(), CatalogError> {
        check_password(password)?;
        let hash = hash_password(password)?;
        let n = self
            .exec(
                "UPDATE wc_user SET password_hash = $1 WHERE name = $2",
                vec![hash.into(), name.into()],
            )
            .await?;
        if n == 0 {
            return Err(no_user(name));
        }
        self.exec(
            "DELETE FROM web_session WHERE user_name = $1",
            vec![name.into()],
        )
        .await?;
        Ok(())
    }

    /// A user by name.
    pub async fn user(&self, name: &str) -> Result<Option<UserInfo>, CatalogError> {
        let row = self
            .db
            .query_one_raw(Self::stmt(
                self.backend(),
                "SELECT name, superuser FROM wc_user WHERE name = $1",
                vec![name.into()],
            ))
            .await?;
        row.map(|r| {
            Ok(UserInfo {
                name: r.try_get("", "name")?,
                superuser: r.try_get::<i32>("", "superuser")? != 0,
            })
        })
        .transpose()
    }

    /// The user if `password` is theirs. A missing user and a wrong
    /// password take the same time and give the same answer.
    pub async fn check_password(
        &self,
        name: &str,
        password: &str,
    ) -> Result<Option<String>, CatalogError> {
        let row = self
            .db
            .query_one_raw(Self::stmt(
                self.backend(),
                "SELECT password_hash FROM wc_user WHERE name = $1",
                vec![name.into()],
            ))
            .await?;
        let hash = match row {
            Some(r) => Some(r.try_get::<String>("", "password_hash")?),
            None => None,
        };
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || match hash {
            Some(h) => password_matches(&h, &password),
            None => {
                let _ = password_matches(&DUMMY_HASH, &password);
                false
            }
        })
        .await
        .map_err(|e| CatalogError::Invalid(format!("password check failed: {e}")))?;
        Ok(ok.then(|| name.to_owned()))
    }

    /// Adds a project.
    pub async fn add_project(&self, name: &str, description: &str) -> Result<(), CatalogError> {
        check_name("project name", name)?;
        let exists = self
            .db
            .query_one_raw(Self::stmt(
                self.backend(),
                "SELECT name FROM project WHERE name = $1",
                vec![name.into()],
            ))
            .await?
            .is_some();
        if exists {
            return Err(CatalogError::Query(format!(
                "project {name} already exists"
            )));
        }
        self.exec(
            "INSERT INTO project (name, description, created_at) VALUES ($1, $2, $3)",
            vec![name.into(), description.into(), Utc::now().into()],
        )
        .await?;
        Ok(())
    }

    /// The projects, by name, with their descriptions.
    pub async fn projects(&self) -> Result<Vec<(String, String)>, CatalogError> {
        let rows = self
            .db
            .query_all_raw(Self::stmt(
                self.backend(),
                "SELECT name, description FROM project ORDER BY name",
                vec![],
            ))
            .await?;
        rows.into_iter()
            .map(|r| Ok((r.try_get("", "name")?, r.try_get("", "description")?)))
            .collect()
    }

    /// Makes `user` a member (or admin) of `project`, or changes the role.
    pub async fn set_member(
        &self,
        project: &str,
        user: &str,
        role: Role,
    ) -> Result<(), CatalogError> {
        if self.user(user).await?.is_none() {
            return Err(no_user(user));
        }
        if !self.projects().await?.iter().any(|(p, _)| p == project) {
            return Err(CatalogError::NotFound {
                what: "project",
                id: project.to_owned(),
            });
        }
        self.exec(
            "DELETE FROM project_member WHERE project = $1 AND user_name = $2",
            vec![project.into(), user.into()],
        )
        .await?;
        self.exec(
            "INSERT INTO project_member (project, user_name, role) VALUES ($1, $2, $3)",
            vec![project.into(), user.into(), role.name().into()],
        )
        .await?;
        Ok(())
    }

    /// Removes `user` from `project`.
    pub async fn remove_member(&self, project: &str, user: &str) -> Result<(), CatalogError> {
        self.exec(
            "DELETE FROM project_member WHERE project = $1 AND user_name = $2",
            vec![project.into(), user.into()],
        )
        .await?;
        Ok(())
    }

    /// The projects `user` belongs to, by name, with the role.
    pub async fn memberships(&self, user: &str) -> Result<Vec<(String, Role)>, CatalogError> {
        let rows = self
            .db
            .query_all_raw(Self::stmt(
                self.backend(),
                "SELECT project, role FROM project_member WHERE user_name = $1 ORDER BY project",
                vec![user.into()],
            ))
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok((
                    r.try_get("", "project")?,
                    Role::parse(&r.try_get::<String>("", "role")?)?,
                ))
            })
            .collect()
    }

    /// The viewer of `user` working in `project` (`None`: every project
    /// the user belongs to, as API tokens do). A project the user does not
    /// belong to gives no project context.
    pub async fn viewer_of(
        &self,
        user: &str,
        project: Option<&str>,
    ) -> Result<Viewer, CatalogError> {
        let info = self.user(user).await?.ok_or_else(|| no_user(user))?;
        let memberships = self.memberships(user).await?;
        let context = match project {
            Some(p) => memberships
                .iter()
                .filter(|(m, _)| m == p)
                .map(|(m, _)| m.clone())
                .collect(),
            None => memberships.iter().map(|(m, _)| m.clone()).collect(),
        };
        Ok(Viewer {
            user: Some(info.name),
            context,
            memberships,
            superuser: info.superuser,
            browser: None,
        })
    }

    /// The viewer behind a live API token (every project of its user), in
    /// one query: tokens are checked on every request, so a revoked one
    /// stops at once, and this keeps that check a single round trip.
    pub async fn viewer_by_token(&self, secret: &str) -> Result<Option<Viewer>, CatalogError> {
        let rows = self
            .db
            .query_all_raw(Self::stmt(
                self.backend(),
                "SELECT u.name, u.superuser, m.project, m.role FROM api_token k \
                 JOIN wc_user u ON u.name = k.user_name \
                 LEFT JOIN project_member m ON m.user_name = u.name \
                 WHERE k.token_hash = $1 AND k.revoked_at IS NULL ORDER BY m.project",
                vec![secret_hash(secret).into()],
            ))
            .await?;
        Self::viewer_from_rows(&rows, None)
    }

    /// The live browser session whose cookie is `secret` and its viewer
    /// (working in the session's project), in one query.
    pub async fn viewer_by_session(
        &self,
        secret: &str,
    ) -> Result<Option<(Session, Viewer)>, CatalogError> {
        let rows = self
            .db
            .query_all_raw(Self::stmt(
                self.backend(),
                "SELECT u.name, u.superuser, m.project, m.role, s.project AS working_in \
                 FROM web_session s JOIN wc_user u ON u.name = s.user_name \
                 LEFT JOIN project_member m ON m.user_name = u.name \
                 WHERE s.id_hash = $1 AND s.expires_at > $2 ORDER BY m.project",
                vec![secret_hash(secret).into(), Utc::now().into()],
            ))
            .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let project: Option<String> = first.try_get("", "working_in")?;
        let Some(viewer) = Self::viewer_from_rows(&rows, Some(project.as_deref()))? else {
            return Ok(None);
        };
        let session = Session {
            user: viewer.user.clone().unwrap_or_default(),
            project,
        };
        Ok(Some((session, viewer)))
    }

    /// A viewer from rows of (name, superuser, project, role): working in
    /// `working_in` (`Some(None)`: no project), or in every membership.
    fn viewer_from_rows(
        rows: &[sea_orm::QueryResult],
        working_in: Option<Option<&str>>,
    ) -> Result<Option<Viewer>, CatalogError> {
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut memberships = Vec::new();
        for r in rows {
            if let Some(p) = r.try_get::<Option<String>>("", "project")? {
                let role = Role::parse(&r.try_get::<String>("", "role")?)?;
                memberships.push((p, role));
            }
        }
        let context = memberships
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| working_in.is_none_or(|w| w == Some(p.as_str())))
            .collect();
        Ok(Some(Viewer {
            user: Some(first.try_get("", "name")?),
            context,
            memberships,
            superuser: first.try_get::<i32>("", "superuser")? != 0,
            browser: None,
        }))
    }

    /// Starts a browser session for `user` in `project`; returns the
    /// cookie's secret (stored only as its hash).
    pub async fn create_session(
        &self,
        user: &str,
        project: Option<&str>,
    ) -> Result<String, CatalogError> {
        let secret = new_secret();
        let now = Utc::now();
        // Expired sessions go when new ones come: the table stays small
        // without a sweeper.
        self.exec(
            "DELETE FROM web_session WHERE expires_at < $1",
            vec![now.into()],
        )
        .await?;
        self.exec(
            "INSERT INTO web_session (id_hash, user_name, project, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            vec![
                secret_hash(&secret).into(),
                user.into(),
                project.map(str::to_owned).into(),
                now.into(),
                (now + chrono::Duration::days(SESSION_DAYS)).into(),
            ],
        )
        .await?;
        Ok(secret)
    }

    /// Switches a session to another project (one the user belongs to, or
    /// none: public data only).
    pub async fn set_session_project(
        &self,
        secret: &str,
        project: Option<&str>,
    ) -> Result<(), CatalogError> {
        self.exec(
            "UPDATE web_session SET project = $1 WHERE id_hash = $2",
            vec![
                project.map(str::to_owned).into(),
                secret_hash(secret).into(),
            ],
        )
        .await?;
        Ok(())
    }

    /// Ends a session.
    pub async fn end_session(&self, secret: &str) -> Result<(), CatalogError> {
        self.exec(
            "DELETE FROM web_session WHERE id_hash = $1",
            vec![secret_hash(secret).into()],
        )
        .await?;
        Ok(())
    }

    /// Makes an API token for `user`; returns the secret, shown once.
    pub async fn create_token(&self, user: &str, label: &str) -> Result<String, CatalogError> {
        if self.user(user).await?.is_none() {
            return Err(no_user(user));
        }
        if label.len() > 128 {
            return Err(CatalogError::Query(
                "label: at most 128 characters".to_owned(),
            ));
        }
        let secret = format!("wct_{}", new_secret());
        self.exec(
            "INSERT INTO api_token (user_name, label, token_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
            vec![
                user.into(),
                label.into(),
                secret_hash(&secret).into(),
                Utc::now().into(),
            ],
        )
        .await?;
        Ok(secret)
    }

    /// The user a live (not revoked) token belongs to. Read from the
    /// database on every request, so a revoked token stops at once on
    /// every server.
    pub async fn token_user(&self, secret: &str) -> Result<Option<String>, CatalogError> {
        let row = self
            .db
            .query_one_raw(Self::stmt(
                self.backend(),
                "SELECT user_name FROM api_token WHERE token_hash = $1 AND revoked_at IS NULL",
                vec![secret_hash(secret).into()],
            ))
            .await?;
        row.map(|r| r.try_get("", "user_name"))
            .transpose()
            .map_err(Into::into)
    }

    /// The tokens of `user`, newest first.
    pub async fn tokens(&self, user: &str) -> Result<Vec<TokenInfo>, CatalogError> {
        let rows = self
            .db
            .query_all_raw(Self::stmt(
                self.backend(),
                "SELECT id, label, created_at, revoked_at FROM api_token \
                 WHERE user_name = $1 ORDER BY id DESC",
                vec![user.into()],
            ))
            .await?;
        rows.into_iter()
            .map(|r| {
                Ok(TokenInfo {
                    id: r.try_get("", "id")?,
                    label: r.try_get("", "label")?,
                    created_at: r.try_get("", "created_at")?,
                    revoked_at: r.try_get("", "revoked_at")?,
                })
            })
            .collect()
    }

    /// Revokes token `id` of `user` (only its owner's tokens can be
    /// named: another user's id is "not found").
    pub async fn revoke_token(&self, user: &str, id: i64) -> Result<(), CatalogError> {
        let n = self
            .exec(
                "UPDATE api_token SET revoked_at = $1 \
                 WHERE id = $2 AND user_name = $3 AND revoked_at IS NULL",
                vec![Utc::now().into(), id.into(), user.into()],
            )
            .await?;
        if n == 0 {
            return Err(CatalogError::NotFound {
                what: "live token of this user",
                id: id.to_string(),
            });
        }
        Ok(())
    }

    /// Puts objects in `project` with `creator` and privileges `level`, as
    /// the system (ingest tools, the sample survey's demo project): no
    /// check of who asks.
    pub async fn assign_objects(
        &self,
        ids: &[crate::ids::ObjectId],
        creator: &str,
        project: &str,
        level: i32,
    ) -> Result<u64, CatalogError> {
        let mut n = 0;
        for id in ids {
            n += self
                .exec(
                    "UPDATE process_target SET creator = $1, project = $2, privileges = $3 \
                     WHERE object_id = $4",
                    vec![creator.into(), project.into(), level.into(), id.0.into()],
                )
                .await?;
        }
        if n > 0 {
            Self::bump_state(self.db(), "visibility").await?;
        }
        Ok(n)
    }

    /// Sets the privileges of objects, as `viewer` (who must be each
    /// object's creator, an admin of its project or a superuser; `None` is
    /// the system, e.g. the CLI run by the database's owner). All or
    /// nothing: one object that may not be changed changes none.
    pub async fn set_privileges(
        &self,
        viewer: Option<&Viewer>,
        ids: &[crate::ids::ObjectId],
        level: i32,
    ) -> Result<u64, CatalogError> {
        if !(1..=5).contains(&level) {
            return Err(CatalogError::Query(format!(
                "privileges {level} is not a level: use 1 (private), 2 (project), \
                 3 (signed-in users), 4 or 5 (public)"
            )));
        }
        let txn = sea_orm::TransactionTrait::begin(&self.db).await?;
        let mut n = 0;
        for id in ids {
            let row = entity::process_target::Entity::find_by_id(id.0)
                .one(&txn)
                .await?;
            let Some(t) = row.map(super::target_from_model) else {
                return Err(CatalogError::NotFound {
                    what: "object",
                    id: id.to_string(),
                });
            };
            if let Some(v) = viewer {
                // Unseen objects are "not found", exactly as missing ones.
                if !v.can_see(&t) {
                    return Err(CatalogError::NotFound {
                        what: "object",
                        id: id.to_string(),
                    });
                }
                if !v.can_change_privileges(&t) {
                    return Err(CatalogError::Query(format!(
                        "object {id}: only its creator or an admin of project {} may \
                         change its privileges",
                        t.project
                    )));
                }
            }
            n += txn
                .execute_raw(Self::stmt(
                    self.backend(),
                    "UPDATE process_target SET privileges = $1 WHERE object_id = $2",
                    vec![level.into(), id.0.into()],
                ))
                .await?
                .rows_affected();
        }
        // Visibility decides what a cached coverage MOC holds.
        Self::bump_state(&txn, "visibility").await?;
        txn.commit().await?;
        Ok(n)
    }
}

impl Catalog {
    /// The condition that a row of the catalogue table `table` (alias
    /// `alias`) is visible to this catalogue's viewer;
    /// `None` for the system view, which sees every row. Rows belong to an
    /// object: an ObsCore row to its frame, a source to its SourceList, an
    /// association to its AssociateList and its member's SourceList; a
    /// dependency edge is visible only when both its ends are. A table
    /// this does not know yields no rows at all (a new table published to
    /// TAP must be given its rule here before it shows anything to a
    /// viewer). Tables, counts, TAP and association lookups all use it.
    pub fn row_visibility(&self, table: &str, alias: &str) -> Option<String> {
        self.viewer()?;
        Some(match table {
            "obscore" => self.visible_id(&format!("{alias}.frame_id")),
            "source" => self.visible_slid(&format!("{alias}.slid")),
            "source_list" | "associate_list" => self.visible_id(&format!("{alias}.object_id")),
            "association" => format!(
                "{} AND {}",
                self.visible_alid(&format!("{alias}.alid")),
                self.visible_slid(&format!("{alias}.slid"))
            ),
            "dependency" => format!(
                "{} AND {}",
                self.visible_id(&format!("{alias}.parent_id")),
                self.visible_id(&format!("{alias}.child_id"))
            ),
            _ => "1=0".to_owned(),
        })
    }
}

use super::entity;
use sea_orm::EntityTrait;

fn no_user(name: &str) -> CatalogError {
    CatalogError::NotFound {
        what: "user",
        id: name.to_owned(),
    }
}

fn check_password(password: &str) -> Result<(), CatalogError> {
    if password.chars().count() < 8 || password.len() > 1024 {
        return Err(CatalogError::Query(
            "password: use 8 to 1024 characters".to_owned(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ObjectId;

    fn target(creator: &str, project: &str, privileges: i32) -> ProcessTarget {
        ProcessTarget {
            object_id: ObjectId(1),
            class_name: "BiasFrame".into(),
            creation_date: Utc::now(),
            is_valid: 1,
            quality_flags: 0,
            process_status: 1,
            creator: creator.into(),
            project: project.into(),
            privileges,
            superseded_by: None,
        }
    }

    fn user(name: &str, context: &[&str]) -> Viewer {
        Viewer {
            user: Some(name.into()),
            context: context.iter().map(|s| s.to_string()).collect(),
            memberships: context
                .iter()
                .map(|s| (s.to_string(), Role::Member))
                .collect(),
            ..Viewer::default()
        }
    }

    #[test]
    fn the_levels_of_astro_wise() {
        let anon = Viewer::anonymous();
        let owner = user("owner1", &["SECRET"]);
        let member = user("member", &["SECRET"]);
        let owner_elsewhere = user("owner1", &["OTHER"]);
        let outsider = user("eve", &["OTHER"]);
        let private = target("owner1", "SECRET", 1);
        let project = target("owner1", "SECRET", 2);
        let users = target("owner1", "SECRET", 3);
        let public = target("owner1", "SECRET", 5);
        assert!(!anon.can_see(&private) && !anon.can_see(&project) && !anon.can_see(&users));
        assert!(anon.can_see(&public));
        assert!(owner.can_see(&private) && owner.can_see(&project));
        assert!(!member.can_see(&private) && member.can_see(&project));
        assert!(!outsider.can_see(&private) && !outsider.can_see(&project));
        assert!(outsider.can_see(&users));
        // Working in another project hides even one's own private objects.
        assert!(!owner_elsewhere.can_see(&private));
        let su = Viewer {
            superuser: true,
            ..Viewer::anonymous()
        };
        assert!(su.can_see(&private));
    }

    #[test]
    fn names_are_checked_and_quotes_doubled() {
        assert!(check_name("user name", "o'neil").is_err());
        assert!(check_name("user name", "").is_err());
        assert!(check_name("user name", "a.b-c_9").is_ok());
        assert_eq!(quote("o'neil"), "'o''neil'");
    }

    #[test]
    fn only_creator_admin_or_superuser_change_privileges() {
        let t = target("owner1", "SECRET", 1);
        assert!(user("owner1", &["SECRET"]).can_change_privileges(&t));
        assert!(!user("member", &["SECRET"]).can_change_privileges(&t));
        let mut admin = user("boss", &["SECRET"]);
        admin.memberships = vec![("SECRET".into(), Role::Admin)];
        assert!(admin.can_change_privileges(&t));
    }
}
