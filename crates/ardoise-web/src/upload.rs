//! Forms that carry files (`multipart/form-data`), streamed straight into
//! the blob store: a file is never held whole in memory, and each one is
//! durable (written, fsynced, renamed) before the handler sees it. The
//! handler then commits the rows that name the blobs; if it refuses the
//! form instead, the blobs are orphans that no one can reach and the
//! sweeper removes them.
//!
//! The same extractor also accepts `application/x-www-form-urlencoded`
//! (a form without files), so one handler serves both.

use crate::error::ApiError;
use crate::state::AppState;
use ardoise_files::{FilesError, StoredBlob};
use ardoise_store::AttachmentInsert;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use futures_util::TryStreamExt;
use std::collections::HashMap;

/// Largest text field accepted in a multipart form, in bytes.
const MAX_TEXT_FIELD: usize = 64 * 1024;
/// Most text fields accepted in one form.
const MAX_TEXT_FIELDS: usize = 200;

/// One uploaded file, already durable in the blob store.
#[derive(Debug, Clone)]
pub struct Upload {
    /// The form field it came in.
    pub field: String,
    /// The cleaned file name.
    pub file_name: String,
    /// What the store kept.
    pub blob: StoredBlob,
}

impl Upload {
    /// The row that names this file.
    pub fn attachment(&self) -> AttachmentInsert {
        AttachmentInsert {
            blob_hash: self.blob.hash.as_str().to_string(),
            file_name: self.file_name.clone(),
            mime: self.blob.detected.mime.clone(),
            size: i64::try_from(self.blob.size).unwrap_or(i64::MAX),
        }
    }
}

/// A submitted form: its text fields and its files.
#[derive(Debug, Default)]
pub struct Uploaded {
    /// Text fields (the last value wins for repeated names).
    pub fields: HashMap<String, String>,
    /// Files, in the order sent.
    pub files: Vec<Upload>,
}

impl Uploaded {
    /// A text field, or empty.
    pub fn get(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    /// Whether a checkbox was ticked.
    pub fn checked(&self, name: &str) -> bool {
        matches!(
            self.fields.get(name).map(String::as_str),
            Some("1" | "on" | "true" | "yes")
        )
    }

    /// The rows naming the files sent in `field`.
    pub fn attachments(&self, field: &str) -> Vec<AttachmentInsert> {
        self.files
            .iter()
            .filter(|u| u.field == field)
            .map(Upload::attachment)
            .collect()
    }
}

/// Maps a blob store error on upload to what the client is told.
pub fn files_error(e: FilesError) -> ApiError {
    match e {
        FilesError::Empty => ApiError::Invalid("file_empty"),
        FilesError::TooLarge { .. } => ApiError::FileTooLarge,
        FilesError::BadName(_) => ApiError::Invalid("file_name_invalid"),
        FilesError::NotFound => ApiError::NotFound,
        FilesError::RangeNotSatisfiable => ApiError::RangeNotSatisfiable,
        FilesError::WritesStopped => ApiError::Unavailable,
        other => ApiError::Internal(format!("file store: {other}")),
    }
}

impl FromRequest<AppState> for Uploaded {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_form(req, state, state.config.max_upload_bytes).await
    }
}

/// Reads a form, storing each file (at most `max_size` bytes) in the blob
/// store, and scanning it when a scanner is configured.
pub async fn read_form(
    req: Request,
    state: &AppState,
    max_size: u64,
) -> Result<Uploaded, ApiError> {
    {
        let is_multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("multipart/form-data"));
        if !is_multipart {
            let crate::extract::FormIn(fields) =
                crate::extract::FormIn::<HashMap<String, String>>::from_request(req, state).await?;
            return Ok(Uploaded {
                fields,
                files: Vec::new(),
            });
        }
        let mut multipart = Multipart::from_request(req, state)
            .await
            .map_err(|_| ApiError::BadRequest("invalid_form"))?;
        let max_files = state.config.max_files_per_form;
        let mut out = Uploaded::default();
        while let Some(field) = multipart
            .next_field()
            .await
            .map_err(|_| ApiError::BadRequest("invalid_form"))?
        {
            let name = field.name().unwrap_or_default().to_string();
            match field.file_name().map(str::to_string) {
                Some(file_name) => {
                    // A file input left empty still sends a part with an
                    // empty name and no bytes: nothing was chosen.
                    if file_name.is_empty() {
                        continue;
                    }
                    if out.files.len() >= max_files {
                        return Err(ApiError::Invalid("too_many_files"));
                    }
                    let file_name =
                        ardoise_files::validate_file_name(&file_name).map_err(files_error)?;
                    let body = field.map_err(std::io::Error::other);
                    let blob = state
                        .files
                        .put(Box::pin(body), max_size)
                        .await
                        .map_err(files_error)?;
                    scan(state, &blob).await?;
                    out.files.push(Upload {
                        field: name,
                        file_name,
                        blob,
                    });
                }
                None => {
                    if out.fields.len() >= MAX_TEXT_FIELDS {
                        return Err(ApiError::BadRequest("invalid_form"));
                    }
                    let mut value = Vec::new();
                    let mut field = field;
                    while let Some(chunk) = field
                        .chunk()
                        .await
                        .map_err(|_| ApiError::BadRequest("invalid_form"))?
                    {
                        if value.len() + chunk.len() > MAX_TEXT_FIELD {
                            return Err(ApiError::TooLarge);
                        }
                        value.extend_from_slice(&chunk);
                    }
                    let value = String::from_utf8(value)
                        .map_err(|_| ApiError::BadRequest("invalid_form"))?;
                    out.fields.insert(name, value);
                }
            }
        }
        Ok(out)
    }
}

/// Refuses a stored file that the configured scanner finds infected (or
/// cannot scan). The blob stays unreferenced; the sweeper removes it.
pub(crate) async fn scan(state: &AppState, blob: &StoredBlob) -> Result<(), ApiError> {
    let Some(address) = &state.config.clamd else {
        return Ok(());
    };
    match crate::clamd::scan(address, &state.files, &blob.hash).await {
        Ok(crate::clamd::Verdict::Clean) => Ok(()),
        Ok(crate::clamd::Verdict::Infected(name)) => {
            tracing::warn!(hash = blob.hash.as_str(), signature = %name, "infected upload refused");
            Err(ApiError::Invalid("file_infected"))
        }
        Err(e) => {
            tracing::error!(error = %e, "virus scan failed; upload refused");
            Err(ApiError::Unavailable)
        }
    }
}
