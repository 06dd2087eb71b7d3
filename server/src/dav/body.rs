//! Request bodies: XML bodies are read whole but capped; content bodies are streamed.

use axum::body::Body;
use axum::http::HeaderMap;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use wharf_backends::ByteStream;

use super::DavError;

/// Reads an XML request body, refusing more than `limit` bytes (413) before buffering it.
pub async fn read_xml(body: Body, limit: usize) -> Result<Bytes, DavError> {
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| DavError::BadRequest(format!("reading body: {e}")))?;
        if buf.len() + chunk.len() > limit {
            return Err(DavError::PayloadTooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// The body as a stream for the blob store; a broken connection becomes an I/O error,
/// which makes the store discard what it staged.
pub fn content_stream(body: Body) -> ByteStream {
    Box::pin(body.into_data_stream().map_err(std::io::Error::other))
}

/// True when the request announces a body (for MKCOL, which must not have one).
pub fn has_body(headers: &HeaderMap) -> bool {
    let len = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    len.is_some_and(|n| n > 0) || headers.contains_key(axum::http::header::TRANSFER_ENCODING)
}
