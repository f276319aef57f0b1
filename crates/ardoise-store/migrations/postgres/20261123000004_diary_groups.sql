-- Lessons and homework for a teaching group as well as a class, and each
-- establishment's time zone (PostgreSQL). Twin of
-- migrations/sqlite/20261123000004_diary_groups.sql.
--
-- A lesson or homework belongs to exactly one class or one group.

ALTER TABLE establishments ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'Europe/Paris';

CREATE INDEX group_members_group ON group_members (group_id);
CREATE INDEX teachings_group ON teachings (group_id);

ALTER TABLE lessons ALTER COLUMN class_id DROP NOT NULL;
ALTER TABLE lessons ADD COLUMN group_id BIGINT REFERENCES teaching_groups(id);
ALTER TABLE lessons ADD CONSTRAINT lessons_one_audience CHECK ((class_id IS NULL) <> (group_id IS NULL));
CREATE INDEX lessons_group ON lessons (group_id, lesson_on);

ALTER TABLE homework ALTER COLUMN class_id DROP NOT NULL;
ALTER TABLE homework ADD COLUMN group_id BIGINT REFERENCES teaching_groups(id);
ALTER TABLE homework ADD CONSTRAINT homework_one_audience CHECK ((class_id IS NULL) <> (group_id IS NULL));
CREATE INDEX homework_group ON homework (group_id, due_on);
