//! Byte-exact frames and payloads: a frame written out by hand from the field offsets, the
//! values AWS's own tests use (`session-manager-plugin` `src/message/messageparser_test.go`,
//! `amazon-ssm-agent` `agent/session/contracts/agentmessage_test.go`), reproduced with our
//! code, and the `OpenDataChannel` text frame.

use portcullis_stream::message::offset;
use portcullis_stream::{
    AcknowledgeContent, ActionStatus, ActionType, ChannelClosed, ClientMessage, DecodeError,
    HandshakeComplete, HandshakeRequest, HandshakeResponse, MessageId, MessageType,
    OpenDataChannel, OpenError, PayloadType, ProcessedClientAction, SizeData,
};
use serde_json::json;

/// The message id AWS's tests use.
const AWS_MESSAGE_ID: &str = "dd01e56b-ff48-483e-a508-b5f073f31b16";
/// The created date AWS's tests use.
const AWS_CREATED_DATE: u64 = 1503434274948;

fn hex(s: &str) -> Vec<u8> {
    let digits: String = s.split_whitespace().collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).unwrap())
        .collect()
}

/// `TestSerializeAndDeserializeClientMessage` (plugin) and
/// `TestSerializeAndDeserializeAgentMessage` (agent) build this message and check each field
/// after serializing; here is the whole frame, written out from the offsets in the research
/// notes.
fn aws_test_frame(message_type: &str, payload_type: u32) -> Vec<u8> {
    let mut frame = Vec::new();
    frame.extend(hex("00 00 00 74")); // 0: header length 116
    let mut name = message_type.as_bytes().to_vec();
    name.resize(32, b' ');
    frame.extend(name); // 4: message type, space-padded
    frame.extend(hex("00 00 00 01")); // 36: schema version 1
    frame.extend(hex("00 00 01 5e 0b aa 78 84")); // 40: created 1503434274948 ms
    frame.extend(hex("00 00 00 00 00 00 00 01")); // 48: sequence number 1
    frame.extend(hex("00 00 00 00 00 00 00 02")); // 56: flags 2 (FIN)
                                                  // 64: message id dd01e56b-ff48-483e-a508-b5f073f31b16, low half first.
    frame.extend(hex("a5 08 b5 f0 73 f3 1b 16  dd 01 e5 6b ff 48 48 3e"));
    // 80: SHA-256("payload").
    frame.extend(hex(
        "239f59ed55e737c77147cf55ad0c1b030b6d7ee748a7426952f9b852d5a935e5",
    ));
    frame.extend(payload_type.to_be_bytes()); // 112: payload type
    frame.extend(hex("00 00 00 07")); // 116: payload length 7
    frame.extend(b"payload"); // 120: payload
    frame
}

#[test]
fn hand_built_frame_matches_encode_and_decode() {
    let frame = aws_test_frame("input_stream_data", 0);
    assert_eq!(frame.len(), 127);
    let message = ClientMessage {
        message_type: MessageType::InputStreamData,
        schema_version: 1,
        created_date: AWS_CREATED_DATE,
        sequence_number: 1,
        flags: 2,
        message_id: AWS_MESSAGE_ID.parse().unwrap(),
        payload_type: PayloadType::Unset,
        payload: b"payload".to_vec(),
    };
    assert_eq!(message.encode(), frame);
    assert_eq!(message.encoded_len(), frame.len());
    let decoded = ClientMessage::decode(&frame).unwrap();
    assert_eq!(decoded, message);
    assert_eq!(decoded.message_id.to_string(), AWS_MESSAGE_ID);

    // The same with payload type Output (1), as a shell's keystrokes travel.
    let frame = aws_test_frame("input_stream_data", 1);
    assert_eq!(
        &frame[offset::PAYLOAD_TYPE..offset::PAYLOAD_LENGTH],
        &[0, 0, 0, 1]
    );
    let decoded = ClientMessage::decode(&frame).unwrap();
    assert_eq!(decoded.payload_type, PayloadType::Output);
    assert_eq!(decoded.encode(), frame);
}

#[test]
fn offsets_are_aws_offsets() {
    assert_eq!(
        [
            offset::HEADER_LENGTH,
            offset::MESSAGE_TYPE,
            offset::SCHEMA_VERSION,
            offset::CREATED_DATE,
            offset::SEQUENCE_NUMBER,
            offset::FLAGS,
            offset::MESSAGE_ID,
            offset::PAYLOAD_DIGEST,
            offset::PAYLOAD_TYPE,
            offset::PAYLOAD_LENGTH,
            offset::PAYLOAD,
        ],
        [0, 4, 36, 40, 48, 56, 64, 80, 112, 116, 120]
    );
    assert_eq!(
        portcullis_stream::HEADER_LENGTH as usize,
        offset::PAYLOAD_LENGTH
    );
}

#[test]
fn agent_control_channel_types_are_refused() {
    // The agent's test message is an `interactive_shell` (control channel): not ours.
    let frame = aws_test_frame("interactive_shell", 0);
    assert_eq!(
        ClientMessage::decode(&frame),
        Err(DecodeError::UnknownMessageType("interactive_shell".into()))
    );
}

#[test]
fn message_types_are_read_as_aws_trims_them() {
    // NUL padding (AWS trims NULs and whitespace) reads as well as space padding.
    let mut frame = aws_test_frame("acknowledge", 0);
    for b in &mut frame[4 + "acknowledge".len()..36] {
        *b = 0;
    }
    assert_eq!(
        ClientMessage::decode(&frame).unwrap().message_type,
        MessageType::Acknowledge
    );
}

#[test]
fn peek_reads_the_type_alone() {
    for t in MessageType::ALL {
        let frame = aws_test_frame(t.as_str(), 1);
        assert_eq!(MessageType::peek(&frame), Some(t));
        // The digest is not checked: a relay only routes.
        let mut damaged = frame.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert_eq!(MessageType::peek(&damaged), Some(t));
    }
    let good = aws_test_frame("channel_closed", 1);
    let mut long_header = good.clone();
    long_header[3] = 0x78;
    assert_eq!(MessageType::peek(&long_header), None);
    assert_eq!(MessageType::peek(&good[..20]), None);
    assert_eq!(MessageType::peek(&aws_test_frame("not_a_type", 1)), None);
}

#[test]
fn decode_errors() {
    let good = aws_test_frame("output_stream_data", 1);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut v = good.clone();
        f(&mut v);
        ClientMessage::decode(&v)
    };
    assert_eq!(
        with(&|v| v.truncate(0)),
        Err(DecodeError::Truncated { len: 0 })
    );
    assert_eq!(
        with(&|v| v.truncate(119)),
        Err(DecodeError::Truncated { len: 119 })
    );
    assert_eq!(with(&|v| v[3] = 0x78), Err(DecodeError::HeaderLength(120)));
    assert_eq!(
        with(&|v| v.truncate(125)),
        Err(DecodeError::PayloadLength {
            declared: 7,
            actual: 5
        })
    );
    assert_eq!(
        with(&|v| v[119] = 8),
        Err(DecodeError::PayloadLength {
            declared: 8,
            actual: 7
        })
    );
    assert_eq!(with(&|v| v[120] = b'P'), Err(DecodeError::Digest));
    assert_eq!(with(&|v| v[100] ^= 1), Err(DecodeError::Digest));
    assert_eq!(with(&|v| v[40..48].fill(0)), Err(DecodeError::CreatedDate));
    assert_eq!(
        with(&|v| v[4..9].copy_from_slice(b"OUTPU")),
        Err(DecodeError::UnknownMessageType("OUTPUt_stream_data".into()))
    );
    // Error texts, lower-case with the input in backticks.
    assert_eq!(
        DecodeError::UnknownMessageType("x".into()).to_string(),
        "unknown message type `x`"
    );
    assert_eq!(
        DecodeError::Truncated { len: 3 }.to_string(),
        "frame of 3 bytes is shorter than the 120-byte header"
    );
}

#[test]
fn empty_payloads_and_publication_messages_skip_the_digest_as_aws_does() {
    // An empty payload: AWS only checks the digest when the payload length is not 0.
    let mut message = ClientMessage::control(
        MessageType::Acknowledge,
        MessageId::NIL,
        AWS_CREATED_DATE,
        Vec::new(),
    );
    let mut frame = message.encode();
    assert_eq!(frame.len(), 120);
    frame[80..112].fill(0);
    assert_eq!(ClientMessage::decode(&frame).unwrap(), message);

    // start_publication / pause_publication: not validated beyond their structure.
    message.message_type = MessageType::StartPublication;
    message.payload = b"anything".to_vec();
    message.created_date = 0;
    let mut frame = message.encode();
    frame[80..112].fill(0xAB);
    assert_eq!(ClientMessage::decode(&frame).unwrap(), message);
}

#[test]
fn acknowledge_payload_as_the_plugin_writes_it() {
    // TestSerializeAndDeserializeClientMessageWithAcknowledgeContent.
    let content = AcknowledgeContent {
        message_type: "input_stream_data".into(),
        message_id: AWS_MESSAGE_ID.into(),
        sequence_number: 2,
        is_sequential_message: true,
    };
    let json = content.to_json();
    assert_eq!(
        String::from_utf8(json.clone()).unwrap(),
        r#"{"AcknowledgedMessageType":"input_stream_data","AcknowledgedMessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","AcknowledgedMessageSequenceNumber":2,"IsSequentialMessage":true}"#
    );
    let frame = ClientMessage::control(
        MessageType::Acknowledge,
        MessageId::from_random([7; 16]),
        AWS_CREATED_DATE,
        json,
    )
    .encode();
    let decoded = ClientMessage::decode(&frame).unwrap();
    assert_eq!((decoded.sequence_number, decoded.flags), (0, 3));
    assert_eq!(
        AcknowledgeContent::from_json(&decoded.payload).unwrap(),
        content
    );

    // ackMessagePayload: whitespace and missing fields, read as Go reads them.
    let aws = format!(
        "{{\n\t\t\t\"AcknowledgedMessageType\": \"{}\",\n\t\t\t\"AcknowledgedMessageId\":\"{}\"\n\t\t}}",
        "acknowledge", AWS_MESSAGE_ID
    );
    let read = AcknowledgeContent::from_json(aws.as_bytes()).unwrap();
    assert_eq!(read.message_type, "acknowledge");
    assert_eq!(read.message_id, AWS_MESSAGE_ID);
    assert_eq!(read.sequence_number, 0);
    assert!(AcknowledgeContent::from_json(b"payload").is_err());
}

#[test]
fn channel_closed_payloads() {
    // channelClosedPayload (plugin test).
    let aws = format!(
        r#"{{
            "MessageType": "channel_closed",
            "MessageId": "{AWS_MESSAGE_ID}",
            "CreatedDate": "{AWS_CREATED_DATE}",
            "SessionId": "sessionId_01234567890abcedf",
            "SchemaVersion": 1,
            "Output": "payload"
        }}"#
    );
    let read = ChannelClosed::from_json(aws.as_bytes()).unwrap();
    assert_eq!(read.message_type, "channel_closed");
    assert_eq!(read.message_id, AWS_MESSAGE_ID);
    assert_eq!(read.created_date, "1503434274948");
    assert_eq!(read.session_id, "sessionId_01234567890abcedf");
    assert_eq!(read.schema_version, 1);
    assert_eq!(read.output, "payload");
    assert_eq!(read.destination_id, "");

    // TestDeserializeAgentMessageWithChannelClosed marshals this struct; Go's output, in the
    // plugin struct's field order.
    let closed = ChannelClosed {
        message_id: AWS_MESSAGE_ID.into(),
        created_date: "2018-01-01".into(),
        destination_id: "destination-id".into(),
        session_id: "sessionId_01234567890abcedf".into(),
        message_type: "channel_closed".into(),
        schema_version: 1,
        output: String::new(),
    };
    assert_eq!(
        String::from_utf8(closed.to_json()).unwrap(),
        r#"{"MessageId":"dd01e56b-ff48-483e-a508-b5f073f31b16","CreatedDate":"2018-01-01","DestinationId":"destination-id","SessionId":"sessionId_01234567890abcedf","MessageType":"channel_closed","SchemaVersion":1,"Output":""}"#
    );
    // The agent's struct has no Output: it reads as empty.
    let agent = br#"{"MessageType":"channel_closed","MessageId":"x","DestinationId":"i-1","SessionId":"s","SchemaVersion":1,"CreatedDate":"1"}"#;
    assert_eq!(ChannelClosed::from_json(agent).unwrap().output, "");
}

#[test]
fn handshake_payloads() {
    // handshakeReqPayload (plugin test): an unknown action with arbitrary parameters.
    let aws = r#"{
			"AgentVersion": "3.0",
			"RequestedClientActions": [
				{
					"ActionType": "start",
					"ActionParameters": {"name": "richard"}
				}
			]
		}"#;
    let read = HandshakeRequest::from_json(aws.as_bytes()).unwrap();
    assert_eq!(read.agent_version, "3.0");
    assert_eq!(
        read.requested_client_actions[0].action_type,
        ActionType::Other("start".into())
    );
    assert_eq!(
        read.requested_client_actions[0].action_parameters,
        json!({"name": "richard"})
    );
    assert_eq!(read.session_type(), None);

    // handshakeCompletePayload (plugin test): a Go time.Duration in nanoseconds.
    let aws = r#"{
			"HandshakeTimeToComplete": 1000000,
			"CustomerMessage": "Handshake Complete"
		}"#;
    let read = HandshakeComplete::from_json(aws.as_bytes()).unwrap();
    assert_eq!(read.time_to_complete(), std::time::Duration::from_millis(1));
    assert_eq!(read.customer_message, "Handshake Complete");

    // The plugin's response to an action it does not know: status 0 and the status in
    // ActionResult (a bug we read, not write); Errors listed.
    let aws = r#"{"ClientVersion":"1.2.650.0","ProcessedClientActions":[{"ActionType":"SessionType","ActionStatus":1,"ActionResult":null,"Error":""},{"ActionType":"Teleport","ActionStatus":0,"ActionResult":3,"Error":"Unsupported action Teleport"}],"Errors":["Unsupported action Teleport"]}"#;
    let read = HandshakeResponse::from_json(aws.as_bytes()).unwrap();
    assert_eq!(
        read.processed_client_actions[1],
        ProcessedClientAction {
            action_type: ActionType::Other("Teleport".into()),
            action_status: ActionStatus::Unknown,
            action_result: json!(3),
            error: "Unsupported action Teleport".into(),
        }
    );
    assert_eq!(read.failures().len(), 1);
    assert_eq!(String::from_utf8(read.to_json()).unwrap(), aws);

    // A null action list reads as empty, like Go's nil slice.
    let read = HandshakeResponse::from_json(
        br#"{"ClientVersion":"1","ProcessedClientActions":null,"Errors":null}"#,
    )
    .unwrap();
    assert!(read.processed_client_actions.is_empty());
}

#[test]
fn terminal_size_payload() {
    let size = SizeData {
        cols: 300,
        rows: 100,
    };
    assert_eq!(size.to_json(), br#"{"cols":300,"rows":100}"#);
    assert_eq!(
        SizeData::from_json(br#"{"cols":80,"rows":24}"#).unwrap(),
        SizeData { cols: 80, rows: 24 }
    );
}

#[test]
fn open_data_channel_frame() {
    let open = OpenDataChannel::client(
        "6e3a8dc3-8b2b-4c53-8d3e-9b5e2f1a0c11",
        "AAEAAdDZESkS1C2/token",
        "0f4d7c2e-1111-4222-8333-444455556666",
        "1.2.694.0",
    );
    assert_eq!(
        open.to_json(),
        r#"{"MessageSchemaVersion":"1.0","RequestId":"6e3a8dc3-8b2b-4c53-8d3e-9b5e2f1a0c11","TokenValue":"AAEAAdDZESkS1C2/token","ClientId":"0f4d7c2e-1111-4222-8333-444455556666","ClientVersion":"1.2.694.0"}"#
    );
    assert_eq!(OpenDataChannel::parse(&open.to_json()).unwrap(), open);

    // A plugin from before ClientVersion, and the agent's form.
    let old = OpenDataChannel::parse(r#"{"MessageSchemaVersion":"1.0","RequestId":"r-0000000000000001","TokenValue":"t","ClientId":"c"}"#).unwrap();
    assert_eq!(old.client_version, None);
    let agent = OpenDataChannel::parse(r#"{"MessageSchemaVersion":"1.0","RequestId":"r-0000000000000001","TokenValue":"t","ClientInstanceId":"i-0885b2e35926f1fb3","ClientId":"c"}"#).unwrap();
    assert_eq!(
        agent.client_instance_id.as_deref(),
        Some("i-0885b2e35926f1fb3")
    );

    assert!(matches!(
        OpenDataChannel::parse("not json"),
        Err(OpenError::Json(_))
    ));
    assert!(matches!(
        OpenDataChannel::parse(r#"{"MessageSchemaVersion":"1.0","RequestId":"r"}"#),
        Err(OpenError::Json(_))
    ));
    assert_eq!(
        OpenDataChannel::parse(r#"{"MessageSchemaVersion":"1.0","RequestId":"r","TokenValue":""}"#),
        Err(OpenError::Empty("TokenValue"))
    );
}
