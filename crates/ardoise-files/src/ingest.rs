//! What every backend does with the bytes of an upload as they arrive:
//! count them against the limit, hash them, and keep the first
//! [`SNIFF_LEN`] bytes for [`detect_type`]. It must not buffer the body.

use sha2::{Digest, Sha256};

use crate::detect::{detect_type, DetectedType, SNIFF_LEN};
use crate::{BlobHash, FilesError};

/// The running digest, size and head of one upload.
pub(crate) struct Ingest {
    hasher: Sha256,
    size: u64,
    head: Vec<u8>,
    max_size: u64,
}

/// An upload whose last byte has arrived.
pub(crate) struct Ingested {
    pub(crate) hash: BlobHash,
    pub(crate) size: u64,
    pub(crate) detected: DetectedType,
}

impl Ingest {
    pub(crate) fn new(max_size: u64) -> Ingest {
        Ingest {
            hasher: Sha256::new(),
            size: 0,
            head: Vec::new(),
            max_size,
        }
    }

    /// Accounts for one chunk; refuses it (before it is written anywhere)
    /// if it takes the upload past the limit.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> Result<(), FilesError> {
        let size = self.size.saturating_add(chunk.len() as u64);
        if size > self.max_size {
            return Err(FilesError::TooLarge { max: self.max_size });
        }
        self.size = size;
        self.hasher.update(chunk);
        if self.head.len() < SNIFF_LEN {
            let take = chunk.len().min(SNIFF_LEN - self.head.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Result<Ingested, FilesError> {
        if self.size == 0 {
            return Err(FilesError::Empty);
        }
        Ok(Ingested {
            hash: BlobHash::from_digest(&self.hasher.finalize()),
            size: self.size,
            detected: detect_type(&self.head),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_is_the_sha256_of_the_whole_content_whatever_the_chunks() {
        let mut ingest = Ingest::new(100);
        for chunk in [&b"ab"[..], b"", b"c"] {
            assert!(ingest.feed(chunk).is_ok());
        }
        let done = ingest.finish().ok();
        assert_eq!(
            done.as_ref().map(|d| d.hash.as_str()),
            Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(done.map(|d| d.size), Some(3));
    }

    #[test]
    fn the_limit_is_inclusive_and_nothing_is_counted_past_it() {
        let mut ingest = Ingest::new(4);
        assert!(ingest.feed(b"abcd").is_ok());
        assert!(matches!(
            ingest.feed(b"e"),
            Err(FilesError::TooLarge { max: 4 })
        ));
        assert!(matches!(Ingest::new(10).finish(), Err(FilesError::Empty)));
    }
}
