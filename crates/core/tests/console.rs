#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! Console sign-in and sessions through the service, on the real SQLite store (in memory):
//! password and access-key sign-in, the same refusal for every wrong input, sessions that end
//! when their user, login profile or key goes, and the engine's explanation of a refusal.

use std::sync::Arc;

use portcullis_core::console::{Login, SIGN_IN_REFUSED};
use portcullis_core::model::Tag;
use portcullis_core::{Caller, Identity, Service};
use portcullis_store::SqliteStore;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "ap-northeast-1";
const PASSWORD: &str = "correct horse battery";

struct World {
    svc: Service,
    root: Arc<Identity>,
    root_key: (String, String),
}

impl World {
    async fn new() -> World {
        let store = Arc::new(SqliteStore::open_in_memory().await.unwrap());
        let boot = Service::start(store, Some(ACCOUNT), REGION).await.unwrap();
        let key = boot.new_root_key.unwrap();
        let root = boot.service.authenticate(&key.id).await.unwrap().unwrap();
        World {
            svc: boot.service,
            root,
            root_key: (key.id, key.secret),
        }
    }

    fn root(&self) -> Caller {
        Caller::new(self.root.clone(), "AKIAROOT", "127.0.0.1", false)
    }

    /// A user with a console password and the given managed policies.
    async fn user(&self, name: &str, policies: &[&str]) {
        let root = self.root();
        self.svc
            .create_user(&root, name, None, &[Tag::new("Project", "test")], None)
            .await
            .unwrap();
        for p in policies {
            self.svc
                .attach_user_policy(&root, name, &format!("arn:aws:iam::aws:policy/{p}"))
                .await
                .unwrap();
        }
        self.svc
            .create_login_profile(&root, Some(name), PASSWORD, false)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn password_sign_in_stands_for_the_user() {
    let w = World::new().await;
    w.user("TestUserA", &["ReadOnlyAccess"]).await;
    let new = w
        .svc
        .console_sign_in_password("TestUserA", PASSWORD)
        .await
        .unwrap();
    let user = w
        .svc
        .console_user(&new.id)
        .await
        .unwrap()
        .expect("signed in");
    assert_eq!(
        user.identity.principal.arn(),
        "arn:aws:iam::123456789012:user/TestUserA"
    );
    assert_eq!(
        user.login,
        Login::Password {
            user: "TestUserA".into()
        }
    );
    assert_eq!(user.csrf, new.csrf);
    assert!(new.expires > portcullis_core::service::now());
    // The console's caller has exactly the user's powers: read yes, write no.
    let caller = Caller::new(
        user.identity.clone(),
        user.access_key_id(),
        "127.0.0.1",
        false,
    );
    w.svc.describe_instance_information(&caller).await.unwrap();
    let e = w
        .svc
        .terminate_session(&caller, "root-0123456789abcdef0")
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
}

#[tokio::test]
async fn every_wrong_sign_in_gets_the_same_words() {
    let w = World::new().await;
    w.user("TestUserA", &[]).await;
    w.svc
        .create_user(&w.root(), "NoProfile", None, &[], None)
        .await
        .unwrap();
    for (user, password) in [
        ("TestUserA", "wrong password!"),
        ("Nobody", PASSWORD),
        ("NoProfile", PASSWORD),
        ("", ""),
    ] {
        let e = w
            .svc
            .console_sign_in_password(user, password)
            .await
            .unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (401, "SignInFailed"), "{user}");
        assert_eq!(e.message, SIGN_IN_REFUSED);
    }
    let (id, _) = &w.root_key;
    for (key, secret) in [(id.as_str(), "wrong"), ("AKIANOSUCHKEY", "x"), ("", "")] {
        let e = w.svc.console_sign_in_key(key, secret).await.unwrap_err();
        assert_eq!(e.message, SIGN_IN_REFUSED, "{key}");
    }
}

#[tokio::test]
async fn a_password_that_must_be_reset_does_not_sign_in() {
    let w = World::new().await;
    w.svc
        .create_user(&w.root(), "Fresh", None, &[], None)
        .await
        .unwrap();
    w.svc
        .create_login_profile(&w.root(), Some("Fresh"), PASSWORD, true)
        .await
        .unwrap();
    let e = w
        .svc
        .console_sign_in_password("Fresh", PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(e.code, "PasswordResetRequired");
}

#[tokio::test]
async fn access_key_sign_in_for_root_and_users() {
    let w = World::new().await;
    let (id, secret) = w.root_key.clone();
    let new = w.svc.console_sign_in_key(&id, &secret).await.unwrap();
    let root = w.svc.console_user(&new.id).await.unwrap().unwrap();
    assert!(root.identity.is_root());
    assert_eq!(root.access_key_id(), id);

    w.user("TestUserA", &[]).await;
    let key = w
        .svc
        .create_access_key(&w.root(), Some("TestUserA"))
        .await
        .unwrap();
    let new = w
        .svc
        .console_sign_in_key(&key.id, &key.secret)
        .await
        .unwrap();
    assert!(w.svc.console_user(&new.id).await.unwrap().is_some());
    // Deactivating the key ends the console session on its next request.
    w.svc
        .update_access_key(&w.root(), Some("TestUserA"), &key.id, "Inactive")
        .await
        .unwrap();
    assert!(w.svc.console_user(&new.id).await.unwrap().is_none());
    let e = w
        .svc
        .console_sign_in_key(&key.id, &key.secret)
        .await
        .unwrap_err();
    assert_eq!(e.code, "SignInFailed");
}

#[tokio::test]
async fn sessions_end_on_sign_out_and_with_the_login_profile() {
    let w = World::new().await;
    w.user("TestUserA", &[]).await;
    let a = w
        .svc
        .console_sign_in_password("TestUserA", PASSWORD)
        .await
        .unwrap();
    let b = w
        .svc
        .console_sign_in_password("TestUserA", PASSWORD)
        .await
        .unwrap();
    assert_ne!(a.id, b.id);
    assert!(w.svc.console_sign_out(&a.id));
    assert!(w.svc.console_user(&a.id).await.unwrap().is_none());
    assert!(w.svc.console_user(&b.id).await.unwrap().is_some());
    assert!(w
        .svc
        .console_user("forged-session-id")
        .await
        .unwrap()
        .is_none());
    w.svc
        .delete_login_profile(&w.root(), Some("TestUserA"))
        .await
        .unwrap();
    assert!(w.svc.console_user(&b.id).await.unwrap().is_none());
}

#[tokio::test]
async fn explanations_for_those_who_may_simulate() {
    let w = World::new().await;
    w.user("Reader", &["ReadOnlyAccess"]).await;
    w.user("Nobody", &[]).await;
    let caller_of = |name: &'static str| {
        let svc = &w.svc;
        async move {
            let new = svc.console_sign_in_password(name, PASSWORD).await.unwrap();
            let user = svc.console_user(&new.id).await.unwrap().unwrap();
            Caller::new(
                user.identity.clone(),
                user.access_key_id(),
                "127.0.0.1",
                false,
            )
        }
    };
    let reader = caller_of("Reader").await;
    assert!(w.svc.may_see_explanations(&reader));
    let e = w
        .svc
        .terminate_session(&reader, "root-0123456789abcdef0")
        .await
        .unwrap_err();
    let why = reader.refusal_explanation().expect("an explanation");
    assert!(why.starts_with("implicit deny: "), "{why}");
    assert!(why.contains(&e.message), "{why}");
    assert!(
        why.contains(
            "Allow policy \"arn:aws:iam::aws:policy/ReadOnlyAccess\" /Statement/0 (Sid ReadOnly): action did not match"
        ),
        "{why}"
    );

    let nobody = caller_of("Nobody").await;
    assert!(!w.svc.may_see_explanations(&nobody));
    assert!(w.svc.may_see_explanations(&w.root()));
    // An allowed call has nothing to explain.
    w.svc
        .describe_sessions(&reader, &Default::default())
        .await
        .unwrap();
    assert!(
        reader.refusal_explanation().is_some(),
        "the earlier refusal is still the call's first"
    );
    let fresh = caller_of("Reader").await;
    w.svc
        .describe_sessions(&fresh, &Default::default())
        .await
        .unwrap();
    assert!(fresh.refusal_explanation().is_none());
}
