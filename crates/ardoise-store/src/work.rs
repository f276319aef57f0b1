//! Attachments, assignments' submissions and teachers' feedback.
//!
//! Bytes live in the blob store; these rows name blobs by content hash.
//! A submission is replaced whole: its row and its files change in one
//! transaction, so a reader (or a crash) sees the previous hand-in or the
//! new one, never a mix. Two tabs handing in at once are serialized by the
//! unique (homework, pupil) row: the last commit wins, whole.

use crate::{Store, StoreError, StoreResult};
use ardoise_core::{HomeworkId, PersonId, UnixTime};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// What an attachment belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OwnerKind {
    /// A diary lesson.
    Lesson,
    /// Homework (or an assignment).
    Homework,
    /// A pupil's submission.
    Submission,
    /// A teacher's feedback.
    Feedback,
    /// A message (messaging).
    Message,
}

impl OwnerKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerKind::Lesson => "lesson",
            OwnerKind::Homework => "homework",
            OwnerKind::Submission => "submission",
            OwnerKind::Feedback => "feedback",
            OwnerKind::Message => "message",
        }
    }

    fn parse(s: &str) -> StoreResult<OwnerKind> {
        Ok(match s {
            "lesson" => OwnerKind::Lesson,
            "homework" => OwnerKind::Homework,
            "submission" => OwnerKind::Submission,
            "feedback" => OwnerKind::Feedback,
            "message" => OwnerKind::Message,
            _ => return Err(StoreError::NotFound("attachment owner")),
        })
    }
}

/// A file to attach, already durable in the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInsert {
    /// SHA-256 of the content, lowercase hex.
    pub blob_hash: String,
    /// Cleaned file name as the user gave it.
    pub file_name: String,
    /// Type detected from the content.
    pub mime: String,
    /// Bytes.
    pub size: i64,
}

/// An attachment as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentView {
    /// Its id (used in download URLs).
    pub id: i64,
    /// What it belongs to.
    pub owner_kind: OwnerKind,
    /// The owner's id.
    pub owner_id: i64,
    /// SHA-256 of the content.
    pub blob_hash: String,
    /// File name.
    pub file_name: String,
    /// Detected type.
    pub mime: String,
    /// Bytes.
    pub size: i64,
}

pub(crate) fn attachment_from_row(r: &AnyRow) -> StoreResult<AttachmentView> {
    let kind: String = r.try_get("owner_kind")?;
    Ok(AttachmentView {
        id: r.try_get("id")?,
        owner_kind: OwnerKind::parse(&kind)?,
        owner_id: r.try_get("owner_id")?,
        blob_hash: r.try_get("blob_hash")?,
        file_name: r.try_get("file_name")?,
        mime: r.try_get("mime")?,
        size: r.try_get("size")?,
    })
}

const ATTACHMENT_COLUMNS: &str =
    "a.id, a.owner_kind, a.owner_id, a.blob_hash, a.file_name, a.mime, a.size";

/// Inserts attachments for an owner inside a transaction.
pub(crate) async fn insert_attachments(
    tx: &mut Transaction<'static, Any>,
    kind: OwnerKind,
    owner_id: i64,
    files: &[AttachmentInsert],
    now: UnixTime,
) -> StoreResult<()> {
    for (position, f) in files.iter().enumerate() {
        sqlx::query(
            "INSERT INTO attachments (owner_kind, owner_id, position, blob_hash, file_name, mime, size, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(kind.as_str())
        .bind(owner_id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(&f.blob_hash)
        .bind(&f.file_name)
        .bind(&f.mime)
        .bind(f.size)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "attachment"))?;
    }
    Ok(())
}

/// Removes an owner's attachments inside a transaction.
pub(crate) async fn delete_attachments(
    tx: &mut Transaction<'static, Any>,
    kind: OwnerKind,
    owner_id: i64,
) -> StoreResult<()> {
    sqlx::query("DELETE FROM attachments WHERE owner_kind = $1 AND owner_id = $2")
        .bind(kind.as_str())
        .bind(owner_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A pupil's hand-in.
#[derive(Debug, Clone)]
pub struct SubmissionInsert {
    pub homework_id: HomeworkId,
    pub pupil_id: PersonId,
    pub text_source: String,
    pub text_html: String,
    pub submitted_at: UnixTime,
    pub late: bool,
    pub files: Vec<AttachmentInsert>,
    /// Total bytes of text and files.
    pub total_size: i64,
    /// SHA-256 over the submission's content (the receipt's proof).
    pub receipt_hash: String,
}

/// A submission as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmissionView {
    pub id: i64,
    pub homework_id: HomeworkId,
    pub pupil_id: PersonId,
    /// 1 for the first hand-in, +1 at each replacement.
    pub revision: i64,
    pub text_html: String,
    pub submitted_at: UnixTime,
    pub late: bool,
    pub total_size: i64,
    pub receipt_hash: String,
    pub files: Vec<AttachmentView>,
}

/// Feedback to write.
#[derive(Debug, Clone)]
pub struct FeedbackInsert {
    pub homework_id: HomeworkId,
    pub pupil_id: PersonId,
    pub teacher_id: PersonId,
    pub comment_source: String,
    pub comment_html: String,
    /// The mark times 100 (15.5 → 1550), on the assignment's scale.
    pub mark_hundredths: Option<i64>,
    pub returned_at: UnixTime,
    /// An annotated file; `None` keeps the one returned before, if any.
    pub file: Option<AttachmentInsert>,
}

/// Feedback as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackView {
    pub id: i64,
    pub homework_id: HomeworkId,
    pub pupil_id: PersonId,
    pub teacher_name: String,
    pub comment_html: String,
    pub mark_hundredths: Option<i64>,
    pub returned_at: UnixTime,
    pub files: Vec<AttachmentView>,
}

const SUBMISSION_SELECT: &str = "SELECT id, homework_id, pupil_id, revision, text_html, submitted_at, late, total_size, receipt_hash FROM submissions";
const FEEDBACK_SELECT: &str = "SELECT f.id, f.homework_id, f.pupil_id, p.first_name || ' ' || upper(p.last_name) AS teacher_name, \
     f.comment_html, f.mark_hundredths, f.returned_at FROM feedback f JOIN people p ON p.id = f.teacher_id";

fn submission_from_row(r: &AnyRow) -> StoreResult<SubmissionView> {
    Ok(SubmissionView {
        id: r.try_get("id")?,
        homework_id: HomeworkId(r.try_get("homework_id")?),
        pupil_id: PersonId(r.try_get("pupil_id")?),
        revision: r.try_get("revision")?,
        text_html: r.try_get("text_html")?,
        submitted_at: r.try_get("submitted_at")?,
        late: r.try_get::<i64, _>("late")? != 0,
        total_size: r.try_get("total_size")?,
        receipt_hash: r.try_get("receipt_hash")?,
        files: Vec::new(),
    })
}

fn feedback_from_row(r: &AnyRow) -> StoreResult<FeedbackView> {
    Ok(FeedbackView {
        id: r.try_get("id")?,
        homework_id: HomeworkId(r.try_get("homework_id")?),
        pupil_id: PersonId(r.try_get("pupil_id")?),
        teacher_name: r.try_get("teacher_name")?,
        comment_html: r.try_get("comment_html")?,
        mark_hundredths: r.try_get("mark_hundredths")?,
        returned_at: r.try_get("returned_at")?,
        files: Vec::new(),
    })
}

impl Store {
    /// One attachment, by id.
    pub async fn find_attachment(&self, id: i64) -> StoreResult<Option<AttachmentView>> {
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments a WHERE a.id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(attachment_from_row).transpose()
    }

    /// An owner's attachments, in order.
    pub async fn attachments_of(
        &self,
        kind: OwnerKind,
        owner_id: i64,
    ) -> StoreResult<Vec<AttachmentView>> {
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments a WHERE a.owner_kind = $1 AND a.owner_id = $2 ORDER BY a.position, a.id"
        );
        let rows = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(owner_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(attachment_from_row).collect()
    }

    /// Attachments of a class's or group's lessons or homework dated
    /// within `[from, to]`, grouped by owner id.
    pub(crate) async fn audience_attachments(
        &self,
        kind: OwnerKind,
        audience: ardoise_core::Audience,
        from: &str,
        to: &str,
    ) -> StoreResult<HashMap<i64, Vec<AttachmentView>>> {
        let (table, date) = match kind {
            OwnerKind::Lesson => ("lessons", "lesson_on"),
            _ => ("homework", "due_on"),
        };
        let (column, id) = match audience {
            ardoise_core::Audience::Class(c) => ("class_id", c.0),
            ardoise_core::Audience::Group(g) => ("group_id", g.0),
        };
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments a JOIN {table} o ON o.id = a.owner_id \
             WHERE a.owner_kind = $1 AND o.{column} = $2 AND o.{date} >= $3 AND o.{date} <= $4 \
             ORDER BY a.owner_id, a.position, a.id"
        );
        let rows = sqlx::query(&sql)
            .bind(kind.as_str())
            .bind(id)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        let mut out: HashMap<i64, Vec<AttachmentView>> = HashMap::new();
        for r in &rows {
            let a = attachment_from_row(r)?;
            out.entry(a.owner_id).or_default().push(a);
        }
        Ok(out)
    }

    /// Hands in (or replaces) a pupil's submission, row and files together.
    pub async fn put_submission(&self, s: &SubmissionInsert) -> StoreResult<SubmissionView> {
        let mut tx = self.pool.begin().await?;
        // The upsert comes first so the transaction takes its write lock
        // (SQLite) or the row lock (PostgreSQL) before reading anything:
        // two concurrent hand-ins queue here instead of interleaving.
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO submissions (homework_id, pupil_id, revision, text_source, text_html, submitted_at, late, total_size, receipt_hash) \
             VALUES ($1, $2, 1, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (homework_id, pupil_id) DO UPDATE SET revision = submissions.revision + 1, \
             text_source = excluded.text_source, text_html = excluded.text_html, submitted_at = excluded.submitted_at, \
             late = excluded.late, total_size = excluded.total_size, receipt_hash = excluded.receipt_hash \
             RETURNING id",
        )
        .bind(s.homework_id.0)
        .bind(s.pupil_id.0)
        .bind(&s.text_source)
        .bind(&s.text_html)
        .bind(s.submitted_at)
        .bind(i64::from(s.late))
        .bind(s.total_size)
        .bind(&s.receipt_hash)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "submission"))?;
        delete_attachments(&mut tx, OwnerKind::Submission, id).await?;
        insert_attachments(&mut tx, OwnerKind::Submission, id, &s.files, s.submitted_at).await?;
        tx.commit().await?;
        self.find_submission(s.homework_id, s.pupil_id)
            .await?
            .ok_or(StoreError::NotFound("submission"))
    }

    /// A pupil's current submission for an assignment.
    pub async fn find_submission(
        &self,
        homework: HomeworkId,
        pupil: PersonId,
    ) -> StoreResult<Option<SubmissionView>> {
        let sql = format!("{SUBMISSION_SELECT} WHERE homework_id = $1 AND pupil_id = $2");
        let row = sqlx::query(&sql)
            .bind(homework.0)
            .bind(pupil.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut s) = row.as_ref().map(submission_from_row).transpose()? else {
            return Ok(None);
        };
        s.files = self.attachments_of(OwnerKind::Submission, s.id).await?;
        Ok(Some(s))
    }

    /// Every submission for an assignment, with files, by pupil.
    pub async fn homework_submissions(
        &self,
        homework: HomeworkId,
    ) -> StoreResult<Vec<SubmissionView>> {
        let sql = format!("{SUBMISSION_SELECT} WHERE homework_id = $1 ORDER BY pupil_id");
        let rows = sqlx::query(&sql)
            .bind(homework.0)
            .fetch_all(&self.pool)
            .await?;
        let mut subs = rows
            .iter()
            .map(submission_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let files_sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments a JOIN submissions s ON s.id = a.owner_id \
             WHERE a.owner_kind = 'submission' AND s.homework_id = $1 ORDER BY a.owner_id, a.position, a.id"
        );
        let file_rows = sqlx::query(&files_sql)
            .bind(homework.0)
            .fetch_all(&self.pool)
            .await?;
        let mut files: HashMap<i64, Vec<AttachmentView>> = HashMap::new();
        for r in &file_rows {
            let a = attachment_from_row(r)?;
            files.entry(a.owner_id).or_default().push(a);
        }
        for s in &mut subs {
            s.files = files.remove(&s.id).unwrap_or_default();
        }
        Ok(subs)
    }

    /// Returns (or updates) feedback to a pupil.
    pub async fn put_feedback(&self, f: &FeedbackInsert) -> StoreResult<FeedbackView> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO feedback (homework_id, pupil_id, teacher_id, comment_source, comment_html, mark_hundredths, returned_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (homework_id, pupil_id) DO UPDATE SET teacher_id = excluded.teacher_id, \
             comment_source = excluded.comment_source, comment_html = excluded.comment_html, \
             mark_hundredths = excluded.mark_hundredths, returned_at = excluded.returned_at \
             RETURNING id",
        )
        .bind(f.homework_id.0)
        .bind(f.pupil_id.0)
        .bind(f.teacher_id.0)
        .bind(&f.comment_source)
        .bind(&f.comment_html)
        .bind(f.mark_hundredths)
        .bind(f.returned_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "feedback"))?;
        if let Some(file) = &f.file {
            delete_attachments(&mut tx, OwnerKind::Feedback, id).await?;
            insert_attachments(
                &mut tx,
                OwnerKind::Feedback,
                id,
                std::slice::from_ref(file),
                f.returned_at,
            )
            .await?;
        }
        tx.commit().await?;
        self.find_feedback(f.homework_id, f.pupil_id)
            .await?
            .ok_or(StoreError::NotFound("feedback"))
    }

    /// The feedback returned to a pupil for an assignment.
    pub async fn find_feedback(
        &self,
        homework: HomeworkId,
        pupil: PersonId,
    ) -> StoreResult<Option<FeedbackView>> {
        let sql = format!("{FEEDBACK_SELECT} WHERE f.homework_id = $1 AND f.pupil_id = $2");
        let row = sqlx::query(&sql)
            .bind(homework.0)
            .bind(pupil.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(mut f) = row.as_ref().map(feedback_from_row).transpose()? else {
            return Ok(None);
        };
        f.files = self.attachments_of(OwnerKind::Feedback, f.id).await?;
        Ok(Some(f))
    }

    /// All feedback returned for an assignment (files not loaded).
    pub async fn homework_feedback(&self, homework: HomeworkId) -> StoreResult<Vec<FeedbackView>> {
        let sql = format!("{FEEDBACK_SELECT} WHERE f.homework_id = $1 ORDER BY f.pupil_id");
        let rows = sqlx::query(&sql)
            .bind(homework.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(feedback_from_row).collect()
    }

    /// Whether any pupil handed in work for this homework.
    pub async fn homework_has_submissions(&self, homework: HomeworkId) -> StoreResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM submissions WHERE homework_id = $1")
            .bind(homework.0)
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0)
    }

    /// The assignment and pupil a submission or feedback row belongs to.
    pub async fn work_owner(
        &self,
        kind: OwnerKind,
        id: i64,
    ) -> StoreResult<Option<(HomeworkId, PersonId)>> {
        let table = match kind {
            OwnerKind::Submission => "submissions",
            OwnerKind::Feedback => "feedback",
            _ => return Ok(None),
        };
        let row = sqlx::query(&format!(
            "SELECT homework_id, pupil_id FROM {table} WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> StoreResult<_> {
            Ok((
                HomeworkId(r.try_get("homework_id")?),
                PersonId(r.try_get("pupil_id")?),
            ))
        })
        .transpose()
    }

    /// Every blob hash a row names: attachments and documents, trashed
    /// ones included (the sweeper keeps these).
    pub async fn referenced_blobs(&self) -> StoreResult<std::collections::HashSet<String>> {
        let hashes: Vec<String> = sqlx::query_scalar(
            "SELECT blob_hash FROM attachments UNION SELECT blob_hash FROM documents",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(hashes.into_iter().collect())
    }
}
