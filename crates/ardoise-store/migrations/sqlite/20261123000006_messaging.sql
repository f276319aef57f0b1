-- Messaging, communication rules, containment and announcements (SQLite).
-- Twin of migrations/postgres/20261123000006_messaging.sql.
--
-- Recipients are resolved when a message is sent and recorded, one row per
-- person (message_recipients): a pupil who changes class never sees the
-- old class's later messages. Quarantine is a mark on the sender's message
-- rows (messages.quarantine_id) that every read query filters, so hiding
-- an account's messages touches O(its messages), never O(recipients).

CREATE TABLE conversations (
    id INTEGER PRIMARY KEY,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    subject TEXT NOT NULL,
    creator_id BIGINT NOT NULL REFERENCES people(id),
    -- 1 when sent to a class, group, parents or teachers of a class: the
    -- recipients' replies go to the creator only, never to everyone.
    broadcast BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE messages (
    id INTEGER PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations(id),
    sender_id BIGINT NOT NULL REFERENCES people(id),
    body_source TEXT NOT NULL,
    body_html TEXT NOT NULL,
    -- Who it was sent to, as the sender chose it (« 6eA », « Parents de 6eA »).
    recipients_label TEXT NOT NULL DEFAULT '',
    recipient_count BIGINT NOT NULL DEFAULT 0,
    sent_at BIGINT NOT NULL,
    quarantine_id BIGINT
);
CREATE INDEX messages_conversation ON messages (conversation_id, id);
CREATE INDEX messages_sender ON messages (sender_id, sent_at);
CREATE INDEX messages_quarantine ON messages (quarantine_id);

CREATE TABLE message_recipients (
    message_id BIGINT NOT NULL REFERENCES messages(id),
    person_id BIGINT NOT NULL REFERENCES people(id),
    unread BIGINT NOT NULL DEFAULT 1,
    PRIMARY KEY (message_id, person_id)
);
CREATE INDEX message_recipients_person ON message_recipients (person_id, message_id);

CREATE TABLE message_drafts (
    id INTEGER PRIMARY KEY,
    author_id BIGINT NOT NULL REFERENCES people(id),
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    -- The chosen recipients, as the compose form encodes them
    -- (`person:12 class:3`).
    recipients TEXT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX message_drafts_author ON message_drafts (author_id, updated_at);

-- Who may write to whom, per establishment; no row means the defaults.
CREATE TABLE communication_rules (
    establishment_id BIGINT PRIMARY KEY REFERENCES establishments(id),
    pupils_to_pupils BIGINT NOT NULL,
    pupils_to_parents BIGINT NOT NULL,
    parents_to_parents BIGINT NOT NULL,
    pupil_hourly_limit BIGINT NOT NULL,
    adult_hourly_limit BIGINT NOT NULL,
    pupil_max_recipients BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    updated_by BIGINT REFERENCES people(id)
);

CREATE TABLE sending_suspensions (
    person_id BIGINT PRIMARY KEY REFERENCES people(id),
    suspended_by BIGINT NOT NULL REFERENCES people(id),
    suspended_at BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT ''
);

CREATE TABLE quarantines (
    id INTEGER PRIMARY KEY,
    sender_id BIGINT NOT NULL REFERENCES people(id),
    from_at BIGINT NOT NULL,
    to_at BIGINT NOT NULL,
    decided_by BIGINT NOT NULL REFERENCES people(id),
    decided_at BIGINT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    message_count BIGINT NOT NULL,
    lifted_by BIGINT REFERENCES people(id),
    lifted_at BIGINT
);
CREATE INDEX quarantines_sender ON quarantines (sender_id);

CREATE TABLE message_reports (
    id INTEGER PRIMARY KEY,
    message_id BIGINT NOT NULL REFERENCES messages(id),
    reporter_id BIGINT NOT NULL REFERENCES people(id),
    reason TEXT NOT NULL DEFAULT '',
    reported_at BIGINT NOT NULL,
    closed_by BIGINT REFERENCES people(id),
    closed_at BIGINT,
    UNIQUE (message_id, reporter_id)
);

CREATE TABLE announcements (
    id INTEGER PRIMARY KEY,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    author_id BIGINT NOT NULL REFERENCES people(id),
    title TEXT NOT NULL,
    body_source TEXT NOT NULL,
    body_html TEXT NOT NULL,
    -- 'all' (the establishment), 'parents' (every parent), 'class' (the
    -- pupils, parents and teachers of the listed classes), 'class_parents'
    -- (the parents of the listed classes).
    audience TEXT NOT NULL CHECK (audience IN ('all', 'parents', 'class', 'class_parents')),
    publish_from BIGINT NOT NULL,
    publish_until BIGINT,
    created_at BIGINT NOT NULL
);
CREATE INDEX announcements_establishment ON announcements (establishment_id, publish_from);

CREATE TABLE announcement_classes (
    announcement_id BIGINT NOT NULL REFERENCES announcements(id) ON DELETE CASCADE,
    class_id BIGINT NOT NULL REFERENCES classes(id),
    PRIMARY KEY (announcement_id, class_id)
);
