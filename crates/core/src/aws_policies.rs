//! AWS managed policies a seed user needs, restricted to the services Portcullis serves.
//! They live at `arn:aws:iam::aws:policy/NAME` and cannot be changed or deleted.

pub const AWS_POLICY_PREFIX: &str = "arn:aws:iam::aws:policy/";

/// (name, description, document)
pub const AWS_MANAGED_POLICIES: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        "Provides full access to AWS services and resources.",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "ReadOnlyAccess",
        "Provides read-only access to AWS services and resources.",
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"ReadOnly","Effect":"Allow","Action":["ec2:Describe*","ec2:Get*","iam:Get*","iam:List*","iam:Generate*","iam:Simulate*","logs:Describe*","logs:FilterLogEvents","logs:Get*","ssm:Describe*","ssm:Get*","ssm:List*","sts:Get*"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonSSMFullAccess",
        "Provides full access to Amazon SSM.",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:*","ec2:DescribeInstances","ec2:DescribeTags","iam:ListRoles"],"Resource":"*"}]}"#,
    ),
    (
        "AmazonSSMReadOnlyAccess",
        "Provides read only access to Amazon SSM.",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["ssm:Describe*","ssm:Get*","ssm:List*"],"Resource":"*"}]}"#,
    ),
];

pub fn is_aws_managed(arn: &str) -> bool {
    arn.starts_with(AWS_POLICY_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_valid_managed_policies() {
        for (name, _, doc) in AWS_MANAGED_POLICIES {
            portcullis_iam::Policy::parse_as(doc, portcullis_iam::PolicyKind::Managed)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}
