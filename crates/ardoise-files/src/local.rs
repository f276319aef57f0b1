//! The local-disk backend: `root/blobs/<aa>/<bb>/<hash>` for blobs and
//! `root/tmp/` for uploads in progress. It owns the durability sequence of
//! DESIGN.md (write, fsync, rename, fsync the folder) and the decision to
//! stop accepting writes after a failed fsync. Small blobs just read are
//! kept whole in memory (bounded, least-used out first): the worksheet a
//! whole class opens at 9:15 is then served from one `Bytes` without a
//! file open or a read per download; larger ones stream from the file
//! through the OS page cache.

use std::collections::HashSet;
use std::io::{self, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use moka::future::Cache;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::ingest::Ingest;
use crate::range::check_range;
use crate::{
    random_name, whole_body, BlobBody, BlobHash, CacheLimits, FilesError, StoredBlob, SweepReport,
};

/// Size of the chunks a download is read in.
const READ_CHUNK: usize = 64 * 1024;

pub(crate) struct LocalStore {
    blobs: PathBuf,
    tmp: PathBuf,
    /// False once an fsync or rename has failed: after that, the kernel may
    /// have dropped dirty pages and no later fsync can be trusted (the
    /// PostgreSQL "fsyncgate" lesson), so the store refuses writes until an
    /// operator has looked at the disk and restarted it.
    accepting_writes: AtomicBool,
    /// Fan-out folders (`aa/bb`) whose creation this process has made
    /// durable. A folder found already there may have just been created by a
    /// concurrent put that has not fsynced its parent yet, so a folder is
    /// trusted only once this process has fsynced it itself.
    durable_dirs: Mutex<HashSet<String>>,
    /// Small blobs, whole, as last read. Blobs are immutable: an entry is
    /// never stale; the sweep ends those it removes.
    hot: Cache<BlobHash, Bytes>,
    /// Largest blob kept in `hot`.
    max_hot_blob: u64,
    /// Counts down durability steps; the step that brings it to zero fails
    /// (zero: no failure planned). Tests only.
    #[cfg(test)]
    fail_sync_countdown: std::sync::atomic::AtomicUsize,
}

impl LocalStore {
    pub(crate) async fn open(root: &Path, cache: CacheLimits) -> Result<LocalStore, FilesError> {
        let blobs = root.join("blobs");
        let tmp = root.join("tmp");
        tokio::fs::create_dir_all(&blobs).await?;
        tokio::fs::create_dir_all(&tmp).await?;
        Ok(LocalStore {
            blobs,
            tmp,
            accepting_writes: AtomicBool::new(true),
            durable_dirs: Mutex::new(HashSet::new()),
            // Only blobs up to `max_hot_blob`, which fits a u32, are kept.
            hot: crate::bytes_cache(cache.total_size, |b: &Bytes| {
                u32::try_from(b.len()).unwrap_or(u32::MAX)
            }),
            max_hot_blob: cache.max_blob_size.min(u64::from(u32::MAX)),
            #[cfg(test)]
            fail_sync_countdown: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    pub(crate) fn accepting_writes(&self) -> bool {
        self.accepting_writes.load(Ordering::SeqCst)
    }

    fn blob_path(&self, hash: &BlobHash) -> PathBuf {
        let (aa, bb) = hash.fan_out();
        self.blobs.join(aa).join(bb).join(hash.as_str())
    }

    pub(crate) async fn put<S>(&self, mut body: S, max_size: u64) -> Result<StoredBlob, FilesError>
    where
        S: Stream<Item = Result<Bytes, io::Error>> + Send + Unpin,
    {
        if !self.accepting_writes() {
            return Err(FilesError::WritesStopped);
        }
        let tmp_path = self.tmp.join(random_name());
        let mut file = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)
            .await?;
        // From here on, any early return (or a dropped future: the client
        // went away) removes the temporary file.
        let mut temp = TempFile(Some(tmp_path));
        let mut ingest = Ingest::new(max_size);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(FilesError::Body)?;
            ingest.feed(&chunk)?;
            file.write_all(&chunk).await?;
        }
        let done = ingest.finish()?;
        file.flush().await?;
        self.durable("fsync a new blob", temp.path(), file.sync_all())
            .await?;
        drop(file);

        let dest = self.blob_path(&done.hash);
        let already_present = match tokio::fs::metadata(&dest).await {
            // If the existing blob cannot be made young again, the new copy
            // replaces it (same bytes, fresh age) through the usual rename.
            Ok(_) => self.touch(&dest).await.is_ok(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(e.into()),
        };
        if !already_present {
            let dir = self.ensure_fan_out(&done.hash).await?;
            self.rename(temp.path(), &dest).await?;
            temp.disarm();
            self.durable("fsync a blob folder", &dir, sync_dir(&dir))
                .await?;
        }
        Ok(StoredBlob {
            hash: done.hash,
            size: done.size,
            detected: done.detected,
            already_present,
        })
    }

    /// Makes an existing blob young again, so that a sweep running between
    /// this put and the caller's commit of the row that references it does
    /// not take it for an old, unreferenced blob.
    async fn touch(&self, path: &Path) -> io::Result<()> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            std::fs::File::open(path)?.set_modified(SystemTime::now())
        })
        .await
        .map_err(io::Error::other)?
    }

    /// Creates `blobs/<aa>/<bb>` if needed and makes each new entry durable
    /// by fsyncing its parent. Returns the leaf folder.
    async fn ensure_fan_out(&self, hash: &BlobHash) -> Result<PathBuf, FilesError> {
        let (aa, bb) = hash.fan_out();
        let key = format!("{aa}/{bb}");
        let middle = self.blobs.join(aa);
        let leaf = middle.join(bb);
        if self.is_durable_dir(&key) {
            return Ok(leaf);
        }
        for (dir, parent) in [(&middle, &self.blobs), (&leaf, &middle)] {
            match tokio::fs::create_dir(dir).await {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e.into()),
            }
            self.durable("fsync a blob folder", parent, sync_dir(parent))
                .await?;
        }
        if let Ok(mut dirs) = self.durable_dirs.lock() {
            dirs.insert(key);
        }
        Ok(leaf)
    }

    fn is_durable_dir(&self, key: &str) -> bool {
        // A poisoned lock only means another thread panicked while
        // inserting; asking again (and fsyncing again) is always safe.
        self.durable_dirs
            .lock()
            .map(|dirs| dirs.contains(key))
            .unwrap_or(false)
    }

    async fn rename(&self, from: &Path, to: &Path) -> Result<(), FilesError> {
        match tokio::fs::rename(from, to).await {
            Ok(()) => Ok(()),
            // The temporary file is gone: a sweep took it for a stale one
            // (an upload idle for longer than the grace period). The disk is
            // fine; only this upload fails.
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(e.into()),
            Err(e) => {
                self.stop_writes("rename a new blob into place", to, &e);
                Err(e.into())
            }
        }
    }

    /// Runs one durability step (an fsync); on failure, stops all writes.
    async fn durable(
        &self,
        what: &str,
        path: &Path,
        step: impl std::future::Future<Output = io::Result<()>>,
    ) -> Result<(), FilesError> {
        let result = match self.injected_failure() {
            Some(e) => Err(e),
            None => step.await,
        };
        result.map_err(|e| {
            self.stop_writes(what, path, &e);
            FilesError::Io(e)
        })
    }

    fn stop_writes(&self, what: &str, path: &Path, error: &io::Error) {
        self.accepting_writes.store(false, Ordering::SeqCst);
        tracing::error!(
            %error,
            path = %path.display(),
            "could not {what}: the file store stops accepting writes until it is restarted; check the disk"
        );
    }

    #[cfg(test)]
    fn injected_failure(&self) -> Option<io::Error> {
        let before =
            self.fail_sync_countdown
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        (before == Ok(1)).then(|| io::Error::other("injected fsync failure"))
    }

    #[cfg(not(test))]
    fn injected_failure(&self) -> Option<io::Error> {
        None
    }

    pub(crate) async fn get(
        &self,
        hash: &BlobHash,
        range: Option<Range<u64>>,
    ) -> Result<BlobBody, FilesError> {
        if let Some(bytes) = self.hot.get(hash).await {
            return whole_body(bytes, range);
        }
        let path = self.blob_path(hash);
        let mut file = match tokio::fs::File::open(&path).await {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(FilesError::NotFound),
            Err(e) => return Err(e.into()),
        };
        let total_size = file.metadata().await?.len();
        if total_size <= self.max_hot_blob {
            // Concurrent misses on one hash wait for a single read.
            let bytes = self
                .hot
                .try_get_with_by_ref(hash, read_whole(file, total_size))
                .await
                .map_err(crate::unshare)?;
            return whole_body(bytes, range);
        }
        let range = check_range(range, total_size)?;
        if range.start > 0 {
            file.seek(SeekFrom::Start(range.start)).await?;
        }
        let reader = file.take(range.end - range.start);
        let stream = ReaderStream::with_capacity(reader, READ_CHUNK).into_stream();
        Ok(BlobBody {
            total_size,
            range,
            stream: stream.boxed(),
        })
    }

    pub(crate) async fn size(&self, hash: &BlobHash) -> Result<Option<u64>, FilesError> {
        match tokio::fs::metadata(self.blob_path(hash)).await {
            Ok(meta) => Ok(Some(meta.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn sweep(
        &self,
        is_referenced: impl Fn(&BlobHash) -> bool,
        grace: Duration,
    ) -> Result<SweepReport, FilesError> {
        let now = SystemTime::now();
        let mut report = SweepReport::default();
        for middle in subdirs(&self.blobs).await? {
            for leaf in subdirs(&middle).await? {
                let mut entries = tokio::fs::read_dir(&leaf).await?;
                while let Some(entry) = entries.next_entry().await? {
                    let Some(hash) = entry
                        .file_name()
                        .to_str()
                        .and_then(|name| BlobHash::parse(name).ok())
                    else {
                        continue;
                    };
                    // Only blobs where the store itself puts them.
                    if entry.path() != self.blob_path(&hash) {
                        continue;
                    }
                    report.blobs_scanned += 1;
                    let meta = match entry.metadata().await {
                        Ok(meta) => meta,
                        Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if !older_than(meta.modified()?, now, grace) || is_referenced(&hash) {
                        continue;
                    }
                    if remove(&entry.path()).await? {
                        self.hot.invalidate(&hash).await;
                        report.blobs_removed += 1;
                        report.bytes_freed += meta.len();
                    }
                }
            }
        }
        let mut entries = tokio::fs::read_dir(&self.tmp).await?;
        while let Some(entry) = entries.next_entry().await? {
            let meta = match entry.metadata().await {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e.into()),
            };
            if meta.is_file()
                && older_than(meta.modified()?, now, grace)
                && remove(&entry.path()).await?
            {
                report.temp_removed += 1;
                report.bytes_freed += meta.len();
            }
        }
        Ok(report)
    }

    /// Makes the `nth` durability step from now (1 = the next) fail, as a
    /// dying disk would.
    #[cfg(test)]
    pub(crate) fn inject_sync_failure(&self, nth: usize) {
        self.fail_sync_countdown.store(nth, Ordering::SeqCst);
    }

    #[cfg(test)]
    pub(crate) fn tmp_dir(&self) -> &Path {
        &self.tmp
    }
}

/// Reads a whole blob of `size` bytes from `file`; a blob that is not that
/// size any more is an error, not a short answer.
async fn read_whole(mut file: tokio::fs::File, size: u64) -> Result<Bytes, FilesError> {
    // At most `max_hot_blob`, which fits a u32.
    let mut buf = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.read_to_end(&mut buf).await?;
    if buf.len() as u64 != size {
        return Err(FilesError::Io(io::Error::other(
            "blob changed size while being read",
        )));
    }
    Ok(Bytes::from(buf))
}

/// A temporary upload file, removed when dropped unless it was renamed into
/// place. Removal is a plain blocking `unlink` because `Drop` cannot await;
/// it is one metadata operation.
struct TempFile(Option<PathBuf>);

impl TempFile {
    fn path(&self) -> &Path {
        self.0.as_deref().unwrap_or(Path::new(""))
    }

    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            if let Err(e) = std::fs::remove_file(&path) {
                if e.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(error = %e, path = %path.display(), "could not remove a temporary upload; the next sweep will");
                }
            }
        }
    }
}

async fn sync_dir(dir: &Path) -> io::Result<()> {
    tokio::fs::File::open(dir).await?.sync_all().await
}

async fn subdirs(dir: &Path) -> Result<Vec<PathBuf>, FilesError> {
    let mut found = Vec::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if entry.file_type().await?.is_dir() {
            found.push(entry.path());
        }
    }
    Ok(found)
}

fn older_than(modified: SystemTime, now: SystemTime, grace: Duration) -> bool {
    now.duration_since(modified).unwrap_or(Duration::ZERO) >= grace
}

/// Removes a file; `false` if it was already gone (a concurrent sweep).
async fn remove(path: &Path) -> Result<bool, FilesError> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn body(bytes: &'static [u8]) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin {
        futures::stream::iter([Ok(Bytes::from_static(bytes))])
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut found = Vec::new();
        let mut stack = vec![dir.to_owned()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    found.push(path);
                }
            }
        }
        found
    }

    /// The durability steps of a first put in an empty store, in order.
    const STEPS: [&str; 4] = [
        "the file's fsync",
        "fsync of blobs/ after creating <aa>",
        "fsync of <aa> after creating <bb>",
        "fsync of <bb> after the rename",
    ];

    #[tokio::test]
    async fn a_failed_fsync_at_any_step_fails_the_put_and_stops_all_later_writes() {
        for (i, step) in STEPS.iter().enumerate() {
            let root = tempfile::tempdir().unwrap();
            let store = LocalStore::open(root.path(), CacheLimits::default())
                .await
                .unwrap();
            store.inject_sync_failure(i + 1);

            let failed = store.put(body(b"hits the failure"), 100).await;

            assert!(
                matches!(failed, Err(FilesError::Io(_))),
                "{step}: {failed:?}"
            );
            assert!(!store.accepting_writes(), "{step}");
            assert!(
                files_under(store.tmp_dir()).is_empty(),
                "{step}: temp file left"
            );
            let refused = store.put(body(b"a later, healthy put"), 100).await;
            assert!(
                matches!(refused, Err(FilesError::WritesStopped)),
                "{step}: {refused:?}"
            );
        }
    }

    async fn read(store: &LocalStore, hash: &BlobHash, range: Option<Range<u64>>) -> Vec<u8> {
        let body = store.get(hash, range).await.unwrap();
        let bytes: Vec<Bytes> = body.stream.try_collect().await.unwrap();
        bytes.concat()
    }

    #[tokio::test]
    async fn a_small_blob_is_read_from_disk_once_then_from_memory_until_swept() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::open(root.path(), CacheLimits::default())
            .await
            .unwrap();
        let kept = store.put(body(b"la fiche du jour"), 100).await.unwrap();
        assert_eq!(read(&store, &kept.hash, None).await, b"la fiche du jour");
        // The file is gone behind the store's back: later reads, whole or
        // in part, are served from memory.
        std::fs::remove_file(store.blob_path(&kept.hash)).unwrap();
        assert_eq!(read(&store, &kept.hash, None).await, b"la fiche du jour");
        assert_eq!(read(&store, &kept.hash, Some(3..7)).await, b"fich");
        assert!(matches!(
            store.get(&kept.hash, Some(3..99)).await,
            Err(FilesError::RangeNotSatisfiable)
        ));

        // A blob the sweep removes is not served from memory any more.
        let other = store.put(body(b"une autre fiche"), 100).await.unwrap();
        assert_eq!(read(&store, &other.hash, None).await, b"une autre fiche");
        let report = store.sweep(|_| false, Duration::ZERO).await.unwrap();
        assert_eq!(report.blobs_removed, 1);
        assert!(matches!(
            store.get(&other.hash, None).await,
            Err(FilesError::NotFound)
        ));
    }

    #[tokio::test]
    async fn a_blob_larger_than_the_memory_limit_streams_from_its_file() {
        let root = tempfile::tempdir().unwrap();
        let limits = CacheLimits {
            max_blob_size: 4,
            total_size: 1024,
        };
        let store = LocalStore::open(root.path(), limits).await.unwrap();
        let kept = store
            .put(body(b"bien plus de 4 octets"), 100)
            .await
            .unwrap();
        assert_eq!(read(&store, &kept.hash, Some(5..9)).await, b"plus");
        std::fs::remove_file(store.blob_path(&kept.hash)).unwrap();
        assert!(matches!(
            store.get(&kept.hash, None).await,
            Err(FilesError::NotFound)
        ));
    }

    #[tokio::test]
    async fn blobs_written_before_the_failure_stay_readable() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::open(root.path(), CacheLimits::default())
            .await
            .unwrap();
        let kept = store
            .put(body(b"written before the failure"), 100)
            .await
            .unwrap();

        store.inject_sync_failure(1);
        assert!(store.put(body(b"hits the failure"), 100).await.is_err());

        let body = store.get(&kept.hash, None).await.unwrap();
        let bytes: Vec<Bytes> = body.stream.try_collect().await.unwrap();
        assert_eq!(bytes.concat(), b"written before the failure");
        assert_eq!(files_under(&root.path().join("blobs")).len(), 1);
    }

    #[tokio::test]
    async fn an_upload_whose_temp_file_was_swept_fails_without_stopping_writes() {
        let root = tempfile::tempdir().unwrap();
        let store = LocalStore::open(root.path(), CacheLimits::default())
            .await
            .unwrap();
        let tmp = store.tmp_dir().to_owned();
        // A body that, half-way, lets a sweep remove every temporary file.
        let chunks = futures::stream::iter([b"first half ".as_slice(), b"second half"])
            .then(move |chunk| {
                let tmp = tmp.clone();
                async move {
                    if chunk.starts_with(b"second") {
                        for path in files_under(&tmp) {
                            std::fs::remove_file(path).unwrap();
                        }
                    }
                    Ok::<_, io::Error>(Bytes::from_static(chunk))
                }
            })
            .boxed();

        let failed = store.put(chunks, 100).await;

        assert!(matches!(failed, Err(FilesError::Io(_))), "{failed:?}");
        assert!(store.accepting_writes());
    }
}
