//! A response body that keeps something alive until the body has been sent
//! (or the client went away): a memory grant, so that a slow reader's bytes
//! count against the budget like any other; an admission permit, so that a
//! streamed export is "in progress" until its last byte.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};

/// `body`, holding `T` until it is dropped.
pub struct HeldBody<T> {
    body: Body,
    _held: T,
}

impl<T: Send + Unpin + 'static> HeldBody<T> {
    /// `body` holding `held`, as an axum body.
    pub fn wrap(body: Body, held: T) -> Body {
        Body::new(Self { body, _held: held })
    }
}

impl<T: Unpin> http_body::Body for HeldBody<T> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}
