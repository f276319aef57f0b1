//! Newtypes for every identifier, so that a class id is never passed where
//! a person id is expected, and validated values such as [`Login`].

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    /// An establishment (a collège, a lycée...).
    EstablishmentId,
    /// A school year of an establishment.
    SchoolYearId,
    /// A class (a pupil belongs to exactly one per school year).
    ClassId,
    /// A teaching group (pupils from one or several classes).
    GroupId,
    /// A subject taught in an establishment.
    SubjectId,
    /// Any person: pupil, parent, teacher, staff or administrator.
    PersonId,
    /// A teaching assignment: a teacher, a class or group, a subject.
    TeachingId,
    /// A lesson of the diary (séance).
    LessonId,
    /// Homework (travail à faire).
    HomeworkId,
);

id_type!(
    /// A conversation (a thread of messages).
    ConversationId,
    /// One message of a conversation.
    MessageId,
    /// An announcement (actualité).
    AnnouncementId,
    /// A quarantine decision over an account's messages.
    QuarantineId,
    /// A report of a message to staff.
    ReportId,
    /// A message being written, not sent.
    DraftId,
);

/// A sign-in name: 3 to 64 characters among `a-z 0-9 . _ -`, lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Login(String);

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoginError {
    /// Fewer than 3 or more than 64 characters.
    #[error("a login has 3 to 64 characters")]
    Length,
    /// A character outside `a-z 0-9 . _ -`.
    #[error("a login uses only letters, digits, '.', '_' and '-'")]
    Characters,
}

impl Login {
    /// Parses a login typed by a person: surrounding blanks are ignored and
    /// letters are folded to lowercase, so `Jean.Dupont ` is `jean.dupont`.
    pub fn parse(raw: &str) -> Result<Self, LoginError> {
        let s = raw.trim().to_ascii_lowercase();
        if s.len() < 3 || s.len() > 64 {
            return Err(LoginError::Length);
        }
        if !s.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        }) {
            return Err(LoginError::Characters);
        }
        Ok(Self(s))
    }

    /// The login as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Builds the base of a login from a person's names: `jean.dupont` for
/// "Jean" "Du Pont"; accents are folded and other characters dropped.
pub fn login_base(first_name: &str, last_name: &str) -> String {
    fn fold(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars().flat_map(char::to_lowercase) {
            match c {
                'à' | 'â' | 'ä' | 'á' | 'ã' => out.push('a'),
                'ç' => out.push('c'),
                'é' | 'è' | 'ê' | 'ë' => out.push('e'),
                'î' | 'ï' | 'í' | 'ì' => out.push('i'),
                'ô' | 'ö' | 'ó' | 'ò' | 'õ' => out.push('o'),
                'ù' | 'û' | 'ü' | 'ú' => out.push('u'),
                'ÿ' => out.push('y'),
                'ñ' => out.push('n'),
                'œ' => out.push_str("oe"),
                'æ' => out.push_str("ae"),
                c if c.is_ascii_alphanumeric() => out.push(c),
                _ => {}
            }
        }
        out
    }
    let mut base = format!("{}.{}", fold(first_name), fold(last_name));
    base.truncate(56);
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_trimmed_and_lowercased() {
        assert_eq!(
            Login::parse(" Jean.Dupont ").map(|l| l.to_string()),
            Ok("jean.dupont".into())
        );
    }

    #[test]
    fn bad_logins_are_refused() {
        assert_eq!(Login::parse("ab"), Err(LoginError::Length));
        assert_eq!(Login::parse(&"a".repeat(65)), Err(LoginError::Length));
        assert_eq!(Login::parse("jean dupont"), Err(LoginError::Characters));
        assert_eq!(Login::parse("jean/../x"), Err(LoginError::Characters));
        assert_eq!(Login::parse("élève"), Err(LoginError::Characters));
    }

    #[test]
    fn login_base_folds_accents_and_drops_spaces() {
        assert_eq!(login_base("Zoé", "Le Bœuf"), "zoe.leboeuf");
        assert_eq!(login_base("Jean-Noël", "D'Arc"), "jeannoel.darc");
    }
}
