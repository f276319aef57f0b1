//! What the store reads and writes: `…InsertForm` to write, `…View` and
//! records to read.

use ardoise_core::throttle;
use ardoise_core::{
    ClassId, EstablishmentId, GroupId, Login, PersonId, Roles, SchoolYearId, SubjectId, TeachingId,
    UnixTime,
};

/// An establishment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Establishment {
    pub id: EstablishmentId,
    /// The national code (UAI/RNE), such as `0750001A`.
    pub uai: String,
    pub name: String,
    pub city: String,
}

/// A school year of an establishment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchoolYear {
    pub id: SchoolYearId,
    pub establishment_id: EstablishmentId,
    /// Such as `2026-2027`.
    pub label: String,
    /// ISO date.
    pub starts_on: String,
    /// ISO date.
    pub ends_on: String,
}

/// A class with its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassView {
    pub id: ClassId,
    pub establishment_id: EstablishmentId,
    pub name: String,
    /// Such as `6e`.
    pub level: String,
    pub pupil_count: i64,
}

impl ClassView {
    /// What the policy needs to know of this class.
    pub fn policy_ref(&self) -> ardoise_core::policy::ClassRef {
        ardoise_core::policy::ClassRef {
            id: self.id,
            establishment_id: self.establishment_id,
        }
    }
}

/// A teaching group (a language, an option) with its number of members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupView {
    pub id: GroupId,
    pub establishment_id: EstablishmentId,
    pub name: String,
    pub pupil_count: i64,
}

/// A class or a group, as a diary names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceView {
    pub audience: ardoise_core::Audience,
    pub establishment_id: EstablishmentId,
    /// The class's or group's name.
    pub name: String,
}

impl AudienceView {
    /// What the policy needs to know of this class or group.
    pub fn policy_ref(&self) -> ardoise_core::policy::AudienceRef {
        ardoise_core::policy::AudienceRef {
            audience: self.audience,
            establishment_id: self.establishment_id,
        }
    }

    /// The path of its week view: `/classes/{id}` or `/groups/{id}`.
    pub fn path(&self) -> String {
        match self.audience {
            ardoise_core::Audience::Class(c) => format!("/classes/{}", c.0),
            ardoise_core::Audience::Group(g) => format!("/groups/{}", g.0),
        }
    }
}

/// A subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub id: SubjectId,
    pub establishment_id: EstablishmentId,
    pub code: String,
    pub name: String,
}

/// Whether an account can sign in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountStatus {
    /// Created, waiting for its owner to activate it with a code.
    Pending,
    /// In use.
    Active,
    /// Switched off by an administrator.
    Disabled,
}

impl AccountStatus {
    /// Stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Pending => "pending",
            AccountStatus::Active => "active",
            AccountStatus::Disabled => "disabled",
        }
    }

    pub(crate) fn parse(s: &str) -> AccountStatus {
        match s {
            "active" => AccountStatus::Active,
            "pending" => AccountStatus::Pending,
            // The CHECK constraint allows nothing else; treat anything odd as off.
            _ => AccountStatus::Disabled,
        }
    }
}

/// A person as lists show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonSummary {
    pub id: PersonId,
    pub establishment_id: EstablishmentId,
    pub login: String,
    pub first_name: String,
    pub last_name: String,
    pub roles: Roles,
    /// Function for staff (« Principale », « CPE »), empty otherwise.
    pub title: String,
    pub status: AccountStatus,
    /// As a pupil: the class's name.
    pub class_name: Option<String>,
    /// As a pupil: the class.
    pub class_id: Option<ClassId>,
}

impl PersonSummary {
    /// « Prénom NOM ».
    pub fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name.to_uppercase())
    }

    /// What the policy needs to know of this person.
    pub fn policy_ref(&self) -> ardoise_core::policy::PersonRef {
        ardoise_core::policy::PersonRef {
            id: self.id,
            establishment_id: self.establishment_id,
            roles: self.roles,
            class_id: self.class_id,
        }
    }
}

/// A new person.
#[derive(Debug, Clone)]
pub struct PersonInsertForm {
    pub establishment_id: EstablishmentId,
    pub login: Login,
    pub first_name: String,
    pub last_name: String,
    pub roles: Roles,
    pub title: String,
    pub status: AccountStatus,
    /// An argon2id PHC string, or none until activation.
    pub password_hash: Option<String>,
    pub created_at: UnixTime,
}

/// What sign-in needs to know about an account.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub person_id: PersonId,
    pub login: String,
    pub first_name: String,
    pub last_name: String,
    /// Sign-in lets teachers and staff hash first in a storm.
    pub roles: Roles,
    pub status: AccountStatus,
    pub password_hash: Option<String>,
    pub activation_code_hash: Option<String>,
    pub activation_expires_at: Option<UnixTime>,
    pub throttle: throttle::State,
}

/// One teaching assignment, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeachingView {
    pub id: TeachingId,
    pub subject_id: SubjectId,
    pub subject_name: String,
    pub class_id: Option<ClassId>,
    pub group_id: Option<GroupId>,
    /// The class's or group's name.
    pub target_name: String,
}

/// A parent's child, for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildView {
    pub person: PersonSummary,
    pub legal_guardian: bool,
}

/// A server-side session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public id, to list and revoke one session; never the token.
    pub id: i64,
    /// SHA-256 of the token, hex; the token itself is never stored.
    pub token_hash: String,
    pub person_id: PersonId,
    pub created_at: UnixTime,
    pub last_seen_at: UnixTime,
    pub expires_at: UnixTime,
    /// "Remember this device": lasts 30 days.
    pub remembered: bool,
    pub user_agent: String,
    /// The per-session anti-CSRF token put in every form.
    pub csrf_token: String,
}

/// A new session.
#[derive(Debug, Clone)]
pub struct SessionInsertForm {
    pub token_hash: String,
    pub person_id: PersonId,
    pub created_at: UnixTime,
    pub expires_at: UnixTime,
    pub remembered: bool,
    pub user_agent: String,
    pub csrf_token: String,
}

/// A session with its owner, for the administrator's list.
#[derive(Debug, Clone)]
pub struct ActiveSessionView {
    pub session: SessionRecord,
    pub person: PersonSummary,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at: UnixTime,
    pub actor_id: Option<PersonId>,
    pub action: String,
    pub target: String,
    pub detail: String,
}

/// Filters for the administrator's account list.
#[derive(Debug, Clone, Default)]
pub struct PeopleFilter {
    pub establishment_id: Option<EstablishmentId>,
    /// Matched against login, first and last name, case-insensitively.
    pub query: String,
    pub role: Option<ardoise_core::Role>,
    pub class_id: Option<ClassId>,
    pub limit: i64,
    pub offset: i64,
}
