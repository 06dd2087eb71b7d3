-- Mounts: a stored path (a share's root, a user's home) backed by a foreign tree, such as a
-- folder of the host served in place. The native collection row at that path stays (it is
-- what the parent lists and what grants point at); what lies below comes from the tree.
CREATE TABLE mounts (
    id          INTEGER PRIMARY KEY,
    stored_path TEXT    NOT NULL UNIQUE,
    kind        TEXT    NOT NULL,
    source      TEXT    NOT NULL,
    read_only   INTEGER NOT NULL DEFAULT 0,
    -- Most bytes the files below may hold (RFC 4331 quota, 507 beyond); NULL: the free
    -- space of the folder's file system is the only limit.
    quota_bytes INTEGER
);

-- Dead properties of resources in mounted trees, keyed by path within the mount ('' for
-- its root, '/a/b' below) and by the identity of the object they were set on (`node`,
-- see wharf_backends::NodeId). A row whose node no longer matches what is at its path
-- belongs to a file replaced or deleted by another program: it is ignored and purged.
CREATE TABLE mounted_props (
    mount_id  INTEGER NOT NULL REFERENCES mounts(id) ON DELETE CASCADE,
    path      TEXT    NOT NULL,
    node      TEXT    NOT NULL,
    namespace TEXT    NOT NULL,
    name      TEXT    NOT NULL,
    xml       TEXT    NOT NULL,
    PRIMARY KEY (mount_id, path, namespace, name)
);
