-- PostgreSQL twin of ../sqlite/20261205000001_archive_indexes.sql.
CREATE TABLE archive_indexes (
    key     TEXT   PRIMARY KEY,
    data    BYTEA  NOT NULL,
    used_ns BIGINT NOT NULL
);
