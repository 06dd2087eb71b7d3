-- PostgreSQL twin of ../sqlite/20261207000001_secrets.sql.
CREATE TABLE secrets (
    name  TEXT  PRIMARY KEY,
    value BYTEA NOT NULL
);
