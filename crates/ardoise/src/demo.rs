//! The demo world: a realistic collège (8 classes from 6e to 3e, 25 pupils
//! each, their parents, 20 teachers with subjects and teaching assignments,
//! staff, one administrator), deterministic from a seed, and scaled up to
//! any number of pupils with more establishments of the same shape.
//!
//! Demo passwords are shared per role so that building 200,000 accounts
//! costs five argon2 hashes, not 600,000; a demo database is for trying
//! Ardoise and for load tests, never for real pupils.

use anyhow::Context;
use ardoise_core::{login_base, Login, Role, Roles};
use ardoise_store::{Store, Val};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// Pupils per establishment (8 classes of 25).
pub const PUPILS_PER_ESTABLISHMENT: usize = 200;
/// UAI of the first demo establishment; its presence means the demo exists.
pub const DEMO_UAI: &str = "0999001A";

/// The password every demo account of a role shares.
pub fn demo_password(role: Role) -> &'static str {
    match role {
        Role::Pupil => "cartable-rouge-2026",
        Role::Parent => "carnet-de-liaison-2026",
        Role::Teacher => "tableau-noir-2026",
        Role::Staff => "salle-des-profs-2026",
        Role::Admin => "console-admin-2026",
    }
}

const CLASSES: [(&str, &str); 8] = [
    ("6eA", "6e"),
    ("6eB", "6e"),
    ("5eA", "5e"),
    ("5eB", "5e"),
    ("4eA", "4e"),
    ("4eB", "4e"),
    ("3eA", "3e"),
    ("3eB", "3e"),
];

/// Subjects: (code, name, teachers in a collège of 8 classes).
const SUBJECTS: [(&str, &str, usize); 12] = [
    ("FR", "Français", 3),
    ("MATH", "Mathématiques", 3),
    ("HG", "Histoire-géographie", 2),
    ("ANG", "Anglais", 2),
    ("SVT", "Sciences de la vie et de la Terre", 2),
    ("EPS", "Éducation physique et sportive", 2),
    ("ESP", "Espagnol", 1),
    ("PC", "Physique-chimie", 1),
    ("TECH", "Technologie", 1),
    ("AP", "Arts plastiques", 1),
    ("MUS", "Éducation musicale", 1),
    ("ALL", "Allemand", 1),
];

const FIRST_NAMES: &[&str] = &[
    "Emma", "Jade", "Louise", "Alice", "Chloé", "Lina", "Léa", "Rose", "Anna", "Mila", "Inès",
    "Ambre", "Julia", "Mia", "Léna", "Manon", "Juliette", "Lou", "Zoé", "Camille", "Sarah",
    "Agathe", "Jeanne", "Eva", "Nina", "Romane", "Adèle", "Iris", "Lola", "Margaux", "Gabriel",
    "Léo", "Raphaël", "Arthur", "Louis", "Lucas", "Adam", "Jules", "Hugo", "Maël", "Liam", "Noah",
    "Paul", "Ethan", "Tiago", "Sacha", "Gabin", "Nathan", "Mohamed", "Aaron", "Tom", "Éden",
    "Théo", "Noé", "Victor", "Martin", "Axel", "Timéo", "Nolan", "Marius", "Yanis", "Samuel",
    "Baptiste", "Enzo", "Malo", "Amir", "Naël", "Aylan", "Rayan", "Kaïs",
];

const ADULT_FIRST_NAMES: &[&str] = &[
    "Nathalie",
    "Isabelle",
    "Sylvie",
    "Catherine",
    "Sandrine",
    "Valérie",
    "Christine",
    "Céline",
    "Stéphanie",
    "Sophie",
    "Aurélie",
    "Karine",
    "Émilie",
    "Julie",
    "Laurence",
    "Véronique",
    "Amina",
    "Fatima",
    "Nadia",
    "Élodie",
    "Philippe",
    "Nicolas",
    "Christophe",
    "Stéphane",
    "Sébastien",
    "Frédéric",
    "Laurent",
    "Olivier",
    "David",
    "Thierry",
    "Julien",
    "Pascal",
    "Éric",
    "Jérôme",
    "Karim",
    "Mehdi",
    "Vincent",
    "François",
    "Patrick",
    "Franck",
];

const LAST_NAMES: &[&str] = &[
    "Martin",
    "Bernard",
    "Thomas",
    "Petit",
    "Robert",
    "Richard",
    "Durand",
    "Dubois",
    "Moreau",
    "Laurent",
    "Simon",
    "Michel",
    "Lefèvre",
    "Leroy",
    "Roux",
    "David",
    "Bertrand",
    "Morel",
    "Fournier",
    "Girard",
    "Bonnet",
    "Dupont",
    "Lambert",
    "Fontaine",
    "Rousseau",
    "Vincent",
    "Muller",
    "Lefebvre",
    "Faure",
    "André",
    "Mercier",
    "Blanc",
    "Guérin",
    "Boyer",
    "Garnier",
    "Chevalier",
    "François",
    "Legrand",
    "Gauthier",
    "Garcia",
    "Perrin",
    "Robin",
    "Clément",
    "Morin",
    "Nicolas",
    "Henry",
    "Roussel",
    "Mathieu",
    "Gautier",
    "Masson",
    "Marchand",
    "Duval",
    "Denis",
    "Dumont",
    "Marie",
    "Lemaire",
    "Noël",
    "Meyer",
    "Dufour",
    "Meunier",
    "Brun",
    "Blanchard",
    "Giraud",
    "Joly",
    "Rivière",
    "Lucas",
    "Brunet",
    "Gaillard",
    "Barbier",
    "Arnaud",
    "Martinez",
    "Gérard",
    "Roche",
    "Renard",
    "Schmitt",
    "Roy",
    "Leroux",
    "Colin",
    "Vidal",
    "Caron",
    "Picard",
    "Roger",
    "Fabre",
    "Aubert",
    "Lemoine",
    "Renaud",
    "Dumas",
    "Lacroix",
    "Olivier",
    "Philippe",
    "Bourgeois",
    "Pierre",
    "Benoît",
    "Rey",
    "Leclerc",
    "Payet",
    "Rolland",
    "Leclercq",
    "Guillaume",
    "Lecomte",
    "Benali",
    "Haddad",
    "Nguyen",
    "Diallo",
    "Traoré",
    "Da Silva",
    "Ferreira",
    "Le Gall",
    "Le Bihan",
];

const CITIES: &[&str] = &[
    "Lyon",
    "Marseille",
    "Toulouse",
    "Nantes",
    "Lille",
    "Rennes",
    "Reims",
    "Dijon",
    "Angers",
    "Nîmes",
    "Brest",
    "Tours",
    "Amiens",
    "Limoges",
    "Metz",
    "Besançon",
    "Orléans",
    "Rouen",
    "Caen",
    "Nancy",
    "Pau",
    "Poitiers",
    "Quimper",
    "Valence",
    "Troyes",
];

const SCHOOL_NAMES: &[&str] = &[
    "Jean Moulin",
    "Victor Hugo",
    "Jules Ferry",
    "Louise Michel",
    "Marie Curie",
    "Jean Jaurès",
    "Simone Veil",
    "Albert Camus",
    "Jacques Prévert",
    "George Sand",
    "Pierre de Coubertin",
    "Joséphine Baker",
    "Gisèle Halimi",
    "Olympe de Gouges",
    "Jean Zay",
];

/// A person of the demo world, before insertion.
#[derive(Debug, Clone)]
pub struct DemoPerson {
    pub login: String,
    pub first_name: String,
    pub last_name: String,
    pub roles: Roles,
    pub title: String,
    /// Index of the establishment in [`DemoWorld::establishments`].
    pub establishment: usize,
    /// As a pupil: index of the class within its establishment.
    pub class: Option<usize>,
}

/// One establishment of the demo world.
#[derive(Debug, Clone)]
pub struct DemoEstablishment {
    pub uai: String,
    pub name: String,
    pub city: String,
}

/// The generated world, before insertion: people refer to each other by
/// index in `people`.
#[derive(Debug, Default)]
pub struct DemoWorld {
    pub establishments: Vec<DemoEstablishment>,
    pub people: Vec<DemoPerson>,
    /// (parent, pupil, legal guardian)
    pub guardians: Vec<(usize, usize, bool)>,
    /// (teacher, establishment, subject index, class index)
    pub teachings: Vec<(usize, usize, usize, usize)>,
    /// (teacher, establishment): teaches the German group of their establishment.
    pub group_teachers: Vec<(usize, usize)>,
    /// (pupil, establishment): member of the German group.
    pub group_members: Vec<(usize, usize)>,
    /// Named accounts to print: (role, person index).
    pub named: Vec<(Role, usize)>,
}

struct Logins(HashSet<String>);

impl Logins {
    fn take(&mut self, first: &str, last: &str) -> String {
        let base = login_base(first, last);
        let mut n = 1;
        loop {
            let candidate = if n == 1 {
                base.clone()
            } else {
                format!("{base}{n}")
            };
            if self.0.insert(candidate.clone()) {
                return candidate;
            }
            n += 1;
        }
    }
}

/// Builds the demo world for `pupils` pupils (at least one establishment),
/// deterministically from `seed`.
pub fn generate(pupils: usize, seed: u64) -> DemoWorld {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut w = DemoWorld::default();
    let mut logins = Logins(HashSet::new());
    let n_establishments = pupils.div_ceil(PUPILS_PER_ESTABLISHMENT).max(1);
    let mut remaining = pupils.max(1);

    let admin = w.people.len();
    w.people.push(DemoPerson {
        login: "admin".into(),
        first_name: "Camille".into(),
        last_name: "Administratrice".into(),
        roles: Roles::only(Role::Admin),
        title: "Administratrice de la plateforme".into(),
        establishment: 0,
        class: None,
    });
    logins.0.insert("admin".into());
    w.named.push((Role::Admin, admin));

    for e in 0..n_establishments {
        let school = SCHOOL_NAMES[e % SCHOOL_NAMES.len()];
        let city = CITIES[(e / SCHOOL_NAMES.len()) % CITIES.len()];
        let name = if e == 0 {
            format!("Collège {school}")
        } else {
            format!(
                "Collège {school} ({city} {})",
                e / (SCHOOL_NAMES.len() * CITIES.len()) + 1
            )
        };
        w.establishments.push(DemoEstablishment {
            uai: format!("{:07}{}", 999_001 + e, (b'A' + (e % 26) as u8) as char),
            name,
            city: city.into(),
        });
        if e == 0 {
            w.establishments[0].uai = DEMO_UAI.into();
        }

        let adult = |w: &mut DemoWorld,
                     logins: &mut Logins,
                     rng: &mut ChaCha8Rng,
                     roles: Roles,
                     title: &str,
                     last: Option<&str>| {
            let first = *ADULT_FIRST_NAMES.choose(rng).unwrap_or(&"Alex");
            let last = last
                .map(str::to_string)
                .unwrap_or_else(|| LAST_NAMES.choose(rng).unwrap_or(&"Martin").to_string());
            let login = logins.take(first, &last);
            w.people.push(DemoPerson {
                login,
                first_name: first.into(),
                last_name: last,
                roles,
                title: title.into(),
                establishment: e,
                class: None,
            });
            w.people.len() - 1
        };

        for (title, named) in [
            ("Principal·e", true),
            ("Conseiller·e principal·e d'éducation", false),
            ("Secrétariat", false),
        ] {
            let s = adult(
                &mut w,
                &mut logins,
                &mut rng,
                Roles::only(Role::Staff),
                title,
                None,
            );
            if e == 0 && named {
                w.named.push((Role::Staff, s));
            }
        }

        // Teachers by subject, then teaching assignments round-robin.
        let mut by_subject: Vec<Vec<usize>> = Vec::new();
        for (_, _, count) in SUBJECTS {
            by_subject.push(
                (0..count)
                    .map(|_| {
                        adult(
                            &mut w,
                            &mut logins,
                            &mut rng,
                            Roles::only(Role::Teacher),
                            "",
                            None,
                        )
                    })
                    .collect(),
            );
        }
        for (ci, _) in CLASSES.iter().enumerate() {
            for (si, (code, _, _)) in SUBJECTS.iter().enumerate() {
                if *code == "ALL" || (*code == "ESP" && ci < 2) {
                    continue; // German is a group; Spanish starts in 5e.
                }
                let teachers = &by_subject[si];
                let t = teachers[ci % teachers.len()];
                w.teachings.push((t, e, si, ci));
            }
        }
        let german = by_subject[SUBJECTS.len() - 1][0];
        w.group_teachers.push((german, e));
        if e == 0 {
            // The maths teacher of 6eA is the named teacher.
            let math_6ea = w
                .teachings
                .iter()
                .find(|(_, te, si, ci)| *te == 0 && SUBJECTS[*si].0 == "MATH" && *ci == 0)
                .map(|t| t.0);
            if let Some(t) = math_6ea {
                w.named.push((Role::Teacher, t));
            }
        }

        // Pupils and their parents.
        let here = remaining.min(PUPILS_PER_ESTABLISHMENT);
        remaining -= here;
        let mut families: Vec<(usize, Option<usize>, String)> = Vec::new();
        for i in 0..here {
            let ci = i % CLASSES.len();
            let first = *FIRST_NAMES.choose(&mut rng).unwrap_or(&"Alex");
            // One pupil in seven is the sibling of an earlier pupil.
            let sibling = !families.is_empty() && rng.gen_ratio(1, 7);
            let family = if sibling {
                Some(rng.gen_range(0..families.len()))
            } else {
                None
            };
            let last = match family {
                Some(f) => families[f].2.clone(),
                None => LAST_NAMES.choose(&mut rng).unwrap_or(&"Martin").to_string(),
            };
            let login = logins.take(first, &last);
            w.people.push(DemoPerson {
                login,
                first_name: first.into(),
                last_name: last.clone(),
                roles: Roles::only(Role::Pupil),
                title: String::new(),
                establishment: e,
                class: Some(ci),
            });
            let pupil = w.people.len() - 1;
            if ci >= 2 && rng.gen_ratio(1, 5) {
                w.group_members.push((pupil, e));
            }
            let (p1, p2) = match family {
                Some(f) => (families[f].0, families[f].1),
                None => {
                    let p1 = adult(
                        &mut w,
                        &mut logins,
                        &mut rng,
                        Roles::only(Role::Parent),
                        "",
                        Some(&last),
                    );
                    let p2 = if rng.gen_ratio(3, 4) {
                        let other_last = if rng.gen_ratio(2, 3) {
                            last.clone()
                        } else {
                            LAST_NAMES.choose(&mut rng).unwrap_or(&"Martin").to_string()
                        };
                        Some(adult(
                            &mut w,
                            &mut logins,
                            &mut rng,
                            Roles::only(Role::Parent),
                            "",
                            Some(&other_last),
                        ))
                    } else {
                        None
                    };
                    families.push((p1, p2, last.clone()));
                    (p1, p2)
                }
            };
            w.guardians.push((p1, pupil, true));
            if let Some(p2) = p2 {
                w.guardians.push((p2, pupil, true));
            }
            if e == 0 && i == 0 {
                w.named.push((Role::Pupil, pupil));
                w.named.push((Role::Parent, p1));
            }
        }
        // A teacher who is also a parent: the first French teacher is the
        // second legal guardian of a pupil of another class.
        if e == 0 && here > 9 {
            let teacher_parent = by_subject[0][0];
            let pupil = w.people.iter().position(|p| {
                p.establishment == e && p.class == Some(1) && p.roles.has(Role::Pupil)
            });
            if let Some(pupil) = pupil {
                w.people[teacher_parent].roles = w.people[teacher_parent].roles.with(Role::Parent);
                w.guardians.push((teacher_parent, pupil, true));
            }
        }
    }
    w
}

/// A summary of what [`load`] did.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub establishments: usize,
    pub people: usize,
    pub pupils: usize,
    pub already_there: bool,
}

/// What a lesson and homework of a subject say in the demo.
fn diary_text(subject: usize, n: usize) -> (&'static str, &'static str) {
    const TEXTS: [(&str, &str); 4] = [
        (
            "Reprise du cours",
            "Relire la leçon et faire les **exercices 3 et 4** page 52.",
        ),
        (
            "Nouvelle notion",
            "Apprendre le vocabulaire de la séance et compléter la fiche distribuée.",
        ),
        (
            "Travail en groupes",
            "Préparer une présentation de *deux minutes* sur le thème choisi en classe.",
        ),
        (
            "Correction",
            "Rédiger la réponse à la question 2 en une dizaine de lignes.",
        ),
    ];
    TEXTS[(subject + n) % TEXTS.len()]
}

/// A teaching assignment as the demo diary needs it: (teacher, subject,
/// class, group, subject index), with exactly one of class and group.
type DiaryTeaching = (i64, i64, Option<i64>, Option<i64>, usize);

/// Gives every teaching assignment (to a class or to a group) two past
/// lessons and three pieces of homework due in the coming week (the last
/// one handed in online), so that "À faire" has something to show and to
/// load-test.
async fn load_diary(store: &Store, teachings: &[DiaryTeaching], now: i64) -> anyhow::Result<()> {
    // The demo schools keep the default zone: their days are Paris days.
    let today = ardoise_core::diary::local_date(now, ardoise_core::diary::DEFAULT_ZONE);
    let day = |offset: i64| {
        (today + chrono::Duration::days(offset))
            .format("%Y-%m-%d")
            .to_string()
    };
    let mut lessons = Vec::new();
    let mut homework = Vec::new();
    let id_or_null = |id: &Option<i64>| id.map(Val::I).unwrap_or(Val::Null);
    for (teacher, subject, class, group, si) in teachings {
        for (n, offset) in [-3i64, -1].into_iter().enumerate() {
            let (title, text) = diary_text(*si, n);
            let html =
                ardoise_core::diary::render_rich_text(text).map_err(|e| anyhow::anyhow!("{e}"))?;
            lessons.push(vec![
                id_or_null(class),
                id_or_null(group),
                Val::I(*subject),
                Val::I(*teacher),
                Val::T(day(offset)),
                Val::T(title.to_string()),
                Val::T(text.to_string()),
                Val::T(html),
                Val::I(now - 86_400 * 4),
                Val::I(now - 86_400 * 4),
            ]);
        }
        for (n, offset) in [1i64, 3, 7].into_iter().enumerate() {
            let (_, text) = diary_text(*si, n + 2);
            let html =
                ardoise_core::diary::render_rich_text(text).map_err(|e| anyhow::anyhow!("{e}"))?;
            let hand_in = n == 2;
            homework.push(vec![
                id_or_null(class),
                id_or_null(group),
                Val::I(*subject),
                Val::I(*teacher),
                Val::T(day(offset)),
                Val::T(text.to_string()),
                Val::T(html),
                Val::I(20 + 10 * i64::try_from(n).unwrap_or(0)),
                Val::I(now - 86_400),
                Val::I(now - 86_400),
                Val::I(i64::from(hand_in)),
                if hand_in {
                    Val::I(now + 86_400 * 7)
                } else {
                    Val::Null
                },
                Val::I(0),
                if hand_in { Val::I(20) } else { Val::Null },
            ]);
        }
    }
    store
        .insert_many(
            "lessons",
            &[
                "class_id",
                "group_id",
                "subject_id",
                "teacher_id",
                "lesson_on",
                "title",
                "content_source",
                "content_html",
                "publish_at",
                "created_at",
            ],
            lessons,
            None,
        )
        .await?;
    store
        .insert_many(
            "homework",
            &[
                "class_id",
                "group_id",
                "subject_id",
                "teacher_id",
                "due_on",
                "instructions_source",
                "instructions_html",
                "minutes",
                "publish_at",
                "created_at",
                "hand_in",
                "deadline_at",
                "late_allowed",
                "mark_scale",
            ],
            homework,
            None,
        )
        .await?;
    Ok(())
}

/// A few conversations and an announcement in the first establishment, so
/// that the demo school shows messaging: a teacher writes to the parents
/// of their class and one parent replies; a pupil asks the teacher a
/// question; staff announce a school event.
async fn load_messages(
    store: &Store,
    establishment: i64,
    teacher: i64,
    class: i64,
    staff: i64,
    now: i64,
) -> anyhow::Result<()> {
    use ardoise_core::messaging::{AnnouncementAudience, Audience};
    use ardoise_core::{ClassId, EstablishmentId, PersonId};
    let html =
        |t: &str| ardoise_core::diary::render_rich_text(t).map_err(|e| anyhow::anyhow!("{e}"));
    let class_name = store
        .find_class(ClassId(class))
        .await?
        .map(|c| c.name)
        .unwrap_or_default();
    let parents = store
        .audience_members(Audience::ClassParents(ClassId(class)))
        .await?;
    let pupils = store
        .audience_members(Audience::Class(ClassId(class)))
        .await?;
    let body = "Bonjour,\n\nLa **réunion parents-professeurs** aura lieu mardi à 18 h en salle 12.\n\nBien cordialement.";
    let (conv, _) = store
        .send_message(&ardoise_store::MessageInsert {
            conversation_id: None,
            establishment_id: EstablishmentId(establishment),
            subject: "Réunion parents-professeurs".into(),
            broadcast: true,
            sender_id: PersonId(teacher),
            body_source: body.into(),
            body_html: html(body)?,
            recipients_label: format!("Parents de {class_name}"),
            recipients: parents.clone(),
            sent_at: now - 7200,
            files: Vec::new(),
        })
        .await?;
    if let Some(parent) = parents.first() {
        let reply = "Merci, nous serons présents.";
        store
            .send_message(&ardoise_store::MessageInsert {
                conversation_id: Some(conv),
                establishment_id: EstablishmentId(establishment),
                subject: "Réunion parents-professeurs".into(),
                broadcast: true,
                sender_id: *parent,
                body_source: reply.into(),
                body_html: html(reply)?,
                recipients_label: String::new(),
                recipients: vec![PersonId(teacher)],
                sent_at: now - 3600,
                files: Vec::new(),
            })
            .await?;
    }
    if let Some(pupil) = pupils.first() {
        let q = "Bonjour, je n'ai pas compris l'exercice 3. Pouvez-vous m'aider ?";
        store
            .send_message(&ardoise_store::MessageInsert {
                conversation_id: None,
                establishment_id: EstablishmentId(establishment),
                subject: "Question sur l'exercice 3".into(),
                broadcast: false,
                sender_id: *pupil,
                body_source: q.into(),
                body_html: html(q)?,
                recipients_label: String::new(),
                recipients: vec![PersonId(teacher)],
                sent_at: now - 1800,
                files: Vec::new(),
            })
            .await?;
    }
    let text = "Le **cross du collège** a lieu vendredi après-midi. Prévoir une tenue de sport.";
    store
        .insert_announcement(&ardoise_store::AnnouncementInsert {
            establishment_id: EstablishmentId(establishment),
            author_id: PersonId(staff),
            title: "Cross du collège".into(),
            body_source: text.into(),
            body_html: html(text)?,
            audience: AnnouncementAudience::All,
            classes: Vec::new(),
            publish_from: now - 86_400,
            publish_until: None,
            created_at: now - 86_400,
        })
        .await?;
    Ok(())
}

/// Inserts the world into the store and writes every account to `csv_path`.
/// Does nothing if the demo establishment already exists.
pub async fn load(
    store: &Store,
    world: &DemoWorld,
    csv_path: &Path,
    now: i64,
    mut progress: impl FnMut(&str),
) -> anyhow::Result<LoadReport> {
    let existing = store.list_establishments().await?;
    if existing.iter().any(|e| e.uai == DEMO_UAI) {
        return Ok(LoadReport {
            already_there: true,
            ..Default::default()
        });
    }
    progress("hashing the demo passwords");
    let mut hashes = HashMap::new();
    for role in Role::ALL {
        let h = ardoise_web::auth::hash_password_blocking(demo_password(role))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        hashes.insert(role, h);
    }
    let main_role = |r: Roles| -> Role {
        [
            Role::Admin,
            Role::Staff,
            Role::Teacher,
            Role::Parent,
            Role::Pupil,
        ]
        .into_iter()
        .find(|x| r.has(*x))
        .unwrap_or(Role::Pupil)
    };

    progress("establishments, classes and subjects");
    let rows = world
        .establishments
        .iter()
        .map(|e| {
            vec![
                Val::T(e.uai.clone()),
                Val::T(e.name.clone()),
                Val::T(e.city.clone()),
                Val::I(now),
            ]
        })
        .collect();
    let est_rows = store
        .insert_many(
            "establishments",
            &["uai", "name", "city", "created_at"],
            rows,
            Some("id, uai"),
        )
        .await?;
    let est_ids = ids_by_text(&est_rows, "uai")?;
    let est_id: Vec<i64> = world
        .establishments
        .iter()
        .map(|e| est_ids.get(&e.uai).copied().context("establishment id"))
        .collect::<anyhow::Result<_>>()?;

    let (year_label, year_starts, year_ends) = ardoise_core::clock::school_year_for(now);
    let rows = est_id
        .iter()
        .map(|id| {
            vec![
                Val::I(*id),
                Val::T(year_label.clone()),
                Val::T(year_starts.clone()),
                Val::T(year_ends.clone()),
            ]
        })
        .collect();
    let year_rows = store
        .insert_many(
            "school_years",
            &["establishment_id", "label", "starts_on", "ends_on"],
            rows,
            Some("id, establishment_id"),
        )
        .await?;
    let years = ids_by_int(&year_rows, "establishment_id")?;

    let mut rows = Vec::new();
    for id in &est_id {
        let year = *years.get(id).context("school year id")?;
        for (name, level) in CLASSES {
            rows.push(vec![
                Val::I(*id),
                Val::I(year),
                Val::T(name.into()),
                Val::T(level.into()),
            ]);
        }
    }
    let class_rows = store
        .insert_many(
            "classes",
            &["establishment_id", "school_year_id", "name", "level"],
            rows,
            Some("id, establishment_id, name"),
        )
        .await?;
    let class_id = pair_ids(&class_rows, "name")?;

    let mut rows = Vec::new();
    for id in &est_id {
        for (code, name, _) in SUBJECTS {
            rows.push(vec![Val::I(*id), Val::T(code.into()), Val::T(name.into())]);
        }
    }
    let subject_rows = store
        .insert_many(
            "subjects",
            &["establishment_id", "code", "name"],
            rows,
            Some("id, establishment_id, code"),
        )
        .await?;
    let subject_id = pair_ids(&subject_rows, "code")?;

    let mut rows = Vec::new();
    for id in &est_id {
        rows.push(vec![
            Val::I(*id),
            Val::I(*years.get(id).context("school year id")?),
            Val::T("Allemand LV2".into()),
        ]);
    }
    let group_rows = store
        .insert_many(
            "teaching_groups",
            &["establishment_id", "school_year_id", "name"],
            rows,
            Some("id, establishment_id"),
        )
        .await?;
    let group_id = ids_by_int(&group_rows, "establishment_id")?;

    let mut person_id: Vec<i64> = Vec::with_capacity(world.people.len());
    for (n, chunk) in world.people.chunks(20_000).enumerate() {
        progress(&format!(
            "people {} / {}",
            n * 20_000 + chunk.len(),
            world.people.len()
        ));
        let rows = chunk
            .iter()
            .map(|p| {
                Login::parse(&p.login)
                    .map_err(|e| anyhow::anyhow!("demo login {}: {e}", p.login))?;
                Ok(vec![
                    Val::I(est_id[p.establishment]),
                    Val::T(p.login.clone()),
                    Val::T(p.first_name.clone()),
                    Val::T(p.last_name.clone()),
                    Val::I(p.roles.bits()),
                    Val::T(p.title.clone()),
                    Val::T("active".into()),
                    Val::T(hashes.get(&main_role(p.roles)).cloned().unwrap_or_default()),
                    Val::I(now),
                ])
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let inserted = store
            .insert_many(
                "people",
                &[
                    "establishment_id",
                    "login",
                    "first_name",
                    "last_name",
                    "roles",
                    "title",
                    "status",
                    "password_hash",
                    "created_at",
                ],
                rows,
                Some("id, login"),
            )
            .await?;
        let by_login = ids_by_text(&inserted, "login")?;
        for p in chunk {
            person_id.push(*by_login.get(&p.login).context("person id")?);
        }
    }

    progress("classes, groups, families and teaching assignments");
    let class_of = |p: &DemoPerson, ci: usize| {
        class_id
            .get(&(est_id[p.establishment], CLASSES[ci].0.to_string()))
            .copied()
    };
    let mut rows = Vec::new();
    for (i, p) in world.people.iter().enumerate() {
        if let Some(ci) = p.class {
            rows.push(vec![
                Val::I(person_id[i]),
                Val::I(class_of(p, ci).context("class id")?),
            ]);
        }
    }
    store
        .insert_many("class_members", &["pupil_id", "class_id"], rows, None)
        .await?;
    let rows = world
        .guardians
        .iter()
        .map(|(parent, pupil, legal)| {
            vec![
                Val::I(person_id[*parent]),
                Val::I(person_id[*pupil]),
                Val::I(i64::from(*legal)),
            ]
        })
        .collect();
    store
        .insert_many(
            "guardians",
            &["parent_id", "pupil_id", "legal_guardian"],
            rows,
            None,
        )
        .await?;
    let mut rows = Vec::new();
    let mut diary: Vec<DiaryTeaching> = Vec::new();
    for (t, e, si, ci) in &world.teachings {
        let subject = *subject_id
            .get(&(est_id[*e], SUBJECTS[*si].0.to_string()))
            .context("subject id")?;
        let class = *class_id
            .get(&(est_id[*e], CLASSES[*ci].0.to_string()))
            .context("class id")?;
        rows.push(vec![
            Val::I(person_id[*t]),
            Val::I(subject),
            Val::I(class),
            Val::Null,
        ]);
        diary.push((person_id[*t], subject, Some(class), None, *si));
    }
    for (t, e) in &world.group_teachers {
        let subject = *subject_id
            .get(&(est_id[*e], "ALL".to_string()))
            .context("subject id")?;
        let group = *group_id.get(&est_id[*e]).context("group id")?;
        rows.push(vec![
            Val::I(person_id[*t]),
            Val::I(subject),
            Val::Null,
            Val::I(group),
        ]);
        let si = SUBJECTS.iter().position(|s| s.0 == "ALL").unwrap_or(0);
        diary.push((person_id[*t], subject, None, Some(group), si));
    }
    store
        .insert_many(
            "teachings",
            &["teacher_id", "subject_id", "class_id", "group_id"],
            rows,
            None,
        )
        .await?;
    let mut rows = Vec::new();
    for (p, e) in &world.group_members {
        rows.push(vec![
            Val::I(*group_id.get(&est_id[*e]).context("group id")?),
            Val::I(person_id[*p]),
        ]);
    }
    store
        .insert_many("group_members", &["group_id", "pupil_id"], rows, None)
        .await?;

    progress("the homework diary: lessons and homework around today");
    load_diary(store, &diary, now).await?;

    progress("messages and an announcement");
    let staff = world
        .people
        .iter()
        .position(|p| p.establishment == 0 && p.roles.has(Role::Staff))
        .map(|i| person_id[i]);
    let first_class = diary.iter().find_map(|d| d.2.map(|class| (d.0, class)));
    if let (Some((teacher, class)), Some(staff), Some(e)) = (first_class, staff, est_id.first()) {
        load_messages(store, *e, teacher, class, staff, now).await?;
    }

    progress("writing demo-accounts.csv");
    write_csv(world, csv_path)?;
    Ok(LoadReport {
        establishments: world.establishments.len(),
        people: world.people.len(),
        pupils: world
            .people
            .iter()
            .filter(|p| p.roles.has(Role::Pupil))
            .count(),
        already_there: false,
    })
}

fn write_csv(world: &DemoWorld, path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("csv.tmp");
    let mut out =
        csv::Writer::from_path(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    out.write_record(["login", "password", "roles", "establishment", "class"])?;
    let main_role = |r: Roles| {
        [
            Role::Admin,
            Role::Staff,
            Role::Teacher,
            Role::Parent,
            Role::Pupil,
        ]
        .into_iter()
        .find(|x| r.has(*x))
        .unwrap_or(Role::Pupil)
    };
    for p in &world.people {
        let roles = p
            .roles
            .iter()
            .map(Role::as_str)
            .collect::<Vec<_>>()
            .join("+");
        let class = p.class.map(|c| CLASSES[c].0).unwrap_or("");
        out.write_record([
            p.login.as_str(),
            demo_password(main_role(p.roles)),
            &roles,
            &world.establishments[p.establishment].uai,
            class,
        ])?;
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&tmp, path)?;
    Ok(())
}

fn ids_by_text(rows: &[sqlx_row::AnyRow], key: &str) -> anyhow::Result<HashMap<String, i64>> {
    use sqlx_row::Row;
    rows.iter()
        .map(|r| Ok((r.try_get::<String, _>(key)?, r.try_get::<i64, _>("id")?)))
        .collect()
}

fn ids_by_int(rows: &[sqlx_row::AnyRow], key: &str) -> anyhow::Result<HashMap<i64, i64>> {
    use sqlx_row::Row;
    rows.iter()
        .map(|r| Ok((r.try_get::<i64, _>(key)?, r.try_get::<i64, _>("id")?)))
        .collect()
}

fn pair_ids(rows: &[sqlx_row::AnyRow], key: &str) -> anyhow::Result<HashMap<(i64, String), i64>> {
    use sqlx_row::Row;
    rows.iter()
        .map(|r| {
            Ok((
                (
                    r.try_get::<i64, _>("establishment_id")?,
                    r.try_get::<String, _>(key)?,
                ),
                r.try_get::<i64, _>("id")?,
            ))
        })
        .collect()
}

/// Row access re-exported by the store for bulk-insert results.
mod sqlx_row {
    pub use ardoise_store::row::{AnyRow, Row};
}

// Documents (issue 5).

/// A one-page PDF saying `text` (PDF viewers rebuild the cross-reference
/// table, so its offsets need not be exact).
fn demo_pdf(text: &str) -> Vec<u8> {
    let stream = format!("BT /F1 24 Tf 72 720 Td ({text}) Tj ET");
    format!(
        "%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n\
         2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n\
         3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj\n\
         4 0 obj << /Length {} >> stream\n{stream}\nendstream endobj\n\
         5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n\
         trailer << /Root 1 0 R >>\n%%EOF\n",
        stream.len()
    )
    .into_bytes()
}

/// Puts a folder with two documents in the class space of the demo
/// teacher's first class, so that the demo school shows documents.
pub async fn load_documents(
    store: &Store,
    files: &ardoise_files::FileStore,
    world: &DemoWorld,
    now: i64,
) -> anyhow::Result<()> {
    use ardoise_core::documents::Space;
    let Some((_, teacher)) = world.named.iter().find(|(r, _)| *r == Role::Teacher) else {
        return Ok(());
    };
    let login = ardoise_core::Login::parse(&world.people[*teacher].login)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let person = store
        .find_person_by_login(&login)
        .await?
        .context("the demo teacher")?;
    let actor = store
        .load_actor(person.id)
        .await?
        .context("the demo teacher")?;
    let Some(class) = actor.taught_classes.first().copied() else {
        return Ok(());
    };
    let space = Space::Class(class, actor.establishment_id);
    let root = store.space_root(space, actor.establishment_id, now).await?;
    let folder = store
        .create_folder(&root, "Fiches d'exercices", person.id, now)
        .await?;
    let docs: [(&str, Vec<u8>); 2] = [
        (
            "Fiche 1 - fractions.pdf",
            demo_pdf("Fiche 1 : les fractions"),
        ),
        (
            "Consignes du trimestre.txt",
            "Apporter le cahier et la calculatrice a chaque cours.\n"
                .as_bytes()
                .to_vec(),
        ),
    ];
    let mut rows = Vec::new();
    for (name, bytes) in docs {
        let blob = files.put_bytes(bytes.into(), 1 << 20).await?;
        rows.push(ardoise_store::DocumentInsert {
            folder_id: folder.id,
            name: name.to_string(),
            blob_hash: blob.hash.as_str().to_string(),
            mime: blob.detected.mime.clone(),
            size: i64::try_from(blob.size).unwrap_or(i64::MAX),
            owner_id: person.id,
            now,
            quota: i64::MAX,
        });
    }
    store.insert_documents(&rows).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_world_is_deterministic_and_shaped_like_a_college() {
        let a = generate(200, 7);
        let b = generate(200, 7);
        assert_eq!(
            a.people.iter().map(|p| &p.login).collect::<Vec<_>>(),
            b.people.iter().map(|p| &p.login).collect::<Vec<_>>()
        );
        assert_eq!(a.establishments.len(), 1);
        let pupils = a.people.iter().filter(|p| p.roles.has(Role::Pupil)).count();
        let teachers = a
            .people
            .iter()
            .filter(|p| p.roles.has(Role::Teacher))
            .count();
        assert_eq!(pupils, 200);
        assert_eq!(teachers, 20);
        for ci in 0..8 {
            assert_eq!(
                a.people.iter().filter(|p| p.class == Some(ci)).count(),
                25,
                "class {ci}"
            );
        }
        // Every pupil has at least one legal guardian.
        for (i, p) in a.people.iter().enumerate() {
            if p.roles.has(Role::Pupil) {
                assert!(
                    a.guardians.iter().any(|(_, c, legal)| *c == i && *legal),
                    "{}",
                    p.login
                );
            }
        }
        // A teacher who is also a parent exists.
        assert!(a
            .people
            .iter()
            .any(|p| p.roles.has(Role::Teacher) && p.roles.has(Role::Parent)));
        // Logins are unique and valid.
        let mut logins: Vec<_> = a.people.iter().map(|p| p.login.clone()).collect();
        assert!(logins.iter().all(|l| Login::parse(l).is_ok()));
        logins.sort();
        logins.dedup();
        assert_eq!(logins.len(), a.people.len());
        let roles: Vec<Role> = a.named.iter().map(|(r, _)| *r).collect();
        for r in Role::ALL {
            assert!(roles.contains(&r), "a named {r:?}");
        }
    }

    #[test]
    fn the_world_scales_with_more_establishments() {
        let w = generate(1000, 1);
        assert_eq!(w.establishments.len(), 5);
        assert_eq!(
            w.people.iter().filter(|p| p.roles.has(Role::Pupil)).count(),
            1000
        );
        let mut uais: Vec<_> = w.establishments.iter().map(|e| e.uai.clone()).collect();
        uais.sort();
        uais.dedup();
        assert_eq!(uais.len(), 5);
    }
}
