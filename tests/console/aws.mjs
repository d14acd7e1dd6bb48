// A minimal AWS client for test setup: SigV4-signed IAM/EC2 (Query) and SSM (JSON 1.1) calls
// against the server under test, with Node's own crypto (no SDK).
import crypto from "node:crypto";

const sha256 = (data) => crypto.createHash("sha256").update(data).digest("hex");
const hmac = (key, data) => crypto.createHmac("sha256", key).update(data).digest();

// RFC 3986 encoding, as SigV4 wants it.
const enc = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => "%" + c.charCodeAt(0).toString(16).toUpperCase());

export class Aws {
  constructor(endpoint, region, keyId, secret) {
    this.endpoint = endpoint;
    this.region = region;
    this.keyId = keyId;
    this.secret = secret;
  }

  async signed(service, body, extraHeaders) {
    const url = new URL(this.endpoint);
    const amzDate = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    const day = amzDate.slice(0, 8);
    const headers = { host: url.host, "x-amz-date": amzDate, ...extraHeaders };
    const names = Object.keys(headers).map((h) => h.toLowerCase()).sort();
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const canonical = ["POST", "/", "", names.map((n) => `${n}:${String(lower[n]).trim()}\n`).join(""), names.join(";"), sha256(body)].join("\n");
    const scope = `${day}/${this.region}/${service}/aws4_request`;
    const toSign = ["AWS4-HMAC-SHA256", amzDate, scope, sha256(canonical)].join("\n");
    let key = hmac("AWS4" + this.secret, day);
    for (const part of [this.region, service, "aws4_request"]) key = hmac(key, part);
    const signature = crypto.createHmac("sha256", key).update(toSign).digest("hex");
    headers.authorization = `AWS4-HMAC-SHA256 Credential=${this.keyId}/${scope}, SignedHeaders=${names.join(";")}, Signature=${signature}`;
    const reply = await fetch(this.endpoint + "/", { method: "POST", headers, body });
    return { status: reply.status, text: await reply.text() };
  }

  // IAM or EC2 over the Query protocol; returns the XML text, throws on an error.
  async query(service, action, params) {
    const version = service === "ec2" ? "2016-11-15" : "2010-05-08";
    const all = { Action: action, Version: version, ...params };
    const body = Object.keys(all).sort().map((k) => `${enc(k)}=${enc(String(all[k]))}`).join("&");
    const r = await this.signed(service, body, { "content-type": "application/x-www-form-urlencoded; charset=utf-8" });
    if (r.status !== 200) throw new Error(`${service} ${action}: ${r.status} ${r.text}`);
    return r.text;
  }

  // SSM over JSON 1.1; returns { status, body }.
  async ssmRaw(operation, input) {
    const r = await this.signed("ssm", JSON.stringify(input || {}), {
      "content-type": "application/x-amz-json-1.1",
      "x-amz-target": "AmazonSSM." + operation,
    });
    return { status: r.status, body: r.text ? JSON.parse(r.text) : null };
  }

  async ssm(operation, input) {
    const r = await this.ssmRaw(operation, input);
    if (r.status !== 200) throw new Error(`ssm ${operation}: ${r.status} ${JSON.stringify(r.body)}`);
    return r.body;
  }
}

// The value of one XML element in a reply (enough for ids and keys).
export function xmlValue(xml, tag) {
  const m = xml.match(new RegExp(`<${tag}>([^<]*)</${tag}>`));
  if (!m) throw new Error(`no <${tag}> in ${xml}`);
  return m[1];
}
