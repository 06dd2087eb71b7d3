-- PostgreSQL twin of ../sqlite/20261206000001_blob_location.sql.
CREATE TABLE blob_location (
    id             BIGINT PRIMARY KEY CHECK (id = 1),
    url            TEXT   NOT NULL,
    endpoint       TEXT,
    region         TEXT,
    virtual_hosted BIGINT,
    repository     TEXT   NOT NULL
);
