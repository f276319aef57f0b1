//! Who may read or write documents and folders, and the rules of the
//! document space that need no store: names, moves, quotas, the trash.
//!
//! A document lives in a folder, and every folder in one **space**: a
//! person's own space, the shared space of a class, of a teaching group or
//! of an establishment. Access to an item is the best of what its space
//! gives the actor and what the shares on the item or on any folder above
//! it give them. Handlers load the space and the shares, and ask
//! [`item_access`]; lists ("shared with me", search) take the
//! [`share_audience`] and apply it in SQL, so a list never shows what the
//! single-item check would refuse. Pure logic: no store, no clock.

use crate::policy::Actor;
use crate::{ClassId, EstablishmentId, GroupId, PersonId, Role};
use serde::Serialize;

/// Days a trashed item stays restorable before it is purged.
pub const TRASH_DAYS: i64 = 30;

/// Longest name of a folder or document, in characters.
pub const MAX_NAME_CHARS: usize = 255;

/// Whose space a folder is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Space {
    /// A person's own documents.
    Person(PersonId),
    /// A class's shared folder (its establishment travels with it).
    Class(ClassId, EstablishmentId),
    /// A teaching group's shared folder.
    Group(GroupId, EstablishmentId),
    /// The establishment's shared folder.
    Establishment(EstablishmentId),
}

impl Space {
    /// The stored kind: `person`, `class`, `group`, `establishment`.
    pub fn kind(self) -> &'static str {
        match self {
            Space::Person(_) => "person",
            Space::Class(..) => "class",
            Space::Group(..) => "group",
            Space::Establishment(_) => "establishment",
        }
    }

    /// The stored id (person, class, group or establishment id).
    pub fn id(self) -> i64 {
        match self {
            Space::Person(p) => p.0,
            Space::Class(c, _) => c.0,
            Space::Group(g, _) => g.0,
            Space::Establishment(e) => e.0,
        }
    }
}

/// Whom an item is shared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ShareTarget {
    /// The pupils of a class (and their parents, and its teachers): read.
    Class(ClassId),
    /// The pupils of a teaching group (and its teachers): read.
    Group(GroupId),
    /// A colleague: read, or read and write.
    Person(PersonId),
}

impl ShareTarget {
    /// The stored kind.
    pub fn kind(self) -> &'static str {
        match self {
            ShareTarget::Class(_) => "class",
            ShareTarget::Group(_) => "group",
            ShareTarget::Person(_) => "person",
        }
    }

    /// The stored id.
    pub fn id(self) -> i64 {
        match self {
            ShareTarget::Class(c) => c.0,
            ShareTarget::Group(g) => g.0,
            ShareTarget::Person(p) => p.0,
        }
    }

    /// Rebuilds a target from its stored kind and id.
    pub fn from_parts(kind: &str, id: i64) -> Option<ShareTarget> {
        Some(match kind {
            "class" => ShareTarget::Class(ClassId(id)),
            "group" => ShareTarget::Group(GroupId(id)),
            "person" => ShareTarget::Person(PersonId(id)),
            _ => return None,
        })
    }
}

/// One share as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareRef {
    /// With whom.
    pub target: ShareTarget,
    /// Whether it grants writing (only ever for a person).
    pub write: bool,
}

/// What the actor may do with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Nothing: the item does not exist for them.
    None,
    /// List, open and download.
    Read,
    /// Also upload, create folders, rename, move, trash, restore, share.
    Write,
}

impl Access {
    /// Whether this allows reading.
    pub fn read(self) -> bool {
        self >= Access::Read
    }

    /// Whether this allows writing.
    pub fn write(self) -> bool {
        self == Access::Write
    }
}

fn is_staff_of(actor: &Actor, e: EstablishmentId) -> bool {
    actor.is(Role::Staff) && actor.establishment_id == e
}

fn in_class(actor: &Actor, c: ClassId) -> bool {
    (actor.is(Role::Pupil) && actor.class_id == Some(c))
        || (actor.is(Role::Parent) && actor.children.iter().any(|ch| ch.class_id == Some(c)))
}

fn teaches_class(actor: &Actor, c: ClassId) -> bool {
    actor.is(Role::Teacher) && actor.taught_classes.contains(&c)
}

fn teaches_group(actor: &Actor, g: GroupId) -> bool {
    actor.is(Role::Teacher) && actor.taught_groups.contains(&g)
}

/// A pupil of the group, or a parent of one (as for the diary: parents see
/// what their child's language or option group gets).
fn in_group(actor: &Actor, g: GroupId) -> bool {
    (actor.is(Role::Pupil) && actor.group_ids.contains(&g))
        || (actor.is(Role::Parent) && actor.children.iter().any(|ch| ch.group_ids.contains(&g)))
}

/// What a space gives the actor, before any share: their own space is
/// theirs; a class's or group's space is written by its teachers and read
/// by its pupils, by the class's parents and by staff of the
/// establishment; the establishment's space is written by its staff and
/// read by its teachers. Administrators get nothing by default: a person's
/// documents are private, and school spaces belong to the school.
pub fn space_access(actor: &Actor, space: Space) -> Access {
    match space {
        Space::Person(p) if p == actor.person_id => Access::Write,
        Space::Person(_) => Access::None,
        Space::Class(c, e) => {
            if teaches_class(actor, c) {
                Access::Write
            } else if in_class(actor, c) || is_staff_of(actor, e) {
                Access::Read
            } else {
                Access::None
            }
        }
        Space::Group(g, e) => {
            if teaches_group(actor, g) {
                Access::Write
            } else if in_group(actor, g) || is_staff_of(actor, e) {
                Access::Read
            } else {
                Access::None
            }
        }
        Space::Establishment(e) => {
            if is_staff_of(actor, e) {
                Access::Write
            } else if actor.is(Role::Teacher) && actor.establishment_id == e {
                Access::Read
            } else {
                Access::None
            }
        }
    }
}

/// Whether a share reaches the actor: a class share reaches its pupils,
/// their parents and its teachers; a group share its pupils, their parents
/// and its teachers;
/// a person share that person.
pub fn share_reaches(actor: &Actor, target: ShareTarget) -> bool {
    match target {
        ShareTarget::Class(c) => in_class(actor, c) || teaches_class(actor, c),
        ShareTarget::Group(g) => in_group(actor, g) || teaches_group(actor, g),
        ShareTarget::Person(p) => p == actor.person_id,
    }
}

/// What the actor may do with an item in `space`, given the shares on the
/// item and on every folder above it.
pub fn item_access(actor: &Actor, space: Space, shares: &[ShareRef]) -> Access {
    let mut best = space_access(actor, space);
    for s in shares {
        if best == Access::Write {
            break;
        }
        if share_reaches(actor, s.target) {
            // Only a person share can grant writing (a class never writes).
            let got = if s.write && matches!(s.target, ShareTarget::Person(_)) {
                Access::Write
            } else {
                Access::Read
            };
            best = best.max(got);
        }
    }
    best
}

/// The share targets that reach the actor; list queries ("shared with
/// me", search) match shares against these in SQL. Same rule as
/// [`share_reaches`].
pub fn share_audience(actor: &Actor) -> Vec<ShareTarget> {
    let mut out = vec![ShareTarget::Person(actor.person_id)];
    if actor.is(Role::Pupil) {
        out.extend(actor.class_id.map(ShareTarget::Class));
        out.extend(actor.group_ids.iter().copied().map(ShareTarget::Group));
    }
    if actor.is(Role::Parent) {
        out.extend(
            actor
                .children
                .iter()
                .filter_map(|c| c.class_id)
                .map(ShareTarget::Class),
        );
        out.extend(
            actor
                .children
                .iter()
                .flat_map(|c| c.group_ids.iter().copied())
                .map(ShareTarget::Group),
        );
    }
    if actor.is(Role::Teacher) {
        out.extend(actor.taught_classes.iter().copied().map(ShareTarget::Class));
        out.extend(actor.taught_groups.iter().copied().map(ShareTarget::Group));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(*t));
    out
}

/// The spaces whose folders the actor may read without a share; list
/// queries start from these. Same rule as [`space_access`].
pub fn readable_spaces(actor: &Actor) -> Vec<Space> {
    let e = actor.establishment_id;
    let mut out = vec![Space::Person(actor.person_id)];
    if actor.is(Role::Pupil) {
        out.extend(actor.class_id.map(|c| Space::Class(c, e)));
        out.extend(actor.group_ids.iter().map(|g| Space::Group(*g, e)));
    }
    if actor.is(Role::Parent) {
        out.extend(
            actor
                .children
                .iter()
                .filter_map(|c| c.class_id)
                .map(|c| Space::Class(c, e)),
        );
        out.extend(
            actor
                .children
                .iter()
                .flat_map(|c| c.group_ids.iter())
                .map(|g| Space::Group(*g, e)),
        );
    }
    if actor.is(Role::Teacher) {
        out.extend(actor.taught_classes.iter().map(|c| Space::Class(*c, e)));
        out.extend(actor.taught_groups.iter().map(|g| Space::Group(*g, e)));
        out.push(Space::Establishment(e));
    }
    if actor.is(Role::Staff) {
        out.push(Space::Establishment(e));
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|s| seen.insert(*s));
    out
}

/// A colleague as the sharing rule sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Colleague {
    /// Who.
    pub id: PersonId,
    /// Their establishment.
    pub establishment_id: EstablishmentId,
    /// Whether they are a teacher or staff (only adults of the school).
    pub school_adult: bool,
}

/// Whether the actor, who may write the item, may share it with `target`:
/// only teachers (and staff, with colleagues) share; a class or a group
/// only if they teach it; a person only if they are a teacher or staff of
/// the same establishment (not themselves). `write` is only for colleagues.
pub fn may_share_with(
    actor: &Actor,
    item: Access,
    target: ShareTarget,
    write: bool,
    colleague: Option<Colleague>,
) -> bool {
    if !item.write() || !(actor.is(Role::Teacher) || actor.is(Role::Staff)) {
        return false;
    }
    match target {
        ShareTarget::Class(c) => !write && teaches_class(actor, c),
        ShareTarget::Group(g) => !write && teaches_group(actor, g),
        ShareTarget::Person(p) => colleague.is_some_and(|col| {
            col.id == p
                && p != actor.person_id
                && col.school_adult
                && col.establishment_id == actor.establishment_id
        }),
    }
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameError {
    /// Empty or only blanks.
    Empty,
    /// Longer than [`MAX_NAME_CHARS`].
    TooLong,
    /// Contains `/`, `\`, a control or text-direction character, or is `.`
    /// or `..`.
    Forbidden,
}

impl NameError {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            NameError::Empty => "document_name_empty",
            NameError::TooLong => "document_name_too_long",
            NameError::Forbidden => "document_name_invalid",
        }
    }
}

/// Checks and trims the name of a folder or document.
pub fn validate_name(raw: &str) -> Result<String, NameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    let bidi = |c: char| matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if name == "."
        || name == ".."
        || name.contains(['/', '\\'])
        || name.chars().any(|c| c.is_control() || bidi(c))
    {
        return Err(NameError::Forbidden);
    }
    Ok(name.to_string())
}

/// Whether moving folder `moved` under `new_parent` is refused because it
/// would put a folder inside itself. `ancestors_of_new_parent` lists the
/// new parent and every folder above it.
pub fn move_creates_cycle(moved: i64, ancestors_of_new_parent: &[i64]) -> bool {
    ancestors_of_new_parent.contains(&moved)
}

/// Whether a trashed item is old enough to purge at `now`.
pub fn trash_expired(trashed_at: i64, now: i64) -> bool {
    now - trashed_at >= TRASH_DAYS * 86_400
}

/// Storage allowed per role, in bytes; a person holding several roles gets
/// the largest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleLimits {
    pub pupil: u64,
    pub parent: u64,
    pub teacher: u64,
    pub staff: u64,
    pub admin: u64,
}

impl RoleLimits {
    /// The limit for someone holding `actor`'s roles.
    pub fn for_actor(&self, actor: &Actor) -> u64 {
        actor
            .roles
            .iter()
            .map(|r| match r {
                Role::Pupil => self.pupil,
                Role::Parent => self.parent,
                Role::Teacher => self.teacher,
                Role::Staff => self.staff,
                Role::Admin => self.admin,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Default quotas: pupil 200 MiB, parent 50 MiB, teacher 2 GiB, staff 2 GiB,
/// administrator 1 GiB.
pub const DEFAULT_QUOTAS: RoleLimits = RoleLimits {
    pupil: 200 << 20,
    parent: 50 << 20,
    teacher: 2 << 30,
    staff: 2 << 30,
    admin: 1 << 30,
};

/// Default largest upload per role: pupils and parents 20 MiB, teachers,
/// staff and administrators 100 MiB (the largest request body the surge
/// layer accepts by default).
pub const DEFAULT_UPLOAD_LIMITS: RoleLimits = RoleLimits {
    pupil: 20 << 20,
    parent: 20 << 20,
    teacher: 100 << 20,
    staff: 100 << 20,
    admin: 100 << 20,
};

/// The most one upload may take: the smaller of the role's upload limit
/// and what is left of the quota; and whether the quota is the binding
/// bound (so that refusing past it says "quota exceeded", not "too large").
pub fn upload_allowance(upload_limit: u64, quota: u64, used: u64) -> (u64, bool) {
    let left = quota.saturating_sub(used);
    if left < upload_limit {
        (left, true)
    } else {
        (upload_limit, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ChildLink;
    use crate::Roles;

    const E1: EstablishmentId = EstablishmentId(1);
    const E2: EstablishmentId = EstablishmentId(2);
    const C_A: ClassId = ClassId(10);
    const C_B: ClassId = ClassId(11);
    const G1: GroupId = GroupId(20);

    fn actor(id: i64, roles: &[Role]) -> Actor {
        Actor {
            person_id: PersonId(id),
            establishment_id: E1,
            roles: roles.iter().copied().collect::<Roles>(),
            class_id: None,
            group_ids: vec![],
            children: vec![],
            taught_classes: vec![],
            taught_groups: vec![],
            teachings: vec![],
        }
    }
    fn pupil(id: i64, c: ClassId) -> Actor {
        Actor {
            class_id: Some(c),
            ..actor(id, &[Role::Pupil])
        }
    }
    fn parent(id: i64, c: ClassId) -> Actor {
        Actor {
            children: vec![ChildLink {
                pupil_id: PersonId(1),
                class_id: Some(c),
                legal_guardian: true,
                group_ids: vec![],
            }],
            ..actor(id, &[Role::Parent])
        }
    }
    fn teacher(id: i64, c: ClassId) -> Actor {
        Actor {
            taught_classes: vec![c],
            taught_groups: vec![G1],
            ..actor(id, &[Role::Teacher])
        }
    }

    #[test]
    fn spaces_give_what_the_school_expects() {
        let class_a = Space::Class(C_A, E1);
        let est = Space::Establishment(E1);
        let own = Space::Person(PersonId(1));
        let staff = actor(7, &[Role::Staff]);
        let foreign_staff = Actor {
            establishment_id: E2,
            ..actor(8, &[Role::Staff])
        };
        let admin = actor(9, &[Role::Admin]);
        use Access::*;
        // (who, class A space, establishment space, pupil 1's own space)
        let table = [
            ("pupil of A (1)", pupil(1, C_A), Read, None, Write),
            ("pupil of B", pupil(2, C_B), None, None, None),
            ("parent of A", parent(3, C_A), Read, None, None),
            ("parent of B", parent(4, C_B), None, None, None),
            ("teacher of A", teacher(5, C_A), Write, Read, None),
            ("teacher of B", teacher(6, C_B), None, Read, None),
            ("staff", staff, Read, Write, None),
            ("foreign staff", foreign_staff, None, None, None),
            ("admin", admin, None, None, None),
        ];
        for (who, a, class, e, mine) in table {
            assert_eq!(space_access(&a, class_a), class, "{who}: class space");
            assert_eq!(space_access(&a, est), e, "{who}: establishment space");
            assert_eq!(space_access(&a, own), mine, "{who}: pupil 1's space");
        }
    }

    #[test]
    fn shares_reach_the_class_its_parents_and_named_colleagues() {
        let teachers_space = Space::Person(PersonId(5));
        let to_a = [ShareRef {
            target: ShareTarget::Class(C_A),
            write: false,
        }];
        assert_eq!(
            item_access(&pupil(1, C_A), teachers_space, &to_a),
            Access::Read
        );
        assert_eq!(
            item_access(&parent(3, C_A), teachers_space, &to_a),
            Access::Read
        );
        assert_eq!(
            item_access(&pupil(2, C_B), teachers_space, &to_a),
            Access::None
        );
        assert_eq!(
            item_access(&parent(4, C_B), teachers_space, &to_a),
            Access::None
        );
        // A class share never grants writing, even if marked so.
        let bad = [ShareRef {
            target: ShareTarget::Class(C_A),
            write: true,
        }];
        assert_eq!(
            item_access(&pupil(1, C_A), teachers_space, &bad),
            Access::Read
        );
        let colleague = [ShareRef {
            target: ShareTarget::Person(PersonId(6)),
            write: true,
        }];
        assert_eq!(
            item_access(&teacher(6, C_B), teachers_space, &colleague),
            Access::Write
        );
        assert_eq!(
            item_access(&pupil(2, C_B), teachers_space, &colleague),
            Access::None
        );
        let group = [ShareRef {
            target: ShareTarget::Group(G1),
            write: false,
        }];
        let in_group = Actor {
            group_ids: vec![G1],
            ..pupil(2, C_B)
        };
        assert_eq!(item_access(&in_group, teachers_space, &group), Access::Read);
        assert_eq!(
            item_access(&pupil(1, C_A), teachers_space, &group),
            Access::None
        );
        // The parent of a pupil of the group reads it too; the parent of a
        // pupil of the same class outside the group does not.
        let group_parent = Actor {
            children: vec![ChildLink {
                pupil_id: PersonId(2),
                class_id: Some(C_B),
                legal_guardian: true,
                group_ids: vec![G1],
            }],
            ..actor(4, &[Role::Parent])
        };
        assert_eq!(
            item_access(&group_parent, teachers_space, &group),
            Access::Read
        );
        assert_eq!(
            item_access(&parent(3, C_B), teachers_space, &group),
            Access::None
        );
        assert_eq!(
            space_access(&group_parent, Space::Group(G1, E1)),
            Access::Read
        );
        assert_eq!(
            space_access(&parent(3, C_B), Space::Group(G1, E1)),
            Access::None
        );
    }

    #[test]
    fn lists_match_single_checks() {
        // Every audience target reaches the actor, and every space listed
        // is readable: lists never show more than single checks allow.
        let people = [
            pupil(1, C_A),
            Actor {
                group_ids: vec![G1],
                ..pupil(2, C_B)
            },
            parent(3, C_A),
            Actor {
                children: vec![ChildLink {
                    pupil_id: PersonId(2),
                    class_id: Some(C_B),
                    legal_guardian: true,
                    group_ids: vec![G1],
                }],
                ..actor(4, &[Role::Parent])
            },
            teacher(5, C_A),
            actor(7, &[Role::Staff]),
            actor(9, &[Role::Admin]),
        ];
        for a in &people {
            for t in share_audience(a) {
                assert!(share_reaches(a, t), "{:?} {t:?}", a.roles);
            }
            for s in readable_spaces(a) {
                assert!(space_access(a, s).read(), "{:?} {s:?}", a.roles);
            }
        }
        assert!(!share_audience(&pupil(1, C_A)).contains(&ShareTarget::Class(C_B)));
    }

    #[test]
    fn teachers_share_only_with_their_classes_and_colleagues() {
        let t = teacher(5, C_A);
        let w = Access::Write;
        assert!(may_share_with(&t, w, ShareTarget::Class(C_A), false, None));
        assert!(
            !may_share_with(&t, w, ShareTarget::Class(C_B), false, None),
            "not taught"
        );
        assert!(
            !may_share_with(&t, w, ShareTarget::Class(C_A), true, None),
            "class writes"
        );
        assert!(!may_share_with(
            &t,
            Access::Read,
            ShareTarget::Class(C_A),
            false,
            None
        ));
        assert!(!may_share_with(
            &pupil(1, C_A),
            w,
            ShareTarget::Class(C_A),
            false,
            None
        ));
        let col = |id, e, adult| Colleague {
            id: PersonId(id),
            establishment_id: e,
            school_adult: adult,
        };
        let p6 = ShareTarget::Person(PersonId(6));
        assert!(may_share_with(&t, w, p6, true, Some(col(6, E1, true))));
        assert!(
            !may_share_with(&t, w, p6, false, Some(col(6, E1, false))),
            "a pupil"
        );
        assert!(
            !may_share_with(&t, w, p6, false, Some(col(6, E2, true))),
            "elsewhere"
        );
        assert!(!may_share_with(&t, w, p6, false, None), "unknown");
        let me = ShareTarget::Person(PersonId(5));
        assert!(!may_share_with(&t, w, me, false, Some(col(5, E1, true))));
    }

    #[test]
    fn names_are_single_visible_names() {
        assert_eq!(validate_name("  Fiche 1.pdf "), Ok("Fiche 1.pdf".into()));
        assert_eq!(validate_name(" "), Err(NameError::Empty));
        assert_eq!(validate_name(&"a".repeat(1000)), Err(NameError::TooLong));
        for bad in ["a/b", "a\\b", "a\u{0}b", "a\nb", "..", "x\u{202E}fdp.exe"] {
            assert_eq!(validate_name(bad), Err(NameError::Forbidden), "{bad:?}");
        }
    }

    #[test]
    fn moves_into_itself_or_below_are_cycles() {
        assert!(move_creates_cycle(3, &[3, 2, 1]), "into itself");
        assert!(move_creates_cycle(2, &[3, 2, 1]), "into a descendant");
        assert!(!move_creates_cycle(4, &[3, 2, 1]));
    }

    #[test]
    fn trash_and_quotas() {
        assert!(!trash_expired(0, TRASH_DAYS * 86_400 - 1));
        assert!(trash_expired(0, TRASH_DAYS * 86_400));
        let tp = Actor {
            roles: Roles::only(Role::Teacher).with(Role::Parent),
            ..actor(1, &[])
        };
        assert_eq!(
            DEFAULT_QUOTAS.for_actor(&tp),
            2 << 30,
            "the largest role wins"
        );
        assert_eq!(DEFAULT_QUOTAS.for_actor(&pupil(1, C_A)), 200 << 20);
        assert_eq!(upload_allowance(100, 1000, 0), (100, false));
        assert_eq!(upload_allowance(100, 1000, 950), (50, true));
        assert_eq!(upload_allowance(100, 1000, 2000), (0, true));
    }
}
