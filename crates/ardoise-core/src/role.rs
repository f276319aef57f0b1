//! Roles a person may hold. A person can hold several at once (a teacher
//! who is also a parent), so roles are a small set, stored as bits.

use serde::{Deserialize, Serialize};

/// One role in an establishment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Élève.
    Pupil,
    /// Parent or legal guardian of one or more pupils.
    Parent,
    /// Enseignant.
    Teacher,
    /// Direction, vie scolaire, secretariat.
    Staff,
    /// Platform administrator: manages every establishment and account.
    Admin,
}

impl Role {
    /// Every role, in display order.
    pub const ALL: [Role; 5] = [
        Role::Pupil,
        Role::Parent,
        Role::Teacher,
        Role::Staff,
        Role::Admin,
    ];

    const fn bit(self) -> i64 {
        match self {
            Role::Pupil => 1,
            Role::Parent => 2,
            Role::Teacher => 4,
            Role::Staff => 8,
            Role::Admin => 16,
        }
    }

    /// The stable name used in the API, CSV files and message keys.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Pupil => "pupil",
            Role::Parent => "parent",
            Role::Teacher => "teacher",
            Role::Staff => "staff",
            Role::Admin => "admin",
        }
    }

    /// Parses a stable role name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s.trim())
    }
}

/// A set of roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Roles(i64);

impl Roles {
    /// No role.
    pub const NONE: Roles = Roles(0);

    /// The set holding just `role`.
    pub const fn only(role: Role) -> Self {
        Roles(role.bit())
    }

    /// This set plus `role`.
    pub const fn with(self, role: Role) -> Self {
        Roles(self.0 | role.bit())
    }

    /// Whether `role` is in the set.
    pub const fn has(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// The roles, in display order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.has(*r))
    }

    /// Whether the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The bits as stored in the database.
    pub const fn bits(self) -> i64 {
        self.0
    }

    /// Rebuilds a set from stored bits, ignoring unknown bits.
    pub const fn from_bits(bits: i64) -> Self {
        Roles(bits & 31)
    }

    /// Whether the holder belongs to the staff lane (teachers, staff, admins).
    pub const fn is_staff_lane(self) -> bool {
        self.has(Role::Teacher) || self.has(Role::Staff) || self.has(Role::Admin)
    }
}

impl FromIterator<Role> for Roles {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        iter.into_iter().fold(Roles::NONE, Roles::with)
    }
}

impl Serialize for Roles {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_person_can_hold_several_roles() {
        let r = Roles::only(Role::Teacher).with(Role::Parent);
        assert!(r.has(Role::Teacher) && r.has(Role::Parent) && !r.has(Role::Pupil));
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![Role::Parent, Role::Teacher]
        );
        assert_eq!(Roles::from_bits(r.bits()), r);
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("king"), None);
    }
}
