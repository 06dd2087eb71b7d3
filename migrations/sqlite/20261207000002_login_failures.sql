-- Failed logins by user name (a hash of it, `u:HEX`) and by client address (`a:ADDRESS`),
-- so that servers on one database count them together and a lockout begun by one holds
-- on all (see dav-model/src/identity/failures.rs). Times in nanoseconds since the epoch.
CREATE TABLE login_failures (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    window_start_ns INTEGER NOT NULL,
    locked_until_ns INTEGER
);
