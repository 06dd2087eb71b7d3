-- The tree: one row per resource. Collections have no blob. The root has id 1 and no parent.
-- Times are nanoseconds since the Unix epoch.
CREATE TABLE resources (
    id            INTEGER PRIMARY KEY,
    parent_id     INTEGER REFERENCES resources(id),
    name          TEXT    NOT NULL,
    is_collection INTEGER NOT NULL,
    blob_id       TEXT,
    size          INTEGER NOT NULL DEFAULT 0,
    content_type  TEXT,
    etag          TEXT    NOT NULL,
    created_ns    INTEGER NOT NULL,
    modified_ns   INTEGER NOT NULL
);
CREATE UNIQUE INDEX resources_parent_name ON resources(parent_id, name);
CREATE INDEX resources_blob ON resources(blob_id);

INSERT INTO resources (id, parent_id, name, is_collection, etag, created_ns, modified_ns)
VALUES (1, NULL, '', 1, '"root"', 0, 0);

-- Dead properties, the property element kept verbatim and self-contained.
CREATE TABLE dead_props (
    resource_id INTEGER NOT NULL REFERENCES resources(id) ON DELETE CASCADE,
    namespace   TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    xml         TEXT    NOT NULL,
    PRIMARY KEY (resource_id, namespace, name)
);

-- Reference counts of blobs, kept by triggers so every statement that adds or drops a
-- reference (including COPY's INSERT ... SELECT) stays correct without extra code.
-- A row at 0 is garbage waiting for the collector.
CREATE TABLE blobs (
    id       TEXT    PRIMARY KEY,
    refcount INTEGER NOT NULL
);

CREATE TRIGGER blobs_ref_insert AFTER INSERT ON resources WHEN NEW.blob_id IS NOT NULL
BEGIN
    INSERT INTO blobs (id, refcount) VALUES (NEW.blob_id, 1)
        ON CONFLICT (id) DO UPDATE SET refcount = refcount + 1;
END;

CREATE TRIGGER blobs_ref_delete AFTER DELETE ON resources WHEN OLD.blob_id IS NOT NULL
BEGIN
    UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;
END;

CREATE TRIGGER blobs_ref_update AFTER UPDATE OF blob_id ON resources
    WHEN OLD.blob_id IS NOT NEW.blob_id
BEGIN
    UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id;
    INSERT INTO blobs (id, refcount) SELECT NEW.blob_id, 1 WHERE NEW.blob_id IS NOT NULL
        ON CONFLICT (id) DO UPDATE SET refcount = refcount + 1;
END;

-- Locks are keyed by the path of their root ('/a/b', root '/'), not by resource id:
-- a lock may be taken on an unmapped URL, and a MOVE must not carry a lock along.
CREATE TABLE locks (
    token       TEXT    PRIMARY KEY,
    root_path   TEXT    NOT NULL,
    depth_infinite INTEGER NOT NULL,
    exclusive   INTEGER NOT NULL,
    owner_xml   TEXT,
    principal   TEXT,
    timeout_secs INTEGER,
    expires_ns  INTEGER
);
CREATE INDEX locks_root ON locks(root_path);

-- Lets the collector find garbage without scanning every blob.
CREATE INDEX blobs_garbage ON blobs(id) WHERE refcount <= 0;
