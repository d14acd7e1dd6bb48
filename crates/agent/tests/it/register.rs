//! Registration: the request, the stored file and its mode, refusals.

use std::os::unix::fs::PermissionsExt as _;

use axum::http::StatusCode;
use portcullis_agent::{register, RegisterError, RegisterRequest, StateError};
use serde_json::{json, Value};

use crate::fake::{Fake, CREDENTIAL, NODE_ID};

fn request(fake: &Fake) -> RegisterRequest {
    RegisterRequest {
        server: fake.url(),
        activation_id: "a1b2c3d4-0000-4000-8000-000000000001".to_owned(),
        activation_code: "code-ABCDEFGHIJ".to_owned(),
        instance_id: Some("i-0885b2e35926f1fb3".to_owned()),
        ca_certificates: None,
        force: false,
    }
}

#[tokio::test]
async fn registration_stores_the_credential_with_mode_0600() {
    let mut fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (registration, path) = register(&request(&fake), &state).await.unwrap();
    assert_eq!(registration.node_id, NODE_ID);
    assert_eq!(registration.credential, CREDENTIAL);

    let sent = fake.registrations.recv().await.unwrap();
    assert_eq!(sent["ActivationId"], "a1b2c3d4-0000-4000-8000-000000000001");
    assert_eq!(sent["ActivationCode"], "code-ABCDEFGHIJ");
    assert_eq!(sent["InstanceId"], "i-0885b2e35926f1fb3");
    assert_eq!(sent["Platform"], "Linux");
    assert_eq!(sent["AgentVersion"], env!("CARGO_PKG_VERSION"));
    assert_eq!(sent["IpAddress"], "127.0.0.1");
    assert!(!sent["Hostname"].as_str().unwrap().is_empty());

    assert_eq!(path, state.join("registration.json"));
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let dir_mode = std::fs::metadata(&state).unwrap().permissions().mode();
    assert_eq!(dir_mode & 0o777, 0o700, "{dir_mode:o}");
    let stored: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(
        stored,
        json!({"server": fake.url(), "node_id": NODE_ID, "credential": CREDENTIAL})
    );
    assert_eq!(portcullis_agent::state::load(&state).unwrap(), registration);

    // Once registered, again only with --force.
    let again = register(&request(&fake), &state).await.unwrap_err();
    assert!(
        matches!(
            again,
            RegisterError::State(StateError::AlreadyRegistered(_))
        ),
        "{again}"
    );
    let mut forced = request(&fake);
    forced.force = true;
    register(&forced, &state).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
}

#[tokio::test]
async fn a_refusal_carries_the_servers_message_and_stores_nothing() {
    let fake = Fake::start().await;
    fake.set_register_reply(
        StatusCode::BAD_REQUEST,
        json!({"__type": "InvalidActivation", "message": "Activation a1b2 has expired."}),
    );
    let dir = tempfile::tempdir().unwrap();
    let err = register(&request(&fake), dir.path()).await.unwrap_err();
    match &err {
        RegisterError::Refused {
            status,
            code,
            message,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code, "InvalidActivation");
            assert_eq!(message, "Activation a1b2 has expired.");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.to_string(), "Activation a1b2 has expired.");
    assert!(!dir.path().join("registration.json").exists());
    assert!(matches!(
        portcullis_agent::state::load(dir.path()),
        Err(StateError::NotRegistered(_))
    ));
}

#[tokio::test]
async fn an_unreachable_server_is_an_error_not_a_refusal() {
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let dir = tempfile::tempdir().unwrap();
    let mut req = RegisterRequest {
        server: format!("http://{addr}"),
        activation_id: "a".into(),
        activation_code: "c".into(),
        instance_id: None,
        ca_certificates: None,
        force: false,
    };
    let err = register(&req, dir.path()).await.unwrap_err();
    assert!(matches!(err, RegisterError::Dial(_)), "{err:?}");
    req.server = "ftp://example".into();
    let err = register(&req, dir.path()).await.unwrap_err();
    assert!(matches!(err, RegisterError::Dial(_)), "{err:?}");
}
