//! The binary frame every data-channel message travels in: AWS's `ClientMessage` (in
//! `session-manager-plugin`, `src/message/clientmessage.go`) and `AgentMessage` (in
//! `amazon-ssm-agent`, `agent/session/contracts/agentmessage.go`) are the same layout.
//!
//! All integers are big-endian. The header is 120 bytes and the payload follows it:
//!
//! | offset | length | field |
//! |---:|---:|---|
//! | 0 | 4 | header length, always 116 (the offset of the payload-length field) |
//! | 4 | 32 | message type, ASCII, right-padded with spaces |
//! | 36 | 4 | schema version (1) |
//! | 40 | 8 | created date, milliseconds since the Unix epoch |
//! | 48 | 8 | sequence number (signed) |
//! | 56 | 8 | flags (bit 0 SYN, bit 1 FIN) |
//! | 64 | 16 | message id: a UUID with its two 8-byte halves swapped |
//! | 80 | 32 | SHA-256 of the payload |
//! | 112 | 4 | payload type |
//! | 116 | 4 | payload length |
//! | 120 | n | payload |

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// The value of the header-length field: the offset of the payload-length field.
pub const HEADER_LENGTH: u32 = 116;

/// Where the payload starts; also the length of a frame with an empty payload.
pub const PAYLOAD_OFFSET: usize = 120;

/// Byte offsets of the header fields.
pub mod offset {
    /// Header length (u32).
    pub const HEADER_LENGTH: usize = 0;
    /// Message type (32 bytes of space-padded ASCII).
    pub const MESSAGE_TYPE: usize = 4;
    /// Schema version (u32).
    pub const SCHEMA_VERSION: usize = 36;
    /// Created date (u64, epoch milliseconds).
    pub const CREATED_DATE: usize = 40;
    /// Sequence number (i64).
    pub const SEQUENCE_NUMBER: usize = 48;
    /// Flags (u64).
    pub const FLAGS: usize = 56;
    /// Message id (16 bytes, halves swapped).
    pub const MESSAGE_ID: usize = 64;
    /// Payload digest (32 bytes of SHA-256).
    pub const PAYLOAD_DIGEST: usize = 80;
    /// Payload type (u32).
    pub const PAYLOAD_TYPE: usize = 112;
    /// Payload length (u32).
    pub const PAYLOAD_LENGTH: usize = 116;
    /// First payload byte.
    pub const PAYLOAD: usize = 120;
}

const MESSAGE_TYPE_LEN: usize = 32;

/// Flag bit 0: the recipient should take this sequence number as the first of the stream.
/// The agent sets it on its sequence number 0.
pub const FLAG_SYN: u64 = 1;
/// Flag bit 1: the final message of a sequence.
pub const FLAG_FIN: u64 = 2;
/// The flags AWS puts on messages outside the stream (acknowledge, `agent_session_state`).
pub const FLAGS_CONTROL: u64 = FLAG_SYN | FLAG_FIN;

/// The schema version every message carries.
pub const SCHEMA_VERSION: u32 = 1;

/// The message types of the data channel between a client and an agent.
///
/// The agent also knows control-channel types (`interactive_shell`, `agent_job`, …) and
/// `agent_session_state`; those never reach a Session Manager client and are refused here as
/// unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// `input_stream_data`: client → agent, sequenced and acknowledged.
    InputStreamData,
    /// `output_stream_data`: agent → client, sequenced and acknowledged.
    OutputStreamData,
    /// `acknowledge`: acknowledges one stream message, named by its sequence number.
    Acknowledge,
    /// `channel_closed`: the session is over.
    ChannelClosed,
    /// `start_publication`: the other end is reachable again; resume sending.
    StartPublication,
    /// `pause_publication`: the other end is unreachable; stop sending until told.
    PausePublication,
}

impl MessageType {
    /// Every message type, in a fixed order.
    pub const ALL: [MessageType; 6] = [
        MessageType::InputStreamData,
        MessageType::OutputStreamData,
        MessageType::Acknowledge,
        MessageType::ChannelClosed,
        MessageType::StartPublication,
        MessageType::PausePublication,
    ];

    /// The name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::InputStreamData => "input_stream_data",
            MessageType::OutputStreamData => "output_stream_data",
            MessageType::Acknowledge => "acknowledge",
            MessageType::ChannelClosed => "channel_closed",
            MessageType::StartPublication => "start_publication",
            MessageType::PausePublication => "pause_publication",
        }
    }

    /// The type with this wire name (already trimmed), if it is one of ours.
    pub fn from_wire(name: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The type of a frame with a 116-byte header, read without decoding the rest (no
    /// digest, no copy): what a relay needs to see. `None` for anything
    /// [`ClientMessage::decode`] would refuse on its type or header length.
    pub fn peek(frame: &[u8]) -> Option<MessageType> {
        if read_u32(frame, offset::HEADER_LENGTH)? != HEADER_LENGTH {
            return None;
        }
        let name = frame.get(offset::MESSAGE_TYPE..offset::MESSAGE_TYPE + MESSAGE_TYPE_LEN)?;
        let name = std::str::from_utf8(name).ok()?;
        MessageType::from_wire(name.trim_matches(|c: char| c == '\0' || c.is_whitespace()))
    }

    /// `start_publication` and `pause_publication`: AWS skips validating these (no digest or
    /// created-date check), and so do we.
    pub const fn is_publication(self) -> bool {
        matches!(
            self,
            MessageType::StartPublication | MessageType::PausePublication
        )
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a stream message's payload holds (`PayloadType` in AWS's code).
///
/// Messages outside the stream (acknowledge, channel_closed) leave the field at zero, which
/// reads as [`PayloadType::Unset`]. Values AWS has not defined are kept as
/// [`PayloadType::Other`], so decoding and re-encoding is lossless.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    /// 0: no payload type (control messages).
    Unset,
    /// 1: terminal bytes (output from the agent, keystrokes from the client).
    Output,
    /// 2: an error text.
    Error,
    /// 3: terminal size, JSON `{"cols":C,"rows":R}`.
    Size,
    /// 4: parameters.
    Parameter,
    /// 5: the agent's handshake request (JSON).
    HandshakeRequest,
    /// 6: the client's handshake response (JSON).
    HandshakeResponse,
    /// 7: the agent's handshake-complete message (JSON).
    HandshakeComplete,
    /// 8: KMS encryption challenge from the agent (not supported here).
    EncChallengeRequest,
    /// 9: KMS encryption challenge answer (not supported here).
    EncChallengeResponse,
    /// 10: a 4-byte big-endian flag, see [`crate::Flag`].
    Flag,
    /// 11: standard error, when the agent separates it from standard output.
    StdErr,
    /// 12: the command's exit code, as text `EXIT_CODE: <n>`.
    ExitCode,
    /// Any other value.
    Other(u32),
}

impl PayloadType {
    /// The value on the wire.
    pub const fn to_u32(self) -> u32 {
        match self {
            PayloadType::Unset => 0,
            PayloadType::Output => 1,
            PayloadType::Error => 2,
            PayloadType::Size => 3,
            PayloadType::Parameter => 4,
            PayloadType::HandshakeRequest => 5,
            PayloadType::HandshakeResponse => 6,
            PayloadType::HandshakeComplete => 7,
            PayloadType::EncChallengeRequest => 8,
            PayloadType::EncChallengeResponse => 9,
            PayloadType::Flag => 10,
            PayloadType::StdErr => 11,
            PayloadType::ExitCode => 12,
            PayloadType::Other(n) => n,
        }
    }

    /// The payload type for a wire value.
    pub const fn from_u32(n: u32) -> PayloadType {
        match n {
            0 => PayloadType::Unset,
            1 => PayloadType::Output,
            2 => PayloadType::Error,
            3 => PayloadType::Size,
            4 => PayloadType::Parameter,
            5 => PayloadType::HandshakeRequest,
            6 => PayloadType::HandshakeResponse,
            7 => PayloadType::HandshakeComplete,
            8 => PayloadType::EncChallengeRequest,
            9 => PayloadType::EncChallengeResponse,
            10 => PayloadType::Flag,
            11 => PayloadType::StdErr,
            12 => PayloadType::ExitCode,
            n => PayloadType::Other(n),
        }
    }
}

/// A message id: a UUID, kept here in its canonical (RFC 4122) byte order.
///
/// On the wire AWS writes the least-significant 8 bytes first and then the most-significant
/// 8 (`putUuid`/`getUuid` in both the plugin and the agent); [`MessageId::to_wire`] and
/// [`MessageId::from_wire`] do that swap. The text form is lower-case and hyphenated, as the
/// `AcknowledgedMessageId` of an acknowledgement carries it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct MessageId(u128);

impl MessageId {
    /// The nil UUID.
    pub const NIL: MessageId = MessageId(0);

    /// From the 16 bytes in canonical order.
    pub const fn from_bytes(bytes: [u8; 16]) -> MessageId {
        MessageId(u128::from_be_bytes(bytes))
    }

    /// The 16 bytes in canonical order.
    pub const fn to_bytes(self) -> [u8; 16] {
        self.0.to_be_bytes()
    }

    /// A version-4 (random) UUID from 16 random bytes: the version and variant bits are set.
    pub const fn from_random(bytes: [u8; 16]) -> MessageId {
        let mut n = u128::from_be_bytes(bytes);
        // Version nibble (high half of byte 6) = 4.
        n = (n & !(0xF_u128 << 76)) | (0x4_u128 << 76);
        // Variant (top two bits of byte 8) = 0b10.
        n = (n & !(0x3_u128 << 62)) | (0x2_u128 << 62);
        MessageId(n)
    }

    /// The 16 bytes as they appear on the wire: bytes 8..16 first, then 0..8.
    pub const fn to_wire(self) -> [u8; 16] {
        self.0.rotate_left(64).to_be_bytes()
    }

    /// The id from its 16 wire bytes.
    pub const fn from_wire(wire: [u8; 16]) -> MessageId {
        MessageId(u128::from_be_bytes(wire).rotate_left(64))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            n >> 96,
            (n >> 80) & 0xFFFF,
            (n >> 64) & 0xFFFF,
            (n >> 48) & 0xFFFF,
            n & 0xFFFF_FFFF_FFFF
        )
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MessageId({self})")
    }
}

/// A message id that is not a hyphenated UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a UUID (expected 8-4-4-4-12 hex digits)")]
pub struct ParseMessageIdError(pub String);

impl FromStr for MessageId {
    type Err = ParseMessageIdError;

    /// Parses the hyphenated form (`dd01e56b-ff48-483e-a508-b5f073f31b16`), either case.
    fn from_str(s: &str) -> Result<MessageId, ParseMessageIdError> {
        let err = || ParseMessageIdError(s.to_owned());
        let groups: Vec<&str> = s.split('-').collect();
        let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
        if lengths != [8, 4, 4, 4, 12] {
            return Err(err());
        }
        let mut n: u128 = 0;
        for c in groups.concat().chars() {
            let digit = c.to_digit(16).ok_or_else(err)?;
            n = (n << 4) | u128::from(digit);
        }
        Ok(MessageId(n))
    }
}

/// One data-channel message, decoded. See the module docs for the layout.
///
/// The header length, payload length and payload digest are not stored: [`encode`]
/// computes them and [`decode`] checks them.
///
/// [`encode`]: ClientMessage::encode
/// [`decode`]: ClientMessage::decode
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    /// The message type.
    pub message_type: MessageType,
    /// Schema version; 1 in every message AWS sends.
    pub schema_version: u32,
    /// When the message was created, in milliseconds since the Unix epoch. AWS refuses 0.
    pub created_date: u64,
    /// Position in the sender's stream (stream messages); 0 on control messages.
    pub sequence_number: i64,
    /// [`FLAG_SYN`], [`FLAG_FIN`].
    pub flags: u64,
    /// A random id. Acknowledgements echo it, but receivers match on the sequence number.
    pub message_id: MessageId,
    /// What the payload holds.
    pub payload_type: PayloadType,
    /// The payload bytes.
    pub payload: Vec<u8>,
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than the 120-byte header.
    #[error("frame of {len} bytes is shorter than the {PAYLOAD_OFFSET}-byte header")]
    Truncated {
        /// The frame's length.
        len: usize,
    },
    /// The header-length field is not 116.
    #[error("header length is {0}, expected {HEADER_LENGTH}")]
    HeaderLength(u32),
    /// The message type is not one of the data channel's.
    #[error("unknown message type `{0}`")]
    UnknownMessageType(String),
    /// The payload-length field does not match the bytes after the header.
    #[error("payload length field says {declared} bytes but {actual} follow the header")]
    PayloadLength {
        /// The payload-length field.
        declared: u32,
        /// The bytes actually after the header.
        actual: usize,
    },
    /// The payload's SHA-256 is not the digest in the header.
    #[error("payload digest does not match the SHA-256 of the payload")]
    Digest,
    /// The created-date field is 0, which AWS refuses (`CreatedDate is missing`).
    #[error("created date is missing (zero)")]
    CreatedDate,
}

impl ClientMessage {
    /// A message outside the stream (acknowledge, channel_closed, start/pause_publication),
    /// in the shape AWS sends them: schema 1, sequence number 0, flags SYN|FIN (3), payload
    /// type unset.
    pub fn control(
        message_type: MessageType,
        message_id: MessageId,
        created_date: u64,
        payload: Vec<u8>,
    ) -> ClientMessage {
        ClientMessage {
            message_type,
            schema_version: SCHEMA_VERSION,
            created_date,
            sequence_number: 0,
            flags: FLAGS_CONTROL,
            message_id,
            payload_type: PayloadType::Unset,
            payload,
        }
    }

    /// The length of the encoded frame.
    pub fn encoded_len(&self) -> usize {
        PAYLOAD_OFFSET.saturating_add(self.payload.len())
    }

    /// The frame bytes: header (with header length 116, the payload length and the payload's
    /// SHA-256) followed by the payload.
    ///
    /// A payload longer than `u32::MAX` bytes cannot be described by the header; its length
    /// field is written as `u32::MAX` and any receiver refuses the frame. Nothing in this
    /// crate builds such a payload (stream data is cut into [`crate::Config::max_payload_size`]
    /// chunks).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(&HEADER_LENGTH.to_be_bytes());
        let mut name = [b' '; MESSAGE_TYPE_LEN];
        for (slot, byte) in name.iter_mut().zip(self.message_type.as_str().bytes()) {
            *slot = byte;
        }
        out.extend_from_slice(&name);
        out.extend_from_slice(&self.schema_version.to_be_bytes());
        out.extend_from_slice(&self.created_date.to_be_bytes());
        out.extend_from_slice(&self.sequence_number.to_be_bytes());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&self.message_id.to_wire());
        out.extend_from_slice(&Sha256::digest(&self.payload));
        out.extend_from_slice(&self.payload_type.to_u32().to_be_bytes());
        let len = u32::try_from(self.payload.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.payload);
        out
    }

    /// Reads one frame, refusing anything malformed.
    ///
    /// Checks, in order: at least 120 bytes; header length 116; a known message type (the
    /// 32-byte field with surrounding spaces and NULs trimmed, as AWS trims it); the
    /// payload-length field equals the bytes after the header; then, except for
    /// `start_publication`/`pause_publication` (which AWS does not validate either), the
    /// SHA-256 digest when the payload is non-empty and a non-zero created date.
    ///
    /// AWS's readers are looser (any header length, payload taken as "everything after the
    /// header", no length check); every frame AWS writes passes these checks.
    pub fn decode(frame: &[u8]) -> Result<ClientMessage, DecodeError> {
        let truncated = || DecodeError::Truncated { len: frame.len() };
        if frame.len() < PAYLOAD_OFFSET {
            return Err(truncated());
        }
        let header_length = read_u32(frame, offset::HEADER_LENGTH).ok_or_else(truncated)?;
        if header_length != HEADER_LENGTH {
            return Err(DecodeError::HeaderLength(header_length));
        }
        let name = frame
            .get(offset::MESSAGE_TYPE..offset::MESSAGE_TYPE + MESSAGE_TYPE_LEN)
            .ok_or_else(truncated)?;
        let name = String::from_utf8_lossy(name);
        let name = name.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        let message_type = MessageType::from_wire(name)
            .ok_or_else(|| DecodeError::UnknownMessageType(name.escape_debug().to_string()))?;

        let payload = frame.get(PAYLOAD_OFFSET..).ok_or_else(truncated)?;
        let declared = read_u32(frame, offset::PAYLOAD_LENGTH).ok_or_else(truncated)?;
        if usize::try_from(declared).ok() != Some(payload.len()) {
            return Err(DecodeError::PayloadLength {
                declared,
                actual: payload.len(),
            });
        }

        let created_date = read_u64(frame, offset::CREATED_DATE).ok_or_else(truncated)?;
        if !message_type.is_publication() {
            let digest = frame
                .get(offset::PAYLOAD_DIGEST..offset::PAYLOAD_TYPE)
                .ok_or_else(truncated)?;
            if !payload.is_empty() && Sha256::digest(payload).as_slice() != digest {
                return Err(DecodeError::Digest);
            }
            if created_date == 0 {
                return Err(DecodeError::CreatedDate);
            }
        }

        let id: [u8; 16] = frame
            .get(offset::MESSAGE_ID..offset::PAYLOAD_DIGEST)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(truncated)?;
        Ok(ClientMessage {
            message_type,
            schema_version: read_u32(frame, offset::SCHEMA_VERSION).ok_or_else(truncated)?,
            created_date,
            sequence_number: read_u64(frame, offset::SEQUENCE_NUMBER)
                .map(|n| i64::from_be_bytes(n.to_be_bytes()))
                .ok_or_else(truncated)?,
            flags: read_u64(frame, offset::FLAGS).ok_or_else(truncated)?,
            message_id: MessageId::from_wire(id),
            payload_type: PayloadType::from_u32(
                read_u32(frame, offset::PAYLOAD_TYPE).ok_or_else(truncated)?,
            ),
            payload: payload.to_vec(),
        })
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_be_bytes(raw))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = bytes.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_be_bytes(raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_text_and_wire_forms() {
        let id: MessageId = "dd01e56b-ff48-483e-a508-b5f073f31b16".parse().unwrap();
        assert_eq!(id.to_string(), "dd01e56b-ff48-483e-a508-b5f073f31b16");
        assert_eq!(
            id.to_bytes(),
            [
                0xdd, 0x01, 0xe5, 0x6b, 0xff, 0x48, 0x48, 0x3e, 0xa5, 0x08, 0xb5, 0xf0, 0x73, 0xf3,
                0x1b, 0x16
            ]
        );
        assert_eq!(
            id.to_wire(),
            [
                0xa5, 0x08, 0xb5, 0xf0, 0x73, 0xf3, 0x1b, 0x16, 0xdd, 0x01, 0xe5, 0x6b, 0xff, 0x48,
                0x48, 0x3e
            ]
        );
        assert_eq!(MessageId::from_wire(id.to_wire()), id);
        assert_eq!(
            "DD01E56B-FF48-483E-A508-B5F073F31B16"
                .parse::<MessageId>()
                .unwrap(),
            id
        );
        for bad in [
            "",
            "dd01e56bff48483ea508b5f073f31b16",
            "dd01e56b-ff48-483e-a508-b5f073f31b1g",
            "dd01e56b-ff48-483e-a508b-5f073f31b16",
            "dd01e56b-ff48-483e-a508-b5f073f31b16-",
        ] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn random_ids_are_version_4() {
        let id = MessageId::from_random([0xFF; 16]);
        assert_eq!(id.to_string(), "ffffffff-ffff-4fff-bfff-ffffffffffff");
        let id = MessageId::from_random([0; 16]);
        assert_eq!(id.to_string(), "00000000-0000-4000-8000-000000000000");
    }

    #[test]
    fn payload_types_round_trip() {
        for n in 0..40 {
            assert_eq!(PayloadType::from_u32(n).to_u32(), n);
        }
        assert_eq!(PayloadType::from_u32(12), PayloadType::ExitCode);
    }

    #[test]
    fn message_type_names() {
        for t in MessageType::ALL {
            assert_eq!(MessageType::from_wire(t.as_str()), Some(t));
            assert!(t.as_str().len() <= MESSAGE_TYPE_LEN);
        }
        assert_eq!(MessageType::from_wire("agent_session_state"), None);
    }
}
