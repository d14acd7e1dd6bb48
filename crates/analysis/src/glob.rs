//! `*`/`?` globs for the linter's questions about policy text (which actions a pattern
//! names, whether one pattern covers another). Decisions never use these: the access
//! matrix asks the engine.

/// Whether `text` matches `pattern` (`*` any run, `?` one character), ignoring ASCII case
/// when `fold`.
pub(crate) fn matches(pattern: &str, text: &str, fold: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || t.get(ti).is_some_and(|&x| eq(c, x)) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    star = Some((sp, st + 1));
                    pi = sp;
                    ti = st + 1;
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

fn has_wildcard(s: &str) -> bool {
    s.contains(['*', '?'])
}

/// Whether everything `inner` can match, `outer` matches too. Sound but incomplete: `false`
/// may mean "cannot tell". Text with policy variables only covers itself.
pub(crate) fn covers(outer: &str, inner: &str, fold: bool) -> bool {
    let same = if fold {
        outer.eq_ignore_ascii_case(inner)
    } else {
        outer == inner
    };
    if same {
        return true;
    }
    if outer.contains("${") || inner.contains("${") {
        return false;
    }
    if !has_wildcard(inner) {
        return matches(outer, inner, fold);
    }
    let Some(prefix) = outer.strip_suffix('*') else {
        return false;
    };
    // `prefix*` covers anything that starts with the prefix, wildcards included.
    if !has_wildcard(prefix) {
        let head = inner.get(..prefix.len());
        return head.is_some_and(|h| {
            if fold {
                h.eq_ignore_ascii_case(prefix)
            } else {
                h == prefix
            }
        });
    }
    // `Q*` covers `P*` (P without wildcards) when Q matches a prefix of P: every P + s is
    // then (that prefix) + (the rest of P + s).
    match inner.strip_suffix('*') {
        Some(p) if !has_wildcard(p) => p
            .char_indices()
            .map(|(i, _)| i)
            .chain(std::iter::once(p.len()))
            .any(|i| p.get(..i).is_some_and(|head| matches(prefix, head, fold))),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(matches("ssm:Start*", "SSM:startsession", true));
        assert!(!matches("ssm:Start*", "SSM:startsession", false));
        assert!(matches(
            "arn:aws:ec2:*:*:instance/*",
            "arn:aws:ec2:r:1:instance/i-1",
            false
        ));
        assert!(matches("a?c", "abc", false));
        assert!(!matches("a?c", "ac", false));
        assert!(matches("*", "", false));
        assert!(covers("ssm:*", "ssm:Start*", true));
        assert!(covers("*", "ssm:Start?", true));
        assert!(!covers("ssm:Start?", "ssm:Start*", true));
        assert!(covers("ssm:StartSession", "SSM:STARTSESSION", true));
        assert!(!covers(
            "arn:*:session/${aws:username}-*",
            "arn:x:session/bob-1",
            false
        ));
    }
}
