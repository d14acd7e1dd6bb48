//! The records Portcullis keeps. Times are seconds since the epoch (UTC).

/// A tag as AWS stores it: key and value, case kept as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

impl Tag {
    pub fn new(key: impl Into<String>, value: impl Into<String>) -> Tag {
        Tag {
            key: key.into(),
            value: value.into(),
        }
    }
}

/// The single account this server is (its id and home region never change after first start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub region: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    /// `AIDA` + 17 upper-case alphanumerics: `aws:userid`.
    pub user_id: String,
    pub arn: String,
    pub path: String,
    pub created: i64,
    /// ARN of the managed policy used as permissions boundary.
    pub permissions_boundary: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Active,
    Inactive,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "Active",
            KeyStatus::Inactive => "Inactive",
        }
    }
}

/// Who an access key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOwner {
    Root,
    User(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    /// Kept to verify SigV4 signatures (HMAC needs the secret itself); never logged.
    pub secret: String,
    pub owner: KeyOwner,
    pub status: KeyStatus,
    pub created: i64,
}

/// A policy attached inline to a user or group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePolicy {
    pub name: String,
    pub document: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicy {
    pub arn: String,
    pub name: String,
    pub path: String,
    /// `ANPA` + 17 characters.
    pub policy_id: String,
    pub description: String,
    pub default_version: String,
    pub created: i64,
    pub updated: i64,
    pub attachment_count: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersion {
    /// `v1`, `v2`, ...
    pub version_id: String,
    pub document: String,
    pub is_default: bool,
    pub created: i64,
}

/// A user's console password, as IAM keeps it: the password's hash (a PHC string, Argon2id),
/// never the password itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProfile {
    /// The user's name as it was written.
    pub user_name: String,
    pub password_hash: String,
    pub created: i64,
    /// The user must choose a new password at next sign-in.
    pub password_reset_required: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub group_id: String,
    pub arn: String,
    pub path: String,
    pub created: i64,
}

/// Everything that decides what a user may do: the identity policies (the user's and their
/// groups', inline and managed) and the permissions boundary.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPolicies {
    /// (name for explanations, document)
    pub identity: Vec<(String, String)>,
    pub boundary: Option<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    /// `i-` + 17 hex; ARN `arn:aws:ec2:REGION:ACCOUNT:instance/ID`.
    Ec2Instance,
    /// `mi-` + 17 hex; ARN `arn:aws:ssm:REGION:ACCOUNT:managed-instance/ID`.
    ManagedInstance,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub id: String,
    pub kind: NodeKind,
    pub name: String,
    pub platform: String,
    pub agent_version: String,
    pub ip_address: String,
    pub activation_id: Option<String>,
    pub registered: i64,
    /// Last heartbeat from the agent; `None` before the first.
    pub last_ping: Option<i64>,
    /// SHA-256 (hex) of the node's own credential, which its agent presents.
    pub credential_hash: String,
}

impl Node {
    pub fn arn(&self, region: &str, account: &str) -> String {
        match self.kind {
            NodeKind::Ec2Instance => format!("arn:aws:ec2:{region}:{account}:instance/{}", self.id),
            NodeKind::ManagedInstance => format!(
                "arn:aws:ssm:{region}:{account}:managed-instance/{}",
                self.id
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activation {
    pub id: String,
    /// SHA-256 of the activation code, hex; the code itself is shown once.
    pub code_hash: String,
    pub description: String,
    pub default_instance_name: String,
    pub iam_role: String,
    pub registration_limit: u32,
    pub registrations_count: u32,
    pub expiration: i64,
    pub created: i64,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Connected,
    Connecting,
    Disconnected,
    Terminated,
    Terminating,
    Failed,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Connected => "Connected",
            SessionStatus::Connecting => "Connecting",
            SessionStatus::Disconnected => "Disconnected",
            SessionStatus::Terminated => "Terminated",
            SessionStatus::Terminating => "Terminating",
            SessionStatus::Failed => "Failed",
        }
    }

    pub fn parse(s: &str) -> Option<SessionStatus> {
        [
            SessionStatus::Connected,
            SessionStatus::Connecting,
            SessionStatus::Disconnected,
            SessionStatus::Terminated,
            SessionStatus::Terminating,
            SessionStatus::Failed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }

    /// Active sessions are listed under `State: Active`; the rest under `History`.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            SessionStatus::Connected
                | SessionStatus::Connecting
                | SessionStatus::Disconnected
                | SessionStatus::Terminating
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `<caller name>-<17 hex>`.
    pub id: String,
    /// ARN of the principal that started it.
    pub owner: String,
    pub target: String,
    pub document: String,
    pub reason: String,
    pub status: SessionStatus,
    pub started: i64,
    pub ended: Option<i64>,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub time: i64,
    pub request_id: String,
    pub principal: String,
    pub action: String,
    pub resource: String,
    /// `allow`, `explicit_deny`, `implicit_deny`, or `error`.
    pub decision: String,
    /// The deciding statement, as `policy "name" /Statement/0`, when there is one.
    pub statement: Option<String>,
    pub source_ip: String,
    /// The error code returned, if any.
    pub error: Option<String>,
}

// Policy simulation (`SimulatePrincipalPolicy`, `SimulateCustomPolicy`): what is asked and
// what the simulator answers. Not stored.

/// A context key the caller supplies to a simulation (`ContextEntries.member.N`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationContextEntry {
    pub key: String,
    pub values: Vec<String>,
    /// `string`, `stringList`, `numeric`, ... as IAM names them (`ContextKeyType`).
    pub key_type: Option<String>,
}

/// What to simulate: every action on every resource (`*` when none is named).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimulationRequest {
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    pub context: Vec<SimulationContextEntry>,
    /// Identity policies to add (`PolicyInputList`).
    pub policies: Vec<String>,
    /// A permissions boundary to use instead of the principal's
    /// (`PermissionsBoundaryPolicyInputList`, at most one).
    pub boundary_policies: Vec<String>,
}

/// A simulated decision, named as IAM's `EvalDecision` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimulationDecision {
    Allowed,
    ImplicitDeny,
    ExplicitDeny,
}

impl SimulationDecision {
    /// `allowed`, `implicitDeny` or `explicitDeny`.
    pub fn as_str(self) -> &'static str {
        match self {
            SimulationDecision::Allowed => "allowed",
            SimulationDecision::ImplicitDeny => "implicitDeny",
            SimulationDecision::ExplicitDeny => "explicitDeny",
        }
    }
}

/// A statement that decided a simulated request, and where it is in its document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedStatement {
    /// The policy's label: `PolicyInputList.1`, `user NAME inline policy P`, a policy ARN, ...
    pub source_policy_id: String,
    pub source_policy_type: Option<String>,
    /// (line, column) just after the statement's `{`, as IAM reports `StartPosition`.
    pub start: (u32, u32),
    /// (line, column) just after the statement's `}`, as IAM reports `EndPosition`.
    pub end: (u32, u32),
}

/// The simulation of one action on one resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatedResource {
    pub resource: String,
    pub decision: SimulationDecision,
    /// The identity-policy statements that decided (the denies for an explicit deny, the
    /// allows for an allow, none for an implicit deny).
    pub matched_statements: Vec<SimulatedStatement>,
    /// Condition keys of the statements that apply to the action and resource which the
    /// request did not supply.
    pub missing_context_values: Vec<String>,
    /// Whether the permissions boundary allows, when there is one.
    pub allowed_by_boundary: Option<bool>,
}

/// The simulation of one action: the most restrictive decision over its resources, with
/// each resource's own result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationResult {
    pub action: String,
    /// `*`: IAM now names an ARN template here, and the resources in `resources`.
    pub resource_name: String,
    pub decision: SimulationDecision,
    /// The statements that made `decision`, over all resources, each once.
    pub matched_statements: Vec<SimulatedStatement>,
    /// Over all resources, each once.
    pub missing_context_values: Vec<String>,
    pub allowed_by_boundary: Option<bool>,
    /// One per resource ARN asked about; empty when none was (the resource is `*`).
    pub resources: Vec<SimulatedResource>,
}
