//! Redis's glob patterns, for `KEYS`: `*` (any run), `?` (one byte),
//! `[abc]`, `[a-z]` and `[^a]` (one byte in or out of a set), and `\` to
//! take the next byte as it is. Matching is on bytes, and takes time in
//! proportion to the pattern's length times the key's, whatever the
//! pattern: a `*` only ever resumes from the last one seen, so a pattern
//! of many stars cannot make it backtrack without end.

/// Whether `key` matches `pattern`.
pub fn matches(pattern: &[u8], key: &[u8]) -> bool {
    let (mut p, mut k) = (0, 0);
    // Where to resume after the last `*`: the pattern after it, and the
    // key position it has swallowed up to.
    let mut resume: Option<(usize, usize)> = None;
    while k < key.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    // A run of stars is one star.
                    while p < pattern.len() && pattern[p] == b'*' {
                        p += 1;
                    }
                    resume = Some((p, k));
                    continue;
                }
                _ => {
                    if let Some(next) = one_byte(pattern, p, key[k]) {
                        p = next;
                        k += 1;
                        continue;
                    }
                }
            }
        }
        // A mismatch (or the pattern ran out): let the last star swallow
        // one more byte, if there is one.
        match resume {
            Some((after_star, swallowed)) => {
                p = after_star;
                k = swallowed + 1;
                resume = Some((after_star, swallowed + 1));
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|&byte| byte == b'*')
}

/// Whether the pattern element at `p` (not a star) matches `byte`: the
/// position after the element if so.
fn one_byte(pattern: &[u8], p: usize, byte: u8) -> Option<usize> {
    match pattern[p] {
        b'?' => Some(p + 1),
        b'[' => class(pattern, p + 1, byte),
        b'\\' if p + 1 < pattern.len() => (pattern[p + 1] == byte).then_some(p + 2),
        literal => (literal == byte).then_some(p + 1),
    }
}

/// A `[...]` class whose contents start at `p`: the position after its
/// `]` if `byte` is in it (out of it, for `[^...]`). An unclosed class
/// runs to the end of the pattern, as in Redis.
fn class(pattern: &[u8], mut p: usize, byte: u8) -> Option<usize> {
    let negated = pattern.get(p) == Some(&b'^');
    if negated {
        p += 1;
    }
    let mut found = false;
    while p < pattern.len() && pattern[p] != b']' {
        if pattern[p] == b'\\' && p + 1 < pattern.len() {
            found |= pattern[p + 1] == byte;
            p += 2;
        } else if p + 2 < pattern.len() && pattern[p + 1] == b'-' && pattern[p + 2] != b']' {
            let (low, high) = (
                pattern[p].min(pattern[p + 2]),
                pattern[p].max(pattern[p + 2]),
            );
            found |= (low..=high).contains(&byte);
            p += 3;
        } else {
            found |= pattern[p] == byte;
            p += 1;
        }
    }
    // Past the `]` (or at the end, for an unclosed class).
    let after = (p + 1).min(pattern.len());
    (found != negated).then_some(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_as_in_redis() {
        let cases: &[(&str, &str, bool)] = &[
            ("*", "", true),
            ("*", "anything", true),
            ("h?llo", "hello", true),
            ("h?llo", "hllo", false),
            ("h*llo", "heeeello", true),
            ("h*llo", "hello!", false),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[b-a]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h\\*llo", "h*llo", true),
            ("h\\*llo", "hallo", false),
            ("user:*:name", "user:42:name", true),
            ("user:*:name", "user:42:age", false),
            ("*a*b*c", "xxaxxbxxc", true),
            ("*a*b*c", "xxaxxcxxb", false),
            ("a**", "a", true),
            ("", "", true),
            ("", "a", false),
            ("[abc", "b", true),
        ];
        for &(pattern, key, expected) in cases {
            assert_eq!(
                matches(pattern.as_bytes(), key.as_bytes()),
                expected,
                "{pattern:?} against {key:?}"
            );
        }
    }

    /// A pattern that backtracking matchers take exponential time over
    /// (2,000 stars against 4,000 bytes): here some 16 million steps at
    /// most, so the test ends; an exponential matcher would never return.
    #[test]
    fn many_stars_do_not_backtrack_without_end() {
        let pattern = "a*".repeat(2000) + "b";
        let key = "a".repeat(4000);
        assert!(!matches(pattern.as_bytes(), key.as_bytes()));
        assert!(matches(pattern.as_bytes(), (key + "b").as_bytes()));
    }
}
