//! One behaviour suite for every backend: each test binary (`local.rs`,
//! `s3.rs`) provides a [`Fixture`] and instantiates every test of this
//! module with [`backend_suite!`], so the two backends are held to the same
//! promises.

#![allow(dead_code)]

use std::io;
use std::time::Duration;

use ardoise_files::{parse_range_header, BlobBody, BlobHash, FileStore, FilesError, SweepReport};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, TryStreamExt};
use sha2::{Digest, Sha256};

/// What is left in the store's storage, counted behind its back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leftovers {
    pub blobs: usize,
    pub temp: usize,
}

type Action<T> = Box<dyn Fn() -> BoxFuture<'static, T> + Send + Sync>;

/// A fresh, empty store and ways to look at its storage directly.
pub struct Fixture {
    pub store: FileStore,
    /// Counts blobs and temporary files or objects.
    pub leftovers: Action<Leftovers>,
    /// Leaves an abandoned upload behind, as a crash would.
    pub plant_temp: Action<()>,
    /// Removes everything the test wrote.
    pub cleanup: Action<()>,
}

/// Instantiates every test of the suite for one backend.
#[macro_export]
macro_rules! backend_suite {
    ($fixture:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let fixture = $fixture().await;
                suite::$test(&fixture).await;
                (fixture.cleanup)().await;
            }
        )*
    };
}

/// Every test of the suite, for [`backend_suite!`].
#[macro_export]
macro_rules! all_suite_tests {
    ($fixture:path) => {
        $crate::backend_suite!($fixture;
            a_stored_blob_reads_back_byte_for_byte,
            a_large_body_streamed_in_small_chunks_reads_back_whole,
            ranges_read_exactly_the_bytes_asked,
            ranges_outside_the_blob_are_refused,
            a_missing_blob_is_not_found,
            an_empty_body_is_refused_and_leaves_nothing,
            an_oversize_body_is_refused_and_leaves_nothing,
            a_large_oversize_body_is_refused_and_leaves_nothing,
            a_failing_body_is_refused_and_leaves_nothing,
            identical_concurrent_puts_all_succeed_and_keep_one_blob,
            sweep_removes_only_old_unreferenced_blobs,
            sweep_removes_abandoned_uploads,
            the_store_says_what_it_is,
        );
    };
}

pub const PDF: &[u8] =
    b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n";

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic bytes that do not compress or repeat.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) as u8
        })
        .collect()
}

/// A body that arrives in `chunk`-byte pieces, as an HTTP upload does.
pub fn chunked(
    bytes: &[u8],
    chunk: usize,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + Unpin + 'static {
    let chunks: Vec<Result<Bytes, io::Error>> = bytes
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    futures::stream::iter(chunks)
}

pub async fn read_all(body: BlobBody) -> Vec<u8> {
    let chunks: Vec<Bytes> = body.stream.try_collect().await.expect("the body streams");
    chunks.concat()
}

pub async fn read(
    store: &FileStore,
    hash: &BlobHash,
    range: Option<std::ops::Range<u64>>,
) -> Vec<u8> {
    read_all(store.get(hash, range).await.expect("the blob is there")).await
}

pub async fn a_stored_blob_reads_back_byte_for_byte(fx: &Fixture) {
    let store = &fx.store;

    let stored = store
        .put_bytes(Bytes::from_static(PDF), 1024)
        .await
        .expect("stored");

    assert_eq!(stored.hash.as_str(), sha256_hex(PDF));
    assert_eq!(stored.size, PDF.len() as u64);
    assert_eq!(stored.detected.mime, "application/pdf");
    assert!(stored.detected.inline_safe);
    assert!(!stored.already_present);
    let body = store.get(&stored.hash, None).await.expect("found");
    assert_eq!(body.total_size, PDF.len() as u64);
    assert_eq!(body.range, 0..PDF.len() as u64);
    assert_eq!(read_all(body).await, PDF);
    assert_eq!(
        store.size(&stored.hash).await.ok(),
        Some(Some(PDF.len() as u64))
    );
    assert!(store.exists(&stored.hash).await.expect("answers"));

    let again = store
        .put(chunked(PDF, 7), 1024)
        .await
        .expect("stored again");
    assert_eq!(again.hash, stored.hash);
    assert!(again.already_present);
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 1, temp: 0 });
}

pub async fn a_large_body_streamed_in_small_chunks_reads_back_whole(fx: &Fixture) {
    // Past one multipart part (5 MiB) and past the S3 cache's 8 MiB limit.
    let content = pseudo_random(12 * 1024 * 1024 + 123, 1);

    let stored = fx
        .store
        .put(chunked(&content, 64 * 1024), 20 * 1024 * 1024)
        .await
        .expect("stored");

    assert_eq!(stored.hash.as_str(), sha256_hex(&content));
    assert_eq!(stored.size, content.len() as u64);
    assert_eq!(stored.detected.mime, "application/octet-stream");
    assert!(
        read(&fx.store, &stored.hash, None).await == content,
        "whole body differs"
    );
    let middle = 6 * 1024 * 1024..6 * 1024 * 1024 + 100_000;
    assert!(
        read(&fx.store, &stored.hash, Some(middle.clone())).await
            == content[middle.start as usize..middle.end as usize],
        "range differs"
    );
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 1, temp: 0 });
}

pub async fn ranges_read_exactly_the_bytes_asked(fx: &Fixture) {
    let content = b"0123456789abcdefghij";
    let stored = fx
        .store
        .put_bytes(Bytes::from_static(content), 100)
        .await
        .expect("stored");
    let size = content.len() as u64;

    for (range, expected) in [
        (0..1, &b"0"[..]),
        (5..10, b"56789"),
        (19..20, b"j"),
        (0..20, content),
    ] {
        let body = fx
            .store
            .get(&stored.hash, Some(range.clone()))
            .await
            .expect("in bounds");
        assert_eq!(body.total_size, size);
        assert_eq!(body.range, range);
        assert_eq!(read_all(body).await, expected);
    }
    let last_three = parse_range_header("bytes=-3", size).expect("satisfiable");
    assert_eq!(read(&fx.store, &stored.hash, last_three).await, b"hij");
    let from_ten = parse_range_header("bytes=10-", size).expect("satisfiable");
    assert_eq!(read(&fx.store, &stored.hash, from_ten).await, b"abcdefghij");
}

pub async fn ranges_outside_the_blob_are_refused(fx: &Fixture) {
    let stored = fx
        .store
        .put_bytes(Bytes::from_static(b"0123456789"), 100)
        .await
        .expect("stored");

    // `Range { .. }`: a reversed range is the point of the test.
    for range in [
        10..11,
        5..11,
        4..4,
        std::ops::Range { start: 7, end: 3 },
        100..200,
    ] {
        let result = fx.store.get(&stored.hash, Some(range.clone())).await;
        assert!(
            matches!(result, Err(FilesError::RangeNotSatisfiable)),
            "{range:?}: {result:?}"
        );
    }
}

pub async fn a_missing_blob_is_not_found(fx: &Fixture) {
    let missing = BlobHash::parse(&sha256_hex(b"never stored")).expect("valid");

    let result = fx.store.get(&missing, None).await;

    assert!(matches!(result, Err(FilesError::NotFound)), "{result:?}");
    assert!(matches!(
        fx.store.get(&missing, Some(0..1)).await,
        Err(FilesError::NotFound)
    ));
    assert_eq!(fx.store.size(&missing).await.ok(), Some(None));
    assert_eq!(fx.store.exists(&missing).await.ok(), Some(false));
}

pub async fn an_empty_body_is_refused_and_leaves_nothing(fx: &Fixture) {
    let empty_bytes = fx.store.put_bytes(Bytes::new(), 100).await;
    let no_chunks = fx
        .store
        .put(
            futures::stream::iter(Vec::<Result<Bytes, io::Error>>::new()),
            100,
        )
        .await;
    let empty_chunks = fx
        .store
        .put(
            futures::stream::iter([Ok(Bytes::new()), Ok(Bytes::new())]),
            100,
        )
        .await;

    for result in [empty_bytes, no_chunks, empty_chunks] {
        assert!(matches!(result, Err(FilesError::Empty)), "{result:?}");
    }
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 0, temp: 0 });
}

pub async fn an_oversize_body_is_refused_and_leaves_nothing(fx: &Fixture) {
    let content = pseudo_random(10_000, 2);

    let whole = fx
        .store
        .put_bytes(Bytes::from(content.clone()), 9_999)
        .await;
    let streamed = fx.store.put(chunked(&content, 1000), 9_999).await;

    for result in [whole, streamed] {
        assert!(
            matches!(result, Err(FilesError::TooLarge { max: 9_999 })),
            "{result:?}"
        );
    }
    let exact = fx.store.put(chunked(&content, 1000), 10_000).await;
    assert!(exact.is_ok(), "the limit itself is allowed: {exact:?}");
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 1, temp: 0 });
}

pub async fn a_large_oversize_body_is_refused_and_leaves_nothing(fx: &Fixture) {
    // Refused after more than one part has gone out.
    let content = pseudo_random(12 * 1024 * 1024, 3);

    let result = fx
        .store
        .put(chunked(&content, 256 * 1024), 11 * 1024 * 1024)
        .await;

    assert!(
        matches!(result, Err(FilesError::TooLarge { .. })),
        "{result:?}"
    );
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 0, temp: 0 });
}

pub async fn a_failing_body_is_refused_and_leaves_nothing(fx: &Fixture) {
    let chunks = vec![
        Ok(Bytes::from(pseudo_random(100_000, 4))),
        Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "client went away",
        )),
    ];

    let result = fx.store.put(futures::stream::iter(chunks), 1_000_000).await;

    assert!(matches!(result, Err(FilesError::Body(_))), "{result:?}");
    assert!(result
        .as_ref()
        .err()
        .is_some_and(FilesError::is_client_error));
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 0, temp: 0 });
}

pub async fn identical_concurrent_puts_all_succeed_and_keep_one_blob(fx: &Fixture) {
    let content = Bytes::from(pseudo_random(300_000, 5));

    let puts = (0..8).map(|_| {
        let store = fx.store.clone();
        let content = content.clone();
        tokio::spawn(async move { store.put(chunked(&content, 16 * 1024), 1_000_000).await })
    });
    let results = futures::future::join_all(puts).await;

    for result in results {
        let stored = result.expect("the task ran").expect("every put succeeds");
        assert_eq!(stored.hash.as_str(), sha256_hex(&content));
    }
    let hash = BlobHash::parse(&sha256_hex(&content)).expect("valid");
    assert!(
        read(&fx.store, &hash, None).await == content,
        "the blob is intact"
    );
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 1, temp: 0 });
}

pub async fn sweep_removes_only_old_unreferenced_blobs(fx: &Fixture) {
    let kept = fx
        .store
        .put_bytes(Bytes::from_static(b"referenced"), 100)
        .await
        .expect("stored");
    let orphan = fx
        .store
        .put_bytes(Bytes::from_static(b"orphan"), 100)
        .await
        .expect("stored");
    let is_referenced = |hash: &BlobHash| *hash == kept.hash;

    let young = fx
        .store
        .sweep(is_referenced, Duration::from_secs(3600))
        .await
        .expect("swept");
    assert_eq!(
        young,
        SweepReport {
            blobs_scanned: 2,
            ..SweepReport::default()
        }
    );
    assert!(
        fx.store.exists(&orphan.hash).await.expect("answers"),
        "too young to go"
    );

    let old = fx
        .store
        .sweep(is_referenced, Duration::ZERO)
        .await
        .expect("swept");

    assert_eq!(
        old,
        SweepReport {
            blobs_scanned: 2,
            blobs_removed: 1,
            temp_removed: 0,
            bytes_freed: 6
        }
    );
    assert!(matches!(
        fx.store.get(&orphan.hash, None).await,
        Err(FilesError::NotFound)
    ));
    assert_eq!(read(&fx.store, &kept.hash, None).await, b"referenced");
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 1, temp: 0 });
}

pub async fn sweep_removes_abandoned_uploads(fx: &Fixture) {
    (fx.plant_temp)().await;
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 0, temp: 1 });

    let young = fx
        .store
        .sweep(|_| true, Duration::from_secs(3600))
        .await
        .expect("swept");
    assert_eq!(young.temp_removed, 0, "an upload in progress is left alone");
    let old = fx
        .store
        .sweep(|_| true, Duration::ZERO)
        .await
        .expect("swept");

    assert_eq!(old.temp_removed, 1);
    assert_eq!((fx.leftovers)().await, Leftovers { blobs: 0, temp: 0 });
}

pub async fn the_store_says_what_it_is(fx: &Fixture) {
    assert!(fx.store.accepting_writes());
    assert!(["local", "s3"].contains(&fx.store.backend_name()));
    // Handlers hold a put across awaits: its future must be Send.
    fn assert_send<T: Send>(_: &T) {}
    let put = fx.store.put(chunked(b"x", 1), 1);
    assert_send(&put);
    drop(put);
}
