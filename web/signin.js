// The console's sign-in page: an IAM user's password or an access key pair, posted as JSON
// to /console/api/signin; the server sets the HttpOnly session cookie.
"use strict";

const PAGES = ["/console/nodes", "/console/sessions"];

function nextPage() {
  const next = new URLSearchParams(location.search).get("next");
  return PAGES.includes(next) ? next : PAGES[0];
}

function showTab(which) {
  for (const name of ["password", "key"]) {
    const on = name === which;
    document.getElementById("tab-" + name).setAttribute("aria-selected", String(on));
    document.getElementById("form-" + name).hidden = !on;
  }
}

async function signIn(body) {
  const error = document.getElementById("error");
  error.hidden = true;
  let reply;
  try {
    reply = await fetch("/console/api/signin", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (e) {
    error.textContent = "The server could not be reached.";
    error.hidden = false;
    return;
  }
  if (reply.ok) {
    location.assign(nextPage());
    return;
  }
  const data = await reply.json().catch(() => ({}));
  error.textContent = data.message || "Sign-in failed (" + reply.status + ").";
  error.hidden = false;
}

document.getElementById("tab-password").addEventListener("click", () => showTab("password"));
document.getElementById("tab-key").addEventListener("click", () => showTab("key"));
document.getElementById("form-password").addEventListener("submit", (ev) => {
  ev.preventDefault();
  signIn({
    method: "password",
    user: document.getElementById("user").value,
    password: document.getElementById("password").value,
  });
});
document.getElementById("form-key").addEventListener("submit", (ev) => {
  ev.preventDefault();
  signIn({
    method: "key",
    accessKeyId: document.getElementById("access-key-id").value.trim(),
    secretAccessKey: document.getElementById("secret-access-key").value,
  });
});
