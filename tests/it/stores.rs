//! Frames in remote pixel stores: a real nginx on loopback as an HTTP data
//! server and a real moto S3 server. A cutout of a remote frame must be
//! byte-identical to the same cutout of the local file, fetch a small
//! fraction of the file (headers and the rows or tiles it needs), nothing
//! when the blocks are already cached; a store that is down or slow fails
//! with 502/504 naming the store within the bounded time; an object that is
//! not what the catalogue recorded is refused.
//!
//! nginx and moto are required in CI (`CI` set): a missing peer fails
//! there and is only skipped, with a note, elsewhere.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use wisecut::catalog::ingest::batch::PathIngest;
use wisecut::config::Config;
use wisecut::imaging::fits::{self, Card, Compression, PixelData};
use wisecut::imaging::raster::Raster;
use wisecut::web::AppState;

use crate::common::{self, free_port};

/// Image side: a 16 MiB plain frame, a RICE frame of 128 × 128 tiles.
const SIDE: usize = 2048;

/// A peer process, killed when dropped.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(port: u16, what: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < until,
            "{what} did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A peer is required in CI; elsewhere its absence skips the test.
fn required<T>(what: &str) -> Option<T> {
    assert!(
        std::env::var("CI").is_err(),
        "CI must provide {what} for the remote-store tests"
    );
    eprintln!("note: {what} missing; remote-store test not run");
    None
}

/// nginx serving `root` on loopback.
fn nginx(root: &Path) -> Option<(Peer, u16)> {
    let bin = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(bin) = bin else {
        return required("nginx");
    };
    let tmp = tempfile::tempdir().unwrap().keep();
    let port = free_port();
    let t = tmp.display();
    // Run as root, nginx's workers would drop to `nobody`, who cannot read
    // the test's private temporary directories. (The owner of a file just
    // made is the effective user.)
    std::fs::write(tmp.join("probe"), b"").unwrap();
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(tmp.join("probe")).unwrap());
    let user = if uid == 0 { "user root;" } else { "" };
    let conf = format!(
        "{user}\ndaemon off;\nmaster_process off;\nworker_processes 1;\npid {t}/nginx.pid;\nerror_log {t}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{ access_log off; client_body_temp_path {t}/b; proxy_temp_path {t}/p; \
         fastcgi_temp_path {t}/f; uwsgi_temp_path {t}/u; scgi_temp_path {t}/s;\n\
         server {{ listen 127.0.0.1:{port}; root {}; location / {{ }} }} }}\n",
        root.display()
    );
    std::fs::write(tmp.join("nginx.conf"), conf).unwrap();
    let child = Command::new(bin)
        .arg("-p")
        .arg(&tmp)
        .arg("-c")
        .arg(tmp.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let peer = Peer(child);
    wait_for(port, "nginx");
    Some((peer, port))
}

/// A moto S3 server on loopback.
fn moto() -> Option<(Peer, u16, String)> {
    let Ok(python) = std::env::var("WISECUT_PYTHON") else {
        return required("WISECUT_PYTHON (with moto[server])");
    };
    let port = free_port();
    let child = Command::new(&python)
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto starts");
    let peer = Peer(child);
    wait_for(port, "moto");
    Some((peer, port, python))
}

/// Runs boto3 against moto: `code` with `s3` a client.
fn boto(python: &str, port: u16, code: &str) {
    let script = format!(
        "import boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{port}', \
         aws_access_key_id='testing', aws_secret_access_key='testing', region_name='us-east-1')\n\
         PUBLIC = {{'ACL': 'public-read'}}\n{code}\n"
    );
    let out = Command::new(python).arg("-c").arg(script).output().unwrap();
    assert!(
        out.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The frames' files uploaded to a new bucket `survey` under `night1/` of
/// the moto server on `port`; the location of that copy. Anonymous reads
/// (`skip_signature`) of a public bucket, as a public survey serves them;
/// moto answers 403 to an anonymous read of a private object, hence the
/// objects' public-read ACL.
fn upload_far(python: &str, port: u16, raw: &Path) -> String {
    boto(
        python,
        port,
        &format!(
            "s3.create_bucket(Bucket='survey')\n\
             s3.upload_file('{0}/plain.fits', 'survey', 'night1/raw/plain.fits', ExtraArgs=PUBLIC)\n\
             s3.upload_file('{0}/rice.fits', 'survey', 'night1/raw/rice.fits', ExtraArgs=PUBLIC)",
            raw.display()
        ),
    );
    format!(
        "s3://survey/night1?endpoint=http://127.0.0.1:{port}&region=us-east-1&skip_signature=true"
    )
}

/// Two frames in a data root `far`: a plain 32-bit float image and a RICE
/// tile-compressed 32-bit integer one, ingested in place.
struct Frames {
    dir: PathBuf,
    db: common::TestDb,
    plain: i64,
    rice: i64,
}

async fn frames() -> Frames {
    let dir = tempfile::tempdir().unwrap().keep().join("far");
    std::fs::create_dir_all(dir.join("raw")).unwrap();
    let mut f = Raster::<f32>::filled(SIDE, SIDE, 0.0);
    let mut i = Raster::<i32>::filled(SIDE, SIDE, 0);
    let mut state = 12345u64;
    for (k, (a, b)) in f.data.iter_mut().zip(i.data.iter_mut()).enumerate() {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let noise = (state >> 40) as i32 % 200;
        *a = 1000.0 + (k % 97) as f32 + noise as f32 * 0.5;
        *b = 1000 + (k % 89) as i32 + noise;
    }
    let cards = |n: i64| {
        vec![
            Card::new("IMAGETYP", "zero", ""),
            Card::new("CHIPID", "ccd1", ""),
            Card::new("EXPTIME", 0.0, ""),
            Card::new("RUNNUM", n, ""),
        ]
    };
    fits::write_image(
        &dir.join("raw/plain.fits"),
        PixelData::F32(&f),
        &cards(1),
        &Compression::None,
    )
    .unwrap();
    fits::write_image(
        &dir.join("raw/rice.fits"),
        PixelData::I32(&i),
        &cards(2),
        &Compression::Rice { tile: (128, 128) },
    )
    .unwrap();
    let db = common::sqlite().await;
    let req = PathIngest {
        paths: vec![dir.clone()],
        roots: vec![("far".into(), dir.clone())],
        ..Default::default()
    };
    db.catalog
        .ingest_paths(&req, dir.parent().unwrap())
        .await
        .unwrap();
    let mut plain = 0;
    let mut rice = 0;
    for class in [
        wisecut::model::FrameClass::RawBiasFrame,
        wisecut::model::FrameClass::BiasFrame,
    ] {
        for fr in db.catalog.frames_of_class(class).await.unwrap() {
            match fr.filename.as_str() {
                "plain.fits" => plain = fr.target.object_id.0,
                "rice.fits" => rice = fr.target.object_id.0,
                _ => {}
            }
        }
    }
    assert!(plain > 0 && rice > 0, "both frames ingested");
    Frames {
        dir,
        db,
        plain,
        rice,
    }
}

fn state(f: &Frames, adjust: impl FnOnce(&mut Config)) -> AppState {
    let cache = tempfile::tempdir().unwrap().keep();
    let mut config = Config::new(
        f.db.url.clone(),
        f.dir.clone(),
        cache,
        "127.0.0.1:0".parse().unwrap(),
    );
    common::without_client_limits(&mut config);
    adjust(&mut config);
    AppState::new(f.db.catalog.clone(), Arc::new(config)).unwrap()
}

fn fetched(st: &AppState) -> u64 {
    st.services
        .products
        .images
        .blocks
        .as_ref()
        .unwrap()
        .bytes_fetched()
}

fn cutout_uri(id: i64, x: usize, y: usize, size: usize) -> String {
    format!("/api/cutout?frame={id}&x={x}&y={y}&size={size}&unit=px&format=fits")
}

/// The FITS cutouts every comparison uses: (uri, frame).
fn cases(f: &Frames) -> Vec<(String, i64)> {
    vec![
        (cutout_uri(f.plain, 700, 900, 40), f.plain),
        (cutout_uri(f.rice, 700, 900, 40), f.rice),
        (cutout_uri(f.rice, 1500, 300, 64), f.rice),
    ]
}

async fn local_cutouts(f: &Frames) -> Vec<Vec<u8>> {
    let st = state(f, |_| {});
    let mut out = Vec::new();
    for (uri, _) in cases(f) {
        let (status, _, body) = common::fetch(&st, &uri).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{uri}: {}",
            String::from_utf8_lossy(&body)
        );
        out.push(body);
    }
    out
}

/// Cutouts through `st` (a remote root) equal `local`; each reads less than
/// a tenth of its file; the same rows or tiles again read nothing.
async fn same_and_small(f: &Frames, st: &AppState, local: &[Vec<u8>], label: &str) {
    let size = |id: i64| {
        let name = if id == f.plain {
            "plain.fits"
        } else {
            "rice.fits"
        };
        std::fs::metadata(f.dir.join("raw").join(name))
            .unwrap()
            .len()
    };
    for ((uri, id), want) in cases(f).into_iter().zip(local) {
        let before = fetched(st);
        let (status, _, body) = common::fetch(st, &uri).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "{label} {uri}: {}",
            String::from_utf8_lossy(&body)
        );
        assert!(
            body == *want,
            "{label} {uri}: the remote cutout differs from the local one"
        );
        let got = fetched(st) - before;
        let total = size(id);
        eprintln!(
            "{label}: {uri}: fetched {got} of {total} bytes ({:.2}%)",
            got as f64 * 100.0 / total as f64
        );
        assert!(got > 0, "{label} {uri}: nothing fetched from a cold cache?");
        assert!(
            got * 10 < total,
            "{label} {uri}: fetched {got} of {total} bytes, not a small fraction"
        );
        // A cutout inside what is cached: no byte fetched.
        let warm = uri
            .replace("size=40", "size=30")
            .replace("size=64", "size=48");
        let before = fetched(st);
        let (status, _, _) = common::fetch(st, &warm).await;
        assert_eq!(status, StatusCode::OK, "{label} {warm}");
        assert_eq!(
            fetched(st),
            before,
            "{label} {warm}: a warm cutout fetched bytes"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cutouts_from_an_nginx_data_server_equal_local_ones_and_read_a_fraction() {
    let f = frames().await;
    let Some((nginx, port)) = nginx(&f.dir) else {
        return;
    };
    let local = local_cutouts(&f).await;
    let url = format!("http://127.0.0.1:{port}");
    f.db.catalog.set_data_root("far", &url).await.unwrap();
    let st = state(&f, |_| {});
    same_and_small(&f, &st, &local, "nginx").await;

    // The data server stops: a cutout needing new blocks is a 502 naming
    // it, at once (the connection is refused).
    drop(nginx);
    let t = Instant::now();
    let (status, _, body) = common::fetch(&st, &cutout_uri(f.plain, 100, 1900, 20)).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{text}");
    assert!(text.contains(&url), "the message names the store: {text}");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    // What is cached is still served.
    let (status, _, _) = common::fetch(&st, &cases(&f)[0].0).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn cutouts_from_s3_equal_local_ones_and_a_changed_object_is_refused() {
    let f = frames().await;
    let Some((_moto, port, python)) = moto() else {
        return;
    };
    let raw = f.dir.join("raw");
    let url = upload_far(&python, port, &raw);
    let local = local_cutouts(&f).await;
    f.db.catalog.set_data_root("far", &url).await.unwrap();
    let st = state(&f, |_| {});
    same_and_small(&f, &st, &local, "s3").await;

    // The object is replaced by a truncated copy: its size no longer
    // matches the record, and a fresh server refuses it.
    let short = raw.join("short.fits");
    let bytes = std::fs::read(raw.join("plain.fits")).unwrap();
    std::fs::write(&short, &bytes[..bytes.len() / 2]).unwrap();
    boto(
        &python,
        port,
        &format!(
            "s3.upload_file('{}', 'survey', 'night1/raw/plain.fits', ExtraArgs=PUBLIC)",
            short.display()
        ),
    );
    let st = state(&f, |_| {});
    let (status, _, body) = common::fetch(&st, &cases(&f)[0].0).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert!(
        text.contains("recorded at ingest") && text.contains("s3://survey/night1"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_store_that_never_answers_is_a_504_within_the_timeout() {
    let f = frames().await;
    // Accepts connections, never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in silent.incoming().take(8) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let url = format!("http://127.0.0.1:{port}/data");
    f.db.catalog.set_data_root("far", &url).await.unwrap();
    let st = state(&f, |c| {
        c.stores = wisecut::stores::StoreSettings {
            timeout: Duration::from_secs(1),
            connect_timeout: Duration::from_secs(1),
            retries: 0,
        };
    });
    let t = Instant::now();
    let (status, _, body) = common::fetch(&st, &cases(&f)[0].0).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT, "{text}");
    assert!(text.contains(&url), "the message names the store: {text}");
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "bounded by the store timeout: {:?}",
        t.elapsed()
    );
    drop(held);
}

/// Issue 18's fault rule: when one frame's store is down, a dependency
/// cutout still answers, with that frame's cell carrying the store's error
/// and the frames of working stores cut as usual.
#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_cutout_renders_around_a_store_that_is_down() {
    let db = common::ingested(common::sqlite().await).await;
    let star = super::deps::bright_star(&db).await;
    // The raw frames move to a data server that is not running.
    let url = format!("http://127.0.0.1:{}", free_port());
    db.catalog.set_data_root("dead", &url).await.unwrap();
    let conn = common::raw_db(&db).await;
    common::sql(
        &conn,
        "UPDATE frame SET store = 'dead' WHERE frame_class = $1",
        vec!["RawScienceFrame".into()],
    )
    .await;
    let st = super::web::state(&db);
    let v = super::deps::deps_json(
        &st,
        &format!(
            "slid={}&ids={}&classes=raw,reduced&size=32",
            star.slid, star.sid
        ),
    )
    .await;
    let result = &v["result"];
    let classes: Vec<&str> = result["classes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let cells = result["rows"][0]["cells"].as_array().unwrap();
    let (mut failed, mut made) = (0, 0);
    for (class, cell) in classes.iter().zip(cells) {
        for c in cell.as_array().unwrap() {
            if *class == "RawScienceFrame" {
                let e = c["error"].as_str().unwrap_or_default();
                assert!(e.contains(&url), "the raw cell names the store: {c}");
                failed += 1;
            } else {
                assert!(c["error"].is_null(), "{c}");
                assert!(c["fits"].is_string(), "{c}");
                made += 1;
            }
        }
    }
    assert!(failed > 0 && made > 0, "failed {failed}, made {made}");
}

/// A server follows a data root that another process moved (`wisecut root
/// set` run elsewhere) within `ROOTS_TTL`, without a restart.
#[tokio::test]
async fn a_root_moved_by_another_process_is_followed() {
    use wisecut::catalog::{Catalog, ROOTS_TTL};
    use wisecut::ids::ObjectId;
    let f = frames().await;
    let st = state(&f, |_| {});
    let (status, _, _) = common::fetch(&st, &cases(&f)[0].0).await;
    assert_eq!(status, StatusCode::OK);
    let before = st.catalog.frame(ObjectId(f.plain)).await.unwrap().root_dir;
    assert_eq!(before, Some(f.dir.canonicalize().unwrap()));

    let moved = f.dir.with_file_name("far-moved");
    std::fs::rename(&f.dir, &moved).unwrap();
    let other = Catalog::connect(&f.db.url).await.unwrap();
    other
        .set_data_root("far", moved.to_str().unwrap())
        .await
        .unwrap();
    tokio::time::sleep(ROOTS_TTL + Duration::from_millis(500)).await;
    let after = st.catalog.frame(ObjectId(f.plain)).await.unwrap().root_dir;
    assert_eq!(after, Some(moved.canonicalize().unwrap()));
    // And a cutout not made before reads the moved files.
    let (status, _, body) = common::fetch(&st, &cases(&f)[1].0).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
}

/// `wisecut root verify` reads a remote root's objects whole, finds their
/// ingest SHA-256 and records their ETags; a later replacement of the
/// same size (which a size check cannot see) is then refused, and a
/// second verification names the file and marks it refused for good.
#[tokio::test(flavor = "multi_thread")]
async fn a_verified_object_replaced_by_one_of_the_same_size_is_refused() {
    use wisecut::stores::verify::{DIFFERS, verify_root};
    let f = frames().await;
    let Some((_moto, port, python)) = moto() else {
        return;
    };
    let raw = f.dir.join("raw");
    let url = upload_far(&python, port, &raw);
    let catalog = &f.db.catalog;
    catalog.set_data_root("far", &url).await.unwrap();
    let settings = wisecut::stores::StoreSettings::default();
    let report = verify_root(catalog, "far", &settings, &|_| {})
        .await
        .unwrap();
    assert_eq!(
        (report.checked, report.recorded),
        (2, 2),
        "{:?}",
        report.problems
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let plain = catalog
        .frame(wisecut::ids::ObjectId(f.plain))
        .await
        .unwrap();
    let etag = plain.store_etag.clone().unwrap();
    assert!(!etag.is_empty() && etag != DIFFERS);
    let st = state(&f, |_| {});
    let (status, _, _) = common::fetch(&st, &cases(&f)[0].0).await;
    assert_eq!(status, StatusCode::OK);

    // Same size, one pixel changed near the end of the data.
    let mut bytes = std::fs::read(raw.join("plain.fits")).unwrap();
    let n = bytes.len();
    bytes[n - 4000] ^= 0x40;
    let same_size = raw.join("same_size.fits");
    std::fs::write(&same_size, &bytes).unwrap();
    boto(
        &python,
        port,
        &format!(
            "s3.upload_file('{}', 'survey', 'night1/raw/plain.fits', ExtraArgs=PUBLIC)",
            same_size.display()
        ),
    );
    let st = state(&f, |_| {});
    let (status, _, body) = common::fetch(&st, &cases(&f)[0].0).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert!(
        text.contains("wisecut root verify") && text.contains(etag.trim_matches('"')),
        "{text}"
    );
    // The untouched frame is still served.
    let (status, _, _) = common::fetch(&st, &cases(&f)[1].0).await;
    assert_eq!(status, StatusCode::OK);

    // Verifying again names the file and marks it.
    let report = verify_root(catalog, "far", &settings, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(
        report.problems[0].contains(&format!("frame {}", f.plain))
            && report.problems[0].contains("SHA-256"),
        "{:?}",
        report.problems
    );
    let plain = catalog
        .frame(wisecut::ids::ObjectId(f.plain))
        .await
        .unwrap();
    assert_eq!(plain.store_etag.as_deref(), Some(DIFFERS));
    let st = state(&f, |_| {});
    let (status, _, body) = common::fetch(&st, &cases(&f)[0].0).await;
    let text = String::from_utf8_lossy(&body);
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
    assert!(text.contains("differ from its ingest record"), "{text}");

    // Moving the root forgets what was verified of the old objects.
    catalog.set_data_root("far", &url).await.unwrap();
    let plain = catalog
        .frame(wisecut::ids::ObjectId(f.plain))
        .await
        .unwrap();
    assert_eq!(plain.store_etag, None);
    // An unknown root is named with the ones there are.
    let e = verify_root(catalog, "nowhere", &settings, &|_| {})
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("\"nowhere\"") && e.contains("far"), "{e}");
}
