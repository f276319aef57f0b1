-- Lessons and homework for a teaching group as well as a class, and each
-- establishment's time zone (SQLite). Twin of
-- migrations/postgres/20261123000004_diary_groups.sql.
--
-- A lesson or homework belongs to exactly one class or one group. SQLite
-- cannot drop a NOT NULL constraint, so `lessons` and `homework` are
-- rebuilt: rows are copied aside, the table is dropped and created anew,
-- and the rows come back with the same ids. Foreign keys are deferred to
-- the end of this migration's transaction, so the rows of `submissions`
-- and `feedback` that name a homework find it again before the check; the
-- "done" ticks, which the drop would cascade away, are copied aside too.

PRAGMA defer_foreign_keys = ON;

ALTER TABLE establishments ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/Paris';

CREATE INDEX group_members_group ON group_members (group_id);
CREATE INDEX teachings_group ON teachings (group_id);

CREATE TABLE lessons_keep AS SELECT * FROM lessons;
DROP TABLE lessons;
CREATE TABLE lessons (
    id INTEGER PRIMARY KEY,
    class_id BIGINT REFERENCES classes(id),
    group_id BIGINT REFERENCES teaching_groups(id),
    subject_id BIGINT NOT NULL REFERENCES subjects(id),
    teacher_id BIGINT NOT NULL REFERENCES people(id),
    lesson_on TEXT NOT NULL,
    title TEXT NOT NULL,
    content_source TEXT NOT NULL,
    content_html TEXT NOT NULL,
    publish_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CHECK ((class_id IS NULL) <> (group_id IS NULL))
);
INSERT INTO lessons (id, class_id, group_id, subject_id, teacher_id, lesson_on, title, content_source, content_html, publish_at, created_at)
    SELECT id, class_id, NULL, subject_id, teacher_id, lesson_on, title, content_source, content_html, publish_at, created_at FROM lessons_keep;
DROP TABLE lessons_keep;
CREATE INDEX lessons_class ON lessons (class_id, lesson_on);
CREATE INDEX lessons_group ON lessons (group_id, lesson_on);

CREATE TABLE homework_done_keep AS SELECT * FROM homework_done;
CREATE TABLE homework_keep AS SELECT * FROM homework;
DROP TABLE homework;
CREATE TABLE homework (
    id INTEGER PRIMARY KEY,
    class_id BIGINT REFERENCES classes(id),
    group_id BIGINT REFERENCES teaching_groups(id),
    subject_id BIGINT NOT NULL REFERENCES subjects(id),
    teacher_id BIGINT NOT NULL REFERENCES people(id),
    due_on TEXT NOT NULL,
    instructions_source TEXT NOT NULL,
    instructions_html TEXT NOT NULL,
    minutes BIGINT,
    publish_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    hand_in BIGINT NOT NULL DEFAULT 0,
    deadline_at BIGINT,
    late_allowed BIGINT NOT NULL DEFAULT 0,
    mark_scale BIGINT,
    CHECK ((class_id IS NULL) <> (group_id IS NULL))
);
INSERT INTO homework (id, class_id, group_id, subject_id, teacher_id, due_on, instructions_source, instructions_html, minutes, publish_at, created_at, hand_in, deadline_at, late_allowed, mark_scale)
    SELECT id, class_id, NULL, subject_id, teacher_id, due_on, instructions_source, instructions_html, minutes, publish_at, created_at, hand_in, deadline_at, late_allowed, mark_scale FROM homework_keep;
DROP TABLE homework_keep;
CREATE INDEX homework_class ON homework (class_id, due_on);
CREATE INDEX homework_group ON homework (group_id, due_on);
DELETE FROM homework_done;
INSERT INTO homework_done (homework_id, pupil_id, done_at)
    SELECT homework_id, pupil_id, done_at FROM homework_done_keep;
DROP TABLE homework_done_keep;
