//! SQL text for PostgreSQL from the model's SQLite-style statements.

/// `sql` with its `?` placeholders numbered `$1`, `$2`, … (and `?NNN` as `$NNN`), as
/// PostgreSQL wants them. Question marks inside string literals, quoted identifiers and
/// comments are left alone.
pub(crate) fn numbered(sql: &str) -> String {
    number(sql).0
}

/// How many values `statement` takes: its `?` placeholders outside literals.
pub(crate) fn placeholders(statement: &str) -> usize {
    number(statement).1
}

fn number(sql: &str) -> (String, usize) {
    let mut count = 0;
    let mut out = String::with_capacity(sql.len() + 16);
    let mut next = 0;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                if digits.is_empty() {
                    next += 1;
                    digits = next.to_string();
                }
                // `?2` twice is one value; `?` after `?3` is the fourth.
                let index: usize = digits.parse().unwrap_or(0);
                next = next.max(index);
                count = count.max(index);
                out.push('$');
                out.push_str(&digits);
            }
            _ => out.push(c),
        }
    }
    (out, count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        assert_eq!(numbered("SELECT a FROM t WHERE b = ? AND c = ?"), "SELECT a FROM t WHERE b = $1 AND c = $2");
    }

    #[test]
    fn numbered_placeholders_keep_their_numbers() {
        assert_eq!(numbered("DELETE FROM t WHERE id = ?1 OR id = ?1"), "DELETE FROM t WHERE id = $1 OR id = $1");
    }

    #[test]
    fn question_marks_in_literals_identifiers_and_comments_stay() {
        let sql = "SELECT '?', \"a?\" FROM t -- why?\nWHERE x = ?";
        assert_eq!(numbered(sql), "SELECT '?', \"a?\" FROM t -- why?\nWHERE x = $1");
        assert_eq!(placeholders(sql), 1);
    }

    #[test]
    fn a_numbered_placeholder_used_twice_is_one_value() {
        assert_eq!(placeholders("SELECT ?1 WHERE a = ?1 OR b = ?2"), 2);
    }

    #[test]
    fn doubled_quotes_inside_a_literal_do_not_end_it_early() {
        assert_eq!(numbered("SELECT 'it''s ?' WHERE a = ?"), "SELECT 'it''s ?' WHERE a = $1");
    }
}
