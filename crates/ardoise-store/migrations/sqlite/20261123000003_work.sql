-- Assignments (homework to hand in), submissions, feedback and the
-- attachments of all of them (SQLite). Twin of
-- migrations/postgres/20261123000003_work.sql.
--
-- File bytes live in the blob store (ardoise-files), addressed by the
-- SHA-256 of their content; rows here name them. A blob is written and
-- made durable before the row that names it is committed.

ALTER TABLE homework ADD COLUMN hand_in BIGINT NOT NULL DEFAULT 0;
ALTER TABLE homework ADD COLUMN deadline_at BIGINT;
ALTER TABLE homework ADD COLUMN late_allowed BIGINT NOT NULL DEFAULT 0;
ALTER TABLE homework ADD COLUMN mark_scale BIGINT;

-- Files attached to a lesson, homework, submission or feedback.
CREATE TABLE attachments (
    id INTEGER PRIMARY KEY,
    owner_kind TEXT NOT NULL,
    owner_id BIGINT NOT NULL,
    position BIGINT NOT NULL,
    blob_hash TEXT NOT NULL,
    file_name TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX attachments_owner ON attachments (owner_kind, owner_id, position);
CREATE INDEX attachments_blob ON attachments (blob_hash);

-- A pupil's current hand-in for an assignment: one row per pupil, replaced
-- whole (row and files in one transaction) until the deadline.
CREATE TABLE submissions (
    id INTEGER PRIMARY KEY,
    homework_id BIGINT NOT NULL REFERENCES homework(id),
    pupil_id BIGINT NOT NULL REFERENCES people(id),
    revision BIGINT NOT NULL,
    text_source TEXT NOT NULL,
    text_html TEXT NOT NULL,
    submitted_at BIGINT NOT NULL,
    late BIGINT NOT NULL,
    total_size BIGINT NOT NULL,
    receipt_hash TEXT NOT NULL,
    UNIQUE (homework_id, pupil_id)
);

-- What the teacher returns to a pupil for an assignment.
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    homework_id BIGINT NOT NULL REFERENCES homework(id),
    pupil_id BIGINT NOT NULL REFERENCES people(id),
    teacher_id BIGINT NOT NULL REFERENCES people(id),
    comment_source TEXT NOT NULL,
    comment_html TEXT NOT NULL,
    mark_hundredths BIGINT,
    returned_at BIGINT NOT NULL,
    UNIQUE (homework_id, pupil_id)
);
