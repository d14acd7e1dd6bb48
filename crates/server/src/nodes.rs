//! Endpoints agents use: registration with an activation, and heartbeats. (The control
//! channel over WebSocket replaces heartbeats when the agent lands.)

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use portcullis_core::ops_ssm::RegisterNode;
use serde_json::{json, Value};

use crate::AppState;

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"__type": code, "message": message}))).into_response()
}

fn field<'a>(body: &'a Value, name: &str) -> Option<&'a str> {
    body.get(name).and_then(Value::as_str)
}

/// `POST /v1/nodes/register`: `{ActivationId, ActivationCode, InstanceId?, Hostname,
/// Platform, AgentVersion, IpAddress}` → `{NodeId, Credential}`.
pub async fn register(State(state): State<Arc<AppState>>, body: axum::body::Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "the body must be a JSON object",
        );
    };
    let (Some(activation_id), Some(activation_code)) =
        (field(&body, "ActivationId"), field(&body, "ActivationCode"))
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "ActivationId and ActivationCode are required",
        );
    };
    let req = RegisterNode {
        activation_id: activation_id.to_owned(),
        activation_code: activation_code.to_owned(),
        instance_id: field(&body, "InstanceId").map(str::to_owned),
        hostname: field(&body, "Hostname").unwrap_or_default().to_owned(),
        platform: field(&body, "Platform").unwrap_or("Linux").to_owned(),
        agent_version: field(&body, "AgentVersion").unwrap_or_default().to_owned(),
        ip_address: field(&body, "IpAddress").unwrap_or_default().to_owned(),
    };
    match state.service.register_node(&req).await {
        Ok(reg) => {
            tracing::info!(node = %reg.node_id, activation = %activation_id, "node registered");
            Json(json!({"NodeId": reg.node_id, "Credential": reg.credential})).into_response()
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::BAD_REQUEST);
            error(status, &e.code, &e.message)
        }
    }
}

/// `POST /v1/nodes/heartbeat` with `Authorization: Bearer NODE_ID:CREDENTIAL`.
pub async fn heartbeat(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .and_then(|v| v.split_once(':'));
    let Some((node_id, credential)) = presented else {
        return error(
            StatusCode::UNAUTHORIZED,
            "MissingAuthenticationToken",
            "a node credential is required",
        );
    };
    match state.service.authenticate_node(node_id, credential).await {
        Ok(Some(_)) => match state.service.node_heartbeat(node_id).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.code, &e.message),
        },
        Ok(None) => error(
            StatusCode::FORBIDDEN,
            "InvalidNodeCredential",
            "unknown node or wrong credential",
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e.code, &e.message),
    }
}
