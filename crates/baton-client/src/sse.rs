//! Reading the coordinator's server-sent events as Baton events.

use baton_core::event::Event;
use bytes::{Buf, BytesMut};
use futures_util::StreamExt;

use crate::ClientError;

/// The live stream of events from `/api/stream`.
pub struct EventStream {
    /// The response body.
    body: futures_util::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    /// Bytes received and not yet parsed.
    buf: BytesMut,
}

impl EventStream {
    pub(crate) fn new(response: reqwest::Response) -> Self {
        Self { body: response.bytes_stream().boxed(), buf: BytesMut::new() }
    }

    /// The next event, or `None` when the coordinator closed the stream.
    pub async fn next(&mut self) -> Result<Option<Event>, ClientError> {
        loop {
            while let Some(end) = find_blank_line(&self.buf) {
                let block = self.buf.split_to(end.0);
                self.buf.advance(end.1);
                let text = String::from_utf8_lossy(&block);
                let data: Vec<&str> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(|d| d.strip_prefix(' ').unwrap_or(d))
                    .collect();
                if data.is_empty() {
                    continue;
                }
                let json = data.join("\n");
                let event = serde_json::from_str(&json)
                    .map_err(|e| ClientError::Decode { status: 200, source: Box::new(e) })?;
                return Ok(Some(event));
            }
            match self.body.next().await {
                Some(Ok(chunk)) => self.buf.extend_from_slice(&chunk),
                Some(Err(e)) => return Err(ClientError::Http(e)),
                None => return Ok(None),
            }
        }
    }
}

/// Where the first event block ends: its length and the separator's length.
fn find_blank_line(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}
