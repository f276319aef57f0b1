//! Who may see or do what: the one place that answers "may this person do
//! this to that". Handlers ask here; list queries take a [`ClassScope`]
//! computed here and apply it in SQL, so a list never shows more than the
//! single-item check would allow.
//!
//! The policy decides from an [`Actor`] (the signed-in person with their
//! relationships, loaded once per session) and small references to the
//! target; it never touches the store.

use crate::{ClassId, EstablishmentId, GroupId, PersonId, Role, Roles, SubjectId};
use serde::Serialize;

/// A parent's link to one of their children.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChildLink {
    /// The child.
    pub pupil_id: PersonId,
    /// The child's class this year, if any.
    pub class_id: Option<ClassId>,
    /// Whether the parent is a legal guardian (responsable légal).
    pub legal_guardian: bool,
    /// The child's teaching groups (languages, options).
    pub group_ids: Vec<GroupId>,
}

/// Whom a lesson or homework is for: a class, or a teaching group (a
/// language or an option, often across classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Audience {
    /// Every pupil of a class.
    Class(ClassId),
    /// The members of a teaching group.
    Group(GroupId),
}

impl Audience {
    /// The class, if it is one.
    pub fn class_id(self) -> Option<ClassId> {
        match self {
            Audience::Class(c) => Some(c),
            Audience::Group(_) => None,
        }
    }

    /// The group, if it is one.
    pub fn group_id(self) -> Option<GroupId> {
        match self {
            Audience::Group(g) => Some(g),
            Audience::Class(_) => None,
        }
    }

    /// The audience a stored row names: its class, else its group.
    pub fn from_columns(class_id: Option<ClassId>, group_id: Option<GroupId>) -> Option<Audience> {
        match (class_id, group_id) {
            (Some(c), None) => Some(Audience::Class(c)),
            (None, Some(g)) => Some(Audience::Group(g)),
            _ => None,
        }
    }
}

/// A class or group as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudienceRef {
    /// The class or group.
    pub audience: Audience,
    /// Its establishment.
    pub establishment_id: EstablishmentId,
}

impl From<ClassRef> for AudienceRef {
    fn from(c: ClassRef) -> AudienceRef {
        AudienceRef {
            audience: Audience::Class(c.id),
            establishment_id: c.establishment_id,
        }
    }
}

/// What the actor may do with one lesson or homework they may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRights {
    /// Teaches this subject to this class or group: edits it, sees
    /// everyone's work, returns feedback, downloads the archive.
    pub teaches: bool,
    /// Sees everyone's work read-only and what is scheduled (the
    /// audience's other teachers, staff of its establishment, admins).
    pub oversees: bool,
}

/// One of a teacher's assignments: a subject to a class or a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TeachingRef {
    /// The subject.
    pub subject_id: SubjectId,
    /// The class taught, if it is a class.
    pub class_id: Option<ClassId>,
    /// The group taught, if it is a group.
    pub group_id: Option<GroupId>,
}

/// The signed-in person and the relationships that authorization needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Actor {
    /// Who.
    pub person_id: PersonId,
    /// Their establishment.
    pub establishment_id: EstablishmentId,
    /// Every role they hold.
    pub roles: Roles,
    /// As a pupil: their class.
    pub class_id: Option<ClassId>,
    /// As a pupil: their groups.
    pub group_ids: Vec<GroupId>,
    /// As a parent: their children.
    pub children: Vec<ChildLink>,
    /// As a teacher: the classes they teach.
    pub taught_classes: Vec<ClassId>,
    /// As a teacher: the groups they teach.
    pub taught_groups: Vec<GroupId>,
    /// As a teacher: what they teach to whom.
    pub teachings: Vec<TeachingRef>,
}

/// A class as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassRef {
    /// The class.
    pub id: ClassId,
    /// Its establishment.
    pub establishment_id: EstablishmentId,
}

/// A person as the policy sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersonRef {
    /// The person.
    pub id: PersonId,
    /// Their establishment.
    pub establishment_id: EstablishmentId,
    /// Their roles.
    pub roles: Roles,
    /// As a pupil: their class.
    pub class_id: Option<ClassId>,
}

/// Which classes a list may show; the store applies it in the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClassScope {
    /// Every class of every establishment (administrators).
    All,
    /// Every class of one establishment (staff).
    Establishment(EstablishmentId),
    /// Only these classes (pupils, parents, teachers).
    Only(Vec<ClassId>),
}

impl Actor {
    /// Whether the actor holds `role`.
    pub fn is(&self, role: Role) -> bool {
        self.roles.has(role)
    }

    fn is_staff_of(&self, establishment_id: EstablishmentId) -> bool {
        self.is(Role::Staff) && self.establishment_id == establishment_id
    }

    /// Whether the actor is a parent of this pupil.
    pub fn is_parent_of(&self, pupil: PersonId) -> bool {
        self.is(Role::Parent) && self.children.iter().any(|c| c.pupil_id == pupil)
    }

    fn teaches_class(&self, class: ClassId) -> bool {
        self.is(Role::Teacher) && self.taught_classes.contains(&class)
    }

    fn teaches_group(&self, group: GroupId) -> bool {
        self.is(Role::Teacher) && self.taught_groups.contains(&group)
    }

    /// Whether the actor teaches (any subject to) this class or group.
    pub fn teaches(&self, audience: Audience) -> bool {
        match audience {
            Audience::Class(c) => self.teaches_class(c),
            Audience::Group(g) => self.teaches_group(g),
        }
    }

    /// Whether the actor is a pupil of this class or group.
    pub fn is_pupil_of(&self, audience: Audience) -> bool {
        self.is(Role::Pupil)
            && match audience {
                Audience::Class(c) => self.class_id == Some(c),
                Audience::Group(g) => self.group_ids.contains(&g),
            }
    }

    /// Whether one of the actor's children is a pupil of this class or
    /// group.
    pub fn is_parent_in(&self, audience: Audience) -> bool {
        self.is(Role::Parent)
            && self.children.iter().any(|c| match audience {
                Audience::Class(id) => c.class_id == Some(id),
                Audience::Group(g) => c.group_ids.contains(&g),
            })
    }
}

/// Whether the actor may see a class (its name, its diary later on).
pub fn may_read_class(actor: &Actor, class: ClassRef) -> bool {
    actor.is(Role::Admin)
        || actor.is_staff_of(class.establishment_id)
        || actor.teaches_class(class.id)
        || (actor.is(Role::Pupil) && actor.class_id == Some(class.id))
        || (actor.is(Role::Parent) && actor.children.iter().any(|c| c.class_id == Some(class.id)))
}

/// Whether the actor may list the pupils of a class. Parents may not:
/// they see their own children, not their children's classmates.
pub fn may_read_class_roster(actor: &Actor, class: ClassRef) -> bool {
    actor.is(Role::Admin)
        || actor.is_staff_of(class.establishment_id)
        || actor.teaches_class(class.id)
        || (actor.is(Role::Pupil) && actor.class_id == Some(class.id))
}

/// The classes a list of classes may show to the actor.
pub fn class_scope(actor: &Actor) -> ClassScope {
    if actor.is(Role::Admin) {
        return ClassScope::All;
    }
    if actor.is(Role::Staff) {
        return ClassScope::Establishment(actor.establishment_id);
    }
    let mut ids: Vec<ClassId> = Vec::new();
    if actor.is(Role::Teacher) {
        ids.extend(&actor.taught_classes);
    }
    if actor.is(Role::Pupil) {
        ids.extend(actor.class_id);
    }
    if actor.is(Role::Parent) {
        ids.extend(actor.children.iter().filter_map(|c| c.class_id));
    }
    ids.sort();
    ids.dedup();
    ClassScope::Only(ids)
}

/// Whether the actor may see another person's directory card (name, roles,
/// class). Everyone sees themselves; parents see their children; pupils,
/// parents and teachers see the teachers and staff of their establishment;
/// teachers see the pupils they teach; staff see their establishment.
pub fn may_read_person(actor: &Actor, person: PersonRef) -> bool {
    if actor.person_id == person.id
        || actor.is(Role::Admin)
        || actor.is_staff_of(person.establishment_id)
    {
        return true;
    }
    if actor.is_parent_of(person.id) {
        return true;
    }
    let same_establishment = actor.establishment_id == person.establishment_id;
    let is_school_adult = person.roles.has(Role::Teacher) || person.roles.has(Role::Staff);
    if same_establishment && is_school_adult && !actor.roles.is_empty() {
        return true;
    }
    if let Some(class) = person.class_id.filter(|_| person.roles.has(Role::Pupil)) {
        return actor.teaches_class(class)
            || (actor.is(Role::Pupil) && actor.class_id == Some(class));
    }
    false
}

/// Whether the actor may read the homework diary of a class or group: its
/// pupils and their parents, its teachers, staff of its establishment,
/// admins.
pub fn may_read_diary(actor: &Actor, target: impl Into<AudienceRef>) -> bool {
    let target = target.into();
    actor.is(Role::Admin)
        || actor.is_staff_of(target.establishment_id)
        || actor.teaches(target.audience)
        || actor.is_pupil_of(target.audience)
        || actor.is_parent_in(target.audience)
}

/// Whether the actor may write lessons and homework of `subject` for a
/// class or group: only a teacher who teaches that subject to it.
pub fn may_write_diary(actor: &Actor, audience: Audience, subject: SubjectId) -> bool {
    actor.is(Role::Teacher)
        && actor.teachings.iter().any(|t| {
            t.subject_id == subject
                && match audience {
                    Audience::Class(c) => t.class_id == Some(c),
                    Audience::Group(g) => t.group_id == Some(g),
                }
        })
}

/// Whether the actor oversees the work of a class or group: sees what is
/// scheduled and not yet published, every pupil's hand-ins and feedback
/// (its teachers of any subject, staff of its establishment, admins; never
/// its pupils or parents).
pub fn may_oversee_work(actor: &Actor, target: impl Into<AudienceRef>) -> bool {
    let target = target.into();
    actor.is(Role::Admin)
        || actor.is_staff_of(target.establishment_id)
        || actor.teaches(target.audience)
}

/// What the actor may do with one lesson or homework of `target` in
/// `subject`, published at `publish_at`: `None` if they may not see it
/// (not their class or group, or not yet published and they do not
/// oversee it). The one rule for the week view, "À faire", the homework
/// pages and the attached files.
pub fn diary_item_rights(
    actor: &Actor,
    target: AudienceRef,
    subject: SubjectId,
    publish_at: i64,
    now: i64,
) -> Option<ItemRights> {
    if !may_read_diary(actor, target) {
        return None;
    }
    let teaches = may_write_diary(actor, target.audience, subject);
    let oversees = teaches || may_oversee_work(actor, target);
    (publish_at <= now || oversees).then_some(ItemRights { teaches, oversees })
}

/// Whether the actor may see a pupil's own work and "to do" list: the pupil,
/// their parents, the teachers of their class, staff of their
/// establishment, administrators.
pub fn may_see_pupil_work(actor: &Actor, pupil: PersonRef) -> bool {
    actor.person_id == pupil.id
        || actor.is_parent_of(pupil.id)
        || actor.is(Role::Admin)
        || actor.is_staff_of(pupil.establishment_id)
        || pupil.class_id.is_some_and(|c| actor.teaches_class(c))
}

/// Whether the actor may use the administrator console: establishments,
/// classes, accounts, sessions of others.
pub fn may_administer(actor: &Actor) -> bool {
    actor.is(Role::Admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    const E1: EstablishmentId = EstablishmentId(1);
    const E2: EstablishmentId = EstablishmentId(2);
    const C6A: ClassId = ClassId(10);
    const C6B: ClassId = ClassId(11);
    /// A group pupil 1 (of 6A) belongs to.
    const G1: GroupId = GroupId(20);

    fn actor(id: i64, roles: &[Role]) -> Actor {
        Actor {
            person_id: PersonId(id),
            establishment_id: E1,
            roles: roles.iter().copied().collect(),
            class_id: None,
            group_ids: vec![],
            children: vec![],
            taught_classes: vec![],
            taught_groups: vec![],
            teachings: vec![],
        }
    }

    fn pupil_of(class: ClassId) -> Actor {
        Actor {
            class_id: Some(class),
            ..actor(1, &[Role::Pupil])
        }
    }

    fn parent_of(class: ClassId) -> Actor {
        Actor {
            children: vec![ChildLink {
                pupil_id: PersonId(1),
                class_id: Some(class),
                legal_guardian: true,
                group_ids: vec![G1],
            }],
            ..actor(2, &[Role::Parent])
        }
    }

    fn teacher_of(class: ClassId) -> Actor {
        Actor {
            taught_classes: vec![class],
            teachings: vec![TeachingRef {
                subject_id: SubjectId(1),
                class_id: Some(class),
                group_id: None,
            }],
            ..actor(3, &[Role::Teacher])
        }
    }

    #[test]
    fn class_access_follows_relationships() {
        let c6a = ClassRef {
            id: C6A,
            establishment_id: E1,
        };
        let other_school = ClassRef {
            id: ClassId(99),
            establishment_id: E2,
        };
        let staff = actor(4, &[Role::Staff]);
        let admin = actor(5, &[Role::Admin]);
        // (actor, may read class 6A, may read its roster, may read a class of another school)
        let table: Vec<(&str, Actor, bool, bool, bool)> = vec![
            ("pupil of 6A", pupil_of(C6A), true, true, false),
            ("pupil of 6B", pupil_of(C6B), false, false, false),
            ("parent of a 6A pupil", parent_of(C6A), true, false, false),
            ("parent of a 6B pupil", parent_of(C6B), false, false, false),
            ("teacher of 6A", teacher_of(C6A), true, true, false),
            ("teacher of 6B", teacher_of(C6B), false, false, false),
            ("staff", staff, true, true, false),
            ("admin", admin, true, true, true),
        ];
        for (who, a, read, roster, other) in table {
            assert_eq!(may_read_class(&a, c6a), read, "{who}: read class");
            assert_eq!(may_read_class_roster(&a, c6a), roster, "{who}: read roster");
            assert_eq!(
                may_read_class(&a, other_school),
                other,
                "{who}: other school"
            );
        }
    }

    #[test]
    fn class_scope_is_what_single_checks_allow() {
        assert_eq!(class_scope(&pupil_of(C6A)), ClassScope::Only(vec![C6A]));
        assert_eq!(class_scope(&parent_of(C6B)), ClassScope::Only(vec![C6B]));
        assert_eq!(
            class_scope(&actor(4, &[Role::Staff])),
            ClassScope::Establishment(E1)
        );
        assert_eq!(class_scope(&actor(5, &[Role::Admin])), ClassScope::All);
        let teacher_parent = Actor {
            children: parent_of(C6B).children,
            ..teacher_of(C6A)
        };
        let teacher_parent = Actor {
            roles: teacher_parent.roles.with(Role::Parent),
            ..teacher_parent
        };
        assert_eq!(
            class_scope(&teacher_parent),
            ClassScope::Only(vec![C6A, C6B])
        );
    }

    #[test]
    fn people_are_visible_only_through_a_relationship() {
        let child = PersonRef {
            id: PersonId(1),
            establishment_id: E1,
            roles: Roles::only(Role::Pupil),
            class_id: Some(C6A),
        };
        let other_child = PersonRef {
            id: PersonId(7),
            ..child
        };
        let other_class_child = PersonRef {
            id: PersonId(8),
            class_id: Some(C6B),
            ..child
        };
        let teacher = PersonRef {
            id: PersonId(3),
            establishment_id: E1,
            roles: Roles::only(Role::Teacher),
            class_id: None,
        };
        let foreign_teacher = PersonRef {
            establishment_id: E2,
            id: PersonId(30),
            ..teacher
        };

        let parent = parent_of(C6A);
        assert!(may_read_person(&parent, child));
        assert!(
            !may_read_person(&parent, other_child),
            "a parent does not see classmates"
        );
        assert!(may_read_person(&parent, teacher));
        assert!(!may_read_person(&parent, foreign_teacher));

        let t = teacher_of(C6A);
        assert!(may_read_person(&t, other_child));
        assert!(!may_read_person(&t, other_class_child));

        let p = pupil_of(C6A);
        assert!(may_read_person(&p, other_child));
        assert!(!may_read_person(&p, other_class_child));
        let their_parent = PersonRef {
            id: PersonId(2),
            establishment_id: E1,
            roles: Roles::only(Role::Parent),
            class_id: None,
        };
        assert!(
            !may_read_person(&p, their_parent),
            "pupils do not browse parents"
        );
    }

    #[test]
    fn only_the_teacher_of_the_subject_and_class_writes_its_diary() {
        let t = teacher_of(C6A);
        let (a, b) = (Audience::Class(C6A), Audience::Class(C6B));
        assert!(may_write_diary(&t, a, SubjectId(1)));
        assert!(!may_write_diary(&t, a, SubjectId(2)), "another subject");
        assert!(!may_write_diary(&t, b, SubjectId(1)), "another class");
        assert!(
            !may_write_diary(&t, Audience::Group(G1), SubjectId(1)),
            "a group of their class's pupils they do not teach"
        );
        for a in [
            pupil_of(C6A),
            parent_of(C6A),
            actor(4, &[Role::Staff]),
            actor(5, &[Role::Admin]),
        ] {
            assert!(
                !may_write_diary(&a, Audience::Class(C6A), SubjectId(1)),
                "{:?}",
                a.roles
            );
        }
    }

    #[test]
    fn a_pupils_work_is_seen_by_them_their_parents_teachers_and_staff() {
        let pupil = PersonRef {
            id: PersonId(1),
            establishment_id: E1,
            roles: Roles::only(Role::Pupil),
            class_id: Some(C6A),
        };
        assert!(may_see_pupil_work(&pupil_of(C6A), pupil), "themself");
        assert!(may_see_pupil_work(&parent_of(C6A), pupil));
        assert!(may_see_pupil_work(&teacher_of(C6A), pupil));
        assert!(may_see_pupil_work(&actor(4, &[Role::Staff]), pupil));
        assert!(
            !may_see_pupil_work(
                &Actor {
                    person_id: PersonId(9),
                    ..pupil_of(C6A)
                },
                pupil
            ),
            "a classmate"
        );
        assert!(
            !may_see_pupil_work(
                &Actor {
                    person_id: PersonId(8),
                    children: vec![],
                    ..parent_of(C6A)
                },
                pupil
            ),
            "another parent"
        );
        assert!(!may_see_pupil_work(&teacher_of(C6B), pupil));
        assert!(!may_see_pupil_work(
            &Actor {
                establishment_id: E2,
                ..actor(4, &[Role::Staff])
            },
            pupil
        ));
    }

    #[test]
    fn only_administrators_administer() {
        assert!(may_administer(&actor(5, &[Role::Admin])));
        for r in [Role::Pupil, Role::Parent, Role::Teacher, Role::Staff] {
            assert!(!may_administer(&actor(5, &[r])), "{r:?}");
        }
    }

    fn group_teacher() -> Actor {
        Actor {
            taught_groups: vec![G1],
            teachings: vec![TeachingRef {
                subject_id: SubjectId(2),
                class_id: None,
                group_id: Some(G1),
            }],
            ..actor(6, &[Role::Teacher])
        }
    }

    #[test]
    fn a_groups_diary_is_for_its_members_their_parents_its_teachers_and_staff() {
        let group = AudienceRef {
            audience: Audience::Group(G1),
            establishment_id: E1,
        };
        let member = Actor {
            group_ids: vec![G1],
            ..pupil_of(C6A)
        };
        let other_parent = Actor {
            children: vec![ChildLink {
                pupil_id: PersonId(9),
                class_id: Some(C6A),
                legal_guardian: true,
                group_ids: vec![],
            }],
            ..actor(8, &[Role::Parent])
        };
        let foreign_staff = Actor {
            establishment_id: E2,
            ..actor(4, &[Role::Staff])
        };
        // (who, reads, writes subject 2, oversees)
        let table: Vec<(&str, Actor, bool, bool, bool)> = vec![
            ("member", member, true, false, false),
            (
                "classmate outside the group",
                pupil_of(C6A),
                false,
                false,
                false,
            ),
            ("parent of a member", parent_of(C6A), true, false, false),
            ("parent of a non-member", other_parent, false, false, false),
            ("group teacher", group_teacher(), true, true, true),
            (
                "teacher of the class, not the group",
                teacher_of(C6A),
                false,
                false,
                false,
            ),
            ("staff", actor(4, &[Role::Staff]), true, false, true),
            (
                "staff of another school",
                foreign_staff,
                false,
                false,
                false,
            ),
            ("admin", actor(5, &[Role::Admin]), true, false, true),
        ];
        for (who, a, reads, writes, oversees) in table {
            assert_eq!(may_read_diary(&a, group), reads, "{who}: reads");
            assert_eq!(
                may_write_diary(&a, group.audience, SubjectId(2)),
                writes,
                "{who}: writes"
            );
            assert_eq!(may_oversee_work(&a, group), oversees, "{who}: oversees");
            // Published items: whoever reads; scheduled ones: whoever oversees.
            assert_eq!(
                diary_item_rights(&a, group, SubjectId(2), 100, 200).is_some(),
                reads,
                "{who}: published"
            );
            assert_eq!(
                diary_item_rights(&a, group, SubjectId(2), 300, 200).is_some(),
                oversees,
                "{who}: scheduled"
            );
        }
    }

    #[test]
    fn scheduled_class_items_are_for_those_who_oversee_the_class() {
        let c6a = AudienceRef {
            audience: Audience::Class(C6A),
            establishment_id: E1,
        };
        let other_subject = Actor {
            teachings: vec![TeachingRef {
                subject_id: SubjectId(3),
                class_id: Some(C6A),
                group_id: None,
            }],
            ..teacher_of(C6A)
        };
        let rights = |a: &Actor| diary_item_rights(a, c6a, SubjectId(1), 300, 200);
        assert_eq!(
            rights(&teacher_of(C6A)),
            Some(ItemRights {
                teaches: true,
                oversees: true
            })
        );
        assert_eq!(
            rights(&other_subject),
            Some(ItemRights {
                teaches: false,
                oversees: true
            }),
            "another teacher of the class sees it scheduled, read-only"
        );
        assert_eq!(rights(&pupil_of(C6A)), None);
        assert_eq!(rights(&parent_of(C6A)), None);
        assert_eq!(rights(&teacher_of(C6B)), None);
    }
}
