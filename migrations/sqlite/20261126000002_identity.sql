-- Identity: users, shares and who may use which share.
-- Homes (/home/<user>), shares (/shares/<share>) and the anonymous area (/public) are
-- ordinary collections of the tree; these tables only say who sees them and how.

-- password_hash is an argon2id PHC string (salt and parameters included).
-- digest_md5 / digest_sha256 hold the RFC 7616 HA1 = H(user:realm:password), present only
-- when the password was last set with Digest enabled: HA1 is password-equivalent for
-- Digest, so it is stored only for users who need Digest.
-- password_version grows on every password change, so caches of verified credentials
-- (in this process or another) can tell that an entry is stale.
CREATE TABLE users (
    id               INTEGER PRIMARY KEY,
    name             TEXT    NOT NULL UNIQUE,
    password_hash    TEXT    NOT NULL,
    digest_md5       TEXT,
    digest_sha256    TEXT,
    read_only        INTEGER NOT NULL DEFAULT 0,
    admin            INTEGER NOT NULL DEFAULT 0,
    password_version INTEGER NOT NULL DEFAULT 0,
    created_ns       INTEGER NOT NULL
);

CREATE TABLE shares (
    id   INTEGER PRIMARY KEY,
    name TEXT    NOT NULL UNIQUE
);

-- rights: letters of r(ead) w(rite) d(elete) l(ock) a(dmin), e.g. 'rwdl'.
CREATE TABLE grants (
    share_id INTEGER NOT NULL REFERENCES shares(id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    rights   TEXT    NOT NULL,
    PRIMARY KEY (share_id, user_id)
);

-- A principal is built from one user's grants.
CREATE INDEX grants_user ON grants(user_id);
