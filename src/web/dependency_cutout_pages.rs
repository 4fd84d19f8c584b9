//! The dependency-cutout request over HTTP.
//!
//! * `GET /deps` — the request form, filled in from the query string (a
//!   bookmarkable request); when the same request already has a job, a
//!   redirect to it. A GET never starts work: crawlers and link
//!   prefetchers follow GETs.
//! * `POST /deps` — runs the request: a small one (≤ `inline_sources` ids)
//!   is made at once and redirects (303) to its result page, a larger one
//!   is queued and redirects to its job page, which refreshes while it
//!   runs. Bad parameters re-show the form with a 400. The same request
//!   submitted again gets the same job (`Jobs::submit`).
//! * `POST /api/deps` — the same as JSON: 200 with the result, or 202 with
//!   the job and a `Location` to poll; `GET /api/deps` is a 405 saying so.
//!   Every link in it is an absolute URL: `--public-url` when configured,
//!   else `http://` and the request's `Host`, as in the VO answers.
//!
//! The result pages themselves are jobs' pages (`super::job_pages`); what
//! they show of a dependency-cutout result is a [`ResultTable`], laid out
//! to fit a 1366 px screen: one row per source with every class beside it,
//! one thumbnail per class (the frame the product was directly made with)
//! and the others folded under it.

use askama::Template;
use axum::body::Bytes;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::ApiError;
use super::job_pages::{accepted, job_json};
use super::query_params::{QueryParams, submission, submit_with_post};
use super::table_pages::{ListKind, list_of_object, no_such_list};
use super::{AppError, AppState};
use crate::catalog::job_records::{JobKind, JobRecord, JobStatus};
use crate::imaging::render::Stretch;
use crate::model::FrameClass;
use crate::params::id_ranges;
use crate::products::dependency_cutouts::{
    self, CellCutout, DepParams, DepRequest, DepResult, DepRow, ListRef, PIPELINE_CLASSES,
};

/// Parameters of `/deps` and `/api/deps`.
pub const DEP_PARAMS: [&str; 9] = [
    "slid",
    "alid",
    "ids",
    "classes",
    "size",
    "unit",
    "stretch",
    "interval",
    "same_stretch",
];

/// Reads the request parameters; `classes` may also come as repeated
/// checkbox fields, which are joined.
fn dep_params(raw: Option<&str>) -> Result<(DepParams, bool), ApiError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.unwrap_or(""))
        .map_err(|e| ApiError::bad(format!("the query string is malformed: {e}")))?;
    let (classes, rest): (Vec<_>, Vec<_>) = pairs
        .into_iter()
        .partition(|(k, _)| k.eq_ignore_ascii_case("classes"));
    let rest = serde_urlencoded::to_string(&rest).unwrap_or_default();
    let p = QueryParams::parse(Some(&rest), &DEP_PARAMS)?;
    let asked = p.get("ids").is_some();
    let params = DepParams {
        slid: p.whole_number("slid")?,
        alid: p.whole_number("alid")?,
        ids: p.get("ids").unwrap_or("").to_owned(),
        classes: classes
            .into_iter()
            .map(|(_, v)| v)
            .collect::<Vec<_>>()
            .join(","),
        size: p.number("size")?,
        unit: p.get("unit").map(str::to_owned),
        stretch: p.get("stretch").map(str::to_owned),
        interval: p.get("interval").map(str::to_owned),
        same_stretch: match p.get("same_stretch") {
            None => None,
            Some(_) => Some(p.flag("same_stretch")?),
        },
    };
    Ok((params, asked))
}

/// What happened to a request.
enum Submitted {
    /// Finished (made at once, or found made): done or failed.
    Done(JobRecord),
    /// Queued.
    Queued(JobRecord),
}

/// The title of a request's job; unknown lists are a 404 now, not a
/// failed job later, saying which list was meant when the number is the
/// list's object id instead of its SLID or ALID.
async fn title(st: &AppState, req: &DepRequest) -> Result<String, ApiError> {
    let missing = |kind, id, e| missing_list(st, kind, id, e);
    Ok(match req.list {
        ListRef::Sources(slid) => {
            let l = match st.catalog.source_list(slid).await {
                Ok(l) => l,
                Err(e) => return Err(missing(ListKind::Source, slid.0, e).await),
            };
            format!(
                "Dependency cutouts of SLID {slid} ({}) SIDs {}",
                l.name,
                id_ranges::format_ids(&req.ids)
            )
        }
        ListRef::Associations(alid) => {
            let l = match st.catalog.associate_list(alid).await {
                Ok(l) => l,
                Err(e) => return Err(missing(ListKind::Associate, alid.0, e).await),
            };
            format!(
                "Dependency cutouts of ALID {alid} ({}) AIDs {}",
                l.name,
                id_ranges::format_ids(&req.ids)
            )
        }
    })
}

/// A list that could not be read: a 404 that, when the number is a list's
/// object id, says which list that is ("object 540 is SourceList SLID 145").
async fn missing_list(
    st: &AppState,
    kind: ListKind,
    id: i64,
    e: crate::catalog::CatalogError,
) -> ApiError {
    match e {
        crate::catalog::CatalogError::NotFound { .. } => {
            let real = list_of_object(st, kind, id).await;
            ApiError::not_found(no_such_list(kind, id, real))
        }
        other => other.into(),
    }
}

/// The list a form names exists (checked as soon as the form is filled in
/// from a link, not only when it is submitted).
async fn known_list(st: &AppState, p: &DepParams) -> Result<(), ApiError> {
    if let Some(slid) = p.slid
        && let Err(e) = st.catalog.source_list(crate::ids::Slid(slid)).await
    {
        return Err(missing_list(st, ListKind::Source, slid, e).await);
    }
    if let Some(alid) = p.alid
        && let Err(e) = st.catalog.associate_list(crate::ids::Alid(alid)).await
    {
        return Err(missing_list(st, ListKind::Associate, alid, e).await);
    }
    Ok(())
}

/// The canonical form of a request: equal for requests that ask for the
/// same thing however they were written (`1:3` or `3,2,1`).
fn canonical(req: &DepRequest) -> String {
    format!("{req:?}")
}

async fn submit_deps(st: &AppState, params: &DepParams) -> Result<Submitted, ApiError> {
    let req = params.validate()?;
    let title = title(st, &req).await?;
    let inline = req.ids.len() <= st.config.inline_sources;
    let stored = serde_json::to_value(params).map_err(ApiError::internal)?;
    let job = st
        .services
        .jobs
        .submit(
            JobKind::DependencyCutouts,
            &title,
            stored,
            &canonical(&req),
            inline,
            &super::job_pages::submitter(&st.identity),
        )
        .await
        .map_err(ApiError::from)?;
    // Done or failed, the answer is final; queued or running, it is not.
    Ok(
        if matches!(job.status, JobStatus::Done | JobStatus::Failed) {
            Submitted::Done(job)
        } else {
            Submitted::Queued(job)
        },
    )
}

/// The request form.
#[derive(Template)]
#[template(path = "deps.html")]
pub struct DepsPage {
    /// The request so far.
    pub p: DepParams,
    /// Class choices: (name, short, checked).
    pub classes: Vec<(&'static str, &'static str, bool)>,
    /// Stretch names.
    pub stretches: Vec<&'static str>,
    /// Error to show, naming the parameter.
    pub error: Option<String>,
    /// Sizes of the inline limit, for the hint.
    pub inline_sources: usize,
    /// Recent dependency jobs.
    pub recent: Vec<JobRecord>,
    /// A note above the form (a request filled in but not started).
    pub notice: Option<String>,
    /// With an error naming a list by its object id: the request for the
    /// list meant (its SLID or ALID), to follow.
    pub meant: Option<String>,
}

/// `GET /deps`: the form, filled in from the query string; a request that
/// already has a job redirects to it.
pub async fn deps_page(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
) -> Response {
    let (params, asked) = match dep_params(q.as_deref()) {
        Ok(x) => x,
        Err(e) => return failed(&st, DepParams::default(), e).await,
    };
    if let Err(e) = known_list(&st, &params).await {
        return failed(&st, params, e).await;
    }
    if !asked {
        return form(&st, params, None, StatusCode::OK).await;
    }
    let req = match params.validate() {
        Ok(r) => r,
        Err(e) => return failed(&st, params, e.into()).await,
    };
    match st
        .services
        .jobs
        .existing(
            JobKind::DependencyCutouts,
            &canonical(&req),
            &super::job_pages::submitter(&st.identity),
        )
        .await
    {
        Ok(Some(job)) => Redirect::to(&format!("/jobs/{}", job.public_id)).into_response(),
        Ok(None) => {
            let notice = format!(
                "Not started yet: check the request and press \u{201c}Make cutouts\u{201d} ({} source{}).",
                req.ids.len(),
                if req.ids.len() == 1 { "" } else { "s" }
            );
            render_form(&st, params, None, Some(notice), None, StatusCode::OK).await
        }
        Err(e) => failed(&st, params, ApiError::from(e)).await,
    }
}

/// `POST /deps`: runs the request and redirects (303) to its job.
pub async fn deps_post(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (params, _) = match submission(q.as_deref(), &headers, &body)
        .and_then(|joined| dep_params(Some(&joined)))
    {
        Ok(x) => x,
        Err(e) => return failed(&st, DepParams::default(), e).await,
    };
    match submit_deps(&st, &params).await {
        Ok(Submitted::Done(job)) | Ok(Submitted::Queued(job)) => {
            Redirect::to(&format!("/jobs/{}", job.public_id)).into_response()
        }
        Err(e) => failed(&st, params, e).await,
    }
}

/// The form again with an error, at the error's status.
async fn failed(st: &AppState, p: DepParams, e: ApiError) -> Response {
    let meant = meant_request(st, &p, &e).await;
    let mut r = render_form(st, p, Some(e.message().to_owned()), None, meant, e.status()).await;
    if let Some(s) = e.retry_after() {
        super::error::set_retry_after(&mut r, Some(s));
    }
    r
}

async fn form(st: &AppState, p: DepParams, error: Option<String>, status: StatusCode) -> Response {
    render_form(st, p, error, None, None, status).await
}

/// For a 404 whose SLID (ALID) is a list's object id: `/deps` filled in
/// with the list's real SLID (ALID) and the same ids.
async fn meant_request(st: &AppState, p: &DepParams, e: &ApiError) -> Option<String> {
    if e.status() != StatusCode::NOT_FOUND {
        return None;
    }
    let (kind, name, id) = match (p.slid, p.alid) {
        (Some(s), None) => (ListKind::Source, "slid", s),
        (None, Some(a)) => (ListKind::Associate, "alid", a),
        _ => return None,
    };
    let real = list_of_object(st, kind, id).await?;
    let q = serde_urlencoded::to_string([(name, real.to_string()), ("ids", p.ids.clone())]).ok()?;
    Some(format!("/deps?{q}"))
}

async fn render_form(
    st: &AppState,
    p: DepParams,
    error: Option<String>,
    notice: Option<String>,
    meant: Option<String>,
    status: StatusCode,
) -> Response {
    let chosen =
        dependency_cutouts::parse_classes(&p.classes).unwrap_or_else(|_| PIPELINE_CLASSES.to_vec());
    let classes = FrameClass::ALL
        .iter()
        .map(|c| (c.name(), c.short(), chosen.contains(c)))
        .collect();
    let recent = st
        .catalog
        .jobs(Some(JobKind::DependencyCutouts), None, 0, 10)
        .await
        .map(|(_, j)| j)
        .unwrap_or_default();
    let page = DepsPage {
        p,
        classes,
        stretches: Stretch::ALL.iter().map(|s| s.name()).collect(),
        error,
        inline_sources: st.config.inline_sources,
        recent,
        notice,
        meant,
    };
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => AppError::from(e).into_response(),
    }
}

/// `GET /api/deps`: 405, naming POST.
pub async fn deps_api_get() -> Response {
    submit_with_post("/api/deps")
}

/// `POST /api/deps`: JSON.
pub async fn deps_api(
    super::auth::Scoped(st): super::auth::Scoped,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let joined = submission(q.as_deref(), &headers, &body)?;
    let (params, asked) = dep_params(Some(&joined))?;
    if !asked {
        return Err(ApiError::bad(
            "ids: missing: give SIDs or AIDs such as 1:5,20,31:34",
        ));
    }
    let base = super::vo_endpoints::base_url(&st, &headers);
    match submit_deps(&st, &params).await? {
        Submitted::Done(job) => Ok(axum::Json(job_json(&st, &base, &job).await).into_response()),
        Submitted::Queued(job) => Ok(accepted(&st, &base, &job).await),
    }
}

/// A dependency-cutout result as its job page shows it (file paths already
/// URLs).
pub struct ResultTable {
    /// `SourceList 73` or `AssociateList 2`.
    pub list: String,
    /// The ids as asked.
    pub ids: String,
    /// Files written.
    pub files: usize,
    /// Time taken, in ms.
    pub make_ms: f64,
    /// One head per class column.
    pub heads: Vec<ClassHead>,
    /// One row per source.
    pub rows: Vec<ResultRow>,
    /// Whether the rows carry association ids.
    pub has_aid: bool,
}

/// A class column's head: the class name cut before each capital, so the
/// browser may wrap `MasterFlatFrame` into words.
pub struct ClassHead {
    /// The class name.
    pub name: String,
    /// Its words.
    pub words: Vec<String>,
}

/// One source's row.
pub struct ResultRow {
    /// SourceList id.
    pub slid: i64,
    /// Source id.
    pub sid: i64,
    /// Association id.
    pub aid: Option<i64>,
    /// RA and Dec in degrees, 6 decimals (a tenth of a pixel or better).
    pub radec: Option<(String, String)>,
    /// Position on its own frame, 2 decimals.
    pub xy: Option<String>,
    /// Why the row is empty.
    pub error: Option<String>,
    /// One cell per class.
    pub cells: Vec<ResultCell>,
    /// The pipeline GIF.
    pub pipeline: Option<Gif>,
    /// The epoch GIF.
    pub epochs: Option<Gif>,
}

/// An animated GIF of a row.
pub struct Gif {
    /// Its URL.
    pub url: String,
    /// What it shows, for `alt` and the caption.
    pub caption: String,
}

/// One class cell: the main cutout and the folded others.
pub struct ResultCell {
    /// The first cutout: the frame the product was directly made with.
    pub main: Option<Thumb>,
    /// The rest, shown when unfolded.
    pub more: Vec<Thumb>,
    /// What unfolding shows: `+2 indirect`, `+3 more`.
    pub summary: String,
}

/// One cutout of a cell.
pub struct Thumb {
    /// The frame.
    pub frame_id: i64,
    /// Its file name without `.fits`, shortened in the middle when long,
    /// cut after each `_` so that it wraps there under the thumbnail.
    pub name: Vec<String>,
    /// Everything about it, for the tooltip and the enlarged view.
    pub title: String,
    /// The PNG's URL.
    pub png: Option<String>,
    /// The FITS cutout's URL.
    pub fits: Option<String>,
    /// Why there is no cutout.
    pub error: Option<String>,
    /// Reached only through another calibration product.
    pub indirect: bool,
    /// `via ColdPixelMap cold_n1_ccd1`, for indirect frames, cut where it
    /// may wrap (between words of the class, after each `_`).
    pub via: Option<Vec<String>>,
    /// A frame the requester may not see: "restricted <class>", no link.
    pub restricted: Option<String>,
}

/// Longest frame name shown in full under a thumbnail.
const NAME_CHARS: usize = 20;

/// A file name without its FITS extension.
fn stem(filename: &str) -> &str {
    [".fits.fz", ".fits", ".fit", ".fz"]
        .iter()
        .find_map(|e| filename.strip_suffix(e))
        .unwrap_or(filename)
}

/// `stem` of `filename`, cut in the middle when longer than
/// [`NAME_CHARS`]: the start says what it is, the end which chip and band.
fn short_name(filename: &str) -> String {
    let s = stem(filename);
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= NAME_CHARS {
        return s.to_owned();
    }
    let head: String = chars[..NAME_CHARS / 2 - 1].iter().collect();
    let tail: String = chars[chars.len() - NAME_CHARS / 2..].iter().collect();
    format!("{head}\u{2026}{tail}")
}

/// `MasterFlatFrame` → `Master`, `Flat`, `Frame`.
fn words(name: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in name.chars() {
        match out.last_mut() {
            Some(w) if !c.is_ascii_uppercase() => w.push(c),
            _ => out.push(c.to_string()),
        }
    }
    out
}

impl Thumb {
    fn new(c: &CellCutout) -> Self {
        if c.restricted {
            return Thumb {
                frame_id: 0,
                name: Vec::new(),
                title: format!("a {} you may not see", c.class),
                png: None,
                fits: None,
                error: None,
                indirect: false,
                via: None,
                restricted: Some(c.class.clone()),
            };
        }
        let mut title = format!(
            "{} {} {} at ({:.1}, {:.1})",
            c.class, c.frame_id, c.filename, c.x, c.y
        );
        if let Some(d) = &c.date {
            title.push_str(&format!(", {d}"));
        }
        let through = match (&c.via, &c.via_class, &c.via_filename) {
            (Some(id), Some(class), Some(file)) => Some((id, class, file)),
            _ => None,
        };
        if let Some((id, class, file)) = through {
            let what = match (&c.role, c.indirect) {
                (Some(r), true) => format!("indirect: only as the {r} of"),
                (Some(r), false) => format!("the {r} of"),
                (None, _) => "made from".to_owned(),
            };
            title.push_str(&format!("; {what} {class} {id} {file}"));
        }
        Thumb {
            frame_id: c.frame_id,
            name: short_name(&c.filename)
                .split_inclusive('_')
                .map(str::to_owned)
                .collect(),
            title,
            png: c.png.clone(),
            fits: c.fits.clone(),
            error: c.error.clone(),
            indirect: c.indirect,
            via: through.filter(|_| c.indirect).map(|(_, class, file)| {
                let mut parts = vec!["via ".to_owned()];
                parts.extend(words(class));
                if let Some(last) = parts.last_mut() {
                    last.push(' ');
                }
                parts.extend(short_name(file).split_inclusive('_').map(str::to_owned));
                parts
            }),
            restricted: None,
        }
    }
}

impl ResultCell {
    fn new(cutouts: &[CellCutout]) -> Self {
        let mut thumbs = cutouts.iter().map(Thumb::new);
        let main = thumbs.next();
        let more: Vec<Thumb> = thumbs.collect();
        let indirect = more.iter().filter(|t| t.indirect).count();
        let direct = more.len() - indirect;
        let summary = match (direct, indirect) {
            (0, i) => format!("+{i} indirect"),
            (d, 0) => format!("+{d} more"),
            (d, i) => format!("+{d} more, {i} indirect"),
        };
        ResultCell {
            main,
            more,
            summary,
        }
    }
}

impl ResultRow {
    fn new(r: &DepRow) -> Self {
        let gif = |url: &Option<String>, what: &str, n: usize| {
            url.as_ref().map(|u| Gif {
                url: u.clone(),
                caption: format!("{what}, {n} frame{}", if n == 1 { "" } else { "s" }),
            })
        };
        ResultRow {
            slid: r.slid,
            sid: r.sid,
            aid: r.aid,
            radec: r
                .ra
                .zip(r.dec)
                .map(|(ra, dec)| (format!("{ra:.6}"), format!("{dec:+.6}"))),
            xy: r.x.zip(r.y).map(|(x, y)| format!("x {x:.2} y {y:.2}")),
            error: r.error.clone(),
            cells: r.cells.iter().map(|c| ResultCell::new(c)).collect(),
            pipeline: gif(&r.pipeline_gif, "pipeline", r.pipeline_frames),
            epochs: gif(&r.epochs_gif, "epochs", r.epoch_frames),
        }
    }
}

impl ResultTable {
    /// The table of `r`, whose file paths are already URLs.
    pub fn new(r: &DepResult) -> Self {
        ResultTable {
            list: r.list.clone(),
            ids: r.ids.clone(),
            files: r.files,
            make_ms: r.make_ms,
            heads: r
                .classes
                .iter()
                .map(|c| ClassHead {
                    name: c.clone(),
                    words: words(c),
                })
                .collect(),
            rows: r.rows.iter().map(ResultRow::new).collect(),
            has_aid: r.rows.iter().any(|x| x.aid.is_some()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_frame_names_are_cut_in_the_middle_and_class_names_into_words() {
        assert_eq!(short_name("flat_n1_i_ccd1.fits"), "flat_n1_i_ccd1");
        assert_eq!(
            short_name("raw_sci_n1_i_d1_ccd1.fits.fz"),
            "raw_sci_n1_i_d1_ccd1"
        );
        let long = short_name("raw_science_night1_filter_i_dither1_ccd1.fits");
        assert_eq!(long, "raw_scien\u{2026}ther1_ccd1");
        assert!(long.chars().count() <= NAME_CHARS);
        assert_eq!(words("MasterFlatFrame"), ["Master", "Flat", "Frame"]);
        assert_eq!(words("coadd"), ["coadd"]);
    }
}
