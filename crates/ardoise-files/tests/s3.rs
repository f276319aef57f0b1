//! The behaviour suite on the S3 backend, against a real S3-compatible
//! server (`scripts/s3.sh` starts one), plus the S3-only promises: the
//! bucket check at start-up and the in-memory cache of small blobs.
//!
//! The server comes from `ARDOISE_TEST_S3_ENDPOINT`; without it every test
//! here fails (never passes silently). Each test works under a random
//! prefix of the bucket and removes it at the end.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use std::sync::Arc;

use ardoise_files::{CacheLimits, FileStore, FilesConfig, FilesError};
use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use suite::{Fixture, Leftovers};

struct Server {
    endpoint: String,
    access_key: String,
    secret_key: String,
    bucket: String,
}

fn server() -> Server {
    let var =
        |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let Ok(endpoint) = std::env::var("ARDOISE_TEST_S3_ENDPOINT") else {
        panic!(
            "ARDOISE_TEST_S3_ENDPOINT is not set, so the S3 tests cannot run. Start the test \
             server with `scripts/s3.sh` and run with \
             ARDOISE_TEST_S3_ENDPOINT=http://127.0.0.1:9000 (scripts/test does both)."
        );
    };
    Server {
        endpoint,
        access_key: var("ARDOISE_TEST_S3_ACCESS_KEY", "ardoise-test"),
        secret_key: var("ARDOISE_TEST_S3_SECRET_KEY", "ardoise-test-secret"),
        bucket: var("ARDOISE_TEST_S3_BUCKET", "ardoise-test"),
    }
}

fn config(server: &Server, prefix: &str) -> FilesConfig {
    FilesConfig::S3 {
        endpoint: Some(server.endpoint.clone()),
        bucket: server.bucket.clone(),
        region: "us-east-1".to_owned(),
        access_key_id: server.access_key.clone(),
        secret_access_key: server.secret_key.clone(),
        allow_http: true,
        prefix: Some(prefix.to_owned()),
    }
}

/// A client of its own, to look at the bucket behind the store's back.
fn direct_client(server: &Server) -> Arc<AmazonS3> {
    Arc::new(
        AmazonS3Builder::new()
            .with_endpoint(&server.endpoint)
            .with_bucket_name(&server.bucket)
            .with_region("us-east-1")
            .with_access_key_id(&server.access_key)
            .with_secret_access_key(&server.secret_key)
            .with_allow_http(true)
            .build()
            .unwrap(),
    )
}

async fn count(client: &AmazonS3, prefix: &Path) -> usize {
    client
        .list(Some(prefix))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .len()
}

fn random_prefix() -> String {
    format!("t-{:016x}", rand::random::<u64>())
}

async fn open(cache: CacheLimits) -> (FileStore, Arc<AmazonS3>, Path) {
    let server = server();
    let prefix = random_prefix();
    let store = FileStore::open_with_cache(&config(&server, &prefix), cache)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "cannot reach the test S3 server at {} ({e}): start it with scripts/s3.sh",
                server.endpoint
            )
        });
    (store, direct_client(&server), Path::from(prefix))
}

async fn fixture() -> Fixture {
    let (store, client, prefix) = open(CacheLimits::default()).await;
    let (c1, c2, c3) = (client.clone(), client.clone(), client);
    let (p1, p2, p3) = (prefix.clone(), prefix.clone(), prefix);
    Fixture {
        store,
        leftovers: Box::new(move || {
            let (client, prefix) = (c1.clone(), p1.clone());
            async move {
                Leftovers {
                    blobs: count(&client, &prefix.clone().join("blobs")).await,
                    temp: count(&client, &prefix.join("tmp")).await,
                }
            }
            .boxed()
        }),
        plant_temp: Box::new(move || {
            let (client, prefix) = (c2.clone(), p2.clone());
            async move {
                let key = prefix.join("tmp").join("abandoned-upload");
                client
                    .put(&key, Bytes::from_static(b"a whole upload").into())
                    .await
                    .unwrap();
            }
            .boxed()
        }),
        cleanup: Box::new(move || {
            let (client, prefix) = (c3.clone(), p3.clone());
            async move {
                let keys = client
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location)
                    .boxed();
                client
                    .delete_stream(keys)
                    .try_collect::<Vec<_>>()
                    .await
                    .unwrap();
            }
            .boxed()
        }),
    }
}

all_suite_tests!(fixture);

#[tokio::test]
async fn opening_a_missing_bucket_fails_clearly() {
    let server = server();
    let mut config = config(&server, "x");
    if let FilesConfig::S3 { bucket, .. } = &mut config {
        *bucket = "ardoise-no-such-bucket".to_owned();
    }

    let result = FileStore::open(&config).await;

    assert!(matches!(result, Err(FilesError::Backend(_))), "{result:?}");
}

#[tokio::test]
async fn opening_with_a_wrong_secret_fails_clearly() {
    let server = server();
    let mut config = config(&server, "x");
    if let FilesConfig::S3 {
        secret_access_key, ..
    } = &mut config
    {
        *secret_access_key = "not-the-secret".to_owned();
    }

    let result = FileStore::open(&config).await;

    assert!(matches!(result, Err(FilesError::Backend(_))), "{result:?}");
    assert!(
        !format!("{config:?}").contains("not-the-secret"),
        "Debug hides the secret"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_blob_read_once_is_then_served_from_memory() {
    let (store, client, prefix) = open(CacheLimits::default()).await;
    let content = suite::pseudo_random(2 * 1024 * 1024, 7);
    let stored = store
        .put_bytes(Bytes::from(content.clone()), 10 * 1024 * 1024)
        .await
        .unwrap();
    // Many readers at once: the first miss loads, the others wait for it.
    let reads = (0..50).map(|_| {
        let store = store.clone();
        let hash = stored.hash.clone();
        tokio::spawn(async move { suite::read(&store, &hash, Some(0..1024)).await })
    });
    for read in futures::future::join_all(reads).await {
        assert_eq!(read.unwrap(), content[..1024]);
    }

    // Gone from the bucket, yet still served: the reads come from memory.
    let key = prefix
        .clone()
        .join("blobs")
        .join(&stored.hash.as_str()[..2])
        .join(&stored.hash.as_str()[2..4])
        .join(stored.hash.as_str());
    client.delete(&key).await.unwrap();

    assert!(suite::read(&store, &stored.hash, None).await == content);
    assert_eq!(
        suite::read(&store, &stored.hash, Some(10..20)).await,
        content[10..20]
    );
    assert_eq!(
        store.size(&stored.hash).await.unwrap(),
        Some(content.len() as u64)
    );
}

#[tokio::test]
async fn a_blob_over_the_cache_limit_is_always_read_from_the_bucket() {
    let (store, client, prefix) = open(CacheLimits {
        max_blob_size: 1000,
        total_size: 1_000_000,
    })
    .await;
    let content = suite::pseudo_random(5000, 8);
    let stored = store
        .put_bytes(Bytes::from(content.clone()), 10_000)
        .await
        .unwrap();
    assert_eq!(
        suite::read(&store, &stored.hash, Some(4000..5000)).await,
        content[4000..]
    );

    let key = prefix
        .join("blobs")
        .join(&stored.hash.as_str()[..2])
        .join(&stored.hash.as_str()[2..4])
        .join(stored.hash.as_str());
    client.delete(&key).await.unwrap();

    let result = store.get(&stored.hash, None).await;
    assert!(matches!(result, Err(FilesError::NotFound)), "{result:?}");
}
