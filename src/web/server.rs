//! The accept loop: HTTP/1.1 connections served by hyper with a header read
//! timeout, each request carrying its peer's address, and a graceful
//! shutdown.
//!
//! `axum::serve` would do all of this but time the headers: a client that
//! opens connections and sends half a request line each, slowly, would
//! hold them (and their tasks and buffers) for ever. Here hyper closes a
//! connection whose request headers have not all arrived within
//! [`ClientLimits::header_timeout`] — which also ends idle keep-alive
//! connections after that time. The body and the answer are timed by
//! `web::deadlines`.
//!
//! The router is made into a service with
//! `into_make_service_with_connect_info::<SocketAddr>()`, so that
//! `ConnectInfo<SocketAddr>` names the client to `web::admission`.
//!
//! [`ClientLimits::header_timeout`]: crate::config::ClientLimits::header_timeout

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Service, ServiceExt};

use super::{AppState, app};

/// Serves the application of `state` on `listener` until `shutdown`
/// completes, then waits for the requests in progress to finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let header_timeout = state.config.limits.header_timeout;
    let mut make_service = app(state).into_make_service_with_connect_info::<SocketAddr>();
    // Dropped to tell the connections to finish; its receivers, one per
    // connection, dropped when each has.
    let (stop_tx, stop_rx) = watch::channel(());
    let (done_tx, done_rx) = watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // The make-service cannot fail (its error type is `Infallible`).
        let Ok(service) = make_service.call(peer).await;
        let service = TowerToHyperService::new(
            service.map_request(|req: Request<Incoming>| req.map(Body::new)),
        );
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder.timer(TokioTimer::new());
            // hyper has a timer now, and times the headers by default (30 s):
            // 0 turns the limit off, as it says.
            builder.header_read_timeout((!header_timeout.is_zero()).then_some(header_timeout));
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => log_end(peer, r),
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    log_end(peer, conn.await);
                }
            }
            drop(done);
        });
    }
    drop(listener);
    drop(stop_tx);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

fn log_end(peer: SocketAddr, result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        // Timeouts and clients going away are routine, not server faults.
        tracing::debug!(%peer, error = %e, "connection ended");
    }
}

/// Accepting fails for one connection (it was reset before we took it) or
/// for all (out of file descriptors): then wait a moment rather than spin.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::*;
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accepting a connection failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
