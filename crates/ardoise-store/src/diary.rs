//! The homework diary: lessons, homework, and pupils' "done" ticks.

use crate::work::{
    delete_attachments, insert_attachments, AttachmentInsert, AttachmentView, OwnerKind,
};
use crate::{Store, StoreError, StoreResult};
use ardoise_core::{
    Audience, ClassId, GroupId, HomeworkId, LessonId, PersonId, SubjectId, UnixTime,
};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A new lesson.
#[derive(Debug, Clone)]
pub struct LessonInsertForm {
    /// The class or group it is for.
    pub audience: Audience,
    pub subject_id: SubjectId,
    pub teacher_id: PersonId,
    /// ISO date.
    pub lesson_on: String,
    pub title: String,
    /// What the teacher typed.
    pub content_source: String,
    /// The same, rendered to safe HTML.
    pub content_html: String,
    /// Hidden from pupils and parents before this time.
    pub publish_at: UnixTime,
    pub created_at: UnixTime,
    /// Files, already durable in the blob store.
    pub attachments: Vec<AttachmentInsert>,
}

/// What an assignment (homework to hand in) expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandIn {
    /// Hand-ins close at this time (unless late ones are allowed).
    pub deadline_at: UnixTime,
    /// Whether a hand-in after the deadline is accepted (marked late).
    pub late_allowed: bool,
    /// Marks out of this, if marked.
    pub mark_scale: Option<i64>,
}

/// New homework.
#[derive(Debug, Clone)]
pub struct HomeworkInsertForm {
    /// The class or group it is for.
    pub audience: Audience,
    pub subject_id: SubjectId,
    pub teacher_id: PersonId,
    /// ISO date.
    pub due_on: String,
    pub instructions_source: String,
    pub instructions_html: String,
    /// Estimated time, in minutes.
    pub minutes: Option<i64>,
    pub publish_at: UnixTime,
    pub created_at: UnixTime,
    /// Set when pupils hand work in.
    pub hand_in: Option<HandIn>,
    /// Files, already durable in the blob store.
    pub attachments: Vec<AttachmentInsert>,
}

/// A lesson as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LessonView {
    pub id: LessonId,
    /// The class or group it is for.
    pub audience: Audience,
    pub subject_id: SubjectId,
    pub subject_name: String,
    pub teacher_id: PersonId,
    pub teacher_name: String,
    pub lesson_on: String,
    pub title: String,
    pub content_html: String,
    pub publish_at: UnixTime,
    pub attachments: Vec<AttachmentView>,
}

/// Homework as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeworkView {
    pub id: HomeworkId,
    /// The class or group it is for.
    pub audience: Audience,
    pub subject_id: SubjectId,
    pub subject_name: String,
    pub teacher_id: PersonId,
    pub teacher_name: String,
    pub due_on: String,
    pub instructions_html: String,
    pub minutes: Option<i64>,
    pub publish_at: UnixTime,
    pub hand_in: Option<HandIn>,
    pub attachments: Vec<AttachmentView>,
}

const LESSON_SELECT: &str = "SELECT l.id, l.class_id, l.group_id, l.subject_id, s.name AS subject_name, l.teacher_id, \
     p.first_name || ' ' || upper(p.last_name) AS teacher_name, l.lesson_on, l.title, l.content_html, l.publish_at \
     FROM lessons l JOIN subjects s ON s.id = l.subject_id JOIN people p ON p.id = l.teacher_id";
const HOMEWORK_SELECT: &str = "SELECT h.id, h.class_id, h.group_id, h.subject_id, s.name AS subject_name, h.teacher_id, \
     p.first_name || ' ' || upper(p.last_name) AS teacher_name, h.due_on, h.instructions_html, h.minutes, h.publish_at, \
     h.hand_in, h.deadline_at, h.late_allowed, h.mark_scale \
     FROM homework h JOIN subjects s ON s.id = h.subject_id JOIN people p ON p.id = h.teacher_id";

fn audience_from_row(r: &AnyRow) -> StoreResult<Audience> {
    let class = r.try_get::<Option<i64>, _>("class_id")?.map(ClassId);
    let group = r.try_get::<Option<i64>, _>("group_id")?.map(GroupId);
    // The table's CHECK constraint makes exactly one of them set.
    Audience::from_columns(class, group)
        .ok_or(StoreError::NotFound("class or group of a diary row"))
}

/// The WHERE clause naming an audience's rows of table alias `t`, with its
/// id bound as `$1`.
fn audience_clause(alias: &str, audience: Audience) -> (String, i64) {
    match audience {
        Audience::Class(c) => (format!("{alias}.class_id = $1"), c.0),
        Audience::Group(g) => (format!("{alias}.group_id = $1"), g.0),
    }
}

fn lesson_from_row(r: &AnyRow) -> StoreResult<LessonView> {
    Ok(LessonView {
        id: LessonId(r.try_get("id")?),
        audience: audience_from_row(r)?,
        subject_id: SubjectId(r.try_get("subject_id")?),
        subject_name: r.try_get("subject_name")?,
        teacher_id: PersonId(r.try_get("teacher_id")?),
        teacher_name: r.try_get("teacher_name")?,
        lesson_on: r.try_get("lesson_on")?,
        title: r.try_get("title")?,
        content_html: r.try_get("content_html")?,
        publish_at: r.try_get("publish_at")?,
        attachments: Vec::new(),
    })
}

fn homework_from_row(r: &AnyRow) -> StoreResult<HomeworkView> {
    Ok(HomeworkView {
        id: HomeworkId(r.try_get("id")?),
        audience: audience_from_row(r)?,
        subject_id: SubjectId(r.try_get("subject_id")?),
        subject_name: r.try_get("subject_name")?,
        teacher_id: PersonId(r.try_get("teacher_id")?),
        teacher_name: r.try_get("teacher_name")?,
        due_on: r.try_get("due_on")?,
        instructions_html: r.try_get("instructions_html")?,
        minutes: r.try_get("minutes")?,
        publish_at: r.try_get("publish_at")?,
        hand_in: if r.try_get::<i64, _>("hand_in")? != 0 {
            Some(HandIn {
                deadline_at: r.try_get::<Option<i64>, _>("deadline_at")?.unwrap_or(0),
                late_allowed: r.try_get::<i64, _>("late_allowed")? != 0,
                mark_scale: r.try_get("mark_scale")?,
            })
        } else {
            None
        },
        attachments: Vec::new(),
    })
}

impl Store {
    /// Records a lesson.
    pub async fn insert_lesson(&self, f: &LessonInsertForm) -> StoreResult<LessonId> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lessons (class_id, group_id, subject_id, teacher_id, lesson_on, title, content_source, content_html, publish_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(f.audience.class_id().map(|c| c.0))
        .bind(f.audience.group_id().map(|g| g.0))
        .bind(f.subject_id.0)
        .bind(f.teacher_id.0)
        .bind(&f.lesson_on)
        .bind(&f.title)
        .bind(&f.content_source)
        .bind(&f.content_html)
        .bind(f.publish_at)
        .bind(f.created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "lesson"))?;
        insert_attachments(&mut tx, OwnerKind::Lesson, id, &f.attachments, f.created_at).await?;
        tx.commit().await?;
        Ok(LessonId(id))
    }

    /// Records homework for several classes at once (one teacher's "copy to
    /// another class"), all or none.
    pub async fn insert_homework(
        &self,
        forms: &[HomeworkInsertForm],
    ) -> StoreResult<Vec<HomeworkId>> {
        let mut tx = self.pool.begin().await?;
        let mut ids = Vec::new();
        for f in forms {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO homework (class_id, group_id, subject_id, teacher_id, due_on, instructions_source, instructions_html, minutes, publish_at, created_at, \
                 hand_in, deadline_at, late_allowed, mark_scale) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id",
            )
            .bind(f.audience.class_id().map(|c| c.0))
            .bind(f.audience.group_id().map(|g| g.0))
            .bind(f.subject_id.0)
            .bind(f.teacher_id.0)
            .bind(&f.due_on)
            .bind(&f.instructions_source)
            .bind(&f.instructions_html)
            .bind(f.minutes)
            .bind(f.publish_at)
            .bind(f.created_at)
            .bind(i64::from(f.hand_in.is_some()))
            .bind(f.hand_in.map(|h| h.deadline_at))
            .bind(i64::from(f.hand_in.is_some_and(|h| h.late_allowed)))
            .bind(f.hand_in.and_then(|h| h.mark_scale))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "homework"))?;
            insert_attachments(
                &mut tx,
                OwnerKind::Homework,
                id,
                &f.attachments,
                f.created_at,
            )
            .await?;
            ids.push(HomeworkId(id));
        }
        tx.commit().await?;
        Ok(ids)
    }

    /// A class's or group's lessons dated within `[from, to]` (ISO
    /// dates), by date.
    pub async fn audience_lessons(
        &self,
        audience: Audience,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<LessonView>> {
        let (clause, id) = audience_clause("l", audience);
        let sql = format!("{LESSON_SELECT} WHERE {clause} AND l.lesson_on >= $2 AND l.lesson_on <= $3 ORDER BY l.lesson_on, l.id");
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let mut lessons = rows
            .iter()
            .map(lesson_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut files = self
            .audience_attachments(OwnerKind::Lesson, audience, from, to)
            .await?;
        for l in &mut lessons {
            l.attachments = files.remove(&l.id.0).unwrap_or_default();
        }
        Ok(lessons)
    }

    /// A class's or group's homework due within `[from, to]` (ISO dates),
    /// by due date.
    pub async fn audience_homework(
        &self,
        audience: Audience,
        from: &str,
        to: &str,
    ) -> StoreResult<Vec<HomeworkView>> {
        let (clause, id) = audience_clause("h", audience);
        let sql = format!("{HOMEWORK_SELECT} WHERE {clause} AND h.due_on >= $2 AND h.due_on <= $3 ORDER BY h.due_on, s.name, h.id");
        let rows = sqlx::query(&sql)
            .bind(id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let mut homework = rows
            .iter()
            .map(homework_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut files = self
            .audience_attachments(OwnerKind::Homework, audience, from, to)
            .await?;
        for h in &mut homework {
            h.attachments = files.remove(&h.id.0).unwrap_or_default();
        }
        Ok(homework)
    }

    /// One piece of homework.
    pub async fn find_homework(&self, id: HomeworkId) -> StoreResult<Option<HomeworkView>> {
        let sql = format!("{HOMEWORK_SELECT} WHERE h.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut h) = row.as_ref().map(homework_from_row).transpose()? else {
            return Ok(None);
        };
        h.attachments = self.attachments_of(OwnerKind::Homework, h.id.0).await?;
        Ok(Some(h))
    }

    /// One lesson.
    pub async fn find_lesson(&self, id: LessonId) -> StoreResult<Option<LessonView>> {
        let sql = format!("{LESSON_SELECT} WHERE l.id = $1");
        let row = sqlx::query(&sql)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut l) = row.as_ref().map(lesson_from_row).transpose()? else {
            return Ok(None);
        };
        l.attachments = self.attachments_of(OwnerKind::Lesson, l.id.0).await?;
        Ok(Some(l))
    }

    /// Removes a lesson.
    pub async fn delete_lesson(&self, id: LessonId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        delete_attachments(&mut tx, OwnerKind::Lesson, id.0).await?;
        sqlx::query("DELETE FROM lessons WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Removes homework, its ticks and its files. Homework that pupils
    /// handed work in for is kept: what they wrote is never lost
    /// (`Conflict("submissions")`).
    pub async fn delete_homework(&self, id: HomeworkId) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        let handed_in: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM submissions WHERE homework_id = $1")
                .bind(id.0)
                .fetch_one(&mut *tx)
                .await?;
        if handed_in > 0 {
            return Err(StoreError::Conflict("submissions"));
        }
        delete_attachments(&mut tx, OwnerKind::Homework, id.0).await?;
        sqlx::query(
            "DELETE FROM attachments WHERE owner_kind = 'feedback' AND owner_id IN (SELECT id FROM feedback WHERE homework_id = $1)",
        )
        .bind(id.0)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM feedback WHERE homework_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM homework_done WHERE homework_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM homework WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Ticks or unticks homework as done by a pupil.
    pub async fn set_homework_done(
        &self,
        homework: HomeworkId,
        pupil: PersonId,
        done: bool,
        now: UnixTime,
    ) -> StoreResult<()> {
        if done {
            sqlx::query("INSERT INTO homework_done (homework_id, pupil_id, done_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(homework.0)
                .bind(pupil.0)
                .bind(now)
                .execute(&self.pool)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "homework_done"))?;
        } else {
            sqlx::query("DELETE FROM homework_done WHERE homework_id = $1 AND pupil_id = $2")
                .bind(homework.0)
                .bind(pupil.0)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// The homework a pupil has ticked, among that due on or after `from`.
    pub async fn done_homework(&self, pupil: PersonId, from: &str) -> StoreResult<Vec<HomeworkId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT d.homework_id FROM homework_done d JOIN homework h ON h.id = d.homework_id \
             WHERE d.pupil_id = $1 AND h.due_on >= $2 ORDER BY d.homework_id",
        )
        .bind(pupil.0)
        .bind(from)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(HomeworkId).collect())
    }
}
