//! The handshake, frame by frame, in the shapes AWS's agent and plugin send; its failures;
//! the legacy no-handshake agent; and `channel_closed`.

use std::time::{Duration, Instant};

use portcullis_stream::{
    session_type, AcknowledgeContent, ActionStatus, ActionType, Agent, ChannelClosed, Client,
    ClientMessage, Event, Failure, Finished, Flag, HandshakeRequest, HandshakeResponse, MessageId,
    MessageType, PayloadType, RequestedClientAction, SendError, Session, SizeData, WallClock,
    FLAGS_CONTROL, FLAG_SYN,
};
use serde_json::json;

use crate::sim::{config, shell_request, AGENT_VERSION, MS, T0_UNIX_MS};

fn sessions() -> (Instant, Session<Agent>, Session<Client>) {
    let t0 = Instant::now();
    let clock = WallClock::new(t0, T0_UNIX_MS);
    (
        t0,
        Session::new(config(), clock),
        Session::new(config(), clock),
    )
}

fn decode_all(frames: &[Vec<u8>]) -> Vec<ClientMessage> {
    frames
        .iter()
        .map(|f| ClientMessage::decode(f).unwrap())
        .collect()
}

#[test]
fn handshake_frames_have_aws_shapes() {
    let (t0, mut agent, mut client) = sessions();

    // 1. Agent → client: output_stream_data, seq 0, SYN, payload type 5.
    let step = agent.start(&shell_request(), "Welcome.", t0).unwrap();
    assert!(step.events.is_empty());
    let [request] = &decode_all(&step.frames)[..] else {
        panic!("one frame")
    };
    assert_eq!(request.message_type, MessageType::OutputStreamData);
    assert_eq!(request.sequence_number, 0);
    assert_eq!(request.flags, FLAG_SYN);
    assert_eq!(request.schema_version, 1);
    assert_eq!(request.created_date, T0_UNIX_MS);
    assert_eq!(request.payload_type, PayloadType::HandshakeRequest);
    let body: serde_json::Value = serde_json::from_slice(&request.payload).unwrap();
    assert_eq!(
        body,
        json!({
            "AgentVersion": AGENT_VERSION,
            "RequestedClientActions": [{
                "ActionType": "SessionType",
                "ActionParameters": {
                    "SessionType": "Standard_Stream",
                    "Properties": {"linux": {"commands": "", "runAsElevated": false}}
                }
            }]
        })
    );
    assert_eq!(
        agent.start(&shell_request(), "", t0).unwrap_err(),
        SendError::AlreadyStarted
    );

    // 2. Client: acknowledges, then answers with input_stream_data seq 0, payload type 6.
    let t1 = t0 + 30 * MS;
    let step = client.on_frame(&step.frames[0], t1).unwrap();
    let [ack, response] = &decode_all(&step.frames)[..] else {
        panic!("ack and response")
    };
    assert_eq!(ack.message_type, MessageType::Acknowledge);
    assert_eq!((ack.sequence_number, ack.flags), (0, FLAGS_CONTROL));
    assert_eq!(ack.payload_type, PayloadType::Unset);
    assert_eq!(
        AcknowledgeContent::from_json(&ack.payload).unwrap(),
        AcknowledgeContent {
            message_type: "output_stream_data".into(),
            message_id: request.message_id.to_string(),
            sequence_number: 0,
            is_sequential_message: true,
        }
    );
    assert_eq!(response.message_type, MessageType::InputStreamData);
    assert_eq!((response.sequence_number, response.flags), (0, 0));
    assert_eq!(response.payload_type, PayloadType::HandshakeResponse);
    // Byte for byte what the plugin's json.Marshal produces.
    assert_eq!(
        String::from_utf8(response.payload.clone()).unwrap(),
        r#"{"ClientVersion":"1.2.0.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""}],"Errors":null}"#
    );
    let [Event::HandshakeRequest(seen)] = &step.events[..] else {
        panic!("{:?}", step.events)
    };
    assert_eq!(seen.agent_version, AGENT_VERSION);
    assert_eq!(client.agent_version(), Some(AGENT_VERSION));
    assert_eq!(
        client.session_type().unwrap().session_type,
        session_type::STANDARD_STREAM
    );
    assert!(!client.is_handshake_complete());

    // Input before HandshakeComplete is held.
    let held = client.send_input(b"ls\r", t1).unwrap();
    assert!(held.frames.is_empty());
    assert_eq!(client.held(), 1);

    // 3. Agent: removes its request on the ack, answers the response with ack + complete.
    let t2 = t0 + 60 * MS;
    let step_ack = agent.on_frame(&step.frames[0], t2).unwrap();
    assert!(step_ack.is_empty());
    assert_eq!(agent.unacknowledged(), 0);
    let step = agent.on_frame(&step.frames[1], t2).unwrap();
    let [ack, complete] = &decode_all(&step.frames)[..] else {
        panic!("ack and complete")
    };
    assert_eq!(ack.message_type, MessageType::Acknowledge);
    assert_eq!(
        AcknowledgeContent::from_json(&ack.payload)
            .unwrap()
            .message_type,
        "input_stream_data"
    );
    assert_eq!(complete.sequence_number, 1);
    assert_eq!(complete.flags, 0);
    assert_eq!(complete.payload_type, PayloadType::HandshakeComplete);
    assert_eq!(
        String::from_utf8(complete.payload.clone()).unwrap(),
        r#"{"HandshakeTimeToComplete":60000000,"CustomerMessage":"Welcome."}"#
    );
    assert!(
        matches!(&step.events[..], [Event::HandshakeResponse(r)] if r.client_version == "1.2.0.0")
    );
    assert_eq!(agent.client_version(), Some("1.2.0.0"));
    assert!(agent.is_handshake_complete());

    // 4. Client: complete; held input released as seq 1.
    let step = client.on_frame(&step.frames[1], t2 + 30 * MS).unwrap();
    let frames = decode_all(&step.frames);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].message_type, MessageType::Acknowledge);
    assert_eq!(frames[1].sequence_number, 1);
    assert_eq!(frames[1].payload, b"ls\r");
    match &step.events[..] {
        [Event::HandshakeComplete(c)] => {
            assert_eq!(c.customer_message, "Welcome.");
            assert_eq!(c.time_to_complete(), 60 * MS);
        }
        other => panic!("{other:?}"),
    }
    assert!(client.is_handshake_complete());
    assert_eq!(client.held(), 0);
}

/// Shuttles frames between the two sessions (no loss) until both are quiet.
fn shuttle(
    agent: &mut Session<Agent>,
    client: &mut Session<Client>,
    mut to_client: Vec<Vec<u8>>,
    now: Instant,
) -> (Vec<Event>, Vec<Event>) {
    let (mut agent_events, mut client_events) = (Vec::new(), Vec::new());
    let mut to_agent = Vec::new();
    while !to_client.is_empty() || !to_agent.is_empty() {
        for frame in std::mem::take(&mut to_client) {
            let step = client.on_frame(&frame, now).unwrap();
            to_agent.extend(step.frames);
            client_events.extend(step.events);
        }
        for frame in std::mem::take(&mut to_agent) {
            let step = agent.on_frame(&frame, now).unwrap();
            to_client.extend(step.frames);
            agent_events.extend(step.events);
        }
    }
    (agent_events, client_events)
}

#[test]
fn agent_times_out_without_a_response() {
    let (t0, mut agent, _) = sessions();
    let _ = agent.start(&shell_request(), "", t0).unwrap();
    // The request is resent meanwhile; the deadline is 15 s.
    let mut now = t0;
    let mut failed = Vec::new();
    while let Some(due) = agent.poll_timeout() {
        now = due;
        failed.extend(agent.poll_timers(now).events);
    }
    assert_eq!(failed, [Event::Failed(Failure::HandshakeTimedOut)]);
    assert_eq!(now, t0 + Duration::from_secs(15));
    assert_eq!(
        agent.finished(),
        Some(&Finished::Failed(Failure::HandshakeTimedOut))
    );
}

#[test]
fn client_refuses_kms_and_unknown_actions_and_the_agent_gives_up() {
    let (t0, mut agent, mut client) = sessions();
    let mut request = shell_request();
    request
        .requested_client_actions
        .push(RequestedClientAction {
            action_type: ActionType::KmsEncryption,
            action_parameters: json!({"KMSKeyId": "arn:aws:kms:us-east-1:123456789012:key/x"}),
        });
    request
        .requested_client_actions
        .push(RequestedClientAction {
            action_type: ActionType::Other("Teleport".into()),
            action_parameters: json!(null),
        });
    let frames = agent.start(&request, "", t0).unwrap().frames;
    let step = client.on_frame(&frames[0], t0).unwrap();
    let response = ClientMessage::decode(&step.frames[1]).unwrap();
    let response = HandshakeResponse::from_json(&response.payload).unwrap();
    let statuses: Vec<ActionStatus> = response
        .processed_client_actions
        .iter()
        .map(|a| a.action_status)
        .collect();
    assert_eq!(
        statuses,
        [
            ActionStatus::Success,
            ActionStatus::Failed,
            ActionStatus::Unsupported
        ]
    );
    assert_eq!(response.errors.as_ref().map(Vec::len), Some(2));

    let mut events = Vec::new();
    for frame in &step.frames {
        events.extend(agent.on_frame(frame, t0).unwrap().events);
    }
    match &events[..] {
        [Event::Failed(Failure::HandshakeRejected(errors))] => {
            assert_eq!(errors.len(), 2);
            assert!(
                errors[0].starts_with("KMSEncryption failed on client with status 2"),
                "{errors:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(agent.finished().is_some());
}

#[test]
fn client_refuses_an_unknown_session_type() {
    let (t0, mut agent, mut client) = sessions();
    let request = HandshakeRequest::new(AGENT_VERSION, "Teleport", json!(null)).unwrap();
    let frames = agent.start(&request, "", t0).unwrap().frames;
    let (agent_events, _) = shuttle(&mut agent, &mut client, frames, t0);
    assert!(
        matches!(&agent_events[..], [Event::Failed(Failure::HandshakeRejected(e))] if e[0].contains("unknown session type `Teleport`"))
    );
    assert_eq!(client.session_type(), None);
}

#[test]
fn malformed_handshake_payloads_fail_the_session() {
    let (t0, _, mut client) = sessions();
    let bad = ClientMessage {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_date: T0_UNIX_MS,
        sequence_number: 0,
        flags: FLAG_SYN,
        message_id: MessageId::from_random([4; 16]),
        payload_type: PayloadType::HandshakeRequest,
        payload: b"[1,2".to_vec(),
    };
    let step = client.on_frame(&bad.encode(), t0).unwrap();
    assert_eq!(step.frames.len(), 1, "acknowledged all the same");
    assert!(matches!(
        &step.events[..],
        [Event::Failed(Failure::HandshakeMalformed(_))]
    ));
    assert_eq!(
        client.send_input(b"x", t0).unwrap_err(),
        SendError::Finished
    );
}

#[test]
fn legacy_agent_without_handshake() {
    let (t0, _, mut client) = sessions();
    let held = client
        .send_size(SizeData { cols: 80, rows: 24 }, t0)
        .unwrap();
    assert!(held.frames.is_empty());
    let first = ClientMessage {
        message_type: MessageType::OutputStreamData,
        schema_version: 1,
        created_date: T0_UNIX_MS,
        sequence_number: 0,
        flags: FLAG_SYN,
        message_id: MessageId::from_random([5; 16]),
        payload_type: PayloadType::Output,
        payload: b"sh-4.2$ ".to_vec(),
    };
    let step = client.on_frame(&first.encode(), t0).unwrap();
    let frames = decode_all(&step.frames);
    assert_eq!(frames[0].message_type, MessageType::Acknowledge);
    assert_eq!(frames[1].payload_type, PayloadType::Size);
    assert_eq!(frames[1].sequence_number, 0);
    assert!(matches!(&step.events[..], [Event::Data(d)] if d.payload == b"sh-4.2$ "));
    assert!(client.is_handshake_complete());
}

#[test]
fn channel_closed_ends_the_session_on_both_sides() {
    let (t0, mut agent, mut client) = sessions();
    let frames = agent.start(&shell_request(), "", t0).unwrap().frames;
    let _ = shuttle(&mut agent, &mut client, frames, t0);
    let step = agent.send_exit_code(0, t0).unwrap();
    let (_, events) = shuttle(&mut agent, &mut client, step.frames, t0);
    assert!(
        matches!(&events[..], [Event::Data(d)] if d.payload_type == PayloadType::ExitCode && d.exit_code() == Ok(0))
    );

    let step = agent.close(
        "TestUserA-0123456789abcdef0",
        "i-0885b2e35926f1fb3",
        "",
        t0 + MS,
    );
    assert_eq!(agent.finished(), Some(&Finished::Closed { by_peer: false }));
    let closed = ClientMessage::decode(&step.frames[0]).unwrap();
    assert_eq!(closed.message_type, MessageType::ChannelClosed);
    assert_eq!((closed.sequence_number, closed.flags), (0, FLAGS_CONTROL));
    let payload = ChannelClosed::from_json(&closed.payload).unwrap();
    assert_eq!(payload.message_id, closed.message_id.to_string());
    assert_eq!(payload.created_date, (T0_UNIX_MS + 1).to_string());
    assert_eq!(payload.message_type, "channel_closed");
    assert_eq!(payload.schema_version, 1);

    let step = client.on_frame(&step.frames[0], t0).unwrap();
    assert!(step.frames.is_empty(), "not acknowledged");
    match &step.events[..] {
        [Event::ChannelClosed(c)] => {
            assert_eq!(c.session_id, "TestUserA-0123456789abcdef0");
            assert_eq!(c.destination_id, "i-0885b2e35926f1fb3");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(client.finished(), Some(&Finished::Closed { by_peer: true }));
    assert_eq!(
        client.send_flag(Flag::TerminateSession, t0).unwrap_err(),
        SendError::Finished
    );
    assert!(client.poll_timers(t0 + Duration::from_secs(60)).is_empty());
}

#[test]
fn client_flags_and_sizes_reach_the_agent() {
    let (t0, mut agent, mut client) = sessions();
    let frames = agent.start(&shell_request(), "", t0).unwrap().frames;
    let _ = shuttle(&mut agent, &mut client, frames, t0);
    let mut frames = client
        .send_size(
            SizeData {
                cols: 200,
                rows: 50,
            },
            t0,
        )
        .unwrap()
        .frames;
    frames.extend(client.send_flag(Flag::TerminateSession, t0).unwrap().frames);
    let mut events = Vec::new();
    for frame in frames {
        events.extend(agent.on_frame(&frame, t0).unwrap().events);
    }
    match &events[..] {
        [Event::Data(size), Event::Data(flag)] => {
            assert_eq!(
                size.size().unwrap(),
                SizeData {
                    cols: 200,
                    rows: 50
                }
            );
            assert_eq!(flag.flag().unwrap(), Flag::TerminateSession);
        }
        other => panic!("{other:?}"),
    }
}
