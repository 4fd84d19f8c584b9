// aladin-view.js — wisecut's Aladin Lite v3 page logic (an ES module).
//
// The page carries its configuration as JSON:
//   <script type="application/json" id="aladin-config">
//     {"ra": 150.1, "dec": 2.2, "fov": 0.15,
//      "fits_url": "/cutout/...fits", "catalog_url": "/vo/...xml",
//      "catalog_name": "SourceList 12",
//      "positions": [[ra, dec, "label"], ...],
//      "moc_urls": [{"name": "coverage", "url": "/moc/...json"}],
//      "survey": null}
//   </script>
//   <div id="aladin-lite-div"></div>
//   <p id="aladin-status"></p>
//   <script type="module" src="/static/aladin-view.js"></script>
//
// "fov" (degrees) is what must fit across the view's shorter side.
// Optional keys: "aladin_js" (URL of the Aladin Lite ES module, default
// /static/aladin/aladin.js), "div" (CSS selector of the view element),
// "fits_name" (layer name), "fits_options" (Aladin image options such as
// stretch, colormap, minCut, maxCut).
//
// Everything it needs comes from the page's own origin, so it works without
// network access: with no "survey" the FITS frame itself is the base layer
// and no HiPS is ever requested. When the catalogue has loaded it sets
//   document.body.dataset.catalogSources  = number of catalogue sources,
//   document.body.dataset.catalogInView   = how many of them project inside
//                                           the view,
//   document.body.dataset.aladinReady     = "1";
// any failure sets data-aladin-error on <body> and shows the message.
//
// When Aladin Lite itself cannot be loaded or started (no local copy and no
// network), the page's server-rendered fallback (#sky-fallback: the frame
// from /render with the sources and marks drawn in SVG) replaces the empty
// view; once its picture has loaded it sets
//   document.body.dataset.skyFallback = "1".

const LOCAL_ALADIN = "/static/aladin/aladin.js";
const CDS_ALADIN = "https://aladin.cds.unistra.fr/AladinLite/api/v3/latest/aladin.js";
const MOC_COLORS = ["#4fc3f7", "#ffb74d", "#ba68c8", "#81c784"];
const LOAD_TIMEOUT_MS = 60000;

const body = document.body;

function statusEl() {
  let el = document.getElementById("aladin-status");
  if (!el) {
    el = document.createElement("p");
    el.id = "aladin-status";
    el.className = "aladin-status";
    const view = document.querySelector("#aladin-lite-div, .aladin-view");
    if (view) view.after(el);
    else body.append(el);
  }
  return el;
}

function showStatus(text) {
  const el = statusEl();
  el.classList.remove("error");
  el.textContent = text;
}

// Records the first error only: later ones are usually consequences.
function fail(what, err) {
  const msg = what + ": " + (err && err.message ? err.message : String(err || "failed"));
  console.error("aladin-view:", msg, err);
  if (!body.dataset.aladinError) body.dataset.aladinError = msg;
  const el = statusEl();
  el.classList.add("error");
  el.setAttribute("role", "alert");
  el.textContent = msg;
}

function readConfig() {
  const el = document.getElementById("aladin-config");
  if (!el) throw new Error("no #aladin-config element");
  const cfg = JSON.parse(el.textContent);
  for (const k of ["ra", "dec", "fov"]) {
    if (!Number.isFinite(Number(cfg[k]))) throw new Error("config." + k + " is not a number");
  }
  return cfg;
}

// Aladin Lite comes as an ES module (npm dist/aladin.js, default export A)
// served by wisecut at /static/aladin/ when installed; otherwise the CDS
// build is loaded as a classic script, which defines window.A.
async function loadAladinLite(cfg) {
  if (globalThis.A && typeof globalThis.A.aladin === "function") return globalThis.A;
  const local = new URL(cfg.aladin_js || LOCAL_ALADIN, location.href).href;
  try {
    const mod = await import(local);
    const A = mod.default || globalThis.A;
    if (A && typeof A.aladin === "function") return A;
  } catch (e) {
    console.info("aladin-view: local Aladin Lite unavailable, trying CDS", e);
  }
  await new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = cfg.aladin_url || CDS_ALADIN;
    s.charset = "utf-8";
    s.onload = resolve;
    s.onerror = () => reject(new Error("could not load Aladin Lite (neither " +
      local + " nor " + (cfg.aladin_url || CDS_ALADIN) + ")"));
    document.head.append(s);
  });
  if (!globalThis.A) throw new Error("Aladin Lite script defined no A");
  return globalThis.A;
}

// The FITS frame as an image layer; resolves once Aladin has decoded it.
function fitsImage(A, cfg, onLoaded, onError) {
  return A.image(new URL(cfg.fits_url, location.href).href, {
    name: cfg.fits_name || "frame",
    // e.g. {"stretch": "asinh", "colormap": "grayscale", "minCut": 90, "maxCut": 400}
    ...(cfg.fits_options || {}),
    // Keep the caller's view centre: the default callback recentres on the
    // image, which is the same place but would override a chosen fov.
    successCallback: () => onLoaded(),
    errorCallback: (e) => onError(e),
  });
}

// Rejects if the promise has not settled in ms: Aladin's loaders do not
// always call their error callbacks, and a test must never hang.
function withTimeout(promise, ms, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(what + " timed out after " + ms / 1000 + " s")), ms);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// Fetches the VOTable here, so HTTP errors are reported plainly (Aladin's
// own loader would parse a 404 page and never call back), then lets Aladin
// parse it from a blob: URL.
async function loadCatalog(A, aladin, cfg) {
  const url = new URL(cfg.catalog_url, location.href).href;
  const resp = await withTimeout(fetch(url), LOAD_TIMEOUT_MS, "catalogue download");
  if (!resp.ok) throw new Error("HTTP " + resp.status + " for " + url);
  const blobUrl = URL.createObjectURL(new Blob([await resp.text()], { type: "text/xml" }));
  const opts = {
    name: cfg.catalog_name || "catalogue",
    color: "#00e676",
    shape: "circle",
    sourceSize: 14,
    onClick: "showTable",
  };
  // Column names to use when the UCDs do not say which columns hold RA/Dec.
  if (cfg.ra_field) opts.raField = cfg.ra_field;
  if (cfg.dec_field) opts.decField = cfg.dec_field;
  try {
    const cat = await withTimeout(new Promise((resolve, reject) => {
      const c = A.catalogFromURL(
        blobUrl,
        opts,
        (loaded) => resolve(loaded),
        (e) => reject(e instanceof Error ? e : new Error(String(e || "unreadable VOTable"))),
        false, // never fall back to the CDS CORS proxy
      );
      aladin.addCatalog(c);
    }), LOAD_TIMEOUT_MS, "catalogue parsing");
    cat.url = url; // what the layer menu shows / offers for download
    return cat;
  } finally {
    URL.revokeObjectURL(blobUrl);
  }
}

// Dependency-cutout positions: a separate layer of labelled crosses.
function addPositions(A, aladin, positions) {
  if (!Array.isArray(positions) || positions.length === 0) return 0;
  const layer = A.catalog({
    name: "cutout positions",
    color: "#ffeb3b",
    shape: "cross",
    sourceSize: 20,
    displayLabel: true,
    labelColumn: "label",
    labelColor: "#ffeb3b",
    labelFont: "13px sans-serif",
  });
  aladin.addCatalog(layer);
  layer.addSources(positions.map(([ra, dec, label]) =>
    A.source(Number(ra), Number(dec), { label: String(label ?? "") })));
  return positions.length;
}

// MOCs come as MOC JSON ({"order": [ipix, ...]}); Aladin's MOCFromURL only
// reads FITS MOCs, so fetch here and hand JSON (or FITS bytes) over.
async function addMoc(A, aladin, spec, i) {
  const resp = await withTimeout(fetch(new URL(spec.url, location.href).href),
    LOAD_TIMEOUT_MS, "MOC download");
  if (!resp.ok) throw new Error("HTTP " + resp.status + " for " + spec.url);
  const bytes = await resp.arrayBuffer();
  const head = new TextDecoder().decode(bytes.slice(0, 6));
  const data = head === "SIMPLE" ? bytes : JSON.parse(new TextDecoder().decode(bytes));
  const opts = {
    name: spec.name || "MOC " + (i + 1),
    color: MOC_COLORS[i % MOC_COLORS.length],
    opacity: 0.2,
    fill: true,
    perimeter: true, // outline of the coverage, not every HEALPix cell
    lineWidth: 2,
  };
  await withTimeout(new Promise((resolve, reject) => {
    aladin.addMOC(A.MOCFromJSON(data, opts, resolve, () => reject(new Error("bad MOC"))));
  }), LOAD_TIMEOUT_MS, "MOC display");
}

// Aladin's fov spans the view's width; config.fov must fit across the
// shorter side, so widen it for landscape views.
function fovForView(div, fov) {
  const w = div.clientWidth, h = div.clientHeight;
  return w > 0 && h > 0 && w > h ? fov * (w / h) : fov;
}

function countInView(aladin, sources) {
  const [w, h] = aladin.getSize();
  let n = 0;
  for (const s of sources) {
    let xy = null;
    try { xy = aladin.world2pix(s.ra, s.dec); } catch (e) { xy = null; }
    if (xy && xy[0] >= 0 && xy[1] >= 0 && xy[0] < w && xy[1] < h) n++;
  }
  return n;
}

// Shows the server's own rendering instead of the Aladin view.
function showFallback() {
  const fb = document.getElementById("sky-fallback");
  const img = document.getElementById("sky-fallback-image");
  if (!fb || !img) return;
  const view = document.getElementById("aladin-lite-div");
  if (view) view.hidden = true;
  fb.hidden = false;
  img.addEventListener("load", () => { body.dataset.skyFallback = "1"; }, { once: true });
  img.addEventListener("error", () => fail("fallback picture", new Error("HTTP error for " + img.dataset.src)),
    { once: true });
  img.src = img.dataset.src;
}

async function main() {
  let cfg;
  try {
    cfg = readConfig();
  } catch (e) {
    fail("bad Aladin configuration", e);
    return;
  }
  showStatus("Loading Aladin Lite…");
  let A;
  try {
    A = await loadAladinLite(cfg);
    await A.init; // compiles the WebAssembly core; rejects without WebGL2
  } catch (e) {
    fail("Aladin Lite could not start", e);
    showFallback();
    return;
  }

  const div = document.querySelector(cfg.div || "#aladin-lite-div");
  if (!div) {
    fail("Aladin Lite could not start", new Error("no #aladin-lite-div element"));
    return;
  }

  let resolveFits, rejectFits;
  const fitsLoaded = new Promise((res, rej) => { resolveFits = res; rejectFits = rej; });
  const image = cfg.fits_url ? fitsImage(A, cfg, resolveFits, rejectFits) : null;
  if (!image) resolveFits();

  let aladin;
  try {
    aladin = A.aladin(div, {
      target: cfg.ra + " " + cfg.dec,
      fov: fovForView(div, Number(cfg.fov)),
      cooFrame: "ICRSd",
      projection: "TAN",
      // Without a survey the frame is the base layer and no HiPS is fetched.
      // With neither, the keys must be absent (not undefined) for Aladin to
      // fall back to its default DSS survey and HiPS list.
      ...(cfg.survey || image
        ? { survey: cfg.survey || image, hipsList: cfg.survey ? [cfg.survey] : [] }
        : {}),
      log: false, // no start-up ping to CDS
      showReticle: false,
      showContextMenu: true,
      showCooGridControl: true,
      showSimbadPointerControl: false,
      showShareControl: false,
      showFullscreenControl: true,
      showLayersControl: true,
    });
    if (cfg.survey && image) aladin.setOverlayImageLayer(image, "frame");
    aladin.gotoRaDec(Number(cfg.ra), Number(cfg.dec));
    aladin.setFoV(fovForView(div, Number(cfg.fov)));
  } catch (e) {
    fail("Aladin Lite could not start", e);
    showFallback();
    return;
  }
  window.wisecutAladin = aladin;
  showStatus("Loading frame and catalogue…");

  const npos = addPositions(A, aladin, cfg.positions);
  const mocs = (cfg.moc_urls || []).map((m, i) =>
    addMoc(A, aladin, m, i).catch((e) => fail("MOC " + (m.name || m.url), e)));

  const fits = withTimeout(fitsLoaded, LOAD_TIMEOUT_MS, "loading the frame")
    .catch((e) => fail("FITS frame " + cfg.fits_url, e));

  if (!cfg.catalog_url) {
    await Promise.all([fits, ...mocs]);
    body.dataset.catalogSources = "0";
    if (!body.dataset.aladinError) {
      body.dataset.aladinReady = "1";
      showStatus("Frame loaded" + (npos ? "; " + npos + " cutout positions" : "") + ".");
    }
    return;
  }
  try {
    const cat = await loadCatalog(A, aladin, cfg);
    const sources = cat.getSources() || [];
    await Promise.all([fits, ...mocs]);
    body.dataset.catalogSources = String(sources.length);
    body.dataset.catalogInView = String(countInView(aladin, sources));
    if (body.dataset.aladinError) return;
    body.dataset.aladinReady = "1";
    showStatus(sources.length + " sources from " + (cfg.catalog_name || "the catalogue") +
      (npos ? "; " + npos + " cutout positions" : "") + ".");
  } catch (e) {
    fail("catalogue " + cfg.catalog_url, e);
  }
}

main().catch((e) => fail("Aladin view", e));
