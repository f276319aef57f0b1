//! The S3-compatible backend, over the `object_store` crate: blobs at
//! `<prefix>/blobs/<aa>/<bb>/<hash>`, multipart uploads in progress at
//! `<prefix>/tmp/<random>`, and an in-memory cache of small whole blobs so
//! that a thousand pupils opening the same PDF cost one read of the bucket.
//! It must not hold a whole large upload in memory: bodies over one part
//! are streamed part by part.

use std::io;
use std::ops::Range;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use moka::future::Cache;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{
    BackoffConfig, ClientOptions, GetOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};

use crate::ingest::Ingest;
use crate::range::check_range;
use crate::{random_name, BlobBody, BlobHash, CacheLimits, FilesError, StoredBlob, SweepReport};

/// Size of each part of a multipart upload, and the largest body sent in a
/// single `PUT` (S3's smallest allowed part is 5 MiB).
const PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one upload in flight at once: with the part being filled, an
/// upload holds at most three parts (15 MiB) in memory.
const PARTS_IN_FLIGHT: usize = 2;

/// The settings of [`crate::FilesConfig::S3`].
pub(crate) struct S3Settings<'a> {
    pub(crate) endpoint: Option<&'a str>,
    pub(crate) bucket: &'a str,
    pub(crate) region: &'a str,
    pub(crate) access_key_id: &'a str,
    pub(crate) secret_access_key: &'a str,
    pub(crate) allow_http: bool,
    pub(crate) prefix: Option<&'a str>,
}

/// What the cache knows about a blob. Blobs are immutable, so an entry is
/// never stale; only a sweep (which removes unreferenced blobs) ends one.
#[derive(Clone)]
enum Cached {
    /// A small blob, whole.
    Whole(Bytes),
    /// A blob too large to keep: only its size, which saves the `HEAD`
    /// before each ranged read.
    Large { size: u64 },
}

/// Weight of a [`Cached::Large`] entry: roughly its memory cost.
const LARGE_ENTRY_WEIGHT: u32 = 128;

pub(crate) struct S3Store {
    client: AmazonS3,
    prefix: Path,
    cache: Cache<BlobHash, Cached>,
    max_cached_blob: u64,
}

impl S3Store {
    pub(crate) async fn open(
        settings: S3Settings<'_>,
        cache: CacheLimits,
    ) -> Result<S3Store, FilesError> {
        let mut builder = AmazonS3Builder::new()
            // First: `with_allow_http` below is stored in the client options.
            // No timeout on a whole request: a download streams at the pace
            // of a pupil's phone. A stalled connection is caught by the read
            // timeout instead, and `object_store` resumes a broken download
            // where it stopped.
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout_disabled()
                    .with_read_timeout(Duration::from_secs(30)),
            )
            .with_bucket_name(settings.bucket)
            .with_region(settings.region)
            .with_access_key_id(settings.access_key_id)
            .with_secret_access_key(settings.secret_access_key)
            .with_allow_http(settings.allow_http)
            // Fail within seconds rather than the default three minutes: a
            // request handler waits on this, and the web layer has its own
            // timeouts and retry advice for the client.
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
            });
        if let Some(endpoint) = settings.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let client = builder
            .build()
            .map_err(|e| FilesError::Config(e.to_string()))?;
        let prefix = match settings.prefix.map(str::trim).filter(|p| !p.is_empty()) {
            Some(prefix) => Path::parse(prefix.trim_matches('/'))
                .map_err(|e| FilesError::Config(format!("bad prefix: {e}")))?,
            None => Path::default(),
        };
        let max_cached_blob = cache.max_blob_size.min(u64::from(u32::MAX));
        let cache = crate::bytes_cache(cache.total_size, |entry: &Cached| match entry {
            // Cannot truncate: only blobs up to `max_cached_blob`, which
            // fits a u32, are cached whole.
            Cached::Whole(bytes) => u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            Cached::Large { .. } => LARGE_ENTRY_WEIGHT,
        });
        let store = S3Store {
            client,
            prefix,
            cache,
            max_cached_blob,
        };
        // A listing fails on a missing bucket, bad credentials or an
        // unreachable endpoint; a HEAD of a missing key could not tell a
        // missing bucket from a missing object.
        store
            .client
            .list_with_delimiter(Some(&store.prefix))
            .await
            .map_err(|e| {
                FilesError::Backend(format!(
                    "bucket {} is not reachable: {}",
                    settings.bucket,
                    with_causes(&e)
                ))
            })?;
        Ok(store)
    }

    fn blob_key(&self, hash: &BlobHash) -> Path {
        let (aa, bb) = hash.fan_out();
        self.prefix
            .clone()
            .join("blobs")
            .join(aa)
            .join(bb)
            .join(hash.as_str())
    }

    fn tmp_prefix(&self) -> Path {
        self.prefix.clone().join("tmp")
    }

    pub(crate) async fn put<S>(&self, mut body: S, max_size: u64) -> Result<StoredBlob, FilesError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin,
    {
        let mut ingest = Ingest::new(max_size);
        let mut first_part: Vec<Bytes> = Vec::new();
        let mut first_part_len = 0usize;
        let mut upload = Upload::default();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(FilesError::Body)?;
            ingest.feed(&chunk)?;
            if let Some(writer) = upload.writer.as_mut() {
                writer
                    .wait_for_capacity(PARTS_IN_FLIGHT)
                    .await
                    .map_err(backend)?;
                writer.put(chunk);
                continue;
            }
            first_part_len += chunk.len();
            first_part.push(chunk);
            if first_part_len > PART_SIZE {
                let key = self.tmp_prefix().join(random_name().as_str());
                let multipart = self.client.put_multipart(&key).await.map_err(backend)?;
                let mut writer = WriteMultipart::new_with_chunk_size(multipart, PART_SIZE);
                for chunk in first_part.drain(..) {
                    writer.put(chunk);
                }
                upload = Upload {
                    writer: Some(writer),
                    key: Some(key),
                };
            }
        }
        let done = ingest.finish()?;
        let key = self.blob_key(&done.hash);
        let already_present = match self.client.head(&key).await {
            Ok(_) => true,
            Err(object_store::Error::NotFound { .. }) => false,
            Err(e) => return Err(backend(e)),
        };
        // Written even when already present: S3 cannot touch an object, and a
        // fresh `last_modified` keeps a concurrent sweep from taking the blob
        // for an old unreferenced one before the caller commits its row.
        match (upload.writer.take(), upload.key.take()) {
            (Some(writer), Some(tmp)) => {
                writer.finish().await.map_err(backend)?;
                // The hash is only known now: the object was uploaded under a
                // temporary key. The copy is atomic; the temporary object
                // left by a crash in between is removed by `sweep`.
                let copied = self.client.copy(&tmp, &key).await.map_err(backend);
                if let Err(e) = self.client.delete(&tmp).await {
                    tracing::warn!(error = %e, key = %tmp, "could not delete a temporary upload; the next sweep will");
                }
                copied?;
            }
            _ => {
                let payload: PutPayload = first_part.into_iter().collect();
                self.client.put(&key, payload).await.map_err(backend)?;
            }
        }
        Ok(StoredBlob {
            hash: done.hash,
            size: done.size,
            detected: done.detected,
            already_present,
        })
    }

    pub(crate) async fn get(
        &self,
        hash: &BlobHash,
        range: Option<Range<u64>>,
    ) -> Result<BlobBody, FilesError> {
        // Concurrent misses on one hash wait for a single load.
        let entry = self
            .cache
            .try_get_with_by_ref(hash, self.load(hash))
            .await
            .map_err(crate::unshare)?;
        match entry {
            Cached::Whole(bytes) => crate::whole_body(bytes, range),
            Cached::Large { size } => {
                let range = check_range(range, size)?;
                let options = GetOptions::new().with_range(Some(range.clone()));
                let result = match self.client.get_opts(&self.blob_key(hash), options).await {
                    Ok(result) => result,
                    Err(e) => {
                        if matches!(e, object_store::Error::NotFound { .. }) {
                            self.cache.invalidate(hash).await;
                        }
                        return Err(backend(e));
                    }
                };
                Ok(BlobBody {
                    total_size: size,
                    range,
                    stream: result.into_stream().map_err(io::Error::other).boxed(),
                })
            }
        }
    }

    /// Reads a blob's size, and the whole blob if it is small enough to keep.
    async fn load(&self, hash: &BlobHash) -> Result<Cached, FilesError> {
        let key = self.blob_key(hash);
        let size = self.client.head(&key).await.map_err(backend)?.size;
        if size > self.max_cached_blob {
            return Ok(Cached::Large { size });
        }
        let bytes = self
            .client
            .get(&key)
            .await
            .map_err(backend)?
            .bytes()
            .await
            .map_err(backend)?;
        if bytes.len() as u64 != size {
            return Err(FilesError::Backend(format!(
                "object {key} changed size while being read"
            )));
        }
        Ok(Cached::Whole(bytes))
    }

    pub(crate) async fn size(&self, hash: &BlobHash) -> Result<Option<u64>, FilesError> {
        match self.cache.get(hash).await {
            Some(Cached::Whole(bytes)) => return Ok(Some(bytes.len() as u64)),
            Some(Cached::Large { size }) => return Ok(Some(size)),
            None => {}
        }
        match self.client.head(&self.blob_key(hash)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    pub(crate) async fn sweep(
        &self,
        is_referenced: impl Fn(&BlobHash) -> bool,
        grace: Duration,
    ) -> Result<SweepReport, FilesError> {
        let now = SystemTime::now();
        let mut report = SweepReport::default();
        let mut blobs = self.client.list(Some(&self.prefix.clone().join("blobs")));
        while let Some(meta) = blobs.next().await {
            let meta = meta.map_err(backend)?;
            let Some(hash) = meta
                .location
                .filename()
                .and_then(|name| BlobHash::parse(name).ok())
            else {
                continue;
            };
            // Only objects where the store itself puts them.
            if meta.location != self.blob_key(&hash) {
                continue;
            }
            report.blobs_scanned += 1;
            if !older_than(meta.last_modified.into(), now, grace) || is_referenced(&hash) {
                continue;
            }
            if self.remove(&meta.location).await? {
                report.blobs_removed += 1;
                report.bytes_freed += meta.size;
            }
            self.cache.invalidate(&hash).await;
        }
        // Objects whose copy to their final key never happened (a crash in
        // between). Multipart uploads that never completed are not objects:
        // the bucket's lifecycle rule (`AbortIncompleteMultipartUpload`)
        // must remove them.
        let mut temps = self.client.list(Some(&self.tmp_prefix()));
        while let Some(meta) = temps.next().await {
            let meta = meta.map_err(backend)?;
            if older_than(meta.last_modified.into(), now, grace)
                && self.remove(&meta.location).await?
            {
                report.temp_removed += 1;
                report.bytes_freed += meta.size;
            }
        }
        Ok(report)
    }

    /// Deletes an object; `false` if it was already gone.
    async fn remove(&self, key: &Path) -> Result<bool, FilesError> {
        match self.client.delete(key).await {
            Ok(()) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(backend(e)),
        }
    }
}

/// A multipart upload in progress, aborted if dropped before it finishes
/// (an error, or the caller's future dropped because the client went away)
/// so that its parts do not linger in the bucket.
#[derive(Default)]
struct Upload {
    writer: Option<WriteMultipart>,
    key: Option<Path>,
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else {
            return;
        };
        // `Drop` cannot await: the abort runs on its own. Without a runtime
        // (never the case in a server) the bucket's lifecycle rule cleans up.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let key = self.key.take();
            runtime.spawn(async move {
                if let Err(e) = writer.abort().await {
                    tracing::warn!(error = %e, key = ?key.map(|k| k.to_string()), "could not abort a multipart upload");
                }
            });
        }
    }
}

fn backend(error: object_store::Error) -> FilesError {
    match error {
        object_store::Error::NotFound { .. } => FilesError::NotFound,
        other => FilesError::Backend(with_causes(&other)),
    }
}

/// An error and its causes on one line: the HTTP client's errors say little
/// without theirs ("builder error").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn older_than(modified: SystemTime, now: SystemTime, grace: Duration) -> bool {
    now.duration_since(modified).unwrap_or(Duration::ZERO) >= grace
}
