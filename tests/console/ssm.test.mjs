// Unit tests of the browser's Session Manager client (web/ssm.js) with node:test, over a
// fake WebSocket the test plays the service's side of: what a real socket never shows
// (reordering, duplicates, damaged frames, lost acknowledgements) and the resume and reload
// paths frame by frame. The browser tests (run.mjs) drive the same code against the real
// server and agent.  Run: node --test tests/console/ssm.test.mjs
import assert from "node:assert/strict";
import crypto from "node:crypto";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

// The socket the client opens: records what it sends; the test delivers frames and closes it.
class FakeWebSocket {
  static OPEN = 1;
  static opened = [];
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.sent = [];
    FakeWebSocket.opened.push(this);
    setTimeout(() => { this.readyState = 1; this.onopen && this.onopen(); }, 0);
  }
  send(data) { this.sent.push(typeof data === "string" ? data : new Uint8Array(data)); }
  close() {
    if (this.readyState === 3) return;
    this.readyState = 3;
    setTimeout(() => this.onclose && this.onclose(), 0);
  }
  deliver(frame) { this.onmessage({ data: frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) }); }
  frames() { return this.sent.filter((f) => typeof f !== "string").map((f) => decode(f)); }
}
globalThis.WebSocket = FakeWebSocket;
await import(pathToFileURL(path.join(ROOT, "web/ssm.js")).href);
const { Channel, Refused, sha256, encode, decode } = globalThis.PortcullisSsm;

const utf8 = new TextEncoder();
const text = (bytes) => new TextDecoder().decode(bytes);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const out = (seq, payloadType, payload) => encode("output_stream_data", seq, seq === 0 ? 1 : 0, payloadType, typeof payload === "string" ? utf8.encode(payload) : payload);
const ack = (seq) => encode("acknowledge", 0, 3, 0, utf8.encode(JSON.stringify({
  AcknowledgedMessageType: "input_stream_data", AcknowledgedMessageId: "", AcknowledgedMessageSequenceNumber: seq, IsSequentialMessage: true,
})));
const HANDSHAKE = JSON.stringify({
  AgentVersion: "3.3.0.0",
  RequestedClientActions: [{ ActionType: "SessionType", ActionParameters: { SessionType: "Standard_Stream", Properties: null } }],
});

// A channel past its handshake, with what it printed and how it ended.
async function connected(extra) {
  FakeWebSocket.opened = [];
  const seen = { output: [], statuses: [], end: null, resumes: 0 };
  const opts = {
    url: "ws://host/v1/data-channel/s-1?role=publish_subscribe",
    token: "token-1",
    onOutput: (b) => seen.output.push(text(b)),
    onStatus: (s) => seen.statuses.push(s),
    onEnd: (e) => { seen.end = e; },
    resume: async () => { seen.resumes += 1; return "token-" + (seen.resumes + 1); },
    ...extra,
  };
  const channel = new Channel(opts);
  channel.start();
  await sleep(5);
  const ws = FakeWebSocket.opened[0];
  ws.deliver(out(0, 5, HANDSHAKE));
  ws.deliver(ack(0));
  ws.deliver(out(1, 7, JSON.stringify({ HandshakeTimeToComplete: 1000, CustomerMessage: "" })));
  return { channel, ws, seen, opts };
}

const acked = (ws) => ws.frames().filter((f) => f.type === "acknowledge").map((f) => JSON.parse(text(f.payload)).AcknowledgedMessageSequenceNumber);
const inputs = (ws) => ws.frames().filter((f) => f.type === "input_stream_data");

test("SHA-256 matches Node's for every padding case, and FIPS 180-2's vectors", () => {
  assert.equal(Buffer.from(sha256(utf8.encode("abc"))).toString("hex"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  assert.equal(Buffer.from(sha256(new Uint8Array())).toString("hex"), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  for (let n = 0; n < 300; n++) {
    const b = crypto.randomBytes(n);
    assert.equal(Buffer.from(sha256(new Uint8Array(b))).toString("hex"), crypto.createHash("sha256").update(b).digest("hex"), `length ${n}`);
  }
});

test("a frame is laid out at AWS's offsets, and a damaged one does not decode", () => {
  const f = encode("input_stream_data", 7, 0, 1, utf8.encode("ls\r"));
  const v = new DataView(f.buffer);
  assert.equal(f.length, 123);
  assert.equal(v.getUint32(0), 116);
  assert.equal(String.fromCharCode(...f.subarray(4, 36)), "input_stream_data".padEnd(32, " "));
  assert.equal(v.getUint32(36), 1);
  assert.ok(Math.abs(Number(v.getBigUint64(40)) - Date.now()) < 5000);
  assert.equal(v.getBigInt64(48), 7n);
  assert.deepEqual([...f.subarray(80, 112)], [...crypto.createHash("sha256").update("ls\r").digest()]);
  assert.equal(v.getUint32(112), 1);
  assert.equal(v.getUint32(116), 3);
  const m = decode(f);
  assert.equal(m.type, "input_stream_data");
  assert.equal(m.seq, 7);
  // The id: wire bytes 64..72 are the UUID's second half.
  assert.equal(m.id.replace(/-/g, ""), Buffer.from([...f.subarray(72, 80), ...f.subarray(64, 72)]).toString("hex"));
  assert.match(m.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  for (const damage of [(g) => { g[121] ^= 1; }, (g) => { g[3] = 117; }, (g) => { g[4] = 0x7a; }, (g) => { g[119] = 9; }]) {
    const g = f.slice();
    damage(g);
    assert.equal(decode(g), null);
  }
  assert.equal(decode(f.subarray(0, 119)), null);
});

test("opens with OpenDataChannel, answers the handshake, holds input until it completes", async () => {
  FakeWebSocket.opened = [];
  const channel = new Channel({ url: "ws://h/v1/data-channel/s", token: "tok", clientVersion: "t/1", onOutput() {}, onStatus() {}, onEnd() {}, resume: async () => "x" });
  channel.start();
  channel.sendSize(120, 40);
  channel.sendInput("early");
  await sleep(5);
  const ws = FakeWebSocket.opened[0];
  const open = JSON.parse(ws.sent[0]);
  assert.equal(open.TokenValue, "tok");
  assert.equal(open.MessageSchemaVersion, "1.0");
  assert.equal(open.ClientVersion, "t/1");
  assert.equal(ws.sent.length, 1, "nothing but OpenDataChannel before the handshake");
  ws.deliver(out(0, 5, HANDSHAKE));
  assert.deepEqual(acked(ws), [0]);
  const [response] = inputs(ws);
  assert.equal(response.seq, 0);
  assert.equal(response.payloadType, 6);
  assert.deepEqual(JSON.parse(text(response.payload)), {
    ClientVersion: "t/1", ProcessedClientActions: [{ ActionType: "SessionType", ActionStatus: 1, ActionResult: null, Error: "" }], Errors: null,
  });
  assert.equal(inputs(ws).length, 1, "input held until HandshakeComplete");
  ws.deliver(out(1, 7, JSON.stringify({ HandshakeTimeToComplete: 5, CustomerMessage: "" })));
  const sent = inputs(ws).slice(1);
  assert.deepEqual(sent.map((f) => [f.seq, f.payloadType, text(f.payload)]), [[1, 3, '{"cols":120,"rows":40}'], [2, 1, "early"]]);
  assert.equal(channel.state, "connected");
  channel.detach();
});

test("KMS encryption and port sessions are declined in the handshake", async () => {
  FakeWebSocket.opened = [];
  const channel = new Channel({ url: "ws://h/x", token: "t", onOutput() {}, onStatus() {}, onEnd() {}, resume: async () => "x" });
  channel.start();
  await sleep(5);
  const ws = FakeWebSocket.opened[0];
  ws.deliver(out(0, 5, JSON.stringify({ AgentVersion: "3.3.0.0", RequestedClientActions: [
    { ActionType: "KMSEncryption", ActionParameters: { KMSKeyId: "k" } },
    { ActionType: "SessionType", ActionParameters: { SessionType: "Port" } },
    { ActionType: "Mystery" },
  ] })));
  const r = JSON.parse(text(inputs(ws)[0].payload));
  assert.deepEqual(r.ProcessedClientActions.map((a) => a.ActionStatus), [2, 2, 3]);
  assert.equal(r.Errors.length, 3);
  channel.detach();
});

test("output is delivered once and in order: a reorder buffer, duplicates acknowledged again, damaged frames ignored", async () => {
  const { channel, ws, seen } = await connected();
  ws.deliver(out(4, 1, "d"));
  ws.deliver(out(3, 1, "c"));
  assert.deepEqual(seen.output, [], "nothing before the gap fills");
  ws.deliver(out(3, 1, "c"));       // a copy of a buffered one
  ws.deliver(out(2, 1, "b"));
  ws.deliver(out(2, 1, "b"));       // a copy of a delivered one
  const damaged = out(5, 1, "e");
  damaged[damaged.length - 1] ^= 0xff;
  ws.deliver(damaged);
  assert.deepEqual(seen.output, ["b", "c", "d"]);
  assert.deepEqual(acked(ws), [0, 1, 4, 3, 3, 2, 2], "every stream message acknowledged, the damaged one not");
  ws.deliver(out(5, 1, "e"));
  assert.deepEqual(seen.output, ["b", "c", "d", "e"]);
  channel.detach();
});

test("an unacknowledged message is resent on the timer, and no more once acknowledged", async () => {
  const { channel, ws } = await connected();
  ws.deliver(ack(1)); // HandshakeResponse took 0; acknowledge nothing else
  channel.sendInput("x");
  const first = inputs(ws).filter((f) => f.seq === 1);
  assert.equal(first.length, 1);
  await sleep(450);
  const copies = inputs(ws).filter((f) => f.seq === 1);
  assert.ok(copies.length >= 2, `resent (${copies.length} copies)`);
  assert.ok(copies.every((c) => text(c.payload) === "x"));
  ws.deliver(ack(1));
  const n = inputs(ws).length;
  await sleep(450);
  assert.equal(inputs(ws).length, n, "nothing resent after the acknowledgement");
  channel.detach();
});

test("a dropped socket resumes: new token, same sequence numbers, no handshake, unacknowledged input resent, nothing delivered twice", async () => {
  const { channel, ws, seen } = await connected();
  ws.deliver(out(2, 1, "before"));
  channel.sendInput("typed-1");        // seq 1, never acknowledged
  ws.close();
  await sleep(20);
  assert.equal(channel.state, "reconnecting");
  channel.sendInput("typed-2");        // seq 2, typed while away
  await sleep(300);
  assert.equal(seen.resumes, 1);
  const ws2 = FakeWebSocket.opened[1];
  assert.equal(ws2.url, ws.url, "the same stream URL");
  assert.equal(JSON.parse(ws2.sent[0]).TokenValue, "token-2");
  assert.equal(JSON.parse(ws2.sent[0]).ClientId, JSON.parse(ws.sent[0]).ClientId);
  assert.deepEqual(inputs(ws2).map((f) => [f.seq, text(f.payload)]).slice(0, 2), [[1, "typed-1"], [2, "typed-2"]]);
  assert.ok(inputs(ws2).every((f) => f.payloadType !== 6), "no new handshake");
  ws2.deliver(encode("start_publication", 0, 3, 0, new Uint8Array()));
  assert.equal(channel.state, "connected");
  ws2.deliver(out(2, 1, "before"));    // the agent resends what it had no ack for
  ws2.deliver(out(3, 1, "after"));
  assert.deepEqual(seen.output, ["before", "after"]);
  channel.detach();
});

test("a refused resume ends the session with the refusal", async () => {
  const { ws, seen } = await connected({ resume: async () => { throw new Refused("Session s-1 has ended and cannot be resumed."); } });
  ws.close();
  await sleep(400);
  assert.equal(seen.end.reason, "Session s-1 has ended and cannot be resumed.");
  assert.equal(seen.statuses.at(-1), "ended");
});

test("channel_closed ends the session with the agent's text and the exit code", async () => {
  const { ws, seen } = await connected();
  ws.deliver(out(2, 12, "EXIT_CODE: 3"));
  ws.deliver(encode("channel_closed", 0, 3, 0, utf8.encode(JSON.stringify({ SessionId: "s-1", Output: "" }))));
  assert.equal(seen.end.exitCode, 3);
  assert.equal(seen.end.output, "");
  const b = await connected();
  b.ws.deliver(encode("channel_closed", 0, 3, 0, utf8.encode(JSON.stringify({ Output: "The Portcullis agent on this node is stopping." }))));
  assert.equal(b.seen.end.output, "The Portcullis agent on this node is stopping.");
  assert.equal(b.seen.end.exitCode, null);
});

test("detach and restore (a page reload) carry the sequence numbers, unacknowledged input and the reorder buffer over", async () => {
  const { channel, ws, seen, opts } = await connected();
  ws.deliver(out(2, 1, "seen"));
  ws.deliver(out(4, 1, "ahead"));      // acknowledged, waiting for 3
  channel.sendInput("unacked");        // seq 1
  const state = JSON.parse(JSON.stringify(channel.detach()));
  assert.ok(!JSON.stringify(state).includes("token"), "no token in the saved state");
  const after = [];
  const restored = Channel.restore({ ...opts, onOutput: (b) => after.push(text(b)) }, state);
  await sleep(300);
  const ws2 = FakeWebSocket.opened.at(-1);
  assert.notEqual(ws2, ws);
  assert.equal(JSON.parse(ws2.sent[0]).TokenValue, "token-2");
  assert.deepEqual(inputs(ws2).map((f) => [f.seq, text(f.payload)]), [[1, "unacked"]]);
  ws2.deliver(out(2, 1, "seen"));      // a duplicate: not shown again
  ws2.deliver(out(3, 1, "gap"));
  assert.deepEqual(after, ["gap", "ahead"]);
  assert.deepEqual(seen.output, ["seen"]);
  restored.sendInput("next");
  assert.equal(inputs(ws2).at(-1).seq, 2);
  restored.detach();
});

test("a socket that stays silent while input waits is given up and resumed; an idle session is not", async () => {
  const { channel, ws, seen } = await connected({ silenceMs: 250 });
  ws.deliver(ack(0));
  await sleep(400);                     // idle, longer than the silence limit
  channel.sendInput("k");
  await sleep(30);
  ws.deliver(ack(1));
  await sleep(400);
  assert.equal(FakeWebSocket.opened.length, 1, "an idle session followed by a keystroke keeps its socket");
  channel.sendInput("lost");            // never acknowledged: the socket is dead
  await sleep(900);
  assert.ok(FakeWebSocket.opened.length >= 2, "resumed on a new socket");
  assert.equal(seen.resumes >= 1, true);
  assert.ok(inputs(FakeWebSocket.opened[1]).some((f) => text(f.payload) === "lost"));
  channel.detach();
});
