// The console's administration pages: a node (tags, who can open a shell there), users
// (tags, groups, policies, which nodes each can reach), the policy editor (validated as you
// type), activations. Uses el/api/refusal/when from console.js. What a control may do is
// decided by the server (the same IAM operation as the AWS API); `caps` only decides which
// controls are worth showing.
"use strict";

let caps = {};

function qs(name) { return new URLSearchParams(location.search).get(name); }
function link(href, text, attrs) { return el("a", Object.assign({ href }, attrs || {}), text); }
function postJson(path, body) {
  return api(path, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body || {}) });
}
function notice(text) { return el("div", { class: "notice", role: "status" }, text); }

// ---- "what changes?": the access diff of a change, before it is applied ---------------------

function diffList(data) {
  const row = (p, kind) => el("li", { "data-change": kind, "data-user": p.after.user, "data-node": p.after.node },
    el("span", { class: kind === "gained" ? "gain" : "loss" }, kind === "gained" ? "+ gains" : "− loses"), " ",
    el("strong", {}, p.after.user), " a shell on ", el("code", {}, p.after.node), " ",
    el("span", { class: "muted" }, kind === "gained"
      ? "(allowed by " + (p.after.deciding.map((d) => d.label).join("; ") || "?") + ")"
      : "(was allowed by " + (p.before.deciding.map((d) => d.label).join("; ") || "?") + "; now " + p.after.decision + ")"));
  const items = [...data.gained.map((p) => row(p, "gained")), ...data.lost.map((p) => row(p, "lost"))];
  return el("div", { id: "what-changes", "data-testid": "what-changes" },
    el("div", { class: "muted" }, "What changes for " + data.action + ": " + data.gained.length + " (user, node) pairs gain access, " + data.lost.length + " lose it."),
    items.length ? el("ul", { class: "diff" }, ...items) : el("div", { class: "empty" }, "Nobody gains or loses a shell."));
}

// A change waiting for confirmation: what it is, what it would do to access (for callers
// allowed to simulate every user's policies), Apply and Cancel. `apply` returns the reply.
function confirmChange(slot, words, change, apply, after) {
  const preview = el("div", {}, caps.analyzeAccess ? el("div", { class: "muted" }, "Working out what changes…") : null);
  const status = el("div", { id: "pending-status" });
  const applyButton = el("button", { type: "button", class: "primary", id: "pending-apply" }, "Apply");
  const cancel = el("button", { type: "button", id: "pending-cancel", onclick: () => slot.replaceChildren() }, "Cancel");
  const panel = el("div", { class: "panel pending", id: "pending", role: "region", "aria-label": "Pending change" },
    el("div", { id: "pending-text" }, el("strong", {}, "Change: "), words), preview, status,
    el("div", { class: "toolbar" }, applyButton, cancel));
  applyButton.addEventListener("click", async () => {
    applyButton.disabled = true;
    const { ok, data } = await apply();
    if (ok) { slot.replaceChildren(notice("Done: " + words)); await after(); return; }
    status.replaceChildren(refusal(data, "The change was refused"));
    applyButton.disabled = false;
  });
  slot.replaceChildren(panel);
  applyButton.focus();
  if (caps.analyzeAccess && change) {
    postJson("/console/api/what-changes", change).then(({ ok, data }) => {
      preview.replaceChildren(ok ? diffList(data) : refusal(data, "What changes? could not be answered"));
    });
  }
}

// Tags with a remove button each and an add form, both through confirmChange.
function tagEditor(tags, editable, onAdd, onRemove, whatIf, slot, after) {
  const list = el("div", { id: "tag-list" }, ...(tags.length ? tags.map((t) => el("span", { class: "tag", "data-key": t.Key },
    t.Key + "=" + t.Value,
    editable ? el("button", { type: "button", class: "tag-x", "aria-label": "Remove tag " + t.Key,
      onclick: () => confirmChange(slot, "remove tag " + t.Key, whatIf({ RemoveTags: [t.Key] }), () => onRemove(t.Key), after) }, "×") : null))
    : [el("span", { class: "muted" }, "none")]));
  if (!editable) return list;
  const key = el("input", { id: "tag-key", placeholder: "Key", "aria-label": "Tag key", required: "" });
  const value = el("input", { id: "tag-value", placeholder: "Value", "aria-label": "Tag value" });
  const form = el("form", { id: "tag-add", class: "toolbar" }, key, value, el("button", { type: "submit" }, "Add tag…"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const tag = { Key: key.value.trim(), Value: value.value };
    if (!tag.Key) return;
    confirmChange(slot, "add tag " + tag.Key + "=" + tag.Value, whatIf({ AddTags: [tag] }), () => onAdd(tag), after);
  });
  return el("div", {}, list, form);
}

function answersTable(id, answers, first) {
  if (!answers.length) return el("div", { class: "empty" }, "Nobody.");
  return el("table", { id },
    el("thead", {}, el("tr", {}, ...[first, "Decision", "Deciding statement"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...answers.map((a) => el("tr", { "data-user": a.user, "data-node": a.node, "data-decision": a.decision },
      el("td", {}, first === "User" ? link("/console/user?name=" + encodeURIComponent(a.user), a.user) : link("/console/node?id=" + encodeURIComponent(a.node), a.node)),
      el("td", { class: "decision-" + a.decision }, a.decision),
      el("td", { class: "mono" }, a.deciding.length ? a.deciding.map((d) => d.label).join("; ") : (a.reason || ""))))));
}

// ---- a node ---------------------------------------------------------------------------------

async function nodePage(main) {
  const id = qs("id") || "";
  document.title = id + " · Portcullis";
  const slot = el("div", { id: "flash" });
  const tagsBox = el("div", { id: "node-tags" });
  const who = el("div", { id: "who-can-box" });
  main.replaceChildren(el("h1", {}, "Node ", el("code", {}, id)), slot,
    el("section", { class: "panel" }, el("h2", {}, "Tags"), tagsBox),
    el("section", { class: "panel" }, el("h2", {}, "Who can open a shell here"), who));
  const load = async () => {
    const { ok, data } = await api("/console/api/nodes");
    if (!ok) { tagsBox.replaceChildren(refusal(data, "Reading the node was refused")); return; }
    const n = data.nodes.find((x) => x.InstanceId === id);
    if (!n) { tagsBox.replaceChildren(el("div", { class: "empty" }, "No such node.")); return; }
    const base = "/console/api/nodes/" + encodeURIComponent(id) + "/tags/";
    tagsBox.replaceChildren(
      el("div", { class: "muted" }, n.Name + " · " + n.PingStatus),
      n.Tags === null ? el("span", { class: "muted" }, "unknown (reading tags was refused)")
        : tagEditor(n.Tags, !!caps.tagNodes,
          (tag) => postJson(base + "add", { Tags: [tag] }),
          (k) => postJson(base + "remove", { TagKeys: [k] }),
          (c) => Object.assign({ Node: id }, c), slot, load));
    if (!caps.analyzeAccess) {
      who.replaceChildren(el("div", { class: "muted" }, "Shown to principals allowed iam:SimulatePrincipalPolicy on every user."));
      return;
    }
    const w = await api("/console/api/nodes/" + encodeURIComponent(id) + "/who-can");
    if (!w.ok) { who.replaceChildren(refusal(w.data, "Who can was refused")); return; }
    const shown = w.data.answers.filter((a) => a.decision !== "implicit_deny");
    who.replaceChildren(
      el("div", { class: "muted", id: "who-can-count" }, w.data.allowed + " of " + w.data.users + " users may " + w.data.action + " here (and the account root always may)."),
      answersTable("who-can", shown, "User"));
  };
  await load();
}

// ---- users --------------------------------------------------------------------------------

async function usersPage(main) {
  document.title = "Users · Portcullis";
  const body = el("div", {});
  main.replaceChildren(el("h1", {}, "Users"), body);
  const { ok, data } = await api("/console/api/users");
  if (!ok) { body.replaceChildren(refusal(data, "Listing users was refused")); return; }
  const list = (xs, f) => xs === null ? el("span", { class: "muted" }, "unknown") : (xs.length ? el("span", {}, ...xs.map(f)) : el("span", { class: "muted" }, "none"));
  body.replaceChildren(el("table", { id: "users" },
    el("thead", {}, el("tr", {}, ...["User", "Tags", "Groups", "Managed policies", "Inline policies"].map((h) => el("th", {}, h)))),
    el("tbody", {}, ...data.users.map((u) => el("tr", { "data-user": u.UserName },
      el("td", {}, link("/console/user?name=" + encodeURIComponent(u.UserName), u.UserName)),
      el("td", {}, list(u.Tags, (t) => el("span", { class: "tag" }, t.Key + "=" + t.Value))),
      el("td", {}, list(u.Groups, (g) => el("span", { class: "tag" }, g))),
      el("td", {}, list(u.AttachedPolicies, (p) => el("div", {}, link("/console/policy?arn=" + encodeURIComponent(p.PolicyArn), p.PolicyName)))),
      el("td", {}, list(u.InlinePolicies, (p) => el("div", {}, link("/console/policy?user=" + encodeURIComponent(u.UserName) + "&name=" + encodeURIComponent(p), p)))))))));
}

async function userPage(main) {
  const name = qs("name") || "";
  document.title = name + " · Portcullis";
  const slot = el("div", { id: "flash" });
  const info = el("div", {});
  const reach = el("div", { id: "what-can-box" });
  main.replaceChildren(el("h1", {}, "User ", name), slot, info,
    el("section", { class: "panel" }, el("h2", {}, "Which nodes this user can reach"), reach));
  const base = "/console/api/users/" + encodeURIComponent(name);
  const load = async () => {
    const { ok, data: u } = await api(base);
    if (!ok) { info.replaceChildren(refusal(u, "Reading the user was refused")); return; }
    const attached = u.AttachedPolicies === null ? el("span", { class: "muted" }, "unknown")
      : el("table", { id: "attached" }, el("tbody", {}, ...u.AttachedPolicies.map((p) => el("tr", { "data-policy": p.PolicyArn },
        el("td", {}, link("/console/policy?arn=" + encodeURIComponent(p.PolicyArn), p.PolicyName)),
        el("td", { class: "mono" }, p.PolicyArn),
        el("td", { class: "actions" }, caps.attachPolicies ? el("button", { type: "button", class: "danger", "aria-label": "Detach " + p.PolicyName,
          onclick: () => confirmChange(slot, "detach " + p.PolicyArn + " from " + name, { User: name, DetachPolicy: p.PolicyArn },
            () => postJson(base + "/detach", { PolicyArn: p.PolicyArn }), load) }, "Detach…") : null)))));
    let attachForm = null;
    if (caps.attachPolicies && caps.listPolicies) {
      const pol = await api("/console/api/policies");
      if (pol.ok) {
        const have = new Set((u.AttachedPolicies || []).map((p) => p.PolicyArn));
        const select = el("select", { id: "attach-select", "aria-label": "Policy to attach" },
          ...pol.data.policies.filter((p) => !have.has(p.Arn)).map((p) => el("option", { value: p.Arn }, p.PolicyName)));
        attachForm = el("form", { id: "attach-form", class: "toolbar" }, select, el("button", { type: "submit" }, "Attach…"));
        attachForm.addEventListener("submit", (ev) => {
          ev.preventDefault();
          const arn = select.value;
          confirmChange(slot, "attach " + arn + " to " + name, { User: name, AttachPolicy: arn },
            () => postJson(base + "/attach", { PolicyArn: arn }), load);
        });
      }
    }
    const inline = u.InlinePolicies === null ? el("span", { class: "muted" }, "unknown")
      : el("ul", { id: "inline" }, ...u.InlinePolicies.map((p) => el("li", {}, link("/console/policy?user=" + encodeURIComponent(name) + "&name=" + encodeURIComponent(p), p))));
    info.replaceChildren(
      ...u.errors.map((e) => refusal(e, e.operation + " was refused")),
      el("section", { class: "panel" }, el("div", { class: "mono muted" }, u.Arn),
        el("div", {}, "Groups: ", u.Groups === null ? "unknown" : (u.Groups.join(", ") || "none"))),
      el("section", { class: "panel" }, el("h2", {}, "Tags"),
        tagEditor(u.Tags, !!caps.tagUsers,
          (tag) => postJson(base + "/tags/add", { Tags: [tag] }),
          (k) => postJson(base + "/tags/remove", { TagKeys: [k] }),
          (c) => Object.assign({ User: name }, c), slot, load)),
      el("section", { class: "panel" }, el("h2", {}, "Managed policies"), attached, attachForm),
      el("section", { class: "panel" }, el("h2", {}, "Inline policies"), inline,
        caps.editPolicies ? link("/console/policy?user=" + encodeURIComponent(name) + "&name=", "New inline policy", { id: "new-inline" }) : null));
    if (!caps.analyzeAccess) {
      reach.replaceChildren(el("div", { class: "muted" }, "Shown to principals allowed iam:SimulatePrincipalPolicy on this user."));
      return;
    }
    const w = await api(base + "/what-can");
    if (!w.ok) { reach.replaceChildren(refusal(w.data, "What can was refused")); return; }
    reach.replaceChildren(el("div", { class: "muted", id: "what-can-count" }, name + " may " + w.data.action + " on " + w.data.allowed + " of " + w.data.nodes + " nodes."),
      answersTable("what-can", w.data.answers.filter((a) => a.decision !== "implicit_deny"), "Node"));
  };
  await load();
}

// ---- the policy editor --------------------------------------------------------------------

async function policyPage(main) {
  const arn = qs("arn");
  const user = qs("user");
  let name = qs("name") || "";
  const kind = arn ? "managed" : "inline";
  document.title = "Policy editor · Portcullis";
  const slot = el("div", { id: "flash" });
  const text = el("textarea", { id: "policy-text", spellcheck: "false", "aria-label": "Policy document", wrap: "off" });
  const gutter = el("div", { class: "gutter", id: "gutter", "aria-hidden": "true" });
  const problems = el("ul", { id: "problems", "aria-live": "polite" });
  const state = el("span", { id: "policy-status", class: "muted" });
  const save = el("button", { type: "button", class: "primary", id: "policy-save" }, kind === "managed" ? "Save as new default version…" : "Save…");
  const nameInput = el("input", { id: "policy-name", "aria-label": "Inline policy name", value: name, placeholder: "Policy name" });
  const bands = el("div", { class: "bands", "aria-hidden": "true" });
  main.replaceChildren(...[
    el("h1", {}, "Policy editor"),
    el("div", { class: "muted mono", id: "policy-title" }, arn || ("user " + user + " inline policy ")),
    kind === "inline" ? el("div", { class: "toolbar" }, nameInput) : null,
    slot,
    el("div", { class: "editor" }, gutter, el("div", { class: "code" }, bands, text)),
    el("div", { class: "toolbar" }, save, state),
    problems].filter(Boolean));
  if (arn) {
    const { ok, data } = await api("/console/api/policy?arn=" + encodeURIComponent(arn));
    if (!ok) { slot.replaceChildren(refusal(data, "Reading the policy was refused")); return; }
    text.value = data.Document;
    if (data.AwsManaged) { save.disabled = true; state.textContent = "An AWS managed policy: read only."; }
  } else if (name) {
    const { ok, data } = await api("/console/api/policy?user=" + encodeURIComponent(user) + "&name=" + encodeURIComponent(name));
    if (!ok) { slot.replaceChildren(refusal(data, "Reading the policy was refused")); return; }
    text.value = data.Document;
    nameInput.disabled = true;
  } else {
    text.value = '{\n  "Version": "2012-10-17",\n  "Statement": [\n  ]\n}\n';
  }
  if (!caps.editPolicies) save.disabled = true;
  let marks = new Map();
  const drawGutter = () => {
    const n = text.value.split("\n").length;
    const rows = [];
    for (let i = 1; i <= n; i++) {
      const m = marks.get(i);
      rows.push(el("div", { "data-line": String(i), class: m ? "mark-" + m : "" }, String(i)));
    }
    gutter.replaceChildren(...rows);
    // The marked lines again, as bands behind the text.
    const band = [];
    for (let i = 1; i <= n; i++) band.push(el("div", { class: marks.get(i) ? "band-" + marks.get(i) : "" }));
    bands.replaceChildren(...band);
    follow();
  };
  const follow = () => {
    gutter.scrollTop = text.scrollTop;
    bands.style.transform = "translate(" + (-text.scrollLeft) + "px," + (-text.scrollTop) + "px)";
  };
  text.addEventListener("scroll", follow);
  const goTo = (line, column) => {
    const lines = text.value.split("\n");
    let at = 0;
    for (let i = 0; i < line - 1 && i < lines.length; i++) at += lines[i].length + 1;
    at += Math.max(0, column - 1);
    text.focus();
    text.setSelectionRange(at, at);
  };
  let seq = 0;
  let timer = null;
  const check = async () => {
    const mine = ++seq;
    state.textContent = "Checking…";
    const { ok, data } = await postJson("/console/api/policy/validate", { Document: text.value, Kind: kind });
    if (mine !== seq) return; // a newer keystroke's check is under way
    if (!ok) {
      marks = new Map();
      drawGutter();
      problems.replaceChildren(el("li", {}, refusal(data, "Validating was refused")));
      state.textContent = "";
      return;
    }
    marks = new Map();
    const items = [];
    for (const e of data.errors) {
      marks.set(e.line, "error");
      items.push(el("li", { class: "problem error-item", "data-line": String(e.line), "data-column": String(e.column), "data-code": e.code },
        el("button", { type: "button", class: "linklike", onclick: () => goTo(e.line, e.column) }, "Line " + e.line + ", column " + e.column),
        ": ", el("strong", {}, e.code), " ", e.message));
    }
    for (const f of data.findings) {
      if (!marks.has(f.line)) marks.set(f.line, f.severity === "error" ? "error" : "warning");
      items.push(el("li", { class: "problem finding-item", "data-line": String(f.line), "data-column": String(f.column), "data-code": f.code },
        el("button", { type: "button", class: "linklike", onclick: () => goTo(f.line, f.column) }, "Line " + f.line + ", column " + f.column),
        ": ", el("strong", {}, f.code + (f.name ? " " + f.name : "")), " (" + f.severity + ") ", f.message, f.fix ? el("div", { class: "muted" }, "Fix: " + f.fix) : null));
    }
    problems.replaceChildren(...items);
    state.textContent = data.valid ? (data.findings.length ? "Valid, with " + data.findings.length + " findings." : "Valid.") : data.errors.length + " error(s): IAM would refuse this document.";
    state.dataset.valid = String(data.valid);
    drawGutter();
  };
  text.addEventListener("input", () => {
    drawGutter();
    clearTimeout(timer);
    timer = setTimeout(check, 150);
  });
  save.addEventListener("click", () => {
    const doc = text.value;
    const pname = kind === "managed" ? null : (name || nameInput.value.trim());
    const change = kind === "managed" ? { PolicyArn: arn, Document: doc } : { User: user, InlinePolicy: pname, Document: doc };
    const body = kind === "managed" ? { PolicyArn: arn, Document: doc } : { UserName: user, PolicyName: pname, Document: doc };
    confirmChange(slot, kind === "managed" ? "a new default version of " + arn : "inline policy " + pname + " of " + user, change,
      () => postJson("/console/api/policy/save", body),
      async () => {
        if (kind === "inline" && !name) {
          name = pname;
          const u = new URL(location.href); u.searchParams.set("name", pname); history.replaceState(null, "", u);
          nameInput.disabled = true;
        }
      });
  });
  drawGutter();
  if (caps.validatePolicies) await check();
  else problems.replaceChildren(el("li", { class: "muted" }, "Checking as you type needs access-analyzer:ValidatePolicy."));
}

// ---- activations --------------------------------------------------------------------------

async function activationsPage(main) {
  document.title = "Activations · Portcullis";
  const slot = el("div", { id: "flash" });
  const body = el("div", {});
  let form = null;
  if (caps.createActivations) {
    const desc = el("input", { id: "act-description", placeholder: "Description", "aria-label": "Description" });
    const role = el("input", { id: "act-role", value: "SSMServiceRole", "aria-label": "IAM role" });
    const limit = el("input", { id: "act-limit", type: "number", min: "1", max: "1000", value: "1", "aria-label": "Registration limit" });
    form = el("form", { id: "activation-form", class: "toolbar panel" }, desc, role, limit, el("button", { type: "submit", class: "primary" }, "Create activation"));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const { ok, data } = await postJson("/console/api/activations", { Description: desc.value, IamRole: role.value, RegistrationLimit: Number(limit.value) });
      if (!ok) { slot.replaceChildren(refusal(data, "Creating the activation was refused")); return; }
      slot.replaceChildren(el("div", { class: "notice", role: "status", id: "activation-created" },
        el("div", {}, "Activation ", el("code", { id: "activation-id" }, data.ActivationId), " created. Its code is shown this once:"),
        el("pre", { id: "activation-code" }, data.ActivationCode),
        el("div", { class: "muted" }, "portcullis agent register --id " + data.ActivationId + " --code <the code above> --server " + location.origin)));
      await load();
    });
  }
  main.replaceChildren(...[el("h1", {}, "Activations"), form, slot, body].filter(Boolean));
  const load = async () => {
    const { ok, data } = await api("/console/api/activations");
    if (!ok) { body.replaceChildren(refusal(data, "Listing activations was refused")); return; }
    if (!data.activations.length) { body.replaceChildren(el("div", { class: "empty" }, "No activations.")); return; }
    body.replaceChildren(el("table", { id: "activations" },
      el("thead", {}, el("tr", {}, ...["Activation ID", "Description", "IAM role", "Registrations", "Expires", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...data.activations.map((a) => el("tr", { "data-activation": a.ActivationId },
        el("td", {}, el("code", {}, a.ActivationId)),
        el("td", {}, a.Description),
        el("td", {}, a.IamRole),
        el("td", {}, a.RegistrationsCount + " of " + a.RegistrationLimit),
        el("td", { class: a.Expired ? "muted" : "" }, when(a.ExpirationDate) + (a.Expired ? " (expired)" : "")),
        el("td", { class: "actions" }, caps.deleteActivations ? el("button", {
          type: "button", class: "danger", "aria-label": "Delete activation " + a.ActivationId,
          onclick: async (ev) => {
            ev.currentTarget.disabled = true;
            const r = await postJson("/console/api/activations/" + encodeURIComponent(a.ActivationId) + "/delete");
            slot.replaceChildren(r.ok ? notice("Activation " + a.ActivationId + " was deleted.") : refusal(r.data, "Deleting the activation was refused"));
            await load();
          },
        }, "Delete") : null))))));
  };
  await load();
}
