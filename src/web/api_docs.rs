//! The reference of the script-facing endpoints shown on `/help`: for each
//! endpoint its parameters (values and unit, default, meaning), answers and
//! errors.
//!
//! The rows of each parameter table follow the route's own parameter list
//! (`CUTOUT_PARAMS`, `DEP_PARAMS`, `sia::PARAMS`, …), not a copy of it: a
//! parameter added to a route shows up on the page at once, marked
//! undocumented until a line is written here, and a unit test fails for
//! every accepted parameter without a description and every description of
//! a parameter no longer accepted.

use super::{cutout_api, dependency_cutout_pages, job_pages, rgb_pages};
use super::{table_pages, vo_endpoints};
use crate::vo::{scs, sia, soda, tap};

/// One documented parameter.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// Its name, as the route's list spells it.
    pub name: &'static str,
    /// Values and unit.
    pub values: &'static str,
    /// Default when absent ("" when it is required or has none).
    pub default: &'static str,
    /// What it does.
    pub meaning: &'static str,
}

const fn p(
    name: &'static str,
    values: &'static str,
    default: &'static str,
    meaning: &'static str,
) -> Param {
    Param {
        name,
        values,
        default,
        meaning,
    }
}

/// One endpoint.
pub struct Endpoint {
    /// Anchor on the help page.
    pub id: &'static str,
    /// `GET`, `POST` or both.
    pub method: &'static str,
    /// The path.
    pub path: &'static str,
    /// What it is for.
    pub summary: &'static str,
    /// The parameters the code accepts, from the route's own list.
    pub accepts: fn() -> Vec<&'static str>,
    /// Their descriptions.
    pub params: &'static [Param],
    /// What a success looks like.
    pub answers: &'static str,
    /// Errors particular to this endpoint: (status, when).
    pub errors: &'static [(&'static str, &'static str)],
}

impl Endpoint {
    /// The rows of the parameter table in the route's order: the
    /// description, or `None` for a parameter nobody has documented yet.
    pub fn rows(&self) -> Vec<(&'static str, Option<Param>)> {
        (self.accepts)()
            .into_iter()
            .map(|name| {
                let doc = self
                    .params
                    .iter()
                    .find(|d| d.name.eq_ignore_ascii_case(name))
                    .copied();
                (name, doc)
            })
            .collect()
    }
}

const RENDER_VALUES: &str = "linear, sqrt, log, asinh, histeq";
const INTERVAL_VALUES: &str = "zscale, minmax, percentile[:P] (0 < P ≤ 100), manual";

const CUTOUT: &[Param] = &[
    p(
        "frame",
        "object id or file name",
        "",
        "The frame to cut (required).",
    ),
    p(
        "hdu",
        "zero-based HDU number",
        "the frame's image HDU",
        "Another HDU of the same file.",
    ),
    p(
        "ra",
        "degrees [0, 360) or sexagesimal hours (10:00:28.6)",
        "",
        "Centre, with dec; or give x and y.",
    ),
    p(
        "dec",
        "degrees [−90, 90] or sexagesimal (+02:12:21)",
        "",
        "Centre, with ra.",
    ),
    p(
        "x",
        "FITS pixel, 1-based (as ds9)",
        "",
        "Centre column, with y; instead of ra/dec.",
    ),
    p("y", "FITS pixel, 1-based", "", "Centre row, with x."),
    p(
        "size",
        "number > 0, in unit",
        "128 px",
        "Side of a square cutout; or width and height.",
    ),
    p(
        "width",
        "number > 0, in unit",
        "size",
        "Width (alone: a square).",
    ),
    p(
        "height",
        "number > 0, in unit",
        "size",
        "Height (alone: a square).",
    ),
    p(
        "unit",
        "px, arcsec, arcmin, deg",
        "px",
        "Unit of size/width/height. Sides over the server's limit (--max-cutout) are refused, never clamped.",
    ),
    p(
        "format",
        "fits, png, jpg (jpeg)",
        "fits",
        "FITS keeps the original pixels and BITPIX with a shifted WCS; off-frame parts are NaN (BLANK) and counted in X-Wisecut-Padded.",
    ),
    p(
        "raw",
        "flag (true/false, yes/no, 1/0, on/off)",
        "false",
        "Keep asinh-compressed (BSOFTEN/BOFFSET) values instead of linear flux.",
    ),
    p("stretch", RENDER_VALUES, "linear", "Images: the stretch."),
    p(
        "interval",
        INTERVAL_VALUES,
        "percentile:99.5 (manual when min/max are given)",
        "Images: the data range mapped to black…white.",
    ),
    p(
        "min",
        "number, data units",
        "",
        "Images: value shown black (interval=manual).",
    ),
    p(
        "max",
        "number, data units, > min",
        "",
        "Images: value shown white (interval=manual).",
    ),
    p(
        "invert",
        "flag (bare `invert` means true)",
        "false",
        "Images: white sky, black stars.",
    ),
    p(
        "nan",
        "black, white, grey, red, green, blue, #rrggbb, transparent (png only)",
        "black",
        "Images: colour of undefined pixels.",
    ),
    p(
        "output_size",
        "N (longest side) or WxH, 1–8192 px",
        "the cutout's size",
        "Images: resampled (area average) to this size.",
    ),
    p("quality", "1–100", "90", "JPEG quality."),
];

const IMAGES: &[Param] = &[
    p(
        "ra",
        "degrees or sexagesimal hours",
        "",
        "Position (required).",
    ),
    p("dec", "degrees or sexagesimal", "", "Position (required)."),
    p(
        "class",
        "a frame class or short name (coadd, reduced, …)",
        "every class on the sky",
        "Only frames of this class.",
    ),
    p(
        "filter",
        "filter name (g, r, i)",
        "all",
        "Only this filter.",
    ),
    p(
        "size",
        "number > 0, in unit",
        "128 px",
        "Size of the cutout URLs listed.",
    ),
    p("unit", "px, arcsec, arcmin, deg", "px", "Unit of size."),
    p(
        "format",
        "json, csv",
        "json",
        "Answer format; every row carries a cutout URL.",
    ),
];

const DEPS: &[Param] = &[
    p(
        "slid",
        "SourceList id (SLID)",
        "",
        "Sources of this list; exclusive with alid.",
    ),
    p(
        "alid",
        "AssociateList id (ALID)",
        "",
        "Members of associations of this list.",
    ),
    p(
        "ids",
        "ranges 1:5,20,31:34 (at most 10000; 5:1 is refused)",
        "",
        "SIDs (with slid) or AIDs (with alid); required.",
    ),
    p(
        "classes",
        "comma list of classes or short names (raw, bias, flat, fringe, hot, cold, illum, reduced, regridded, coadd); may repeat",
        "the ten pipeline classes",
        "Which lineage classes to cut.",
    ),
    p(
        "size",
        "number > 0, in unit (px: at most 1024)",
        "64 px",
        "Side of each cutout; px are pixels of the source's own frame, converted so every frame shows the same sky.",
    ),
    p("unit", "px, arcsec, arcmin", "px", "Unit of size."),
    p("stretch", RENDER_VALUES, "linear", "PNG and GIF stretch."),
    p(
        "interval",
        "zscale, minmax, percentile[:P] (no manual: frames differ in units)",
        "zscale",
        "PNG and GIF interval, per frame.",
    ),
    p(
        "same_stretch",
        "flag",
        "true",
        "One set of limits for all frames of the epoch GIF.",
    ),
];

const RGB: &[Param] = &[
    p(
        "size",
        "number > 0, in unit",
        "60 arcsec (256 px with unit=px)",
        "Side of the region (with ra/dec).",
    ),
    p(
        "minimum",
        "number, data units",
        "0",
        "Lupton: level shown black.",
    ),
    p("stretch", "number > 0", "5", "Lupton: linear stretch."),
    p("q", "number ≥ 0", "8", "Lupton: asinh softening Q."),
    p(
        "max_quantile",
        "0–1, above the median",
        "0.995",
        "STIFF: quantile shown at full scale.",
    ),
    p("gamma", "number > 0", "2.2", "STIFF: display gamma."),
    p("saturation", "number ≥ 0", "1", "STIFF: colour saturation."),
    p(
        "percentile",
        "0 < P ≤ 100",
        "99.5",
        "Linear: percentage kept per band.",
    ),
    p(
        "red",
        "object id or file name",
        "",
        "Red frame; with green and blue, instead of target.",
    ),
    p("green", "object id or file name", "", "Green frame."),
    p("blue", "object id or file name", "", "Blue frame."),
    p(
        "target",
        "a grid target (OBJECT), e.g. WISE-F1",
        "",
        "Instead of three frames: the target's frames of class in three filters.",
    ),
    p(
        "filters",
        "three filters red,green,blue: i,r,g or irg",
        "",
        "With target.",
    ),
    p(
        "class",
        "a frame class or short name",
        "CoaddedRegriddedFrame",
        "With target. A class with several frames per filter (RegriddedFrame) is a 400 listing them: give red, green, blue.",
    ),
    p(
        "ra",
        "degrees or sexagesimal hours",
        "whole frame",
        "Region centre, with dec.",
    ),
    p(
        "dec",
        "degrees or sexagesimal",
        "whole frame",
        "Region centre.",
    ),
    p("unit", "px, arcsec, arcmin, deg", "arcsec", "Unit of size."),
    p(
        "method",
        "lupton, stiff, linear",
        "lupton",
        "Colour mapping (astropy make_lupton_rgb; STIFF-like; per-band linear).",
    ),
    p("format", "png, jpeg", "png", "Picture format."),
];

const BATCH: &[Param] = &[
    p(
        "RA",
        "degrees or sexagesimal (CSV column)",
        "",
        "Position of a row; or SLID and SID.",
    ),
    p("DEC", "degrees or sexagesimal (CSV column)", "", "With RA."),
    p("SLID", "SourceList id (CSV column)", "", "With SID."),
    p("SID", "source id (CSV column)", "", "With SLID."),
    p(
        "NAME",
        "text (CSV column)",
        "row number",
        "Name used in file names.",
    ),
    p(
        "ID",
        "object id (CSV column)",
        "",
        "A frame to cut, instead of searching by position.",
    ),
    p("XSIZE", "arcmin", "1", "Cutout width (row or job option)."),
    p("YSIZE", "arcmin", "1", "Cutout height."),
    p(
        "FILTERS",
        "filters, e.g. gri or all",
        "all",
        "Which filters to cut.",
    ),
    p(
        "CLASSES",
        "comma list of classes or short names",
        "CoaddedRegriddedFrame",
        "Which frame classes to cut.",
    ),
    p("MAKE_FITS", "flag", "true", "Write FITS cutouts."),
    p("MAKE_PNG", "flag", "true", "Write PNG cutouts."),
    p(
        "MAKE_RGB_LUPTON",
        "flag",
        "false",
        "Write a Lupton RGB picture.",
    ),
    p(
        "MAKE_RGB_STIFF",
        "flag",
        "false",
        "Write a STIFF RGB picture.",
    ),
    p(
        "RGB_COLORS",
        "three filters red,green,blue",
        "i,r,g",
        "Filters of the RGB pictures.",
    ),
    p("RGB_MINIMUM", "number", "0", "Lupton minimum."),
    p("RGB_STRETCH", "number > 0", "5", "Lupton stretch."),
    p("RGB_Q", "number ≥ 0", "8", "Lupton Q."),
];

const JOBS: &[Param] = &[p(
    "kind",
    "deps, rgb, batch",
    "all",
    "Only jobs of this kind.",
)];

const PIXEL: &[Param] = &[
    p(
        "frame",
        "object id or file name",
        "",
        "The frame (required).",
    ),
    p("x", "FITS pixel, 1-based", "", "Column (required)."),
    p("y", "FITS pixel, 1-based", "", "Row (required)."),
];

const TABLE: &[Param] = &[
    p(
        "q",
        "column operator value; may repeat (AND)",
        "",
        "A condition, as in the table form (see above).",
    ),
    p(
        "sort",
        "column, -column for descending",
        "object id",
        "Sort order.",
    ),
    p("page", "1, 2, …", "1", "Page of an HTML table."),
    p("size", "rows per page", "50", "Page size of an HTML table."),
    p(
        "cols",
        "comma list of columns; may repeat",
        "the usual columns",
        "Columns to show and export.",
    ),
    p(
        "format",
        "html, csv, json, votable",
        "html",
        "Exports hold the whole query, every row, full precision.",
    ),
    p(
        "ra",
        "degrees or sexagesimal",
        "",
        "Cone search centre (source tables), with dec and radius.",
    ),
    p("dec", "degrees or sexagesimal", "", "Cone search centre."),
    p("radius", "arcsec", "", "Cone search radius."),
    p(
        "serialization",
        "tabledata, binary2",
        "tabledata",
        "VOTable serialisation.",
    ),
    p(
        "coords",
        "deg, sex",
        "deg",
        "How an HTML table shows RA/Dec: degrees to 1e-6 or sexagesimal; exports always hold full-precision degrees.",
    ),
    p(
        "thumbs",
        "yes, no (any boolean)",
        "yes",
        "Source tables of an HTML page: a lazy thumbnail per row.",
    ),
    p(
        "datalink",
        "flag",
        "true",
        "no: leave out the DataLink service descriptor.",
    ),
];

const SIA: &[Param] = &[
    p(
        "POS",
        "CIRCLE ra dec r | RANGE ra1 ra2 dec1 dec2 | POLYGON ra dec … (degrees); may repeat",
        "",
        "Frames whose footprint overlaps.",
    ),
    p(
        "BAND",
        "lo hi, wavelength in metres",
        "",
        "Frames whose filter overlaps.",
    ),
    p("TIME", "lo hi, MJD", "", "Exposure time range overlaps."),
    p(
        "POL",
        "polarisation states",
        "",
        "Accepted; the survey has none, so any POL matches nothing.",
    ),
    p("FOV", "lo hi, degrees", "", "Field of view."),
    p(
        "SPATRES",
        "lo hi, arcsec",
        "",
        "Spatial resolution (s_resolution: the seeing FWHM).",
    ),
    p("EXPTIME", "lo hi, seconds", "", "Exposure time."),
    p("ID", "ivo://wisecut/obj?N", "", "Publisher DID of a frame."),
    p("COLLECTION", "a frame class", "", "Frames of this class."),
    p("FACILITY", "text", "", "Telescope name."),
    p("INSTRUMENT", "text", "", "Instrument name."),
    p("DPTYPE", "image", "", "Data product type."),
    p(
        "CALIB",
        "0–3",
        "",
        "Calibration level (raw 1, reduced 2, regridded/coadd 3).",
    ),
    p("TARGET", "text", "", "Grid target (OBJECT)."),
    p(
        "TIMERES",
        "lo hi, seconds",
        "",
        "Time resolution (t_resolution: the exposure time).",
    ),
    p(
        "SPECRP",
        "lo hi",
        "",
        "Spectral resolving power (em_res_power: λ/Δλ of the filter).",
    ),
    p("FORMAT", "MIME type", "", "Access format (image/fits)."),
    p(
        "MAXREC",
        "0, 1, …",
        "no limit",
        "Most rows; 0 gives metadata only.",
    ),
    p(
        "RESPONSEFORMAT",
        "votable, application/x-votable+xml, text/xml; each with optional ;serialization=TABLEDATA|BINARY2",
        "votable",
        "Answer format (the media type answered is the one asked for).",
    ),
    p(
        "RUNID",
        "text",
        "",
        "DALI's run label: echoed in an INFO; parameters the service does not know are ignored and named in an INFO.",
    ),
];

const SODA: &[Param] = &[
    p("ID", "ivo://wisecut/obj?N", "", "The frame (required)."),
    p("CIRCLE", "ra dec radius, degrees", "", "Region to cut."),
    p(
        "POLYGON",
        "ra dec ra dec ra dec …, degrees",
        "",
        "Region to cut (its bounding box).",
    ),
    p(
        "POS",
        "CIRCLE … | RANGE … | POLYGON …",
        "",
        "Region in SIA's POS syntax.",
    ),
    p(
        "RESPONSEFORMAT",
        "application/fits",
        "application/fits",
        "Answer format.",
    ),
    p(
        "RUNID",
        "text",
        "",
        "DALI's run label: accepted; parameters the service does not know are ignored .",
    ),
];

const LINKS: &[Param] = &[
    p(
        "ID",
        "ivo://wisecut/obj?N; may repeat",
        "",
        "Objects whose links are wanted (required).",
    ),
    p(
        "RESPONSEFORMAT",
        "votable, application/x-votable+xml, text/xml; optional ;serialization=TABLEDATA|BINARY2",
        "application/x-votable+xml;content=datalink",
        "Answer format.",
    ),
    p(
        "RUNID",
        "text",
        "",
        "DALI's run label: echoed in an INFO; parameters the service does not know are ignored and named in an INFO.",
    ),
];

const PROV: &[Param] = &[
    p(
        "ID",
        "object id or ivo://wisecut/obj?N",
        "",
        "The object (required).",
    ),
    p("DEPTH", "1, 2, … or ALL", "1", "Steps to follow."),
    p(
        "DIRECTION",
        "BACK, FORWARD",
        "BACK",
        "BACK: what it was made from; FORWARD: what was made from it.",
    ),
    p(
        "RESPONSEFORMAT",
        "PROV-JSON, PROV-N",
        "PROV-JSON",
        "Answer format.",
    ),
    p(
        "RUNID",
        "text",
        "",
        "DALI's run label: accepted; parameters the service does not know are ignored .",
    ),
];

const TAP: &[Param] = &[
    p(
        "LANG",
        "ADQL, ADQL-2.0, ADQL-2.1",
        "",
        "Query language (required).",
    ),
    p(
        "QUERY",
        "an ADQL query",
        "",
        "Over ivoa.ObsCore, wisecut.sources, wisecut.source_lists, wisecut.associate_lists, wisecut.associations, wisecut.dependency and TAP_SCHEMA (see /vo/tap/tables).",
    ),
    p("REQUEST", "doQuery", "doQuery", "TAP 1.0's request name."),
    p("VERSION", "1.1", "1.1", "Accepted, ignored."),
    p(
        "MAXREC",
        "0 to 20000",
        "10000",
        "Most rows; a cut answer says OVERFLOW.",
    ),
    p(
        "RESPONSEFORMAT",
        "votable, application/x-votable+xml, text/xml; optional ;serialization=TABLEDATA|BINARY2",
        "votable",
        "Answer format.",
    ),
    p(
        "FORMAT",
        "as RESPONSEFORMAT",
        "",
        "TAP 1.0's name of RESPONSEFORMAT.",
    ),
    p(
        "UPLOAD",
        "name,param:part or name,http://…; several joined by ;",
        "",
        "Tables queried as TAP_UPLOAD.name: a VOTable sent as multipart part `part`, or fetched from an http URL (at most 20000 rows).",
    ),
    p("RUNID", "text", "", "Echoed in an INFO (and the UWS job)."),
    p(
        "PHASE",
        "RUN",
        "",
        "Async only: start the job at once instead of leaving it PENDING.",
    ),
];

const SCS: &[Param] = &[
    p("RA", "degrees", "", "Cone centre (required)."),
    p("DEC", "degrees", "", "Cone centre (required)."),
    p(
        "SR",
        "0 to 1 degree",
        "",
        "Cone radius (required); 0 answers the columns only.",
    ),
    p(
        "VERB",
        "1, 2, 3",
        "2",
        "1: id, position, distance; 2: plus magnitudes and links; 3: every column.",
    ),
    p("MAXREC", "0 to 50000", "10000", "Most rows, nearest first."),
    p(
        "RESPONSEFORMAT",
        "votable, application/x-votable+xml; optional ;serialization=BINARY2",
        "votable",
        "Answer format.",
    ),
    p("RUNID", "text", "", "Echoed in an INFO."),
];

const MOC: &[Param] = &[
    p(
        "class",
        "a frame class",
        "every class on the sky",
        "Coverage of this class.",
    ),
    p("filter", "filter name", "all", "Only this filter."),
    p(
        "depth",
        "HEALPix order 1–20",
        "14",
        "Resolution of the MOC.",
    ),
    p("format", "json, fits", "json", "Answer format."),
    p(
        "RUNID",
        "text",
        "",
        "DALI's run label, accepted; unknown parameters are ignored and named in the X-Wisecut-Ignored-Parameters header.",
    ),
];

fn batch_columns() -> Vec<&'static str> {
    crate::products::batch::positions_csv::column_names()
        .into_iter()
        .map(|(n, _)| n)
        .collect()
}

/// Every script-facing endpoint, in the order the help page shows them.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint {
            id: "api-cutout",
            method: "GET",
            path: "/api/cutout",
            summary: "A cutout of one frame around a sky or pixel position, as FITS or as a picture.",
            accepts: || cutout_api::CUTOUT_PARAMS.to_vec(),
            params: CUTOUT,
            answers: "200 with the FITS, PNG or JPEG; headers ETag (304 on If-None-Match), X-Wisecut-Geometry (x0 y0 width height on the frame), X-Wisecut-Padded (off-frame pixels), X-Wisecut-Limits (the display limits of a picture), Server-Timing.",
            errors: &[
                (
                    "400",
                    "a bad or missing parameter; the message names it and what is allowed",
                ),
                ("400", "a side over the size limit (refused, never clamped)"),
                ("400", "the box does not overlap the frame"),
                ("404", "no such frame"),
            ],
        },
        Endpoint {
            id: "api-images",
            method: "GET",
            path: "/api/images",
            summary: "The frames covering a position, best first, each with its cutout URL.",
            accepts: || cutout_api::IMAGES_PARAMS.to_vec(),
            params: IMAGES,
            answers: "200 with JSON (or CSV): one row per frame with id, class, filter, date and cutout URL.",
            errors: &[("400", "bad position, class, size or format")],
        },
        Endpoint {
            id: "api-pixel",
            method: "GET",
            path: "/api/pixel",
            summary: "The value, RA and Dec of one pixel.",
            accepts: || vec!["frame", "x", "y"],
            params: PIXEL,
            answers: "200 with JSON {x, y, inside, value, ra, dec}; value null off the frame or for NaN.",
            errors: &[("400", "a missing coordinate"), ("404", "no such frame")],
        },
        Endpoint {
            id: "api-deps",
            method: "POST",
            path: "/api/deps",
            summary: "Dependency cutouts: the same sky cut out of every frame in the lineage of sources or associations.",
            accepts: || dependency_cutout_pages::DEP_PARAMS.to_vec(),
            params: DEPS,
            answers: "200 with the job as JSON (rows per source, cutout, PNG and GIF URLs, all absolute) when made at once; 202 with the job as JSON and an absolute Location: …/api/jobs/ID when queued (more sources than --inline-sources).",
            errors: &[
                (
                    "400",
                    "no slid/alid, bad ids, unknown class, size over 1024 px",
                ),
                ("404", "no such SourceList or AssociateList"),
                ("405", "GET: jobs start only on POST"),
                ("429", "more new jobs a minute than a client may submit"),
            ],
        },
        Endpoint {
            id: "api-rgb",
            method: "POST",
            path: "/api/rgb",
            summary: "A colour picture of three frames, or of a target in three filters.",
            accepts: || rgb_pages::PARAMS.to_vec(),
            params: RGB,
            answers: "200 with the PNG or JPEG and X-Wisecut-Job; 202 with the job as JSON and an absolute Location: …/api/jobs/ID when a large whole-frame picture is queued. The same request gets the same job.",
            errors: &[
                (
                    "400",
                    "bad mapping parameter, region half given, not three filters, a target with several frames per filter (the message lists their ids), no overlap",
                ),
                (
                    "404",
                    "no such frame, or no frame of the target in a filter",
                ),
                ("405", "GET: jobs start only on POST"),
            ],
        },
        Endpoint {
            id: "api-batch",
            method: "POST",
            path: "/api/batch",
            summary: "DES-style batch cutouts: a CSV of positions as the body, job options in the query string (the option columns), each row able to override them.",
            accepts: batch_columns,
            params: BATCH,
            answers: "202 with the job as JSON (absolute links) and Location: …/api/jobs/ID; the job writes summary.json, positions_JOB.csv, log.txt, the cutouts and a ZIP.",
            errors: &[
                (
                    "400",
                    "a header without RA/DEC or SLID/SID, an unknown column or option (malformed rows are reported per line in the job, the others made)",
                ),
                ("405", "GET: jobs start only on POST"),
            ],
        },
        Endpoint {
            id: "api-jobs",
            method: "GET",
            path: "/jobs, /jobs/ID, /api/jobs/ID, /jobs/ID/zip, /jobs/ID/files/NAME",
            summary: "Jobs: the list (HTML: your jobs and those shared with your project), one job (HTML or JSON: status, progress, log, result, file URLs), its files and a ZIP of them. ID is the job's public id (32 hex digits). A job is its submitter's: private unless its owner shares it by link or with the project (POST /jobs/ID/share, form field share=private|link|project); a job submitted without cookie or token is reachable by its link only.",
            accepts: || job_pages::JOBS_PARAMS.to_vec(),
            params: JOBS,
            answers: "200; JSON status is queued, running, done or failed; a removed result says expired (410 for its files).",
            errors: &[
                (
                    "400",
                    "ID is not 32 hex digits; share is not private, link or project",
                ),
                (
                    "404",
                    "no such job or file, or a job that is not yours to see",
                ),
                ("410", "the result was removed by retention"),
            ],
        },
        Endpoint {
            id: "table-export",
            method: "GET",
            path: "/table/CLASS, /table/SourceList/SLID, /table/AssociateList/ALID",
            summary: "Any table query of the dbviewer, as HTML or exported whole as CSV, JSON or VOTable 1.4.",
            accepts: || table_pages::PARAMS.to_vec(),
            params: TABLE,
            answers: "200 with the table; exports are streamed.",
            errors: &[
                (
                    "400",
                    "a bad condition (shown above the form, the input kept), unknown column or format",
                ),
                ("404", "no such table or list"),
            ],
        },
        Endpoint {
            id: "vo-sia",
            method: "GET, POST",
            path: "/vo/sia",
            summary: "IVOA SIA 2.0 (also at /vo/sia/query): frames as ObsCore rows (VOTable) with access URLs and DataLink and SODA service descriptors. Parameter names are case-insensitive and may repeat (AND across names, OR within one).",
            accepts: || sia::PARAMS.to_vec(),
            params: SIA,
            answers: "200 with a VOTable; QUERY_STATUS ERROR in the VOTable for usage errors.",
            errors: &[("400", "a malformed POS, BAND, TIME or range")],
        },
        Endpoint {
            id: "vo-soda",
            method: "GET, POST",
            path: "/vo/soda/sync",
            summary: "IVOA SODA 1.0 synchronous cutout: the same bytes as /api/cutout for the same box.",
            accepts: || soda::PARAMS.to_vec(),
            params: SODA,
            answers: "200 with FITS; 204 when the region misses the frame.",
            errors: &[
                ("400", "no ID, no region, two regions"),
                ("404", "no such frame"),
            ],
        },
        Endpoint {
            id: "vo-links",
            method: "GET, POST",
            path: "/vo/links",
            summary: "IVOA DataLink 1.1: the file, cutout service, previews and the lineage (#progenitor, #calibration, #derivation, roles such as #bias and #flat).",
            accepts: || vo_endpoints::LINKS_PARAMS.to_vec(),
            params: LINKS,
            answers: "200 with a VOTable of links; an unknown ID gets an error row.",
            errors: &[("400", "no ID")],
        },
        Endpoint {
            id: "vo-prov",
            method: "GET, POST",
            path: "/prov",
            summary: "The lineage as W3C PROV (ProvSAP-style).",
            accepts: || vo_endpoints::PROV_PARAMS.to_vec(),
            params: PROV,
            answers: "200 with PROV-JSON or PROV-N.",
            errors: &[
                ("400", "no ID, bad DEPTH or DIRECTION"),
                ("404", "no such object"),
            ],
        },
        Endpoint {
            id: "vo-tap",
            method: "GET, POST",
            path: "/vo/tap/sync",
            summary: "IVOA TAP 1.1 with ADQL 2.1 (geometry included); asynchronous queries as UWS jobs at /vo/tap/async (POST the same parameters; PHASE=RUN starts them). Tables and columns: /vo/tap/tables.",
            accepts: || tap::PARAMS.to_vec(),
            params: TAP,
            answers: "200 with a VOTable; async: 303 to the job, whose phase, results and error follow UWS 1.1.",
            errors: &[(
                "400",
                "a query that cannot run (bad ADQL, unknown table or column), bad MAXREC or upload",
            )],
        },
        Endpoint {
            id: "vo-scs",
            method: "GET, POST",
            path: "/vo/scs",
            summary: "IVOA Simple Cone Search 1.03 over the sources of every SourceList (/vo/scs/{slid}: one list), through the HEALPix index.",
            accepts: || scs::PARAMS.to_vec(),
            params: SCS,
            answers: "200 with a VOTable, nearest first; errors are SCS error VOTables (HTTP 200, as SCS 1.03 says).",
            errors: &[],
        },
        Endpoint {
            id: "vo-moc",
            method: "GET",
            path: "/vo/moc",
            summary: "The survey's footprint as an IVOA MOC.",
            accepts: || vo_endpoints::MOC_PARAMS.to_vec(),
            params: MOC,
            answers: "200 with MOC JSON or a FITS MOC.",
            errors: &[("400", "unknown class, depth out of range, unknown format")],
        },
    ]
}

/// Statuses every endpoint may answer.
pub const COMMON_ERRORS: &[(&str, &str)] = &[
    (
        "400",
        "a parameter is unknown, repeated, malformed or out of range: `text/plain`, starting with the parameter's name and saying what is allowed",
    ),
    (
        "405",
        "the wrong method; the Allow header names the right one",
    ),
    ("408", "the request body came too slowly"),
    (
        "429",
        "over this client's limits (concurrent expensive requests, their rate, jobs a minute); Retry-After says when to try again",
    ),
    (
        "503",
        "the server's memory budget is busy for longer than it may wait, or the request ran over the request timeout (work that long belongs in a job); Retry-After",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_accepted_parameter_is_documented_and_nothing_else() {
        for e in endpoints() {
            for (name, doc) in e.rows() {
                assert!(
                    doc.is_some(),
                    "{}: {name} is accepted but not documented",
                    e.path
                );
            }
            let accepted = (e.accepts)();
            for d in e.params {
                assert!(
                    accepted.iter().any(|a| a.eq_ignore_ascii_case(d.name)),
                    "{}: {} is documented but not accepted",
                    e.path,
                    d.name
                );
            }
        }
    }
}
