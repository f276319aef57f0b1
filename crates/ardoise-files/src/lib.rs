//! Ardoise's blob store: the bytes of every file (homework attachments and
//! submissions, documents, message attachments), on local disk or in an
//! S3-compatible bucket.
//!
//! Blobs are **content-addressed and immutable**: a blob's name is the
//! SHA-256 of its content ([`BlobHash`]), so storing the same file twice
//! stores it once, and any cache or CDN may keep a body forever. This crate
//! only stores bytes: names, owners, sharing and quotas are metadata kept by
//! the SQL store, and a blob that no row references any more is removed by
//! [`FileStore::sweep`]. It exposes no axum or sqlx type; the web layer maps
//! [`FilesError`] to responses and [`DetectedType`] to headers.
//!
//! - **Uploads stream.** [`FileStore::put`] hashes and writes bytes as they
//!   arrive, keeps only the first 8 KiB to detect the type from the content
//!   ([`detect_type`], never the file name), and refuses a body past its
//!   size limit as soon as it passes it.
//! - **Nothing acknowledged is lost.** On disk, a put writes to `tmp/`,
//!   fsyncs the file, renames it to `blobs/<aa>/<bb>/<hash>`, fsyncs the
//!   folder, and only then returns. After the first failed fsync or rename
//!   the store stops accepting writes ([`FileStore::accepting_writes`]): a
//!   failed fsync may have dropped data the kernel will not report twice.
//!   On S3, a completed `PUT` or multipart upload is durable.
//! - **Reads are cheap.** The local backend relies on the operating
//!   system's page cache, which already keeps hot files in memory for every
//!   process. The S3 backend keeps small blobs whole in memory ([`CacheLimits`]:
//!   up to 8 MiB each, 256 MiB in all by default), so that a thousand pupils
//!   opening the same PDF at 9:15 cost one read of the bucket. Ranged reads
//!   serve `Range` requests ([`parse_range_header`]).

mod detect;
mod error;
mod hash;
mod ingest;
mod local;
mod name;
mod range;
mod s3;

use std::fmt;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{Stream, StreamExt};

pub use detect::{detect_type, is_inline_safe, DetectedType, SNIFF_LEN};
pub use error::FilesError;
pub use hash::BlobHash;
pub use name::{validate_file_name, MAX_FILE_NAME_CHARS};
pub use range::{parse_range_header, RangeError};

/// Where blobs are kept.
#[derive(Clone, PartialEq, Eq)]
pub enum FilesConfig {
    /// A folder on local disk (the embedded default); `blobs/` and `tmp/`
    /// are created inside it. `tmp/` must be on the same file system as
    /// `blobs/` for the rename to be atomic, which is why both live here.
    Local {
        /// The folder holding `blobs/` and `tmp/`.
        root: PathBuf,
    },
    /// An S3-compatible bucket (Amazon S3, Garage, MinIO, Ceph…), for
    /// several nodes sharing one store.
    S3 {
        /// The service's URL, e.g. `http://127.0.0.1:9000`; `None` for
        /// Amazon S3 itself. Requests use path-style addressing.
        endpoint: Option<String>,
        /// The bucket, which must exist.
        bucket: String,
        /// The region (`us-east-1` for most other implementations).
        region: String,
        /// Access key id.
        access_key_id: String,
        /// Secret access key (never printed by `Debug`).
        secret_access_key: String,
        /// Allow a plain `http://` endpoint (a service on the same host or
        /// a private network only).
        allow_http: bool,
        /// A key prefix, to share a bucket: keys become
        /// `<prefix>/blobs/…` and `<prefix>/tmp/…`.
        prefix: Option<String>,
    },
}

impl fmt::Debug for FilesConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilesConfig::Local { root } => f.debug_struct("Local").field("root", root).finish(),
            FilesConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key: _,
                allow_http,
                prefix,
            } => f
                .debug_struct("S3")
                .field("endpoint", endpoint)
                .field("bucket", bucket)
                .field("region", region)
                .field("access_key_id", access_key_id)
                .field("secret_access_key", &"[redacted]")
                .field("allow_http", allow_http)
                .field("prefix", prefix)
                .finish(),
        }
    }
}

/// Bounds of the in-memory cache of small whole blobs, kept so that a
/// document many people open at once is read from its disk or bucket once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    /// Largest blob kept whole, in bytes (at most 4 GiB); larger blobs are
    /// always read from the bucket.
    pub max_blob_size: u64,
    /// Total bytes kept; least-used blobs leave first.
    pub total_size: u64,
}

impl Default for CacheLimits {
    fn default() -> Self {
        CacheLimits {
            max_blob_size: 8 * 1024 * 1024,
            total_size: 256 * 1024 * 1024,
        }
    }
}

/// The blob store. Cheap to clone (one `Arc`); share one per process.
#[derive(Clone)]
pub struct FileStore {
    backend: Arc<Backend>,
}

enum Backend {
    Local(local::LocalStore),
    S3(s3::S3Store),
}

/// A blob that has been stored (and, on disk, made durable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// The SHA-256 of the content.
    pub hash: BlobHash,
    /// Its size in bytes (never zero).
    pub size: u64,
    /// Its type, from its first bytes.
    pub detected: DetectedType,
    /// The same content was already stored: nothing new was kept.
    pub already_present: bool,
}

/// The body of a blob, or of a range of it, to stream to the client.
pub struct BlobBody {
    /// Size of the whole blob (for `Content-Range`).
    pub total_size: u64,
    /// The bytes the stream yields, `0..total_size` when no range was asked.
    pub range: Range<u64>,
    /// The bytes, in chunks.
    pub stream: BoxStream<'static, Result<Bytes, io::Error>>,
}

impl fmt::Debug for BlobBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlobBody")
            .field("total_size", &self.total_size)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

/// The body of a blob held whole in memory, or of the `range` of it.
pub(crate) fn whole_body(bytes: Bytes, range: Option<Range<u64>>) -> Result<BlobBody, FilesError> {
    let total_size = bytes.len() as u64;
    let range = range::check_range(range, total_size)?;
    // In bounds: `check_range` keeps it within `bytes.len()`.
    let slice = bytes.slice(range.start as usize..range.end as usize);
    Ok(BlobBody {
        total_size,
        range,
        stream: futures::stream::once(async move { Ok(slice) }).boxed(),
    })
}

/// A cache shares one load's error between all the callers that waited for
/// it: each gets its own copy (the kind of an I/O error kept).
pub(crate) fn unshare(error: Arc<FilesError>) -> FilesError {
    match &*error {
        FilesError::NotFound => FilesError::NotFound,
        FilesError::Io(e) => FilesError::Io(io::Error::new(e.kind(), e.to_string())),
        other => FilesError::Backend(other.to_string()),
    }
}

/// A cache of whole blobs weighing `total_size` bytes at most.
pub(crate) fn bytes_cache<V: Clone + Send + Sync + 'static>(
    total_size: u64,
    weight: fn(&V) -> u32,
) -> moka::future::Cache<BlobHash, V> {
    moka::future::Cache::builder()
        .max_capacity(total_size)
        .weigher(move |_hash: &BlobHash, v: &V| weight(v))
        .build()
}

/// What a [`FileStore::sweep`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Blobs looked at.
    pub blobs_scanned: u64,
    /// Unreferenced blobs older than the grace period, removed.
    pub blobs_removed: u64,
    /// Temporary files or objects of abandoned uploads, removed.
    pub temp_removed: u64,
    /// Bytes freed by both kinds of removal.
    pub bytes_freed: u64,
}

impl FileStore {
    /// Opens the store with the default [`CacheLimits`]. Local: creates
    /// `root/blobs` and `root/tmp` if needed. S3: checks that the bucket
    /// answers with these credentials.
    pub async fn open(config: &FilesConfig) -> Result<FileStore, FilesError> {
        FileStore::open_with_cache(config, CacheLimits::default()).await
    }

    /// Opens the store with explicit bounds for its memory cache of small
    /// whole blobs (both backends keep one).
    pub async fn open_with_cache(
        config: &FilesConfig,
        cache: CacheLimits,
    ) -> Result<FileStore, FilesError> {
        let backend = match config {
            FilesConfig::Local { root } => {
                Backend::Local(local::LocalStore::open(root, cache).await?)
            }
            FilesConfig::S3 {
                endpoint,
                bucket,
                region,
                access_key_id,
                secret_access_key,
                allow_http,
                prefix,
            } => {
                let settings = s3::S3Settings {
                    endpoint: endpoint.as_deref(),
                    bucket,
                    region,
                    access_key_id,
                    secret_access_key,
                    allow_http: *allow_http,
                    prefix: prefix.as_deref(),
                };
                Backend::S3(s3::S3Store::open(settings, cache).await?)
            }
        };
        Ok(FileStore {
            backend: Arc::new(backend),
        })
    }

    /// Stores a body that arrives in chunks, never holding it whole in
    /// memory, and returns once it is durable. Refuses an empty body
    /// ([`FilesError::Empty`]) and stops reading past `max_size` bytes
    /// ([`FilesError::TooLarge`]); nothing is kept on refusal or error.
    ///
    /// Storing content that is already there succeeds with
    /// `already_present: true`, also when two identical uploads race.
    pub async fn put<S>(&self, body: S, max_size: u64) -> Result<StoredBlob, FilesError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin,
    {
        match &*self.backend {
            Backend::Local(store) => store.put(body, max_size).await,
            Backend::S3(store) => store.put(body, max_size).await,
        }
    }

    /// Stores bytes already in memory; see [`FileStore::put`].
    pub async fn put_bytes(&self, bytes: Bytes, max_size: u64) -> Result<StoredBlob, FilesError> {
        if bytes.len() as u64 > max_size {
            return Err(FilesError::TooLarge { max: max_size });
        }
        self.put(futures::stream::iter([Ok(bytes)]), max_size).await
    }

    /// Reads a blob, or the half-open byte `range` of it. `NotFound` if
    /// there is no such blob; `RangeNotSatisfiable` if the range is empty or
    /// goes past the end.
    pub async fn get(
        &self,
        hash: &BlobHash,
        range: Option<Range<u64>>,
    ) -> Result<BlobBody, FilesError> {
        match &*self.backend {
            Backend::Local(store) => store.get(hash, range).await,
            Backend::S3(store) => store.get(hash, range).await,
        }
    }

    /// The size of a blob, `None` if there is no such blob.
    pub async fn size(&self, hash: &BlobHash) -> Result<Option<u64>, FilesError> {
        match &*self.backend {
            Backend::Local(store) => store.size(hash).await,
            Backend::S3(store) => store.size(hash).await,
        }
    }

    /// Whether a blob is stored.
    pub async fn exists(&self, hash: &BlobHash) -> Result<bool, FilesError> {
        Ok(self.size(hash).await?.is_some())
    }

    /// Removes the blobs that `is_referenced` disowns and that are older
    /// than `grace`, and the leftovers of uploads idle for longer than
    /// `grace`.
    ///
    /// `grace` protects uploads in flight: a put refreshes the age of the
    /// blob it stores (also when it was already there), and its caller
    /// commits the row referencing it right after, so `grace` must be much
    /// longer than that (an hour is a good default). Referenced hashes should
    /// be read from the database *after* the sweep starts listing, or with
    /// a grace longer than any upload.
    pub async fn sweep(
        &self,
        is_referenced: impl Fn(&BlobHash) -> bool,
        grace: Duration,
    ) -> Result<SweepReport, FilesError> {
        match &*self.backend {
            Backend::Local(store) => store.sweep(is_referenced, grace).await,
            Backend::S3(store) => store.sweep(is_referenced, grace).await,
        }
    }

    /// False once a failed fsync or rename has stopped writes (local disk
    /// only); reads still work. `/readyz` and the upload routes should say
    /// so, and an operator must check the disk and restart.
    pub fn accepting_writes(&self) -> bool {
        match &*self.backend {
            Backend::Local(store) => store.accepting_writes(),
            Backend::S3(_) => true,
        }
    }

    /// `"local"` or `"s3"`, for logs and metrics.
    pub fn backend_name(&self) -> &'static str {
        match &*self.backend {
            Backend::Local(_) => "local",
            Backend::S3(_) => "s3",
        }
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("backend", &self.backend_name())
            .field("accepting_writes", &self.accepting_writes())
            .finish()
    }
}

/// A random name for a temporary file or key: 128 bits, so that two
/// uploads never collide.
fn random_name() -> String {
    format!("{:032x}", rand::random::<u128>())
}
