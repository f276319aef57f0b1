//! Ardoise's persistence: the only crate that contains SQL.
//!
//! One implementation serves both backends through sqlx's `Any` driver:
//! SQLite (the embedded default: WAL, `synchronous=FULL`, foreign keys on)
//! and PostgreSQL (scale-out). The backend is chosen once from the database
//! URL's scheme; an unknown scheme is an error. Each backend has its own
//! migration tree under `migrations/`, with the same versions and names.
//!
//! Queries are written once, in the SQL both engines accept, with `$1, $2…`
//! placeholders. Dialect quirk: SQLite reads `$1` as a *named* parameter
//! numbered by first appearance, so in every query the placeholders must
//! first appear in increasing order (`$1` before `$2`…); they may repeat.
//!
//! This crate holds no authorization logic: list queries take a scope
//! computed by `ardoise_core::policy` and apply it in their WHERE clause.

mod accounts;
mod audit;
mod binds;
mod connect;
mod diary;
mod directory;
mod error;
pub mod model;
mod sessions;
mod work;
// Documents (issue 5).
mod documents;
// Messaging, announcements, timeline (issue 4).
mod messaging;

pub use connect::{Backend, Store};
pub use diary::{HandIn, HomeworkInsertForm, HomeworkView, LessonInsertForm, LessonView};
pub use directory::{ClassTeacherView, Val};
pub use error::StoreError;
pub use messaging::{
    announcement_seen, AnnouncementInsert, AnnouncementView, ConversationView, DraftView,
    HeldMessage, InboxLine, MessageInsert, MessageView, QuarantineView, ReportView, SearchHit,
    SuspensionView, TimelineItem, TimelineKind, TimelineScope,
};
pub use model::*;
pub use work::{
    AttachmentInsert, AttachmentView, FeedbackInsert, FeedbackView, OwnerKind, SubmissionInsert,
    SubmissionView,
};

pub use documents::{
    DocumentInsert, DocumentView, FolderView, ItemKind, ShareView, MAX_DEPTH as DOCUMENTS_MAX_DEPTH,
};

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Row access for the results of [`Store::insert_many`].
pub mod row {
    pub use sqlx::any::AnyRow;
    pub use sqlx::Row;
}
