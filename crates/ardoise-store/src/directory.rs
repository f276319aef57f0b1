//! Directory: establishments, school years, classes, groups, subjects,
//! teaching assignments, memberships and guardianships, and the
//! relationships loaded into an `Actor` for authorization.

use crate::model::*;
use crate::{Store, StoreError, StoreResult};
use ardoise_core::policy::{ChildLink, ClassScope, TeachingRef};
use ardoise_core::{
    Actor, Audience, ClassId, EstablishmentId, GroupId, PersonId, Roles, SchoolYearId, SubjectId,
    TeachingId, UnixTime,
};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A value in a bulk insert.
#[derive(Debug, Clone)]
pub enum Val {
    /// An integer.
    I(i64),
    /// Text.
    T(String),
    /// SQL NULL.
    Null,
}

pub(crate) const PERSON_COLUMNS: &str =
    "p.id, p.establishment_id, p.login, p.first_name, p.last_name, p.roles, \
     p.title, p.status, c.name AS class_name, c.id AS class_id";
pub(crate) const PERSON_JOINS: &str =
    "people p LEFT JOIN class_members m ON m.pupil_id = p.id LEFT JOIN classes c ON c.id = m.class_id";
/// The joins that give a person `p` their class, for queries that reach `p`
/// through another table.
pub(crate) const PERSON_CLASS_JOINS: &str =
    "LEFT JOIN class_members m ON m.pupil_id = p.id LEFT JOIN classes c ON c.id = m.class_id";

pub(crate) fn person_from_row(r: &AnyRow) -> StoreResult<PersonSummary> {
    Ok(PersonSummary {
        id: PersonId(r.try_get("id")?),
        establishment_id: EstablishmentId(r.try_get("establishment_id")?),
        login: r.try_get("login")?,
        first_name: r.try_get("first_name")?,
        last_name: r.try_get("last_name")?,
        roles: Roles::from_bits(r.try_get("roles")?),
        title: r.try_get("title")?,
        status: AccountStatus::parse(&r.try_get::<String, _>("status")?),
        class_name: r.try_get("class_name")?,
        class_id: r.try_get::<Option<i64>, _>("class_id")?.map(ClassId),
    })
}

fn class_from_row(r: &AnyRow) -> StoreResult<ClassView> {
    Ok(ClassView {
        id: ClassId(r.try_get("id")?),
        establishment_id: EstablishmentId(r.try_get("establishment_id")?),
        name: r.try_get("name")?,
        level: r.try_get("level")?,
        pupil_count: r.try_get("pupil_count")?,
    })
}

fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Creates an establishment; its UAI must be new.
    pub async fn create_establishment(
        &self,
        uai: &str,
        name: &str,
        city: &str,
        now: UnixTime,
    ) -> StoreResult<EstablishmentId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO establishments (uai, name, city, created_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(uai)
        .bind(name)
        .bind(city)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "establishment_uai"))?;
        self.directory_changed();
        Ok(EstablishmentId(id))
    }

    /// Every establishment, by name.
    pub async fn list_establishments(&self) -> StoreResult<Vec<Establishment>> {
        let rows = sqlx::query("SELECT id, uai, name, city FROM establishments ORDER BY name, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Establishment {
                    id: EstablishmentId(r.try_get("id")?),
                    uai: r.try_get("uai")?,
                    name: r.try_get("name")?,
                    city: r.try_get("city")?,
                })
            })
            .collect()
    }

    /// One establishment.
    pub async fn find_establishment(
        &self,
        id: EstablishmentId,
    ) -> StoreResult<Option<Establishment>> {
        let row = sqlx::query("SELECT id, uai, name, city FROM establishments WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            Ok(Establishment {
                id: EstablishmentId(r.try_get("id")?),
                uai: r.try_get("uai")?,
                name: r.try_get("name")?,
                city: r.try_get("city")?,
            })
        })
        .transpose()
    }

    /// An establishment's time zone (an IANA name such as
    /// `Europe/Paris`): its days, deadlines and scheduled times are read
    /// and shown in it.
    pub async fn establishment_time_zone(
        &self,
        id: EstablishmentId,
    ) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT time_zone FROM establishments WHERE id = $1")
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Sets an establishment's time zone (checked by the caller).
    pub async fn set_establishment_time_zone(
        &self,
        id: EstablishmentId,
        time_zone: &str,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE establishments SET time_zone = $1 WHERE id = $2")
            .bind(time_zone)
            .bind(id.0)
            .execute(&self.pool)
            .await?;
        self.directory_changed();
        Ok(())
    }

    /// Creates a school year.
    pub async fn create_school_year(
        &self,
        establishment_id: EstablishmentId,
        label: &str,
        starts_on: &str,
        ends_on: &str,
    ) -> StoreResult<SchoolYearId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO school_years (establishment_id, label, starts_on, ends_on) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(establishment_id.0)
        .bind(label)
        .bind(starts_on)
        .bind(ends_on)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "school_year"))?;
        Ok(SchoolYearId(id))
    }

    /// The establishment's latest school year.
    pub async fn current_school_year(
        &self,
        establishment_id: EstablishmentId,
    ) -> StoreResult<Option<SchoolYear>> {
        let row = sqlx::query(
            "SELECT id, establishment_id, label, starts_on, ends_on FROM school_years \
             WHERE establishment_id = $1 ORDER BY starts_on DESC, id DESC LIMIT 1",
        )
        .bind(establishment_id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| {
            Ok(SchoolYear {
                id: SchoolYearId(r.try_get("id")?),
                establishment_id: EstablishmentId(r.try_get("establishment_id")?),
                label: r.try_get("label")?,
                starts_on: r.try_get("starts_on")?,
                ends_on: r.try_get("ends_on")?,
            })
        })
        .transpose()
    }

    /// Creates a class in a school year; its name must be new that year.
    pub async fn create_class(
        &self,
        establishment_id: EstablishmentId,
        school_year_id: SchoolYearId,
        name: &str,
        level: &str,
    ) -> StoreResult<ClassId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO classes (establishment_id, school_year_id, name, level) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(establishment_id.0)
        .bind(school_year_id.0)
        .bind(name)
        .bind(level)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "class_name"))?;
        self.directory_changed();
        Ok(ClassId(id))
    }

    /// Creates a teaching group.
    pub async fn create_group(
        &self,
        establishment_id: EstablishmentId,
        school_year_id: SchoolYearId,
        name: &str,
    ) -> StoreResult<GroupId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO teaching_groups (establishment_id, school_year_id, name) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(establishment_id.0)
        .bind(school_year_id.0)
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "group_name"))?;
        self.directory_changed();
        Ok(GroupId(id))
    }

    /// Creates a subject.
    pub async fn create_subject(
        &self,
        establishment_id: EstablishmentId,
        code: &str,
        name: &str,
    ) -> StoreResult<SubjectId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO subjects (establishment_id, code, name) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(establishment_id.0)
        .bind(code)
        .bind(name)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "subject_code"))?;
        self.directory_changed();
        Ok(SubjectId(id))
    }

    /// The subjects of an establishment.
    pub async fn list_subjects(
        &self,
        establishment_id: EstablishmentId,
    ) -> StoreResult<Vec<Subject>> {
        let rows = sqlx::query("SELECT id, establishment_id, code, name FROM subjects WHERE establishment_id = $1 ORDER BY name")
            .bind(establishment_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Subject {
                    id: SubjectId(r.try_get("id")?),
                    establishment_id: EstablishmentId(r.try_get("establishment_id")?),
                    code: r.try_get("code")?,
                    name: r.try_get("name")?,
                })
            })
            .collect()
    }

    /// Assigns a teacher to teach a subject to a class or a group.
    pub async fn create_teaching(
        &self,
        teacher_id: PersonId,
        subject_id: SubjectId,
        class_id: Option<ClassId>,
        group_id: Option<GroupId>,
    ) -> StoreResult<TeachingId> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO teachings (teacher_id, subject_id, class_id, group_id) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(teacher_id.0)
        .bind(subject_id.0)
        .bind(class_id.map(|c| c.0))
        .bind(group_id.map(|g| g.0))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "teaching"))?;
        self.directory_changed();
        Ok(TeachingId(id))
    }

    /// A teacher's assignments, by subject then class.
    pub async fn teachings_of(&self, teacher_id: PersonId) -> StoreResult<Vec<TeachingView>> {
        let rows = sqlx::query(
            "SELECT t.id, t.subject_id, s.name AS subject_name, t.class_id, t.group_id, \
                    COALESCE(c.name, g.name) AS target_name \
             FROM teachings t JOIN subjects s ON s.id = t.subject_id \
             LEFT JOIN classes c ON c.id = t.class_id LEFT JOIN teaching_groups g ON g.id = t.group_id \
             WHERE t.teacher_id = $1 ORDER BY target_name, subject_name",
        )
        .bind(teacher_id.0)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TeachingView {
                    id: TeachingId(r.try_get("id")?),
                    subject_id: SubjectId(r.try_get("subject_id")?),
                    subject_name: r.try_get("subject_name")?,
                    class_id: r.try_get::<Option<i64>, _>("class_id")?.map(ClassId),
                    group_id: r.try_get::<Option<i64>, _>("group_id")?.map(GroupId),
                    target_name: r
                        .try_get::<Option<String>, _>("target_name")?
                        .unwrap_or_default(),
                })
            })
            .collect()
    }

    /// The classes a scope allows, by establishment and name. The scope
    /// comes from `ardoise_core::policy::class_scope`.
    pub async fn list_classes(&self, scope: &ClassScope) -> StoreResult<Vec<ClassView>> {
        let base = "SELECT c.id, c.establishment_id, c.name, c.level, \
                    (SELECT COUNT(*) FROM class_members m WHERE m.class_id = c.id) AS pupil_count FROM classes c";
        let rows = match scope {
            ClassScope::All => {
                sqlx::query(&format!("{base} ORDER BY c.establishment_id, c.name"))
                    .fetch_all(&self.pool)
                    .await?
            }
            ClassScope::Establishment(e) => {
                sqlx::query(&format!(
                    "{base} WHERE c.establishment_id = $1 ORDER BY c.name"
                ))
                .bind(e.0)
                .fetch_all(&self.pool)
                .await?
            }
            ClassScope::Only(ids) if ids.is_empty() => return Ok(vec![]),
            ClassScope::Only(ids) => {
                let sql = format!(
                    "{base} WHERE c.id IN ({}) ORDER BY c.name",
                    placeholders(1, ids.len())
                );
                let mut q = sqlx::query(&sql);
                for id in ids {
                    q = q.bind(id.0);
                }
                q.fetch_all(&self.pool).await?
            }
        };
        rows.iter().map(class_from_row).collect()
    }

    /// One class.
    pub async fn find_class(&self, id: ClassId) -> StoreResult<Option<ClassView>> {
        let row = sqlx::query(
            "SELECT c.id, c.establishment_id, c.name, c.level, \
             (SELECT COUNT(*) FROM class_members m WHERE m.class_id = c.id) AS pupil_count FROM classes c WHERE c.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(class_from_row).transpose()
    }

    /// The pupils of a class, by name.
    pub async fn class_pupils(&self, class_id: ClassId) -> StoreResult<Vec<PersonSummary>> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM {PERSON_JOINS} WHERE m.class_id = $1 ORDER BY lower(p.last_name), lower(p.first_name)");
        let rows = sqlx::query(&sql)
            .bind(class_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(person_from_row).collect()
    }

    /// One teaching group, with its number of members.
    pub async fn find_group(&self, id: GroupId) -> StoreResult<Option<GroupView>> {
        let row = sqlx::query(
            "SELECT g.id, g.establishment_id, g.name, \
             (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS pupil_count FROM teaching_groups g WHERE g.id = $1",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| -> StoreResult<GroupView> {
            Ok(GroupView {
                id: GroupId(r.try_get("id")?),
                establishment_id: EstablishmentId(r.try_get("establishment_id")?),
                name: r.try_get("name")?,
                pupil_count: r.try_get("pupil_count")?,
            })
        })
        .transpose()
    }

    /// The members of a teaching group, by name.
    pub async fn group_pupils(&self, group_id: GroupId) -> StoreResult<Vec<PersonSummary>> {
        let sql = format!("SELECT {PERSON_COLUMNS} FROM {PERSON_JOINS} JOIN group_members gm ON gm.pupil_id = p.id \
             WHERE gm.group_id = $1 ORDER BY lower(p.last_name), lower(p.first_name)");
        let rows = sqlx::query(&sql)
            .bind(group_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(person_from_row).collect()
    }

    /// The teaching groups a pupil belongs to.
    pub async fn pupil_groups(&self, pupil_id: PersonId) -> StoreResult<Vec<GroupId>> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE pupil_id = $1 ORDER BY group_id",
        )
        .bind(pupil_id.0)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(GroupId).collect())
    }

    /// A class or a group, as a diary names it.
    pub async fn find_audience(&self, audience: Audience) -> StoreResult<Option<AudienceView>> {
        Ok(match audience {
            Audience::Class(c) => self.find_class(c).await?.map(|c| AudienceView {
                audience,
                establishment_id: c.establishment_id,
                name: c.name,
            }),
            Audience::Group(g) => self.find_group(g).await?.map(|g| AudienceView {
                audience,
                establishment_id: g.establishment_id,
                name: g.name,
            }),
        })
    }

    /// The pupils of a class or group, by name.
    pub async fn audience_pupils(&self, audience: Audience) -> StoreResult<Vec<PersonSummary>> {
        match audience {
            Audience::Class(c) => self.class_pupils(c).await,
            Audience::Group(g) => self.group_pupils(g).await,
        }
    }

    /// Puts a pupil in a class (replacing their previous class).
    pub async fn set_pupil_class(&self, pupil_id: PersonId, class_id: ClassId) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO class_members (pupil_id, class_id) VALUES ($1, $2) \
             ON CONFLICT (pupil_id) DO UPDATE SET class_id = excluded.class_id",
        )
        .bind(pupil_id.0)
        .bind(class_id.0)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "class_member"))?;
        self.directory_changed();
        Ok(())
    }

    /// Links a parent to a child.
    pub async fn add_guardian(
        &self,
        parent_id: PersonId,
        pupil_id: PersonId,
        legal_guardian: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO guardians (parent_id, pupil_id, legal_guardian) VALUES ($1, $2, $3) \
             ON CONFLICT (parent_id, pupil_id) DO UPDATE SET legal_guardian = excluded.legal_guardian",
        )
        .bind(parent_id.0)
        .bind(pupil_id.0)
        .bind(i64::from(legal_guardian))
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "guardian"))?;
        self.directory_changed();
        Ok(())
    }

    /// Adds a pupil to a group.
    pub async fn add_group_member(&self, group_id: GroupId, pupil_id: PersonId) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO group_members (group_id, pupil_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(group_id.0)
        .bind(pupil_id.0)
        .execute(&self.pool)
        .await
        .map_err(|e| StoreError::from_sqlx(e, "group_member"))?;
        self.directory_changed();
        Ok(())
    }

    /// A parent's children, by first name.
    pub async fn children_of(&self, parent_id: PersonId) -> StoreResult<Vec<ChildView>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS}, gd.legal_guardian FROM guardians gd JOIN people p ON p.id = gd.pupil_id {PERSON_CLASS_JOINS} \
             WHERE gd.parent_id = $1 ORDER BY p.first_name, p.id"
        );
        let rows = sqlx::query(&sql)
            .bind(parent_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ChildView {
                    person: person_from_row(r)?,
                    legal_guardian: r.try_get::<i64, _>("legal_guardian")? != 0,
                })
            })
            .collect()
    }

    /// A pupil's parents.
    pub async fn parents_of(&self, pupil_id: PersonId) -> StoreResult<Vec<PersonSummary>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS} FROM guardians gd JOIN people p ON p.id = gd.parent_id {PERSON_CLASS_JOINS} \
             WHERE gd.pupil_id = $1 ORDER BY lower(p.last_name), lower(p.first_name)"
        );
        let rows = sqlx::query(&sql)
            .bind(pupil_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(person_from_row).collect()
    }

    /// Loads a person and every relationship authorization needs. None if
    /// the person does not exist or cannot sign in.
    pub async fn load_actor(&self, person_id: PersonId) -> StoreResult<Option<Actor>> {
        let Some(person) = self.find_person(person_id).await? else {
            return Ok(None);
        };
        if person.status != AccountStatus::Active {
            return Ok(None);
        }
        let group_ids: Vec<i64> = sqlx::query_scalar(
            "SELECT group_id FROM group_members WHERE pupil_id = $1 ORDER BY group_id",
        )
        .bind(person_id.0)
        .fetch_all(&self.pool)
        .await?;
        let children = sqlx::query(
            "SELECT gd.pupil_id, m.class_id, gd.legal_guardian FROM guardians gd \
             LEFT JOIN class_members m ON m.pupil_id = gd.pupil_id WHERE gd.parent_id = $1 ORDER BY gd.pupil_id",
        )
        .bind(person_id.0)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|r| {
            Ok(ChildLink {
                pupil_id: PersonId(r.try_get("pupil_id")?),
                class_id: r.try_get::<Option<i64>, _>("class_id")?.map(ClassId),
                legal_guardian: r.try_get::<i64, _>("legal_guardian")? != 0,
                group_ids: Vec::new(),
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let mut children = children;
        if !children.is_empty() {
            let rows = sqlx::query(
                "SELECT gm.pupil_id, gm.group_id FROM guardians gd JOIN group_members gm ON gm.pupil_id = gd.pupil_id \
                 WHERE gd.parent_id = $1 ORDER BY gm.group_id",
            )
            .bind(person_id.0)
            .fetch_all(&self.pool)
            .await?;
            for r in &rows {
                let pupil = PersonId(r.try_get("pupil_id")?);
                let group = GroupId(r.try_get("group_id")?);
                if let Some(c) = children.iter_mut().find(|c| c.pupil_id == pupil) {
                    c.group_ids.push(group);
                }
            }
        }
        let rows = sqlx::query("SELECT subject_id, class_id, group_id FROM teachings WHERE teacher_id = $1 ORDER BY id")
            .bind(person_id.0)
            .fetch_all(&self.pool)
            .await?;
        let mut taught_classes = Vec::new();
        let mut taught_groups = Vec::new();
        let mut teachings = Vec::new();
        for r in &rows {
            let class_id = r.try_get::<Option<i64>, _>("class_id")?.map(ClassId);
            let group_id = r.try_get::<Option<i64>, _>("group_id")?.map(GroupId);
            taught_classes.extend(class_id);
            taught_groups.extend(group_id);
            teachings.push(TeachingRef {
                subject_id: SubjectId(r.try_get("subject_id")?),
                class_id,
                group_id,
            });
        }
        taught_classes.sort();
        taught_classes.dedup();
        taught_groups.sort();
        taught_groups.dedup();
        Ok(Some(Actor {
            person_id,
            establishment_id: person.establishment_id,
            roles: person.roles,
            class_id: person.class_id,
            group_ids: group_ids.into_iter().map(GroupId).collect(),
            children,
            taught_classes,
            taught_groups,
            teachings,
        }))
    }

    /// Inserts many rows at once (the demo and yearly imports), in one
    /// transaction, several hundred rows per statement. `returning` names
    /// columns to read back from each inserted row.
    pub async fn insert_many(
        &self,
        table: &'static str,
        columns: &[&'static str],
        rows: Vec<Vec<Val>>,
        returning: Option<&'static str>,
    ) -> StoreResult<Vec<AnyRow>> {
        let width = columns.len().max(1);
        let per_statement = (6000 / width).clamp(1, 500);
        let mut out = Vec::new();
        let mut tx = self.pool.begin().await?;
        for chunk in rows.chunks(per_statement) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(i * width + 1, width)))
                .collect();
            let mut sql = format!(
                "INSERT INTO {table} ({}) VALUES {}",
                columns.join(", "),
                values.join(", ")
            );
            if let Some(ret) = returning {
                sql.push_str(" RETURNING ");
                sql.push_str(ret);
            }
            let mut q = sqlx::query(&sql);
            for row in chunk {
                for v in row {
                    q = match v {
                        Val::I(i) => q.bind(*i),
                        Val::T(t) => q.bind(t.clone()),
                        Val::Null => q.bind(None::<i64>),
                    };
                }
            }
            out.extend(
                q.fetch_all(&mut *tx)
                    .await
                    .map_err(|e| StoreError::from_sqlx(e, table))?,
            );
        }
        tx.commit().await?;
        self.directory_changed();
        Ok(out)
    }
}

/// A teacher of a class with the subject they teach there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassTeacherView {
    /// The subject.
    pub subject_name: String,
    /// The teacher.
    pub teacher: PersonSummary,
}

impl Store {
    /// Who teaches what to a class, by subject.
    pub async fn class_teachers(&self, class_id: ClassId) -> StoreResult<Vec<ClassTeacherView>> {
        let sql = format!(
            "SELECT {PERSON_COLUMNS}, s.name AS subject_name FROM teachings t JOIN subjects s ON s.id = t.subject_id \
             JOIN people p ON p.id = t.teacher_id {PERSON_CLASS_JOINS} WHERE t.class_id = $1 ORDER BY s.name, p.last_name"
        );
        let rows = sqlx::query(&sql)
            .bind(class_id.0)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ClassTeacherView {
                    subject_name: r.try_get("subject_name")?,
                    teacher: person_from_row(r)?,
                })
            })
            .collect()
    }
}
