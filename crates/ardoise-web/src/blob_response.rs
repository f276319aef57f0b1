//! Serving a blob to someone the caller has already authorized: the one
//! place that writes download headers, for attachments and documents.
//!
//! Blobs are immutable, so the ETag is the content hash, `If-None-Match`
//! gets a `304`, and `Range` resumes a broken download. Only inline-safe
//! types (PDF, images other than SVG, plain text) are shown in the
//! browser; everything else, HTML and SVG first, is an attachment sent as
//! `application/octet-stream`. Every answer carries `nosniff` (set by the
//! security-headers layer) and a CSP that forbids scripts and sandboxes
//! the document. This module decides nothing about who may read.

use crate::error::ApiError;
use crate::state::AppState;
use crate::upload::files_error;
use ardoise_files::{parse_range_header, BlobHash};
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// What to serve.
#[derive(Debug, Clone, Copy)]
pub struct BlobMeta<'a> {
    /// SHA-256 of the content.
    pub hash: &'a str,
    /// Bytes.
    pub size: i64,
    /// Type detected from the content at upload.
    pub mime: &'a str,
    /// The name to save it under.
    pub file_name: &'a str,
}

/// `Cache-Control` of a URL whose content never changes but that only this
/// person may see: a day.
pub const CACHE_PRIVATE_DAY: &str = "private, max-age=86400, immutable";
/// `Cache-Control` of a content URL (the hash is in the URL): a year.
pub const CACHE_PRIVATE_IMMUTABLE: &str = "private, max-age=31536000, immutable";

/// `Content-Disposition` with the file's name, ASCII fallback and UTF-8.
pub fn disposition(kind: &str, name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._- ()".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.as_bytes() {
        if b.is_ascii_alphanumeric() || b"._-".contains(b) {
            encoded.push(char::from(*b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// Answers a `GET` for a blob the caller may read.
pub async fn serve(
    state: &AppState,
    headers: &HeaderMap,
    meta: BlobMeta<'_>,
    cache_control: &'static str,
) -> Result<Response, ApiError> {
    let etag = format!("\"{}\"", meta.hash);
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut resp = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let hash = BlobHash::parse(meta.hash).map_err(files_error)?;
        let size = u64::try_from(meta.size).unwrap_or(0);
        let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
            Some(v) => parse_range_header(v, size).map_err(|_| ApiError::RangeNotSatisfiable)?,
            None => None,
        };
        let body = state
            .files
            .get(&hash, range.clone())
            .await
            .map_err(files_error)?;
        let mut resp = Response::new(Body::from_stream(body.stream));
        let len = body.range.end - body.range.start;
        if range.is_some() {
            *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
            if let Ok(v) = HeaderValue::from_str(&format!(
                "bytes {}-{}/{}",
                body.range.start,
                body.range.end.saturating_sub(1),
                body.total_size
            )) {
                resp.headers_mut().insert(header::CONTENT_RANGE, v);
            }
        }
        resp.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
        let inline = ardoise_files::is_inline_safe(meta.mime);
        let mime = if inline {
            meta.mime
        } else {
            "application/octet-stream"
        };
        if let Ok(v) = HeaderValue::from_str(mime) {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        if let Ok(v) = HeaderValue::from_str(&disposition(
            if inline { "inline" } else { "attachment" },
            meta.file_name,
        )) {
            resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
        resp
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    Ok(resp)
}
