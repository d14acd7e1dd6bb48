//! Malformed documents: each is refused with IAM's code and an exact message that names the
//! problem and where it is. The expected texts were reviewed by hand; update them only when
//! a message is deliberately improved.

use portcullis_iam::{Policy, PolicyKind};

/// (name, kind, document, the first error as displayed)
const CASES: &[(&str, PolicyKind, &str, &str)] = &[
    (
        "empty_document",
        PolicyKind::Inline,
        "",
        "MalformedPolicyDocument: Syntax errors in policy: unexpected end of the JSON document (at the document, line 1, column 1)",
    ),
    (
        "not_json",
        PolicyKind::Inline,
        "not json",
        "MalformedPolicyDocument: Syntax errors in policy: invalid JSON value (at the document, line 1, column 1)",
    ),
    (
        "unclosed_array",
        PolicyKind::Inline,
        "{\"Version\": \"2012-10-17\", \"Statement\": [}",
        "MalformedPolicyDocument: Syntax errors in policy: invalid JSON value (at the document, line 1, column 41)",
    ),
    (
        "trailing_comma",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},]}",
        "MalformedPolicyDocument: Syntax errors in policy: invalid JSON value (at the document, line 1, column 100)",
    ),
    (
        "unterminated_string",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow}]}",
        "MalformedPolicyDocument: Syntax errors in policy: unterminated string (at the document, line 1, column 57)",
    ),
    (
        "top_level_array",
        PolicyKind::Inline,
        "[]",
        "MalformedPolicyDocument: Syntax errors in policy: the policy document must be an object, not array (at the document, line 1, column 1)",
    ),
    (
        "missing_statement",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\"}",
        "MalformedPolicyDocument: Syntax errors in policy: missing required element `Statement` (at the document, line 1, column 1)",
    ),
    (
        "unknown_top_level_element",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}],\"Foo\":1}",
        "MalformedPolicyDocument: Syntax errors in policy: unknown element `Foo` (at /Foo, line 1, column 101)",
    ),
    (
        "version_not_a_string",
        PolicyKind::Inline,
        "{\"Version\":2012,\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Version must be a string, not number (at /Version, line 1, column 12)",
    ),
    (
        "unknown_version",
        PolicyKind::Inline,
        "{\"Version\":\"2013-01-01\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: invalid Version `2013-01-01` (use 2012-10-17) (at /Version, line 1, column 12)",
    ),
    (
        "managed_without_version",
        PolicyKind::Managed,
        "{\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Policy document must be version 2012-10-17 or greater. (at /Version, line 1, column 1)",
    ),
    (
        "managed_with_2008_version",
        PolicyKind::Managed,
        "{\"Version\":\"2008-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Policy document must be version 2012-10-17 or greater. (at /Version, line 1, column 12)",
    ),
    (
        "duplicate_top_level_key",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}],\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: duplicate element `Statement` (at /Statement, line 1, column 101)",
    ),
    (
        "id_not_a_string",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Id\":[\"a\"],\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Id must be a string, not array (at /Id, line 1, column 30)",
    ),
    (
        "empty_statement_list",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[]}",
        "MalformedPolicyDocument: Syntax errors in policy: Statement must not be an empty list (at /Statement, line 1, column 37)",
    ),
    (
        "statement_is_a_string",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":\"Allow all\"}",
        "MalformedPolicyDocument: Syntax errors in policy: Statement must be an object or a list of objects, not string (at /Statement, line 1, column 37)",
    ),
    (
        "statement_item_not_an_object",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[1]}",
        "MalformedPolicyDocument: Syntax errors in policy: a statement must be an object, not number (at /Statement/0, line 1, column 38)",
    ),
    (
        "missing_effect",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: missing required element `Effect` (at /Statement/0, line 1, column 38)",
    ),
    (
        "lower_case_effect",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: invalid Effect `allow` (use Allow or Deny) (at /Statement/0/Effect, line 1, column 48)",
    ),
    (
        "effect_not_a_string",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":true,\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Effect must be a string, not boolean (at /Statement/0/Effect, line 1, column 48)",
    ),
    (
        "missing_action",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Policy statement must contain actions. (at /Statement/0, line 1, column 38)",
    ),
    (
        "missing_resource",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\"}]}",
        "MalformedPolicyDocument: Policy statement must contain resources. (at /Statement/0, line 1, column 38)",
    ),
    (
        "action_and_not_action",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"NotAction\":\"ssm:SendCommand\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a statement cannot have both Action and NotAction (at /Statement/0/NotAction, line 1, column 99)",
    ),
    (
        "resource_and_not_resource",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"NotResource\":\"arn:aws:ec2:*:*:instance/i-1\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a statement cannot have both Resource and NotResource (at /Statement/0/NotResource, line 1, column 99)",
    ),
    (
        "principal_in_identity_policy",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Principal\":{\"AWS\":\"*\"}}]}",
        "MalformedPolicyDocument: Has prohibited field Principal: an identity policy applies to the principal it is attached to (at /Statement/0/Principal, line 1, column 99)",
    ),
    (
        "not_principal_in_identity_policy",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"NotPrincipal\":{\"AWS\":\"*\"}}]}",
        "MalformedPolicyDocument: Has prohibited field NotPrincipal: an identity policy applies to the principal it is attached to (at /Statement/0/NotPrincipal, line 1, column 99)",
    ),
    (
        "unknown_statement_element",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Actions\":\"ssm:*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: unknown element `Actions` (at /Statement/0/Actions, line 1, column 99)",
    ),
    (
        "duplicate_element_in_statement",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Effect\":\"Deny\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: duplicate element `Effect` (at /Statement/0/Effect, line 1, column 99)",
    ),
    (
        "duplicate_sid",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"Same\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"Same\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Statement IDs (SID) in a single policy must be unique: `Same` is used more than once (at /Statement/1/Sid, line 1, column 113)",
    ),
    (
        "sid_with_a_hyphen",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"allow-start\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*: `allow-start` (at /Statement/0/Sid, line 1, column 45)",
    ),
    (
        "sid_not_a_string",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":7,\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Sid must be a string, not number (at /Statement/0/Sid, line 1, column 45)",
    ),
    (
        "action_without_vendor",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.: `StartSession` (at /Statement/0/Action, line 1, column 65)",
    ),
    (
        "action_with_bad_vendor",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ss m:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: invalid vendor `ss m` in action `ss m:StartSession` (at /Statement/0/Action, line 1, column 65)",
    ),
    (
        "action_with_bad_name",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:Start-Session\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: invalid action name in `ssm:Start-Session` (letters, digits, `*` and `?` only) (at /Statement/0/Action, line 1, column 65)",
    ),
    (
        "empty_action_list",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[],\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Action must not be an empty list (at /Statement/0/Action, line 1, column 65)",
    ),
    (
        "action_is_a_number",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":5,\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Action must be a string or a list of strings, not number (at /Statement/0/Action, line 1, column 65)",
    ),
    (
        "action_list_with_a_number",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":[\"ssm:StartSession\",1],\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Action must be a string, not number (at /Statement/0/Action/1, line 1, column 85)",
    ),
    (
        "resource_not_an_arn",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"i-0885b2e35926f1fb3\"}]}",
        "MalformedPolicyDocument: Resource i-0885b2e35926f1fb3 must be in ARN format or \"*\". (at /Statement/0/Resource, line 1, column 95)",
    ),
    (
        "resource_arn_too_short",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"arn:aws:ec2\"}]}",
        "MalformedPolicyDocument: Resource arn:aws:ec2 must be in ARN format or \"*\". (at /Statement/0/Resource, line 1, column 95)",
    ),
    (
        "resource_unterminated_variable",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:TerminateSession\",\"Resource\":\"arn:aws:ssm:*:*:session/${aws:username-*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a policy variable `${` is not closed with `}` in `arn:aws:ssm:*:*:session/${aws:username-*` (at /Statement/0/Resource, line 1, column 99)",
    ),
    (
        "resource_default_without_quotes",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:TerminateSession\",\"Resource\":\"arn:aws:ssm:*:*:session/${aws:username, none}-*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a policy variable's default value must be in single quotes, as in ${aws:PrincipalTag/team, 'none'} in `arn:aws:ssm:*:*:session/${aws:username, none}-*` (at /Statement/0/Resource, line 1, column 99)",
    ),
    (
        "resource_empty_variable",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:TerminateSession\",\"Resource\":\"arn:aws:ssm:*:*:session/${}-*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a policy variable `${}` names no key in `arn:aws:ssm:*:*:session/${}-*` (at /Statement/0/Resource, line 1, column 99)",
    ),
    (
        "variable_that_is_not_a_key",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:TerminateSession\",\"Resource\":\"arn:aws:ssm:*:*:session/${username}-*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: policy variable `${username}` is not a condition key (keys look like aws:username) (at /Statement/0/Resource, line 1, column 99)",
    ),
    (
        "condition_not_an_object",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":\"StringEquals\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: Condition must be an object, not string (at /Statement/0/Condition, line 1, column 111)",
    ),
    (
        "unknown_condition_operator",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"StringEqualz\":{\"aws:ResourceTag/Project\":\"test\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: unknown condition operator `StringEqualz` (at /Statement/0/Condition/StringEqualz, line 1, column 112)",
    ),
    (
        "null_if_exists",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"NullIfExists\":{\"aws:ResourceTag/Project\":\"true\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: the Null operator has no IfExists form: `NullIfExists` (at /Statement/0/Condition/NullIfExists, line 1, column 112)",
    ),
    (
        "operator_with_no_keys",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: condition operator `StringEquals` has no keys (at /Statement/0/Condition/StringEquals, line 1, column 127)",
    ),
    (
        "condition_key_without_vendor",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"Project\":\"test\"}}}]}",
        "MalformedPolicyDocument: Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.: condition key `Project` (at /Statement/0/Condition/StringEquals/Project, line 1, column 128)",
    ),
    (
        "condition_value_is_an_object",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/Project\":{\"v\":\"test\"}}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a condition value must be a string, number or boolean, not object (at /Statement/0/Condition/StringEquals/aws:ResourceTag~1Project, line 1, column 154)",
    ),
    (
        "condition_value_empty_list",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/Project\":[]}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a condition key must have at least one value (at /Statement/0/Condition/StringEquals/aws:ResourceTag~1Project, line 1, column 154)",
    ),
    (
        "numeric_value_not_a_number",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"NumericLessThan\":{\"aws:MultiFactorAuthAge\":\"an hour\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: `an hour` is not a number for NumericLessThan (at /Statement/0/Condition/NumericLessThan/aws:MultiFactorAuthAge, line 1, column 156)",
    ),
    (
        "date_value_not_a_date",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"DateGreaterThan\":{\"aws:CurrentTime\":\"yesterday\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: `yesterday` is not a date (ISO 8601 or epoch seconds) for DateGreaterThan (at /Statement/0/Condition/DateGreaterThan/aws:CurrentTime, line 1, column 149)",
    ),
    (
        "ip_value_not_an_address",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"IpAddress\":{\"aws:SourceIp\":\"300.1.1.1/24\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: `300.1.1.1/24` is not an IPv4 or IPv6 address or CIDR range for IpAddress (at /Statement/0/Condition/IpAddress/aws:SourceIp, line 1, column 140)",
    ),
    (
        "bool_value_not_a_boolean",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"Bool\":{\"aws:SecureTransport\":\"yes\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: `yes` is not true or false for Bool (at /Statement/0/Condition/Bool/aws:SecureTransport, line 1, column 142)",
    ),
    (
        "null_with_a_variable",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"Null\":{\"aws:ResourceTag/Owner\":\"${aws:username}\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: policy variables cannot be used with the Null operator: `${aws:username}` (at /Statement/0/Condition/Null/aws:ResourceTag~1Owner, line 1, column 144)",
    ),
    (
        "null_value_not_a_boolean",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"Null\":{\"aws:ResourceTag/Owner\":\"maybe\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: `maybe` is not true or false for Null (at /Statement/0/Condition/Null/aws:ResourceTag~1Owner, line 1, column 144)",
    ),
    (
        "binary_value_not_base64",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"BinaryEquals\":{\"aws:SourceIp\":\"not base64!\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: `not base64!` is not base64 for BinaryEquals (at /Statement/0/Condition/BinaryEquals/aws:SourceIp, line 1, column 143)",
    ),
    (
        "arn_condition_unterminated_variable",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"ArnLike\":{\"aws:PrincipalArn\":\"arn:aws:iam::${aws:PrincipalAccount:user/*\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: a policy variable `${` is not closed with `}` in `arn:aws:iam::${aws:PrincipalAccount:user/*` (at /Statement/0/Condition/ArnLike/aws:PrincipalArn, line 1, column 142)",
    ),
    (
        "character_outside_latin1",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/Project\":\"テスト\"}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: character `テ` (U+30C6) is outside the allowed range (tab, line feed, carriage return, U+0020 to U+00FF) (at the document, line 1, column 155)",
    ),
    (
        "control_character",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"A\u{1}\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "MalformedPolicyDocument: Syntax errors in policy: character `\\u{1}` (U+0001) is outside the allowed range (tab, line feed, carriage return, U+0020 to U+00FF) (at the document, line 1, column 47)",
    ),
    (
        "nesting_too_deep",
        PolicyKind::Inline,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\",\"Condition\":{\"StringEquals\":{\"aws:ResourceTag/Project\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}]}",
        "MalformedPolicyDocument: Syntax errors in policy: JSON nesting is too deep (at the document, line 1, column 214)",
    ),
    (
        "managed_over_size_quota",
        PolicyKind::Managed,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"S0\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S1\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S2\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S3\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S4\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S5\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S6\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S7\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S8\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S9\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S10\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S11\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S12\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S13\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S14\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S15\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S16\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S17\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S18\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S19\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S20\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S21\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S22\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S23\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S24\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S25\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S26\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S27\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S28\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S29\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S30\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S31\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S32\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S33\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S34\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S35\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S36\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S37\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S38\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S39\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S40\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S41\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S42\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S43\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S44\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S45\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S46\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S47\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S48\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S49\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S50\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S51\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S52\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S53\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S54\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S55\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S56\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S57\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S58\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S59\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S60\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S61\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S62\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S63\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S64\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S65\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S66\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S67\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S68\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S69\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S70\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S71\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S72\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S73\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S74\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S75\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S76\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S77\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S78\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S79\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S80\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S81\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S82\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S83\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S84\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S85\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S86\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S87\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S88\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S89\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S90\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S91\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S92\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S93\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S94\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S95\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S96\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S97\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S98\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S99\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S100\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S101\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S102\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S103\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S104\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S105\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S106\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S107\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S108\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S109\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S110\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S111\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S112\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S113\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S114\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S115\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S116\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S117\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S118\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S119\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "LimitExceeded: Cannot exceed quota for PolicySize: 6144 (this document has 8928 characters without whitespace) (at the document, line 1, column 1)",
    ),
    (
        "session_over_size_quota",
        PolicyKind::Session,
        "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Sid\":\"S0\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S1\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S2\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S3\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S4\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S5\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S6\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S7\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S8\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S9\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S10\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S11\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S12\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S13\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S14\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S15\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S16\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S17\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S18\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S19\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S20\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S21\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S22\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S23\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S24\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S25\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S26\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S27\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S28\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S29\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S30\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S31\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S32\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S33\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S34\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S35\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S36\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S37\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S38\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"},{\"Sid\":\"S39\",\"Effect\":\"Allow\",\"Action\":\"ssm:StartSession\",\"Resource\":\"*\"}]}",
        "LimitExceeded: Cannot exceed quota for PolicySize: 2048 (this document has 2988 characters without whitespace) (at the document, line 1, column 1)",
    ),
];

#[test]
fn every_malformed_document_is_refused_with_its_message() {
    let mut mismatches = Vec::new();
    for (name, kind, doc, expected) in CASES {
        match Policy::parse_as(doc, *kind) {
            Ok(_) => mismatches.push(format!("{name}: accepted")),
            Err(e) if e.to_string() != *expected => {
                mismatches.push(format!("{name}:\n  want: {expected}\n  got:  {e}"))
            }
            Err(_) => {}
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn there_are_at_least_forty_distinct_cases() {
    let mut names: Vec<_> = CASES.iter().map(|c| c.0).collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 40 && names.len() == CASES.len());
    let mut messages: Vec<_> = CASES.iter().map(|c| c.3).collect();
    messages.sort_unstable();
    messages.dedup();
    assert_eq!(
        messages.len(),
        CASES.len(),
        "two cases expect the same message"
    );
}

#[test]
fn positions_point_into_multi_line_documents() {
    let doc = r#"{
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["ssm:StartSession"],
            "Resource": ["arn:aws:ec2:ap-northeast-1:123456789012:instance/*"],
            "Condition": {"StringEquals": {"ssm:ResourceTag/Project": ["test"]}}
        },
        {
            "Effect": "Allow",
            "Action": ["ssm:TerminateSession", "ResumeSession"],
            "Resource": ["arn:aws:ssm:*:*:session/${aws:username}-*"]
        }
    ]
}"#;
    let e = Policy::parse(doc).unwrap_err();
    assert_eq!(e.pointer, "/Statement/1/Action/1");
    assert_eq!((e.line, e.column), (12, 48));
}

#[test]
fn validate_reports_every_error_not_just_the_first() {
    let doc = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Permit","Action":"StartSession","Resource":"i-1"}]}"#;
    let errors = portcullis_iam::validate(doc, PolicyKind::Inline).unwrap_err();
    let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(
        pointers,
        [
            "/Statement/0/Effect",
            "/Statement/0/Action",
            "/Statement/0/Resource"
        ]
    );
}
