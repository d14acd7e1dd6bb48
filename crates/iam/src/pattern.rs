//! Policy strings compiled once: literal text, the `*` and `?` wildcards, and policy
//! variables (`${aws:username}`, `${aws:PrincipalTag/team, 'none'}`, `${*}`, `${?}`, `${$}`).
//!
//! Matching never allocates: a pattern is a short list of parts, and a variable is looked
//! up in the request when the matcher reaches it. A variable with no value makes the whole
//! pattern match nothing, as AWS documents.

use crate::key::Key;

/// One piece of a compiled pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Lit(Box<str>),
    /// `*`: any run of characters, `/` and `:` included.
    Star,
    /// `?`: exactly one character.
    One,
    Var(Variable),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Variable {
    pub key: Key,
    pub default: Option<Box<str>>,
}

/// How a policy string is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Syntax {
    /// `*` and `?` are wildcards (Resource, Action, `StringLike`, `Arn*`).
    pub wildcards: bool,
    /// `${...}` is a policy variable (policy version 2012-10-17, where variables are allowed).
    pub variables: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    parts: Vec<Part>,
}

/// Why a policy string could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    UnterminatedVariable,
    EmptyVariable,
    BadDefault,
}

impl Pattern {
    pub fn parse(text: &str, syntax: Syntax) -> Result<Pattern, PatternError> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if syntax.variables && rest.starts_with("${") {
                let end = rest.find('}').ok_or(PatternError::UnterminatedVariable)?;
                let inner = rest.get(2..end).unwrap_or_default();
                rest = rest.get(end + 1..).unwrap_or_default();
                match inner {
                    "*" | "?" | "$" => lit.push_str(inner),
                    _ => {
                        flush(&mut parts, &mut lit);
                        parts.push(Part::Var(parse_variable(inner)?));
                    }
                }
                continue;
            }
            rest = rest.get(c.len_utf8()..).unwrap_or_default();
            match c {
                '*' if syntax.wildcards => {
                    flush(&mut parts, &mut lit);
                    // `**` means the same as `*`; keeping one keeps matching linear.
                    if parts.last() != Some(&Part::Star) {
                        parts.push(Part::Star);
                    }
                }
                '?' if syntax.wildcards => {
                    flush(&mut parts, &mut lit);
                    parts.push(Part::One);
                }
                c => lit.push(c),
            }
        }
        flush(&mut parts, &mut lit);
        Ok(Pattern { parts })
    }

    /// A pattern that is exactly this text, with no wildcards or variables.
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(l)] => Some(l),
            _ => None,
        }
    }

    pub fn variables(&self) -> impl Iterator<Item = &Variable> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v),
            _ => None,
        })
    }

    pub fn has_variables(&self) -> bool {
        self.variables().next().is_some()
    }

    /// Literal text before the first wildcard or variable.
    pub fn literal_prefix(&self) -> &str {
        match self.parts.first() {
            Some(Part::Lit(l)) => l,
            _ => "",
        }
    }

    /// Glob match of the whole `text`. `resolve` gives a variable's value; `None` means the
    /// variable has no value, and then nothing matches.
    pub fn matches<'p>(
        &'p self,
        text: &str,
        resolve: &impl Fn(&'p Variable) -> Option<&'p str>,
    ) -> bool {
        glob(&self.parts, text, resolve)
    }

    /// The pattern with every variable widened to `*`: it matches every text the pattern
    /// can match under some values of its variables (for access analysis; see `inspect.rs`).
    pub fn widened(&self) -> Pattern {
        let mut parts: Vec<Part> = Vec::with_capacity(self.parts.len());
        for part in &self.parts {
            let part = match part {
                Part::Var(_) => Part::Star,
                other => other.clone(),
            };
            if !(part == Part::Star && parts.last() == Some(&Part::Star)) {
                parts.push(part);
            }
        }
        Pattern { parts }
    }

    /// The pattern's text with variables substituted, or `None` if one has no value.
    pub fn resolve<'p>(
        &'p self,
        resolve: &impl Fn(&'p Variable) -> Option<&'p str>,
    ) -> Option<String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Lit(l) => out.push_str(l),
                Part::Star => out.push('*'),
                Part::One => out.push('?'),
                Part::Var(v) => out.push_str(resolve(v)?),
            }
        }
        Some(out)
    }
}

fn flush(parts: &mut Vec<Part>, lit: &mut String) {
    if !lit.is_empty() {
        parts.push(Part::Lit(std::mem::take(lit).into_boxed_str()));
    }
}

/// Reads `aws:PrincipalTag/team, 'none'` (the text between `${` and `}`).
fn parse_variable(inner: &str) -> Result<Variable, PatternError> {
    let (name, default) = match inner.split_once(',') {
        None => (inner.trim(), None),
        Some((name, default)) => {
            let default = default.trim();
            let value = default
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .filter(|_| default.len() >= 2)
                .ok_or(PatternError::BadDefault)?;
            (name.trim(), Some(value.into()))
        }
    };
    if name.is_empty() {
        return Err(PatternError::EmptyVariable);
    }
    Ok(Variable {
        key: Key::parse(name),
        default,
    })
}

/// Wildcard matching with one backtrack point (the last `*`), which is exact for `*`/`?`
/// globs and linear in practice.
fn glob<'p>(
    parts: &'p [Part],
    text: &str,
    resolve: &impl Fn(&'p Variable) -> Option<&'p str>,
) -> bool {
    let mut pi = 0;
    let mut ti = 0;
    let mut backtrack: Option<(usize, usize)> = None;
    loop {
        let rest = text.get(ti..).unwrap_or_default();
        let advanced = match parts.get(pi) {
            None if rest.is_empty() => return true,
            None => None,
            Some(Part::Star) => {
                backtrack = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some(Part::One) => rest.chars().next().map(char::len_utf8),
            Some(Part::Lit(l)) => rest.starts_with(&**l).then_some(l.len()),
            Some(Part::Var(v)) => {
                let Some(value) = resolve(v) else {
                    return false;
                };
                rest.starts_with(value).then_some(value.len())
            }
        };
        if let Some(len) = advanced {
            ti += len;
            pi += 1;
            continue;
        }
        // Mismatch: let the last `*` swallow one more character and retry from there.
        let Some((star_pi, star_ti)) = backtrack else {
            return false;
        };
        let Some(c) = text.get(star_ti..).and_then(|s| s.chars().next()) else {
            return false;
        };
        backtrack = Some((star_pi, star_ti + c.len_utf8()));
        pi = star_pi;
        ti = star_ti + c.len_utf8();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GLOB: Syntax = Syntax {
        wildcards: true,
        variables: true,
    };

    fn m(pattern: &str, text: &str) -> bool {
        Pattern::parse(pattern, GLOB)
            .unwrap()
            .matches(text, &|v: &Variable| match v.key.name() {
                "aws:username" => Some("TestUserA"),
                _ => v.default.as_deref(),
            })
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("a*c", "abbbc"));
        assert!(m("a*c", "ac"));
        assert!(!m("a*c", "acb"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("a?c", "aéc"));
        assert!(m("*/db-*", "app/prod/eu/db-password"));
        assert!(!m("*/db-*", "app-db-password"));
        assert!(m("a*b*c", "aXbYbZc"));
        assert!(m(
            "arn:aws:ssm:ap-northeast-1:*",
            "arn:aws:ssm:ap-northeast-1:1:session/x"
        ));
    }

    #[test]
    fn variables_and_escapes() {
        assert!(m("session/${aws:username}-*", "session/TestUserA-01"));
        assert!(!m("session/${aws:username}-*", "session/Other-01"));
        assert!(!m("x/${aws:PrincipalTag/team}/*", "x//y"));
        assert!(m("x/${aws:PrincipalTag/team, 'none'}/*", "x/none/y"));
        assert!(m("literal-${*}-${?}", "literal-*-?"));
        assert!(!m("literal-${*}-${?}", "literal-x-y"));
        assert!(m("${$}{cost}", "${cost}"));
        assert_eq!(
            Pattern::parse("${aws:username", GLOB),
            Err(PatternError::UnterminatedVariable)
        );
        assert_eq!(
            Pattern::parse("${}", GLOB),
            Err(PatternError::EmptyVariable)
        );
        assert_eq!(
            Pattern::parse("${a:b, none}", GLOB),
            Err(PatternError::BadDefault)
        );
    }

    #[test]
    fn literal_text_when_variables_are_off() {
        let p = Pattern::parse(
            "session/${aws:username}-*",
            Syntax {
                wildcards: true,
                variables: false,
            },
        )
        .unwrap();
        assert!(p.matches("session/${aws:username}-1", &|_| None));
        assert!(!p.matches("session/TestUserA-1", &|_| None));
    }
}
