//! Page structs for askama templates, one per page, and their handlers.

use super::{AppError, AppState};
use crate::catalog::CategoryCount;
use askama::Template;
use axum::extract::State;
use axum::response::Html;

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
pub async fn home(State(state): State<AppState>) -> Result<Html<String>, AppError> {
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

/// The help page.
#[derive(Template)]
#[template(path = "help.html")]
pub struct HelpPage {
    /// Operators of the query language.
    pub operators: Vec<&'static str>,
    /// Frame classes.
    pub classes: Vec<&'static str>,
}

/// `GET /help`: the query syntax, the lineage tree and the cutout API.
pub async fn help() -> Result<Html<String>, AppError> {
    let page = HelpPage {
        operators: crate::catalog::browse::Op::SPELLINGS
            .iter()
            .rev()
            .map(|(s, _)| *s)
            .collect(),
        classes: crate::model::FrameClass::ALL.map(|c| c.name()).to_vec(),
    };
    Ok(Html(page.render()?))
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
    State(st): State<AppState>,
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
