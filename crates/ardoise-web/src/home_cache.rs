//! What home pages share, in memory: the establishment's name, a class with
//! its teachers, a parent's children, and the establishment's announcements.
//! At 9:15 every pupil of a class opens their home page; each of these took
//! a database trip per page (on SQLite, most of a home page's cost), while
//! they change a few times a year, or a few times a day.
//!
//! Each entry is kept with the store's version of what it was loaded from
//! ([`Store::directory_version`], [`Store::announcements_version`]), read
//! before the load, and is used only while that version has not moved: any
//! write made through this node's store makes the next page load it again.
//! Writes made elsewhere (the command line, another node) are not seen
//! there, so entries also age out after [`TTL`].
//!
//! Announcements are kept whole (every one not ended, up to [`LIVE_CAP`])
//! and each reader's are picked at request time, at that time, with
//! [`announcement_seen`]: one scheduled for 8:00 shows at 8:00, without a
//! write. Past the cap, pages ask the database as before. The timeline and
//! the unread count are a person's own and are not kept here.

use crate::routes::home::ChildSection;
use ardoise_core::messaging::AnnouncementScope;
use ardoise_core::{ClassId, EstablishmentId, PersonId, UnixTime};
use ardoise_store::{
    announcement_seen, AnnouncementView, ClassTeacherView, ClassView, Store, StoreResult,
};
use moka::sync::Cache;
use std::future::Future;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// How long an entry is kept at most: what another process or node wrote
/// shows within this time.
pub const TTL: Duration = Duration::from_secs(30);
/// Most announcements of an establishment kept (every one not ended).
pub const LIVE_CAP: usize = 500;
/// Most entries of each kind.
const CAPACITY: u64 = 50_000;
/// Most announcements kept over all establishments (a few kilobytes each).
const ANNOUNCEMENTS_CAPACITY: u64 = 100_000;

/// A class and its teachers.
#[derive(Debug)]
pub struct ClassEntry {
    pub class: Option<ClassView>,
    pub teachers: Vec<ClassTeacherView>,
}

/// An establishment's announcements not ended when loaded, newest first.
#[derive(Debug)]
struct Live {
    list: Vec<AnnouncementView>,
    /// False when there were more than [`LIVE_CAP`].
    complete: bool,
}

type Versioned<K, V> = Cache<K, (u64, Arc<V>)>;

/// The cache; one per node, in the application state.
pub struct HomeCache {
    names: Versioned<EstablishmentId, String>,
    classes: Versioned<ClassId, ClassEntry>,
    children: Versioned<PersonId, Vec<ChildSection>>,
    live: Versioned<EstablishmentId, Live>,
}

impl Default for HomeCache {
    fn default() -> Self {
        Self::with_ttl(TTL)
    }
}

fn cache<K, V>(ttl: Duration) -> Versioned<K, V>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
{
    Cache::builder()
        .max_capacity(CAPACITY)
        .time_to_live(ttl)
        .build()
}

/// The entry for `key` if it was loaded under `version`, else loads it and
/// keeps it with `version` (read by the caller before the load).
async fn versioned<K, V, F, Fut>(
    cache: &Versioned<K, V>,
    key: K,
    version: u64,
    load: F,
) -> StoreResult<Arc<V>>
where
    K: Hash + Eq + Send + Sync + 'static,
    V: Send + Sync + 'static,
    F: FnOnce() -> Fut,
    Fut: Future<Output = StoreResult<V>>,
{
    if let Some((v, entry)) = cache.get(&key) {
        if v == version {
            return Ok(entry);
        }
    }
    let entry = Arc::new(load().await?);
    cache.insert(key, (version, Arc::clone(&entry)));
    Ok(entry)
}

impl HomeCache {
    /// A cache whose entries age out after `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            names: cache(ttl),
            classes: cache(ttl),
            children: cache(ttl),
            // Weighed by their announcements, so that memory stays bounded
            // however many each establishment has.
            live: Cache::builder()
                .max_capacity(ANNOUNCEMENTS_CAPACITY)
                .weigher(|_, (_, live): &(u64, Arc<Live>)| {
                    u32::try_from(live.list.len())
                        .unwrap_or(u32::MAX)
                        .saturating_add(1)
                })
                .time_to_live(ttl)
                .build(),
        }
    }

    /// An establishment's name (empty if there is none by that id).
    pub async fn establishment_name(
        &self,
        store: &Store,
        id: EstablishmentId,
    ) -> StoreResult<Arc<String>> {
        let version = store.directory_version();
        versioned(&self.names, id, version, || async move {
            Ok(store
                .find_establishment(id)
                .await?
                .map(|e| e.name)
                .unwrap_or_default())
        })
        .await
    }

    /// A class and its teachers.
    pub async fn class(&self, store: &Store, id: ClassId) -> StoreResult<Arc<ClassEntry>> {
        let version = store.directory_version();
        versioned(&self.classes, id, version, || async move {
            Ok(ClassEntry {
                class: store.find_class(id).await?,
                teachers: store.class_teachers(id).await?,
            })
        })
        .await
    }

    /// A parent's children, each with their class's teachers.
    pub async fn children(
        &self,
        store: &Store,
        parent: PersonId,
    ) -> StoreResult<Arc<Vec<ChildSection>>> {
        let version = store.directory_version();
        versioned(&self.children, parent, version, || async move {
            let mut sections = Vec::new();
            for child in store.children_of(parent).await? {
                let teachers = match child.person.class_id {
                    Some(c) => self.class(store, c).await?.teachers.clone(),
                    None => vec![],
                };
                sections.push(ChildSection { child, teachers });
            }
            Ok(sections)
        })
        .await
    }

    /// The `limit` newest announcements current at `now` that `scope`
    /// sees: `store.announcements_for(scope, now, true, limit)`, from
    /// memory.
    pub async fn current_announcements(
        &self,
        store: &Store,
        scope: &AnnouncementScope,
        now: UnixTime,
        limit: usize,
    ) -> StoreResult<Vec<AnnouncementView>> {
        let version = store.announcements_version();
        let establishment = scope.establishment_id;
        let live = versioned(&self.live, establishment, version, || async move {
            let (list, complete) = store
                .live_announcements(establishment, now, LIVE_CAP)
                .await?;
            Ok(Live { list, complete })
        })
        .await?;
        if !live.complete {
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            return store.announcements_for(scope, now, true, limit).await;
        }
        Ok(live
            .list
            .iter()
            .filter(|a| announcement_seen(scope, a, now))
            .take(limit)
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ardoise_core::messaging::AnnouncementAudience;
    use ardoise_core::AnnouncementId;

    fn announcement(id: i64, audience: AnnouncementAudience, classes: &[i64]) -> AnnouncementView {
        AnnouncementView {
            id: AnnouncementId(id),
            establishment_id: EstablishmentId(1),
            author_id: PersonId(90),
            author_name: "A".into(),
            title: format!("a{id}"),
            body_html: String::new(),
            audience,
            class_names: vec![],
            class_ids: classes.iter().copied().map(ClassId).collect(),
            publish_from: 100,
            publish_until: Some(200),
        }
    }

    #[tokio::test]
    async fn an_entry_is_used_only_under_the_version_it_was_loaded_with() {
        let cache: Versioned<i64, String> = cache(TTL);
        let loads = std::sync::atomic::AtomicUsize::new(0);
        let load = |v: &'static str| {
            loads.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            async move { Ok(v.to_string()) }
        };
        assert_eq!(*versioned(&cache, 1, 7, || load("a")).await.unwrap(), "a");
        assert_eq!(*versioned(&cache, 1, 7, || load("b")).await.unwrap(), "a");
        assert_eq!(loads.load(std::sync::atomic::Ordering::Relaxed), 1);
        // A write moved the version: loaded again, and kept with the new one.
        assert_eq!(*versioned(&cache, 1, 8, || load("c")).await.unwrap(), "c");
        assert_eq!(*versioned(&cache, 1, 8, || load("d")).await.unwrap(), "c");
        // A load that fails keeps nothing.
        let failed = versioned(&cache, 2, 8, || async {
            Err::<String, _>(ardoise_store::StoreError::NotFound("x"))
        })
        .await;
        assert!(failed.is_err());
        assert_eq!(*versioned(&cache, 2, 8, || load("e")).await.unwrap(), "e");
    }

    #[test]
    fn who_sees_an_announcement_and_when() {
        let scope = AnnouncementScope {
            establishment_id: EstablishmentId(1),
            everything: false,
            parent: false,
            classes: vec![ClassId(5)],
            parent_classes: vec![],
            author: PersonId(7),
        };
        let all = announcement(1, AnnouncementAudience::All, &[]);
        assert!(!announcement_seen(&scope, &all, 99), "not yet");
        assert!(announcement_seen(&scope, &all, 100));
        assert!(!announcement_seen(&scope, &all, 200), "ended");
        let mine = announcement(2, AnnouncementAudience::Class, &[5, 6]);
        assert!(announcement_seen(&scope, &mine, 150));
        let other = announcement(3, AnnouncementAudience::Class, &[6]);
        assert!(!announcement_seen(&scope, &other, 150));
        let parents = announcement(4, AnnouncementAudience::ClassParents, &[5]);
        assert!(
            !announcement_seen(&scope, &parents, 150),
            "a pupil is not a parent of 5"
        );
        let elsewhere = AnnouncementView {
            establishment_id: EstablishmentId(2),
            ..announcement(5, AnnouncementAudience::All, &[])
        };
        assert!(!announcement_seen(&scope, &elsewhere, 150));
        let staff = AnnouncementScope {
            everything: true,
            ..scope
        };
        assert!(announcement_seen(&staff, &other, 150));
        assert!(
            !announcement_seen(&staff, &other, 250),
            "staff too, within the window"
        );
    }
}
