//! Hostile input on every route: whatever a client sends, the answer is
//! never a 5xx or a panic, and an error never shows a server path or repeats
//! a huge value back.
//!
//! The route fuzz sends a few hundred generated requests to each route of
//! `web::app` — parameter names drawn from the route's own set (plus an
//! occasional stranger), values from a hostile corpus (`nan`, `1e400`,
//! 309-digit numbers, long and unicode strings, NUL bytes, SQL-ish text,
//! sexagesimal junk) mixed with plausible values, so that requests get past
//! the first check and reach the deeper ones. A seeded generator keeps every
//! run the same and every failure reproducible. The regression tests below
//! it are the bugs the fuzz and the issue found, each named after its bug.

use std::fmt::Write as _;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tower::ServiceExt;
use wisecut::web::{AppState, app};
// Each route's parameters as the route itself lists them, so that a new
// parameter is fuzzed too (the batch options are the fuzz's own list).
use wisecut::vo::sia::PARAMS as SIA;
use wisecut::web::cutout_api::{CUTOUT_PARAMS as CUTOUT, IMAGES_PARAMS};
use wisecut::web::dependency_cutout_pages::DEP_PARAMS as DEPS;
use wisecut::web::image_view::PARAMS as IMAGE;
use wisecut::web::object_view::PARAMS as OBJECT;
use wisecut::web::rgb_pages::PARAMS as RGB;
use wisecut::web::table_pages::PARAMS as TABLE;

use super::common;

/// What one request got back.
struct Answer {
    status: StatusCode,
    body: String,
}

/// A request: method, URI, and a body with its content type.
#[derive(Debug, Clone)]
struct Req {
    method: &'static str,
    uri: String,
    body: Option<(String, Vec<u8>)>,
}

/// Sends `req` through the router on a task of its own, so that a panic in
/// a handler is reported with the request that caused it.
async fn send(st: &AppState, req: &Req) -> Answer {
    let mut builder = Request::builder().method(req.method).uri(&req.uri);
    let body = match &req.body {
        None => Body::empty(),
        Some((content_type, bytes)) => {
            builder = builder.header("content-type", content_type);
            Body::from(bytes.clone())
        }
    };
    let request = builder.body(body).unwrap_or_else(|e| {
        panic!(
            "{}: not a request: {e}",
            req.uri.chars().take(300).collect::<String>()
        )
    });
    let router = app(st.clone());
    let answer = tokio::spawn(async move {
        let res = router.oneshot(request).await.unwrap();
        let status = res.status();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    })
    .await;
    match answer {
        Ok(a) => a,
        Err(e) => panic!(
            "{} {} panicked: {e}\nbody: {:?}",
            req.method,
            req.uri.chars().take(2000).collect::<String>(),
            req.body.as_ref().map(|b| String::from_utf8_lossy(&b.1)
                .chars()
                .take(2000)
                .collect::<String>())
        ),
    }
}

/// Percent-encodes everything but unreserved characters (for path segments
/// and hand-built query strings).
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn query(pairs: &[(String, String)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// Values that have broken servers before.
fn hostile() -> Vec<String> {
    let mut v: Vec<String> = [
        "nan",
        "NaN",
        "-nan",
        "inf",
        "-inf",
        "+inf",
        "Infinity",
        "-Infinity",
        "1e400",
        "-1e400",
        "1e308",
        "-1e308",
        "1e-400",
        "4.9e-324",
        "1e15",
        "-1e15",
        "1e19",
        "-1",
        "0",
        "-0",
        "0.0",
        "1",
        "2",
        "1.5",
        "255",
        "256",
        "65536",
        "4294967296",
        "2147483648",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "",
        " ",
        "\t",
        "\0",
        "%00",
        "\u{202e}",
        "😀",
        "é",
        "Ω≈ç√∫",
        "' OR 1=1 --",
        "'; DROP TABLE frame; --",
        "\" OR \"\"=\"",
        "1; SELECT 1",
        "<script>alert(1)</script>",
        "&amp;",
        "../../../etc/passwd",
        "..",
        "/",
        "\\",
        "1:2:3",
        "5:1",
        "1:5,20,31:34",
        "0:9223372036854775806",
        ",,,",
        "1,,2",
        "12:34:56.7",
        "99:99:99",
        "24:00:00",
        "-00:00:00",
        "12h30m",
        "1:2:3:4",
        "12.5:30",
        "+-1",
        "--1",
        "1e",
        "0x10",
        "1_000",
        "1.2.3",
        "true",
        "false",
        "yes",
        "maybe",
        "ALL",
        "all",
        "fit",
        "manual",
        "percentile:nan",
        "percentile:1e400",
        "percentile:-1",
        "0x0",
        "1x1",
        "99999999x99999999",
        "nanxnan",
        "18446744073709551616x2",
        "CIRCLE nan nan nan",
        "CIRCLE 1e400 0 1",
        "CIRCLE 0 1e300 1",
        "RANGE 1e400 -1e400 nan 1",
        "RANGE 0 360 -90 90",
        "POLYGON 1 2 3",
        "POLYGON 0 0 1e300 0 0 1e300",
        "-Inf +Inf",
        "nan nan",
        "inf inf",
        "1e400 1e401",
        "ivo://wisecut/obj?9223372036854775807",
        "ivo://wisecut/obj?-1",
        "ivo://wisecut/obj?1e400",
        "filter = r",
        "exptime > nan",
        "object_id = 9223372036854775808",
        "mjd_obs between 1e400,2",
        "date_obs > 99999-99-99",
        "filename like %",
    ]
    .map(String::from)
    .to_vec();
    v.push("9".repeat(309));
    v.push(format!("-{}", "9".repeat(309)));
    v.push(format!("0.{}1", "0".repeat(400)));
    v.push(format!("1e{}", "9".repeat(40)));
    v.push("a".repeat(5000));
    v.push("é".repeat(1000));
    v.push("1,".repeat(2000));
    v.push("1:".repeat(100));
    v.push(format!("CIRCLE {}", "1 ".repeat(3000)));
    v.push(format!("POLYGON {}", "0 0 ".repeat(2000)));
    v
}

/// Long hostile values are runs of one character; an error that repeats
/// such a run (instead of cutting it through `params::shown`) gives itself
/// away by containing this much of it.
const LONG_RUNS: [&str; 3] = [
    "999999999999999999999999999999999999999999999999999999999999",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "0000000000000000000000000000000000000000000000000000000000000000",
];

/// The test subjects of the tiny survey, for plausible values.
struct Subjects {
    frame: i64,
    filename: String,
    ra: f64,
    dec: f64,
    slid: i64,
    alid: i64,
    job: String,
}

/// Plausible values of a parameter, by its (lower-case) name, so that
/// requests get past the first check.
fn plausible(name: &str, s: &Subjects) -> Vec<String> {
    let ra = s.ra.to_string();
    let dec = s.dec.to_string();
    let frame = s.frame.to_string();
    let did = format!("ivo://wisecut/obj?{}", s.frame);
    let v: Vec<String> = match name {
        "frame" | "red" | "green" | "blue" => vec![frame, s.filename.clone()],
        "ra" => vec![ra, "10:00:00".into()],
        "dec" => vec![dec, "-01:02:03".into()],
        "x" | "y" | "cx" | "cy" => vec!["10".into(), "100.5".into()],
        "size" | "width" | "height" | "xsize" | "ysize" => {
            vec!["10".into(), "64".into(), "0.5".into()]
        }
        "radius" => vec!["60".into(), "3600".into()],
        "unit" => vec!["px".into(), "arcsec".into(), "arcmin".into(), "deg".into()],
        "format" => vec![
            "fits".into(),
            "png".into(),
            "jpg".into(),
            "csv".into(),
            "json".into(),
            "votable".into(),
        ],
        "stretch" => vec!["linear".into(), "asinh".into(), "log".into(), "1".into()],
        "interval" => vec![
            "zscale".into(),
            "minmax".into(),
            "manual".into(),
            "percentile:99".into(),
        ],
        "min" | "max" | "minimum" | "gamma" | "saturation" | "percentile" => {
            vec!["0".into(), "100".into(), "0.5".into()]
        }
        // Table conditions, and Lupton's Q of the RGB maker.
        "q" => vec![
            "filter = r".into(),
            "exptime > 1".into(),
            "mjd_obs between 1,1e6".into(),
            "sid <= 10".into(),
            "8".into(),
        ],
        "output_size" => vec!["64x64".into(), "100".into()],
        "quality" => vec!["50".into()],
        "hdu" => vec!["0".into(), "1".into(), "5".into()],
        "bin" => vec!["1".into(), "fit".into()],
        "zoom" => vec!["2".into()],
        "contrast" => vec!["high".into()],
        "slid" => vec![s.slid.to_string()],
        "alid" => vec![s.alid.to_string()],
        "ids" => vec!["1:3".into(), "1".into()],
        "classes" => vec!["ReducedScienceFrame".into(), "reduced".into()],
        "kind" => vec!["deps".into(), "rgb".into(), "batch".into()],
        "sort" => vec!["-mjd_obs".into(), "object_id".into()],
        "page" => vec!["1".into(), "2".into()],
        "cols" => vec!["object_id,filename".into()],
        "serialization" => vec!["binary2".into()],
        "datalink" => vec!["no".into()],
        "coords" => vec!["sex".into(), "deg".into()],
        "thumbs" => vec!["no".into(), "yes".into()],
        "class" => vec!["ReducedScienceFrame".into()],
        "filter" => vec!["r".into(), "g".into()],
        "depth" => vec!["5".into(), "ALL".into()],
        "method" => vec!["stiff".into(), "linear".into()],
        "pos" => vec![
            format!("CIRCLE {ra} {dec} 0.1"),
            format!("RANGE 0 360 {} {}", s.dec - 1.0, s.dec + 1.0),
            format!(
                "POLYGON {ra} {dec} {} {dec} {ra} {}",
                s.ra + 0.1,
                s.dec + 0.1
            ),
        ],
        "circle" => vec![format!("{ra} {dec} 0.01")],
        "polygon" => vec![format!(
            "{ra} {dec} {} {dec} {ra} {}",
            s.ra + 0.01,
            s.dec + 0.01
        )],
        "band" => vec!["4e-7 6e-7".into(), "5e-7".into(), "-Inf +Inf".into()],
        "time" | "exptime" | "fov" | "spatres" => vec!["0 1e6".into(), "-Inf +Inf".into()],
        "id" => vec![did, frame],
        "collection" => vec!["ReducedScienceFrame".into()],
        "calib" => vec!["2".into()],
        "maxrec" => vec!["10".into(), "0".into()],
        // Simple Cone Search.
        "sr" => vec!["0".into(), "0.01".into(), "0.2".into()],
        "verb" => vec!["1".into(), "3".into()],
        "responseformat" => vec!["votable".into(), "application/fits".into(), "PROV-N".into()],
        "direction" => vec!["BACK".into(), "FORWARD".into()],
        "filters" => vec!["i,r,g".into(), "gri".into(), "all".into()],
        "target" => vec!["TARGET".into()],
        _ => vec!["1".into()],
    };
    v
}

/// A route of `web::app`: how it is reached and which parameters it reads.
struct Route {
    method: &'static str,
    /// The path, with `{frame}`, `{id}`, `{name}`, `{slid}`, `{alid}`,
    /// `{job}` and `{path}` standing for generated segments.
    path: &'static str,
    params: &'static [&'static str],
    /// Parameters that may repeat (table conditions, DAL parameters).
    repeatable: &'static [&'static str],
    /// How the parameters travel.
    send: Send,
    /// Requests to generate.
    count: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Send {
    Query,
    /// As a form body (`application/x-www-form-urlencoded`), half the time
    /// in the query instead.
    Form,
    /// Options in the query, a generated CSV as the body (`/api/batch`).
    CsvBody,
    /// A multipart form with a `positions` file (`POST /batch`).
    Multipart,
}

/// Simple Cone Search's parameters (`web::vo_services`).
const SCS: &[&str] = wisecut::vo::scs::PARAMS;

const BATCH: &[&str] = &[
    "XSIZE",
    "YSIZE",
    "FILTERS",
    "CLASSES",
    "MAKE_FITS",
    "MAKE_PNG",
    "MAKE_RGB_LUPTON",
    "MAKE_RGB_STIFF",
    "RGB_COLORS",
    "RGB_MINIMUM",
    "RGB_STRETCH",
    "RGB_Q",
];

const fn route(path: &'static str, params: &'static [&'static str], count: usize) -> Route {
    Route {
        method: "GET",
        path,
        params,
        repeatable: &[],
        send: Send::Query,
        count,
    }
}

/// Every route of `web::app`, in its order.
fn routes() -> Vec<Route> {
    let dal = |path, params, repeatable| Route {
        method: "POST",
        path,
        params,
        repeatable,
        send: Send::Form,
        count: 150,
    };
    vec![
        route("/", &[], 20),
        route("/health", &[], 5),
        route("/tables", &[], 10),
        Route {
            repeatable: &["q", "cols"],
            ..route("/table/{name}", TABLE, 400)
        },
        Route {
            repeatable: &["q", "cols"],
            ..route("/table/{name}/{id}", TABLE, 200)
        },
        route("/help", &[], 5),
        route("/status", &[], 5),
        route("/favicon.svg", &[], 2),
        route("/favicon.ico", &[], 2),
        route("/object/{id}", OBJECT, 100),
        route("/thumb/{frame}", &[], 60),
        route("/image/{frame}", IMAGE, 250),
        route("/render/{frame}", &CUTOUT[1..], 250),
        route("/api/pixel", &["frame", "x", "y"], 200),
        route("/api/cutout", CUTOUT, 400),
        route("/api/images", IMAGES_PARAMS, 200),
        Route {
            repeatable: &["classes"],
            ..route("/deps", &DEPS, 120)
        },
        Route {
            repeatable: &["classes"],
            method: "POST",
            send: Send::Form,
            ..route("/deps", &DEPS, 120)
        },
        Route {
            repeatable: &["classes"],
            ..route("/api/deps", &DEPS, 20)
        },
        Route {
            repeatable: &["classes"],
            method: "POST",
            send: Send::Form,
            ..route("/api/deps", &DEPS, 120)
        },
        route("/jobs", &["kind"], 30),
        route("/jobs/{job}", &[], 40),
        route("/jobs/{job}/zip", &[], 40),
        route("/jobs/{job}/files/{path}", &[], 60),
        route("/api/jobs/{job}", &[], 40),
        route("/batch", &[], 5),
        Route {
            method: "POST",
            send: Send::Multipart,
            ..route("/batch", BATCH, 100)
        },
        Route {
            method: "POST",
            send: Send::CsvBody,
            ..route("/api/batch", BATCH, 200)
        },
        route("/rgb", RGB, 120),
        route("/rgb/gallery", &[], 5),
        Route {
            method: "POST",
            send: Send::Form,
            ..route("/rgb", RGB, 120)
        },
        route("/api/rgb", RGB, 20),
        Route {
            method: "POST",
            send: Send::Form,
            ..route("/api/rgb", RGB, 120)
        },
        route("/data/{id}", &[], 60),
        dal("/vo/sia/query", SIA, SIA),
        dal(
            "/vo/soda/sync",
            &["ID", "CIRCLE", "POLYGON", "POS", "RESPONSEFORMAT"],
            &["CIRCLE", "POLYGON", "POS"],
        ),
        dal("/vo/links", &["ID", "RESPONSEFORMAT"], &["ID"]),
        dal(
            "/prov",
            &["ID", "DEPTH", "DIRECTION", "RESPONSEFORMAT"],
            &[],
        ),
        route("/vo/moc", &["class", "filter", "depth", "format"], 80),
        route("/vo/availability", &[], 5),
        route("/vo/capabilities", &[], 5),
        route("/vo/sia/availability", &[], 5),
        route("/vo/sia/capabilities", &[], 5),
        dal("/vo/scs", SCS, &[]),
        Route {
            method: "GET",
            send: Send::Query,
            ..dal("/vo/scs/{slid}", SCS, &[])
        },
        route("/vo/scs/capabilities", &[], 5),
        route("/vo/scs/availability", &[], 5),
        route("/vo/resource", &[], 5),
        route("/sky", &["frame", "slid", "ids"], 150),
        route("/vo", &[], 5),
        route("/static/samp.js", &[], 2),
        route("/static/aladin-view.js", &[], 2),
        route("/static/aladin-view.css", &[], 2),
        route("/static/aladin/aladin.js", &[], 2),
        route("/static/style.css", &[], 2),
        route("/no/such/{name}", &[], 20),
    ]
}

/// A value for `name`: hostile two times in three, else plausible.
fn value(rng: &mut ChaCha8Rng, name: &str, s: &Subjects, corpus: &[String]) -> String {
    if rng.random_ratio(2, 3) {
        corpus.choose(rng).cloned().unwrap_or_default()
    } else {
        plausible(&name.to_ascii_lowercase(), s)
            .choose(rng)
            .cloned()
            .unwrap_or_default()
    }
}

/// A generated path segment for a placeholder.
fn segment(rng: &mut ChaCha8Rng, slot: &str, s: &Subjects, corpus: &[String]) -> String {
    let good: Vec<String> = match slot {
        "frame" => vec![s.frame.to_string()],
        "id" => vec![s.frame.to_string(), s.slid.to_string(), s.alid.to_string()],
        "name" => vec![
            "ReducedScienceFrame".into(),
            "SourceList".into(),
            "AssociateList".into(),
            "RawBiasFrame".into(),
        ],
        "job" => vec![s.job.clone()],
        "slid" => vec![s.slid.to_string()],
        "path" => vec!["manifest.json".into(), "../../etc/passwd".into()],
        _ => vec![],
    };
    let v = if rng.random_bool(0.5) {
        good.choose(rng).cloned().unwrap_or_default()
    } else {
        corpus.choose(rng).cloned().unwrap_or_default()
    };
    // An empty segment would route elsewhere; that is the router's business.
    if v.is_empty() { "x".into() } else { encode(&v) }
}

fn fill_path(rng: &mut ChaCha8Rng, path: &str, s: &Subjects, corpus: &[String]) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').map_or(rest.len(), |e| start + e);
        let slot = &rest[start + 1..end];
        if slot == "name" && path == "/table/{name}/{id}" && rng.random_bool(0.7) {
            // Reach the list tables most of the time.
            out.push_str(["SourceList", "AssociateList"].choose(rng).unwrap_or(&""));
        } else {
            out.push_str(&segment(rng, slot, s, corpus));
        }
        rest = &rest[(end + 1).min(rest.len())..];
    }
    out.push_str(rest);
    out
}

/// A positions CSV: a header from real and hostile column names, rows of
/// plausible and hostile cells.
fn csv(rng: &mut ChaCha8Rng, s: &Subjects, corpus: &[String]) -> String {
    let names = [
        "RA", "DEC", "SLID", "SID", "NAME", "XSIZE", "YSIZE", "FILTERS", "MAKE_PNG",
    ];
    let mut header: Vec<String> = vec!["RA".into(), "DEC".into()];
    for _ in 0..rng.random_range(0..4) {
        header.push(if rng.random_bool(0.8) {
            (*names.choose(rng).unwrap_or(&"RA")).to_owned()
        } else {
            corpus.choose(rng).cloned().unwrap_or_default()
        });
    }
    let mut out = header.join(",");
    out.push('\n');
    for _ in 0..rng.random_range(0..6) {
        let row: Vec<String> = header
            .iter()
            .map(|h| value(rng, h, s, corpus).replace(['\n', '\r', ',', '"'], " "))
            .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

/// One generated request to `r`.
fn generate(rng: &mut ChaCha8Rng, r: &Route, s: &Subjects, corpus: &[String]) -> Req {
    let path = fill_path(rng, r.path, s, corpus);
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !r.params.is_empty() {
        for _ in 0..rng.random_range(0..=r.params.len().min(6)) {
            let name = (*r.params.choose(rng).unwrap_or(&"x")).to_owned();
            let repeat = if r.repeatable.contains(&name.as_str()) && rng.random_ratio(1, 8) {
                rng.random_range(2..1200)
            } else {
                1
            };
            for _ in 0..repeat {
                let mut v = value(rng, &name, s, corpus);
                // A thousand conditions fit in a URI only if each is short.
                if repeat > 1 && v.len() > 40 {
                    v = plausible(&name.to_ascii_lowercase(), s)
                        .choose(rng)
                        .cloned()
                        .unwrap_or_default();
                }
                pairs.push((name.clone(), v));
            }
        }
        // Names in other cases, unknown names and repeated names.
        if rng.random_ratio(1, 10) {
            let name = (*r.params.choose(rng).unwrap_or(&"x")).to_ascii_uppercase();
            pairs.push((name, "1".into()));
        }
        if rng.random_ratio(1, 20) {
            pairs.push((corpus.choose(rng).cloned().unwrap_or_default(), "1".into()));
        }
    }
    // The http crate refuses URIs over 64 KiB; servers see no longer ones.
    while query(&pairs).len() > 60_000 {
        pairs.pop();
    }
    match r.send {
        Send::Query => Req {
            method: r.method,
            uri: if pairs.is_empty() {
                path
            } else {
                format!("{path}?{}", query(&pairs))
            },
            body: None,
        },
        Send::Form if rng.random_bool(0.5) => Req {
            method: "GET",
            uri: format!("{path}?{}", query(&pairs)),
            body: None,
        },
        Send::Form => Req {
            method: r.method,
            uri: path,
            body: Some((
                "application/x-www-form-urlencoded".into(),
                query(&pairs).into_bytes(),
            )),
        },
        Send::CsvBody => Req {
            method: r.method,
            uri: format!("{path}?{}", query(&pairs)),
            body: Some(("text/csv".into(), csv(rng, s, corpus).into_bytes())),
        },
        Send::Multipart => {
            let boundary = "wisecut-fuzz-boundary";
            let mut body = String::new();
            let file = csv(rng, s, corpus);
            let _ = write!(
                body,
                "--{boundary}\r\nContent-Disposition: form-data; name=\"positions\"; filename=\"p.csv\"\r\nContent-Type: text/csv\r\n\r\n{file}\r\n"
            );
            for (k, v) in &pairs {
                let k = k.replace(['"', '\r', '\n'], "");
                let v = v.replace(boundary, "");
                let _ = write!(
                    body,
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                );
            }
            let _ = write!(body, "--{boundary}--\r\n");
            Req {
                method: r.method,
                uri: path,
                body: Some((
                    format!("multipart/form-data; boundary={boundary}"),
                    body.into_bytes(),
                )),
            }
        }
    }
}

/// The subjects of a database with the tiny survey, and a finished job.
async fn subjects(st: &AppState, db: &common::TestDb) -> Subjects {
    let f = common::first_frame(&db.catalog, wisecut::model::FrameClass::ReducedScienceFrame).await;
    let (ra, dec) = f.center.expect("a science frame is on the sky");
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let alid = {
        use wisecut::catalog::browse::{Cell, Query, Table};
        let t = Table::AssociateLists;
        let page = db.catalog.browse(&t, &Query::new(&t)).await.unwrap();
        match page.rows.first().map(|r| &r[0]) {
            Some(Cell::Int(a)) => *a,
            other => panic!("no AssociateList: {other:?}"),
        }
    };
    // A small dependency-cutout job, made inline, for the job routes.
    let job =
        common::submit_json(st, &format!("/api/deps?slid={slid}&ids=1&classes=reduced")).await;
    Subjects {
        frame: f.target.object_id.0,
        filename: f.filename.clone(),
        ra,
        dec,
        slid,
        alid,
        job: job["id"].as_str().expect("a job id").to_owned(),
    }
}

/// What a client must never see: the server's directories.
fn server_paths(st: &AppState) -> Vec<String> {
    let c = &st.config;
    let mut v: Vec<String> = [&c.data_dir, &c.cache_dir, &c.jobs_dir]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    v.push("/tmp/".into());
    v
}

/// The checks every answer must pass.
fn check(req: &Req, a: &Answer, paths: &[String]) -> Result<(), String> {
    let what = || {
        format!(
            "{} {} -> {}",
            req.method,
            req.uri.chars().take(300).collect::<String>(),
            a.status
        )
    };
    if a.status.is_server_error() {
        return Err(format!(
            "{}: {}",
            what(),
            a.body.chars().take(500).collect::<String>()
        ));
    }
    if a.status.is_client_error() {
        for p in paths {
            if a.body.contains(p.as_str()) {
                return Err(format!(
                    "{}: shows the server path {p}: {}",
                    what(),
                    excerpt(&a.body, p)
                ));
            }
        }
        // A form filled in again with what was typed, and a VOTable's
        // echo of the query (INFO value="…"), repeat input in attribute
        // values on purpose (escaped); messages are element text.
        let text = without_attribute_values(&a.body);
        for run in LONG_RUNS {
            if text.contains(run) {
                return Err(format!(
                    "{}: repeats a long value instead of cutting it short: {}",
                    what(),
                    excerpt(&text, run)
                ));
            }
        }
    }
    Ok(())
}

/// `body` with every quoted attribute value (`="…"`) emptied.
fn without_attribute_values(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    while let Some(i) = rest.find("=\"") {
        out.push_str(&rest[..i + 2]);
        rest = &rest[i + 2..];
        match rest.find('"') {
            Some(j) => rest = &rest[j..],
            None => rest = "",
        }
    }
    out.push_str(rest);
    out
}

fn excerpt(body: &str, needle: &str) -> String {
    let at = body.find(needle).unwrap_or(0);
    let start = body.floor_char_boundary(at.saturating_sub(200));
    let end = body.ceil_char_boundary((at + 200).min(body.len()));
    body[start..end].to_owned()
}

/// The route fuzz: every route of `web::app`, a few hundred hostile
/// requests each; no 5xx, no panic, no server path, no echoed monster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_hostile_input_with_a_4xx_at_worst() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| c.max_cutout_px = 512);
    let s = subjects(&st, &db).await;
    let corpus = hostile();
    let paths = server_paths(&st);
    let mut rng = ChaCha8Rng::seed_from_u64(0x5eed_bad1);
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut sent = 0;
    for r in routes() {
        let t = std::time::Instant::now();
        for _ in 0..r.count {
            let req = generate(&mut rng, &r, &s, &corpus);
            let a = send(&st, &req).await;
            sent += 1;
            if let Err(e) = check(&req, &a, &paths) {
                failures.push(e);
            }
        }
        eprintln!(
            "{} {}: {} requests in {:.1} s",
            r.method,
            r.path,
            r.count,
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "route fuzz: {sent} requests in {:.1} s, {} failures",
        started.elapsed().as_secs_f64(),
        failures.len()
    );
    // Server errors first: they are the worst.
    failures.sort_by_key(|f| !f.contains(" -> 5"));
    assert!(
        failures.is_empty(),
        "{} of {sent} requests failed; the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// Regression (issue 13): 997 `q=` conditions, or a page number of
/// `i64::MAX`, gave a 500. They are 400s naming the parameter and the limit.
#[tokio::test]
async fn too_many_conditions_and_absurd_pages_are_400s_naming_the_parameter() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |_| {});
    let many: String = (0..997).map(|i| format!("&q=object_id+%3E+{i}")).collect();
    for (uri, param) in [
        (format!("/table/ReducedScienceFrame?format=csv{many}"), "q"),
        (format!("/table/ReducedScienceFrame?{}", &many[1..]), "q"),
        (
            "/table/ReducedScienceFrame?page=9223372036854775807".to_string(),
            "page",
        ),
        ("/table/ReducedScienceFrame?page=-1".to_string(), "page"),
        (
            "/table/ReducedScienceFrame?size=9223372036854775807".to_string(),
            "size",
        ),
    ] {
        let (s, _, body) = common::fetch(&st, &uri).await;
        let text = String::from_utf8_lossy(&body);
        assert_eq!(
            s,
            StatusCode::BAD_REQUEST,
            "{}: {text}",
            &uri[..60.min(uri.len())]
        );
        let doc = scraper::Html::parse_document(&text);
        let msg: String = doc.root_element().text().collect();
        assert!(
            msg.contains(&format!("{param}:")),
            "{}: names {param}: {msg}",
            &uri[..60.min(uri.len())]
        );
    }
}

/// Regression (issue 13): a damaged frame file gave a bare 500, and
/// `/data/N` served a truncated file as 200. Both now say what is wrong
/// with which frame, without the server's paths.
#[tokio::test]
async fn a_damaged_or_truncated_frame_file_is_reported_not_served() {
    let db = common::ingested(common::sqlite().await).await;
    // A copy of the survey's files, to damage.
    let data = tempfile::tempdir().unwrap();
    common::copy_dir(common::tiny_sample(), data.path());
    let st = common::state_with(&db, |c| c.data_dir = data.path().to_path_buf());
    let f = common::first_frame(&db.catalog, wisecut::model::FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id;
    let path = data.path().join(&f.path);
    let bytes = std::fs::read(&path).unwrap();
    // Truncated to half.
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let paths = server_paths(&st);
    for uri in [
        format!("/data/{id}"),
        format!("/api/cutout?frame={id}&x=50&y=50&size=32"),
        format!("/thumb/{id}"),
    ] {
        let (s, _, body) = common::fetch(&st, &uri).await;
        let text = String::from_utf8_lossy(&body);
        assert!(
            s.is_server_error() && s != StatusCode::SERVICE_UNAVAILABLE,
            "{uri}: {s}: a damaged file is the server's fault"
        );
        assert!(
            text.contains(&format!("frame {id}")) && text.contains("has changed or is damaged"),
            "{uri}: {text}"
        );
        for p in &paths {
            assert!(!text.contains(p.as_str()), "{uri}: shows {p}: {text}");
        }
    }
}
