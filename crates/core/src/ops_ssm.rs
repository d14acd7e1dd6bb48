//! Systems Manager operations: Session Manager sessions, nodes (managed instances and EC2
//! instances), activations and node registration, and tags on SSM resources.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids;
use crate::model::{Activation, Node, NodeKind, Session, SessionStatus, Tag};
use crate::service::{now, Caller, Service};
use crate::store::{SessionFilter, StoreError};
use crate::validate;

/// A stream token lives this long, and is good for one connection.
pub const STREAM_TOKEN_SECONDS: i64 = 60;
/// A node whose agent has not been heard from for this long is `ConnectionLost`.
pub const PING_TIMEOUT_SECONDS: i64 = 60;
/// The document a session runs when none is named.
pub const DEFAULT_SESSION_DOCUMENT: &str = "SSM-SessionManagerRunShell";
/// Session documents AWS owns, and so every account has.
pub const AWS_SESSION_DOCUMENTS: &[&str] = &[
    "SSM-SessionManagerRunShell",
    "AWS-StartInteractiveCommand",
    "AWS-StartNonInteractiveCommand",
    "AWS-StartPortForwardingSession",
    "AWS-StartPortForwardingSessionToRemoteHost",
    "AWS-StartSSHSession",
];
const MAX_TAGS: usize = 50;

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Outstanding stream tokens by hash. Expiries grow with grant order (one lifetime for
/// all), so pruning pops from the front of a queue: O(1) per grant however many are live.
#[derive(Debug, Default)]
pub(crate) struct StreamTokens {
    live: std::collections::HashMap<String, (String, i64)>,
    by_expiry: std::collections::VecDeque<(i64, String)>,
}

impl StreamTokens {
    fn prune(&mut self, now: i64) {
        while self.by_expiry.front().is_some_and(|(exp, _)| *exp < now) {
            if let Some((_, hash)) = self.by_expiry.pop_front() {
                self.live.remove(&hash);
            }
        }
    }

    fn grant(&mut self, hash: String, session_id: &str, now: i64) {
        self.prune(now);
        let expires = now + STREAM_TOKEN_SECONDS;
        self.by_expiry.push_back((expires, hash.clone()));
        self.live.insert(hash, (session_id.to_owned(), expires));
    }

    fn redeem(&mut self, hash: &str, now: i64) -> Option<String> {
        self.prune(now);
        let (session, expires) = self.live.remove(hash)?;
        (expires >= now).then_some(session)
    }
}

/// What `StartSession` and `ResumeSession` hand back; the server turns it into a stream URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamGrant {
    pub session_id: String,
    pub token: String,
}

/// What the node registration endpoint hands back to an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub node_id: String,
    /// The node's own credential; stored by the agent, only its hash is kept here.
    pub credential: String,
}

/// A node as `DescribeInstanceInformation` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub node: Node,
    pub online: bool,
}

/// `CreateActivation`'s input.
#[derive(Debug, Clone, Default)]
pub struct NewActivation {
    pub iam_role: String,
    pub description: String,
    pub default_instance_name: String,
    pub registration_limit: Option<u32>,
    /// Seconds since the epoch; default one day from now.
    pub expiration: Option<i64>,
    pub tags: Vec<Tag>,
}

/// A request to register a node with an activation.
#[derive(Debug, Clone, Default)]
pub struct RegisterNode {
    pub activation_id: String,
    pub activation_code: String,
    /// An EC2-style id to register under (`i-...`); otherwise one `mi-...` is assigned.
    pub instance_id: Option<String>,
    pub hostname: String,
    pub platform: String,
    pub agent_version: String,
    pub ip_address: String,
}

impl Service {
    /// The ARN of a node id, whether or not it exists: EC2 instance or managed instance.
    pub fn node_arn(&self, id: &str) -> String {
        let (region, account) = (&self.account.region, &self.account.id);
        if id.starts_with("mi-") {
            format!("arn:aws:ssm:{region}:{account}:managed-instance/{id}")
        } else {
            format!("arn:aws:ec2:{region}:{account}:instance/{id}")
        }
    }

    pub fn session_arn(&self, id: &str) -> String {
        format!(
            "arn:aws:ssm:{}:{}:session/{id}",
            self.account.region, self.account.id
        )
    }

    fn document_arn(&self, name: &str) -> String {
        // AWS-owned documents have no account in their ARN.
        let account = if AWS_SESSION_DOCUMENTS.contains(&name) {
            ""
        } else {
            self.account.id.as_str()
        };
        format!(
            "arn:aws:ssm:{}:{account}:document/{name}",
            self.account.region
        )
    }

    /// A node is online while its agent's control channel is open, or (for agents that only
    /// send heartbeats, or hold their channel to another server) within
    /// [`PING_TIMEOUT_SECONDS`] of the last heartbeat, unless that heartbeat is older than
    /// the moment its control channel to this server closed.
    pub fn is_online(&self, node: &Node) -> bool {
        if self.nodes.is_connected(&node.id) {
            return true;
        }
        let lost = self.nodes.lost_at(&node.id);
        node.last_ping.is_some_and(|t| {
            now() - t <= PING_TIMEOUT_SECONDS && lost.is_none_or(|lost_at| t > lost_at)
        })
    }

    /// `StartSession`: authorized against the node (with its tags) and, when a document is
    /// named, the document; only then is the node looked at, so a refusal reveals nothing.
    pub async fn start_session(
        &self,
        caller: &Caller,
        target: &str,
        document: Option<&str>,
        reason: Option<&str>,
    ) -> Result<StreamGrant> {
        if target.is_empty() || target.len() > 400 {
            return Err(validate::constraint(
                "ValidationException",
                "target",
                target,
                "Member must have length between 1 and 400",
            ));
        }
        if let Some(r) = reason {
            if r.chars().count() > 256 {
                return Err(validate::constraint(
                    "ValidationException",
                    "reason",
                    r,
                    "Member must have length less than or equal to 256",
                ));
            }
        }
        let (node, tags) = self.node_and_tags(target).await?;
        self.authorize(
            caller,
            "ssm:StartSession",
            &self.node_arn(target),
            &tags,
            &[],
        )?;
        let document_name = document.unwrap_or(DEFAULT_SESSION_DOCUMENT);
        if let Some(name) = document {
            self.authorize(
                caller,
                "ssm:StartSession",
                &self.document_arn(name),
                &[],
                &[],
            )?;
            if !AWS_SESSION_DOCUMENTS.contains(&name) {
                return Err(Error::invalid(
                    "InvalidDocument",
                    format!("Document with name {name} does not exist."),
                ));
            }
        }
        match &node {
            Some(n) if self.is_online(n) => {}
            _ => {
                return Err(Error::invalid(
                    "TargetNotConnected",
                    format!("{target} is not connected."),
                ))
            }
        }
        let session = Session {
            id: ids::session_id(caller.identity.session_name()),
            owner: caller.arn().to_owned(),
            target: target.to_owned(),
            document: document_name.to_owned(),
            reason: reason.unwrap_or_default().to_owned(),
            status: SessionStatus::Connected,
            started: now(),
            ended: None,
        };
        self.store.insert_session(&session).await?;
        Ok(StreamGrant {
            token: self.grant_stream_token(&session.id),
            session_id: session.id,
        })
    }

    fn grant_stream_token(&self, session_id: &str) -> String {
        let token = ids::token();
        if let Ok(mut tokens) = self.stream_tokens.lock() {
            tokens.grant(sha256_hex(&token), session_id, now());
        }
        token
    }

    /// Redeems a stream token: the session it was granted for, once, within its lifetime.
    pub fn redeem_stream_token(&self, token: &str) -> Option<String> {
        self.stream_tokens
            .lock()
            .ok()?
            .redeem(&sha256_hex(token), now())
    }

    /// A session and the tags AWS puts on it (`aws:ssmmessages:session-id` = the starter's
    /// user id), for authorizing Terminate and Resume.
    async fn session_and_tags(&self, id: &str) -> Result<(Option<Session>, Vec<Tag>)> {
        let Some(session) = self.store.session(id).await? else {
            return Ok((None, Vec::new()));
        };
        let owner_name = session
            .owner
            .rsplit_once(":user/")
            .map(|(_, rest)| rest.rsplit('/').next().unwrap_or(rest));
        let mut tags = Vec::new();
        if let Some(name) = owner_name {
            if let Some(user) = self.store.user(name).await? {
                if user.arn == session.owner {
                    tags.push(Tag::new("aws:ssmmessages:session-id", user.user_id));
                }
            }
        }
        Ok((Some(session), tags))
    }

    fn no_such_session(id: &str) -> Error {
        Error::invalid(
            "DoesNotExistException",
            format!("Session with id {id} does not exist."),
        )
    }

    /// `TerminateSession`: ends the session; ending one that already ended succeeds, as on AWS.
    pub async fn terminate_session(&self, caller: &Caller, id: &str) -> Result<Session> {
        let (session, tags) = self.session_and_tags(id).await?;
        self.authorize(
            caller,
            "ssm:TerminateSession",
            &self.session_arn(id),
            &tags,
            &[],
        )?;
        let mut session = session.ok_or_else(|| Self::no_such_session(id))?;
        if session.status.is_active() {
            let ended = now();
            self.store
                .set_session_status(id, SessionStatus::Terminated, Some(ended))
                .await?;
            session.status = SessionStatus::Terminated;
            session.ended = Some(ended);
        }
        Ok(session)
    }

    /// `ResumeSession`: a new one-time token for an active session.
    pub async fn resume_session(&self, caller: &Caller, id: &str) -> Result<StreamGrant> {
        let (session, tags) = self.session_and_tags(id).await?;
        self.authorize(
            caller,
            "ssm:ResumeSession",
            &self.session_arn(id),
            &tags,
            &[],
        )?;
        let session = session.ok_or_else(|| Self::no_such_session(id))?;
        if !session.status.is_active() {
            return Err(Error::invalid(
                "InvalidParameters",
                format!("Session {id} has ended and cannot be resumed."),
            ));
        }
        Ok(StreamGrant {
            token: self.grant_stream_token(id),
            session_id: session.id,
        })
    }

    pub async fn describe_sessions(
        &self,
        caller: &Caller,
        filter: &SessionFilter,
    ) -> Result<Vec<Session>> {
        self.authorize(caller, "ssm:DescribeSessions", "*", &[], &[])?;
        Ok(self.store.list_sessions(filter).await?)
    }

    /// `GetConnectionStatus`: `connected` or `notconnected`.
    pub async fn get_connection_status(&self, caller: &Caller, target: &str) -> Result<bool> {
        let (node, tags) = self.node_and_tags(target).await?;
        self.authorize(
            caller,
            "ssm:GetConnectionStatus",
            &self.node_arn(target),
            &tags,
            &[],
        )?;
        Ok(node.as_ref().is_some_and(|n| self.is_online(n)))
    }

    pub async fn describe_instance_information(&self, caller: &Caller) -> Result<Vec<NodeInfo>> {
        self.authorize(caller, "ssm:DescribeInstanceInformation", "*", &[], &[])?;
        let nodes = self.store.list_nodes().await?;
        Ok(nodes
            .into_iter()
            .map(|node| NodeInfo {
                online: self.is_online(&node),
                node,
            })
            .collect())
    }

    /// `CreateActivation`: the code is returned once; only its hash is kept.
    pub async fn create_activation(
        &self,
        caller: &Caller,
        new: &NewActivation,
    ) -> Result<(Activation, String)> {
        let (iam_role, tags) = (new.iam_role.as_str(), new.tags.as_slice());
        validate::tags("ValidationException", "tags", tags, MAX_TAGS)?;
        let request_keys = validate::request_tag_keys(tags);
        let extra: Vec<(&str, Vec<String>)> = request_keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.clone()))
            .collect();
        self.authorize(caller, "ssm:CreateActivation", "*", &[], &extra)?;
        if iam_role.is_empty() {
            return Err(validate::constraint(
                "ValidationException",
                "iamRole",
                iam_role,
                "Member must have length greater than or equal to 1",
            ));
        }
        let limit = new.registration_limit.unwrap_or(1);
        if !(1..=1000).contains(&limit) {
            return Err(validate::constraint(
                "ValidationException",
                "registrationLimit",
                &limit.to_string(),
                "Member must have value between 1 and 1000",
            ));
        }
        let created = now();
        let expiration = new.expiration.unwrap_or(created + 24 * 3600);
        if expiration <= created || expiration > created + 30 * 24 * 3600 {
            return Err(Error::invalid(
                "InvalidParameters",
                "The expiration date must be in the future and within 30 days.",
            ));
        }
        let code = ids::token();
        let activation = Activation {
            id: uuid_like(),
            code_hash: sha256_hex(&code),
            description: new.description.clone(),
            default_instance_name: new.default_instance_name.clone(),
            iam_role: iam_role.to_owned(),
            registration_limit: limit,
            registrations_count: 0,
            expiration,
            created,
            tags: tags.to_vec(),
        };
        self.store.insert_activation(&activation).await?;
        Ok((activation, code))
    }

    pub async fn describe_activations(&self, caller: &Caller) -> Result<Vec<Activation>> {
        self.authorize(caller, "ssm:DescribeActivations", "*", &[], &[])?;
        Ok(self.store.list_activations().await?)
    }

    pub async fn delete_activation(&self, caller: &Caller, id: &str) -> Result<()> {
        self.authorize(
            caller,
            "ssm:DeleteActivation",
            &format!(
                "arn:aws:ssm:{}:{}:activation/{id}",
                self.account.region, self.account.id
            ),
            &[],
            &[],
        )?;
        match self.store.delete_activation(id).await {
            Err(StoreError::NotFound) => Err(Error::invalid(
                "InvalidActivationId",
                format!("Activation ID {id} is not valid. Verify and try again."),
            )),
            other => other.map_err(Error::from),
        }
    }

    /// Registers a node with an activation code and id. Not a SigV4 call: the code is the
    /// credential, so every refusal says the same thing.
    pub async fn register_node(&self, req: &RegisterNode) -> Result<Registration> {
        let refused = || {
            Error::invalid("InvalidActivation", "Activation ID or code is not valid, or the activation has expired or reached its registration limit.")
        };
        let Some(activation) = self.store.activation(&req.activation_id).await? else {
            return Err(refused());
        };
        if !constant_time_eq(&activation.code_hash, &sha256_hex(&req.activation_code))
            || activation.expiration < now()
        {
            return Err(refused());
        }
        let (id, kind) = match &req.instance_id {
            Some(id) if ids::is_ec2_instance_id(id) => (id.clone(), NodeKind::Ec2Instance),
            Some(id) => {
                return Err(Error::invalid(
                    "InvalidInstanceId",
                    format!(
                    "Instance id {id} is not an EC2 instance id (i- followed by 17 hex digits)."
                ),
                ))
            }
            None => (ids::managed_instance_id(), NodeKind::ManagedInstance),
        };
        let credential = ids::token();
        let node = Node {
            id: id.clone(),
            kind,
            name: if activation.default_instance_name.is_empty() {
                req.hostname.clone()
            } else {
                activation.default_instance_name.clone()
            },
            platform: req.platform.clone(),
            agent_version: req.agent_version.clone(),
            ip_address: req.ip_address.clone(),
            activation_id: Some(activation.id.clone()),
            registered: now(),
            last_ping: None,
            credential_hash: sha256_hex(&credential),
        };
        match self
            .store
            .register_node(&activation.id, &node, &activation.tags)
            .await
        {
            Err(StoreError::LimitExceeded) => return Err(refused()),
            Err(StoreError::AlreadyExists) => {
                return Err(Error::invalid(
                    "InvalidInstanceId",
                    format!("Instance id {id} is already registered."),
                ))
            }
            other => other?,
        }
        Ok(Registration {
            node_id: id,
            credential,
        })
    }

    /// A node proving who it is with its credential; `None` when unknown or wrong.
    pub async fn authenticate_node(&self, node_id: &str, credential: &str) -> Result<Option<Node>> {
        let node = self.store.node(node_id).await?;
        Ok(node.filter(|n| constant_time_eq(&n.credential_hash, &sha256_hex(credential))))
    }

    /// `DeregisterManagedInstance`.
    pub async fn deregister_node(&self, caller: &Caller, id: &str) -> Result<()> {
        let (node, tags) = self.node_and_tags(id).await?;
        self.authorize(
            caller,
            "ssm:DeregisterManagedInstance",
            &self.node_arn(id),
            &tags,
            &[],
        )?;
        if node.is_none() {
            return Err(Error::invalid(
                "InvalidInstanceId",
                format!("Instance id {id} is not valid."),
            ));
        }
        self.remove_node(id).await?;
        Ok(())
    }

    /// SSM tag operations on a managed instance (`ResourceType: ManagedInstance`).
    pub async fn add_tags_to_resource(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        tags: &[Tag],
    ) -> Result<()> {
        validate::tags("InvalidParameters", "tags", tags, MAX_TAGS)?;
        let node = self
            .tagged_managed_instance(caller, "ssm:AddTagsToResource", resource_type, id, tags)
            .await?;
        let merged = validate::merge_tags(node.1, tags);
        validate::tags("TooManyTagsError", "tags", &merged, MAX_TAGS)?;
        self.write_node_tags(id, &merged).await?;
        Ok(())
    }

    pub async fn remove_tags_from_resource(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
        keys: &[String],
    ) -> Result<()> {
        let keys_as_tags: Vec<Tag> = keys.iter().map(|k| Tag::new(k.clone(), "")).collect();
        let (_, existing) = self
            .tagged_managed_instance(
                caller,
                "ssm:RemoveTagsFromResource",
                resource_type,
                id,
                &keys_as_tags,
            )
            .await?;
        let kept: Vec<Tag> = existing
            .into_iter()
            .filter(|t| !keys.contains(&t.key))
            .collect();
        self.write_node_tags(id, &kept).await?;
        Ok(())
    }

    pub async fn list_tags_for_resource(
        &self,
        caller: &Caller,
        resource_type: &str,
        id: &str,
    ) -> Result<Vec<Tag>> {
        let (_, tags) = self
            .tagged_managed_instance(caller, "ssm:ListTagsForResource", resource_type, id, &[])
            .await?;
        Ok(tags)
    }

    async fn tagged_managed_instance(
        &self,
        caller: &Caller,
        action: &str,
        resource_type: &str,
        id: &str,
        request_tags: &[Tag],
    ) -> Result<(Node, Vec<Tag>)> {
        if resource_type != "ManagedInstance" {
            return Err(Error::invalid(
                "InvalidResourceType",
                format!("The resource type {resource_type} is not supported here; use ManagedInstance (EC2 instances are tagged through EC2 CreateTags)."),
            ));
        }
        let (node, tags) = self.node_and_tags(id).await?;
        let request_keys = validate::request_tag_keys(request_tags);
        let extra: Vec<(&str, Vec<String>)> = if request_tags.is_empty() {
            Vec::new()
        } else {
            request_keys
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect()
        };
        self.authorize(caller, action, &self.node_arn(id), &tags, &extra)?;
        match node {
            Some(n) if n.kind == NodeKind::ManagedInstance => Ok((n, tags)),
            _ => Err(Error::invalid(
                "InvalidResourceId",
                format!("The resource ID \"{id}\" is not valid. Verify the ID and try again."),
            )),
        }
    }
}

/// Compares two equal-length secrets (hex digests) without an early exit.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn uuid_like() -> String {
    ids::request_id()
}

/// What the data channels tell the service about a session's life. These are not API calls:
/// the server calls them as sockets come and go, after authenticating the node or redeeming
/// the client's token.
impl Service {
    /// The session, if it exists, is active, and runs on `node_id`.
    pub async fn active_session_on(
        &self,
        session_id: &str,
        node_id: &str,
    ) -> Result<Option<Session>> {
        Ok(self
            .store
            .session(session_id)
            .await?
            .filter(|s| s.target == node_id && s.status.is_active()))
    }

    /// The sessions still active on a node (what its agent may keep running).
    pub async fn active_sessions_on(&self, node_id: &str) -> Result<Vec<Session>> {
        let filter = SessionFilter {
            active: true,
            target: Some(node_id.to_owned()),
            ..SessionFilter::default()
        };
        Ok(self.store.list_sessions(&filter).await?)
    }

    /// A client attached to (`true`) or dropped from (`false`) an active session.
    pub async fn session_client(&self, session_id: &str, attached: bool) -> Result<()> {
        let Some(session) = self.store.session(session_id).await? else {
            return Ok(());
        };
        if session.status.is_active() {
            let status = if attached {
                SessionStatus::Connected
            } else {
                SessionStatus::Disconnected
            };
            self.store
                .set_session_status(session_id, status, None)
                .await?;
        }
        Ok(())
    }

    /// The session ended (shell exited, agent gone, idle timeout): Terminated, with its end time.
    pub async fn session_ended(&self, session_id: &str) -> Result<()> {
        if let Some(session) = self.store.session(session_id).await? {
            if session.status.is_active() {
                self.store
                    .set_session_status(session_id, SessionStatus::Terminated, Some(now()))
                    .await?;
            }
        }
        Ok(())
    }

    /// Whether the session exists and has not ended (for the session timers, and the
    /// console's live log).
    pub async fn session_is_active(&self, session_id: &str) -> Result<bool> {
        Ok(self
            .store
            .session(session_id)
            .await?
            .is_some_and(|s| s.status.is_active()))
    }

    /// Whether the session's client is away (for the idle timer).
    pub async fn session_is_disconnected(&self, session_id: &str) -> Result<bool> {
        Ok(self
            .store
            .session(session_id)
            .await?
            .is_some_and(|s| s.status == SessionStatus::Disconnected))
    }
}
