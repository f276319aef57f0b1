-- Documents: folders in spaces (a person's, a class's, a group's, an
-- establishment's), documents naming blobs, and shares (SQLite). Twin of
-- migrations/postgres/20261123000005_documents.sql.
--
-- A space's root folder (parent_id NULL) is created on demand; at most one
-- per space. Every folder carries its space, so that access is decided
-- from the folder alone plus the shares on it and the folders above it.
-- Trashing marks one row; what is inside a trashed folder is hidden with
-- it and comes back with it. The sweeper purges rows trashed more than 30
-- days ago, and then the blobs no row names.

CREATE TABLE doc_folders (
    id INTEGER PRIMARY KEY,
    space_kind TEXT NOT NULL CHECK (space_kind IN ('person', 'class', 'group', 'establishment')),
    space_id BIGINT NOT NULL,
    establishment_id BIGINT NOT NULL REFERENCES establishments(id),
    parent_id BIGINT REFERENCES doc_folders(id),
    name TEXT NOT NULL,
    owner_id BIGINT REFERENCES people(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    trashed_at BIGINT,
    trashed_by BIGINT REFERENCES people(id)
);
CREATE UNIQUE INDEX doc_folders_space_root ON doc_folders (space_kind, space_id) WHERE parent_id IS NULL;
CREATE INDEX doc_folders_parent ON doc_folders (parent_id, name);
CREATE INDEX doc_folders_trashed ON doc_folders (trashed_at) WHERE trashed_at IS NOT NULL;

CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    folder_id BIGINT NOT NULL REFERENCES doc_folders(id),
    name TEXT NOT NULL,
    blob_hash TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL CHECK (size > 0),
    owner_id BIGINT NOT NULL REFERENCES people(id),
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    trashed_at BIGINT,
    trashed_by BIGINT REFERENCES people(id)
);
CREATE INDEX documents_folder ON documents (folder_id, name);
CREATE INDEX documents_owner ON documents (owner_id);
CREATE INDEX documents_blob ON documents (blob_hash);
CREATE INDEX documents_trashed ON documents (trashed_at) WHERE trashed_at IS NOT NULL;

CREATE TABLE doc_shares (
    id INTEGER PRIMARY KEY,
    item_kind TEXT NOT NULL CHECK (item_kind IN ('folder', 'document')),
    item_id BIGINT NOT NULL,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('class', 'group', 'person')),
    target_id BIGINT NOT NULL,
    can_write BIGINT NOT NULL DEFAULT 0,
    created_by BIGINT NOT NULL REFERENCES people(id),
    created_at BIGINT NOT NULL,
    UNIQUE (item_kind, item_id, target_kind, target_id)
);
CREATE INDEX doc_shares_target ON doc_shares (target_kind, target_id);
