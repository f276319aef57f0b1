//! Messaging: conversations, messages with their recorded recipients and
//! read state, drafts, search, communication rules, containment
//! (suspensions, quarantines, reports) and announcements; and the timeline
//! of what is new for a person.
//!
//! Visibility is decided in every query: a person reads a message only if
//! they sent it or are one of its recorded recipients, and never while it
//! is quarantined (`m.quarantine_id IS NULL`, see [`VISIBLE`]). A message
//! and all its recipient rows and files are written in one transaction, so
//! no recipient ever sees half of it.
//!
//! Lists of ids are written into the SQL as integer literals: they are
//! `i64` values formatted by Rust, never text from a request, and this
//! keeps the `$N` numbering of both engines simple.

use crate::work::{insert_attachments, AttachmentInsert, AttachmentView, OwnerKind};
use crate::{Store, StoreError, StoreResult};
use ardoise_core::messaging::{
    AnnouncementAudience, AnnouncementScope, Audience, CommRules, Contact,
};
use ardoise_core::{
    AnnouncementId, ClassId, ConversationId, DraftId, EstablishmentId, GroupId, MessageId,
    PersonId, QuarantineId, ReportId, Roles, UnixTime,
};
use sqlx::any::AnyRow;
use sqlx::Row;
use std::collections::HashMap;

use crate::binds::{bind_all, bound, Binds};

/// Recipient rows per INSERT statement when a message is sent.
const RECIPIENT_BATCH: usize = 500;

/// The condition for "message `m` is visible to person `$1`".
const VISIBLE: &str = "m.quarantine_id IS NULL AND (m.sender_id = $1 OR EXISTS \
     (SELECT 1 FROM message_recipients r WHERE r.message_id = m.id AND r.person_id = $1))";

/// A new message: the first of a new conversation, or a reply.
#[derive(Debug, Clone)]
pub struct MessageInsert {
    /// `None` starts a conversation.
    pub conversation_id: Option<ConversationId>,
    /// For a new conversation: its establishment, subject and kind.
    pub establishment_id: EstablishmentId,
    pub subject: String,
    /// Sent to a whole class, group, parents or teachers of a class.
    pub broadcast: bool,
    pub sender_id: PersonId,
    pub body_source: String,
    pub body_html: String,
    /// Who it was sent to, in words.
    pub recipients_label: String,
    /// Every recipient, resolved now; the sender is left out.
    pub recipients: Vec<PersonId>,
    pub sent_at: UnixTime,
    pub files: Vec<AttachmentInsert>,
}

/// One line of an inbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxLine {
    pub conversation_id: ConversationId,
    pub subject: String,
    pub last_at: UnixTime,
    pub last_sender: String,
    pub messages: i64,
    pub unread: i64,
}

/// A conversation as one participant sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationView {
    pub id: ConversationId,
    pub establishment_id: EstablishmentId,
    pub subject: String,
    pub creator_id: PersonId,
    pub broadcast: bool,
    pub messages: Vec<MessageView>,
}

/// A message as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: PersonId,
    pub sender_name: String,
    pub body_html: String,
    pub recipients_label: String,
    pub recipient_count: i64,
    pub sent_at: UnixTime,
    /// For the reader: not read before this visit.
    pub unread: bool,
    pub files: Vec<AttachmentView>,
}

/// A search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub subject: String,
    pub sender_name: String,
    pub sent_at: UnixTime,
    /// The start of the message's text.
    pub excerpt: String,
}

/// A draft.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DraftView {
    pub id: DraftId,
    pub subject: String,
    pub body: String,
    /// Encoded audiences (`person:12 class:3`).
    pub recipients: String,
    pub updated_at: UnixTime,
}

/// An account whose sending is suspended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuspensionView {
    pub person_id: PersonId,
    pub name: String,
    pub login: String,
    pub by_name: String,
    pub at: UnixTime,
    pub reason: String,
}

/// A quarantine decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineView {
    pub id: QuarantineId,
    pub sender_id: PersonId,
    pub sender_name: String,
    pub sender_establishment: EstablishmentId,
    pub from_at: UnixTime,
    pub to_at: UnixTime,
    pub decided_by: String,
    pub decided_at: UnixTime,
    pub reason: String,
    pub message_count: i64,
    pub lifted_at: Option<UnixTime>,
}

/// A quarantined message, for the investigation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldMessage {
    pub id: MessageId,
    pub subject: String,
    pub body_html: String,
    pub recipients_label: String,
    pub recipient_count: i64,
    pub sent_at: UnixTime,
}

/// A report of a message to staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportView {
    pub id: ReportId,
    pub message_id: MessageId,
    pub sender_id: PersonId,
    pub sender_name: String,
    pub sender_login: String,
    pub establishment_id: EstablishmentId,
    pub reporter_name: String,
    pub reason: String,
    pub reported_at: UnixTime,
    pub body_html: String,
    pub quarantined: bool,
}

/// A new announcement.
#[derive(Debug, Clone)]
pub struct AnnouncementInsert {
    pub establishment_id: EstablishmentId,
    pub author_id: PersonId,
    pub title: String,
    pub body_source: String,
    pub body_html: String,
    pub audience: AnnouncementAudience,
    pub classes: Vec<ClassId>,
    pub publish_from: UnixTime,
    pub publish_until: Option<UnixTime>,
    pub created_at: UnixTime,
}

/// An announcement as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementView {
    pub id: AnnouncementId,
    pub establishment_id: EstablishmentId,
    pub author_id: PersonId,
    pub author_name: String,
    pub title: String,
    pub body_html: String,
    pub audience: AnnouncementAudience,
    pub class_names: Vec<String>,
    /// The classes of a `class` or `class_parents` announcement, in the
    /// order of their names.
    pub class_ids: Vec<ClassId>,
    pub publish_from: UnixTime,
    pub publish_until: Option<UnixTime>,
}

/// What kind of news a timeline item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineKind {
    Homework,
    Message,
    Announcement,
    Feedback,
}

impl TimelineKind {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            TimelineKind::Homework => "homework",
            TimelineKind::Message => "message",
            TimelineKind::Announcement => "announcement",
            TimelineKind::Feedback => "feedback",
        }
    }
}

/// One piece of news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineItem {
    pub kind: TimelineKind,
    /// The homework, conversation, announcement or homework (feedback).
    pub id: i64,
    /// For feedback: whose.
    pub pupil_id: Option<PersonId>,
    pub at: UnixTime,
    /// A subject name, a conversation's subject, an announcement's title.
    pub title: String,
    /// Who: a teacher, a sender, an author.
    pub by: String,
}

/// Whose news a timeline gathers; computed by the web layer from the
/// policy.
#[derive(Debug, Clone)]
pub struct TimelineScope {
    pub person_id: PersonId,
    /// Classes whose published homework is news (a pupil's, a parent's
    /// children's).
    pub homework_classes: Vec<ClassId>,
    /// Teaching groups whose published homework is news (a pupil's
    /// language or option groups, their children's for a parent).
    pub homework_groups: Vec<GroupId>,
    /// Pupils whose returned feedback is news (oneself, one's children).
    pub feedback_pupils: Vec<PersonId>,
    pub announcements: AnnouncementScope,
}

/// How many messages `$1` has not read (quarantined ones never count).
const UNREAD_COUNT: &str =
    "SELECT COUNT(*) FROM message_recipients r JOIN messages m ON m.id = r.message_id \
     WHERE r.person_id = $1 AND r.unread = 1 AND m.quarantine_id IS NULL";

/// The columns of an [`AnnouncementView`] (see `announcement_from_row`),
/// from `announcements a` and its author `p`.
const ANNOUNCEMENT_SELECT: &str = "SELECT a.id, a.establishment_id, a.author_id, \
     p.first_name || ' ' || upper(p.last_name) AS author_name, \
     a.title, a.body_html, a.audience, a.publish_from, a.publish_until FROM announcements a \
     JOIN people p ON p.id = a.author_id";

/// The timeline's query: `$1` the person, `$2` now, then the values
/// returned (ids, in the order they appear), then the limit and offset.
/// With `unread`, each row also carries the person's unread count
/// ([`UNREAD_COUNT`], as `unread`): one trip to the database for the home
/// page.
fn timeline_query(scope: &TimelineScope, unread: bool) -> (String, Vec<i64>) {
    let mut binds = Binds::from(3);
    let classes = binds.list(scope.homework_classes.iter().map(|c| c.0));
    let groups = binds.list(scope.homework_groups.iter().map(|g| g.0));
    let ann = announcement_where(
        &AnnouncementScope {
            // The timeline is one's own news: staff see the
            // announcements meant for them, not every one.
            everything: false,
            ..scope.announcements.clone()
        },
        &scope.announcements.establishment_id.0.to_string(),
        &mut binds,
    );
    let pupils = binds.list(scope.feedback_pupils.iter().map(|p| p.0));
    let (limit_at, offset_at) = (binds.next, binds.next + 1);
    let sql = format!(
        "SELECT kind, id, pupil_id, happened_at, title, who{unread_column} FROM ( \
         SELECT 'message' AS kind, m.conversation_id AS id, CAST(NULL AS BIGINT) AS pupil_id, m.sent_at AS happened_at, c.subject AS title, \
           {SENDER_NAME} AS who \
           FROM message_recipients r JOIN messages m ON m.id = r.message_id \
           JOIN conversations c ON c.id = m.conversation_id JOIN people s ON s.id = m.sender_id \
           WHERE r.person_id = $1 AND m.quarantine_id IS NULL \
         UNION ALL \
         SELECT 'homework', h.id, CAST(NULL AS BIGINT), h.publish_at, sj.name, t.first_name || ' ' || upper(t.last_name) \
           FROM homework h JOIN subjects sj ON sj.id = h.subject_id JOIN people t ON t.id = h.teacher_id \
           WHERE h.publish_at <= $2 AND (h.class_id IN ({classes}) OR h.group_id IN ({groups})) \
         UNION ALL \
         SELECT 'announcement', a.id, CAST(NULL AS BIGINT), a.publish_from, a.title, p.first_name || ' ' || upper(p.last_name) \
           FROM announcements a JOIN people p ON p.id = a.author_id \
           WHERE {ann} AND a.publish_from <= $2 AND (a.publish_until IS NULL OR a.publish_until > $2) \
         UNION ALL \
         SELECT 'feedback', f.homework_id, f.pupil_id, f.returned_at, sj.name, t.first_name || ' ' || upper(t.last_name) \
           FROM feedback f JOIN homework h ON h.id = f.homework_id JOIN subjects sj ON sj.id = h.subject_id \
           JOIN people t ON t.id = f.teacher_id WHERE f.pupil_id IN ({pupils}) \
         ) news ORDER BY happened_at DESC, kind, id DESC LIMIT ${limit_at} OFFSET ${offset_at}",
        unread_column = if unread {
            format!(", ({UNREAD_COUNT}) AS unread")
        } else {
            String::new()
        },
    );
    (sql, binds.values)
}

fn message_from_row(r: &AnyRow) -> StoreResult<MessageView> {
    Ok(MessageView {
        id: MessageId(r.try_get("id")?),
        conversation_id: ConversationId(r.try_get("conversation_id")?),
        sender_id: PersonId(r.try_get("sender_id")?),
        sender_name: r.try_get("sender_name")?,
        body_html: r.try_get("body_html")?,
        recipients_label: r.try_get("recipients_label")?,
        recipient_count: r.try_get("recipient_count")?,
        sent_at: r.try_get("sent_at")?,
        unread: r.try_get::<i64, _>("unread")? != 0,
        files: Vec::new(),
    })
}

const SENDER_NAME: &str = "s.first_name || ' ' || upper(s.last_name)";

/// The announcements `scope` sees, the author and the classes bound to
/// `binds`' placeholders; `establishment` is how the query names the
/// establishment (a placeholder, or a literal).
fn announcement_where(scope: &AnnouncementScope, establishment: &str, binds: &mut Binds) -> String {
    if scope.everything {
        return format!("a.establishment_id = {establishment}");
    }
    // In the order they appear in the text.
    let author = binds.one(scope.author.0);
    let classes = binds.list(scope.classes.iter().map(|c| c.0));
    let parent_classes = binds.list(scope.parent_classes.iter().map(|c| c.0));
    format!(
        "a.establishment_id = {establishment} AND (a.author_id = {author} OR a.audience = 'all' \
         OR (a.audience = 'parents' AND {parent} = 1) \
         OR (a.audience = 'class' AND EXISTS (SELECT 1 FROM announcement_classes ac WHERE ac.announcement_id = a.id AND ac.class_id IN ({classes}))) \
         OR (a.audience = 'class_parents' AND EXISTS (SELECT 1 FROM announcement_classes ac WHERE ac.announcement_id = a.id AND ac.class_id IN ({parent_classes}))))",
        parent = i64::from(scope.parent),
    )
}

/// Whether `scope` sees announcement `a` among the current ones at `now`:
/// what `announcements_for(scope, now, true, ..)` asks the database
/// (`announcement_where` and the window), decided in memory. Keep the two
/// together; a test checks that they agree.
pub fn announcement_seen(scope: &AnnouncementScope, a: &AnnouncementView, now: UnixTime) -> bool {
    let current = a.publish_from <= now && a.publish_until.is_none_or(|until| until > now);
    let meant = scope.everything
        || a.author_id == scope.author
        || match a.audience {
            AnnouncementAudience::All => true,
            AnnouncementAudience::Parents => scope.parent,
            AnnouncementAudience::Class => a.class_ids.iter().any(|c| scope.classes.contains(c)),
            AnnouncementAudience::ClassParents => {
                a.class_ids.iter().any(|c| scope.parent_classes.contains(c))
            }
        };
    a.establishment_id == scope.establishment_id && current && meant
}

impl Store {
    /// Sends a message: the conversation (if new), the message, one row
    /// per recipient (in batches) and the files, in one transaction.
    pub async fn send_message(
        &self,
        m: &MessageInsert,
    ) -> StoreResult<(ConversationId, MessageId)> {
        let mut tx = self.pool.begin().await?;
        let conversation = match m.conversation_id {
            Some(c) => c.0,
            None => sqlx::query_scalar(
                "INSERT INTO conversations (establishment_id, subject, creator_id, broadcast, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(m.establishment_id.0)
            .bind(&m.subject)
            .bind(m.sender_id.0)
            .bind(i64::from(m.broadcast))
            .bind(m.sent_at)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "conversation"))?,
        };
        let count = i64::try_from(m.recipients.len()).unwrap_or(i64::MAX);
        let message: i64 = sqlx::query_scalar(
            "INSERT INTO messages (conversation_id, sender_id, body_source, body_html, recipients_label, recipient_count, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(conversation)
        .bind(m.sender_id.0)
        .bind(&m.body_source)
        .bind(&m.body_html)
        .bind(&m.recipients_label)
        .bind(count)
        .bind(m.sent_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "message"))?;
        for chunk in m.recipients.chunks(RECIPIENT_BATCH) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("($1, ${}, 1)", i + 2))
                .collect();
            let sql = format!(
                "INSERT INTO message_recipients (message_id, person_id, unread) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(message);
            for p in chunk {
                q = q.bind(p.0);
            }
            q.execute(&mut *tx)
                .await
                .map_err(|e| StoreError::from_sqlx(e, "recipient"))?;
        }
        insert_attachments(&mut tx, OwnerKind::Message, message, &m.files, m.sent_at).await?;
        tx.commit().await?;
        Ok((ConversationId(conversation), MessageId(message)))
    }

    /// A person's conversations with at least one message they may see,
    /// latest first, with the number of their unread messages.
    pub async fn inbox(
        &self,
        me: PersonId,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<InboxLine>> {
        let sql = format!(
            "SELECT c.id, c.subject, MAX(m.sent_at) AS last_at, MAX(m.id) AS last_id, COUNT(*) AS messages, \
             COUNT(CASE WHEN m.sender_id <> $1 AND EXISTS (SELECT 1 FROM message_recipients u WHERE u.message_id = m.id \
             AND u.person_id = $1 AND u.unread = 1) THEN 1 END) AS unread \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE {VISIBLE} \
             GROUP BY c.id, c.subject ORDER BY last_id DESC LIMIT $2 OFFSET $3"
        );
        let rows = sqlx::query(&sql)
            .bind(me.0)
            .bind(limit.clamp(1, 200))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::new();
        let mut last_ids = Vec::new();
        for r in &rows {
            last_ids.push(r.try_get::<i64, _>("last_id")?);
            out.push(InboxLine {
                conversation_id: ConversationId(r.try_get("id")?),
                subject: r.try_get("subject")?,
                last_at: r.try_get("last_at")?,
                last_sender: String::new(),
                messages: r.try_get("messages")?,
                unread: r.try_get("unread")?,
            });
        }
        if !last_ids.is_empty() {
            let mut binds = Binds::from(1);
            let sql = format!(
                "SELECT m.id, {SENDER_NAME} AS name FROM messages m JOIN people s ON s.id = m.sender_id WHERE m.id IN ({})",
                binds.list(last_ids.iter().copied())
            );
            let names: HashMap<i64, String> = binds
                .query(&sql)
                .fetch_all(&self.pool)
                .await?
                .iter()
                .map(|r| Ok((r.try_get("id")?, r.try_get("name")?)))
                .collect::<StoreResult<_>>()?;
            for (line, id) in out.iter_mut().zip(last_ids) {
                line.last_sender = names.get(&id).cloned().unwrap_or_default();
            }
        }
        Ok(out)
    }

    /// How many messages a person has not read (quarantined ones never
    /// count).
    pub async fn unread_count(&self, me: PersonId) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(UNREAD_COUNT)
            .bind(me.0)
            .fetch_one(&self.pool)
            .await?)
    }

    /// A conversation with the messages `me` may see, oldest first; `None`
    /// if they may see none (not a participant, or all quarantined).
    pub async fn conversation_for(
        &self,
        me: PersonId,
        id: ConversationId,
    ) -> StoreResult<Option<ConversationView>> {
        let sql = format!(
            "SELECT m.id, m.conversation_id, m.sender_id, {SENDER_NAME} AS sender_name, m.body_html, m.recipients_label, \
             m.recipient_count, m.sent_at, \
             COALESCE((SELECT u.unread FROM message_recipients u WHERE u.message_id = m.id AND u.person_id = $1), 0) AS unread \
             FROM messages m JOIN people s ON s.id = m.sender_id WHERE {VISIBLE} AND m.conversation_id = $2 ORDER BY m.id"
        );
        let rows = sqlx::query(&sql)
            .bind(me.0)
            .bind(id.0)
            .fetch_all(&self.pool)
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut messages = rows
            .iter()
            .map(message_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut binds = Binds::from(1);
        let files_sql = format!(
            "SELECT a.id, a.owner_kind, a.owner_id, a.blob_hash, a.file_name, a.mime, a.size FROM attachments a \
             WHERE a.owner_kind = 'message' AND a.owner_id IN ({}) ORDER BY a.owner_id, a.position, a.id",
            binds.list(messages.iter().map(|m| m.id.0))
        );
        let mut files: HashMap<i64, Vec<AttachmentView>> = HashMap::new();
        for r in binds.query(&files_sql).fetch_all(&self.pool).await? {
            let a = crate::work::attachment_from_row(&r)?;
            files.entry(a.owner_id).or_default().push(a);
        }
        for m in &mut messages {
            m.files = files.remove(&m.id.0).unwrap_or_default();
        }
        let c = sqlx::query(
            "SELECT establishment_id, subject, creator_id, broadcast FROM conversations WHERE id = $1",
        )
        .bind(id.0)
        .fetch_one(&self.pool)
        .await?;
        Ok(Some(ConversationView {
            id,
            establishment_id: EstablishmentId(c.try_get("establishment_id")?),
            subject: c.try_get("subject")?,
            creator_id: PersonId(c.try_get("creator_id")?),
            broadcast: c.try_get::<i64, _>("broadcast")? != 0,
            messages,
        }))
    }

    /// Marks a conversation read for `me`.
    pub async fn mark_read(&self, me: PersonId, id: ConversationId) -> StoreResult<()> {
        sqlx::query(
            "UPDATE message_recipients SET unread = 0 WHERE person_id = $1 AND unread = 1 \
             AND message_id IN (SELECT id FROM messages WHERE conversation_id = $2)",
        )
        .bind(me.0)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Everyone who sent or received a visible (not quarantined) message of
    /// a conversation.
    pub async fn conversation_participants(
        &self,
        id: ConversationId,
    ) -> StoreResult<Vec<PersonId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT sender_id FROM messages WHERE conversation_id = $1 AND quarantine_id IS NULL \
             UNION SELECT r.person_id FROM message_recipients r JOIN messages m ON m.id = r.message_id \
             WHERE m.conversation_id = $1 AND m.quarantine_id IS NULL",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(PersonId).collect())
    }

    /// Whether `me` may see a message (a participant, not quarantined),
    /// and its conversation.
    pub async fn message_visible_to(
        &self,
        me: PersonId,
        id: MessageId,
    ) -> StoreResult<Option<ConversationId>> {
        let sql = format!("SELECT m.conversation_id FROM messages m WHERE {VISIBLE} AND m.id = $2");
        Ok(sqlx::query_scalar::<_, i64>(&sql)
            .bind(me.0)
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?
            .map(ConversationId))
    }

    /// Messages sent by a person since `since` (quarantined ones count).
    pub async fn sent_since(&self, sender: PersonId, since: UnixTime) -> StoreResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE sender_id = $1 AND sent_at > $2",
        )
        .bind(sender.0)
        .bind(since)
        .fetch_one(&self.pool)
        .await?)
    }

    /// Searches the messages `me` may see, by words of their text or
    /// subject, latest first.
    pub async fn search_messages(
        &self,
        me: PersonId,
        query: &str,
        limit: i64,
    ) -> StoreResult<Vec<SearchHit>> {
        let escaped: String = query
            .trim()
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        let sql = format!(
            "SELECT m.id, m.conversation_id, c.subject, {SENDER_NAME} AS sender_name, m.sent_at, m.body_source \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id JOIN people s ON s.id = m.sender_id \
             WHERE {VISIBLE} AND (lower(m.body_source) LIKE $2 ESCAPE '\\' OR lower(c.subject) LIKE $2 ESCAPE '\\') \
             ORDER BY m.id DESC LIMIT $3"
        );
        let rows = sqlx::query(&sql)
            .bind(me.0)
            .bind(pattern)
            .bind(limit.clamp(1, 200))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get("body_source")?;
                Ok(SearchHit {
                    message_id: MessageId(r.try_get("id")?),
                    conversation_id: ConversationId(r.try_get("conversation_id")?),
                    subject: r.try_get("subject")?,
                    sender_name: r.try_get("sender_name")?,
                    sent_at: r.try_get("sent_at")?,
                    excerpt: body.chars().take(160).collect(),
                })
            })
            .collect()
    }

    // ------------------------------------------------------------ drafts

    /// Saves a draft (a new one if `id` is none); answers its id, or
    /// `None` if `id` is not one of the author's drafts.
    pub async fn save_draft(
        &self,
        author: PersonId,
        id: Option<DraftId>,
        subject: &str,
        body: &str,
        recipients: &str,
        now: UnixTime,
    ) -> StoreResult<Option<DraftId>> {
        match id {
            Some(id) => {
                let n = sqlx::query(
                    "UPDATE message_drafts SET subject = $1, body = $2, recipients = $3, updated_at = $4 \
                     WHERE id = $5 AND author_id = $6",
                )
                .bind(subject)
                .bind(body)
                .bind(recipients)
                .bind(now)
                .bind(id.0)
                .bind(author.0)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok((n == 1).then_some(id))
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO message_drafts (author_id, subject, body, recipients, updated_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(author.0)
                .bind(subject)
                .bind(body)
                .bind(recipients)
                .bind(now)
                .fetch_one(&self.pool)
                .await?;
                Ok(Some(DraftId(id)))
            }
        }
    }

    /// A person's drafts, latest first.
    pub async fn drafts_of(&self, author: PersonId) -> StoreResult<Vec<DraftView>> {
        let rows = sqlx::query(
            "SELECT id, subject, body, recipients, updated_at FROM message_drafts WHERE author_id = $1 \
             ORDER BY updated_at DESC, id DESC LIMIT 200",
        )
        .bind(author.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(draft_from_row).collect()
    }

    /// One of a person's drafts.
    pub async fn find_draft(
        &self,
        author: PersonId,
        id: DraftId,
    ) -> StoreResult<Option<DraftView>> {
        let row = sqlx::query(
            "SELECT id, subject, body, recipients, updated_at FROM message_drafts WHERE id = $1 AND author_id = $2",
        )
        .bind(id.0)
        .bind(author.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(draft_from_row).transpose()
    }

    /// Deletes one of a person's drafts; whether there was one.
    pub async fn delete_draft(&self, author: PersonId, id: DraftId) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM message_drafts WHERE id = $1 AND author_id = $2")
            .bind(id.0)
            .bind(author.0)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    // ------------------------------------------------------------ rules

    /// An establishment's communication rules (the defaults if never set).
    pub async fn comm_rules(&self, e: EstablishmentId) -> StoreResult<CommRules> {
        let row = sqlx::query(
            "SELECT pupils_to_pupils, pupils_to_parents, parents_to_parents, pupil_hourly_limit, \
             adult_hourly_limit, pupil_max_recipients FROM communication_rules WHERE establishment_id = $1",
        )
        .bind(e.0)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(CommRules::default());
        };
        let n = |c: &str| -> StoreResult<u32> {
            Ok(u32::try_from(r.try_get::<i64, _>(c)?).unwrap_or(0))
        };
        Ok(CommRules {
            pupils_to_pupils: r.try_get::<i64, _>("pupils_to_pupils")? != 0,
            pupils_to_parents: r.try_get::<i64, _>("pupils_to_parents")? != 0,
            parents_to_parents: r.try_get::<i64, _>("parents_to_parents")? != 0,
            pupil_hourly_limit: n("pupil_hourly_limit")?,
            adult_hourly_limit: n("adult_hourly_limit")?,
            pupil_max_recipients: n("pupil_max_recipients")?,
        })
    }

    /// Replaces an establishment's communication rules.
    pub async fn set_comm_rules(
        &self,
        e: EstablishmentId,
        rules: &CommRules,
        by: PersonId,
        now: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO communication_rules (establishment_id, pupils_to_pupils, pupils_to_parents, parents_to_parents, \
             pupil_hourly_limit, adult_hourly_limit, pupil_max_recipients, updated_at, updated_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (establishment_id) DO UPDATE SET \
             pupils_to_pupils = excluded.pupils_to_pupils, pupils_to_parents = excluded.pupils_to_parents, \
             parents_to_parents = excluded.parents_to_parents, pupil_hourly_limit = excluded.pupil_hourly_limit, \
             adult_hourly_limit = excluded.adult_hourly_limit, pupil_max_recipients = excluded.pupil_max_recipients, \
             updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(e.0)
        .bind(i64::from(rules.pupils_to_pupils))
        .bind(i64::from(rules.pupils_to_parents))
        .bind(i64::from(rules.parents_to_parents))
        .bind(i64::from(rules.pupil_hourly_limit))
        .bind(i64::from(rules.adult_hourly_limit))
        .bind(i64::from(rules.pupil_max_recipients))
        .bind(now)
        .bind(by.0)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    // ------------------------------------------------------------ people

    /// The people named, as the communication rules see them; unknown ids
    /// are left out.
    pub async fn contacts(&self, ids: &[PersonId]) -> StoreResult<Vec<Contact>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let mut binds = Binds::from(1);
            let list = binds.list(chunk.iter().map(|p| p.0));
            // Four queries over the same ids.
            let values = binds.values;
            let mut contacts: Vec<Contact> = Vec::new();
            let mut index: HashMap<i64, usize> = HashMap::new();
            let sql = format!(
                "SELECT p.id, p.establishment_id, p.roles, m.class_id FROM people p \
                 LEFT JOIN class_members m ON m.pupil_id = p.id WHERE p.id IN ({list})"
            );
            for r in bound(&sql, values.clone()).fetch_all(&self.pool).await? {
                let id: i64 = r.try_get("id")?;
                let mut c = Contact::new(
                    PersonId(id),
                    EstablishmentId(r.try_get("establishment_id")?),
                    Roles::from_bits(r.try_get("roles")?),
                );
                c.class_id = r.try_get::<Option<i64>, _>("class_id")?.map(ClassId);
                index.insert(id, contacts.len());
                contacts.push(c);
            }
            let sql =
                format!("SELECT pupil_id, group_id FROM group_members WHERE pupil_id IN ({list})");
            for r in bound(&sql, values.clone()).fetch_all(&self.pool).await? {
                if let Some(&i) = index.get(&r.try_get::<i64, _>("pupil_id")?) {
                    contacts[i].group_ids.push(GroupId(r.try_get("group_id")?));
                }
            }
            let sql = format!(
                "SELECT g.parent_id, g.pupil_id, m.class_id FROM guardians g \
                 LEFT JOIN class_members m ON m.pupil_id = g.pupil_id WHERE g.parent_id IN ({list})"
            );
            for r in bound(&sql, values.clone()).fetch_all(&self.pool).await? {
                if let Some(&i) = index.get(&r.try_get::<i64, _>("parent_id")?) {
                    contacts[i].child_ids.push(PersonId(r.try_get("pupil_id")?));
                    if let Some(c) = r.try_get::<Option<i64>, _>("class_id")? {
                        contacts[i].children_classes.push(ClassId(c));
                    }
                }
            }
            let sql = format!(
                "SELECT teacher_id, class_id, group_id FROM teachings WHERE teacher_id IN ({list})"
            );
            for r in bound(&sql, values.clone()).fetch_all(&self.pool).await? {
                if let Some(&i) = index.get(&r.try_get::<i64, _>("teacher_id")?) {
                    if let Some(c) = r.try_get::<Option<i64>, _>("class_id")? {
                        contacts[i].taught_classes.push(ClassId(c));
                    }
                    if let Some(g) = r.try_get::<Option<i64>, _>("group_id")? {
                        contacts[i].taught_groups.push(GroupId(g));
                    }
                }
            }
            out.extend(contacts);
        }
        Ok(out)
    }

    /// The establishment a collective audience belongs to; `None` if it
    /// names no class or group (a person's audience is their own).
    pub async fn audience_establishment(
        &self,
        audience: Audience,
    ) -> StoreResult<Option<EstablishmentId>> {
        let (sql, id) = match audience {
            Audience::Person(p) => ("SELECT establishment_id FROM people WHERE id = $1", p.0),
            Audience::Class(c) | Audience::ClassParents(c) | Audience::ClassTeachers(c) => {
                ("SELECT establishment_id FROM classes WHERE id = $1", c.0)
            }
            Audience::Group(g) => (
                "SELECT establishment_id FROM teaching_groups WHERE id = $1",
                g.0,
            ),
        };
        Ok(sqlx::query_scalar::<_, i64>(sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .map(EstablishmentId))
    }

    /// The people an audience names now.
    pub async fn audience_members(&self, audience: Audience) -> StoreResult<Vec<PersonId>> {
        let (sql, id) = match audience {
            Audience::Person(p) => return Ok(vec![p]),
            Audience::Class(c) => ("SELECT pupil_id FROM class_members WHERE class_id = $1 ORDER BY pupil_id", c.0),
            Audience::Group(g) => ("SELECT pupil_id FROM group_members WHERE group_id = $1 ORDER BY pupil_id", g.0),
            Audience::ClassParents(c) => (
                "SELECT DISTINCT g.parent_id FROM guardians g JOIN class_members m ON m.pupil_id = g.pupil_id \
                 WHERE m.class_id = $1 ORDER BY g.parent_id",
                c.0,
            ),
            Audience::ClassTeachers(c) => (
                "SELECT DISTINCT teacher_id FROM teachings WHERE class_id = $1 ORDER BY teacher_id",
                c.0,
            ),
        };
        let ids: Vec<i64> = sqlx::query_scalar(sql)
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(PersonId).collect())
    }

    /// The name of a teaching group.
    pub async fn group_name(&self, id: GroupId) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT name FROM teaching_groups WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    // ------------------------------------------------------------ containment

    /// Whether staff suspended a person's sending.
    pub async fn is_suspended(&self, p: PersonId) -> StoreResult<bool> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM sending_suspensions WHERE person_id = $1")
                .bind(p.0)
                .fetch_one(&self.pool)
                .await?;
        Ok(n > 0)
    }

    /// Suspends a person's sending (again: keeps the first decision).
    pub async fn suspend_sending(
        &self,
        p: PersonId,
        by: PersonId,
        now: UnixTime,
        reason: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sending_suspensions (person_id, suspended_by, suspended_at, reason) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (person_id) DO NOTHING",
        )
        .bind(p.0)
        .bind(by.0)
        .bind(now)
        .bind(reason)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Lets a person send again; whether they were suspended.
    pub async fn lift_suspension(&self, p: PersonId) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM sending_suspensions WHERE person_id = $1")
            .bind(p.0)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// The suspended accounts of an establishment.
    pub async fn suspensions(&self, e: EstablishmentId) -> StoreResult<Vec<SuspensionView>> {
        let rows = sqlx::query(
            "SELECT s.person_id, p.first_name || ' ' || upper(p.last_name) AS name, p.login, \
             b.first_name || ' ' || upper(b.last_name) AS by_name, s.suspended_at, s.reason \
             FROM sending_suspensions s JOIN people p ON p.id = s.person_id JOIN people b ON b.id = s.suspended_by \
             WHERE p.establishment_id = $1 ORDER BY s.suspended_at DESC",
        )
        .bind(e.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(SuspensionView {
                    person_id: PersonId(r.try_get("person_id")?),
                    name: r.try_get("name")?,
                    login: r.try_get("login")?,
                    by_name: r.try_get("by_name")?,
                    at: r.try_get("suspended_at")?,
                    reason: r.try_get("reason")?,
                })
            })
            .collect()
    }

    /// Quarantines every message `sender` sent within `[from, to]` that is
    /// not already held: one UPDATE over the sender's messages, whatever
    /// the number of recipients. Answers the decision and how many
    /// messages it holds.
    pub async fn quarantine(
        &self,
        sender: PersonId,
        from: UnixTime,
        to: UnixTime,
        by: PersonId,
        now: UnixTime,
        reason: &str,
    ) -> StoreResult<(QuarantineId, i64)> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO quarantines (sender_id, from_at, to_at, decided_by, decided_at, reason, message_count) \
             VALUES ($1, $2, $3, $4, $5, $6, 0) RETURNING id",
        )
        .bind(sender.0)
        .bind(from)
        .bind(to)
        .bind(by.0)
        .bind(now)
        .bind(reason)
        .fetch_one(&mut *tx)
        .await?;
        let n = sqlx::query(
            "UPDATE messages SET quarantine_id = $1 WHERE sender_id = $2 AND sent_at >= $3 AND sent_at <= $4 \
             AND quarantine_id IS NULL",
        )
        .bind(id)
        .bind(sender.0)
        .bind(from)
        .bind(to)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        sqlx::query("UPDATE quarantines SET message_count = $1 WHERE id = $2")
            .bind(n)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((QuarantineId(id), n))
    }

    /// Restores the messages a quarantine held; how many.
    pub async fn lift_quarantine(
        &self,
        id: QuarantineId,
        by: PersonId,
        now: UnixTime,
    ) -> StoreResult<i64> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("UPDATE messages SET quarantine_id = NULL WHERE quarantine_id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE quarantines SET lifted_by = $1, lifted_at = $2 WHERE id = $3 AND lifted_at IS NULL")
            .bind(by.0)
            .bind(now)
            .bind(id.0)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(i64::try_from(n).unwrap_or(i64::MAX))
    }

    /// Quarantine decisions about people of an establishment (all, with
    /// `None`), latest first.
    pub async fn quarantines(
        &self,
        e: Option<EstablishmentId>,
    ) -> StoreResult<Vec<QuarantineView>> {
        let filter = e
            .map(|e| format!("WHERE p.establishment_id = {}", e.0))
            .unwrap_or_default();
        self.quarantine_rows(&filter).await
    }

    /// One quarantine decision.
    pub async fn find_quarantine(&self, id: QuarantineId) -> StoreResult<Option<QuarantineView>> {
        Ok(self
            .quarantine_rows(&format!("WHERE q.id = {}", id.0))
            .await?
            .into_iter()
            .next())
    }

    async fn quarantine_rows(&self, filter: &str) -> StoreResult<Vec<QuarantineView>> {
        let sql = format!(
            "SELECT q.id, q.sender_id, p.first_name || ' ' || upper(p.last_name) AS sender_name, p.establishment_id, \
             q.from_at, q.to_at, b.first_name || ' ' || upper(b.last_name) AS decided_by, q.decided_at, q.reason, \
             q.message_count, q.lifted_at FROM quarantines q JOIN people p ON p.id = q.sender_id \
             JOIN people b ON b.id = q.decided_by {filter} ORDER BY q.id DESC LIMIT 200"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(QuarantineView {
                    id: QuarantineId(r.try_get("id")?),
                    sender_id: PersonId(r.try_get("sender_id")?),
                    sender_name: r.try_get("sender_name")?,
                    sender_establishment: EstablishmentId(r.try_get("establishment_id")?),
                    from_at: r.try_get("from_at")?,
                    to_at: r.try_get("to_at")?,
                    decided_by: r.try_get("decided_by")?,
                    decided_at: r.try_get("decided_at")?,
                    reason: r.try_get("reason")?,
                    message_count: r.try_get("message_count")?,
                    lifted_at: r.try_get("lifted_at")?,
                })
            })
            .collect()
    }

    /// The messages a quarantine holds, for the investigation.
    pub async fn held_messages(&self, id: QuarantineId) -> StoreResult<Vec<HeldMessage>> {
        let rows = sqlx::query(
            "SELECT m.id, c.subject, m.body_html, m.recipients_label, m.recipient_count, m.sent_at \
             FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.quarantine_id = $1 ORDER BY m.id LIMIT 500",
        )
        .bind(id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(HeldMessage {
                    id: MessageId(r.try_get("id")?),
                    subject: r.try_get("subject")?,
                    body_html: r.try_get("body_html")?,
                    recipients_label: r.try_get("recipients_label")?,
                    recipient_count: r.try_get("recipient_count")?,
                    sent_at: r.try_get("sent_at")?,
                })
            })
            .collect()
    }

    /// Records a report of a message (once per reporter and message).
    pub async fn report_message(
        &self,
        message: MessageId,
        reporter: PersonId,
        reason: &str,
        now: UnixTime,
    ) -> StoreResult<ReportId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO message_reports (message_id, reporter_id, reason, reported_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (message_id, reporter_id) DO UPDATE SET reason = excluded.reason RETURNING id",
        )
        .bind(message.0)
        .bind(reporter.0)
        .bind(reason)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "report"))?;
        Ok(ReportId(id))
    }

    /// Open reports about messages of an establishment (all, with `None`).
    pub async fn open_reports(&self, e: Option<EstablishmentId>) -> StoreResult<Vec<ReportView>> {
        let filter = e
            .map(|e| format!("AND c.establishment_id = {}", e.0))
            .unwrap_or_default();
        self.report_rows(&format!("WHERE x.closed_at IS NULL {filter}"))
            .await
    }

    /// One report.
    pub async fn find_report(&self, id: ReportId) -> StoreResult<Option<ReportView>> {
        Ok(self
            .report_rows(&format!("WHERE x.id = {}", id.0))
            .await?
            .into_iter()
            .next())
    }

    async fn report_rows(&self, filter: &str) -> StoreResult<Vec<ReportView>> {
        let sql = format!(
            "SELECT x.id, x.message_id, m.sender_id, {SENDER_NAME} AS sender_name, s.login AS sender_login, \
             c.establishment_id, r.first_name || ' ' || upper(r.last_name) AS reporter_name, x.reason, x.reported_at, \
             m.body_html, m.quarantine_id FROM message_reports x JOIN messages m ON m.id = x.message_id \
             JOIN conversations c ON c.id = m.conversation_id JOIN people s ON s.id = m.sender_id \
             JOIN people r ON r.id = x.reporter_id {filter} ORDER BY x.id DESC LIMIT 200"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(ReportView {
                    id: ReportId(r.try_get("id")?),
                    message_id: MessageId(r.try_get("message_id")?),
                    sender_id: PersonId(r.try_get("sender_id")?),
                    sender_name: r.try_get("sender_name")?,
                    sender_login: r.try_get("sender_login")?,
                    establishment_id: EstablishmentId(r.try_get("establishment_id")?),
                    reporter_name: r.try_get("reporter_name")?,
                    reason: r.try_get("reason")?,
                    reported_at: r.try_get("reported_at")?,
                    body_html: r.try_get("body_html")?,
                    quarantined: r.try_get::<Option<i64>, _>("quarantine_id")?.is_some(),
                })
            })
            .collect()
    }

    /// Closes a report.
    pub async fn close_report(&self, id: ReportId, by: PersonId, now: UnixTime) -> StoreResult<()> {
        sqlx::query("UPDATE message_reports SET closed_by = $1, closed_at = $2 WHERE id = $3 AND closed_at IS NULL")
            .bind(by.0)
            .bind(now)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ------------------------------------------------------------ announcements

    /// Publishes an announcement with its classes, in one transaction.
    pub async fn insert_announcement(&self, a: &AnnouncementInsert) -> StoreResult<AnnouncementId> {
        let mut tx = self.pool.begin().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO announcements (establishment_id, author_id, title, body_source, body_html, audience, \
             publish_from, publish_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(a.establishment_id.0)
        .bind(a.author_id.0)
        .bind(&a.title)
        .bind(&a.body_source)
        .bind(&a.body_html)
        .bind(a.audience.as_str())
        .bind(a.publish_from)
        .bind(a.publish_until)
        .bind(a.created_at)
        .fetch_one(&mut *tx)
        .await?;
        for c in &a.classes {
            sqlx::query(
                "INSERT INTO announcement_classes (announcement_id, class_id) VALUES ($1, $2)",
            )
            .bind(id)
            .bind(c.0)
            .execute(&mut *tx)
            .await
            .map_err(|e| StoreError::from_sqlx(e, "announcement class"))?;
        }
        tx.commit().await?;
        self.announcements_changed();
        Ok(AnnouncementId(id))
    }

    /// The announcements a scope sees: published now (`current`), or all
    /// of them including scheduled and expired ones for their authors and
    /// staff. Latest first.
    pub async fn announcements_for(
        &self,
        scope: &AnnouncementScope,
        now: UnixTime,
        current_only: bool,
        limit: i64,
    ) -> StoreResult<Vec<AnnouncementView>> {
        // `$1` the establishment, `$2` now, then (all of them) `$3` the
        // author and `$4` whether they see everything, then the scope's
        // ids: the window comes first so placeholders first appear in
        // increasing order.
        let (window, mut binds) = if current_only {
            (
                "a.publish_from <= $2 AND (a.publish_until IS NULL OR a.publish_until > $2)",
                Binds::from(3),
            )
        } else {
            (
                "((a.publish_from <= $2 AND (a.publish_until IS NULL OR a.publish_until > $2)) OR a.author_id = $3 OR $4 = 1)",
                Binds::from(5),
            )
        };
        let sql = format!(
            "{ANNOUNCEMENT_SELECT} WHERE a.establishment_id = $1 AND {window} AND {} \
             ORDER BY a.publish_from DESC, a.id DESC LIMIT {}",
            announcement_where(scope, "$1", &mut binds),
            limit.clamp(1, 200)
        );
        let mut q = sqlx::query(&sql).bind(scope.establishment_id.0).bind(now);
        if !current_only {
            q = q.bind(scope.author.0).bind(i64::from(scope.everything));
        }
        let rows = bind_all(q, binds.values).fetch_all(&self.pool).await?;
        let mut out = rows
            .iter()
            .map(announcement_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.fill_announcement_classes(&mut out).await?;
        Ok(out)
    }

    async fn fill_announcement_classes(&self, list: &mut [AnnouncementView]) -> StoreResult<()> {
        if list.is_empty() {
            return Ok(());
        }
        let mut binds = Binds::from(1);
        let sql = format!(
            "SELECT ac.announcement_id, c.id, c.name FROM announcement_classes ac JOIN classes c ON c.id = ac.class_id \
             WHERE ac.announcement_id IN ({}) ORDER BY c.name, c.id",
            binds.list(list.iter().map(|a| a.id.0))
        );
        let mut classes: HashMap<i64, Vec<(ClassId, String)>> = HashMap::new();
        for r in binds.query(&sql).fetch_all(&self.pool).await? {
            classes
                .entry(r.try_get("announcement_id")?)
                .or_default()
                .push((ClassId(r.try_get("id")?), r.try_get("name")?));
        }
        for a in list {
            (a.class_ids, a.class_names) = classes
                .remove(&a.id.0)
                .unwrap_or_default()
                .into_iter()
                .unzip();
        }
        Ok(())
    }

    /// One announcement.
    pub async fn find_announcement(
        &self,
        id: AnnouncementId,
    ) -> StoreResult<Option<AnnouncementView>> {
        let row = sqlx::query(&format!("{ANNOUNCEMENT_SELECT} WHERE a.id = $1"))
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        let Some(a) = row.as_ref().map(announcement_from_row).transpose()? else {
            return Ok(None);
        };
        let mut list = [a];
        self.fill_announcement_classes(&mut list).await?;
        let [a] = list;
        Ok(Some(a))
    }

    /// Withdraws an announcement now (its window ends); withdrawing one
    /// already ended changes nothing.
    pub async fn withdraw_announcement(
        &self,
        id: AnnouncementId,
        now: UnixTime,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE announcements SET publish_until = $1 WHERE id = $2 \
             AND (publish_until IS NULL OR publish_until > $1)",
        )
        .bind(now)
        .bind(id.0)
        .execute(&self.pool)
        .await?;
        self.announcements_changed();
        Ok(())
    }

    /// The announcements of an establishment that have not ended by `now`
    /// (current or still to come), newest first, at most `cap` of them,
    /// and whether that is all of them. Whoever keeps them in memory tells
    /// who sees which, and when, with [`announcement_seen`]: an
    /// announcement current at any later time is among them, as long as
    /// none was published or withdrawn since (see
    /// [`Store::announcements_version`]).
    pub async fn live_announcements(
        &self,
        establishment: EstablishmentId,
        now: UnixTime,
        cap: usize,
    ) -> StoreResult<(Vec<AnnouncementView>, bool)> {
        let cap = cap.clamp(1, 10_000);
        let sql = format!(
            "{ANNOUNCEMENT_SELECT} WHERE a.establishment_id = $1 \
             AND (a.publish_until IS NULL OR a.publish_until > $2) \
             ORDER BY a.publish_from DESC, a.id DESC LIMIT {}",
            cap + 1
        );
        let rows = sqlx::query(&sql)
            .bind(establishment.0)
            .bind(now)
            .fetch_all(&self.pool)
            .await?;
        let complete = rows.len() <= cap;
        let mut out = rows
            .iter()
            .take(cap)
            .map(announcement_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        self.fill_announcement_classes(&mut out).await?;
        Ok((out, complete))
    }

    // ------------------------------------------------------------ timeline

    /// What is new for a person, newest first: published homework of
    /// their classes, messages they received, announcements they see and
    /// feedback returned to them (or their children).
    pub async fn timeline(
        &self,
        scope: &TimelineScope,
        now: UnixTime,
        limit: i64,
        offset: i64,
    ) -> StoreResult<Vec<TimelineItem>> {
        Ok(self
            .timeline_rows(scope, now, limit, offset, false)
            .await?
            .0)
    }

    /// [`Store::timeline`] and the person's unread count
    /// ([`Store::unread_count`]) together, in one trip when there is news.
    pub async fn timeline_with_unread(
        &self,
        scope: &TimelineScope,
        now: UnixTime,
        limit: i64,
        offset: i64,
    ) -> StoreResult<(Vec<TimelineItem>, i64)> {
        match self.timeline_rows(scope, now, limit, offset, true).await? {
            (items, Some(unread)) => Ok((items, unread)),
            (items, None) => Ok((items, self.unread_count(scope.person_id).await?)),
        }
    }

    /// The timeline's items and, if asked and any row came, the unread
    /// count the rows carry.
    async fn timeline_rows(
        &self,
        scope: &TimelineScope,
        now: UnixTime,
        limit: i64,
        offset: i64,
        unread: bool,
    ) -> StoreResult<(Vec<TimelineItem>, Option<i64>)> {
        let (sql, binds) = timeline_query(scope, unread);
        let query = sqlx::query(&sql).bind(scope.person_id.0).bind(now);
        let rows = bind_all(query, binds)
            .bind(limit.clamp(1, 200))
            .bind(offset.max(0))
            .fetch_all(&self.pool)
            .await?;
        let count = match rows.first() {
            Some(r) if unread => Some(r.try_get("unread")?),
            _ => None,
        };
        let items = rows
            .iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                Ok(TimelineItem {
                    kind: match kind.as_str() {
                        "homework" => TimelineKind::Homework,
                        "message" => TimelineKind::Message,
                        "announcement" => TimelineKind::Announcement,
                        _ => TimelineKind::Feedback,
                    },
                    id: r.try_get("id")?,
                    pupil_id: r.try_get::<Option<i64>, _>("pupil_id")?.map(PersonId),
                    at: r.try_get("happened_at")?,
                    title: r.try_get("title")?,
                    by: r.try_get("who")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((items, count))
    }
}

fn draft_from_row(r: &AnyRow) -> StoreResult<DraftView> {
    Ok(DraftView {
        id: DraftId(r.try_get("id")?),
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        recipients: r.try_get("recipients")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn announcement_from_row(r: &AnyRow) -> StoreResult<AnnouncementView> {
    let audience: String = r.try_get("audience")?;
    Ok(AnnouncementView {
        id: AnnouncementId(r.try_get("id")?),
        establishment_id: EstablishmentId(r.try_get("establishment_id")?),
        author_id: PersonId(r.try_get("author_id")?),
        author_name: r.try_get("author_name")?,
        title: r.try_get("title")?,
        body_html: r.try_get("body_html")?,
        // The CHECK constraint allows only the four names.
        audience: AnnouncementAudience::parse(&audience).unwrap_or(AnnouncementAudience::All),
        class_names: Vec::new(),
        class_ids: Vec::new(),
        publish_from: r.try_get("publish_from")?,
        publish_until: r.try_get("publish_until")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::binds::first_appearances;

    fn scope(person: i64, classes: &[i64], groups: &[i64]) -> TimelineScope {
        let classes: Vec<ClassId> = classes.iter().copied().map(ClassId).collect();
        TimelineScope {
            person_id: PersonId(person),
            homework_classes: classes.clone(),
            homework_groups: groups.iter().copied().map(GroupId).collect(),
            feedback_pupils: vec![PersonId(person)],
            announcements: AnnouncementScope {
                establishment_id: EstablishmentId(1),
                everything: false,
                parent: false,
                classes,
                parent_classes: Vec::new(),
                author: PersonId(person),
            },
        }
    }

    #[test]
    fn the_timeline_is_one_statement_for_everyone_with_as_many_classes_and_groups() {
        let (a, a_ids) = timeline_query(&scope(1_001, &[17], &[23, 24, 25]), false);
        let (b, b_ids) = timeline_query(&scope(2_002, &[18], &[26, 27, 28]), false);
        // One text: each connection prepares it once, for every pupil.
        assert_eq!(a, b);
        assert_ne!(a_ids, b_ids);
        for id in ["2002", "18", "26", "27", "28"] {
            assert!(!b.contains(id), "{id} written into {b}");
        }
        // Bound: three groups padded to four with an id nobody has.
        assert_eq!(&b_ids[..5], &[18, 26, 27, 28, -1]);
        assert!(b_ids.contains(&2_002));
        // Another size class is another statement.
        let (c, _) = timeline_query(&scope(3_003, &[17], &[23, 24, 25, 26, 27]), false);
        assert_ne!(a, c);
        // Placeholders numbered in the order they first appear, after $1
        // and $2, up to the limit and offset.
        let expected: Vec<usize> = (1..=b_ids.len() + 4).collect();
        assert_eq!(first_appearances(&b), expected);
        // With the unread count, the same placeholders.
        let (with_unread, ids) = timeline_query(&scope(2_002, &[18], &[26, 27, 28]), true);
        assert_eq!(ids, b_ids);
        assert_eq!(first_appearances(&with_unread), expected);
    }
}
