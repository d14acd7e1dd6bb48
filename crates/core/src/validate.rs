//! Input checks with AWS's validation messages, which name the offending field.

use crate::error::{Error, Result};
use crate::model::Tag;

/// AWS's wording: `1 validation error detected: Value 'x' at 'userName' failed to satisfy
/// constraint: Member must ...`.
pub fn constraint(code: &str, field: &str, value: &str, rule: &str) -> Error {
    let shown: String = value.chars().take(128).collect();
    Error::invalid(
        code,
        format!("1 validation error detected: Value '{shown}' at '{field}' failed to satisfy constraint: {rule}"),
    )
}

/// IAM names (users, groups, policies): `[\w+=,.@-]`, 1 to `max` characters.
pub fn iam_name(field: &str, value: &str, max: usize) -> Result<()> {
    let len = value.chars().count();
    if len == 0 || len > max {
        return Err(constraint(
            "ValidationError",
            field,
            value,
            &format!("Member must have length between 1 and {max}"),
        ));
    }
    let ok = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-'));
    if !ok {
        return Err(constraint(
            "ValidationError",
            field,
            value,
            "Member must satisfy regular expression pattern: [\\w+=,.@-]+",
        ));
    }
    Ok(())
}

/// IAM paths: `/` or `/a/b/`, at most 512 characters.
pub fn iam_path(field: &str, value: &str) -> Result<()> {
    let ok = value.len() <= 512
        && value.starts_with('/')
        && value.ends_with('/')
        && value.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c));
    if ok {
        Ok(())
    } else {
        Err(constraint(
            "ValidationError",
            field,
            value,
            "Member must satisfy regular expression pattern: (\\u002F)|(\\u002F[\\u0021-\\u007E]+\\u002F)",
        ))
    }
}

/// Tags as AWS allows them: at most `max` per resource, keys 1–128 and values 0–256
/// characters, no `aws:` prefix on keys a user sets.
pub fn tags(code: &str, field: &str, tags: &[Tag], max: usize) -> Result<()> {
    if tags.len() > max {
        return Err(constraint(
            code,
            field,
            &format!("{} tags", tags.len()),
            &format!("Member must have length less than or equal to {max}"),
        ));
    }
    for tag in tags {
        let key_len = tag.key.chars().count();
        if key_len == 0 || key_len > 128 {
            return Err(constraint(
                code,
                &format!("{field}.member.key"),
                &tag.key,
                "Member must have length between 1 and 128",
            ));
        }
        if tag.value.chars().count() > 256 {
            return Err(constraint(
                code,
                &format!("{field}.member.value"),
                &tag.value,
                "Member must have length less than or equal to 256",
            ));
        }
        if tag.key.to_ascii_lowercase().starts_with("aws:") {
            return Err(Error::invalid(
                code,
                format!(
                    "Tag keys starting with 'aws:' are reserved for AWS use: '{}'",
                    tag.key
                ),
            ));
        }
    }
    Ok(())
}

/// Merges `new` into `existing`: a key already present (compared as written) gets the new value.
pub fn merge_tags(existing: Vec<Tag>, new: &[Tag]) -> Vec<Tag> {
    let mut out = existing;
    for tag in new {
        match out.iter_mut().find(|t| t.key == tag.key) {
            Some(t) => t.value = tag.value.clone(),
            None => out.push(tag.clone()),
        }
    }
    out
}

/// The `aws:RequestTag/K` and `aws:TagKeys` keys a tagging request carries.
pub fn request_tag_keys(tags: &[Tag]) -> Vec<(String, Vec<String>)> {
    let mut keys: Vec<(String, Vec<String>)> = tags
        .iter()
        .map(|t| (format!("aws:RequestTag/{}", t.key), vec![t.value.clone()]))
        .collect();
    keys.push((
        "aws:TagKeys".to_owned(),
        tags.iter().map(|t| t.key.clone()).collect(),
    ));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths() {
        assert!(iam_name("userName", "TestUserA", 64).is_ok());
        let e = iam_name("userName", "Test User", 64).unwrap_err();
        assert_eq!(
            e.message,
            "1 validation error detected: Value 'Test User' at 'userName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        );
        assert!(iam_name("userName", &"a".repeat(65), 64).is_err());
        assert!(iam_path("path", "/").is_ok());
        assert!(iam_path("path", "/ops/").is_ok());
        assert!(iam_path("path", "ops").is_err());
    }

    #[test]
    fn tag_rules() {
        assert!(tags("InvalidInput", "tags", &[Tag::new("Project", "test")], 50).is_ok());
        assert!(tags("InvalidInput", "tags", &[Tag::new("aws:x", "y")], 50).is_err());
        assert!(tags("InvalidInput", "tags", &[Tag::new("", "y")], 50).is_err());
        let merged = merge_tags(
            vec![Tag::new("a", "1")],
            &[Tag::new("a", "2"), Tag::new("b", "3")],
        );
        assert_eq!(merged, vec![Tag::new("a", "2"), Tag::new("b", "3")]);
    }
}
