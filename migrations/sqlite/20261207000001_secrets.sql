-- Secrets every server on this database must share (see dav-model/src/identity/secrets.rs),
-- such as the key of HTTP Digest nonces: a nonce one node issued must verify on another.
-- Made at random by the first server that needs one.
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
