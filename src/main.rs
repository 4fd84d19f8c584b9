//! The `wisecut` binary: a thin layer over the library that parses the
//! command line, sets up logging and runs the chosen command.

use anyhow::{Context, bail};
use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wisecut::catalog::Catalog;
use wisecut::catalog::lineage::{Direction, MAX_DEPTH};
use wisecut::cli::{
    AssociateArgs, Cli, Command, CutoutArgs, IngestArgs, LineageArgs, PasswordArgs, PrivilegesArgs,
    ProjectCommand, SampleArgs, ServeArgs, StoreArgs, UserCommand,
};
use wisecut::config::{Config, SAMPLE_DIR};
use wisecut::ids::ObjectId;
use wisecut::sample::{self, SampleSpec};
use wisecut::web::AppState;

/// mimalloc rather than glibc's allocator: cutouts allocate and free
/// buffers of a few hundred kilobytes per request, which glibc serves with
/// fresh mappings (page faults, `munmap`) or keeps fragmented; mimalloc
/// reuses them and returns freed memory to the system after a short delay.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "wisecut=info,tower_http=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve(ServeArgs::default())) {
        Command::Serve(a) => serve(a).await,
        Command::Sample(a) => build_sample(a).await,
        Command::Lineage(a) => lineage(a).await,
        Command::Ingest(a) => ingest(a).await,
        Command::Associate(a) => associate(a).await,
        Command::Cutout(a) => cutout(a),
        Command::User(c) => user(c).await,
        Command::Project(c) => project(c).await,
        Command::Privileges(a) => privileges(a).await,
        Command::Root(c) => root(c).await,
    }
}

/// A terminal progress bar and the callback that drives it.
fn progress_bar() -> (ProgressBar, sample::SharedProgress) {
    let pb = ProgressBar::new(1);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}")
            .expect("valid template"),
    );
    let bar = pb.clone();
    let progress = move |done: usize, total: usize, stage: &str| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
        bar.set_message(stage.to_owned());
    };
    (pb, Arc::new(progress))
}

/// Resolves the store flags into a database URL and data root; for the
/// embedded sample, builds it first when it is missing.
async fn resolve_store(store: &StoreArgs) -> anyhow::Result<(String, PathBuf)> {
    if store.is_sample() {
        let dir = PathBuf::from(SAMPLE_DIR);
        let db = Config::sample_db_file(&dir);
        if !db.exists() {
            eprintln!("wisecut: no sample survey in {SAMPLE_DIR}/ yet; building it (once)…");
            run_sample_build(&dir, &SampleSpec::small(sample::DEFAULT_SEED)).await?;
        }
        return Ok((Config::sqlite_url(&db), Config::sample_data_dir(&dir)));
    }
    let data = store.data.clone().unwrap_or_else(|| PathBuf::from("."));
    let db = match &store.db {
        Some(u) => u.clone(),
        None => bail!("--db is required when --data is given"),
    };
    Ok((db, data))
}

async fn run_sample_build(dir: &Path, spec: &SampleSpec) -> anyhow::Result<()> {
    let (pb, progress) = progress_bar();
    let started = std::time::Instant::now();
    let summary = sample::build_sample_db(dir, spec, progress)
        .await
        .with_context(|| format!("building the sample survey in {}", dir.display()))?;
    pb.finish_and_clear();
    eprintln!(
        "wisecut: sample survey ready in {:.1} s: {} FITS files, {:.1} MB, {} frames, {} source lists, {} sources, {} associate lists",
        started.elapsed().as_secs_f64(),
        summary.files,
        summary.bytes as f64 / 1e6,
        summary.report.frames,
        summary.report.slids.len(),
        summary.report.sources,
        summary.report.alids.len(),
    );
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (db_url, data_dir) = resolve_store(&args.store).await?;
    let cache_dir = args.cache.clone().unwrap_or_else(|| {
        if args.store.is_sample() {
            PathBuf::from(SAMPLE_DIR).join("cache")
        } else {
            PathBuf::from("wisecut-cache")
        }
    });
    // Another process on the same cache directory: this one takes a
    // directory of its own inside it (held until the process ends).
    let claim = wisecut::stores::node_cache::claim(&cache_dir)
        .with_context(|| format!("claiming cache directory {}", cache_dir.display()))?;
    let mut config = Config::new(db_url, data_dir, claim.dir.clone(), args.bind);
    config.shared_store = args.shared_store.clone();
    config.cache_bytes = args.cache_mib << 20;
    config.sidecar_bytes = args.sidecar_mib << 20;
    config.row_cache_bytes = args.row_cache_mib << 20;
    config.stores = args.remote.settings();
    config.block_cache_bytes = args.remote.block_cache_mib << 20;
    config.max_cutout_px = args.max_cutout;
    if let Some(dir) = &args.jobs_dir {
        config.jobs_dir = dir.clone();
    }
    config.jobs_bytes = args.jobs_mib << 20;
    config.jobs_days = args.jobs_days;
    config.job_bytes = args.job_mib << 20;
    config.inline_sources = args.inline_sources;
    if let Some(m) = args.memory_mib {
        config.memory_bytes = m << 20;
    }
    config.limits = wisecut::config::ClientLimits {
        concurrency: args.client_concurrency,
        rate_per_s: args.client_rate,
        burst: args.client_burst,
        jobs_per_minute: args.client_jobs_per_minute,
        header_timeout: std::time::Duration::from_secs(args.header_timeout),
        body_timeout: std::time::Duration::from_secs(args.body_timeout),
        request_timeout: std::time::Duration::from_secs(args.request_timeout),
        memory_wait: std::time::Duration::from_secs(args.memory_wait),
    };
    if let Some(url) = &args.public_url {
        config.public_url = url.trim_end_matches('/').to_owned();
        config.public_url_fixed = true;
    }
    config.aladin_url = args.aladin_url.clone();
    config.aladin_dir = args.aladin_dir.clone().or_else(|| {
        let npm = PathBuf::from("node_modules/aladin-lite/dist");
        npm.join("aladin.js").is_file().then_some(npm)
    });
    config.validate().map_err(anyhow::Error::msg)?;
    eprintln!("wisecut {}\n{config}", wisecut::VERSION);
    let catalog = Catalog::connect(&config.db_url)
        .await
        .context("opening the catalogue")?;
    // TAP's ObsCore table follows the frames (new, removed, or written by
    // an older mapping); cheap when nothing changed.
    wisecut::vo::obscore::sync_table(&catalog)
        .await
        .context("bringing the ObsCore table up to date")?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    let state = AppState::new(catalog, Arc::new(config)).context("setting up the cache")?;
    // Interrupted jobs of a previous run are resumed (or failed) first.
    state
        .services
        .jobs
        .recover()
        .await
        .context("recovering jobs")?;
    state.services.jobs.start();
    tracing::info!("listening on http://{}", state.config.bind);
    if args.store.is_sample() {
        // The sample's demo account shows the non-public part of it.
        match state.catalog.user(sample::DEMO_USER).await {
            Ok(Some(_)) => eprintln!(
                "wisecut: sample survey at http://{}/ — log in as {} (password {}) and \
                 work in project {} to see its private frames",
                state.config.bind,
                sample::DEMO_USER,
                sample::DEMO_PASSWORD,
                sample::DEMO_PROJECT
            ),
            _ => eprintln!(
                "wisecut: this sample survey predates the demo account; rebuild it with \
                 `wisecut sample` to get user {} and project {}",
                sample::DEMO_USER,
                sample::DEMO_PROJECT
            ),
        }
    }
    wisecut::web::server::serve(listener, state, shutdown_signal()).await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

async fn build_sample(args: SampleArgs) -> anyhow::Result<()> {
    if args.size == "large" {
        return build_large(args).await;
    }
    let spec = SampleSpec::named(&args.size, args.seed)
        .with_context(|| format!("--size {}: expected small, bench or tiny", args.size))?;
    if args.files_only {
        std::fs::create_dir_all(&args.out)?;
        let (pb, progress) = progress_bar();
        let out = args.out.clone();
        let m = tokio::task::spawn_blocking(move || sample::generate(&out, &spec, &*progress))
            .await??;
        pb.finish_and_clear();
        eprintln!(
            "wisecut: wrote {} frames and manifest.json to {}",
            m.frames.len(),
            args.out.display()
        );
        return Ok(());
    }
    run_sample_build(&args.out, &spec).await
}

/// `wisecut sample --size large`.
async fn build_large(args: SampleArgs) -> anyhow::Result<()> {
    let db = args
        .db
        .clone()
        .context("--size large needs --db URL (an empty PostgreSQL or SQLite catalogue)")?;
    let mut spec = sample::large::LargeSpec::default_for(&db, args.seed);
    spec.frames = args.frames.unwrap_or(spec.frames);
    spec.sources = args.sources.unwrap_or(spec.sources);
    spec.fields = args.fields;
    let (pb, progress) = progress_bar();
    let started = std::time::Instant::now();
    let s = sample::large::build_large(&db, &args.out, &spec, progress)
        .await
        .context("building the large sample survey")?;
    pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "wisecut: large survey loaded in {secs:.1} s: {} frames, {} source lists, {} sources \
         ({:.0} sources/s), {} dependency edges, {} sky-index rows; serve it with \
         `wisecut serve --db {db} --data {}`",
        s.frames,
        s.source_lists,
        s.sources,
        s.sources as f64 / s.source_seconds.max(1e-9),
        s.edges,
        s.cells,
        args.out.join("data").display()
    );
    Ok(())
}

async fn open_catalog(store: &StoreArgs) -> anyhow::Result<Catalog> {
    let (db, _) = resolve_store(store).await?;
    Catalog::connect(&db).await.context("opening the catalogue")
}

async fn lineage(args: LineageArgs) -> anyhow::Result<()> {
    let catalog = open_catalog(&args.store).await?;
    let dir = if args.down {
        Direction::Down
    } else {
        Direction::Up
    };
    let walk = catalog
        .lineage(
            ObjectId(args.object_id),
            dir,
            args.depth.unwrap_or(MAX_DEPTH),
        )
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&walk)?);
    } else {
        print!("{}", walk.render_tree());
    }
    Ok(())
}

async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    use wisecut::catalog::ingest::batch::PathIngest;
    let (db, data) = resolve_store(&args.store).await?;
    let catalog = Catalog::connect(&db)
        .await
        .context("opening the catalogue")?;
    let started = std::time::Instant::now();
    let legacy = args.paths.len() == 1
        && args.manifest.is_none()
        && args.paths[0]
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("toml"));
    let report = if legacy {
        // A lineage manifest alone names every file and its class, data
        // store and links itself; options of the file-walking ingest would
        // be silently ignored, so they are refused instead.
        let given: Vec<&str> = [
            ("--root", !args.roots.is_empty()),
            ("--allow-outside", args.allow_outside.is_some()),
            ("--copy", args.copy),
            ("--keep-going", args.keep_going),
            ("--explain", args.explain),
            ("--columns", args.columns.is_some()),
            ("--creator", args.creator.is_some()),
            ("--project", args.project.is_some()),
            ("--privileges", args.privileges.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, set)| set.then_some(flag))
        .collect();
        if !given.is_empty() {
            bail!(
                "{}: not used with a lineage manifest given alone ({}); give the files or their directory and the manifest with --manifest, e.g. `wisecut ingest DIR --manifest {} {}`",
                given.join(", "),
                args.paths[0].display(),
                args.paths[0].display(),
                given.join(" …")
            );
        }
        catalog.ingest(&args.paths[0], &data).await?
    } else {
        let mut roots = Vec::new();
        for r in &args.roots {
            let (name, dir) = r
                .split_once('=')
                .ok_or_else(|| anyhow::anyhow!("--root {r:?}: expected NAME=DIR"))?;
            roots.push((name.to_owned(), PathBuf::from(dir)));
        }
        let req = PathIngest {
            paths: args.paths.clone(),
            manifest: args.manifest.clone(),
            roots,
            allow_outside: args.allow_outside.clone(),
            copy: args.copy,
            keep_going: args.keep_going,
            columns: args.columns.clone(),
            creator: args.creator.clone(),
            project: args.project.clone(),
            privileges: args.privileges,
            progress: None,
        };
        let (pb, _) = progress_bar();
        pb.set_message("reading the files");
        let bar = pb.clone();
        let req = PathIngest {
            progress: Some(Arc::new(move |done, total| {
                bar.set_length(total as u64);
                bar.set_position(done as u64);
            })),
            ..req
        };
        if args.explain {
            let plan = catalog.plan_paths(&req).await;
            pb.finish_and_clear();
            let plan = plan?;
            print!("{}", plan.explain());
            eprintln!(
                "wisecut: {} files would be ingested, {} unchanged, {} ignored, {} unresolved references, {} errors (nothing written)",
                plan.items.len(),
                plan.unchanged.len(),
                plan.ignored.len(),
                plan.unresolved.len(),
                plan.errors.len()
            );
            if plan.errors.is_empty() && plan.unresolved.is_empty() {
                return Ok(());
            }
            bail!("the batch cannot be ingested as it is");
        }
        let outcome = catalog.ingest_paths(&req, &data).await;
        pb.finish_and_clear();
        let outcome = outcome?;
        for (p, k) in &outcome.plan.unchanged {
            eprintln!(
                "unchanged {}: already {} #{}",
                p.display(),
                k.class,
                k.object_id
            );
        }
        for (p, why) in &outcome.plan.ignored {
            eprintln!("ignored {}: {why}", p.display());
        }
        if !outcome.failures.is_empty() {
            wisecut::vo::obscore::sync_table(&catalog).await?;
            eprintln!(
                "wisecut: ingested {} frames and {} source lists; {} files were not:",
                outcome.report.frames,
                outcome.report.slids.len(),
                outcome.failures.len()
            );
            for f in &outcome.failures {
                eprintln!("  {f}");
            }
            bail!("{} files were not ingested", outcome.failures.len());
        }
        outcome.report
    };
    wisecut::vo::obscore::sync_table(&catalog)
        .await
        .context("writing the ObsCore rows of the new frames")?;
    eprintln!(
        "wisecut: ingested {} frames, {} source lists ({} sources), {} associate lists ({} rows) in {:.1} s{}",
        report.frames,
        report.slids.len(),
        report.sources,
        report.alids.len(),
        report.associations,
        started.elapsed().as_secs_f64(),
        if report.superseded.is_empty() {
            String::new()
        } else {
            format!("; {} older versions superseded", report.superseded.len())
        }
    );
    Ok(())
}

/// `wisecut associate`: a new AssociateList from SourceLists. Frames do
/// not change, so the ObsCore rows need no sync.
async fn associate(args: AssociateArgs) -> anyhow::Result<()> {
    use wisecut::catalog::associate::AssociateRequest;
    let kind = wisecut::model::AssocType::parse(&args.kind)
        .context("--type must be chain, master or matched")?;
    let slids = wisecut::params::id_ranges::parse_ids(&args.slids)
        .map_err(|e| anyhow::anyhow!("SLIDS: {e}"))?;
    let mut req = AssociateRequest::new(
        slids.into_iter().map(wisecut::ids::Slid).collect(),
        kind,
        args.radius,
    );
    req.name = args.name;
    let catalog = open_catalog(&args.store).await?;
    let started = std::time::Instant::now();
    let report = catalog.associate(&req).await?;
    println!(
        "AssociateList ALID {} (object {}): {} associations ({} rows, {} flagged ambiguous) in {:.2} s",
        report.alid,
        report.object_id,
        report.associations,
        report.rows,
        report.ambiguous,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// `wisecut cutout`: one cutout of a file, written atomically (a temporary
/// file renamed into place), never over an existing file.
fn cutout(args: CutoutArgs) -> anyhow::Result<()> {
    use wisecut::imaging::cutout::{self, Provenance};
    use wisecut::imaging::{fits, pixels::PixelSource, render};
    use wisecut::params::cutout::{CutoutFormat, SpecParams};
    use wisecut::params::rendering::RenderingParams;
    if args.out.exists() {
        bail!("--out {}: file exists; not overwriting", args.out.display());
    }
    let hdu = match args.hdu {
        Some(h) => h,
        None => fits::first_image_hdu(&args.file)?,
    };
    let (x, y) = (args.x.map(|v| v.to_string()), args.y.map(|v| v.to_string()));
    let (size, width, height) = (
        args.size.map(|v| v.to_string()),
        args.width.map(|v| v.to_string()),
        args.height.map(|v| v.to_string()),
    );
    let spec = SpecParams {
        ra: args.ra.as_deref(),
        dec: args.dec.as_deref(),
        x: x.as_deref(),
        y: y.as_deref(),
        size: size.as_deref(),
        width: width.as_deref(),
        height: height.as_deref(),
        unit: Some(&args.unit),
        raw: args.raw,
    }
    .parse(usize::MAX)
    .map_err(|e| anyhow::anyhow!("--{e}"))?;
    let source = PixelSource::open(&args.file, hdu, None)?;
    let provenance = Provenance {
        object_id: None,
        file: args.file.display().to_string(),
        object_url: None,
    };
    let cut = cutout::cut(&source, &spec, &provenance)?;
    // The same vocabulary as the HTTP API; errors name the flag.
    let flag = |e: wisecut::params::ParamError| anyhow::anyhow!("--{e}");
    let format = CutoutFormat::parse(Some(&args.format), None).map_err(flag)?;
    let (min, max) = (
        args.min.map(|v| v.to_string()),
        args.max.map(|v| v.to_string()),
    );
    let rendering = RenderingParams {
        stretch: Some(&args.stretch),
        interval: Some(&args.interval),
        min: min.as_deref(),
        max: max.as_deref(),
        ..Default::default()
    }
    .parse()
    .map_err(flag)?;
    let bytes = match format {
        CutoutFormat::Fits => cut.to_fits()?,
        CutoutFormat::Image(format) => {
            let rendered = render::render(&cut.to_image_f32(), &rendering.params)?;
            // Scripts (and the astropy peer test) read the limits used.
            println!("limits: {:?} {:?}", rendered.vmin, rendered.vmax);
            render::encode(&rendered, format)?
        }
    };
    let tmp = args.out.with_extension("fits.part");
    std::fs::write(&tmp, &bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("wisecut: {} → {}", cut.geometry, args.out.display());
    Ok(())
}

/// A password from `--password-stdin`, `WISECUT_PASSWORD` or the
/// terminal (typed twice, not echoed) — never from an argument.
fn read_password(how: &PasswordArgs) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal};
    if how.password_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    if let Ok(p) = std::env::var("WISECUT_PASSWORD") {
        return Ok(p);
    }
    if !std::io::stdin().is_terminal() {
        bail!("no password: use --password-stdin, WISECUT_PASSWORD or run on a terminal");
    }
    let first = prompt_hidden("Password: ")?;
    let again = prompt_hidden("Again: ")?;
    if first != again {
        bail!("the two passwords differ");
    }
    Ok(first)
}

/// One line from the terminal with echo off (restored after reading).
fn prompt_hidden(prompt: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, Write};
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    // `stty` on the terminal (stdin is inherited): no unsafe termios code.
    let echo = |on: bool| {
        std::process::Command::new("stty")
            .arg(if on { "echo" } else { "-echo" })
            .stdin(std::process::Stdio::inherit())
            .status()
            .is_ok_and(|s| s.success())
    };
    let hidden = echo(false);
    let mut line = String::new();
    let read = std::io::stdin().lock().read_line(&mut line);
    if hidden {
        echo(true);
    }
    eprintln!();
    read.context("reading the password")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}

async fn user(cmd: UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add {
            name,
            superuser,
            password,
            store,
        } => {
            let catalog = open_catalog(&store).await?;
            let pw = read_password(&password)?;
            catalog.add_user(&name, &pw, superuser).await?;
            eprintln!(
                "wisecut: user {name} added{}",
                if superuser { " (superuser)" } else { "" }
            );
        }
        UserCommand::Passwd {
            name,
            password,
            store,
        } => {
            let catalog = open_catalog(&store).await?;
            let pw = read_password(&password)?;
            catalog.set_password(&name, &pw).await?;
            eprintln!("wisecut: password of {name} set; their browser sessions ended");
        }
        UserCommand::Token {
            name,
            label,
            revoke,
            list,
            store,
        } => {
            let catalog = open_catalog(&store).await?;
            if list {
                if catalog.user(&name).await?.is_none() {
                    bail!("user {name} does not exist");
                }
                for t in catalog.tokens(&name).await? {
                    let state = match t.revoked_at {
                        Some(r) => format!("revoked {}", r.format("%Y-%m-%d %H:%M UTC")),
                        None => "live".to_owned(),
                    };
                    println!(
                        "{}\t{}\t{}\t{}",
                        t.id,
                        t.label,
                        t.created_at.format("%Y-%m-%d %H:%M UTC"),
                        state
                    );
                }
            } else if let Some(id) = revoke {
                catalog.revoke_token(&name, id).await?;
                eprintln!("wisecut: token {id} of {name} revoked");
            } else {
                let secret = catalog.create_token(&name, &label).await?;
                eprintln!("wisecut: new token of {name} ({label}); it is not shown again:");
                println!("{secret}");
            }
        }
    }
    Ok(())
}

/// `wisecut root set NAME LOCATION`, `wisecut root verify NAME` and
/// `wisecut root list`.
async fn root(cmd: wisecut::stores::RootCommand) -> anyhow::Result<()> {
    use wisecut::stores::RootCommand;
    match cmd {
        RootCommand::Set {
            name,
            location,
            store,
        } => {
            let catalog = open_catalog(&store).await?;
            let at = catalog.set_data_root(&name, &location).await?;
            eprintln!("wisecut: data root {name} is {at}");
        }
        RootCommand::Verify {
            name,
            store,
            remote,
        } => {
            let catalog = open_catalog(&store).await?;
            let started = std::time::Instant::now();
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} files {msg}")
                    .expect("valid template"),
            );
            bar.set_message(format!("of data root {name} read and hashed"));
            let report =
                wisecut::stores::verify::verify_root(&catalog, &name, &remote.settings(), &|n| {
                    bar.set_position(n)
                })
                .await?;
            bar.finish_and_clear();
            for p in &report.problems {
                eprintln!("wisecut: {p}");
            }
            eprintln!(
                "wisecut: data root {name}: {} frame files read ({:.1} MB in {:.1} s), {} ETags recorded, {} differ from their ingest record",
                report.checked,
                report.bytes as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                report.recorded,
                report.problems.len()
            );
            if !report.problems.is_empty() {
                anyhow::bail!(
                    "data root {name}: {} of {} frame files differ from their ingest record",
                    report.problems.len(),
                    report.checked
                );
            }
        }
        RootCommand::List { store } => {
            let catalog = open_catalog(&store).await?;
            let mut roots: Vec<_> = catalog.data_roots().into_iter().collect();
            roots.sort();
            for (name, at) in roots {
                println!("{name}\t{}", at.display());
            }
        }
    }
    Ok(())
}

async fn project(cmd: ProjectCommand) -> anyhow::Result<()> {
    match cmd {
        ProjectCommand::Add {
            name,
            description,
            store,
        } => {
            let catalog = open_catalog(&store).await?;
            catalog.add_project(&name, &description).await?;
            eprintln!("wisecut: project {name} added");
        }
        ProjectCommand::Member {
            project,
            user,
            role,
            remove,
            store,
        } => {
            let catalog = open_catalog(&store).await?;
            if remove {
                catalog.remove_member(&project, &user).await?;
                eprintln!("wisecut: {user} removed from {project}");
            } else {
                let role = wisecut::catalog::access::Role::parse(&role)?;
                catalog.set_member(&project, &user, role).await?;
                eprintln!("wisecut: {user} is {} of {project}", role.name());
            }
        }
    }
    Ok(())
}

/// A privileges level by number or name.
fn privileges_level(text: &str) -> anyhow::Result<i32> {
    Ok(match text.trim().to_ascii_lowercase().as_str() {
        "1" | "private" => 1,
        "2" | "project" => 2,
        "3" | "users" => 3,
        "4" | "public" => 4,
        "5" => 5,
        other => bail!(
            "LEVEL {other:?} is not a privileges level: use 1 or private, 2 or project, \
             3 or users, 4 or public"
        ),
    })
}

async fn privileges(args: PrivilegesArgs) -> anyhow::Result<()> {
    use wisecut::catalog::browse::{self, Cell, Query, Table};
    let catalog = open_catalog(&args.store).await?;
    let viewer = match &args.as_user {
        Some(u) => Some(catalog.viewer_of(u, None).await?),
        None => None,
    };
    let (level, ids) = args
        .args
        .split_last()
        .context("give the object ids and the level")?;
    let level = privileges_level(level)?;
    let ids: Vec<ObjectId> = if args.query.is_empty() {
        if ids.is_empty() {
            bail!("give object ids before the level, or --query with --table");
        }
        ids.iter()
            .map(|t| {
                t.trim()
                    .parse()
                    .map(ObjectId)
                    .map_err(|_| anyhow::anyhow!("OBJECT_ID {t:?} is not an object id"))
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        if !ids.is_empty() {
            bail!("give either object ids or --query, not both");
        }
        let name = args.table.as_deref().unwrap_or_default();
        let table = if name.eq_ignore_ascii_case("SourceList") {
            Table::SourceLists
        } else {
            match name.parse::<wisecut::model::FrameClass>() {
                Ok(c) => Table::Frames(c),
                Err(_) => bail!(
                    "--table {name:?} is not a table: use a frame class (e.g. \
                     ReducedScienceFrame) or SourceList"
                ),
            }
        };
        // The query runs as the one who acts, so --as finds only what that
        // user may see.
        let scoped = match &viewer {
            Some(v) => catalog.for_viewer(v.clone()),
            None => catalog.clone(),
        };
        let mut query = Query::new(&table);
        for q in &args.query {
            query.conditions.push(
                browse::parse_condition(&table, q)
                    .map_err(|e| anyhow::anyhow!("--query {q:?}: {e}"))?,
            );
        }
        let col = table
            .columns()
            .iter()
            .position(|c| c.name == "object_id")
            .context("the table has no object_id column")?;
        query.page_size = 1000;
        let mut found = Vec::new();
        loop {
            let page = scoped.browse(&table, &query).await?;
            let n = page.rows.len();
            for row in page.rows {
                if let Some(Cell::Int(id)) = row.get(col) {
                    found.push(ObjectId(*id));
                }
            }
            if n == 0 || found.len() as u64 >= page.total {
                break;
            }
            query.page += 1;
        }
        if found.is_empty() {
            bail!("--query: no object of {name} meets the conditions");
        }
        found
    };
    let n = catalog.set_privileges(viewer.as_ref(), &ids, level).await?;
    // ObsCore (TAP) carries the privileges of frames too.
    wisecut::vo::obscore::sync_table(&catalog)
        .await
        .context("bringing the ObsCore table up to date")?;
    eprintln!("wisecut: privileges of {n} objects set to {level}");
    Ok(())
}
