//! Admission control: what one client may ask of the server at a time.
//!
//! A cutout, a render, an export or a job costs CPU, memory and disk; one
//! script in a tight loop (or a hundred job submissions in three seconds)
//! would otherwise take the server from everybody else. So every request
//! is first classed by its method, path and query alone ([`cost`], before
//! any work is done):
//!
//! - *cheap* — pages, static files, health, metadata: never limited, so the
//!   site stays browsable while a client is being held back;
//! - *expensive* — cutouts, renders, thumbnails, SODA, `/data/`, table
//!   exports, PROV, MOCs, job ZIPs: per client at most
//!   [`ClientLimits::concurrency`] in progress at once and a token bucket of
//!   [`ClientLimits::rate_per_s`] refilled per second, holding at most
//!   [`ClientLimits::burst`];
//! - *jobs* — submissions of dependency cutouts, RGB pictures and batches:
//!   expensive, and also a bucket of [`ClientLimits::jobs_per_minute`].
//!
//! A request over a limit is answered `429 Too Many Requests` at once (it is
//! never queued: a queue would hold the connection and the memory of the
//! very client being limited) with `Retry-After`, computed from the bucket,
//! and a message naming the limit. A limit of 0 turns that limit off.
//!
//! A client is its IP address (IPv6 by its /64 prefix, which one subscriber
//! typically holds whole). Behind a configured proxy (`--public-url`) every
//! connection comes from the proxy, so the client is the address that proxy
//! appended to `X-Forwarded-For` — the rightmost one: the entries left of
//! it were sent by the client and could name anybody. Without connection
//! information (router tests through `oneshot`) all requests are one
//! client, `unknown`.
//!
//! The table of clients is bounded: a client with nothing in progress whose
//! buckets have refilled is indistinguishable from a new one and is dropped
//! at the next sweep; past [`MAX_CLIENTS`] new addresses share one record,
//! so a flood of addresses costs memory up to that bound and no further.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::AppState;
use crate::config::ClientLimits;

/// Most clients remembered at once; beyond it new clients share a record.
pub const MAX_CLIENTS: usize = 100_000;

/// The table is swept for idle clients when it reaches this size (and
/// then again at twice what the sweep kept).
const FIRST_SWEEP: usize = 1024;

/// What a request costs the server, judged before any work is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cost {
    /// Pages, static files, metadata: never limited.
    Cheap,
    /// Pixels read, pictures rendered, tables exported.
    Expensive,
    /// A job submitted: expensive, and counted against the job budget.
    Job,
}

/// The cost of a request to `path` with `query`.
pub fn cost(method: &Method, path: &str, query: Option<&str>) -> Cost {
    let under = |prefix: &str| path.starts_with(prefix);
    // Jobs are submitted with POST only (a GET never starts work: crawlers
    // and link prefetchers follow GETs); a GET of these paths is the form.
    const SUBMIT: [&str; 6] = [
        "/deps",
        "/api/deps",
        "/rgb",
        "/api/rgb",
        "/batch",
        "/api/batch",
    ];
    if method == Method::POST && (SUBMIT.contains(&path) || path == "/vo/tap/async") {
        return Cost::Job;
    }
    match path {
        "/api/cutout" | "/vo/soda/sync" | "/prov" | "/vo/moc" | "/vo/tap/sync" => Cost::Expensive,
        _ if under("/render/") || under("/thumb/") || under("/data/") => Cost::Expensive,
        _ if under("/jobs/") && path.ends_with("/zip") && !path.contains("/files/") => {
            Cost::Expensive
        }
        _ if under("/table/") && is_export(query) => Cost::Expensive,
        _ => Cost::Cheap,
    }
}

/// Whether a table request asks for an export (`format=` csv, json or
/// votable) rather than the HTML page.
fn is_export(query: Option<&str>) -> bool {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query.unwrap_or(""))
        .unwrap_or_default()
        .iter()
        .any(|(k, v)| {
            k.eq_ignore_ascii_case("format")
                && matches!(
                    v.trim().to_ascii_lowercase().as_str(),
                    "csv" | "json" | "votable"
                )
        })
}

/// Whether `path` is a browser page (answered with HTML, errors included)
/// rather than an endpoint for scripts, pictures or files.
pub(crate) fn answers_html(path: &str, query: Option<&str>) -> bool {
    const NOT_PAGES: [&str; 8] = [
        "/api/", "/vo/", "/data/", "/render/", "/thumb/", "/static/", "/prov", "/health",
    ];
    if NOT_PAGES.iter().any(|p| path.starts_with(p)) {
        return false;
    }
    if path.starts_with("/jobs/") && (path.contains("/files/") || path.ends_with("/zip")) {
        return false;
    }
    !(path.starts_with("/table/") && is_export(query))
}

/// Who is asking, as far as limits are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientId {
    /// An IPv4 address, or an IPv6 /64 prefix.
    Ip(IpAddr),
    /// No connection information (router tests): one shared client.
    Unknown,
    /// New clients while the table is full share this record.
    Overflow,
}

impl ClientId {
    /// The client at `ip`: IPv4 (also when mapped into IPv6) as is, IPv6 by
    /// its /64 prefix.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                ClientId::Ip(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
            v4 => ClientId::Ip(v4),
        }
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientId::Ip(ip) => write!(f, "{ip}"),
            ClientId::Unknown => f.write_str("unknown"),
            ClientId::Overflow => f.write_str("overflow"),
        }
    }
}

/// The client of `req`: the proxy's `X-Forwarded-For` entry when proxy
/// headers are trusted, else the connection's peer, else `Unknown`.
pub fn client_of(req: &Request, trust_forwarded_for: bool) -> ClientId {
    if trust_forwarded_for {
        // The rightmost entry of the last header is the one our proxy
        // appended; everything before it came from the client.
        let forwarded = req
            .headers()
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .and_then(|a| {
                a.parse::<IpAddr>()
                    .ok()
                    .or_else(|| a.parse::<SocketAddr>().ok().map(|s| s.ip()))
            });
        if let Some(ip) = forwarded {
            return ClientId::of(ip);
        }
    }
    match req.extensions().get::<ConnectInfo<SocketAddr>>() {
        Some(ConnectInfo(peer)) => ClientId::of(peer.ip()),
        None => ClientId::Unknown,
    }
}

/// A token bucket: `tokens` as of `at`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64, now: Instant) -> Self {
        Self {
            tokens: capacity,
            at: now,
        }
    }

    fn refill(&mut self, capacity: f64, per_s: f64, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * per_s).min(capacity);
        self.at = now;
    }

    /// How long until a token is there (zero when one is).
    fn wait(&self, per_s: f64) -> Duration {
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / per_s)
        }
    }
}

/// One client's record.
#[derive(Debug)]
struct Record {
    in_flight: usize,
    requests: Bucket,
    jobs: Bucket,
}

/// The limits as the buckets use them; 0 (or a rate that is not a
/// positive number) turns a limit off.
#[derive(Debug, Clone, Copy)]
struct Rules {
    concurrency: Option<usize>,
    /// (refill per second, capacity)
    requests: Option<(f64, f64)>,
    jobs: Option<(f64, f64)>,
}

impl Rules {
    fn of(l: &ClientLimits) -> Self {
        Self {
            concurrency: (l.concurrency > 0).then_some(l.concurrency),
            requests: (l.rate_per_s.is_finite() && l.rate_per_s > 0.0)
                .then(|| (l.rate_per_s, f64::from(l.burst.max(1)))),
            jobs: (l.jobs_per_minute > 0).then(|| {
                let n = f64::from(l.jobs_per_minute);
                (n / 60.0, n)
            }),
        }
    }

    fn fresh(&self, now: Instant) -> Record {
        Record {
            in_flight: 0,
            requests: Bucket::full(self.requests.map_or(0.0, |r| r.1), now),
            jobs: Bucket::full(self.jobs.map_or(0.0, |j| j.1), now),
        }
    }

    fn refill(&self, r: &mut Record, now: Instant) {
        if let Some((per_s, cap)) = self.requests {
            r.requests.refill(cap, per_s, now);
        }
        if let Some((per_s, cap)) = self.jobs {
            r.jobs.refill(cap, per_s, now);
        }
    }

    /// Whether `r` (refilled to `now`) is the same as a new client's.
    fn is_idle(&self, r: &mut Record, now: Instant) -> bool {
        self.refill(r, now);
        r.in_flight == 0
            && self
                .requests
                .is_none_or(|(_, cap)| r.requests.tokens >= cap)
            && self.jobs.is_none_or(|(_, cap)| r.jobs.tokens >= cap)
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// Too many expensive requests in progress.
    Concurrency {
        /// The limit.
        limit: usize,
    },
    /// Expensive requests started too fast.
    Rate {
        /// Requests a second.
        per_s: f64,
        /// Burst size.
        burst: u32,
        /// Until a token is there.
        wait: Duration,
    },
    /// Jobs submitted too fast.
    Jobs {
        /// Jobs a minute.
        per_minute: u32,
        /// Until a token is there.
        wait: Duration,
    },
}

impl Refusal {
    /// Whole seconds to wait, at least 1 (`Retry-After`).
    pub fn retry_after_s(&self) -> u64 {
        let wait = match self {
            // A request in progress ends at an unknown time; a second is
            // the shortest honest answer.
            Refusal::Concurrency { .. } => Duration::from_secs(1),
            Refusal::Rate { wait, .. } | Refusal::Jobs { wait, .. } => *wait,
        };
        (wait.as_secs_f64().ceil() as u64).max(1)
    }

    /// One line naming the limit.
    pub fn message(&self) -> String {
        let s = self.retry_after_s();
        match self {
            Refusal::Concurrency { limit } => {
                format!("per client at most {limit} expensive requests at once; retry in {s} s")
            }
            Refusal::Rate { per_s, burst, .. } => format!(
                "per client at most {per_s} expensive requests a second (bursts of {burst}); retry in {s} s"
            ),
            Refusal::Jobs { per_minute, .. } => {
                format!("per client at most {per_minute} jobs a minute; retry in {s} s")
            }
        }
    }
}

/// The clients' records.
#[derive(Debug)]
struct Clients {
    map: HashMap<ClientId, Record>,
    sweep_at: usize,
}

/// Per-client admission state, shared by all requests.
#[derive(Debug)]
pub struct Admission {
    limits: ClientLimits,
    rules: Rules,
    trust_forwarded_for: bool,
    clients: Mutex<Clients>,
}

impl Admission {
    /// Admission with `limits`; `trust_forwarded_for` when a proxy we
    /// configured stands in front (`--public-url`).
    pub fn new(limits: ClientLimits, trust_forwarded_for: bool) -> Self {
        Self {
            rules: Rules::of(&limits),
            limits,
            trust_forwarded_for,
            clients: Mutex::new(Clients {
                map: HashMap::new(),
                sweep_at: FIRST_SWEEP,
            }),
        }
    }

    /// Whether `X-Forwarded-For` names the client.
    pub fn trusts_forwarded_for(&self) -> bool {
        self.trust_forwarded_for
    }

    /// Clients remembered now.
    pub fn clients(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Clients> {
        // The table holds counters only; one left half-updated by a panic
        // is still a usable table.
        self.clients.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admits a request of `cost` by `client` at `now`, or says which limit
    /// it is over. The permit holds a place among the client's requests in
    /// progress until it is dropped.
    pub fn admit(
        self: &Arc<Self>,
        client: ClientId,
        cost: Cost,
        now: Instant,
    ) -> Result<Permit, Refusal> {
        let rules = self.rules;
        let mut clients = self.lock();
        let mut id = client;
        if !clients.map.contains_key(&id) {
            if clients.map.len() >= clients.sweep_at {
                clients.map.retain(|_, r| !rules.is_idle(r, now));
                clients.sweep_at = (clients.map.len() * 2).max(FIRST_SWEEP);
            }
            if clients.map.len() >= MAX_CLIENTS {
                id = ClientId::Overflow;
            }
        }
        let r = clients.map.entry(id).or_insert_with(|| rules.fresh(now));
        rules.refill(r, now);
        if let Some(limit) = rules.concurrency
            && r.in_flight >= limit
        {
            return Err(Refusal::Concurrency { limit });
        }
        if let Some((per_s, _)) = rules.requests
            && r.requests.tokens < 1.0
        {
            return Err(Refusal::Rate {
                per_s,
                burst: self.limits.burst,
                wait: r.requests.wait(per_s),
            });
        }
        if cost == Cost::Job
            && let Some((per_s, _)) = rules.jobs
            && r.jobs.tokens < 1.0
        {
            return Err(Refusal::Jobs {
                per_minute: self.limits.jobs_per_minute,
                wait: r.jobs.wait(per_s),
            });
        }
        if rules.requests.is_some() {
            r.requests.tokens -= 1.0;
        }
        if cost == Cost::Job && rules.jobs.is_some() {
            r.jobs.tokens -= 1.0;
        }
        r.in_flight += 1;
        Ok(Permit {
            admission: Arc::clone(self),
            client: id,
        })
    }
}

/// A place among a client's requests in progress, given back on drop.
#[derive(Debug)]
pub struct Permit {
    admission: Arc<Admission>,
    client: ClientId,
}

impl Drop for Permit {
    fn drop(&mut self) {
        // The record is still there: a sweep keeps clients with requests in
        // progress.
        if let Some(r) = self.admission.lock().map.get_mut(&self.client) {
            r.in_flight = r.in_flight.saturating_sub(1);
        }
    }
}

/// The middleware: admits expensive requests within the client's limits
/// and refuses the rest with 429.
pub async fn admit(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let uri = req.uri();
    let cost = cost(req.method(), uri.path(), uri.query());
    if cost == Cost::Cheap {
        return next.run(req).await;
    }
    let admission = &st.services.admission;
    let client = client_of(&req, admission.trusts_forwarded_for());
    match admission.admit(client, cost, Instant::now()) {
        Ok(permit) => next
            .run(req)
            .await
            // The permit is held until the answer's last byte is sent.
            .map(|body| super::held_body::HeldBody::wrap(body, permit)),
        Err(refusal) => {
            tracing::info!(%client, path = uri.path(), limit = %refusal.message(), "refused");
            let page = answers_html(uri.path(), uri.query());
            let mut r =
                super::error::edge_refusal(StatusCode::TOO_MANY_REQUESTS, refusal.message(), page);
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(refusal.retry_after_s()),
            );
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: usize, rate: f64, burst: u32, jobs: u32) -> ClientLimits {
        ClientLimits {
            concurrency,
            rate_per_s: rate,
            burst,
            jobs_per_minute: jobs,
            ..ClientLimits::default()
        }
    }

    fn ip(s: &str) -> ClientId {
        ClientId::of(s.parse().unwrap())
    }

    #[test]
    fn routes_are_classed_by_cost() {
        let get = Method::GET;
        let post = Method::POST;
        for (m, path, q, want) in [
            (&get, "/", None, Cost::Cheap),
            (&get, "/help", None, Cost::Cheap),
            (&get, "/health", None, Cost::Cheap),
            (&get, "/static/style.css", None, Cost::Cheap),
            (&get, "/object/12", None, Cost::Cheap),
            (&get, "/table/SourceList/3", None, Cost::Cheap),
            (
                &get,
                "/table/SourceList/3",
                Some("format=html"),
                Cost::Cheap,
            ),
            (
                &get,
                "/table/SourceList/3",
                Some("Format=VOTable"),
                Cost::Expensive,
            ),
            (
                &get,
                "/table/Frames",
                Some("format=csv&q=x"),
                Cost::Expensive,
            ),
            (&get, "/api/cutout", Some("frame=1"), Cost::Expensive),
            (&get, "/render/3", None, Cost::Expensive),
            (&get, "/thumb/3", None, Cost::Expensive),
            (&get, "/data/3", None, Cost::Expensive),
            (&post, "/vo/soda/sync", None, Cost::Expensive),
            (&get, "/prov", Some("ID=x"), Cost::Expensive),
            (&get, "/vo/moc", None, Cost::Expensive),
            (&get, "/vo/capabilities", None, Cost::Cheap),
            (&get, "/jobs/abc/zip", None, Cost::Expensive),
            (&get, "/jobs/abc/files/zip", None, Cost::Cheap),
            (&get, "/deps", None, Cost::Cheap),
            (&get, "/deps", Some("slid=3"), Cost::Cheap),
            (&get, "/deps", Some("slid=3&IDS=1:3"), Cost::Cheap),
            (&post, "/deps", Some("slid=3&IDS=1:3"), Cost::Job),
            (&post, "/api/deps", None, Cost::Job),
            (&get, "/api/deps", Some("slid=3&ids=1:3"), Cost::Cheap),
            (&get, "/rgb", None, Cost::Cheap),
            (&get, "/rgb", Some("red=1&green=2&blue=3"), Cost::Cheap),
            (&post, "/rgb", None, Cost::Job),
            (&get, "/rgb/gallery", None, Cost::Cheap),
            (&post, "/api/rgb", Some("target=x"), Cost::Job),
            (&get, "/batch", None, Cost::Cheap),
            (&post, "/batch", None, Cost::Job),
            (&post, "/api/batch", None, Cost::Job),
        ] {
            assert_eq!(cost(m, path, q), want, "{m} {path}?{q:?}");
        }
    }

    #[test]
    fn pages_and_script_endpoints_are_told_apart() {
        assert!(answers_html("/deps", Some("ids=1")));
        assert!(answers_html("/rgb", None));
        assert!(answers_html("/batch", None));
        assert!(answers_html("/table/SourceList/3", None));
        assert!(!answers_html("/table/SourceList/3", Some("format=json")));
        assert!(!answers_html("/api/deps", None));
        assert!(!answers_html("/vo/soda/sync", None));
        assert!(!answers_html("/jobs/x/zip", None));
        assert!(!answers_html("/thumb/1", None));
    }

    #[test]
    fn ipv6_clients_are_their_64_prefix_and_mapped_ipv4_is_ipv4() {
        assert_eq!(ip("2001:db8:1:2:aaaa::1"), ip("2001:db8:1:2:ffff::9"));
        assert_ne!(ip("2001:db8:1:2::1"), ip("2001:db8:1:3::1"));
        assert_eq!(ip("::ffff:10.0.0.1"), ip("10.0.0.1"));
    }

    #[test]
    fn concurrency_is_given_back_when_permits_drop() {
        let a = Arc::new(Admission::new(limits(2, 0.0, 0, 0), false));
        let t = Instant::now();
        let c = ip("10.0.0.1");
        let p1 = a.admit(c, Cost::Expensive, t).unwrap();
        let _p2 = a.admit(c, Cost::Expensive, t).unwrap();
        let refused = a.admit(c, Cost::Expensive, t).unwrap_err();
        assert_eq!(refused, Refusal::Concurrency { limit: 2 });
        assert_eq!(refused.retry_after_s(), 1);
        assert_eq!(
            refused.message(),
            "per client at most 2 expensive requests at once; retry in 1 s"
        );
        // Another client is not affected.
        assert!(a.admit(ip("10.0.0.2"), Cost::Expensive, t).is_ok());
        drop(p1);
        assert!(a.admit(c, Cost::Expensive, t).is_ok());
    }

    #[test]
    fn the_rate_bucket_refills_and_says_how_long_to_wait() {
        let a = Arc::new(Admission::new(limits(0, 2.0, 3, 0), false));
        let t = Instant::now();
        let c = ip("10.0.0.1");
        for _ in 0..3 {
            drop(a.admit(c, Cost::Expensive, t).unwrap());
        }
        let Err(Refusal::Rate { wait, .. }) = a.admit(c, Cost::Expensive, t) else {
            panic!("the fourth request of a burst of 3 is refused");
        };
        assert_eq!(wait, Duration::from_millis(500));
        // Half a second later one token is back, and only one.
        let later = t + Duration::from_millis(500);
        drop(a.admit(c, Cost::Expensive, later).unwrap());
        let refused = a.admit(c, Cost::Expensive, later).unwrap_err();
        assert_eq!(refused.retry_after_s(), 1);
        assert_eq!(
            refused.message(),
            "per client at most 2 expensive requests a second (bursts of 3); retry in 1 s"
        );
    }

    #[test]
    fn jobs_have_their_own_budget_per_minute() {
        let a = Arc::new(Admission::new(limits(0, 0.0, 0, 2), false));
        let t = Instant::now();
        let c = ip("10.0.0.1");
        drop(a.admit(c, Cost::Job, t).unwrap());
        drop(a.admit(c, Cost::Job, t).unwrap());
        let refused = a.admit(c, Cost::Job, t).unwrap_err();
        assert_eq!(refused.retry_after_s(), 30);
        assert_eq!(
            refused.message(),
            "per client at most 2 jobs a minute; retry in 30 s"
        );
        // Other expensive work is still allowed.
        assert!(a.admit(c, Cost::Expensive, t).is_ok());
    }

    #[test]
    fn idle_clients_are_forgotten_and_the_table_is_bounded() {
        let a = Arc::new(Admission::new(limits(4, 10.0, 10, 0), false));
        let t = Instant::now();
        let addr =
            |i: usize| ClientId::of(IpAddr::from([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]));
        for i in 0..5000 {
            drop(a.admit(addr(i), Cost::Expensive, t).unwrap());
        }
        // Nobody has refilled yet: nothing can be forgotten.
        assert_eq!(a.clients(), 5000);
        // A second later every bucket is full again; the next sweep drops
        // them all but the one kept busy.
        let busy = a.admit(addr(1), Cost::Expensive, t).unwrap();
        let later = t + Duration::from_secs(2);
        for i in 10_000..20_000 {
            drop(a.admit(addr(i), Cost::Expensive, later).unwrap());
        }
        assert!(a.clients() < 12_000, "{} clients remembered", a.clients());
        assert!(a.lock().map.contains_key(&addr(1)));
        assert!(!a.lock().map.contains_key(&addr(0)));
        drop(busy);
        assert_eq!(a.lock().map[&addr(1)].in_flight, 0);
    }

    #[test]
    fn past_the_bound_new_clients_share_one_record() {
        let a = Arc::new(Admission::new(limits(1, 0.0, 0, 0), false));
        let t = Instant::now();
        let mut held = Vec::new();
        for i in 0..MAX_CLIENTS {
            let c = ClientId::of(IpAddr::from((0x0a00_0000u32 + i as u32).to_be_bytes()));
            held.push(a.admit(c, Cost::Expensive, t).unwrap());
        }
        let newcomer = ip("192.168.0.1");
        let p = a.admit(newcomer, Cost::Expensive, t).unwrap();
        assert_eq!(a.clients(), MAX_CLIENTS + 1);
        // The next newcomer shares the overflow record, and its limit.
        assert!(a.admit(ip("192.168.0.2"), Cost::Expensive, t).is_err());
        drop(p);
        assert!(a.admit(ip("192.168.0.2"), Cost::Expensive, t).is_ok());
    }
}
