//! The diary in memory: each class's lessons and homework around today, and
//! each pupil's ticks, loaded once and kept until a write changes them. At
//! 9:15 a whole class opens "À faire": one database read serves them all.
//!
//! A write invalidates exactly what it changes: a lesson or homework its
//! class, a tick its pupil. A load that raced with a write is not kept
//! (generation check), so a stale view is never cached.

use crate::routes::diary::Fragments;
use ardoise_core::{ClassId, HomeworkId, PersonId};
use ardoise_store::{ClassView, HomeworkView, LessonView, Store, StoreResult};
use chrono::NaiveDate;
use dashmap::DashMap;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Days of past lessons and late homework shown.
pub const PAST_DAYS: i64 = 14;
/// Days of future homework kept in memory.
pub const FUTURE_DAYS: i64 = 62;

/// A class's diary around a day.
#[derive(Debug)]
pub struct ClassDiary {
    /// Changes whenever the content does (for ETags).
    pub version: u64,
    /// The day the window was computed for.
    pub today: NaiveDate,
    /// The class itself (name, establishment).
    pub class: Option<ClassView>,
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
    classes: DashMap<ClassId, Arc<ClassDiary>>,
    ticks: DashMap<PersonId, Arc<PupilTicks>>,
    class_generation: DashMap<ClassId, u64>,
    pupil_generation: DashMap<PersonId, u64>,
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

    /// A class's diary for `today`, from memory or loaded once.
    pub async fn class(
        &self,
        store: &Store,
        class: ClassId,
        today: NaiveDate,
    ) -> StoreResult<Arc<ClassDiary>> {
        if let Some(d) = self.classes.get(&class).filter(|d| d.today == today) {
            return Ok(Arc::clone(d.value()));
        }
        let generation = self.class_generation.get(&class).map(|g| *g).unwrap_or(0);
        let (from, to) = window(today);
        let homework = store.class_homework(class, &from, &to).await?;
        let lessons = store.class_lessons(class, &from, &to).await?;
        let class_view = store.find_class(class).await?;
        let diary = Arc::new(ClassDiary {
            version: self.next_version(),
            today,
            class: class_view,
            due: homework
                .iter()
                .map(|h| ardoise_core::diary::parse_date(&h.due_on))
                .collect(),
            homework,
            lessons,
            rendered: Mutex::default(),
        });
        if self.class_generation.get(&class).map(|g| *g).unwrap_or(0) == generation {
            self.classes.insert(class, Arc::clone(&diary));
        }
        Ok(diary)
    }

    /// Forgets a class's diary after a write.
    pub fn invalidate_class(&self, class: ClassId) {
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
