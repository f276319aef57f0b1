//! Uploads in pieces (the tus 1.0 protocol's core and creation
//! extensions), for large documents on a weak connection: the client
//! declares the length, sends the bytes in as many `PATCH` requests as its
//! connection allows, asks with `HEAD` how much arrived after a break, and
//! goes on from there. Only when the last byte is in does the file go to
//! the blob store and become a document (routes in `routes::documents`).
//!
//! The bytes received so far wait on this node's disk, one `.part` file
//! and one small `.json` description per upload, named by a random token;
//! the offset is the `.part` file's length, made durable (fsync) before a
//! `PATCH` is answered. Memory per upload: none between requests, and a
//! lock while a `PATCH` writes. An upload left alone for a day is removed.

use crate::error::ApiError;
use futures_util::{Stream, StreamExt};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::io::AsyncWriteExt;

/// How long an unfinished upload is kept after its last byte, in seconds.
pub const KEEP_SECS: i64 = 86_400;

/// What an upload is for, written when it is created.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PartialMeta {
    /// Who may continue it: nobody else sees it exists.
    pub person_id: i64,
    /// The folder the document will go to.
    pub folder_id: i64,
    /// The file's name, already checked.
    pub name: String,
    /// The whole length declared at creation.
    pub length: u64,
    /// When it was created (unix seconds).
    pub created_at: i64,
}

/// The unfinished uploads of this node.
#[derive(Clone)]
pub struct Partials {
    dir: PathBuf,
    /// Tokens with a `PATCH` in progress: a second one at once is refused.
    busy: Arc<Mutex<HashSet<String>>>,
}

/// Holds an upload's lock while a `PATCH` writes or the upload finishes.
pub struct Busy {
    token: String,
    busy: Arc<Mutex<HashSet<String>>>,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut b) = self.busy.lock() {
            b.remove(&self.token);
        }
    }
}

fn io_error(e: io::Error) -> ApiError {
    ApiError::Internal(format!("partial upload: {e}"))
}

/// A token names 16 random bytes in hex; anything else is not one.
fn valid_token(token: &str) -> bool {
    token.len() == 32
        && token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl Partials {
    /// Uploads kept under `dir` (created on first use).
    pub fn new(dir: PathBuf) -> Self {
        Partials {
            dir,
            busy: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn part_path(&self, token: &str) -> PathBuf {
        self.dir.join(format!("{token}.part"))
    }

    fn meta_path(&self, token: &str) -> PathBuf {
        self.dir.join(format!("{token}.json"))
    }

    /// A new, empty upload; returns its token. The description is durable
    /// before the token is given out.
    pub async fn create(&self, meta: &PartialMeta) -> Result<String, ApiError> {
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(io_error)?;
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let token = hex::encode(raw);
        let json = serde_json::to_vec(meta).map_err(|e| ApiError::Internal(e.to_string()))?;
        write_durable(&self.meta_path(&token), &json).await?;
        let part = tokio::fs::File::create(self.part_path(&token))
            .await
            .map_err(io_error)?;
        part.sync_all().await.map_err(io_error)?;
        sync_dir(&self.dir).await;
        Ok(token)
    }

    /// The upload's description and offset, if it exists, belongs to
    /// `person` and has not expired (an expired one is removed).
    pub async fn find(
        &self,
        token: &str,
        person: i64,
        now: i64,
    ) -> Result<Option<(PartialMeta, u64)>, ApiError> {
        if !valid_token(token) {
            return Ok(None);
        }
        let raw = match tokio::fs::read(self.meta_path(token)).await {
            Ok(raw) => raw,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let Ok(meta) = serde_json::from_slice::<PartialMeta>(&raw) else {
            return Ok(None);
        };
        if meta.person_id != person {
            return Ok(None);
        }
        let part = match tokio::fs::metadata(self.part_path(token)).await {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(e)),
        };
        let last = part
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(meta.created_at)
            .max(meta.created_at);
        if now - last > KEEP_SECS {
            self.remove(token).await?;
            return Ok(None);
        }
        Ok(Some((meta, part.len())))
    }

    /// Takes the upload's lock, or `None` if a request already holds it.
    pub fn lock(&self, token: &str) -> Option<Busy> {
        if !self.busy.lock().ok()?.insert(token.to_string()) {
            return None;
        }
        Some(Busy {
            token: token.to_string(),
            busy: self.busy.clone(),
        })
    }

    /// Appends `body` at `offset` (the current length), never past
    /// `length`; keeps what arrived if the body breaks off, and returns the
    /// new offset once it is durable. More bytes than declared: refused,
    /// and what came before them is kept.
    pub async fn append<S>(
        &self,
        _busy: &Busy,
        token: &str,
        offset: u64,
        length: u64,
        mut body: S,
    ) -> Result<u64, ApiError>
    where
        S: Stream<Item = Result<axum::body::Bytes, io::Error>> + Unpin,
    {
        let mut file = tokio::fs::OpenOptions::new()
            .append(true)
            .open(self.part_path(token))
            .await
            .map_err(io_error)?;
        let mut at = offset;
        let mut outcome = Ok(());
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                // The connection broke: keep what arrived.
                Err(_) => break,
            };
            let room = length - at;
            if chunk.len() as u64 > room {
                let fits = usize::try_from(room).unwrap_or(usize::MAX);
                if let Err(e) = file.write_all(&chunk[..fits]).await {
                    outcome = Err(io_error(e));
                } else {
                    at = length;
                    outcome = Err(ApiError::Invalid("upload_too_long"));
                }
                break;
            }
            if let Err(e) = file.write_all(&chunk).await {
                outcome = Err(io_error(e));
                break;
            }
            at += chunk.len() as u64;
        }
        file.flush().await.map_err(io_error)?;
        file.sync_all().await.map_err(io_error)?;
        outcome.map(|()| at)
    }

    /// The whole file, to stream into the blob store.
    pub async fn open(&self, token: &str) -> Result<tokio::fs::File, ApiError> {
        tokio::fs::File::open(self.part_path(token))
            .await
            .map_err(io_error)
    }

    /// Forgets an upload (finished, cancelled or expired).
    pub async fn remove(&self, token: &str) -> Result<(), ApiError> {
        if !valid_token(token) {
            return Ok(());
        }
        for path in [self.part_path(token), self.meta_path(token)] {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        Ok(())
    }

    /// Removes every upload untouched for [`KEEP_SECS`]; returns how many.
    pub async fn sweep(&self, now: i64) -> Result<usize, ApiError> {
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(io_error(e)),
        };
        let mut removed = 0;
        while let Some(entry) = entries.next_entry().await.map_err(io_error)? {
            let name = entry.file_name();
            let Some(token) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            let Ok(raw) = tokio::fs::read(entry.path()).await else {
                continue;
            };
            let Ok(meta) = serde_json::from_slice::<PartialMeta>(&raw) else {
                continue;
            };
            if self.find(token, meta.person_id, now).await?.is_none() {
                self.remove(token).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

async fn write_durable(path: &Path, bytes: &[u8]) -> Result<(), ApiError> {
    let mut f = tokio::fs::File::create(path).await.map_err(io_error)?;
    f.write_all(bytes).await.map_err(io_error)?;
    f.sync_all().await.map_err(io_error)?;
    Ok(())
}

/// Makes the folder's new entries durable (best effort where folders
/// cannot be opened).
async fn sync_dir(dir: &Path) {
    if let Ok(d) = tokio::fs::File::open(dir).await {
        let _ = d.sync_all().await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn meta(person: i64) -> PartialMeta {
        PartialMeta {
            person_id: person,
            folder_id: 1,
            name: "cours.pdf".into(),
            length: 10,
            created_at: 1_000,
        }
    }

    fn body(
        parts: Vec<Result<&'static [u8], ()>>,
    ) -> impl Stream<Item = Result<axum::body::Bytes, io::Error>> + Unpin {
        futures_util::stream::iter(parts.into_iter().map(|p| {
            p.map(axum::body::Bytes::from_static)
                .map_err(|()| io::Error::other("broken"))
        }))
    }

    #[tokio::test]
    async fn pieces_add_up_and_a_break_keeps_what_arrived() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partials::new(dir.path().join("partial"));
        let now = 1_000;
        let token = p.create(&meta(7)).await.unwrap();
        assert!(
            p.find(&token, 8, now).await.unwrap().is_none(),
            "someone else's"
        );
        assert!(p.find("../../etc/passwd", 7, now).await.unwrap().is_none());
        let (m, offset) = p.find(&token, 7, now).await.unwrap().unwrap();
        assert_eq!((m.length, offset), (10, 0));
        let busy = p.lock(&token).unwrap();
        assert!(p.lock(&token).is_none(), "one writer at a time");
        // The connection breaks after 4 bytes: they are kept.
        let at = p
            .append(&busy, &token, 0, 10, body(vec![Ok(b"%PDF"), Err(())]))
            .await
            .unwrap();
        assert_eq!(at, 4);
        drop(busy);
        assert_eq!(p.find(&token, 7, now).await.unwrap().unwrap().1, 4);
        // Too many bytes: the ones that fit are kept, the rest refused.
        let busy = p.lock(&token).unwrap();
        let err = p
            .append(&busy, &token, 4, 10, body(vec![Ok(b"-1.4\nXYZ")]))
            .await;
        assert!(matches!(err, Err(ApiError::Invalid("upload_too_long"))));
        assert_eq!(p.find(&token, 7, now).await.unwrap().unwrap().1, 10);
        drop(busy);
        let mut whole = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut p.open(&token).await.unwrap(), &mut whole)
            .await
            .unwrap();
        assert_eq!(whole, b"%PDF-1.4\nX");
    }

    #[tokio::test]
    async fn an_upload_left_for_a_day_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let p = Partials::new(dir.path().to_path_buf());
        let fresh = p.create(&meta(7)).await.unwrap();
        let file_time = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        assert_eq!(p.sweep(file_time + 60).await.unwrap(), 0);
        assert!(p.find(&fresh, 7, file_time).await.unwrap().is_some());
        assert_eq!(p.sweep(file_time + KEEP_SECS + 60).await.unwrap(), 1);
        assert!(p.find(&fresh, 7, file_time).await.unwrap().is_none());
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "both files gone"
        );
    }
}
