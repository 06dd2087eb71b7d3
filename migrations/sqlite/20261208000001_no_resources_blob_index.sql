-- Nothing on a request's path looks files up by their blob: the triggers count references
-- through blobs' own key, and fsck finds the files of all the blobs it reports in one pass.
-- The index cost every upload a write to a page picked at random by the hash, about a
-- quarter of a small PUT's log writes.
DROP INDEX resources_blob;
