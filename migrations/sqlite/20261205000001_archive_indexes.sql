-- Indexes of archives opened as folders (see dav-model/src/archive.rs): a cache, keyed by
-- the archive's identity (a blob's content id, a host file's version), so an entry can
-- never describe other bytes than its key's. Dropping rows loses nothing but the time to
-- build them again.
CREATE TABLE archive_indexes (
    key TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    used_ns INTEGER NOT NULL
);
