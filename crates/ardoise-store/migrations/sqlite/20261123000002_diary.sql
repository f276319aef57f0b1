-- Homework diary: lessons, homework and each pupil's "done" ticks (SQLite).
-- Twin of migrations/postgres/20261123000002_diary.sql.

CREATE TABLE lessons (
    id INTEGER PRIMARY KEY,
    class_id BIGINT NOT NULL REFERENCES classes(id),
    subject_id BIGINT NOT NULL REFERENCES subjects(id),
    teacher_id BIGINT NOT NULL REFERENCES people(id),
    lesson_on TEXT NOT NULL,
    title TEXT NOT NULL,
    content_source TEXT NOT NULL,
    content_html TEXT NOT NULL,
    publish_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX lessons_class ON lessons (class_id, lesson_on);

CREATE TABLE homework (
    id INTEGER PRIMARY KEY,
    class_id BIGINT NOT NULL REFERENCES classes(id),
    subject_id BIGINT NOT NULL REFERENCES subjects(id),
    teacher_id BIGINT NOT NULL REFERENCES people(id),
    due_on TEXT NOT NULL,
    instructions_source TEXT NOT NULL,
    instructions_html TEXT NOT NULL,
    minutes BIGINT,
    publish_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX homework_class ON homework (class_id, due_on);

CREATE TABLE homework_done (
    homework_id BIGINT NOT NULL REFERENCES homework(id) ON DELETE CASCADE,
    pupil_id BIGINT NOT NULL REFERENCES people(id),
    done_at BIGINT NOT NULL,
    PRIMARY KEY (homework_id, pupil_id)
);
CREATE INDEX homework_done_pupil ON homework_done (pupil_id);
