-- Where the repository's blobs live (see dav-model/src/blobs.rs): recorded when the server
-- first opens the repository, so that a later start with other settings, fsck and backup
-- all find the same store, and a database is never served against the wrong one.
CREATE TABLE blob_location (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    url TEXT NOT NULL,
    endpoint TEXT,
    region TEXT,
    -- 1: the bucket in the host name (virtual-hosted style); NULL: the server's default.
    virtual_hosted INTEGER,
    -- A random id of this database, written into a bucket it keeps blobs in (see
    -- backends/src/s3/mod.rs, `claim`): two databases on one bucket prefix would each
    -- collect the other's blobs as garbage.
    repository TEXT NOT NULL
);
