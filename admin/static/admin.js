// The admin's one helper: JSON (or FormData) over fetch, with the session's CSRF token.
"use strict";

const CSRF = document.querySelector('meta[name="csrf-token"]')?.content || "";

async function fetchJSON(url, { method = "GET", body = undefined } = {}) {
  const headers = { "Accept": "application/json", "X-CSRF-Token": CSRF };
  let payload = body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  const reply = await fetch(url, { method, headers, body: payload, credentials: "same-origin" });
  const data = reply.headers.get("Content-Type")?.includes("json") ? await reply.json() : null;
  if (!reply.ok) {
    const error = new Error(data?.error?.message || `HTTP ${reply.status}`);
    error.field = data?.error?.field;
    error.status = reply.status;
    throw error;
  }
  return data;
}

// Show an error next to the form field it names (inputs carry name="<field>").
function showError(form, error) {
  form.querySelectorAll(".field-error").forEach((el) => el.remove());
  const note = document.createElement("p");
  note.className = "error field-error";
  note.textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  const input = error.field && form.querySelector(`[name="${CSS.escape(error.field)}"]`);
  (input || form).insertAdjacentElement(input ? "afterend" : "afterbegin", note);
}

function debounce(fn, ms = 300) {
  let timer;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}
