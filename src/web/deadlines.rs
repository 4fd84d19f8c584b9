//! Time limits of a request once its headers are in: the body must arrive
//! within [`ClientLimits::body_timeout`] and the answer must start within
//! [`ClientLimits::request_timeout`]. (The headers themselves are timed by
//! the accept loop, `web::server`.)
//!
//! Without them a client that sends half a body, or a byte a second, holds
//! a connection, a task and a share of the client's admission forever.
//! The body limit is a deadline for the whole body, not a pause between
//! two pieces of it (as `tower_http`'s `RequestBodyTimeoutLayer` is): a
//! byte every few seconds never pauses long, and would never be cut.
//!
//! A body cut short is answered `408 Request Timeout` (and the connection
//! closed, since the rest of the body is still on its way); a request not
//! answered in time `503 Service Unavailable`. Work already handed to a
//! blocking thread finishes there, but nobody waits for it. A limit of 0
//! turns that limit off.
//!
//! [`ClientLimits::body_timeout`]: crate::config::ClientLimits::body_timeout
//! [`ClientLimits::request_timeout`]: crate::config::ClientLimits::request_timeout

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;

use super::AppState;
use super::admission::answers_html;

/// The error a request body gives when its deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the request body was not received within the {0} s allowed")]
pub struct BodyTimedOut(u64);

/// A request body that fails once its deadline has passed, and says so in
/// `expired`.
struct DeadlineBody {
    body: Body,
    deadline: Pin<Box<tokio::time::Sleep>>,
    seconds: u64,
    expired: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::BoxError>>> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(BodyTimedOut(self.seconds).into())));
        }
        Pin::new(&mut self.body)
            .poll_frame(cx)
            .map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

/// The middleware: a deadline on the body, a timeout on the answer.
pub async fn time_limits(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &st.config.limits;
    let page = answers_html(req.uri().path(), req.uri().query());
    let expired = Arc::new(AtomicBool::new(false));
    // A request without a body (nearly every GET) has nothing to time.
    let req = if limits.body_timeout.is_zero() || req.body().is_end_stream() {
        req
    } else {
        let (deadline, seconds, expired) = (
            Box::pin(tokio::time::sleep(limits.body_timeout)),
            seconds(limits.body_timeout),
            Arc::clone(&expired),
        );
        req.map(|body| {
            Body::new(DeadlineBody {
                body,
                deadline,
                seconds,
                expired,
            })
        })
    };
    let response = if limits.request_timeout.is_zero() {
        next.run(req).await
    } else {
        match tokio::time::timeout(limits.request_timeout, next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                return timed_out(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the request was not answered within the {} s allowed; ask for less (a smaller cutout, fewer rows) or submit a job",
                        seconds(limits.request_timeout)
                    ),
                    page,
                );
            }
        }
    };
    if expired.load(Ordering::Relaxed) {
        // Whatever the handler made of a broken body, the cause is this.
        let mut r = timed_out(
            StatusCode::REQUEST_TIMEOUT,
            BodyTimedOut(seconds(limits.body_timeout)).to_string(),
            page,
        );
        r.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return r;
    }
    response
}

fn seconds(d: Duration) -> u64 {
    d.as_secs_f64().ceil() as u64
}

fn timed_out(status: StatusCode, message: String, page: bool) -> Response {
    tracing::info!(%status, message, "timed out");
    super::error::edge_refusal(status, message, page)
}
