//! HTTP load generator for the cutout benchmark (`benches/cutout_bench.py`
//! drives it; it can also be run by hand).
//!
//! ```text
//! cargo bench --bench cutout_http -- --addr 127.0.0.1:8080 --urls urls.txt \
//!     --concurrency 8 --seconds 10
//! ```
//!
//! Each of `--concurrency` threads keeps one HTTP/1.1 connection alive and
//! sends GET requests for the paths in `--urls` (one per line, taken in turn
//! across threads) until `--seconds` have passed. It records the latency seen
//! by the client and the server's own work from its `Server-Timing` header
//! (`work;dur=`, wall time without queueing for a core, and `cpu;dur=`, the
//! CPU time of that work),
//! and prints one JSON object: requests, errors, throughput, latency and
//! server-time percentiles, bytes received. Plain threads and blocking
//! sockets keep the generator cheap, so that on a small machine most of the
//! CPU is left to the server under test.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Args {
    addr: String,
    urls: Vec<String>,
    concurrency: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut addr = None;
    let mut urls_file = None;
    let mut concurrency = 8;
    let mut seconds = 10.0;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--addr" => addr = Some(value("--addr")?),
            "--urls" => urls_file = Some(value("--urls")?),
            "--concurrency" => {
                concurrency = value("--concurrency")?
                    .parse()
                    .map_err(|e| format!("--concurrency: {e}"))?
            }
            "--seconds" => {
                seconds = value("--seconds")?
                    .parse()
                    .map_err(|e| format!("--seconds: {e}"))?
            }
            // `cargo bench` passes `--bench` to every bench binary.
            "--bench" => {}
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let urls_file = urls_file.ok_or("--urls FILE is required")?;
    let urls: Vec<String> = std::fs::read_to_string(&urls_file)
        .map_err(|e| format!("{urls_file}: {e}"))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if urls.is_empty() {
        return Err(format!("{urls_file}: no URLs"));
    }
    Ok(Args {
        addr: addr.ok_or("--addr HOST:PORT is required")?,
        urls,
        concurrency: concurrency.max(1),
        seconds,
    })
}

#[derive(Default)]
struct Stats {
    latency_us: Vec<u64>,
    server_us: Vec<u64>,
    cpu_us: Vec<u64>,
    errors: usize,
    bytes: u64,
    first_error: Option<String>,
}

/// Server work and CPU time in µs, as the server reported them.
type Timing = (Option<u64>, Option<u64>);

/// Sends one request and reads the whole response; returns (status, server
/// timing, body length).
fn exchange(
    stream: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    addr: &str,
    path: &str,
) -> std::io::Result<(u16, Timing, usize)> {
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n")?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut length = 0usize;
    let mut server = (None, None);
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let value = value.trim();
        if name == "content-length" {
            length = value.parse().unwrap_or(0);
        } else if name == "server-timing" {
            // `cpu;dur=C, work;dur=W, total;dur=T`: the server's own work.
            let metric = |name: &str| {
                value
                    .split(',')
                    .find(|m| m.trim().starts_with(name))
                    .and_then(|m| m.split(';').find_map(|p| p.trim().strip_prefix("dur=")))
                    .and_then(|d| d.parse::<f64>().ok())
                    .map(|ms| (ms * 1000.0) as u64)
            };
            server = (metric("work;"), metric("cpu;"));
        }
    }
    let mut remaining = length;
    let mut buf = [0u8; 64 * 1024];
    while remaining > 0 {
        let want = remaining.min(buf.len());
        let n = reader.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::other("connection closed mid-body"));
        }
        remaining -= n;
    }
    Ok((status, server, length))
}

fn worker(args: Arc<Args>, next: Arc<AtomicUsize>, stop: Arc<AtomicBool>) -> Stats {
    let mut stats = Stats::default();
    let connect = || -> std::io::Result<(TcpStream, BufReader<TcpStream>)> {
        let s = TcpStream::connect(&args.addr)?;
        s.set_nodelay(true)?;
        let r = BufReader::with_capacity(256 * 1024, s.try_clone()?);
        Ok((s, r))
    };
    let Ok((mut stream, mut reader)) = connect() else {
        stats.errors += 1;
        stats.first_error = Some(format!("cannot connect to {}", args.addr));
        return stats;
    };
    while !stop.load(Ordering::Relaxed) {
        let i = next.fetch_add(1, Ordering::Relaxed) % args.urls.len();
        let started = Instant::now();
        match exchange(&mut stream, &mut reader, &args.addr, &args.urls[i]) {
            Ok((200, (work, cpu), len)) => {
                stats.latency_us.push(started.elapsed().as_micros() as u64);
                stats.server_us.extend(work);
                stats.cpu_us.extend(cpu);
                stats.bytes += len as u64;
            }
            Ok((status, _, _)) => {
                stats.errors += 1;
                stats
                    .first_error
                    .get_or_insert_with(|| format!("HTTP {status} for {}", args.urls[i]));
            }
            Err(e) => {
                stats.errors += 1;
                stats.first_error.get_or_insert_with(|| e.to_string());
                match connect() {
                    Ok((s, r)) => (stream, reader) = (s, r),
                    Err(_) => break,
                }
            }
        }
    }
    stats
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    let args = match parse_args() {
        Ok(a) => Arc::new(a),
        Err(e) => {
            eprintln!("cutout_http: {e}");
            std::process::exit(2);
        }
    };
    let next = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles: Vec<_> = (0..args.concurrency)
        .map(|_| {
            let (a, n, s) = (Arc::clone(&args), Arc::clone(&next), Arc::clone(&stop));
            std::thread::spawn(move || worker(a, n, s))
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all = Stats::default();
    for h in handles {
        let s = h.join().expect("worker thread");
        all.latency_us.extend(s.latency_us);
        all.server_us.extend(s.server_us);
        all.cpu_us.extend(s.cpu_us);
        all.errors += s.errors;
        all.bytes += s.bytes;
        if all.first_error.is_none() {
            all.first_error = s.first_error;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.latency_us.sort_unstable();
    all.server_us.sort_unstable();
    all.cpu_us.sort_unstable();
    let ok = all.latency_us.len();
    let out = serde_json::json!({
        "requests": ok,
        "errors": all.errors,
        "first_error": all.first_error,
        "seconds": elapsed,
        "throughput_per_s": ok as f64 / elapsed,
        "mb_per_s": all.bytes as f64 / elapsed / 1e6,
        "latency_ms": {
            "p50": percentile(&all.latency_us, 0.5),
            "p90": percentile(&all.latency_us, 0.9),
            "p99": percentile(&all.latency_us, 0.99),
        },
        "server_ms": {
            "p50": percentile(&all.server_us, 0.5),
            "p90": percentile(&all.server_us, 0.9),
            "p99": percentile(&all.server_us, 0.99),
        },
        "server_cpu_ms": {
            "p50": percentile(&all.cpu_us, 0.5),
            "p90": percentile(&all.cpu_us, 0.9),
            "p99": percentile(&all.cpu_us, 0.99),
        },
    });
    println!("{out}");
}
