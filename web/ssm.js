// A Session Manager data-channel client for the browser: the client's side of the protocol
// in docs/CHANNELS.md and ../shared/research/ssm-protocol.md, written for Portcullis (the
// Rust side is crates/stream; AWS's session-manager-plugin is the reference behaviour).
//
// One Channel per session:
//   - a WebSocket to the session's stream URL; first a text frame, OpenDataChannel, with the
//     one-time token; then binary messages with the 116-byte header (message.rs);
//   - the handshake: answer the agent's HandshakeRequest (payload type 5) with a
//     HandshakeResponse (6); keystrokes and sizes are held until HandshakeComplete (7);
//   - every output_stream_data is acknowledged, delivered once and in order (a reorder
//     buffer holds messages that arrive ahead of a gap; duplicates are acknowledged again
//     and dropped);
//   - our own input_stream_data messages stay buffered until acknowledged; the oldest is
//     resent on a timer (Jacobson/Karels RTO, 200 ms at first, at most 1 s, as AWS's);
//   - when the socket drops, `resume()` (the console's ResumeSession) gives a new token, the
//     socket is reopened, sequence numbers are kept (no new handshake) and everything not
//     acknowledged is resent, so nothing typed or printed is lost;
//   - channel_closed ends the session, with the agent's text and the exit code if it sent one.
//
// Every outgoing message carries the SHA-256 of its payload (the agent refuses a wrong one),
// computed here in plain JavaScript: crypto.subtle exists only in secure contexts (https or
// localhost) and is asynchronous, and the console must also work over plain http.
"use strict";

(function (global) {
  // ---- SHA-256 (FIPS 180-4) ---------------------------------------------------------------

  const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
  ]);

  function sha256(data) {
    const bitLength = data.length * 8;
    // Message, 0x80, zeros, then the 64-bit length: a multiple of 64 bytes.
    const padded = new Uint8Array(((data.length + 8) >> 6) * 64 + 64);
    padded.set(data);
    padded[data.length] = 0x80;
    const view = new DataView(padded.buffer);
    view.setUint32(padded.length - 8, Math.floor(bitLength / 0x100000000));
    view.setUint32(padded.length - 4, bitLength >>> 0);
    const h = new Uint32Array([
      0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]);
    const w = new Uint32Array(64);
    for (let block = 0; block < padded.length; block += 64) {
      for (let i = 0; i < 16; i++) w[i] = view.getUint32(block + i * 4);
      for (let i = 16; i < 64; i++) {
        const a = w[i - 15], b = w[i - 2];
        const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
        const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
        w[i] = (w[i - 16] + s0 + w[i - 7] + s1) >>> 0;
      }
      let [a, b, c, d, e, f, g, hh] = h;
      for (let i = 0; i < 64; i++) {
        const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
        const ch = (e & f) ^ (~e & g);
        const t1 = (hh + S1 + ch + K[i] + w[i]) >>> 0;
        const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
        const maj = (a & b) ^ (a & c) ^ (b & c);
        const t2 = (S0 + maj) >>> 0;
        hh = g; g = f; f = e; e = (d + t1) >>> 0;
        d = c; c = b; b = a; a = (t1 + t2) >>> 0;
      }
      h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    const out = new Uint8Array(32);
    const outView = new DataView(out.buffer);
    for (let i = 0; i < 8; i++) outView.setUint32(i * 4, h[i]);
    return out;
  }

  // ---- the frame --------------------------------------------------------------------------

  const HEADER_LENGTH = 116;
  const PAYLOAD_OFFSET = 120;
  const INPUT = "input_stream_data";
  const OUTPUT = "output_stream_data";
  const ACK = "acknowledge";
  const CLOSED = "channel_closed";
  const START = "start_publication";
  const PAUSE = "pause_publication";
  const TYPES = [INPUT, OUTPUT, ACK, CLOSED, START, PAUSE];
  const PT = {
    OUTPUT: 1, ERROR: 2, SIZE: 3, HANDSHAKE_REQUEST: 5, HANDSHAKE_RESPONSE: 6,
    HANDSHAKE_COMPLETE: 7, STDERR: 11, EXIT_CODE: 12,
  };
  const FLAGS_CONTROL = 3; // SYN | FIN, on messages outside the stream

  const utf8 = new TextEncoder();
  const fromUtf8 = new TextDecoder();

  // A random (version 4) UUID's 16 bytes. crypto.getRandomValues works on plain http too.
  function newId() {
    const b = new Uint8Array(16);
    crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    return b;
  }

  function uuidText(b) {
    const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  }

  function sameBytes(a, b) {
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
    return true;
  }

  // The bytes of one message. The id goes on the wire with its 8-byte halves swapped, as
  // AWS's putUuid writes it.
  function encode(type, seq, flags, payloadType, payload) {
    const id = newId();
    const frame = new Uint8Array(PAYLOAD_OFFSET + payload.length);
    const v = new DataView(frame.buffer);
    v.setUint32(0, HEADER_LENGTH);
    for (let i = 0; i < 32; i++) frame[4 + i] = i < type.length ? type.charCodeAt(i) : 0x20;
    v.setUint32(36, 1);
    v.setBigUint64(40, BigInt(Date.now()));
    v.setBigInt64(48, BigInt(seq));
    v.setBigUint64(56, BigInt(flags));
    frame.set(id.subarray(8, 16), 64);
    frame.set(id.subarray(0, 8), 72);
    frame.set(sha256(payload), 80);
    v.setUint32(112, payloadType);
    v.setUint32(116, payload.length);
    frame.set(payload, PAYLOAD_OFFSET);
    return frame;
  }

  // One message, or null for a frame that does not read (it is then ignored: a refused
  // frame changes nothing). The checks are those of crates/stream's decode.
  function decode(frame) {
    if (frame.length < PAYLOAD_OFFSET) return null;
    const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
    if (v.getUint32(0) !== HEADER_LENGTH) return null;
    const type = String.fromCharCode(...frame.subarray(4, 36)).replace(/[\s\0]+$/, "");
    if (!TYPES.includes(type)) return null;
    const payload = frame.subarray(PAYLOAD_OFFSET);
    if (v.getUint32(116) !== payload.length) return null;
    const publication = type === START || type === PAUSE;
    if (!publication) {
      if (v.getBigUint64(40) === 0n) return null;
      if (!sameBytes(sha256(payload), frame.subarray(80, 112))) return null;
    }
    const id = new Uint8Array(16);
    id.set(frame.subarray(72, 80), 0);
    id.set(frame.subarray(64, 72), 8);
    return {
      type,
      seq: Number(v.getBigInt64(48)),
      id: uuidText(id),
      payloadType: v.getUint32(112),
      payload,
    };
  }

  function json(bytes) {
    try {
      return JSON.parse(fromUtf8.decode(bytes));
    } catch (_) {
      return null;
    }
  }

  // ---- the channel ------------------------------------------------------------------------

  const MAX_PAYLOAD = 1024;           // AWS's chunk size for keystrokes
  const OUTGOING_CAPACITY = 10000;    // messages held or unacknowledged (the plugin's)
  const INCOMING_CAPACITY = 10000;    // reorder window
  const MIN_RESEND_MS = 100;
  const MAX_RTO_MS = 1000;
  const MAX_RESENDS = 3000;
  const SILENCE_MS = 20000;           // unacknowledged data and nothing heard: the socket is dead (opts.silenceMs)
  const RECONNECT_ATTEMPTS = 8;
  const SESSION_TYPES = ["Standard_Stream", "InteractiveCommands", "NonInteractiveCommands"];

  // A refusal from resume() that retrying cannot fix (the session ended, access denied).
  class Refused extends Error {}

  class Channel {
    // opts: url (ws: or wss:), token, clientVersion, resume() → Promise<token> (throws
    // Refused when the session cannot be resumed), and callbacks onOutput(bytes),
    // onStatus(state, detail) with state connecting|connected|reconnecting|ended,
    // onEnd({ reason, output, exitCode }).
    constructor(opts) {
      this.opts = opts;
      this.clientId = uuidText(newId());
      this.nextSeq = 0;
      this.expected = 0;
      this.unacked = [];   // { seq, frame, sentAt (ms or null), retransmitted, attempts }
      this.held = [];      // [payloadType, bytes] until the handshake completes
      this.reorder = new Map();
      this.handshake = "awaiting-request";
      this.paused = false;
      this.ended = false;
      this.ws = null;
      this.exitCode = null;
      this.srtt = null;
      this.rttvar = 0;
      this.rto = 200;
      this.lastHeard = Date.now();
      this.openedAt = 0;
      this.failedAttempts = 0;
      this.stats = { reconnects: 0, resent: 0, duplicates: 0, reordered: 0 };
    }

    start() {
      this.status("connecting", "");
      this.open(this.opts.token, false);
      this.timer = setInterval(() => this.tick(), MIN_RESEND_MS);
    }

    status(state, detail) {
      this.state = state;
      if (this.opts.onStatus) this.opts.onStatus(state, detail);
    }

    open(token, resumed) {
      const ws = new WebSocket(this.opts.url);
      ws.binaryType = "arraybuffer";
      this.ws = ws;
      this.heardOnThisSocket = false;
      ws.onopen = () => {
        if (this.ws !== ws) return;
        this.openedAt = Date.now();
        ws.send(JSON.stringify({
          MessageSchemaVersion: "1.0",
          RequestId: uuidText(newId()),
          TokenValue: token,
          ClientId: this.clientId,
          ClientVersion: this.opts.clientVersion || "portcullis-web",
        }));
        // Resumed: no new handshake; everything the agent has not acknowledged goes again.
        if (resumed) this.resendAll();
      };
      ws.onmessage = (ev) => {
        if (this.ws !== ws || typeof ev.data === "string") return;
        this.onFrame(new Uint8Array(ev.data));
      };
      ws.onclose = () => {
        if (this.ws !== ws) return;
        this.ws = null;
        if (!this.ended && !this.detached) this.reconnect();
      };
    }

    async reconnect() {
      if (this.reconnecting || this.ended || this.detached) return;
      this.reconnecting = true;
      this.stats.reconnects += 1;
      let delay = 150;
      try {
        while (!this.ended && !this.detached) {
          this.failedAttempts += 1;
          if (this.failedAttempts > RECONNECT_ATTEMPTS) {
            this.finish({ reason: "The connection was lost and could not be resumed." });
            return;
          }
          this.status("reconnecting", `attempt ${this.failedAttempts} of ${RECONNECT_ATTEMPTS}`);
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 5000);
          let token;
          try {
            token = await this.opts.resume();
          } catch (e) {
            if (e instanceof Refused) {
              this.finish({ reason: e.message });
              return;
            }
            continue; // the console API is unreachable too: try again
          }
          if (this.ended || this.detached) return;
          this.open(token, true);
          return;
        }
      } finally {
        this.reconnecting = false;
      }
    }

    onFrame(frame) {
      const m = decode(frame);
      if (!m || this.ended) return;
      this.lastHeard = Date.now();
      if (!this.heardOnThisSocket) {
        this.heardOnThisSocket = true;
        this.failedAttempts = 0;
        if (this.handshake === "complete") this.status("connected", "");
      }
      switch (m.type) {
        case ACK: return this.onAck(json(m.payload));
        case OUTPUT: return this.onStream(m);
        case CLOSED: {
          const closed = json(m.payload) || {};
          return this.finish({ output: closed.Output || "" });
        }
        case START:
          this.paused = false;
          return this.resendAll();
        case PAUSE:
          this.paused = true;
          return undefined;
        default:
          return undefined; // input_stream_data is ours to send, not to receive
      }
    }

    onAck(ack) {
      if (!ack || typeof ack.AcknowledgedMessageSequenceNumber !== "number") return;
      const i = this.unacked.findIndex((p) => p.seq === ack.AcknowledgedMessageSequenceNumber);
      if (i < 0) return;
      const [p] = this.unacked.splice(i, 1);
      if (!p.retransmitted && p.sentAt !== null) this.sampleRtt(Date.now() - p.sentAt);
    }

    sampleRtt(r) {
      if (this.srtt === null) {
        this.srtt = r;
        this.rttvar = r / 2;
      } else {
        this.rttvar = 0.75 * this.rttvar + 0.25 * Math.abs(this.srtt - r);
        this.srtt = 0.875 * this.srtt + 0.125 * r;
      }
      this.rto = Math.min(MAX_RTO_MS, this.srtt + Math.max(10, 4 * this.rttvar));
    }

    onStream(m) {
      if (m.seq < this.expected) {
        this.stats.duplicates += 1;
        this.acknowledge(m);
      } else if (m.seq === this.expected) {
        this.acknowledge(m);
        this.expected += 1;
        this.deliver(m);
        while (!this.ended && this.reorder.has(this.expected)) {
          const next = this.reorder.get(this.expected);
          this.reorder.delete(this.expected);
          this.expected += 1;
          this.deliver(next);
        }
      } else if (this.reorder.has(m.seq)) {
        this.stats.duplicates += 1;
        this.acknowledge(m);
      } else if (m.seq - this.expected < INCOMING_CAPACITY) {
        this.stats.reordered += 1;
        this.acknowledge(m);
        this.reorder.set(m.seq, { ...m, payload: m.payload.slice() });
      } // else: too far ahead, dropped unacknowledged; the agent resends it later
    }

    acknowledge(m) {
      const content = {
        AcknowledgedMessageType: m.type,
        AcknowledgedMessageId: m.id,
        AcknowledgedMessageSequenceNumber: m.seq,
        IsSequentialMessage: true,
      };
      this.write(encode(ACK, 0, FLAGS_CONTROL, 0, utf8.encode(JSON.stringify(content))));
    }

    deliver(m) {
      switch (m.payloadType) {
        case PT.HANDSHAKE_REQUEST: return this.onHandshakeRequest(json(m.payload));
        case PT.HANDSHAKE_COMPLETE: {
          if (this.handshake === "complete") return undefined;
          this.handshake = "complete";
          const done = json(m.payload) || {};
          if (done.CustomerMessage) this.opts.onOutput(utf8.encode(done.CustomerMessage + "\r\n"));
          this.releaseHeld();
          this.status("connected", "");
          return undefined;
        }
        default:
          if (this.handshake === "awaiting-request") {
            // An agent without the handshake (the plugin's legacy path): the session starts
            // with its first message.
            this.handshake = "complete";
            this.releaseHeld();
            this.status("connected", "");
          }
          if (m.payloadType === PT.OUTPUT || m.payloadType === PT.STDERR || m.payloadType === PT.ERROR) {
            this.opts.onOutput(m.payload);
          } else if (m.payloadType === PT.EXIT_CODE) {
            const match = /^EXIT_CODE: (-?\d+)/.exec(fromUtf8.decode(m.payload));
            if (match) this.exitCode = Number(match[1]);
          }
          return undefined;
      }
    }

    onHandshakeRequest(request) {
      if (this.handshake !== "awaiting-request") return;
      const processed = [];
      const errors = [];
      for (const action of (request && request.RequestedClientActions) || []) {
        let status = 1;
        let error = "";
        if (action.ActionType === "SessionType") {
          const type = action.ActionParameters && action.ActionParameters.SessionType;
          if (!SESSION_TYPES.includes(type)) {
            status = 2;
            error = `the web console does not support session type \`${type}\``;
          }
        } else if (action.ActionType === "KMSEncryption") {
          status = 2;
          error = "KMS encryption is not supported by the web console";
        } else {
          status = 3;
          error = `unsupported action \`${action.ActionType}\``;
        }
        if (error) errors.push(error);
        processed.push({ ActionType: action.ActionType, ActionStatus: status, ActionResult: null, Error: error });
      }
      this.agentVersion = request && request.AgentVersion;
      this.handshake = "awaiting-complete";
      const response = {
        ClientVersion: this.opts.clientVersion || "portcullis-web",
        ProcessedClientActions: processed,
        Errors: errors.length ? errors : null,
      };
      this.enqueue(PT.HANDSHAKE_RESPONSE, utf8.encode(JSON.stringify(response)));
    }

    // Keystrokes or pasted text (a string) or raw bytes, cut into 1024-byte messages.
    sendInput(data) {
      const bytes = typeof data === "string" ? utf8.encode(data) : data;
      for (let at = 0; at < bytes.length; at += MAX_PAYLOAD) {
        if (!this.queue(PT.OUTPUT, bytes.slice(at, at + MAX_PAYLOAD))) return false;
      }
      return true;
    }

    sendSize(cols, rows) {
      return this.queue(PT.SIZE, utf8.encode(JSON.stringify({ cols, rows })));
    }

    queue(payloadType, bytes) {
      if (this.ended) return false;
      if (this.unacked.length + this.held.length >= OUTGOING_CAPACITY) return false;
      if (this.handshake !== "complete") this.held.push([payloadType, bytes]);
      else this.enqueue(payloadType, bytes);
      return true;
    }

    releaseHeld() {
      const held = this.held;
      this.held = [];
      for (const [payloadType, bytes] of held) this.enqueue(payloadType, bytes);
    }

    enqueue(payloadType, bytes) {
      const seq = this.nextSeq;
      this.nextSeq += 1;
      const pending = { seq, frame: encode(INPUT, seq, 0, payloadType, bytes), sentAt: null, retransmitted: false, attempts: 0, queuedAt: Date.now() };
      this.unacked.push(pending);
      if (!this.paused && this.write(pending.frame)) pending.sentAt = Date.now();
    }

    write(frame) {
      const ws = this.ws;
      if (!ws || ws.readyState !== WebSocket.OPEN) return false;
      ws.send(frame);
      return true;
    }

    resendAll() {
      const now = Date.now();
      for (const p of this.unacked) {
        if (!this.write(p.frame)) return;
        if (p.sentAt !== null) {
          p.retransmitted = true;
          this.stats.resent += 1;
        }
        p.sentAt = now;
        p.attempts = 0;
      }
    }

    // Every 100 ms: resend the oldest unacknowledged message once its RTO has passed, and
    // give up on a socket that stays silent while data waits.
    tick() {
      if (this.ended || this.detached || this.paused || !this.ws || this.ws.readyState !== WebSocket.OPEN) return;
      const now = Date.now();
      const oldest = this.unacked[0];
      if (!oldest) return;
      // Silence is counted from the last frame heard, the socket's opening, or the oldest
      // message's queueing, whichever is latest: an idle session is not a dead socket.
      if (now - Math.max(this.lastHeard, this.openedAt, oldest.queuedAt) > (this.opts.silenceMs || SILENCE_MS)) {
        this.ws.close();
        return;
      }
      if (oldest.sentAt !== null && now - oldest.sentAt < Math.max(this.rto, MIN_RESEND_MS)) return;
      if (oldest.attempts >= MAX_RESENDS) {
        this.finish({ reason: "The node stopped acknowledging what was sent to it." });
        return;
      }
      if (this.write(oldest.frame)) {
        oldest.retransmitted = oldest.sentAt !== null;
        oldest.sentAt = now;
        oldest.attempts += 1;
        this.stats.resent += 1;
        this.rto = Math.min(MAX_RTO_MS, this.rto * 2);
      }
    }

    finish(end) {
      if (this.ended) return;
      this.ended = true;
      clearInterval(this.timer);
      const result = { output: "", reason: "", exitCode: this.exitCode, ...end };
      this.status("ended", result.reason || result.output);
      if (this.opts.onEnd) this.opts.onEnd(result);
      // Let the server close first (it does once the agent's side is gone).
      const ws = this.ws;
      if (ws) setTimeout(() => ws.close(), 500);
    }

    // The page is going away (reload, navigation): stop without ending the session on the
    // node, and return what a new page needs to carry on: the sequence numbers, our
    // unacknowledged and held messages, and messages received ahead of a gap (acknowledged,
    // so the agent will not send them again). No token: the new page asks for one.
    detach() {
      this.detached = true;
      clearInterval(this.timer);
      const ws = this.ws;
      this.ws = null;
      if (ws) ws.close();
      const b64 = (bytes) => btoa(String.fromCharCode(...bytes));
      return {
        clientId: this.clientId,
        nextSeq: this.nextSeq,
        expected: this.expected,
        handshake: this.handshake,
        agentVersion: this.agentVersion || "",
        exitCode: this.exitCode,
        unacked: this.unacked.map((p) => b64(p.frame)),
        held: this.held.map(([type, bytes]) => [type, b64(bytes)]),
        reorder: [...this.reorder.values()].map((m) => ({ ...m, payload: b64(m.payload) })),
      };
    }

    // The same page came back (the browser's back/forward cache): carry on.
    reattach() {
      if (!this.detached || this.ended) return;
      this.detached = false;
      this.timer = setInterval(() => this.tick(), MIN_RESEND_MS);
      this.reconnect();
    }

    // A new page carrying on from detach()'s state: ResumeSession, the same socket path, no
    // handshake, everything unacknowledged resent.
    static restore(opts, state) {
      const c = new Channel(opts);
      const bytes = (text) => Uint8Array.from(atob(text), (ch) => ch.charCodeAt(0));
      c.clientId = state.clientId;
      c.nextSeq = state.nextSeq;
      c.expected = state.expected;
      c.handshake = state.handshake;
      c.agentVersion = state.agentVersion;
      c.exitCode = state.exitCode;
      c.unacked = state.unacked.map((f) => {
        const frame = bytes(f);
        return { seq: Number(new DataView(frame.buffer).getBigInt64(48)), frame, sentAt: null, retransmitted: true, attempts: 0, queuedAt: Date.now() };
      });
      c.held = state.held.map(([type, b]) => [type, bytes(b)]);
      for (const m of state.reorder) c.reorder.set(m.seq, { ...m, payload: bytes(m.payload) });
      c.timer = setInterval(() => c.tick(), MIN_RESEND_MS);
      c.reconnect();
      return c;
    }
  }

  global.PortcullisSsm = { Channel, Refused, sha256, encode, decode };
})(globalThis);
