//! The server under heavy and hostile use: memory is a budget (work that
//! cannot fit is refused, work that cannot fit *now* waits or gets a 503),
//! one size limit holds for every way of asking for pixels, and jobs keep a
//! footprint that does not grow with their number of sources.

use std::time::Duration;

use axum::http::StatusCode;
use wisecut::model::FrameClass;

use super::common;

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Regression: sixteen 6000² cutouts at once took 4 GB. Now a cutout that
/// could never fit the memory budget is refused before any pixel is read,
/// saying how much it needs and what the budget is.
#[tokio::test]
async fn a_cutout_that_can_never_fit_the_memory_budget_is_refused() {
    let db = common::ingested(common::sqlite().await).await;
    // 100 MiB in all leaves the 64 MiB minimum for work.
    let st = common::state_with(&db, |c| c.memory_bytes = 100 << 20);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let id = f.target.object_id;
    let (s, _, body) =
        common::fetch(&st, &format!("/api/cutout?frame={id}&x=1&y=1&size=3000")).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{}", text(&body));
    let msg = text(&body);
    assert!(
        msg.contains("MiB of memory") && msg.contains("64 MiB"),
        "{msg}"
    );
    // A small one is fine.
    let (s, _, _) = common::fetch(&st, &format!("/api/cutout?frame={id}&x=50&y=50&size=64")).await;
    assert_eq!(s, StatusCode::OK);
}

/// Work that would fit but not now waits for memory, for a bounded time,
/// and is then answered 503 with `Retry-After`; once memory is free the
/// same request succeeds.
#[tokio::test]
async fn a_request_waits_for_memory_then_gets_503_with_retry_after() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| {
        c.memory_bytes = 100 << 20;
        c.limits.memory_wait = Duration::from_millis(300);
    });
    let budget = std::sync::Arc::clone(&st.services.products.budget);
    let f = common::first_frame(&db.catalog, FrameClass::ReducedScienceFrame).await;
    let uri = format!(
        "/api/cutout?frame={}&x=50&y=50&size=200&format=png",
        f.target.object_id
    );
    // Everything but a little is taken by someone else.
    let hold = budget
        .reserve(budget.total() - (256 << 10), "the test")
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let (s, h, body) = common::fetch_full(&st, &uri).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{}", text(&body));
    assert!(t.elapsed() >= Duration::from_millis(250), "it waited");
    assert_eq!(h["retry-after"], "2");
    assert!(text(&body).contains("memory"), "{}", text(&body));
    drop(hold);
    let (s, _, _) = common::fetch(&st, &uri).await;
    assert_eq!(s, StatusCode::OK);
    // Nothing stays reserved once the responses are gone.
    assert_eq!(budget.available(), budget.total());
}

/// Regression: `/api/rgb` had a limit of its own (20,000 px) and made a
/// 14,998² picture; thumbnails, the image view's renders and SODA had none.
/// All of them now obey `--max-cutout`.
#[tokio::test]
async fn rgb_thumbnails_renders_and_soda_obey_the_cutout_size_limit() {
    let db = common::ingested(common::sqlite().await).await;
    let st = common::state_with(&db, |c| c.max_cutout_px = 100);
    let coadds = db
        .catalog
        .frames_of_class(FrameClass::CoaddedRegriddedFrame)
        .await
        .unwrap();
    let c = &coadds[0];
    assert!(c.naxis1 > 100, "the coadd is bigger than the limit");
    let (ra, dec) = c.center.unwrap();
    let ids: Vec<String> = coadds
        .iter()
        .take(3)
        .map(|f| f.target.object_id.to_string())
        .collect();
    let rgb = format!(
        "/api/rgb?red={}&green={}&blue={}&ra={ra}&dec={dec}&size=200&unit=px",
        ids[0], ids[1], ids[2]
    );
    let id = c.target.object_id;
    for (uri, want) in [
        (rgb.clone(), "limit of 100 px"),
        (format!("/thumb/{id}"), "limit of 100 px"),
        (
            format!("/render/{id}?x=100&y=100&width=150&height=150&format=png"),
            "limit of 100 px",
        ),
        (
            format!("/vo/soda/sync?ID=ivo://wisecut/obj?{id}&CIRCLE={ra}+{dec}+0.05"),
            "UsageError",
        ),
    ] {
        let (s, _, body) = common::fetch(&st, &uri).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{uri}: {}", text(&body));
        assert!(text(&body).contains(want), "{uri}: {}", text(&body));
    }
    // Within the limit, each works.
    let small = rgb.replace("size=200", "size=60");
    let (s, _, body) = common::fetch(&st, &small).await;
    assert_eq!(s, StatusCode::OK, "{}", text(&body));
}

/// Regression: a 386-source dependency-cutout job grew to 14 GB because
/// every cutout was kept until the end. Sources are now made one after the
/// other, so the most memory ever reserved for twelve sources is what the
/// largest of them needs alone.
#[tokio::test]
async fn dependency_cutouts_take_the_memory_of_one_source_however_many_are_asked() {
    let db = common::ingested(common::sqlite().await).await;
    let (slid, _, n) = common::biggest_source_list(&db.catalog).await;
    assert!(n >= 12);
    let peak = |ids: String| {
        let db = &db;
        async move {
            let st = common::state_with(db, |c| c.inline_sources = 100);
            let budget = std::sync::Arc::clone(&st.services.products.budget);
            let v =
                common::fetch_json(&st, &format!("/api/deps?slid={slid}&ids={ids}&size=48")).await;
            assert_eq!(v["status"], "done", "{v}");
            assert_eq!(budget.available(), budget.total(), "memory given back");
            budget.peak()
        }
    };
    let mut alone = 0;
    for i in 1..=12 {
        alone = alone.max(peak(i.to_string()).await);
    }
    assert!(alone > 0, "sources reserve memory");
    assert_eq!(peak("1:12".into()).await, alone);
}
