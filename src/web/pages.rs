//! Page structs for askama templates, one per page, and their handlers:
//! home, help (with the endpoint reference of [`super::api_docs`] and
//! examples taken from this archive, so their ids exist), status, the VO
//! overview, the error page and the favicon.

use super::api_docs::{self, Endpoint};
use super::{AppError, AppState};
use crate::catalog::CategoryCount;
use crate::catalog::browse::Table;
use askama::Template;
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};

/// The error page.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    /// HTTP status code.
    pub status: u16,
    /// Its reason phrase.
    pub reason: &'static str,
    /// What went wrong, for the user.
    pub message: String,
}

/// A group of table categories on the home page.
pub struct CategoryGroup {
    /// Heading.
    pub title: &'static str,
    /// What the group holds.
    pub blurb: &'static str,
    /// Categories with counts.
    pub items: Vec<CategoryCount>,
}

/// The home page.
#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage {
    /// Categories grouped by pipeline stage.
    pub groups: Vec<CategoryGroup>,
    /// Total number of frames.
    pub total_frames: i64,
    /// wisecut version.
    pub version: &'static str,
}

/// `GET /`: the table categories with their row counts.
pub async fn home(
    super::auth::Scoped(state): super::auth::Scoped,
) -> Result<Html<String>, AppError> {
    let counts = state.catalog.category_counts().await?;
    let pick = |names: &[&str]| -> Vec<CategoryCount> {
        names
            .iter()
            .filter_map(|n| counts.iter().find(|c| c.category == *n).cloned())
            .collect()
    };
    let groups = vec![
        CategoryGroup {
            title: "Raw exposures",
            blurb: "CCD frames as read out, overscan included.",
            items: pick(&["RawScienceFrame", "RawBiasFrame", "RawDomeFlatFrame"]),
        },
        CategoryGroup {
            title: "Calibration frames",
            blurb: "Detector-plane products, valid over a time range.",
            items: pick(&[
                "BiasFrame",
                "HotPixelMap",
                "MasterFlatFrame",
                "ColdPixelMap",
                "FringeFrame",
                "IlluminationCorrection",
            ]),
        },
        CategoryGroup {
            title: "Science frames",
            blurb: "Reduced, regridded and coadded images on the sky.",
            items: pick(&[
                "ReducedScienceFrame",
                "RegriddedFrame",
                "CoaddedRegriddedFrame",
            ]),
        },
        CategoryGroup {
            title: "Catalogs",
            blurb: "Extracted sources and their associations.",
            items: pick(&["SourceList", "Source", "AssociateList", "Association"]),
        },
    ];
    let total_frames = counts
        .iter()
        .filter(|c| c.category.parse::<crate::model::FrameClass>().is_ok())
        .map(|c| c.count)
        .sum();
    let page = HomePage {
        groups,
        total_frames,
        version: crate::VERSION,
    };
    Ok(Html(page.render()?))
}

/// An example of an endpoint: a link for a GET, a command for a POST.
pub enum Example {
    /// A URL to open (relative to this server).
    Get(String),
    /// A shell command.
    Command(String),
}

/// The help page.
#[derive(Template)]
#[template(path = "help.html")]
pub struct HelpPage {
    /// Operators of the query language.
    pub operators: Vec<&'static str>,
    /// Frame classes.
    pub classes: Vec<&'static str>,
    /// The script-facing endpoints with examples.
    pub endpoints: Vec<(Endpoint, Vec<Example>)>,
    /// Statuses every endpoint may answer.
    pub common_errors: &'static [(&'static str, &'static str)],
}

/// What the examples are made of: real ids of this archive.
struct ExampleIds {
    frame: i64,
    filename: String,
    ra: f64,
    dec: f64,
    target: Option<String>,
    slid: Option<i64>,
    job: Option<String>,
}

async fn example_ids(st: &AppState) -> Result<Option<ExampleIds>, AppError> {
    // A coadd when there is one: it has a source list and every filter.
    let frame = st
        .catalog
        .most_processed_frame(|f| f.center.is_some())
        .await?;
    let Some(f) = frame else { return Ok(None) };
    let id = f.target.object_id.0;
    let slid = match st
        .catalog
        .first_int(&Table::SourceLists, &format!("frame_id = {id}"), "slid")
        .await?
    {
        Some(s) => Some(s),
        None => {
            st.catalog
                .first_int(&Table::SourceLists, "n_sources > 0", "slid")
                .await?
        }
    };
    let job = st
        .catalog
        .jobs(None, None, 0, 1)
        .await
        .ok()
        .and_then(|(_, j)| j.first().map(|j| j.public_id.clone()));
    let (ra, dec) = f.center.unwrap_or_default();
    Ok(Some(ExampleIds {
        frame: id,
        filename: f.filename.clone(),
        ra,
        dec,
        target: f.object.clone(),
        slid,
        job,
    }))
}

fn query(pairs: &[(&str, String)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// Examples for endpoint `id` with the archive's own ids.
fn examples(id: &str, x: &ExampleIds, base: &str) -> Vec<Example> {
    use Example::{Command, Get};
    let (ra, dec) = (format!("{:.5}", x.ra), format!("{:.5}", x.dec));
    let frame = x.frame.to_string();
    let did = crate::vo::obscore::ivoid(crate::ids::ObjectId(x.frame));
    match id {
        "api-cutout" => vec![
            Get(format!(
                "/api/cutout?{}",
                query(&[
                    ("frame", frame.clone()),
                    ("ra", ra.clone()),
                    ("dec", dec.clone()),
                    ("size", "64".into())
                ])
            )),
            Get(format!(
                "/api/cutout?{}",
                query(&[
                    ("frame", frame.clone()),
                    ("ra", ra.clone()),
                    ("dec", dec.clone()),
                    ("size", "30".into()),
                    ("unit", "arcsec".into()),
                    ("format", "png".into()),
                    ("stretch", "asinh".into()),
                    ("interval", "zscale".into()),
                ])
            )),
            Get(format!(
                "/api/cutout?{}",
                query(&[
                    ("frame", x.filename.clone()),
                    ("x", "100".into()),
                    ("y", "100".into()),
                    ("width", "80".into()),
                    ("height", "40".into()),
                    ("format", "jpg".into()),
                    ("invert", "true".into()),
                    ("output_size", "160".into()),
                ])
            )),
            Command(format!(
                "curl -sS -o cut.fits '{base}/api/cutout?{}'",
                query(&[
                    ("frame", frame.clone()),
                    ("ra", ra.clone()),
                    ("dec", dec.clone()),
                    ("size", "1".into()),
                    ("unit", "arcmin".into())
                ])
            )),
        ],
        "api-images" => vec![
            Get(format!(
                "/api/images?{}",
                query(&[("ra", ra.clone()), ("dec", dec.clone())])
            )),
            Get(format!(
                "/api/images?{}",
                query(&[
                    ("ra", ra.clone()),
                    ("dec", dec.clone()),
                    ("class", "reduced".into()),
                    ("format", "csv".into())
                ])
            )),
        ],
        "api-pixel" => vec![Get(format!(
            "/api/pixel?{}",
            query(&[
                ("frame", frame.clone()),
                ("x", "100".into()),
                ("y", "100".into())
            ])
        ))],
        "api-deps" => x
            .slid
            .map(|s| {
                vec![Command(format!(
                    "curl -sS -X POST '{base}/api/deps?{}'",
                    query(&[
                        ("slid", s.to_string()),
                        ("ids", "1:3".into()),
                        ("classes", "raw,flat,reduced,coadd".into()),
                        ("size", "64".into())
                    ])
                ))]
            })
            .unwrap_or_default(),
        "api-rgb" => {
            let mut v = vec![Command(format!(
                "curl -sS -X POST -o rgb.png '{base}/api/rgb?{}'",
                query(&[
                    ("red", frame.clone()),
                    ("green", frame.clone()),
                    ("blue", frame.clone()),
                    ("ra", ra.clone()),
                    ("dec", dec.clone()),
                    ("size", "60".into())
                ])
            ))];
            if let Some(t) = &x.target {
                v.push(Command(format!(
                    "curl -sS -X POST -o rgb.png '{base}/api/rgb?{}'",
                    query(&[
                        ("target", t.clone()),
                        ("filters", "i,r,g".into()),
                        ("method", "stiff".into())
                    ])
                )));
            }
            v
        }
        "api-batch" => vec![Command(format!(
            "printf 'RA,DEC,NAME\\n{ra},{dec},first\\n' | curl -sS -X POST -H 'Content-Type: text/csv' --data-binary @- '{base}/api/batch?XSIZE=0.5&MAKE_PNG=true'"
        ))],
        "api-jobs" => {
            let mut v = vec![Get("/jobs?kind=rgb".into())];
            if let Some(j) = &x.job {
                v.push(Get(format!("/api/jobs/{j}")));
            }
            v
        }
        "table-export" => {
            let mut v = vec![Get(format!(
                "/table/CoaddedRegriddedFrame?{}",
                query(&[("q", "naxis1 > 100".into()), ("format", "csv".into())])
            ))];
            if let Some(s) = x.slid {
                v.push(Get(format!(
                    "/table/SourceList/{s}?{}",
                    query(&[("q", "mag_auto < 20".into()), ("format", "votable".into())])
                )));
            }
            v
        }
        "vo-sia" => vec![Get(format!(
            "/vo/sia/query?{}",
            query(&[
                ("POS", format!("CIRCLE {ra} {dec} 0.05")),
                ("MAXREC", "20".into())
            ])
        ))],
        "vo-soda" => vec![Get(format!(
            "/vo/soda/sync?{}",
            query(&[("ID", did.clone()), ("CIRCLE", format!("{ra} {dec} 0.005"))])
        ))],
        "vo-links" => vec![Get(format!("/vo/links?{}", query(&[("ID", did.clone())])))],
        "vo-prov" => vec![Get(format!(
            "/prov?{}",
            query(&[("ID", frame.clone()), ("DEPTH", "2".into())])
        ))],
        "vo-moc" => vec![Get("/vo/moc?class=CoaddedRegriddedFrame".into())],
        _ => Vec::new(),
    }
}

/// `GET /help`: the query syntax, the lineage tree and the reference of
/// every script-facing endpoint, with examples from this archive.
pub async fn help(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
) -> Result<Html<String>, AppError> {
    let base = super::vo_endpoints::base_url(&st, &headers);
    let ids = example_ids(&st).await?;
    let endpoints = api_docs::endpoints()
        .into_iter()
        .map(|e| {
            let ex = ids
                .as_ref()
                .map(|x| examples(e.id, x, &base))
                .unwrap_or_default();
            (e, ex)
        })
        .collect();
    let page = HelpPage {
        operators: crate::catalog::browse::Op::SPELLINGS
            .iter()
            .rev()
            .map(|(s, _)| *s)
            .collect(),
        classes: crate::model::FrameClass::ALL.map(|c| c.name()).to_vec(),
        endpoints,
        common_errors: api_docs::COMMON_ERRORS,
    };
    Ok(Html(page.render()?))
}

/// The status page.
#[derive(Template, serde::Serialize)]
#[template(path = "status.html")]
pub struct StatusPage {
    /// wisecut version.
    pub version: &'static str,
    /// `SQLite` or `PostgreSQL`.
    pub database: &'static str,
    /// Row counts per frame class and catalogue table.
    pub counts: Vec<CategoryCount>,
    /// Product cache: bytes used, bound, entries, hits, misses.
    pub cache: StatusCache,
    /// Job results on disk: bytes, bound, files.
    pub jobs: StatusJobs,
    /// Limits: (name, value, what it bounds).
    pub limits: Vec<(&'static str, String, &'static str)>,
}

/// The product cache on the status page.
#[derive(serde::Serialize)]
pub struct StatusCache {
    /// Bytes used.
    pub bytes: u64,
    /// Bound.
    pub max_bytes: u64,
    /// Entries.
    pub entries: usize,
    /// Hits since start.
    pub hits: u64,
    /// Misses since start.
    pub misses: u64,
    /// "used of bound", for people.
    pub shown: String,
}

/// Job results on the status page.
#[derive(serde::Serialize)]
pub struct StatusJobs {
    /// Bytes of result files on disk.
    pub bytes: u64,
    /// Bound of all results.
    pub max_bytes: u64,
    /// Jobs recorded.
    pub recorded: i64,
    /// "used of bound", for people.
    pub shown: String,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

/// Bytes of the files under `dir` (not following links).
fn disk_use(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_use(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// `GET /status`: version, database, counts, disk use and limits, as HTML
/// or, on `Accept: application/json`, as JSON. Probes use `/health`.
pub async fn status(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let counts = st.catalog.category_counts().await?;
    let c = st.services.products.cache.stats();
    let jobs_dir = st.config.jobs_dir.clone();
    let job_bytes = tokio::task::spawn_blocking(move || disk_use(&jobs_dir))
        .await
        .unwrap_or(0);
    let recorded = st
        .catalog
        .jobs(None, None, 0, 1)
        .await
        .map(|(n, _)| n as i64)
        .unwrap_or(0);
    let cfg = &st.config;
    let l = &cfg.limits;
    let page = StatusPage {
        version: crate::VERSION,
        database: match st.catalog.backend() {
            sea_orm::DbBackend::Postgres => "PostgreSQL",
            sea_orm::DbBackend::Sqlite => "SQLite",
            _ => "other",
        },
        counts,
        cache: StatusCache {
            bytes: c.bytes,
            max_bytes: c.max_bytes,
            entries: c.entries,
            hits: c.hits,
            misses: c.misses,
            shown: format!("{} of {}", mib(c.bytes), mib(c.max_bytes)),
        },
        jobs: StatusJobs {
            bytes: job_bytes,
            max_bytes: cfg.jobs_bytes,
            recorded,
            shown: format!("{} of {}", mib(job_bytes), mib(cfg.jobs_bytes)),
        },
        limits: vec![
            (
                "memory budget",
                mib(cfg.memory_bytes),
                "requests, jobs and caches together (--memory-mib)",
            ),
            (
                "product cache",
                mib(cfg.cache_bytes),
                "cutouts and renders on disk (--cache-mib)",
            ),
            (
                "row cache",
                mib(cfg.row_cache_bytes),
                "hot frame rows in memory (--row-cache-mib)",
            ),
            (
                "largest cutout side",
                format!("{} px", cfg.max_cutout_px),
                "larger cutouts are refused (--max-cutout)",
            ),
            (
                "inline sources",
                cfg.inline_sources.to_string(),
                "dependency-cutout requests up to this are answered at once (--inline-sources)",
            ),
            (
                "job results",
                mib(cfg.jobs_bytes),
                "all results together, oldest removed first (--jobs-mib)",
            ),
            (
                "one job",
                mib(cfg.job_bytes),
                "result files of one job (--job-mib)",
            ),
            (
                "kept",
                format!("{} days", cfg.jobs_days),
                "job results (--jobs-days)",
            ),
            (
                "per client: concurrent",
                l.concurrency.to_string(),
                "expensive requests in progress (--client-concurrency)",
            ),
            (
                "per client: rate",
                format!("{}/s, burst {}", l.rate_per_s, l.burst),
                "expensive requests started (--client-rate, --client-burst)",
            ),
            (
                "per client: jobs",
                format!("{}/min", l.jobs_per_minute),
                "new jobs (--client-jobs-per-minute)",
            ),
            (
                "request timeout",
                format!("{} s", l.request_timeout.as_secs()),
                "then 503 (--request-timeout)",
            ),
            (
                "memory wait",
                format!("{} s", l.memory_wait.as_secs()),
                "waiting for memory before 503 (--memory-wait)",
            ),
        ],
    };
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json"));
    if wants_json {
        return Ok(axum::Json(&page).into_response());
    }
    Ok(Html(page.render()?).into_response())
}

/// The favicon: a small SVG (a lens over a frame), for `/favicon.svg` and
/// `/favicon.ico` (browsers ask for the latter on their own).
pub const FAVICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#16223a"/><rect x="5" y="5" width="15" height="15" fill="none" stroke="#8fb3ff" stroke-width="2"/><circle cx="19" cy="19" r="7" fill="#16223a" stroke="#e8edf7" stroke-width="2.5"/><circle cx="19" cy="19" r="2" fill="#ffeb3b"/><path d="M24 24l5 5" stroke="#e8edf7" stroke-width="3" stroke-linecap="round"/></svg>"##;

/// `GET /favicon.svg` and `/favicon.ico`.
pub async fn favicon() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON_SVG,
    )
}

/// The VO overview page: every endpoint with a working example.
#[derive(Template)]
#[template(path = "vo.html")]
pub struct VoPage {
    /// The server's base URL, as clients should use it.
    pub base: String,
    /// A coadd (or other sky frame) for the examples.
    pub example_frame: Option<(i64, f64, f64)>,
    /// Frame classes.
    pub classes: Vec<&'static str>,
}

/// `GET /vo`.
pub async fn vo(
    super::auth::Scoped(st): super::auth::Scoped,
    headers: axum::http::HeaderMap,
) -> Result<Html<String>, AppError> {
    use crate::model::FrameClass;
    let mut example_frame = None;
    for c in [
        FrameClass::CoaddedRegriddedFrame,
        FrameClass::ReducedScienceFrame,
    ] {
        if let Some(f) = st
            .catalog
            .frames_of_class(c)
            .await?
            .into_iter()
            .find(|f| f.center.is_some())
        {
            let (ra, dec) = f.center.unwrap_or_default();
            example_frame = Some((f.target.object_id.0, ra, dec));
            break;
        }
    }
    let page = VoPage {
        base: super::vo_endpoints::base_url(&st, &headers),
        example_frame,
        classes: FrameClass::ALL.map(|c| c.name()).to_vec(),
    };
    Ok(Html(page.render()?))
}
