//! Failed logins kept in the database beside the guard's memory (`guard.rs`), so that
//! every server on one database counts them together: a guesser spreading attempts over
//! the nodes behind a load balancer meets one count, and a lockout begun on one node
//! holds on every node within the authenticator's watch period. Only failures write; a
//! successful login deletes rows only when its node knows of failures to forget.

use std::time::Duration;

use crate::{now_ns, Repository, Result};

/// A key's failures as the database has them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failures {
    pub key: String,
    pub failures: u32,
    pub window_start_ns: i64,
    pub locked_until_ns: Option<i64>,
}

impl Failures {
    /// Its lockout is over, or (unlocked) its counting window has passed: it counts no more.
    fn is_stale(&self, now: i64, window: Duration) -> bool {
        match self.locked_until_ns {
            Some(until) => now >= until,
            None => now.saturating_sub(self.window_start_ns) >= nanos(window),
        }
    }
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Repository {
    /// Adds one failure to each of `keys` (with the count that locks it out; 0: never),
    /// counted within `window`, which is also how long a lockout lasts. Returns each key's
    /// record as it now stands. One statement per key, decided by the database on the
    /// row as it is (row locks only: failed logins never queue behind the writer lock).
    pub(crate) async fn record_login_failure(&self, keys: &[(String, u32)], window: Duration) -> Result<Vec<Failures>> {
        const STALE: &str = "((login_failures.locked_until_ns IS NOT NULL AND login_failures.locked_until_ns <= ?2) \
             OR (login_failures.locked_until_ns IS NULL AND ?2 - login_failures.window_start_ns >= ?4))";
        static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let sql = SQL.get_or_init(|| {
            format!(
                "INSERT INTO login_failures (key, failures, window_start_ns, locked_until_ns) \
                 VALUES (?1, 1, ?2, CASE WHEN ?3 > 0 AND 1 >= ?3 THEN ?2 + ?4 END) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN {STALE} THEN 1 ELSE login_failures.failures + 1 END, \
                   window_start_ns = CASE WHEN {STALE} THEN ?2 ELSE login_failures.window_start_ns END, \
                   locked_until_ns = CASE WHEN {STALE} THEN excluded.locked_until_ns \
                     WHEN login_failures.locked_until_ns IS NOT NULL THEN login_failures.locked_until_ns \
                     WHEN ?3 > 0 AND login_failures.failures + 1 >= ?3 THEN ?2 + ?4 END \
                 RETURNING failures, window_start_ns, locked_until_ns"
            )
        });
        let now = now_ns();
        let mut out = Vec::with_capacity(keys.len());
        for (key, max) in keys {
            let (failures, window_start_ns, locked_until_ns): (i64, i64, Option<i64>) = crate::db::query_as(sql)
                .bind(key)
                .bind(now)
                .bind(i64::from(*max))
                .bind(nanos(window))
                .fetch_one(&self.write)
                .await?;
            let failures = u32::try_from(failures.max(0)).unwrap_or(u32::MAX);
            out.push(Failures { key: key.clone(), failures, window_start_ns, locked_until_ns });
        }
        Ok(out)
    }

    /// The failures that still count (`window` as in [`Repository::record_login_failure`]);
    /// rows that no longer do are deleted.
    pub(crate) async fn login_failures(&self, window: Duration) -> Result<Vec<Failures>> {
        let rows: Vec<(String, i64, i64, Option<i64>)> =
            crate::db::query_as("SELECT key, failures, window_start_ns, locked_until_ns FROM login_failures")
                .fetch_all(&self.read)
                .await?;
        let now = now_ns();
        let (stale, live): (Vec<Failures>, Vec<Failures>) = rows
            .into_iter()
            .map(|(key, failures, window_start_ns, locked_until_ns)| Failures {
                key,
                failures: u32::try_from(failures.max(0)).unwrap_or(u32::MAX),
                window_start_ns,
                locked_until_ns,
            })
            .partition(|r| r.is_stale(now, window));
        for rec in stale {
            // Only if it is still the record seen: a failure may have renewed it since.
            crate::db::query("DELETE FROM login_failures WHERE key = ? AND window_start_ns = ?")
                .bind(rec.key)
                .bind(rec.window_start_ns)
                .execute(&self.write)
                .await?;
        }
        Ok(live)
    }

    /// Forgets the failures of `keys` (after a successful login).
    pub(crate) async fn clear_login_failures(&self, keys: &[String]) -> Result<()> {
        for key in keys {
            crate::db::query("DELETE FROM login_failures WHERE key = ? AND locked_until_ns IS NULL")
                .bind(key)
                .execute(&self.write)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(60);

    fn keys(max: u32) -> Vec<(String, u32)> {
        vec![("u:alice".into(), max), ("a:10.0.0.1".into(), 50)]
    }

    #[tokio::test]
    async fn failures_add_up_and_lock_a_key_out_at_its_threshold() {
        let (_dir, repo) = Repository::scratch().await;
        for n in 1..=3 {
            let recs = repo.record_login_failure(&keys(3), WINDOW).await.unwrap();
            assert_eq!(recs[0].failures, n);
            assert_eq!(recs[0].locked_until_ns.is_some(), n == 3, "failure {n}");
            assert!(recs[1].locked_until_ns.is_none(), "the address's threshold is 50");
        }
        let live = repo.login_failures(WINDOW).await.unwrap();
        assert_eq!(live.len(), 2);
    }

    #[tokio::test]
    async fn a_success_forgets_failures_but_not_a_lockout() {
        let (_dir, repo) = Repository::scratch().await;
        repo.record_login_failure(&keys(3), WINDOW).await.unwrap();
        repo.clear_login_failures(&["u:alice".into()]).await.unwrap();
        let live = repo.login_failures(WINDOW).await.unwrap();
        assert_eq!(live.iter().map(|r| r.key.as_str()).collect::<Vec<_>>(), ["a:10.0.0.1"]);
        for _ in 0..3 {
            repo.record_login_failure(&keys(3), WINDOW).await.unwrap();
        }
        repo.clear_login_failures(&["u:alice".into()]).await.unwrap();
        let locked = repo.login_failures(WINDOW).await.unwrap();
        assert!(locked.iter().any(|r| r.key == "u:alice" && r.locked_until_ns.is_some()));
    }

    #[tokio::test]
    async fn records_past_their_window_no_longer_count_and_are_deleted() {
        let (_dir, repo) = Repository::scratch().await;
        repo.record_login_failure(&keys(3), Duration::from_millis(1)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(repo.login_failures(Duration::from_millis(1)).await.unwrap().is_empty());
        assert!(repo.login_failures(WINDOW).await.unwrap().is_empty(), "deleted, not just skipped");
        let recs = repo.record_login_failure(&keys(3), WINDOW).await.unwrap();
        assert_eq!(recs[0].failures, 1, "counting starts again");
    }
}
