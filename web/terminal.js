// The terminal page: /console/terminal?session=ID. The Nodes page started the session
// (POST /console/api/sessions) and left its stream URL and one-time token in this tab's
// sessionStorage (never in the URL); this page takes them out, opens xterm.js and drives the
// data channel with web/ssm.js. After a dropped connection it asks the console for a new
// token (ResumeSession) and carries on where it was.
"use strict";

(async function () {
  const $ = (id) => document.getElementById(id);
  const statusEl = $("status");
  const notice = $("notice");
  const params = new URLSearchParams(location.search);
  const sessionId = params.get("session") || "";
  let me = null;

  const LABELS = { connecting: "Connecting…", connected: "Connected", reconnecting: "Reconnecting…", ended: "Session ended" };
  function setStatus(state, detail) {
    statusEl.dataset.state = state;
    statusEl.textContent = LABELS[state] + (detail && state === "reconnecting" ? " (" + detail + ")" : "");
    document.body.dataset.state = state;
  }

  function showNotice(kind, ...children) {
    notice.className = (kind === "error" ? "error" : "notice") + " term-notice";
    notice.setAttribute("role", kind === "error" ? "alert" : "status");
    notice.replaceChildren(...children);
    notice.hidden = false;
  }

  function link(href, text) {
    const a = document.createElement("a");
    a.href = href;
    a.textContent = text;
    return a;
  }

  function text(tag, value, attrs) {
    const node = document.createElement(tag);
    node.textContent = value;
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    return node;
  }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.method === "POST") {
      opts.headers["x-csrf-token"] = me ? me.csrfToken : "";
      if (opts.body) opts.headers["content-type"] = "application/json";
    }
    const reply = await fetch(path, opts);
    const data = await reply.json().catch(() => ({}));
    if (reply.status === 401) {
      location.assign("/console/signin?next=" + encodeURIComponent("/console/nodes"));
      throw new PortcullisSsm.Refused("You are no longer signed in to the console.");
    }
    return { ok: reply.ok, status: reply.status, data };
  }

  function ready() {
    document.body.dataset.ready = "true";
    performance.mark("portcullis:ready"); // User Timing: the page is usable
  }

  $("session-id").textContent = sessionId;
  document.title = (sessionId || "Terminal") + " · Portcullis";

  if (document.body.dataset.terminalAssets !== "present" || typeof Terminal === "undefined" || typeof FitAddon === "undefined") {
    $("no-assets").hidden = false;
    setStatus("ended", "");
    statusEl.textContent = "No terminal in this build";
    ready();
    return;
  }

  const key = "portcullis.stream." + sessionId;
  const grant = JSON.parse(sessionStorage.getItem(key) || "null");
  sessionStorage.removeItem(key); // the token is single-use; a later resume gets a new one
  // What this page left when it was reloaded or navigated away from (see pagehide below).
  const stateKey = "portcullis.state." + sessionId;
  const saved = JSON.parse(sessionStorage.getItem(stateKey) || "null");
  sessionStorage.removeItem(stateKey);
  // The CSRF token is needed only for resume and terminate: fetch it while the terminal opens.
  const meReady = api("/console/api/me").then((r) => { if (r.ok) me = r.data; }).catch(() => {});

  if (!sessionId || !((grant && grant.TokenValue) || (saved && saved.channel))) {
    await meReady;
    setStatus("ended", "");
    showNotice("error",
      text("strong", "This page has no connection to open. "),
      "A browser terminal is opened from the Nodes page, and picked up again only in the same browser tab. ",
      "A session left running ends at its idle timeout, or can be ended from the ",
      link("/console/sessions", "Sessions page"), ".");
    ready();
    return;
  }
  const target = grant ? grant.Target : saved.target;
  const streamUrl = grant ? grant.StreamUrl : saved.streamUrl;
  if (target) $("target").textContent = "on " + target;

  // The data channel's path from the stream URL; scheme and host from this page, so ws: and
  // wss: follow http: and https: and a proxy in front of the server keeps working.
  const stream = new URL(streamUrl, location.href);
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + stream.pathname + stream.search;

  const term = new Terminal({
    cursorBlink: true,
    fontFamily: 'ui-monospace, SFMono-Regular, Menlo, Consolas, "DejaVu Sans Mono", monospace',
    fontSize: 14,
    scrollback: 10000,
    theme: { background: "#0b0f14" },
  });
  const fit = new FitAddon.FitAddon();
  let channel = null; // set below, before any terminal event can arrive
  term.loadAddon(fit);
  term.open($("terminal"));
  fit.fit();

  const terminateButton = $("terminate");
  const options = {
    url,
    token: grant ? grant.TokenValue : "",
    clientVersion: "portcullis-web/1",
    onOutput: (bytes) => term.write(bytes),
    onStatus: setStatus,
    resume: async () => {
      let reply;
      try {
        await meReady;
        reply = await api("/console/api/sessions/" + encodeURIComponent(sessionId) + "/resume", { method: "POST" });
      } catch (e) {
        if (e instanceof PortcullisSsm.Refused) throw e;
        throw new Error("the console is unreachable"); // retried
      }
      if (reply.ok) return reply.data.TokenValue;
      if (reply.status >= 500) throw new Error(reply.data.message || "server error"); // retried
      const d = reply.data;
      throw new PortcullisSsm.Refused("Resuming the session was refused: " + (d.code || "Error") + ": " + (d.message || ""));
    },
    onEnd: (end) => {
      let why;
      if (end.output) why = end.output;
      else if (end.reason) why = end.reason;
      else if (end.exitCode !== null && end.exitCode !== undefined) why = "The shell exited with code " + end.exitCode + ".";
      else why = "The session was terminated.";
      term.write("\r\n\r\nExiting session with sessionId: " + sessionId + ".\r\n");
      term.options.disableStdin = true;
      term.options.cursorBlink = false;
      terminateButton.hidden = true;
      statusEl.title = why;
      showNotice(end.reason ? "error" : "info",
        text("strong", "Session ended. "), text("span", why, { "data-testid": "end-reason" }), " ",
        link("/console/nodes", "Back to Nodes"));
    },
  };

  const showSize = () => { $("size").textContent = term.cols + "×" + term.rows; };
  term.onData((data) => channel.sendInput(data));
  term.onBinary((data) => channel.sendInput(Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff)));
  term.onResize(({ cols, rows }) => {
    channel.sendSize(cols, rows);
    showSize();
  });
  // The window (and so the terminal's box) changed size: fit the grid to it; onResize above
  // tells the node when the columns or rows changed.
  let pending = false;
  new ResizeObserver(() => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fit.fit();
    });
  }).observe($("terminal"));

  terminateButton.hidden = false;
  terminateButton.addEventListener("click", async () => {
    terminateButton.disabled = true;
    await meReady;
    const { ok, data } = await api("/console/api/sessions/" + encodeURIComponent(sessionId) + "/terminate", { method: "POST" });
    if (!ok) {
      terminateButton.disabled = false;
      showNotice("error", text("strong", "Terminating was refused: "), text("span", (data.code || "Error") + ": " + (data.message || "")));
    }
    // On success the node closes the channel, and onEnd says so.
  });

  // A reload (or leaving and coming back in this tab) carries on with the same session: the
  // channel's state goes to sessionStorage and the next page resumes from it. The screen's
  // old contents are not kept; nothing the shell prints afterwards is lost.
  if (grant) {
    channel = new PortcullisSsm.Channel(options);
    channel.start();
  } else {
    term.write("\x1b[2m[Resuming session " + sessionId + "…]\x1b[0m\r\n");
    channel = PortcullisSsm.Channel.restore(options, saved.channel);
  }
  window.addEventListener("pagehide", () => {
    if (channel.ended || channel.detached) return;
    sessionStorage.setItem(stateKey, JSON.stringify({ target, streamUrl, channel: channel.detach() }));
  });
  window.addEventListener("pageshow", (ev) => {
    if (ev.persisted && channel.detached && !channel.ended) {
      sessionStorage.removeItem(stateKey);
      channel.reattach();
    }
  });
  channel.sendSize(term.cols, term.rows);
  showSize();
  term.focus();
  ready();
})();
