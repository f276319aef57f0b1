-- Directory, accounts, sessions and audit log (SQLite dialect).
-- Twin of migrations/postgres/20261123000001_directory.sql: same tables,
-- same columns, same meaning. Times are Unix seconds (BIGINT) on both.

CREATE TABLE establishments (
    id INTEGER PRIMARY KEY,
    uai TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    city TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL
);

CREATE TABLE school_years (
    id INTEGER PRIMARY KEY,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    label TEXT NOT NULL,
    starts_on TEXT NOT NULL,
    ends_on TEXT NOT NULL,
    UNIQUE (establishment_id, label)
);

CREATE TABLE classes (
    id INTEGER PRIMARY KEY,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    school_year_id BIGINT NOT NULL REFERENCES school_years(id),
    name TEXT NOT NULL,
    level TEXT NOT NULL DEFAULT '',
    UNIQUE (school_year_id, name)
);
CREATE INDEX classes_establishment ON classes (establishment_id, name);

CREATE TABLE teaching_groups (
    id INTEGER PRIMARY KEY,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    school_year_id BIGINT NOT NULL REFERENCES school_years(id),
    name TEXT NOT NULL,
    UNIQUE (school_year_id, name)
);

CREATE TABLE subjects (
    id INTEGER PRIMARY KEY,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    UNIQUE (establishment_id, code)
);

CREATE TABLE people (
    id INTEGER PRIMARY KEY,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    login TEXT NOT NULL UNIQUE,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    roles BIGINT NOT NULL,
    title TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('pending', 'active', 'disabled')),
    password_hash TEXT,
    activation_code_hash TEXT,
    activation_expires_at BIGINT,
    failures BIGINT NOT NULL DEFAULT 0,
    failure_window_start BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX people_establishment ON people (establishment_id, last_name, first_name);

CREATE TABLE class_members (
    pupil_id BIGINT PRIMARY KEY REFERENCES people(id),
    class_id BIGINT NOT NULL REFERENCES classes(id)
);
CREATE INDEX class_members_class ON class_members (class_id);

CREATE TABLE group_members (
    group_id BIGINT NOT NULL REFERENCES teaching_groups(id),
    pupil_id BIGINT NOT NULL REFERENCES people(id),
    PRIMARY KEY (group_id, pupil_id)
);
CREATE INDEX group_members_pupil ON group_members (pupil_id);

CREATE TABLE guardians (
    parent_id BIGINT NOT NULL REFERENCES people(id),
    pupil_id BIGINT NOT NULL REFERENCES people(id),
    legal_guardian BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (parent_id, pupil_id)
);
CREATE INDEX guardians_pupil ON guardians (pupil_id);

CREATE TABLE teachings (
    id INTEGER PRIMARY KEY,
    teacher_id BIGINT NOT NULL REFERENCES people(id),
    subject_id BIGINT NOT NULL REFERENCES subjects(id),
    class_id BIGINT REFERENCES classes(id),
    group_id BIGINT REFERENCES teaching_groups(id),
    CHECK ((class_id IS NULL) <> (group_id IS NULL))
);
CREATE INDEX teachings_teacher ON teachings (teacher_id);
CREATE INDEX teachings_class ON teachings (class_id);

CREATE TABLE sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    person_id BIGINT NOT NULL REFERENCES people(id),
    created_at BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    remembered BIGINT NOT NULL,
    user_agent TEXT NOT NULL DEFAULT '',
    csrf_token TEXT NOT NULL
);
CREATE INDEX sessions_person ON sessions (person_id);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL,
    actor_id BIGINT,
    action TEXT NOT NULL,
    target TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
