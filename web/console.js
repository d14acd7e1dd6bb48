// The console's pages (Nodes, Sessions; the administration pages are in admin.js). Everything shown comes from /console/api/*, which
// runs the same operations as the AWS API for the signed-in principal. Text from the server
// is only ever set with textContent.
"use strict";

let me = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  return new Date(seconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

function toSignIn() {
  location.assign("/console/signin?next=" + encodeURIComponent(location.pathname));
}

async function api(path, options) {
  const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
  if (opts.method === "POST") opts.headers["x-csrf-token"] = me ? me.csrfToken : "";
  const reply = await fetch(path, opts);
  const data = await reply.json().catch(() => ({}));
  if (reply.status === 401) {
    toSignIn();
    throw new Error("not signed in");
  }
  return { ok: reply.ok, status: reply.status, data };
}

// A refusal: AWS's code and message, and the engine's explanation when the server gave it.
function refusal(data, title) {
  return el("div", { class: "error", role: "alert", "data-testid": "refusal" },
    el("div", {}, title ? title + ": " : "", el("span", { class: "code" }, data.code || "Error")),
    el("div", { class: "message", "data-testid": "refusal-message" }, data.message || ""),
    data.explanation
      ? el("details", { open: "" },
          el("summary", {}, "Why (the policy engine's explanation)"),
          el("pre", { "data-testid": "explanation" }, data.explanation))
      : null);
}

function tagText(t) { return t.Key + "=" + t.Value; }

async function nodesPage(main) {
  const params = new URLSearchParams(location.search);
  const filter = el("input", {
    id: "tag-filter", type: "search", placeholder: "Filter by tag: Key=Value or Key",
    "aria-label": "Filter by tag", value: params.get("tag") || "",
  });
  const body = el("div", {});
  const flash = el("div", { id: "flash" });
  main.replaceChildren(
    el("h1", {}, "Nodes"),
    el("div", { class: "toolbar" }, filter, el("span", { class: "muted", id: "node-count" })),
    flash,
    body);
  // Connect: StartSession as the signed-in user; the terminal page gets the one-time token
  // through this tab's sessionStorage, never the URL. A refusal stays on this page.
  const connect = async (id, button) => {
    button.disabled = true;
    flash.replaceChildren(el("div", { class: "muted", role: "status" }, "Starting a session on " + id + "…"));
    const { ok, data } = await api("/console/api/sessions", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ Target: id }),
    }).catch((e) => ({ ok: false, data: { code: "NetworkError", message: String(e.message || e) } }));
    if (ok) {
      sessionStorage.setItem("portcullis.stream." + data.SessionId,
        JSON.stringify({ TokenValue: data.TokenValue, StreamUrl: data.StreamUrl, Target: id }));
      location.assign("/console/terminal?session=" + encodeURIComponent(data.SessionId));
      return;
    }
    flash.replaceChildren(refusal(data, "Connecting to " + id + " was refused"));
    button.disabled = false;
    button.focus();
  };
  const { ok, data } = await api("/console/api/nodes");
  if (!ok) {
    body.replaceChildren(refusal(data, "Listing nodes was refused"));
    return;
  }
  const render = () => {
    const want = filter.value.trim();
    const url = new URL(location.href);
    if (want) url.searchParams.set("tag", want); else url.searchParams.delete("tag");
    history.replaceState(null, "", url);
    const [wk, wv] = want.includes("=") ? [want.slice(0, want.indexOf("=")), want.slice(want.indexOf("=") + 1)] : [want, null];
    const shown = data.nodes.filter((n) => !want || (n.Tags || []).some((t) => t.Key === wk && (wv === null || t.Value === wv)));
    document.getElementById("node-count").textContent = shown.length + " of " + data.nodes.length + " nodes";
    const children = [];
    for (const e of data.tagErrors || []) children.push(refusal(e, "Tags are not shown: " + e.operation + " was refused"));
    if (shown.length === 0) {
      children.push(el("div", { class: "empty" }, data.nodes.length ? "No node has that tag." : "No nodes are registered."));
    } else {
      children.push(el("table", { id: "nodes" },
        el("thead", {}, el("tr", {}, ...["Node ID", "Name", "Platform", "Ping status", "Last ping", "Tags", ""].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...shown.map((n) => el("tr", { "data-node": n.InstanceId },
          el("td", {}, el("a", { href: "/console/node?id=" + encodeURIComponent(n.InstanceId) }, el("code", {}, n.InstanceId))),
          el("td", {}, n.Name),
          el("td", {}, n.PlatformName && n.PlatformName !== n.PlatformType ? n.PlatformType + " (" + n.PlatformName + ")" : n.PlatformType),
          el("td", { class: "status-" + n.PingStatus }, n.PingStatus),
          el("td", {}, when(n.LastPingDateTime)),
          el("td", {}, n.Tags === null ? el("span", { class: "muted" }, "unknown")
            : (n.Tags.length ? el("span", {}, ...n.Tags.map((t) => el("span", { class: "tag" }, tagText(t)))) : el("span", { class: "muted" }, "none"))),
          el("td", { class: "actions" }, el("button", {
            type: "button", class: "primary", "aria-label": "Connect to " + n.InstanceId,
            onclick: (ev) => connect(n.InstanceId, ev.currentTarget),
          }, "Connect")))))));
    }
    body.replaceChildren(...children);
  };
  filter.addEventListener("input", render);
  render();
}

async function sessionsPage(main) {
  const params = new URLSearchParams(location.search);
  const state = params.get("state") === "History" ? "History" : "Active";
  const tab = (name) => el("button", {
    type: "button", role: "tab", id: "tab-" + name.toLowerCase(), "aria-selected": String(name === state),
    onclick: () => { const u = new URL(location.href); u.searchParams.set("state", name); history.pushState(null, "", u); route(); },
  }, name);
  const flash = el("div", { id: "flash" });
  const body = el("div", {});
  main.replaceChildren(el("h1", {}, "Sessions"), el("div", { class: "tabs", role: "tablist" }, tab("Active"), tab("History")), flash, body);
  const load = async () => {
    const { ok, data } = await api("/console/api/sessions?state=" + state);
    if (!ok) {
      body.replaceChildren(refusal(data, "Listing sessions was refused"));
      return;
    }
    if (data.sessions.length === 0) {
      body.replaceChildren(el("div", { class: "empty" }, state === "Active" ? "No active sessions." : "No ended sessions."));
      return;
    }
    const heads = ["Session ID", "Owner", "Node", "Started", "Ended", "Status", "Reason", "Log"];
    if (state === "Active") heads.push("");
    body.replaceChildren(el("table", { id: "sessions" },
      el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", {}, h)))),
      el("tbody", {}, ...data.sessions.map((s) => el("tr", { "data-session": s.SessionId },
        el("td", {}, el("code", {}, s.SessionId)),
        el("td", { class: "mono" }, s.Owner),
        el("td", {}, el("code", {}, s.Target)),
        el("td", {}, when(s.StartDate)),
        el("td", {}, when(s.EndDate)),
        el("td", { class: "status-" + s.Status }, s.Status),
        el("td", {}, s.Reason || ""),
        el("td", {}, el("a", {
          href: "/console/session-log?id=" + encodeURIComponent(s.SessionId), "aria-label": "Log of " + s.SessionId,
        }, "Log")),
        state === "Active" ? el("td", {}, el("button", {
          type: "button", class: "danger", "aria-label": "Terminate " + s.SessionId,
          onclick: (ev) => terminate(s.SessionId, ev.currentTarget),
        }, "Terminate")) : null)))));
  };
  const terminate = async (id, button) => {
    button.disabled = true;
    const { ok, data } = await api("/console/api/sessions/" + encodeURIComponent(id) + "/terminate", { method: "POST" });
    if (ok) {
      flash.replaceChildren(el("div", { class: "notice", role: "status" }, "Session " + id + " was terminated."));
      await load();
    } else {
      flash.replaceChildren(refusal(data, "Terminating " + id + " was refused"));
      button.disabled = false;
    }
  };
  await load();
}

// What a terminal showed, as plain text: escape sequences (colours, cursor moves, titles)
// dropped, backspaces applied, line ends made "\n".
function terminalText(raw) {
  const text = raw
    .replace(/\x1b\][^\x07\x1b]*(\x07|\x1b\\)/g, "")
    .replace(/\x1b\[[0-?]*[ -\/]*[@-~]/g, "")
    .replace(/\x1b[@-Z\\-_]/g, "")
    .replace(/\r+\n/g, "\n")
    .replace(/\r/g, "");
  const out = [];
  for (const ch of text) {
    if (ch === "\b") out.pop();
    else out.push(ch);
  }
  return out.join("");
}

async function sessionLogPage(main) {
  const id = new URLSearchParams(location.search).get("id") || "";
  document.title = "Log of " + id + " · Portcullis";
  const body = el("div", {});
  main.replaceChildren(
    el("h1", {}, "Session log"),
    el("p", {}, el("code", {}, id), " · ", el("a", { href: "/console/sessions?state=History" }, "Sessions")),
    body);
  const url = "/console/api/sessions/" + encodeURIComponent(id) + "/log";
  const { ok, data } = await api(url);
  if (!ok) {
    body.replaceChildren(refusal(data, "Reading the log of " + id + " was refused"));
    return;
  }
  const log = el("pre", { id: "session-log", class: "log" }, terminalText(data.Output));
  const status = el("div", { id: "log-status", role: "status" });
  body.replaceChildren(log, status);
  if (!data.Complete) {
    status.replaceChildren(el("div", { class: "notice" },
      "The first 4 MiB are shown; aws logs get-log-events or portcullis audit session-log read the rest."));
    return;
  }
  if (!data.Active) {
    if (!data.Output) status.replaceChildren(el("div", { class: "empty" }, "Nothing was shown."));
    return;
  }
  // A live session: what it shows next is appended as the server logs it.
  status.replaceChildren(el("div", { class: "notice" }, "Live: following the session."));
  let token = data.NextToken;
  const follow = async () => {
    const next = await api(url + "?token=" + encodeURIComponent(token || ""));
    if (!next.ok) {
      status.replaceChildren(refusal(next.data, "Following the log of " + id + " stopped"));
      return;
    }
    token = next.data.NextToken;
    if (next.data.Output) {
      const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
      log.append(terminalText(next.data.Output));
      if (atEnd) log.scrollTop = log.scrollHeight;
    }
    if (next.data.Active || !next.data.Complete) setTimeout(follow, next.data.Complete ? 2000 : 0);
    else status.replaceChildren(el("div", { class: "notice" }, "The session has ended."));
  };
  setTimeout(follow, 2000);
}

async function route() {
  const main = document.getElementById("main");
  for (const a of document.querySelectorAll(".bar nav a")) {
    if (a.getAttribute("href") === location.pathname) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const pages = {
    "/console/sessions": ["Sessions", sessionsPage],
    "/console/node": [null, nodePage],
    "/console/users": ["Users", usersPage],
    "/console/user": [null, userPage],
    "/console/policy": [null, policyPage],
    "/console/activations": ["Activations", activationsPage],
    "/console/session-log": [null, sessionLogPage],
  };
  const [title, page] = pages[location.pathname] || ["Nodes", nodesPage];
  if (title) document.title = title + " · Portcullis";
  await page(main);
  document.body.dataset.ready = "true";
  // A User Timing mark (DevTools' Performance panel shows it): the page is usable.
  if (!performance.getEntriesByName("portcullis:ready").length) performance.mark("portcullis:ready");
}

async function start() {
  const { ok, data } = await api("/console/api/me");
  if (!ok) return;
  me = data;
  document.getElementById("who").textContent = me.name + " · " + me.account;
  document.getElementById("who").title = me.arn + " (signed in with " + me.signedInWith + ")";
  document.getElementById("signout").addEventListener("click", async () => {
    await api("/console/api/signout", { method: "POST" }).catch(() => {});
    location.assign("/console/signin");
  });
  const c = await api("/console/api/capabilities");
  if (c.ok) caps = c.data;
  document.getElementById("nav-users").hidden = !caps.listUsers;
  document.getElementById("nav-activations").hidden = !caps.listActivations;
  window.addEventListener("popstate", route);
  await route();
}

start();
