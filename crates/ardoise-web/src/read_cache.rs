//! Download decisions kept in memory: at 9:15 a whole class opens the same
//! worksheet, and a pupil's browser asks again for it (a `304` once it has
//! the bytes). The first request of a session for a document loads the
//! folder chain and the shares and asks the policy; the next ones find the
//! answer here, with no database trip.
//!
//! A decision is kept per session (whose actor — roles, classes, groups —
//! is fixed for its life), named by its token's hash (a row id may be
//! given again to the next session once this one is deleted), and per
//! document, with the generation of the documents it was computed under. Any change to documents, folders or
//! shares on this node starts a new generation, which invalidates every
//! decision at once: a revoked share, a trashed or moved file is never
//! served from here. It must only hold positive decisions; refusals are
//! always asked of the database again.

use ardoise_store::DocumentView;
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most decisions kept (about 200 bytes each).
const CAPACITY: u64 = 200_000;

/// The cache. One per node, in the application state.
pub struct ReadCache {
    generation: AtomicU64,
    entries: Cache<(u128, i64), (u64, Arc<DocumentView>)>,
}

impl Default for ReadCache {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

impl ReadCache {
    /// A cache of at most `capacity` decisions.
    pub fn with_capacity(capacity: u64) -> Self {
        Self {
            generation: AtomicU64::new(0),
            entries: Cache::new(capacity),
        }
    }

    /// The current generation: read it *before* loading what is decided,
    /// and give it to [`ReadCache::keep`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Documents, folders or shares changed: forget every decision. Call it
    /// after the change is committed.
    pub fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The key of a session: the first half of its token's SHA-256 (hex),
    /// unique to it; `None` (nothing kept) if it is not that.
    pub fn session_key(token_hash: &str) -> Option<u128> {
        token_hash
            .get(..32)
            .and_then(|h| u128::from_str_radix(h, 16).ok())
    }

    /// The document `session` may read, if decided in this generation.
    pub fn get(&self, session: u128, document: i64) -> Option<Arc<DocumentView>> {
        let (generation, doc) = self.entries.get(&(session, document))?;
        (generation == self.generation()).then_some(doc)
    }

    /// Keeps the decision that `session` may read `doc`, loaded in
    /// `generation`; one loaded before a change is dropped as stale.
    pub fn keep(&self, session: u128, generation: u64, doc: Arc<DocumentView>) {
        if generation == self.generation() {
            self.entries.insert((session, doc.id), (generation, doc));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn doc(id: i64) -> Arc<DocumentView> {
        Arc::new(DocumentView {
            id,
            folder_id: 1,
            name: "fiche.pdf".into(),
            blob_hash: "ab".repeat(32),
            mime: "application/pdf".into(),
            size: 3,
            owner_id: ardoise_core::PersonId(7),
            owner_name: "Anne DUPONT".into(),
            created_at: 0,
            updated_at: 0,
            trashed_at: None,
        })
    }

    #[test]
    fn a_decision_is_found_for_its_session_and_document_only() {
        let cache = ReadCache::default();
        let g = cache.generation();
        cache.keep(1, g, doc(10));
        assert_eq!(cache.get(1, 10).unwrap().id, 10);
        assert!(cache.get(2, 10).is_none(), "another session asks again");
        assert!(cache.get(1, 11).is_none());
    }

    #[test]
    fn a_session_is_named_by_its_token_hash() {
        let hash = "0123456789abcdef0123456789abcdef".repeat(2);
        assert_eq!(
            ReadCache::session_key(&hash),
            Some(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
        );
        assert_eq!(ReadCache::session_key("not hex"), None);
        assert_eq!(ReadCache::session_key(""), None);
    }

    #[test]
    fn any_change_forgets_every_decision() {
        let cache = ReadCache::default();
        let g = cache.generation();
        cache.keep(1, g, doc(10));
        cache.changed();
        assert!(cache.get(1, 10).is_none());
    }

    #[test]
    fn a_decision_loaded_before_a_change_is_not_kept() {
        let cache = ReadCache::default();
        let g = cache.generation();
        // The load ran while a share was revoked.
        cache.changed();
        cache.keep(1, g, doc(10));
        assert!(cache.get(1, 10).is_none());
    }
}
