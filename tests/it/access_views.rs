//! Privileges in the views of one object: the lineage (a hidden object is a
//! restricted node, its class only, and the walk stops there), the object
//! page, thumbnails, the image view and the pixel, cutout and image-list
//! APIs, dependency cutouts (restricted cells), RGB inputs, and the
//! privileges form. Outsiders get exactly the missing-object answer; those
//! who may see get the real thing.

use super::access::{Secret, Who, catalog_as, get_as, request_as};
use super::common;
use axum::http::{Method, StatusCode};
use wisecut::catalog::lineage::{Direction, MAX_DEPTH};
use wisecut::ids::{ObjectId, Slid};
use wisecut::model::FrameClass;
use wisecut::products::dependency_cutouts::{self, DepParams};

const MISSING: i64 = 987_654_321;

/// The text of an answer with `id` (and `name`) replaced by placeholders,
/// to compare a hidden object's answer with a missing one's.
fn shape(body: &[u8], id: i64, name: &str) -> String {
    let text = super::access::without_csrf(&String::from_utf8_lossy(body));
    let text = if name.is_empty() {
        text
    } else {
        text.replace(name, "NAME")
    };
    text.replace(&id.to_string(), "N")
}

/// The error message of an HTML error page, or the whole body of a plain
/// one.
fn message(body: &str) -> String {
    if body.contains("error-message") {
        common::error_message(body)
    } else {
        body.to_owned()
    }
}

/// Asserts that neither the id nor the file name of `s.private_frame`
/// appears in `text` (as an id in a link, a data attribute or JSON).
fn assert_no_trace(s: &Secret, text: &str, what: &str) {
    let id = s.private_frame.0;
    for needle in [
        format!("/object/{id}\""),
        format!("/thumb/{id}\""),
        format!("data-object=\"{id}\""),
        format!("\"object_id\":{id},"),
        format!("\"object_id\":{id}}}"),
        format!("object {id} "),
        s.private_filename.clone(),
        s.private_filename
            .trim_end_matches(".fz")
            .trim_end_matches(".fits")
            .to_owned(),
    ] {
        assert!(!text.contains(&needle), "{what}: {needle:?} shows");
    }
}

#[tokio::test]
async fn lineage_shows_hidden_objects_as_restricted_class_only_and_stops_there() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let child = s.public_child.expect("a public child");
        let private_class = FrameClass::ReducedScienceFrame.name();
        for who in [Who::Anonymous, Who::Eve, Who::Member, Who::Owner, Who::Root] {
            let c = catalog_as(&s, who).await;
            let up = c.lineage(child, Direction::Up, MAX_DEPTH).await.unwrap();
            let json = serde_json::to_value(&up).unwrap();
            let text = json.to_string();
            if Secret::sees_private(who) {
                let n = up.node(s.private_frame).expect("the private frame shown");
                assert!(!n.is_restricted());
                assert_eq!(n.filename.as_deref(), Some(s.private_filename.as_str()));
                assert!(up.nodes.iter().all(|n| !n.is_restricted()), "{backend}");
                assert!(text.contains(&s.private_filename), "{backend} {who:?}");
                // The walk goes on through it to the raw exposure.
                assert!(!up.of_class(FrameClass::RawScienceFrame).is_empty());
                continue;
            }
            assert_no_trace(&s, &text, &format!("{backend} {who:?} lineage JSON"));
            let restricted: Vec<_> = up.nodes.iter().filter(|n| n.is_restricted()).collect();
            assert_eq!(restricted.len(), 1, "{backend} {who:?}: {restricted:?}");
            let r = restricted[0];
            assert_eq!(r.class_name, private_class);
            assert!(r.object_id.0 < 0, "a placeholder id");
            assert_eq!(r.level, 1);
            // Serialized: its class, level, placeholder and the flag, nothing
            // else.
            let node = json["nodes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|n| n["restricted"] == true)
                .unwrap();
            let mut keys: Vec<&str> = node
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort();
            assert_eq!(keys, ["class_name", "level", "object_id", "restricted"]);
            // The edge to it is drawn to the placeholder.
            assert!(
                up.edges
                    .iter()
                    .any(|e| e.child == child && e.parent == r.object_id)
            );
            assert!(up.next(r.object_id).is_empty(), "nothing beyond it");
            // What it was made from stays unseen: the raw exposure behind it.
            assert!(
                up.of_class(FrameClass::RawScienceFrame).is_empty(),
                "{backend} {who:?}: the walk went past the restricted node"
            );
            assert!(up.nodes.iter().all(|n| n.class_name != "RawScienceFrame"));
            // The text tree says restricted, by class only.
            let tree = up.render_tree();
            assert!(
                tree.contains(&format!("{private_class} (restricted)")),
                "{tree}"
            );
            assert_no_trace(&s, &tree, "text tree");

            // Walking down from what it was made from, it is restricted too
            // and the public child behind it is not reached through it.
            let raw =
                s.db.catalog
                    .lineage(s.private_frame, Direction::Up, 1)
                    .await
                    .unwrap()
                    .of_class(FrameClass::RawScienceFrame)[0]
                    .object_id;
            let down = c.lineage(raw, Direction::Down, MAX_DEPTH).await.unwrap();
            assert!(down.node(child).is_none(), "{backend} {who:?}");
            assert!(
                down.nodes
                    .iter()
                    .any(|n| n.is_restricted() && n.class_name == private_class)
            );
            assert_no_trace(&s, &serde_json::to_string(&down).unwrap(), "down JSON");
            // A hidden root is "not found", as a missing one.
            let hidden = c
                .lineage(s.private_frame, Direction::Up, 3)
                .await
                .unwrap_err();
            let missing = c
                .lineage(ObjectId(MISSING), Direction::Up, 3)
                .await
                .unwrap_err();
            assert_eq!(
                hidden
                    .to_string()
                    .replace(&s.private_frame.to_string(), "N"),
                missing.to_string().replace(&MISSING.to_string(), "N")
            );
            assert!(
                c.ancestors_of_class(child, FrameClass::ReducedScienceFrame)
                    .await
                    .unwrap()
                    .is_empty()
            );
        }
        // The system view (CLI, ingest) sees everything, unchanged.
        let all =
            s.db.catalog
                .lineage(child, Direction::Up, MAX_DEPTH)
                .await
                .unwrap();
        assert!(all.node(s.private_frame).is_some());
        assert!(all.nodes.iter().all(|n| !n.is_restricted()));
    }
}

#[tokio::test]
async fn object_page_tree_thumbnails_and_privileges_form() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let child = s.public_child.unwrap();
        for who in [Who::Anonymous, Who::Eve, Who::Member, Who::Owner] {
            let (status, body) = get_as(&st, &s, who, &format!("/object/{child}")).await;
            assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
            let html = String::from_utf8_lossy(&body);
            let doc = scraper::Html::parse_document(&html);
            let restricted: Vec<String> = doc
                .select(&common::sel("#tree-up li.restricted"))
                .map(|e| e.text().collect::<String>())
                .collect();
            if Secret::sees_private(who) {
                assert!(restricted.is_empty(), "{backend} {who:?}: {restricted:?}");
                assert!(html.contains(&format!("/object/{}\"", s.private_frame)));
                assert!(html.contains(&s.private_filename));
            } else {
                assert_eq!(restricted.len(), 1, "{backend} {who:?}");
                assert!(
                    restricted[0].contains("restricted ReducedScienceFrame"),
                    "{restricted:?}"
                );
                let li = doc
                    .select(&common::sel("#tree-up li.restricted"))
                    .next()
                    .unwrap();
                assert!(li.select(&common::sel("a, img")).next().is_none());
                assert_no_trace(&s, &html, &format!("{backend} {who:?} /object/{child}"));
            }
            // The privileges form is for the creator (and admins).
            let form = doc.select(&common::sel("#privileges-form")).next();
            let may = matches!(who, Who::Owner) && {
                let t = s.db.catalog.process_target(child).await.unwrap();
                t.creator == "owner1"
            };
            assert_eq!(form.is_some(), may, "{backend} {who:?}: form");
        }
        // Thumbnails of hidden frames are 404s like missing ones.
        let missing = get_as(&st, &s, Who::Anonymous, &format!("/thumb/{MISSING}")).await;
        assert_eq!(missing.0, StatusCode::NOT_FOUND);
        for who in [Who::Anonymous, Who::Eve, Who::Member, Who::Owner] {
            for (id, sees) in [
                (s.private_frame, Secret::sees_private(who)),
                (s.project_frame, Secret::sees_project(who)),
            ] {
                let (status, body) = get_as(&st, &s, who, &format!("/thumb/{id}")).await;
                if sees {
                    assert_eq!(status, StatusCode::OK, "{backend} {who:?} /thumb/{id}");
                } else {
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{backend} {who:?} /thumb/{id}"
                    );
                    assert_eq!(
                        message(&shape(&body, id.0, "")),
                        message(&shape(&missing.1, MISSING, "")),
                        "{backend} {who:?}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn privileges_change_through_the_object_page_form() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let post = |who: Who, id: ObjectId, body: &'static str| {
            let st = st.clone();
            let s = &s;
            async move {
                request_as(
                    &st,
                    s,
                    who,
                    Method::POST,
                    &format!("/object/{id}/privileges"),
                    Some((
                        "application/x-www-form-urlencoded",
                        body.as_bytes().to_vec(),
                    )),
                )
                .await
            }
        };
        let pf = s.private_frame;
        // The owner sees the form on the private frame's page.
        let (_, page) = get_as(&st, &s, Who::Owner, &format!("/object/{pf}")).await;
        let page = String::from_utf8_lossy(&page);
        assert!(page.contains("id=\"privileges-form\""), "{backend}");
        assert!(page.contains(&format!("action=\"/object/{pf}/privileges\"")));
        // Outsiders: exactly the missing object's 404.
        let (status, _, missing) = post(Who::Eve, ObjectId(MISSING), "level=5").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        for who in [Who::Eve, Who::Anonymous, Who::Member] {
            let (status, _, body) = post(who, pf, "level=5").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?}");
            assert_eq!(
                message(&shape(&body, pf.0, "")),
                message(&shape(&missing, MISSING, "")),
                "{backend} {who:?}"
            );
        }
        // member2 sees the project-level coadd but may not change it.
        let (status, _, body) = post(Who::Member, s.project_frame, "level=5").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{backend}");
        let text = message(&String::from_utf8_lossy(&body));
        assert!(
            text.contains("owner1") && text.contains("SECRET"),
            "names who may: {text}"
        );
        let (_, page) = get_as(
            &st,
            &s,
            Who::Member,
            &format!("/object/{}", s.project_frame),
        )
        .await;
        assert!(!String::from_utf8_lossy(&page).contains("privileges-form"));
        let level = |id: ObjectId| {
            let c = s.db.catalog.clone();
            async move { c.process_target(id).await.unwrap().privileges }
        };
        assert_eq!(level(s.project_frame).await, 2, "unchanged");
        // A bad level is a 400 naming `level` and the allowed values.
        for bad in ["level=9", "level=public", "nothing=1"] {
            let (status, _, body) = post(Who::Owner, pf, bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{backend} {bad}");
            let text = message(&String::from_utf8_lossy(&body));
            assert!(
                text.contains("level") && text.contains("1 (private)"),
                "{text}"
            );
        }
        assert_eq!(level(pf).await, 1);
        // The owner makes it public: everyone sees it; then private again.
        let (status, headers, _) = post(Who::Owner, pf, "level=5").await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{backend}");
        assert_eq!(headers["location"], format!("/object/{pf}"));
        assert_eq!(level(pf).await, 5);
        let (status, _) = get_as(&st, &s, Who::Anonymous, &format!("/object/{pf}")).await;
        assert_eq!(status, StatusCode::OK, "{backend}: public now");
        let (status, _, _) = post(Who::Owner, pf, "level=1").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(level(pf).await, 1);
        let (status, _) = get_as(&st, &s, Who::Anonymous, &format!("/object/{pf}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{backend}: private again");
        // The superuser may change anything.
        let (status, _, _) = post(Who::Root, s.project_frame, "level=3").await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(level(s.project_frame).await, 3);
    }
}

#[tokio::test]
async fn image_view_pixel_cutout_and_image_lists_hide_what_one_may_not_see() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let frame = s.db.catalog.frame(s.private_frame).await.unwrap();
        let (ra, dec) = frame.center.expect("the private frame is on the sky");
        let pf = s.private_frame.0;
        let name = s.private_filename.clone();
        let uris = |id: &str| {
            vec![
                format!("/image/{id}"),
                format!("/render/{id}?x=20&y=20&size=16&format=png"),
                format!("/api/pixel?frame={id}&x=10&y=10"),
                format!("/api/cutout?frame={id}&x=20&y=20&size=16&format=png"),
            ]
        };
        for who in [Who::Anonymous, Who::Eve, Who::Member, Who::Owner] {
            let sees = Secret::sees_private(who);
            let mut asked: Vec<(String, String, String)> = uris(&pf.to_string())
                .into_iter()
                .zip(uris(&MISSING.to_string()))
                .map(|(a, b)| (a, b, String::new()))
                .collect();
            asked.push((
                format!("/api/cutout?frame={name}&x=20&y=20&size=16&format=png"),
                "/api/cutout?frame=nothing_such.fits&x=20&y=20&size=16&format=png".into(),
                "nothing_such.fits".into(),
            ));
            for (uri, missing_uri, missing_name) in asked {
                let (status, body) = get_as(&st, &s, who, &uri).await;
                if sees {
                    assert_eq!(status, StatusCode::OK, "{backend} {who:?} {uri}");
                    continue;
                }
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?} {uri}");
                let (ms, missing) = get_as(&st, &s, who, &missing_uri).await;
                assert_eq!(ms, StatusCode::NOT_FOUND, "{missing_uri}");
                let got = message(&shape(&body, pf, &name));
                let want = message(&shape(&missing, MISSING, &missing_name));
                assert_eq!(got, want, "{backend} {who:?} {uri}");
            }
            // Image lists by position.
            for uri in [
                format!("/api/images?ra={ra}&dec={dec}"),
                format!("/api/images?ra={ra}&dec={dec}&format=csv"),
            ] {
                let (status, body) = get_as(&st, &s, who, &uri).await;
                assert_eq!(status, StatusCode::OK, "{backend} {who:?} {uri}");
                let text = String::from_utf8_lossy(&body);
                assert_eq!(
                    text.contains(&name),
                    sees,
                    "{backend} {who:?} {uri}: lists the private frame"
                );
                assert!(text.contains("ReducedScienceFrame") || text.contains("Regridded"));
            }
        }
    }
}

/// Every SourceList and its frame, by SLID (the system's view).
async fn lists(s: &Secret) -> Vec<(i64, Option<i64>)> {
    let conn = common::raw_db(&s.db).await;
    common::sql(
        &conn,
        "SELECT slid, frame_id FROM source_list ORDER BY slid",
        vec![],
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r.try_get("", "slid").unwrap(),
            r.try_get("", "frame_id").unwrap(),
        )
    })
    .collect()
}

#[tokio::test]
async fn dependency_cutouts_show_hidden_frames_as_restricted_cells() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        // Lists whose frames have a secret frame in their lineage.
        let sys = &s.db.catalog;
        let mut related = Vec::new();
        for (slid, frame) in lists(&s).await {
            let Some(f) = frame else { continue };
            if slid == s.private_slid {
                continue;
            }
            let mut near = false;
            for d in [Direction::Up, Direction::Down] {
                let l = sys.lineage(ObjectId(f), d, MAX_DEPTH).await.unwrap();
                near |= l.node(s.private_frame).is_some() || l.node(s.project_frame).is_some();
            }
            if near {
                related.push((slid, f));
            }
        }
        assert!(
            !related.is_empty(),
            "{backend}: lists near the secret frames"
        );
        let secret = [s.private_frame.0, s.project_frame.0];
        for who in [Who::Anonymous, Who::Eve, Who::Member, Who::Owner] {
            let c = catalog_as(&s, who).await;
            let (mut restricted_reduced, mut restricted_coadd) = (0, 0);
            let mut placed_secret = [false, false];
            let mut sample = None;
            for &(slid, frame) in &related {
                if c.source_list(Slid(slid)).await.is_err()
                    || c.frame(ObjectId(frame)).await.is_err()
                {
                    continue;
                }
                let n = c.source_list(Slid(slid)).await.unwrap().n_sources;
                let req = DepParams {
                    slid: Some(slid),
                    ids: format!("1:{}", n.clamp(1, 400)),
                    ..Default::default()
                }
                .validate()
                .unwrap();
                let planned = dependency_cutouts::resolve(&c, &req).await.unwrap();
                for p in &planned {
                    for pl in p.placements.iter().chain(&p.epochs) {
                        let id = pl.frame.frame.target.object_id.0;
                        for (i, sid) in secret.iter().enumerate() {
                            placed_secret[i] |= id == *sid;
                        }
                    }
                    for r in &p.restricted {
                        assert!(r.placeholder.0 < 0);
                        match r.class {
                            FrameClass::ReducedScienceFrame => restricted_reduced += 1,
                            FrameClass::CoaddedRegriddedFrame => restricted_coadd += 1,
                            other => panic!("{backend} {who:?}: restricted {other}"),
                        }
                        if sample.is_none() {
                            sample = Some((req.clone(), p.clone()));
                        }
                    }
                }
            }
            // A restricted reduced cell needs a coadd downstream of the
            // private frame that `who` may see (its sources are placed up
            // through the public child); a restricted coadd cell, reduced
            // lists of the project coadd's band.
            let mut coadd_above_private = false;
            for n in sys
                .lineage(s.private_frame, Direction::Down, MAX_DEPTH)
                .await
                .unwrap()
                .of_class(FrameClass::CoaddedRegriddedFrame)
            {
                coadd_above_private |= c.frame(n.object_id).await.is_ok();
            }
            if Secret::sees_private(who) {
                assert!(
                    placed_secret[0],
                    "{backend} {who:?}: the private frame is placed"
                );
                assert_eq!(restricted_reduced, 0, "{backend} {who:?}");
            } else {
                assert!(
                    !placed_secret[0],
                    "{backend} {who:?}: placed on the private frame"
                );
                assert_eq!(
                    restricted_reduced > 0,
                    coadd_above_private,
                    "{backend} {who:?}: restricted reduced cells"
                );
            }
            if who == Who::Member {
                // The case of a visible product made from a hidden frame.
                assert!(
                    coadd_above_private,
                    "{backend}: the fixture's coadd is above"
                );
            }
            if Secret::sees_project(who) {
                assert!(
                    placed_secret[1],
                    "{backend} {who:?}: the project coadd is placed"
                );
                assert_eq!(restricted_coadd, 0, "{backend} {who:?}");
            } else {
                assert!(
                    !placed_secret[1],
                    "{backend} {who:?}: placed on the project coadd"
                );
                assert!(
                    restricted_coadd > 0,
                    "{backend} {who:?}: no restricted coadd cell"
                );
            }
            // What the result shows of a restricted cell: the class, no file.
            if let Some((req, p)) = sample {
                let mut req = req;
                req.ids = vec![p.sid.0];
                let dir = tempfile::tempdir().unwrap();
                let (result, _) = dependency_cutouts::make::make(
                    &st.services.products.images,
                    &req,
                    std::slice::from_ref(&p),
                    dir.path(),
                    &|_, _| {},
                    &|_| Ok(wisecut::products::budget::MemoryGrant::none()),
                )
                .unwrap();
                let row = &result.rows[0];
                let cells: Vec<_> = row.cells.iter().flatten().collect();
                let hidden: Vec<_> = cells.iter().filter(|c| c.restricted).collect();
                assert!(!hidden.is_empty(), "{backend} {who:?}");
                for h in &hidden {
                    assert!(h.frame_id < 0 && h.filename.is_empty());
                    assert!(h.fits.is_none() && h.png.is_none() && h.date.is_none());
                }
                assert!(cells.iter().any(|c| !c.restricted && c.png.is_some()));
                for id in row.pipeline_ids.iter() {
                    let hidden = (*id == secret[0] && !Secret::sees_private(who))
                        || (*id == secret[1] && !Secret::sees_project(who));
                    assert!(
                        !hidden,
                        "{backend} {who:?}: hidden frame {id} in the pipeline GIF"
                    );
                }
                let json = serde_json::to_string(&result).unwrap();
                if !Secret::sees_private(who) {
                    assert_no_trace(&s, &json, &format!("{backend} {who:?} deps JSON"));
                }
                let html = wisecut::web::dependency_cutout_pages::ResultTable::new(&result);
                let cell_text: Vec<String> = html
                    .rows
                    .iter()
                    .flat_map(|r| r.cells.iter())
                    .flat_map(|c| c.main.iter().chain(c.more.iter()))
                    .filter_map(|t| t.restricted.clone())
                    .collect();
                assert!(!cell_text.is_empty());
            }
        }
        // Sources of the private list: as a missing list for outsiders.
        let missing_list = lists(&s).await.iter().map(|l| l.0).max().unwrap() + 1000;
        for who in [Who::Anonymous, Who::Eve, Who::Member, Who::Owner] {
            let c = catalog_as(&s, who).await;
            let req = |slid| {
                DepParams {
                    slid: Some(slid),
                    ids: "1".into(),
                    ..Default::default()
                }
                .validate()
                .unwrap()
            };
            let got = dependency_cutouts::resolve(&c, &req(s.private_slid)).await;
            assert_eq!(got.is_ok(), Secret::sees_private(who), "{backend} {who:?}");
            let (status, body) = get_as(
                &st,
                &s,
                who,
                &format!("/deps?slid={}&ids=1", s.private_slid),
            )
            .await;
            if Secret::sees_private(who) {
                assert_eq!(status, StatusCode::OK, "{backend} {who:?}");
                let planned = got.unwrap();
                assert!(planned[0].source.is_some());
            } else {
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?}");
                let (ms, missing) =
                    get_as(&st, &s, who, &format!("/deps?slid={missing_list}&ids=1")).await;
                assert_eq!(ms, StatusCode::NOT_FOUND);
                assert_eq!(
                    message(&shape(&body, s.private_slid, "")),
                    message(&shape(&missing, missing_list, "")),
                    "{backend} {who:?}"
                );
                let (status, _, body) = request_as(
                    &st,
                    &s,
                    who,
                    Method::POST,
                    "/api/deps",
                    Some((
                        "application/x-www-form-urlencoded",
                        format!("slid={}&ids=1", s.private_slid).into_bytes(),
                    )),
                )
                .await;
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?} /api/deps");
                assert!(!String::from_utf8_lossy(&body).contains(&s.private_filename));
            }
        }
    }
}

#[tokio::test]
async fn rgb_does_not_offer_or_accept_hidden_frames() {
    for db in common::all_backends().await {
        let backend = db.backend;
        let s = Secret::new(db).await;
        let st = s.state();
        let sys = &s.db.catalog;
        let private = sys.frame(s.private_frame).await.unwrap();
        // Two public frames of the same class to fill the other bands.
        let others: Vec<_> = sys
            .frames_of_class(FrameClass::ReducedScienceFrame)
            .await
            .unwrap()
            .into_iter()
            .filter(|f| f.target.object_id != s.private_frame && f.chip == private.chip)
            .take(2)
            .collect();
        assert_eq!(others.len(), 2);
        let (g, b) = (others[0].target.object_id, others[1].target.object_id);
        for who in [Who::Anonymous, Who::Eve, Who::Owner] {
            let ask = |red: String| {
                let st = st.clone();
                let s = &s;
                async move {
                    request_as(
                        &st,
                        s,
                        who,
                        Method::POST,
                        "/api/rgb",
                        Some((
                            "application/x-www-form-urlencoded",
                            format!(
                                "red={red}&green={g}&blue={b}&size=30&unit=arcsec&ra={}&dec={}",
                                private.center.unwrap().0,
                                private.center.unwrap().1
                            )
                            .into_bytes(),
                        )),
                    )
                    .await
                }
            };
            for (red, missing, missing_name) in [
                (s.private_frame.to_string(), MISSING.to_string(), ""),
                (
                    s.private_filename.clone(),
                    "nothing_such.fits".to_owned(),
                    "nothing_such.fits",
                ),
            ] {
                let (status, _, body) = ask(red.clone()).await;
                if Secret::sees_private(who) {
                    assert_ne!(status, StatusCode::NOT_FOUND, "{backend} {who:?} red={red}");
                    continue;
                }
                assert_eq!(status, StatusCode::NOT_FOUND, "{backend} {who:?} red={red}");
                let (ms, _, mbody) = ask(missing.clone()).await;
                assert_eq!(ms, StatusCode::NOT_FOUND);
                assert_eq!(
                    shape(&body, s.private_frame.0, &s.private_filename),
                    shape(&mbody, MISSING, missing_name),
                    "{backend} {who:?}"
                );
            }
            // The form does not offer it.
            let (status, page) = get_as(&st, &s, who, "/rgb").await;
            assert_eq!(status, StatusCode::OK);
            let page = String::from_utf8_lossy(&page);
            if !Secret::sees_private(who) {
                assert!(!page.contains(&s.private_filename), "{backend} {who:?}");
                assert!(!page.contains(&format!("value=\"{}\"", s.private_frame)));
            }
        }
    }
}
