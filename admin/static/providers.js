// The providers page: live figures, enable/disable buttons, the routes editor (rows or JSON).
"use strict";

const routesForm = document.getElementById("routes-form");
const routesBody = document.querySelector("#routes tbody");

document.querySelectorAll("#providers button.toggle").forEach((button) => {
  button.addEventListener("click", async () => {
    const name = button.closest("tr").dataset.provider;
    const action = button.dataset.action;
    if (action === "disable" && !confirm(`Disable ${name}? It takes no new messages.`)) return;
    try {
      await fetchJSON(`/api/providers/${encodeURIComponent(name)}/${action}`, { method: "POST" });
      location.reload();
    } catch (error) {
      alert(error.message);
    }
  });
});

function splitValues(text) {
  return text.split(",").map((v) => v.trim()).filter((v) => v);
}

function rowRoute(row) {
  const value = (name) => row.querySelector(`[name="${name}"]`).value.trim();
  const route = { ...JSON.parse(row.dataset.extra || "{}"), provider: value("provider") };
  route[value("selector")] = splitValues(value("values"));
  route.price_per_part = value("price_per_part");
  route.classes = [...row.querySelectorAll('[name="classes"]:checked')].map((c) => c.value);
  const weight = value("weight");
  route.weight = /^\d+$/.test(weight) ? Number(weight) : weight;
  return route;
}

function clearErrors() {
  document.querySelectorAll(".field-error").forEach((el) => el.remove());
}

// "routes[1].prefixes[0]" → the input "values" of row 1; other fields: the form itself.
function showRouteError(form, error) {
  clearErrors();
  const note = document.createElement("p");
  note.className = "error field-error";
  note.textContent = error.field ? `${error.field}: ${error.message}` : error.message;
  const match = /^routes\[(\d+)\](?:\.(\w+))?/.exec(error.field || "");
  const row = match && routesBody.querySelectorAll("tr.route")[Number(match[1])];
  let input = null;
  if (row) {
    const name = ["prefixes", "countries", "operators"].includes(match[2]) ? "values" : match[2];
    input = row.querySelector(`[name="${name}"]`) || row.querySelector("td");
    row.classList.add("invalid");
  }
  (input || form).insertAdjacentElement(input ? "afterend" : "afterbegin", note);
}

async function saveRouting(form, document_) {
  document.getElementById("routes-saved")?.setAttribute("hidden", "");
  const version = Number(routesForm.dataset.version);
  try {
    const routing = await fetchJSON("/api/providers/routing", {
      method: "PUT", body: { document: document_, version },
    });
    routesForm.dataset.version = routing.version;
    clearErrors();
    location.reload();
  } catch (error) {
    showRouteError(form, error);
  }
}

routesForm?.addEventListener("submit", (event) => {
  event.preventDefault();
  const routes = [...routesBody.querySelectorAll("tr.route")].map(rowRoute);
  saveRouting(routesForm, { routes });
});

document.getElementById("json-form")?.addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  let parsed;
  try {
    parsed = JSON.parse(form.document.value);
  } catch (error) {
    showError(form, { field: "document", message: `not valid JSON: ${error.message}` });
    return;
  }
  saveRouting(form, parsed);
});

document.getElementById("use-file")?.addEventListener("click", () => saveRouting(routesForm, null));

document.getElementById("add-route")?.addEventListener("click", () => {
  const last = routesBody.querySelector("tr.route:last-child");
  if (!last) return;
  const row = last.cloneNode(true);
  row.dataset.extra = "{}";
  row.querySelectorAll('input:not([type="checkbox"])').forEach((i) => { i.value = ""; });
  row.querySelector('[name="weight"]').value = "1";
  routesBody.appendChild(row);
});

routesBody?.addEventListener("click", (event) => {
  if (event.target.classList.contains("remove")) event.target.closest("tr").remove();
});

function percent(value) {
  return value === null || value === undefined ? "—" : `${(value * 100).toFixed(1)} %`;
}

// The pool figures every 5 s (cheap: Redis); delivery rates stay as the page loaded them.
async function refreshFigures() {
  let found;
  try {
    found = await fetchJSON("/api/providers?live=1");
  } catch (error) {
    return;  // the next tick tries again
  }
  for (const p of found.providers) {
    const row = document.querySelector(`#providers tr[data-provider="${CSS.escape(p.name)}"]`);
    if (!row) continue;
    const set = (cls, text) => { const cell = row.querySelector(`td.${cls}`); if (cell) cell.textContent = text; };
    set("binds", `${p.binds_up}/${p.binds_total}`);
    set("rate", String(p.submitted_per_s));
    set("window", `${p.in_flight}/${p.window_max}`);
    set("errors", percent(p.error_rate));
    set("throttled", percent(p.throttle_rate));
    set("gate", p.gate);
    const state = p.disabled ? ["error", "disabled"] : p.ready ? ["ok", "up"] : ["error", "down"];
    const span = row.querySelector("td.state span");
    if (span) { span.className = state[0]; span.textContent = state[1]; }
  }
}

setInterval(refreshFigures, 5000);
