//! The diary in memory: each class's and group's lessons and homework
//! around today, and each pupil's ticks, loaded once and kept until a write
//! changes them. At 9:15 a whole class opens "À faire": one database read
//! serves them all. A pupil's "À faire" is their class's diary and their
//! groups' diaries put together; the class week view reads the same entry.
//!
//! A write invalidates exactly what it changes: a lesson or homework its
//! class or group (so a group's write reaches its members, not the rest of
//! their classes), a tick its pupil. A load that raced with a write is not
//! kept (generation check), so a stale view is never cached.

use crate::routes::diary::Fragments;
use ardoise_core::diary::{local_date, parse_zone, Tz, DEFAULT_ZONE};
use ardoise_core::{Audience, EstablishmentId, HomeworkId, PersonId};
use ardoise_store::{AudienceView, HomeworkView, LessonView, Store, StoreResult};
use chrono::NaiveDate;
use dashmap::DashMap;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Days of past lessons and late homework shown.
pub const PAST_DAYS: i64 = 14;
/// Days of future homework kept in memory.
pub const FUTURE_DAYS: i64 = 62;

/// A class's or group's diary around a day.
#[derive(Debug)]
pub struct ClassDiary {
    /// Changes whenever the content does (for ETags).
    pub version: u64,
    /// The day the window was computed for, in `zone`.
    pub today: NaiveDate,
    /// The establishment's time zone: days, deadlines and scheduled times
    /// are shown in it.
    pub zone: Tz,
    /// The class or group itself (name, establishment).
    pub target: Option<AudienceView>,
    /// Homework due from `today - PAST_DAYS` on, by due date.
    pub homework: Vec<HomeworkView>,
    /// Each homework's due date, parsed once (same order as `homework`).
    pub due: Vec<Option<NaiveDate>>,
    /// Lessons dated from `today - PAST_DAYS` to `today + FUTURE_DAYS`.
    pub lessons: Vec<LessonView>,
    /// The parts of "À faire" that are the same for every pupil, rendered
    /// once per (language, number of published lessons) and kept with this
    /// version of the diary (see `routes::diary::fragments`).
    pub rendered: Mutex<HashMap<(&'static str, usize), Arc<Fragments>>>,
    /// Week views rendered from this version (see
    /// `routes::diary::week_view`), by what makes them differ.
    pub weeks: Mutex<HashMap<WeekKey, Arc<str>>>,
}

/// What makes two renderings of a week differ: the language, the week,
/// whether scheduled items show, how many items are published by now, and
/// the viewer's session when they wrote items of that week (their delete
/// buttons carry the session's anti-forgery token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WeekKey {
    pub lang: &'static str,
    pub monday: NaiveDate,
    pub sees_scheduled: bool,
    pub published: usize,
    pub author_csrf: Option<String>,
}

/// Most week renderings kept per diary version.
pub const MAX_WEEKS: usize = 256;

impl ClassDiary {
    /// Whether `[from, to]` lies within the days this diary holds.
    pub fn covers(&self, from: NaiveDate, to: NaiveDate) -> bool {
        from >= self.today - chrono::Duration::days(PAST_DAYS)
            && to <= self.today + chrono::Duration::days(FUTURE_DAYS)
    }
}

/// A pupil's ticks.
#[derive(Debug)]
pub struct PupilTicks {
    /// Changes whenever the ticks do.
    pub version: u64,
    /// The day they were loaded for.
    pub today: NaiveDate,
    /// Homework ticked done.
    pub done: HashSet<HomeworkId>,
}

/// The cache.
#[derive(Debug, Default)]
pub struct DiaryCache {
    classes: DashMap<Audience, Arc<ClassDiary>>,
    ticks: DashMap<PersonId, Arc<PupilTicks>>,
    class_generation: DashMap<Audience, u64>,
    pupil_generation: DashMap<PersonId, u64>,
    zones: DashMap<EstablishmentId, Tz>,
    versions: AtomicU64,
}

fn window(today: NaiveDate) -> (String, String) {
    let from = today - chrono::Duration::days(PAST_DAYS);
    let to = today + chrono::Duration::days(FUTURE_DAYS);
    (
        from.format("%Y-%m-%d").to_string(),
        to.format("%Y-%m-%d").to_string(),
    )
}

impl DiaryCache {
    fn next_version(&self) -> u64 {
        self.versions.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// An establishment's time zone, from memory or read once.
    pub async fn zone(&self, store: &Store, establishment: EstablishmentId) -> StoreResult<Tz> {
        if let Some(z) = self.zones.get(&establishment) {
            return Ok(*z);
        }
        let zone = store
            .establishment_time_zone(establishment)
            .await?
            .as_deref()
            .and_then(parse_zone)
            .unwrap_or(DEFAULT_ZONE);
        self.zones.insert(establishment, zone);
        Ok(zone)
    }

    /// Forgets an establishment's time zone after it changed, and every
    /// diary (their days are computed in it).
    pub fn invalidate_zone(&self, establishment: EstablishmentId) {
        self.zones.remove(&establishment);
        let stale: Vec<Audience> = self
            .classes
            .iter()
            .filter(|d| {
                d.target
                    .as_ref()
                    .is_some_and(|t| t.establishment_id == establishment)
            })
            .map(|d| *d.key())
            .collect();
        for a in stale {
            self.invalidate_class(a);
        }
    }

    /// A class's or group's diary around today (at `now`, in its
    /// establishment's zone), from memory or loaded once.
    pub async fn class(
        &self,
        store: &Store,
        class: Audience,
        now: i64,
    ) -> StoreResult<Arc<ClassDiary>> {
        if let Some(d) = self
            .classes
            .get(&class)
            .filter(|d| d.today == local_date(now, d.zone))
        {
            return Ok(Arc::clone(d.value()));
        }
        let generation = self.class_generation.get(&class).map(|g| *g).unwrap_or(0);
        let target = store.find_audience(class).await?;
        let zone = match &target {
            Some(t) => self.zone(store, t.establishment_id).await?,
            None => DEFAULT_ZONE,
        };
        let today = local_date(now, zone);
        let (from, to) = window(today);
        let homework = store.audience_homework(class, &from, &to).await?;
        let lessons = store.audience_lessons(class, &from, &to).await?;
        let diary = Arc::new(ClassDiary {
            version: self.next_version(),
            today,
            zone,
            target,
            due: homework
                .iter()
                .map(|h| ardoise_core::diary::parse_date(&h.due_on))
                .collect(),
            homework,
            lessons,
            rendered: Mutex::default(),
            weeks: Mutex::default(),
        });
        if self.class_generation.get(&class).map(|g| *g).unwrap_or(0) == generation {
            self.classes.insert(class, Arc::clone(&diary));
        }
        Ok(diary)
    }

    /// Forgets a class's or group's diary after a write.
    pub fn invalidate_class(&self, class: Audience) {
        *self.class_generation.entry(class).or_insert(0) += 1;
        self.classes.remove(&class);
    }

    /// A pupil's ticks for `today`, from memory or loaded once.
    pub async fn ticks(
        &self,
        store: &Store,
        pupil: PersonId,
        today: NaiveDate,
    ) -> StoreResult<Arc<PupilTicks>> {
        if let Some(t) = self.ticks.get(&pupil).filter(|t| t.today == today) {
            return Ok(Arc::clone(t.value()));
        }
        let generation = self.pupil_generation.get(&pupil).map(|g| *g).unwrap_or(0);
        let (from, _) = window(today);
        let done = store
            .done_homework(pupil, &from)
            .await?
            .into_iter()
            .collect();
        let ticks = Arc::new(PupilTicks {
            version: self.next_version(),
            today,
            done,
        });
        if self.pupil_generation.get(&pupil).map(|g| *g).unwrap_or(0) == generation {
            self.ticks.insert(pupil, Arc::clone(&ticks));
        }
        Ok(ticks)
    }

    /// Forgets a pupil's ticks after a write.
    pub fn invalidate_ticks(&self, pupil: PersonId) {
        *self.pupil_generation.entry(pupil).or_insert(0) += 1;
        self.ticks.remove(&pupil);
    }
}
