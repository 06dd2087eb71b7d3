-- Small blobs kept in the database with their rows instead of as files of the blob store
-- (one file create, write and rename less per small upload). `data` holds the whole
-- content, still addressed by its BLAKE3 id, still counted by `refcount`; NULL means the
-- bytes are a file of the blob store. A row at refcount 0 with data is garbage that
-- the writes releasing it delete in their own transaction.
ALTER TABLE blobs ADD COLUMN data BLOB;
