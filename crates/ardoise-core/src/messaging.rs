//! Messaging rules: who may write to whom (the establishment's
//! communication rules applied to an [`Actor`] and a [`Contact`]), which
//! whole audiences one may address, the limits against abuse, who may
//! contain an account, and who sees an announcement.
//!
//! Pure logic, with time passed in; the store resolves audiences into
//! people and the web layer asks here before anything is written.

use crate::policy::Actor;
use crate::{ClassId, EstablishmentId, GroupId, PersonId, Role, Roles};
use serde::{Deserialize, Serialize};

/// An establishment's communication rules, editable by its staff. The
/// defaults are the safe ones: pupils write to their teachers and the
/// school's staff only; parents to their children's teachers and staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommRules {
    /// Pupils may write to pupils of their own class.
    pub pupils_to_pupils: bool,
    /// Pupils may write to the parents of their classmates.
    pub pupils_to_parents: bool,
    /// Parents may write to the parents of their children's classmates.
    pub parents_to_parents: bool,
    /// Messages a pupil may send in an hour.
    pub pupil_hourly_limit: u32,
    /// Messages any other account may send in an hour.
    pub adult_hourly_limit: u32,
    /// Most recipients of one pupil's message.
    pub pupil_max_recipients: u32,
}

impl Default for CommRules {
    fn default() -> Self {
        CommRules {
            pupils_to_pupils: false,
            pupils_to_parents: false,
            parents_to_parents: false,
            pupil_hourly_limit: 20,
            adult_hourly_limit: 200,
            pupil_max_recipients: 5,
        }
    }
}

/// Bounds on the numbers staff may set in [`CommRules`].
pub const MAX_HOURLY_LIMIT: u32 = 10_000;
/// Bounds on a pupil's recipients per message that staff may set.
pub const MAX_PUPIL_RECIPIENTS: u32 = 50;

impl CommRules {
    /// Whether the numbers are within bounds (a limit of 0 stops sending).
    pub fn is_valid(&self) -> bool {
        self.pupil_hourly_limit <= MAX_HOURLY_LIMIT
            && self.adult_hourly_limit <= MAX_HOURLY_LIMIT
            && (1..=MAX_PUPIL_RECIPIENTS).contains(&self.pupil_max_recipients)
    }
}

/// A possible recipient as the rules see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// Who.
    pub id: PersonId,
    /// Their establishment.
    pub establishment_id: EstablishmentId,
    /// Their roles.
    pub roles: Roles,
    /// As a pupil: their class.
    pub class_id: Option<ClassId>,
    /// As a pupil: their groups.
    pub group_ids: Vec<GroupId>,
    /// As a parent: their children.
    pub child_ids: Vec<PersonId>,
    /// As a parent: their children's classes.
    pub children_classes: Vec<ClassId>,
    /// As a teacher: the classes they teach.
    pub taught_classes: Vec<ClassId>,
    /// As a teacher: the groups they teach.
    pub taught_groups: Vec<GroupId>,
}

impl Contact {
    /// A person with no relationship yet.
    pub fn new(id: PersonId, establishment_id: EstablishmentId, roles: Roles) -> Contact {
        Contact {
            id,
            establishment_id,
            roles,
            class_id: None,
            group_ids: Vec::new(),
            child_ids: Vec::new(),
            children_classes: Vec::new(),
            taught_classes: Vec::new(),
            taught_groups: Vec::new(),
        }
    }
}

fn overlaps<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.iter().any(|x| b.contains(x))
}

/// Whether the actor may start writing to (or add to a reply) this person.
/// Replying to someone who wrote to you is checked apart (see
/// [`may_reply_to`]).
pub fn may_write(actor: &Actor, to: &Contact, rules: &CommRules) -> bool {
    if to.id == actor.person_id || to.roles.is_empty() {
        return false;
    }
    let school_adult = to.roles.has(Role::Teacher) || to.roles.has(Role::Staff);
    if actor.is(Role::Admin) && school_adult {
        return true;
    }
    if to.establishment_id != actor.establishment_id {
        return false;
    }
    if actor.is(Role::Staff) {
        return true;
    }
    let to_pupil = to.roles.has(Role::Pupil);
    let to_parent = to.roles.has(Role::Parent);
    if actor.is(Role::Teacher) {
        if school_adult {
            return true;
        }
        let teaches_pupil = to
            .class_id
            .is_some_and(|c| actor.taught_classes.contains(&c))
            || overlaps(&to.group_ids, &actor.taught_groups);
        if to_pupil && teaches_pupil {
            return true;
        }
        if to_parent && overlaps(&to.children_classes, &actor.taught_classes) {
            return true;
        }
    }
    if actor.is(Role::Pupil) {
        let my_class = actor.class_id;
        if to.roles.has(Role::Staff) {
            return true;
        }
        let teaches_me = my_class.is_some_and(|c| to.taught_classes.contains(&c))
            || overlaps(&to.taught_groups, &actor.group_ids);
        if to.roles.has(Role::Teacher) && teaches_me {
            return true;
        }
        if to_parent && to.child_ids.contains(&actor.person_id) {
            return true;
        }
        if rules.pupils_to_pupils && to_pupil && my_class.is_some() && to.class_id == my_class {
            return true;
        }
        if rules.pupils_to_parents
            && to_parent
            && my_class.is_some_and(|c| to.children_classes.contains(&c))
        {
            return true;
        }
    }
    if actor.is(Role::Parent) {
        let classes: Vec<ClassId> = actor.children.iter().filter_map(|c| c.class_id).collect();
        if to.roles.has(Role::Staff) {
            return true;
        }
        if to.roles.has(Role::Teacher) && overlaps(&to.taught_classes, &classes) {
            return true;
        }
        if to_pupil && actor.is_parent_of(to.id) {
            return true;
        }
        if rules.parents_to_parents && to_parent && overlaps(&to.children_classes, &classes) {
            return true;
        }
    }
    false
}

/// Whether the actor may reply to a person in a conversation: anyone the
/// rules let them write to, and anyone who wrote to them there.
pub fn may_reply_to(actor: &Actor, to: &Contact, rules: &CommRules, wrote_to_me: bool) -> bool {
    (wrote_to_me && to.id != actor.person_id) || may_write(actor, to, rules)
}

/// A whole audience one may address at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Audience {
    /// One person.
    Person(PersonId),
    /// The pupils of a class.
    Class(ClassId),
    /// The pupils of a teaching group.
    Group(GroupId),
    /// The parents of a class's pupils.
    ClassParents(ClassId),
    /// The teachers of a class.
    ClassTeachers(ClassId),
}

impl Audience {
    /// The form's encoding: `person:12`, `class:3`, `group:4`,
    /// `parents:3`, `teachers:3`.
    pub fn encode(self) -> String {
        match self {
            Audience::Person(p) => format!("person:{p}"),
            Audience::Class(c) => format!("class:{c}"),
            Audience::Group(g) => format!("group:{g}"),
            Audience::ClassParents(c) => format!("parents:{c}"),
            Audience::ClassTeachers(c) => format!("teachers:{c}"),
        }
    }

    /// Reads [`Self::encode`]'s form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Audience> {
        let (kind, id) = s.trim().split_once(':')?;
        let id: i64 = id.trim().parse().ok().filter(|i| *i > 0)?;
        Some(match kind {
            "person" => Audience::Person(PersonId(id)),
            "class" => Audience::Class(ClassId(id)),
            "group" => Audience::Group(GroupId(id)),
            "parents" => Audience::ClassParents(ClassId(id)),
            "teachers" => Audience::ClassTeachers(ClassId(id)),
            _ => return None,
        })
    }

    /// Whether this audience is many people chosen as a whole.
    pub fn is_collective(self) -> bool {
        !matches!(self, Audience::Person(_))
    }
}

/// Whether the actor may address a whole audience (a class, a group, the
/// parents or teachers of a class) whose establishment is `establishment`.
/// Pupils never write to a whole class or group; parents never to a whole
/// class or its parents.
pub fn may_address(actor: &Actor, audience: Audience, establishment: EstablishmentId) -> bool {
    let staff = actor.is(Role::Staff) && actor.establishment_id == establishment;
    match audience {
        Audience::Person(_) => true,
        Audience::Class(c) | Audience::ClassParents(c) => {
            staff || (actor.is(Role::Teacher) && actor.taught_classes.contains(&c))
        }
        Audience::Group(g) => {
            staff || (actor.is(Role::Teacher) && actor.taught_groups.contains(&g))
        }
        Audience::ClassTeachers(c) => {
            staff
                || (actor.establishment_id == establishment
                    && (actor.is(Role::Teacher)
                        || (actor.is(Role::Pupil) && actor.class_id == Some(c))
                        || (actor.is(Role::Parent)
                            && actor.children.iter().any(|k| k.class_id == Some(c)))))
        }
    }
}

/// Why a message may not be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendRefusal {
    /// Staff suspended the account's sending.
    Suspended,
    /// The hourly limit is reached.
    RateLimited,
    /// A pupil's message names too many people.
    TooManyRecipients,
}

impl SendRefusal {
    /// The stable error code.
    pub fn code(self) -> &'static str {
        match self {
            SendRefusal::Suspended => "sending_suspended",
            SendRefusal::RateLimited => "sending_rate_limited",
            SendRefusal::TooManyRecipients => "too_many_recipients",
        }
    }
}

/// The limits against abuse: `sent_last_hour` messages already sent by the
/// actor in the last hour, `recipients` people this one would reach.
pub fn check_limits(
    actor: &Actor,
    rules: &CommRules,
    suspended: bool,
    sent_last_hour: u32,
    recipients: usize,
) -> Result<(), SendRefusal> {
    if suspended {
        return Err(SendRefusal::Suspended);
    }
    // A pupil who also holds an adult role (rare) gets the adult limits.
    let pupil_only = actor.is(Role::Pupil)
        && !actor.is(Role::Teacher)
        && !actor.is(Role::Staff)
        && !actor.is(Role::Admin);
    let limit = if pupil_only {
        rules.pupil_hourly_limit
    } else {
        rules.adult_hourly_limit
    };
    if sent_last_hour >= limit {
        return Err(SendRefusal::RateLimited);
    }
    if pupil_only && recipients > rules.pupil_max_recipients as usize {
        return Err(SendRefusal::TooManyRecipients);
    }
    Ok(())
}

/// Whether the actor may contain (suspend, quarantine) an account of
/// `establishment` and read the reports about it: its staff, or an
/// administrator.
pub fn may_contain(actor: &Actor, establishment: EstablishmentId) -> bool {
    actor.is(Role::Admin) || (actor.is(Role::Staff) && actor.establishment_id == establishment)
}

/// Whether the actor may edit the communication rules of an establishment.
pub fn may_edit_rules(actor: &Actor, establishment: EstablishmentId) -> bool {
    may_contain(actor, establishment)
}

/// Who an announcement is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnnouncementAudience {
    /// Everyone in the establishment.
    All,
    /// Every parent of the establishment.
    Parents,
    /// The pupils, parents and teachers of some classes.
    Class,
    /// The parents of some classes.
    ClassParents,
}

impl AnnouncementAudience {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AnnouncementAudience::All => "all",
            AnnouncementAudience::Parents => "parents",
            AnnouncementAudience::Class => "class",
            AnnouncementAudience::ClassParents => "class_parents",
        }
    }

    /// Reads a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "all" => AnnouncementAudience::All,
            "parents" => AnnouncementAudience::Parents,
            "class" => AnnouncementAudience::Class,
            "class_parents" => AnnouncementAudience::ClassParents,
            _ => return None,
        })
    }

    /// Whether the audience is made of classes.
    pub fn needs_classes(self) -> bool {
        matches!(
            self,
            AnnouncementAudience::Class | AnnouncementAudience::ClassParents
        )
    }
}

/// Whether the actor may publish an announcement for this audience in their
/// establishment: staff for any audience; teachers only for classes they
/// teach (to the class or to its parents).
pub fn may_announce(actor: &Actor, audience: AnnouncementAudience, classes: &[ClassId]) -> bool {
    if actor.is(Role::Staff) {
        return true;
    }
    actor.is(Role::Teacher)
        && audience.needs_classes()
        && !classes.is_empty()
        && classes.iter().all(|c| actor.taught_classes.contains(c))
}

/// What announcements a person sees; the store applies it in its query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnnouncementScope {
    /// Their establishment.
    pub establishment_id: EstablishmentId,
    /// Staff: every announcement of the establishment.
    pub everything: bool,
    /// Whether announcements to parents reach them.
    pub parent: bool,
    /// Classes whose `class` announcements reach them.
    pub classes: Vec<ClassId>,
    /// Classes whose `class_parents` announcements reach them.
    pub parent_classes: Vec<ClassId>,
    /// Their own announcements are always listed.
    pub author: PersonId,
}

/// The announcements the actor sees.
pub fn announcement_scope(actor: &Actor) -> AnnouncementScope {
    let child_classes: Vec<ClassId> = actor.children.iter().filter_map(|c| c.class_id).collect();
    let mut classes: Vec<ClassId> = child_classes.clone();
    classes.extend(actor.class_id.filter(|_| actor.is(Role::Pupil)));
    if actor.is(Role::Teacher) {
        classes.extend(&actor.taught_classes);
    }
    classes.sort();
    classes.dedup();
    let mut parent_classes = child_classes;
    if actor.is(Role::Teacher) {
        parent_classes.extend(&actor.taught_classes);
    }
    parent_classes.sort();
    parent_classes.dedup();
    AnnouncementScope {
        establishment_id: actor.establishment_id,
        everything: actor.is(Role::Staff) || actor.is(Role::Admin),
        parent: actor.is(Role::Parent),
        classes,
        parent_classes,
        author: actor.person_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::ChildLink;

    const E1: EstablishmentId = EstablishmentId(1);
    const E2: EstablishmentId = EstablishmentId(2);
    const C6A: ClassId = ClassId(10);
    const C6B: ClassId = ClassId(11);

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

    fn pupil(id: i64, class: ClassId) -> (Actor, Contact) {
        let a = Actor {
            class_id: Some(class),
            ..actor(id, &[Role::Pupil])
        };
        let c = Contact {
            class_id: Some(class),
            ..Contact::new(PersonId(id), E1, Roles::only(Role::Pupil))
        };
        (a, c)
    }

    fn parent(id: i64, child: i64, class: ClassId) -> (Actor, Contact) {
        let a = Actor {
            children: vec![ChildLink {
                pupil_id: PersonId(child),
                class_id: Some(class),
                legal_guardian: true,
                group_ids: vec![],
            }],
            ..actor(id, &[Role::Parent])
        };
        let c = Contact {
            child_ids: vec![PersonId(child)],
            children_classes: vec![class],
            ..Contact::new(PersonId(id), E1, Roles::only(Role::Parent))
        };
        (a, c)
    }

    fn teacher(id: i64, class: ClassId) -> (Actor, Contact) {
        let a = Actor {
            taught_classes: vec![class],
            ..actor(id, &[Role::Teacher])
        };
        let c = Contact {
            taught_classes: vec![class],
            ..Contact::new(PersonId(id), E1, Roles::only(Role::Teacher))
        };
        (a, c)
    }

    fn staff(id: i64, e: EstablishmentId) -> (Actor, Contact) {
        let a = Actor {
            establishment_id: e,
            ..actor(id, &[Role::Staff])
        };
        let c = Contact::new(PersonId(id), e, Roles::only(Role::Staff));
        (a, c)
    }

    #[test]
    fn default_rules_follow_the_school_relationships() {
        let rules = CommRules::default();
        let (pupil_a, pupil_a_c) = pupil(1, C6A);
        let (_, classmate_c) = pupil(7, C6A);
        let (_, pupil_b_c) = pupil(2, C6B);
        let (parent_a, parent_a_c) = parent(3, 1, C6A);
        let (_, parent_b_c) = parent(4, 2, C6B);
        let (_, classmate_parent_c) = parent(8, 7, C6A);
        let (teacher_a, teacher_a_c) = teacher(5, C6A);
        let (_, teacher_b_c) = teacher(6, C6B);
        let (staff_1, staff_1_c) = staff(9, E1);
        let (foreign, foreign_c) = staff(10, E2);
        // (who, actor, to, allowed)
        let table: Vec<(&str, &Actor, &Contact, bool)> = vec![
            ("pupil → own teacher", &pupil_a, &teacher_a_c, true),
            (
                "pupil → another class's teacher",
                &pupil_a,
                &teacher_b_c,
                false,
            ),
            ("pupil → staff", &pupil_a, &staff_1_c, true),
            ("pupil → classmate", &pupil_a, &classmate_c, false),
            (
                "pupil → another pupil's parent",
                &pupil_a,
                &classmate_parent_c,
                false,
            ),
            ("pupil → own parent", &pupil_a, &parent_a_c, true),
            ("pupil → foreign staff", &pupil_a, &foreign_c, false),
            ("pupil → self", &pupil_a, &pupil_a_c, false),
            ("parent → child's teacher", &parent_a, &teacher_a_c, true),
            ("parent → other teacher", &parent_a, &teacher_b_c, false),
            ("parent → staff", &parent_a, &staff_1_c, true),
            ("parent → own child", &parent_a, &pupil_a_c, true),
            ("parent → another child", &parent_a, &classmate_c, false),
            (
                "parent → another parent",
                &parent_a,
                &classmate_parent_c,
                false,
            ),
            ("teacher → pupil taught", &teacher_a, &pupil_a_c, true),
            ("teacher → pupil not taught", &teacher_a, &pupil_b_c, false),
            (
                "teacher → parent of pupil taught",
                &teacher_a,
                &parent_a_c,
                true,
            ),
            (
                "teacher → parent of pupil not taught",
                &teacher_a,
                &parent_b_c,
                false,
            ),
            ("teacher → colleague", &teacher_a, &teacher_b_c, true),
            ("teacher → foreign staff", &teacher_a, &foreign_c, false),
            ("staff → any pupil", &staff_1, &pupil_b_c, true),
            ("staff → any parent", &staff_1, &parent_b_c, true),
            ("foreign staff → pupil", &foreign, &pupil_a_c, false),
        ];
        for (who, a, to, allowed) in table {
            assert_eq!(may_write(a, to, &rules), allowed, "{who}");
        }
    }

    #[test]
    fn staff_can_open_pupil_and_parent_channels() {
        let open = CommRules {
            pupils_to_pupils: true,
            pupils_to_parents: true,
            parents_to_parents: true,
            ..CommRules::default()
        };
        let (pupil_a, _) = pupil(1, C6A);
        let (_, classmate_c) = pupil(7, C6A);
        let (_, pupil_b_c) = pupil(2, C6B);
        let (parent_a, _) = parent(3, 1, C6A);
        let (_, classmate_parent_c) = parent(8, 7, C6A);
        let (_, parent_b_c) = parent(4, 2, C6B);
        assert!(may_write(&pupil_a, &classmate_c, &open));
        assert!(!may_write(&pupil_a, &pupil_b_c, &open), "only the class");
        assert!(may_write(&pupil_a, &classmate_parent_c, &open));
        assert!(may_write(&parent_a, &classmate_parent_c, &open));
        assert!(!may_write(&parent_a, &parent_b_c, &open), "only the class");
    }

    #[test]
    fn a_reply_reaches_whoever_wrote_even_outside_the_rules() {
        let rules = CommRules::default();
        let (pupil_a, _) = pupil(1, C6A);
        let (_, pupil_b_c) = pupil(2, C6B);
        assert!(!may_reply_to(&pupil_a, &pupil_b_c, &rules, false));
        assert!(may_reply_to(&pupil_a, &pupil_b_c, &rules, true));
    }

    #[test]
    fn only_teachers_of_a_class_and_staff_address_it_whole() {
        let (pupil_a, _) = pupil(1, C6A);
        let (parent_a, _) = parent(3, 1, C6A);
        let (teacher_a, _) = teacher(5, C6A);
        let (staff_1, _) = staff(9, E1);
        let (foreign, _) = staff(10, E2);
        assert!(!may_address(&pupil_a, Audience::Class(C6A), E1));
        assert!(!may_address(&pupil_a, Audience::ClassParents(C6A), E1));
        assert!(may_address(&pupil_a, Audience::ClassTeachers(C6A), E1));
        assert!(!may_address(&pupil_a, Audience::ClassTeachers(C6B), E1));
        assert!(!may_address(&parent_a, Audience::Class(C6A), E1));
        assert!(may_address(&parent_a, Audience::ClassTeachers(C6A), E1));
        assert!(may_address(&teacher_a, Audience::Class(C6A), E1));
        assert!(may_address(&teacher_a, Audience::ClassParents(C6A), E1));
        assert!(!may_address(&teacher_a, Audience::ClassParents(C6B), E1));
        assert!(may_address(&staff_1, Audience::ClassParents(C6B), E1));
        assert!(!may_address(&foreign, Audience::Class(C6A), E1));
    }

    #[test]
    fn limits_hold_pupils_to_a_rate_and_a_few_recipients() {
        let rules = CommRules::default();
        let (pupil_a, _) = pupil(1, C6A);
        let (teacher_a, _) = teacher(5, C6A);
        assert_eq!(check_limits(&pupil_a, &rules, false, 19, 5), Ok(()));
        assert_eq!(
            check_limits(&pupil_a, &rules, false, 20, 1),
            Err(SendRefusal::RateLimited)
        );
        assert_eq!(
            check_limits(&pupil_a, &rules, false, 0, 6),
            Err(SendRefusal::TooManyRecipients)
        );
        assert_eq!(check_limits(&teacher_a, &rules, false, 20, 1000), Ok(()));
        assert_eq!(
            check_limits(&teacher_a, &rules, true, 0, 1),
            Err(SendRefusal::Suspended)
        );
    }

    #[test]
    fn audiences_round_trip_through_the_form() {
        for a in [
            Audience::Person(PersonId(3)),
            Audience::Class(C6A),
            Audience::Group(GroupId(4)),
            Audience::ClassParents(C6B),
            Audience::ClassTeachers(C6A),
        ] {
            assert_eq!(Audience::parse(&a.encode()), Some(a));
        }
        for bad in ["", "person", "person:", "person:x", "person:-1", "king:3"] {
            assert_eq!(Audience::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn teachers_announce_only_to_classes_they_teach() {
        let (teacher_a, _) = teacher(5, C6A);
        let (staff_1, _) = staff(9, E1);
        let (pupil_a, _) = pupil(1, C6A);
        assert!(may_announce(
            &teacher_a,
            AnnouncementAudience::Class,
            &[C6A]
        ));
        assert!(!may_announce(
            &teacher_a,
            AnnouncementAudience::Class,
            &[C6A, C6B]
        ));
        assert!(!may_announce(&teacher_a, AnnouncementAudience::All, &[]));
        assert!(may_announce(&staff_1, AnnouncementAudience::All, &[]));
        assert!(!may_announce(&pupil_a, AnnouncementAudience::Class, &[C6A]));
        let s = announcement_scope(&parent(3, 1, C6A).0);
        assert!(s.parent && !s.everything);
        assert_eq!(s.classes, vec![C6A]);
        assert_eq!(s.parent_classes, vec![C6A]);
    }
}
