//! End to end in a real browser: headless Chromium (Debian's, driven by
//! Playwright from the Python venv `.ci/run` installs) clicks through the
//! dbviewer against a live server on the tiny survey, and saves screenshots
//! to `target/e2e-artifacts/`. See `tests/e2e/dbviewer.py`.

use super::common;
use super::web::state;
use wisecut::web::app;

/// Chromium and the Python with Playwright, or `None` (with a note) outside
/// CI; in CI their absence is a failure.
fn browser() -> Option<(String, String)> {
    let chromium = std::env::var("WISECUT_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let python = std::env::var("WISECUT_PYTHON").ok();
    match python {
        Some(py) if std::path::Path::new(&chromium).exists() => Some((py, chromium)),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must provide Chromium ({chromium}) and WISECUT_PYTHON with Playwright"
            );
            eprintln!("note: Chromium or WISECUT_PYTHON missing; browser test not run");
            None
        }
    }
}

/// Serves `db` on a free port and runs `tests/e2e/SCRIPT BASE_URL EXTRA…
/// SCREENSHOT_DIR CHROMIUM`, which must succeed; returns its output and the
/// screenshot directory.
async fn run_in_chromium(
    st: wisecut::web::AppState,
    (python, chromium): (String, String),
    script: &str,
    extra: &[String],
) -> (String, std::path::PathBuf) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app(st)).await });
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/e2e-artifacts");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/e2e")
        .join(script);
    let result = tokio::process::Command::new(python)
        .arg(script)
        .arg(format!("http://{addr}"))
        .args(extra)
        .arg(&out)
        .arg(&chromium)
        .output()
        .await
        .unwrap();
    server.abort();
    let stdout = String::from_utf8_lossy(&result.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        result.status.success(),
        "browser test failed:\n{stdout}\n{stderr}"
    );
    (stdout, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_table_filter_object_tree_and_image_in_chromium() {
    let Some(browser) = browser() else { return };
    let db = common::ingested(common::sqlite().await).await;
    let (stdout, out) = run_in_chromium(state(&db), browser, "dbviewer.py", &[]).await;
    assert!(stdout.contains("e2e: ok, 9 screenshots"), "{stdout}");
    for name in [
        "01_home",
        "03_filtered",
        "05_tree_expanded",
        "06_image_view",
        "07_sources_table",
        "08_sourcelist_object",
        "09_bad_query",
    ] {
        let p = out.join(format!("{name}.png"));
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "{} is missing or empty", p.display());
    }
}

/// Dependency cutouts of `1:3` from a SourceList's page at 1366×1000: the
/// table and the GIFs load in Chromium, every class column and both GIF
/// columns are inside the viewport with no sideways scrolling (also with
/// the folds open), and a thumbnail enlarges (`tests/e2e/deps.py`). The
/// screenshot of the visible result is `deps_result_1366.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependency_cutouts_of_three_sources_fit_a_1366_px_screen_in_chromium() {
    let Some(browser) = browser() else { return };
    let db = common::ingested(common::sqlite().await).await;
    let (slid, _, _) = common::biggest_source_list(&db.catalog).await;
    let (stdout, out) = run_in_chromium(state(&db), browser, "deps.py", &[slid.to_string()]).await;
    assert!(stdout.contains("e2e deps: ok, 6 screenshots"), "{stdout}");
    for name in [
        "deps_result_1366",
        "deps_02_result",
        "deps_folds_open_1366",
        "deps_lightbox_1366",
    ] {
        let p = out.join(format!("{name}.png"));
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(size > 20_000, "{} is missing or empty", p.display());
    }
}

/// The pages a newcomer sees first, at 1366×1000 with no network and no
/// local Aladin Lite (`tests/e2e/pages.py`): the home page, an RGB picture,
/// the coadd i image view and its "high" contrast preset, and the sky
/// view's fallback to the server's own rendering with the list's sources
/// and three marked SIDs (issue 14, items 7, 10, 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_pages_and_the_sky_view_without_aladin_in_chromium() {
    let Some(browser) = browser() else { return };
    let db = common::ingested(common::sqlite().await).await;
    let coadd_i = db
        .catalog
        .frames_of_class(wisecut::model::FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.filter.as_deref() == Some("i"))
        .expect("the tiny survey has an i coadd");
    let id = coadd_i.target.object_id.0;
    let slid = db
        .catalog
        .first_int(
            &wisecut::catalog::browse::Table::SourceLists,
            &format!("frame_id = {id}"),
            "slid",
        )
        .await
        .unwrap()
        .expect("the i coadd has a SourceList");
    let n = db
        .catalog
        .source_list(wisecut::ids::Slid(slid))
        .await
        .unwrap()
        .n_sources;
    // `state` has no local Aladin Lite, and the script blocks CDS.
    let st = state(&db);
    assert!(st.config.aladin_dir.is_none());
    let (stdout, out) = run_in_chromium(
        st,
        browser,
        "pages.py",
        &[id.to_string(), slid.to_string(), n.to_string()],
    )
    .await;
    assert!(stdout.contains("e2e pages: ok, 4 screenshots"), "{stdout}");
    for name in [
        "01_home",
        "02_rgb_picture",
        "03_image_coadd_i",
        "04_sky_fallback",
    ] {
        let p = out.join(format!("pages_{name}.png"));
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(size > 20_000, "{} is missing or empty", p.display());
    }
}

/// A local Aladin Lite (`WISECUT_ALADIN_DIR`, the npm package's `dist/`);
/// CI must provide one, since the test runs without network.
fn local_aladin() -> Option<std::path::PathBuf> {
    match std::env::var("WISECUT_ALADIN_DIR") {
        Ok(d) if std::path::Path::new(&d).join("aladin.js").is_file() => Some(d.into()),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "CI must set WISECUT_ALADIN_DIR to the npm aladin-lite dist/ directory"
            );
            eprintln!("note: WISECUT_ALADIN_DIR not set; Aladin Lite test not run");
            None
        }
    }
}

/// The sky view in Chromium with every request outside the server blocked:
/// Aladin Lite (served locally) draws the frame and every source of the
/// list (`tests/e2e/aladin.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aladin_lite_draws_a_source_list_over_its_frame_offline() {
    let Some(browser) = browser() else { return };
    let Some(dir) = local_aladin() else { return };
    let db = common::ingested(common::sqlite().await).await;
    let (slid, _, n) = common::biggest_source_list(&db.catalog).await;
    let mut config = wisecut::config::Config::new(
        db.url.clone(),
        common::tiny_sample().to_path_buf(),
        tempfile::tempdir().unwrap().keep(),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.aladin_dir = Some(dir);
    common::without_client_limits(&mut config);
    let st = wisecut::web::AppState::new(db.catalog.clone(), std::sync::Arc::new(config)).unwrap();
    let (stdout, out) = run_in_chromium(
        st,
        browser,
        "aladin.py",
        &[format!("/sky?slid={slid}&ids=1:3"), n.to_string()],
    )
    .await;
    assert!(
        stdout.contains(&format!("e2e aladin: ok, {n} sources")),
        "{stdout}"
    );
    assert!(stdout.contains("requests blocked (outside"), "{stdout}");
    let shot = out.join("aladin_01_view.png");
    let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
    assert!(size > 20_000, "{} is missing or empty", shot.display());
}

/// SAMP: a table page in Chromium sends its VOTable over the Web Profile
/// to a hub with TOPCAT (under Xvfb) and a recording client; TOPCAT
/// replies samp.ok and the table parses; then TOPCAT is sent a TAP query
/// result (`/vo/tap/sync`) and loads it (`tests/e2e/samp.py`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_page_sends_its_votable_to_topcat_over_samp() {
    let Some(browser) = browser() else { return };
    let has_topcat = std::process::Command::new("sh")
        .args(["-c", "command -v topcat && command -v Xvfb"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_topcat {
        assert!(
            std::env::var("CI").is_err(),
            "CI must install topcat and xvfb"
        );
        eprintln!("note: topcat or Xvfb missing; SAMP test not run");
        return;
    }
    let db = common::ingested(common::sqlite().await).await;
    let (slid, _, n) = common::biggest_source_list(&db.catalog).await;
    let (stdout, _) = run_in_chromium(
        state(&db),
        browser,
        "samp.py",
        &[format!("/table/SourceList/{slid}")],
    )
    .await;
    assert!(
        stdout.contains(
            "e2e samp: ok, TOPCAT replied samp.ok to the page's table and to a TAP result"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("VOTable parses: {n} rows")),
        "{stdout}"
    );
}

/// Signing in from the header, switching project and the account page
/// (`tests/e2e/login.py`) on the access fixture: owner1's private frame is
/// a 404 anonymously and in "public data only", shown in SECRET; so is its
/// row of the ReducedScienceFrame table, and its node in the lineage tree
/// of a public frame made from it (restricted, class only, outside SECRET).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_switch_project_and_account_page_in_chromium() {
    let Some(browser) = browser() else { return };
    let s = super::access::Secret::new(common::sqlite().await).await;
    let (stdout, out) = run_in_chromium(
        s.state(),
        browser,
        "login.py",
        &[
            s.private_frame.to_string(),
            s.private_filename.clone(),
            super::access::PASSWORD.to_owned(),
            s.public_child
                .expect("the fixture has a public child of the private frame")
                .to_string(),
        ],
    )
    .await;
    assert!(stdout.contains("e2e login: ok, 6 screenshots"), "{stdout}");
    for name in [
        "login_02_header_signed_in",
        "login_03_private_frame_in_SECRET",
        "login_04_lineage_public_only",
        "login_05_lineage_in_SECRET",
        "login_06_account_new_token",
    ] {
        let p = out.join(format!("{name}.png"));
        let size = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        assert!(size > 5_000, "{} is missing or empty", p.display());
    }
}
