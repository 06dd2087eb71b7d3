-- PostgreSQL twin of ../sqlite/20261207000002_login_failures.sql.
CREATE TABLE login_failures (
    key             TEXT   PRIMARY KEY,
    failures        BIGINT NOT NULL,
    window_start_ns BIGINT NOT NULL,
    locked_until_ns BIGINT
);
