//! The behaviour suite on the local-disk backend, plus what only a folder
//! can show: the layout of `blobs/` and `tmp/`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod suite;

use std::path::{Path, PathBuf};

use ardoise_files::{FileStore, FilesConfig};
use bytes::Bytes;
use futures::FutureExt;
use suite::{Fixture, Leftovers};

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries {
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

async fn fixture() -> Fixture {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let root = dir.path().to_owned();
    let store = FileStore::open(&FilesConfig::Local { root: root.clone() })
        .await
        .unwrap();
    let leftovers_root = root.clone();
    let temp_root = root.clone();
    Fixture {
        store,
        leftovers: Box::new(move || {
            let root = leftovers_root.clone();
            async move {
                Leftovers {
                    blobs: files_under(&root.join("blobs")).len(),
                    temp: files_under(&root.join("tmp")).len(),
                }
            }
            .boxed()
        }),
        plant_temp: Box::new(move || {
            let root = temp_root.clone();
            async move {
                std::fs::write(root.join("tmp").join("abandoned-upload"), b"half a file").unwrap();
            }
            .boxed()
        }),
        // The temporary folder goes when the last clone of `dir` does.
        cleanup: Box::new(move || {
            let dir = dir.clone();
            async move { drop(dir) }.boxed()
        }),
    }
}

all_suite_tests!(fixture);

#[tokio::test]
async fn opening_creates_the_blob_and_temp_folders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");

    let store = FileStore::open(&FilesConfig::Local { root: root.clone() })
        .await
        .unwrap();

    assert!(root.join("blobs").is_dir());
    assert!(root.join("tmp").is_dir());
    assert_eq!(store.backend_name(), "local");
}

#[tokio::test]
async fn a_blob_lives_under_two_levels_of_fan_out_named_by_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(&FilesConfig::Local {
        root: dir.path().to_owned(),
    })
    .await
    .unwrap();

    let stored = store
        .put_bytes(Bytes::from_static(b"hello"), 100)
        .await
        .unwrap();

    let hash = stored.hash.as_str();
    assert_eq!(
        hash,
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    let path = dir
        .path()
        .join("blobs")
        .join(&hash[..2])
        .join(&hash[2..4])
        .join(hash);
    assert_eq!(std::fs::read(path).unwrap(), b"hello");
}

#[tokio::test]
async fn sweep_leaves_files_it_did_not_write_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(&FilesConfig::Local {
        root: dir.path().to_owned(),
    })
    .await
    .unwrap();
    let stored = store
        .put_bytes(Bytes::from_static(b"hello"), 100)
        .await
        .unwrap();
    let hash = stored.hash.as_str();
    let misplaced = dir.path().join("blobs").join("00").join("00");
    std::fs::create_dir_all(&misplaced).unwrap();
    std::fs::write(misplaced.join(hash), b"not where the store puts it").unwrap();
    std::fs::write(
        dir.path().join("blobs").join("README"),
        b"an operator's note",
    )
    .unwrap();

    let report = store
        .sweep(|_| false, std::time::Duration::ZERO)
        .await
        .unwrap();

    assert_eq!(report.blobs_removed, 1);
    assert_eq!(files_under(&dir.path().join("blobs")).len(), 2);
}
