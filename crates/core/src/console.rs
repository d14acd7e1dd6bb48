//! Web console sign-in and its sessions.
//!
//! A person signs in with an IAM user's password (the login profile, checked against its
//! Argon2id hash) or with an access key pair. The console session then stands for that
//! principal: every console action is an ordinary operation with a [`Caller`] built from the
//! same [`Identity`] the user's API calls get, so the console has no powers of its own.
//!
//! Session ids and CSRF tokens are 256-bit random strings ([`ids::token`]); only the SHA-256
//! of a session id is kept, in memory (a restart signs everyone out). The identity is looked
//! up again on every request, so a deleted user, a deleted login profile or a deactivated key
//! ends the session at once, and policy changes apply to the next click.

use std::collections::HashMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ids;
use crate::model::{AuditEvent, KeyOwner, KeyStatus};
use crate::ops_ssm::sha256_hex;
use crate::service::{now, Caller, Identity, Service};

/// How long a console session lasts from sign-in unless configured otherwise (AWS's
/// console: 12 hours).
pub const SESSION_SECONDS: i64 = 12 * 60 * 60;

/// At most this many live sessions; signing in beyond it drops the oldest.
const MAX_SESSIONS: usize = 10_000;

/// The text AWS's console shows for a wrong user name, password or key, whichever it was.
pub const SIGN_IN_REFUSED: &str = "Your authentication information is incorrect. Please try again.";

/// Who a console session is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Login {
    /// Signed in with this IAM user's password.
    Password { user: String },
    /// Signed in with this access key (its secret was checked once, at sign-in).
    AccessKey { id: String },
}

#[derive(Debug, Clone)]
struct Entry {
    login: Login,
    csrf: String,
    created: i64,
    expires: i64,
}

/// The live console sessions, by SHA-256 of their id.
#[derive(Debug)]
pub struct ConsoleSessions {
    live: HashMap<String, Entry>,
    /// How long a new session lasts, in seconds.
    lifetime: i64,
}

impl Default for ConsoleSessions {
    fn default() -> ConsoleSessions {
        ConsoleSessions {
            live: HashMap::new(),
            lifetime: SESSION_SECONDS,
        }
    }
}

impl ConsoleSessions {
    /// A new session for `login` at `now`: its id (for the cookie) and CSRF token.
    pub fn open(&mut self, login: Login, now: i64, lifetime: i64) -> NewSession {
        self.live.retain(|_, e| e.expires > now);
        while self.live.len() >= MAX_SESSIONS {
            let oldest = self
                .live
                .iter()
                .min_by_key(|(_, e)| e.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.live.remove(&k),
                None => break,
            };
        }
        let id = ids::token();
        let csrf = ids::token();
        let expires = now.saturating_add(lifetime);
        self.live.insert(
            sha256_hex(&id),
            Entry {
                login,
                csrf: csrf.clone(),
                created: now,
                expires,
            },
        );
        NewSession { id, csrf, expires }
    }

    /// The session with this id, if it exists and has not expired (an expired one is
    /// forgotten).
    pub fn get(&mut self, id: &str, now: i64) -> Option<(Login, String, i64)> {
        let key = sha256_hex(id);
        let entry = self.live.get(&key)?;
        if entry.expires <= now {
            self.live.remove(&key);
            return None;
        }
        Some((entry.login.clone(), entry.csrf.clone(), entry.expires))
    }

    pub fn close(&mut self, id: &str) -> bool {
        self.live.remove(&sha256_hex(id)).is_some()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

/// Failed sign-ins a user name may have before it is locked out for a while.
pub const FREE_FAILURES_PER_NAME: u32 = 5;
/// Failed sign-ins one source address may have (for any names) before it is locked out.
pub const FREE_FAILURES_PER_ADDRESS: u32 = 20;
/// The first lockout; each further failure while counted doubles it, up to [`MAX_LOCKOUT`].
pub const FIRST_LOCKOUT: i64 = 30;
pub const MAX_LOCKOUT: i64 = 15 * 60;
/// A name's or address's failures are forgotten this long after the last one.
const FORGET_FAILURES_AFTER: i64 = 60 * 60;
/// At most this many names and addresses are counted; beyond it the stalest are dropped.
const MAX_COUNTED: usize = 100_000;

/// The name CloudTrail gives a failed sign-in's user when that user does not exist.
pub const HIDDEN_USER: &str = "HIDDEN_DUE_TO_SECURITY_REASONS";

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: i64,
    locked_until: i64,
}

/// Failed console sign-ins per user name (or access key id) and per source address, with an
/// exponential lockout: after `free` failures each further one locks the name or address
/// for 30 s, 60 s, 120 s, ... up to 15 minutes. A lock refuses every attempt without
/// checking the password, so guessing is as slow for the right password as for a wrong one.
/// A success forgets the name's failures (not the address's). In memory, like sessions.
#[derive(Debug, Default)]
pub struct SignInLimiter {
    counted: HashMap<String, Failures>,
}

impl SignInLimiter {
    /// Seconds left on the lock of `key`, if it is locked at `now`.
    pub fn locked(&mut self, key: &str, now: i64) -> Option<i64> {
        let f = self.counted.get(key)?;
        if now.saturating_sub(f.last) >= FORGET_FAILURES_AFTER {
            self.counted.remove(key);
            return None;
        }
        (f.locked_until > now).then(|| f.locked_until - now)
    }

    /// Counts a failure of `key` at `now`; `free` failures go without a lock.
    pub fn failed(&mut self, key: &str, now: i64, free: u32) {
        if self.counted.len() >= MAX_COUNTED && !self.counted.contains_key(key) {
            self.counted
                .retain(|_, f| now.saturating_sub(f.last) < FORGET_FAILURES_AFTER);
            while self.counted.len() >= MAX_COUNTED {
                let stalest = self
                    .counted
                    .iter()
                    .min_by_key(|(_, f)| f.last)
                    .map(|(k, _)| k.clone());
                match stalest {
                    Some(k) => self.counted.remove(&k),
                    None => break,
                };
            }
        }
        let f = self.counted.entry(key.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: 0,
        });
        if now.saturating_sub(f.last) >= FORGET_FAILURES_AFTER {
            f.count = 0;
        }
        f.count = f.count.saturating_add(1);
        f.last = now;
        if f.count > free {
            let doublings = (f.count - free - 1).min(16);
            let lock = FIRST_LOCKOUT
                .saturating_mul(1_i64 << doublings)
                .min(MAX_LOCKOUT);
            f.locked_until = now.saturating_add(lock);
        }
    }

    /// Takes back one failure of `key` (an attempt counted when it started that turned out
    /// not to be a failed guess), and its lock if it is within the free ones again.
    pub fn forgive(&mut self, key: &str, free: u32) {
        if let Some(f) = self.counted.get_mut(key) {
            f.count = f.count.saturating_sub(1);
            if f.count <= free {
                f.locked_until = 0;
            }
            if f.count == 0 {
                self.counted.remove(key);
            }
        }
    }

    pub fn succeeded(&mut self, key: &str) {
        self.counted.remove(key);
    }
}

/// How a person signs in to the console.
#[derive(Debug, Clone, Copy)]
pub enum SignIn<'a> {
    Password { user: &'a str, password: &'a str },
    AccessKey { id: &'a str, secret: &'a str },
}

impl SignIn<'_> {
    /// The limiter's key for the name signed in as (IAM user names are unique whatever
    /// their case).
    fn limit_key(&self) -> String {
        match self {
            SignIn::Password { user, .. } => format!("user:{}", user.to_ascii_lowercase()),
            SignIn::AccessKey { id, .. } => format!("key:{id}"),
        }
    }
}

/// What signing in hands back: the session id goes in the cookie, the CSRF token to the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    pub id: String,
    pub csrf: String,
    /// Seconds since the epoch.
    pub expires: i64,
}

/// A signed-in console request: who, and the session's CSRF token to check POSTs against.
#[derive(Debug)]
pub struct ConsoleUser {
    pub identity: Arc<Identity>,
    pub login: Login,
    pub csrf: String,
    pub expires: i64,
}

impl ConsoleUser {
    /// The access key id the console's calls are made with (AWS's console uses temporary
    /// credentials; a password session has no key of its own).
    pub fn access_key_id(&self) -> &str {
        match &self.login {
            Login::AccessKey { id } => id,
            Login::Password { .. } => "console",
        }
    }
}

fn refused() -> Error {
    Error::new(401, "SignInFailed", SIGN_IN_REFUSED)
}

/// Compares two secrets without an early exit on the first difference.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0_u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn throttled(seconds: i64) -> Error {
    Error::new(
        429,
        "Throttling",
        format!(
            "Too many failed sign-in attempts for this user name or from this address. \
             Try again in {seconds} seconds."
        ),
    )
}

impl Service {
    /// Signs in to the console (a password or an access key pair) from `source_ip`, with
    /// the failed-attempt limits of [`SignInLimiter`], and writes a `ConsoleLogin` audit
    /// event for every attempt, refused or not (never with the password or secret). The
    /// second result is the audit write's, for the caller to log.
    pub async fn console_sign_in(
        &self,
        attempt: SignIn<'_>,
        source_ip: &str,
    ) -> (Result<NewSession>, Result<()>) {
        let name_key = attempt.limit_key();
        let addr_key = format!("ip:{source_ip}");
        // An attempt counts as a failure from the moment it starts (so that many attempts
        // in parallel cannot all get past the lock check), and is forgiven if it succeeds.
        let locked = {
            let mut limiter = self
                .sign_in_limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let t = now();
            let locked = limiter
                .locked(&name_key, t)
                .max(limiter.locked(&addr_key, t));
            if locked.is_none() {
                limiter.failed(&name_key, t, FREE_FAILURES_PER_NAME);
                limiter.failed(&addr_key, t, FREE_FAILURES_PER_ADDRESS);
            }
            locked
        };
        let result = match locked {
            Some(seconds) => Err(throttled(seconds)),
            None => match attempt {
                SignIn::Password { user, password } => {
                    self.console_sign_in_password(user, password).await
                }
                SignIn::AccessKey { id, secret } => self.console_sign_in_key(id, secret).await,
            },
        };
        if locked.is_none() {
            let mut limiter = self
                .sign_in_limits
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match &result {
                Ok(_) => {
                    limiter.succeeded(&name_key);
                    limiter.forgive(&addr_key, FREE_FAILURES_PER_ADDRESS);
                }
                // A wrong user name, password or key stays counted; anything else (a
                // password that must be reset, a store failure) was not a guess.
                Err(e) if e.code == "SignInFailed" => {}
                Err(_) => {
                    limiter.forgive(&name_key, FREE_FAILURES_PER_NAME);
                    limiter.forgive(&addr_key, FREE_FAILURES_PER_ADDRESS);
                }
            }
        }
        let event = AuditEvent {
            time: now(),
            request_id: ids::request_id(),
            principal: self.sign_in_principal(&attempt).await,
            action: "signin:ConsoleLogin".to_owned(),
            resource: String::new(),
            decision: if result.is_ok() { "allow" } else { "error" }.to_owned(),
            statement: None,
            source_ip: source_ip.to_owned(),
            error: result.as_ref().err().map(|e| e.code.clone()),
        };
        let audited = self.store.append_audit(&event).await.map_err(Error::from);
        (result, audited)
    }

    /// Who a sign-in attempt was for, as CloudTrail names it: the user's (or key owner's)
    /// ARN, or [`HIDDEN_USER`] when there is no such user or key (so a mistyped password
    /// in the user-name field is never logged).
    async fn sign_in_principal(&self, attempt: &SignIn<'_>) -> String {
        let user = match attempt {
            SignIn::Password { user, .. } if !user.is_empty() && user.len() <= 64 => {
                Some((*user).to_owned())
            }
            SignIn::AccessKey { id, .. } if !id.is_empty() && id.len() <= 128 => {
                match self.store.access_key(id).await {
                    Ok(Some(key)) => match key.owner {
                        KeyOwner::Root => return format!("arn:aws:iam::{}:root", self.account.id),
                        KeyOwner::User(name) => Some(name),
                    },
                    _ => None,
                }
            }
            _ => None,
        };
        match user {
            Some(name) => match self.store.user(&name).await {
                Ok(Some(u)) => u.arn,
                _ => HIDDEN_USER.to_owned(),
            },
            None => HIDDEN_USER.to_owned(),
        }
    }

    /// Signs in with an IAM user's console password (its login profile).
    pub async fn console_sign_in_password(&self, user: &str, password: &str) -> Result<NewSession> {
        let profile = if user.is_empty() || user.len() > 64 {
            None
        } else {
            self.store.login_profile(user).await?
        };
        // No such user or profile: the same time spent and the same words as a wrong password.
        let hash = profile.as_ref().map(|p| p.password_hash.clone());
        if !crate::ops_iam::verify_password(hash, password).await {
            return Err(refused());
        }
        let Some(profile) = profile else {
            return Err(refused());
        };
        if profile.password_reset_required {
            return Err(Error::new(
                403,
                "PasswordResetRequired",
                format!(
                    "User {} must choose a new password, which the console cannot do yet; an \
                     administrator can run `aws iam update-login-profile --user-name {} \
                     --no-password-reset-required` (or set a new password).",
                    profile.user_name, profile.user_name
                ),
            ));
        }
        let login = Login::Password {
            user: profile.user_name,
        };
        Ok(self.open_console_session(login))
    }

    /// Signs in with an access key pair (an IAM user's or the account root's).
    pub async fn console_sign_in_key(
        &self,
        access_key_id: &str,
        secret: &str,
    ) -> Result<NewSession> {
        let key = if access_key_id.is_empty() || access_key_id.len() > 128 {
            None
        } else {
            self.store.access_key(access_key_id).await?
        };
        let Some(key) = key.filter(|k| k.status == KeyStatus::Active) else {
            return Err(refused());
        };
        if !same_secret(&key.secret, secret) || self.authenticate(&key.id).await?.is_none() {
            return Err(refused());
        }
        Ok(self.open_console_session(Login::AccessKey { id: key.id }))
    }

    fn open_console_session(&self, login: Login) -> NewSession {
        let mut sessions = self
            .console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let lifetime = sessions.lifetime;
        sessions.open(login, now(), lifetime)
    }

    /// How long console sessions signed in from now on last (at least one second).
    pub fn set_console_session_seconds(&self, seconds: i64) {
        let mut sessions = self
            .console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.lifetime = seconds.max(1);
    }

    /// The signed-in principal of a console session id, with its identity looked up afresh;
    /// `None` for an unknown, expired or signed-out session, or one whose user, login
    /// profile or key is gone.
    pub async fn console_user(&self, session_id: &str) -> Result<Option<ConsoleUser>> {
        let found = {
            let mut sessions = self
                .console
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sessions.get(session_id, now())
        };
        let Some((login, csrf, expires)) = found else {
            return Ok(None);
        };
        let identity = match &login {
            Login::AccessKey { id } => self.authenticate(id).await?,
            Login::Password { user } => self.password_identity(user).await?,
        };
        Ok(identity.map(|identity| ConsoleUser {
            identity,
            login,
            csrf,
            expires,
        }))
    }

    async fn password_identity(&self, name: &str) -> Result<Option<Arc<Identity>>> {
        if self.store.login_profile(name).await?.is_none() {
            return Ok(None);
        }
        let Some(user) = self.store.user(name).await? else {
            return Ok(None);
        };
        let tags = self.store.user_tags(name).await?;
        let principal = crate::policies::user_principal(&user, &self.account.id, &tags);
        Ok(Some(Arc::new(Identity {
            secret: String::new(),
            principal,
            policies: Arc::new(self.user_policy_set(&user).await?),
            user: Some(user),
        })))
    }

    /// Signs a console session out; `false` if there was none.
    pub fn console_sign_out(&self, session_id: &str) -> bool {
        self.console
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .close(session_id)
    }

    /// Whether the console shows this principal the engine's explanation of its refusals:
    /// the account root, and any user allowed `iam:SimulatePrincipalPolicy` on their own ARN
    /// (who could ask the simulator the same question through the API).
    pub fn may_see_explanations(&self, caller: &Caller) -> bool {
        let identity = &caller.identity;
        if identity.is_root() {
            return true;
        }
        let probe = Caller::new(
            identity.clone(),
            &caller.access_key_id,
            &caller.source_ip,
            caller.secure_transport,
        );
        self.authorize(
            &probe,
            "iam:SimulatePrincipalPolicy",
            identity.principal.arn(),
            &[],
            &[],
        )
        .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_is_found_by_its_id_until_it_expires() {
        let mut s = ConsoleSessions::default();
        let login = Login::Password {
            user: "TestUserA".into(),
        };
        let new = s.open(login.clone(), 1000, 60);
        assert_eq!(new.expires, 1060);
        assert_eq!(new.id.len(), 43);
        assert_ne!(new.id, new.csrf);
        let (found, csrf, _) = s.get(&new.id, 1059).expect("live");
        assert_eq!((found, csrf.as_str()), (login, new.csrf.as_str()));
        assert!(s.get(&new.id, 1060).is_none(), "expired at its expiry time");
        assert!(s.is_empty(), "an expired session is forgotten");
    }

    #[test]
    fn forged_and_signed_out_ids_find_nothing() {
        let mut s = ConsoleSessions::default();
        let new = s.open(Login::AccessKey { id: "AKIA1".into() }, 0, 60);
        assert!(s.get("forged", 1).is_none());
        assert!(
            s.get(&new.csrf, 1).is_none(),
            "the CSRF token is not a session id"
        );
        assert!(s.close(&new.id));
        assert!(s.get(&new.id, 1).is_none());
        assert!(!s.close(&new.id));
    }

    #[test]
    fn only_hashes_of_ids_are_kept() {
        let mut s = ConsoleSessions::default();
        let new = s.open(Login::AccessKey { id: "AKIA1".into() }, 0, 60);
        assert!(!s.live.contains_key(&new.id));
        assert!(s.live.contains_key(&sha256_hex(&new.id)));
    }

    #[test]
    fn signing_in_drops_expired_sessions() {
        let mut s = ConsoleSessions::default();
        s.open(Login::AccessKey { id: "A".into() }, 0, 10);
        s.open(Login::AccessKey { id: "B".into() }, 20, 10);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn failures_beyond_the_free_ones_lock_with_a_doubling_delay() {
        let mut l = SignInLimiter::default();
        for i in 0..5 {
            assert_eq!(l.locked("user:a", 100 + i), None);
            l.failed("user:a", 100 + i, 5);
        }
        assert_eq!(l.locked("user:a", 105), None, "five failures are free");
        l.failed("user:a", 105, 5);
        assert_eq!(l.locked("user:a", 105), Some(30));
        assert_eq!(l.locked("user:a", 134), Some(1));
        assert_eq!(l.locked("user:a", 135), None);
        l.failed("user:a", 135, 5);
        assert_eq!(l.locked("user:a", 135), Some(60));
        for _ in 0..20 {
            l.failed("user:a", 200, 5);
        }
        assert_eq!(l.locked("user:a", 200), Some(MAX_LOCKOUT));
        assert_eq!(l.locked("user:b", 200), None, "other names are not locked");
        l.succeeded("user:a");
        assert_eq!(l.locked("user:a", 200), None);
    }

    #[test]
    fn a_forgiven_attempt_no_longer_counts() {
        let mut l = SignInLimiter::default();
        for _ in 0..5 {
            l.failed("ip:1", 0, 5);
        }
        l.failed("ip:1", 0, 5);
        assert!(l.locked("ip:1", 0).is_some());
        l.forgive("ip:1", 5);
        assert_eq!(
            l.locked("ip:1", 0),
            None,
            "back to five: within the free ones"
        );
        l.failed("ip:1", 0, 5);
        assert_eq!(l.locked("ip:1", 0), Some(30));
        l.forgive("ip:2", 5);
        assert_eq!(l.locked("ip:2", 0), None);
    }

    #[test]
    fn failures_are_forgotten_after_an_hour() {
        let mut l = SignInLimiter::default();
        for _ in 0..6 {
            l.failed("ip:1", 0, 5);
        }
        assert!(l.locked("ip:1", 1).is_some());
        l.failed("ip:1", 3600, 5);
        assert_eq!(l.locked("ip:1", 3600), None, "the count started again");
    }

    #[test]
    fn sign_in_names_are_counted_whatever_their_case() {
        let a = SignIn::Password {
            user: "TestUserA",
            password: "x",
        };
        let b = SignIn::Password {
            user: "testusera",
            password: "y",
        };
        assert_eq!(a.limit_key(), b.limit_key());
        assert_eq!(
            SignIn::AccessKey {
                id: "AKIA1",
                secret: "s"
            }
            .limit_key(),
            "key:AKIA1"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
