//! The service: who is calling (authentication), may they (authorization through the IAM
//! engine), and the audit trail. The operations themselves are in `ops_*.rs`.
//!
//! Architecture invariant: every operation calls [`Service::authorize`] before it reads or
//! writes anything the caller asked about, so a refusal reveals nothing about existence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use portcullis_iam::{iso8601, Context, Decision, PolicySet, Principal, Request, Tags};

use crate::aws_policies::AWS_MANAGED_POLICIES;
use crate::error::{Error, Result};
use crate::ids;
use crate::model::{
    AccessKey, Account, AuditEvent, KeyOwner, KeyStatus, ManagedPolicy, PolicyVersion, Tag, User,
};
use crate::store::{Store, StoreError};

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// What an access key stands for, with everything authorization needs, cached until the
/// next IAM change.
#[derive(Debug)]
pub struct Identity {
    pub secret: String,
    pub principal: Principal,
    /// `None` for the account root.
    pub user: Option<User>,
    pub(crate) policies: Arc<PolicySet>,
}

impl Identity {
    /// The name Session Manager puts in session ids: the user name, or `root`.
    pub fn session_name(&self) -> &str {
        self.user.as_ref().map_or("root", |u| u.name.as_str())
    }

    pub fn is_root(&self) -> bool {
        self.user.is_none()
    }
}

/// One authenticated API call in progress.
#[derive(Debug)]
pub struct Caller {
    pub identity: Arc<Identity>,
    pub access_key_id: String,
    pub source_ip: String,
    pub secure_transport: bool,
    pub request_id: String,
    checks: Mutex<Vec<Check>>,
}

#[derive(Debug, Clone)]
struct Check {
    action: String,
    resource: String,
    decision: Decision,
    statement: Option<String>,
    /// The engine's explanation (`PolicySet::explain`, as text) of a refusal.
    explanation: Option<String>,
}

impl Caller {
    pub fn new(
        identity: Arc<Identity>,
        access_key_id: &str,
        source_ip: &str,
        secure_transport: bool,
    ) -> Caller {
        Caller {
            identity,
            access_key_id: access_key_id.to_owned(),
            source_ip: source_ip.to_owned(),
            secure_transport,
            request_id: ids::request_id(),
            checks: Mutex::new(Vec::new()),
        }
    }

    pub fn arn(&self) -> &str {
        self.identity.principal.arn()
    }

    fn record(&self, check: Check) {
        if let Ok(mut checks) = self.checks.lock() {
            checks.push(check);
        }
    }

    /// The engine's explanation of this call's first refused check: which statements and
    /// conditions failed. For people allowed to see it (the console shows it to principals
    /// that may simulate their own policies), never in an AWS error.
    pub fn refusal_explanation(&self) -> Option<String> {
        let checks = self.checks.lock().ok()?;
        checks
            .iter()
            .find(|c| c.decision != Decision::Allow)
            .and_then(|c| c.explanation.clone())
    }

    /// The audit event for this call: its first refused check, else its first check.
    pub fn audit_event(&self, operation: &str, error: Option<&Error>) -> AuditEvent {
        let checks = self.checks.lock().map(|c| c.clone()).unwrap_or_default();
        let check = checks
            .iter()
            .find(|c| c.decision != Decision::Allow)
            .or_else(|| checks.first());
        AuditEvent {
            time: now(),
            request_id: self.request_id.clone(),
            principal: self.arn().to_owned(),
            action: check.map_or_else(|| operation.to_owned(), |c| c.action.clone()),
            resource: check.map_or_else(String::new, |c| c.resource.clone()),
            decision: match (check, error) {
                (Some(c), _) if c.decision != Decision::Allow => c.decision.as_str().to_owned(),
                (_, Some(_)) => "error".to_owned(),
                (Some(c), None) => c.decision.as_str().to_owned(),
                (None, None) => "allow".to_owned(),
            },
            statement: check.and_then(|c| c.statement.clone()),
            source_ip: self.source_ip.clone(),
            error: error.map(|e| e.code.clone()),
        }
    }
}

/// Extra request keys for one authorization check (`aws:RequestTag/K`, `aws:TagKeys`, ...).
pub type ExtraKeys<'a> = &'a [(&'a str, Vec<String>)];

pub struct Service {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) account: Account,
    identities: RwLock<HashMap<String, Arc<Identity>>>,
    /// One-time stream tokens. In memory on purpose: they live 60 seconds, and a restart
    /// should invalidate them.
    pub(crate) stream_tokens: Mutex<crate::ops_ssm::StreamTokens>,
    pub(crate) nodes: crate::nodes::NodeCache,
    /// Signed-in console sessions. In memory on purpose, like stream tokens: a restart
    /// signs everyone out.
    pub(crate) console: Mutex<crate::console::ConsoleSessions>,
    /// Failed console sign-ins per name and per address (in memory, like sessions).
    pub(crate) sign_in_limits: Mutex<crate::console::SignInLimiter>,
}

/// What first start created: the account root's access key, to hand to the administrator.
pub struct Bootstrap {
    pub service: Service,
    pub new_root_key: Option<AccessKey>,
}

impl Service {
    /// Opens the service on a store, creating the account (with `account_id` and `region`,
    /// or random/default ones) and the root access key on first start.
    pub async fn start(
        store: Arc<dyn Store>,
        account_id: Option<&str>,
        region: &str,
    ) -> Result<Bootstrap> {
        let mut new_root_key = None;
        let account = match store.account().await? {
            Some(account) => account,
            None => {
                let account = Account {
                    id: account_id.map_or_else(ids::account_id, str::to_owned),
                    region: region.to_owned(),
                    created: now(),
                };
                let (id, secret) = ids::access_key_pair();
                let key = AccessKey {
                    id,
                    secret,
                    owner: KeyOwner::Root,
                    status: KeyStatus::Active,
                    created: now(),
                };
                store.create_account(&account, &key).await?;
                new_root_key = Some(key);
                account
            }
        };
        for (name, description, document) in AWS_MANAGED_POLICIES {
            let arn = format!("{}{name}", crate::aws_policies::AWS_POLICY_PREFIX);
            if store.managed_policy(&arn).await?.is_some() {
                continue;
            }
            let created = now();
            let policy = ManagedPolicy {
                arn,
                name: (*name).to_owned(),
                path: "/".to_owned(),
                policy_id: ids::iam_unique_id("ANPA"),
                description: (*description).to_owned(),
                default_version: "v1".to_owned(),
                created,
                updated: created,
                attachment_count: 0,
            };
            let version = PolicyVersion {
                version_id: "v1".to_owned(),
                document: (*document).to_owned(),
                is_default: true,
                created,
            };
            match store.insert_managed_policy(&policy, &version).await {
                Ok(()) | Err(StoreError::AlreadyExists) => {}
                Err(e) => return Err(e.into()),
            }
        }
        // Sessions the previous process left open have no relay any more: they ended.
        let left_open = store
            .list_sessions(&crate::store::SessionFilter {
                active: true,
                ..crate::store::SessionFilter::default()
            })
            .await?;
        for session in left_open {
            store
                .set_session_status(
                    &session.id,
                    crate::model::SessionStatus::Terminated,
                    Some(now()),
                )
                .await?;
        }
        Ok(Bootstrap {
            service: Service {
                store,
                account,
                identities: RwLock::new(HashMap::new()),
                stream_tokens: Mutex::new(crate::ops_ssm::StreamTokens::default()),
                nodes: crate::nodes::NodeCache::default(),
                console: Mutex::new(crate::console::ConsoleSessions::default()),
                sign_in_limits: Mutex::new(crate::console::SignInLimiter::default()),
            },
            new_root_key,
        })
    }

    pub fn account(&self) -> &Account {
        &self.account
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Forgets cached identities and policies; every IAM change calls this.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut cache) = self.identities.write() {
            cache.clear();
        }
    }

    /// Who an access key belongs to; `None` for an unknown or inactive key.
    pub async fn authenticate(&self, access_key_id: &str) -> Result<Option<Arc<Identity>>> {
        if let Some(identity) = self
            .identities
            .read()
            .ok()
            .and_then(|c| c.get(access_key_id).cloned())
        {
            return Ok(Some(identity));
        }
        let Some(key) = self.store.access_key(access_key_id).await? else {
            return Ok(None);
        };
        if key.status != KeyStatus::Active {
            return Ok(None);
        }
        let identity = match &key.owner {
            KeyOwner::Root => Identity {
                secret: key.secret.clone(),
                principal: Principal::root(&self.account.id),
                user: None,
                policies: Arc::new(PolicySet::new()),
            },
            KeyOwner::User(name) => {
                let Some(user) = self.store.user(name).await? else {
                    return Ok(None);
                };
                let tags = self.store.user_tags(name).await?;
                let principal = crate::policies::user_principal(&user, &self.account.id, &tags);
                Identity {
                    secret: key.secret.clone(),
                    principal,
                    policies: Arc::new(self.user_policy_set(&user).await?),
                    user: Some(user),
                }
            }
        };
        let identity = Arc::new(identity);
        if let Ok(mut cache) = self.identities.write() {
            cache.insert(access_key_id.to_owned(), identity.clone());
        }
        Ok(Some(identity))
    }

    /// All policies that apply to a user, as the engine evaluates them.
    pub(crate) async fn user_policy_set(&self, user: &User) -> Result<PolicySet> {
        let policies = crate::policies::user_policies(self.store.as_ref(), user, true).await?;
        Ok(crate::policies::policy_set(&policies))
    }

    /// Decides whether `caller` may do `action` on `resource` (with the resource's tags and
    /// any extra request keys), records the decision for the audit log, and refuses with
    /// AWS's error for the action's service.
    pub fn authorize(
        &self,
        caller: &Caller,
        action: &str,
        resource: &str,
        resource_tags: &[Tag],
        extra: ExtraKeys<'_>,
    ) -> Result<()> {
        let identity = &caller.identity;
        if identity.is_root() {
            // The account root is not subject to identity policies.
            caller.record(Check {
                action: action.to_owned(),
                resource: resource.to_owned(),
                decision: Decision::Allow,
                statement: None,
                explanation: None,
            });
            return Ok(());
        }
        let tags: Tags = resource_tags
            .iter()
            .map(|t| (t.key.as_str(), t.value.as_str()))
            .collect();
        let context = self.request_context(caller, extra);
        let req = Request::new(&identity.principal, action, resource)
            .with_resource_tags(&tags)
            .with_context(&context);
        let explanation = identity.policies.explain(&req);
        let deciding = explanation.deciding();
        caller.record(Check {
            action: action.to_owned(),
            resource: resource.to_owned(),
            decision: explanation.decision,
            statement: deciding.first().map(|s| s.label()),
            explanation: (explanation.decision != Decision::Allow).then(|| explanation.to_string()),
        });
        match explanation.aws_message() {
            None => Ok(()),
            Some(message) => Err(access_denied(action, message)),
        }
    }

    fn request_context(&self, caller: &Caller, extra: ExtraKeys<'_>) -> Context {
        let t = now();
        let mut context = Context::new();
        context.insert("aws:CurrentTime", iso8601(t));
        context.insert("aws:EpochTime", t.to_string());
        context.insert("aws:SourceIp", caller.source_ip.clone());
        context.insert("aws:SecureTransport", caller.secure_transport.to_string());
        context.insert("aws:RequestedRegion", self.account.region.clone());
        context.insert("aws:ViaAWSService", "false");
        context.insert("aws:PrincipalIsAWSService", "false");
        for (key, values) in extra {
            context.insert_values(key, values.clone());
        }
        context
    }

    /// Appends the call's audit event. Failing to audit is logged by the caller, not hidden.
    pub async fn audit(
        &self,
        caller: &Caller,
        operation: &str,
        error: Option<&Error>,
    ) -> Result<()> {
        self.store
            .append_audit(&caller.audit_event(operation, error))
            .await?;
        Ok(())
    }
}

/// AWS's refusal for the action's service: `AccessDenied` (IAM, STS),
/// `AccessDeniedException` (SSM, CloudWatch Logs, IAM Access Analyzer),
/// `UnauthorizedOperation` (EC2).
pub fn access_denied(action: &str, message: String) -> Error {
    match action
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .as_deref()
    {
        Some("ssm" | "logs") => Error::new(400, "AccessDeniedException", message),
        Some("access-analyzer") => Error::new(403, "AccessDeniedException", message),
        Some("ec2") => Error::new(
            403,
            "UnauthorizedOperation",
            format!("You are not authorized to perform this operation. {message}"),
        ),
        _ => Error::new(403, "AccessDenied", message),
    }
}
