//! Condition operators: the base comparison, `...IfExists`, and the set prefixes.

use std::fmt;

/// The comparison a condition operator makes, without its prefix or `IfExists` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

/// What kind of value an operator compares, which decides how values are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    String,
    Numeric,
    Date,
    Bool,
    Binary,
    Ip,
    Arn,
    Null,
}

const ALL: [Base; 27] = [
    Base::StringEquals,
    Base::StringNotEquals,
    Base::StringEqualsIgnoreCase,
    Base::StringNotEqualsIgnoreCase,
    Base::StringLike,
    Base::StringNotLike,
    Base::NumericEquals,
    Base::NumericNotEquals,
    Base::NumericLessThan,
    Base::NumericLessThanEquals,
    Base::NumericGreaterThan,
    Base::NumericGreaterThanEquals,
    Base::DateEquals,
    Base::DateNotEquals,
    Base::DateLessThan,
    Base::DateLessThanEquals,
    Base::DateGreaterThan,
    Base::DateGreaterThanEquals,
    Base::Bool,
    Base::BinaryEquals,
    Base::IpAddress,
    Base::NotIpAddress,
    Base::ArnEquals,
    Base::ArnLike,
    Base::ArnNotEquals,
    Base::ArnNotLike,
    Base::Null,
];

impl Base {
    pub fn name(self) -> &'static str {
        match self {
            Base::StringEquals => "StringEquals",
            Base::StringNotEquals => "StringNotEquals",
            Base::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            Base::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            Base::StringLike => "StringLike",
            Base::StringNotLike => "StringNotLike",
            Base::NumericEquals => "NumericEquals",
            Base::NumericNotEquals => "NumericNotEquals",
            Base::NumericLessThan => "NumericLessThan",
            Base::NumericLessThanEquals => "NumericLessThanEquals",
            Base::NumericGreaterThan => "NumericGreaterThan",
            Base::NumericGreaterThanEquals => "NumericGreaterThanEquals",
            Base::DateEquals => "DateEquals",
            Base::DateNotEquals => "DateNotEquals",
            Base::DateLessThan => "DateLessThan",
            Base::DateLessThanEquals => "DateLessThanEquals",
            Base::DateGreaterThan => "DateGreaterThan",
            Base::DateGreaterThanEquals => "DateGreaterThanEquals",
            Base::Bool => "Bool",
            Base::BinaryEquals => "BinaryEquals",
            Base::IpAddress => "IpAddress",
            Base::NotIpAddress => "NotIpAddress",
            Base::ArnEquals => "ArnEquals",
            Base::ArnLike => "ArnLike",
            Base::ArnNotEquals => "ArnNotEquals",
            Base::ArnNotLike => "ArnNotLike",
            Base::Null => "Null",
        }
    }

    pub fn family(self) -> Family {
        use Base::*;
        match self {
            StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike => Family::String,
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => Family::Numeric,
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => Family::Date,
            Bool => Family::Bool,
            BinaryEquals => Family::Binary,
            IpAddress | NotIpAddress => Family::Ip,
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => Family::Arn,
            Null => Family::Null,
        }
    }

    /// Negated operators match when no policy value matches, and when the key is missing.
    pub fn is_negated(self) -> bool {
        use Base::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Whether `*` and `?` in policy values are wildcards.
    pub fn uses_wildcards(self) -> bool {
        matches!(
            self,
            Base::StringLike
                | Base::StringNotLike
                | Base::ArnEquals
                | Base::ArnLike
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }

    /// Whether policy variables are substituted in this operator's values. AWS documents
    /// variables for string and ARN comparisons; elsewhere `${` is plain text.
    pub fn takes_variables(self) -> bool {
        matches!(self.family(), Family::String | Family::Arn)
    }
}

/// How a condition treats a multivalued request key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    /// No prefix: the key is treated as single-valued.
    Single,
    ForAnyValue,
    ForAllValues,
}

/// A whole condition operator, such as `ForAllValues:StringLikeIfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operator {
    pub base: Base,
    pub if_exists: bool,
    pub set: SetQualifier,
}

/// Why an operator name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorError {
    Unknown,
    NullIfExists,
}

impl Operator {
    /// Parses an operator name. Names are matched without regard to case, as IAM does.
    pub fn parse(name: &str) -> Result<Operator, OperatorError> {
        let (set, rest) = if let Some(rest) = strip_prefix_ci(name, "ForAnyValue:") {
            (SetQualifier::ForAnyValue, rest)
        } else if let Some(rest) = strip_prefix_ci(name, "ForAllValues:") {
            (SetQualifier::ForAllValues, rest)
        } else {
            (SetQualifier::Single, name)
        };
        let find = |n: &str| {
            ALL.iter()
                .copied()
                .find(|b| b.name().eq_ignore_ascii_case(n))
        };
        if let Some(base) = find(rest) {
            return Ok(Operator {
                base,
                if_exists: false,
                set,
            });
        }
        let stem = rest
            .len()
            .checked_sub("IfExists".len())
            .and_then(|at| {
                let (stem, suffix) = (rest.get(..at)?, rest.get(at..)?);
                suffix.eq_ignore_ascii_case("IfExists").then_some(stem)
            })
            .ok_or(OperatorError::Unknown)?;
        let base = find(stem).ok_or(OperatorError::Unknown)?;
        if base == Base::Null {
            return Err(OperatorError::NullIfExists);
        }
        Ok(Operator {
            base,
            if_exists: true,
            set,
        })
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            SetQualifier::Single => {}
            SetQualifier::ForAnyValue => f.write_str("ForAnyValue:")?,
            SetQualifier::ForAllValues => f.write_str("ForAllValues:")?,
        }
        f.write_str(self.base.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let op = Operator::parse("ForAllValues:StringLikeIfExists").unwrap();
        assert_eq!(op.base, Base::StringLike);
        assert!(op.if_exists);
        assert_eq!(op.set, SetQualifier::ForAllValues);
        assert_eq!(op.to_string(), "ForAllValues:StringLikeIfExists");
        assert_eq!(
            Operator::parse("stringequals").unwrap().base,
            Base::StringEquals
        );
        assert_eq!(
            Operator::parse("NullIfExists"),
            Err(OperatorError::NullIfExists)
        );
        assert_eq!(Operator::parse("StringEqualz"), Err(OperatorError::Unknown));
        assert_eq!(Operator::parse("IfExists"), Err(OperatorError::Unknown));
        assert_eq!(Operator::parse("ForAnyValue:"), Err(OperatorError::Unknown));
        for base in ALL {
            assert_eq!(Operator::parse(base.name()).unwrap().base, base);
        }
    }
}
