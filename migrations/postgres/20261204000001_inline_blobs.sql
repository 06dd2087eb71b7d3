-- PostgreSQL twin of ../sqlite/20261204000001_inline_blobs.sql.
ALTER TABLE blobs ADD COLUMN data BYTEA;
