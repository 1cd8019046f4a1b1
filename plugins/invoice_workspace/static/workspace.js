// The invoices workspace page: plain JavaScript over the workspace's JSON API, no build step and no CDN.
// Money arrives as exact decimal strings and is shown as such; numbers are parsed only to size the bars
// of the breakdown chart, never to add or display an amount.
"use strict";

const BASE = "/provider-invoices";
const API = `${BASE}/api`;
const STATUSES = ["active", "checksum_error", "inactive", "failed"];
const PROVIDERS = { microsoft: "Microsoft Partner Center", synnex: "TD SYNNEX StreamOne Ion" };
const view = document.getElementById("view");

// -- helpers ----------------------------------------------------------------------------------------

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function show(...children) {
  // The view's new content; absent parts (null, false) are left out, as h() does.
  view.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

async function api(path, options = {}) {
  const response = await fetch(`${API}${path}`, {
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    ...options,
  });
  if (response.status === 401) {
    window.top.location.href = `/auth/login?next=${encodeURIComponent(window.top.location.href)}`;
    throw new Error("Your session ended; log in again.");
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(typeof body.detail === "string" ? body.detail : `HTTP ${response.status}`);
  return body;
}

const status = (value) => h("span", { class: `status ${String(value).replace(" ", "-")}` }, value.replace("_", " "));
const amount = (value, currency) =>
  value === null || value === undefined
    ? h("span", { class: "muted" }, "–")
    : h("span", { class: value.startsWith("-") ? "neg" : null }, currency ? `${value} ${currency}` : value);
const when = (iso) => (iso ? iso.replace("T", " ").replace(/\.\d+/, "").replace("+00:00", " UTC") : "–");
const message = (kind, text) => h("div", { class: `message ${kind}`, role: kind === "error" ? "alert" : "status" }, text);
const airflowLink = (path, text) => h("a", { href: path, target: "_top" }, text);
const runLink = (dagId, runId) => airflowLink(`/dags/${encodeURIComponent(dagId)}/runs/${encodeURIComponent(runId)}`, runId);
const invoiceHash = (provider, id) => `#/invoice/${encodeURIComponent(provider)}/${encodeURIComponent(id)}`;

function setNav(current) {
  for (const id of ["nav-list", "nav-available"]) document.getElementById(id).classList.toggle("current", id === current);
}

// -- the list ---------------------------------------------------------------------------------------

async function showList(params) {
  setNav("nav-list");
  const query = new URLSearchParams();
  for (const key of ["provider", "status", "period", "page"]) if (params.get(key)) query.set(key, params.get(key));
  const select = (name, options, label) =>
    h("label", {}, label,
      h("select", { name, "aria-label": label },
        h("option", { value: "" }, "all"),
        options.map(([value, text]) => h("option", { value, selected: params.get(name) === value }, text))));
  const filters = h("form", { class: "filters", onsubmit: (e) => e.preventDefault() },
    select("provider", Object.entries(PROVIDERS), "Provider"),
    select("status", STATUSES.map((s) => [s, s.replace("_", " ")]), "Status"),
    h("label", {}, "Billing period", h("input", { type: "month", name: "period", value: params.get("period") || "" })),
    h("a", { href: `${API}/invoices.csv?${query}`, download: true }, "Download CSV"));
  filters.addEventListener("change", () => {
    const next = new URLSearchParams(new FormData(filters));
    for (const [key, value] of [...next]) if (!value) next.delete(key);
    location.hash = `#/?${next}`;
  });
  show(h("h2", {}, "Invoices"), filters, h("p", { class: "muted" }, "Loading…"));
  let data;
  try {
    data = await api(`/invoices?${query}`);
  } catch (err) {
    show(h("h2", {}, "Invoices"), filters, message("error", err.message));
    return;
  }
  const rows = data.invoices.map((inv) => {
    const last = inv.last_attempt;
    return h("tr", { class: "clickable", onclick: () => (location.hash = invoiceHash(inv.provider, inv.invoice_id)) },
      h("td", {}, PROVIDERS[inv.provider] || inv.provider,
        data.several_accounts.includes(inv.provider) ? [h("br"), h("span", { class: "muted" }, inv.account)] : null),
      h("td", {}, h("a", { href: invoiceHash(inv.provider, inv.invoice_id) }, inv.invoice_id)),
      h("td", {}, inv.billing_period_start ? `${inv.billing_period_start} – ${inv.billing_period_end}` : "–"),
      h("td", {}, inv.currency_code || "–"),
      h("td", {}, status(inv.status)),
      h("td", { class: "num" }, amount(inv.header_total)),
      h("td", { class: "num" }, amount(inv.detail_total)),
      h("td", { class: "num" }, amount(inv.difference)),
      h("td", { class: "num" }, amount(inv.tolerance_applied)),
      h("td", { class: "num" }, inv.line_count ?? "–"),
      h("td", {}, last ? [when(last.at), h("br"), h("span", { class: "muted" }, `${last.outcome} · ${last.by || "–"}`)] : "–"));
  });
  const pages = Math.max(1, Math.ceil(data.total / data.page_size));
  const goto = (page) => { params.set("page", page); location.hash = `#/?${params}`; };
  show(
    h("h2", {}, "Invoices"), filters,
    h("table", { id: "invoices" },
      h("thead", {}, h("tr", {}, ["Provider", "Invoice", "Billing period", "Currency", "Status"].map((t) => h("th", {}, t)),
        ["Header total", "Detail total", "Difference", "Tolerance", "Lines"].map((t) => h("th", { class: "num" }, t)),
        h("th", {}, "Last attempt"))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 11, class: "muted" }, "No invoice matches these filters.")))),
    h("div", { class: "pager" },
      h("button", { class: "secondary", disabled: data.page <= 1, onclick: () => goto(data.page - 1) }, "Previous"),
      h("span", {}, `Page ${data.page} of ${pages} · ${data.total} invoices`),
      h("button", { class: "secondary", disabled: data.page >= pages, onclick: () => goto(data.page + 1) }, "Next")));
}

// -- available from the provider --------------------------------------------------------------------

async function showAvailable(params) {
  setNav("nav-available");
  const provider = params.get("provider") || "microsoft";
  const picker = h("select", { name: "provider", "aria-label": "Provider", onchange: (e) => (location.hash = `#/available?provider=${e.target.value}`) },
    Object.entries(PROVIDERS).map(([value, text]) => h("option", { value, selected: value === provider }, text)));
  const title = h("h2", {}, "Available from the provider");
  const intro = h("p", { class: "muted" }, "What the provider's API listed at the last daily sync. Pick one to sync it by hand.");
  show(title, h("label", {}, "Provider", picker), intro);
  let data;
  try {
    data = await api(`/providers/${provider}/available`);
  } catch (err) {
    view.append(message("error", err.message));
    return;
  }
  const panel = h("div");
  const severalAccounts = new Set(data.invoices.map((inv) => inv.account)).size > 1;
  const rows = data.invoices.map((inv) =>
    h("tr", {},
      h("td", {}, inv.status === "not imported" ? inv.invoice_id : h("a", { href: invoiceHash(provider, inv.invoice_id) }, inv.invoice_id),
        severalAccounts ? [h("br"), h("span", { class: "muted" }, inv.account)] : null),
      h("td", {}, inv.billing_period_start ? `${inv.billing_period_start} – ${inv.billing_period_end}` : "–"),
      h("td", {}, inv.document_type || "–"),
      h("td", { class: "num" }, amount(inv.header_total, inv.currency_code)),
      h("td", {}, status(inv.status)),
      h("td", {}, when(inv.listed_at)),
      h("td", {}, inv.status === "active"
        ? h("span", { class: "muted" }, "active: deactivate it first")
        : h("button", { class: "secondary", onclick: () => panel.replaceChildren(syncForm(provider, inv.invoice_id, null)) }, "Sync…"))));
  view.append(
    h("table", { id: "available" },
      h("thead", {}, h("tr", {}, ["Invoice", "Billing period", "Type"].map((t) => h("th", {}, t)), h("th", { class: "num" }, "Header total"),
        ["Import status", "Listed", ""].map((t) => h("th", {}, t)))),
      h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: 7, class: "muted" }, "Nothing listed yet: the daily sync has not run for this provider.")))),
    panel);
}

// -- one invoice ------------------------------------------------------------------------------------

function chart(record) {
  // Detail per category against the header total; the gap between the two totals is the difference.
  const inv = record.invoice;
  const items = record.breakdown.map((b) => ({ label: `${b.category} (${b.lines})`, value: b.amount, cls: "bar" }));
  items.push({ label: "Detail total", value: inv.detail_total, cls: "bar detail" });
  items.push({ label: "Header total", value: inv.header_total, cls: "bar header" });
  const scale = Math.max(...items.map((i) => Math.abs(parseFloat(i.value || "0"))), 1);
  const hasNeg = items.some((i) => (i.value || "").startsWith("-"));
  const width = 760, labelW = 190, valueW = 150, barArea = width - labelW - valueW, rowH = 26;
  const zero = labelW + (hasNeg ? barArea / 3 : 0);
  const span = hasNeg ? (barArea * 2) / 3 : barArea;
  const px = (v) => (Math.abs(parseFloat(v || "0")) / scale) * span;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const height = rowH * items.length + 30;
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("class", "chart");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `Breakdown of ${inv.invoice_id}: detail per category against the header total`);
  const add = (tag, attrs, text) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
    if (text !== undefined) el.textContent = text;
    svg.append(el);
    return el;
  };
  items.forEach((item, i) => {
    const y = i * rowH + 4, neg = (item.value || "").startsWith("-"), w = px(item.value);
    add("text", { x: 0, y: y + 15 }, item.label);
    add("rect", { class: `${item.cls}${neg ? " neg" : ""}`, x: neg ? zero - w : zero, y, width: Math.max(w, 1), height: rowH - 8 });
    add("text", { x: width - 4, y: y + 15, "text-anchor": "end" }, `${item.value ?? "–"} ${inv.currency_code || ""}`);
  });
  add("line", { class: "axis", x1: zero, x2: zero, y1: 0, y2: rowH * items.length });
  const detailW = px(inv.detail_total), headerW = px(inv.header_total);
  if (inv.difference && parseFloat(inv.difference) !== 0) {
    const y = (items.length - 2) * rowH + 4;
    const x1 = zero + Math.min(detailW, headerW), x2 = zero + Math.max(detailW, headerW);
    add("rect", { class: "gap", x: x1, y, width: Math.max(x2 - x1, 2), height: rowH * 2 - 8 });
    add("text", { class: "diff", x: zero, y: rowH * items.length + 20 },
      `Difference (header − detail): ${inv.difference} ${inv.currency_code || ""}, tolerance ${inv.tolerance_applied ?? "–"}`);
  }
  return svg;
}

function syncForm(provider, invoiceId, suggestion) {
  const result = h("div");
  const form = h("form", { id: "sync-form" },
    h("label", {}, "Override tolerance (optional)", h("input", { name: "override_tolerance", type: "number", min: "0", step: "any", placeholder: suggestion ? `e.g. ${suggestion}` : "" })),
    h("label", {}, "Reason (required with an override)", h("textarea", { name: "override_reason", placeholder: "Which credit note or fee explains the difference, and why it is expected" })),
    h("button", { type: "submit" }, `Sync ${invoiceId}`));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const data = new FormData(form);
    const override = data.get("override_tolerance").trim();
    act(form, result, `/invoices/${encodeURIComponent(provider)}/${encodeURIComponent(invoiceId)}/sync`, {
      override_tolerance: override === "" ? null : override,
      override_reason: data.get("override_reason").trim() || null,
    });
  });
  return h("div", { class: "panel" }, h("h2", {}, `Sync ${PROVIDERS[provider]} invoice ${invoiceId}`),
    h("p", { class: "muted" }, "Runs provider_invoice_manual_sync as you. With an override, the difference is accepted up to that amount (rounded up to a whole number) for this run only, and the reason is kept as a note."),
    form, result);
}

function deactivateForm(provider, invoiceId) {
  const result = h("div");
  const form = h("form", { id: "deactivate-form" },
    h("label", {}, "Reason (required)", h("textarea", { name: "reason", placeholder: "Why it must be downloaded again" })),
    h("button", { type: "submit", class: "danger" }, `Deactivate ${invoiceId}`));
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    act(form, result, `/invoices/${encodeURIComponent(provider)}/${encodeURIComponent(invoiceId)}/deactivate`, {
      reason: new FormData(form).get("reason").trim() || null,
    });
  });
  return h("div", { class: "panel" }, h("h2", {}, "Deactivate"),
    h("p", { class: "muted" }, "Runs provider_invoice_deactivate as you; refused while a line is referenced by a customer invoice."),
    form, result);
}

async function act(form, result, path, body) {
  const button = form.querySelector("button");
  button.disabled = true;
  result.replaceChildren(message("info", "Starting…"));
  let run;
  try {
    run = await api(path, { method: "POST", body: JSON.stringify(body) });
  } catch (err) {
    result.replaceChildren(message("error", err.message));
    button.disabled = false;
    return;
  }
  const line = h("div", { class: "message info", id: "run-status", role: "status" },
    "Started run ", runLink(run.dag_id, run.dag_run_id), ` of ${run.dag_id}: `, h("strong", {}, "queued"),
    run.paused ? h("span", {}, ` (the DAG ${run.dag_id} is paused: unpause it in Airflow for the run to start)`) : null);
  result.replaceChildren(line);
  follow(run, line);
}

async function follow(run, line) {
  // Poll the run until it ends, then show the DAG's own sentence when it refused or failed.
  for (;;) {
    let state;
    try {
      state = await api(`/runs/${encodeURIComponent(run.dag_id)}/${encodeURIComponent(run.dag_run_id)}`);
    } catch (err) {
      line.append(h("div", {}, err.message));
      return;
    }
    line.querySelector("strong").textContent = state.state;
    if (state.state === "success" || state.state === "failed") {
      line.className = `message ${state.state === "success" ? "success" : "error"}`;
      if (state.message) line.append(h("div", {}, state.message));
      if (state.state === "success" && location.hash.startsWith("#/invoice/")) {
        finished = line;  // shown again above the reloaded invoice
        route();
      }
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 3000));
  }
}

let finished = null;  // the status line of a run that just succeeded, kept across the reload it causes

async function showInvoice(provider, invoiceId) {
  setNav("nav-list");
  const banner = finished;
  finished = null;
  show(h("p", { class: "muted" }, "Loading…"));
  let r;
  try {
    r = await api(`/invoices/${encodeURIComponent(provider)}/${encodeURIComponent(invoiceId)}`);
  } catch (err) {
    show(h("p", {}, h("a", { href: "#/" }, "← Invoices")), message("error", err.message));
    return;
  }
  const inv = r.invoice, cur = inv.currency_code;
  const fact = (label, value) => h("div", {}, h("span", {}, label), h("strong", {}, value));
  const top = r.hints[0];
  const causes = r.hints.length
    ? h("table", { id: "causes" },
        h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "Likely cause"), h("th", {}, "Match"), h("th", { class: "num" }, "Amount"), h("th", {}, "Evidence"))),
        h("tbody", {}, r.hints.map((hint, i) => h("tr", {}, h("td", {}, i + 1), h("td", {}, hint.cause), h("td", {}, hint.match),
          h("td", { class: "num" }, amount(hint.amount, cur)), h("td", {}, hint.evidence)))))
    : h("p", { class: "muted" }, r.breakdown.length
        ? "No open cause: the last checksum passed within the tolerance applied."
        : "No checksum diagnosis recorded yet.");
  const links = h("p", {},
    r.failed_task_log ? h("a", { href: r.failed_task_log, target: "_top", id: "task-log-link" }, "Last failed task's log") : null,
    r.failed_task_log && r.data_docs ? " · " : null,
    r.data_docs ? h("a", { href: r.data_docs, target: "_blank", id: "data-docs-link" }, "GX Data Docs of this validation") : null);
  const verdict = inv.status === "checksum_error" && top
    ? h("div", { class: "panel alert", id: "verdict" },
        h("strong", {}, `${r.usage_mismatch_run
          ? `Azure usage difference (reconciliation − daily-rated) ${top.amount} ${cur}`
          : `Difference ${inv.difference} ${cur}`}: most likely ${top.cause} (${top.match} match).`),
        h("p", {}, top.evidence), h("p", {}, h("strong", {}, "Next step: "), r.next_step))
    : inv.status_message ? h("div", { class: "panel" }, inv.status_message) : null;
  show(
    h("p", {}, h("a", { href: "#/" }, "← Invoices")),
    banner,
    h("h2", {}, `${PROVIDERS[provider] || provider} invoice ${inv.invoice_id} `, status(inv.status)),
    h("div", { class: "facts" },
      fact("Billing period", inv.billing_period_start ? `${inv.billing_period_start} – ${inv.billing_period_end}` : "–"),
      fact("Invoice date", inv.invoice_date || "–"), fact("Currency", cur || "–"),
      fact("Header total", amount(inv.header_total, cur)), fact("Detail total", amount(inv.detail_total, cur)),
      h("div", { id: "difference" }, h("span", {}, "Difference (header − detail)"), h("strong", {}, amount(inv.difference, cur))),
      fact("Tolerance applied", amount(inv.tolerance_applied, cur)), fact("Lines", inv.line_count ?? "–"),
      fact("Lines referenced by customer invoices", r.referenced_lines), fact("Updated", when(inv.updated_at))),
    verdict, links,
    h("h2", {}, "Breakdown by category"),
    r.breakdown.length ? chart(r) : h("p", { class: "muted" }, "No breakdown recorded yet."),
    r.breakdown.length
      ? h("table", { id: "breakdown" },
          h("thead", {}, h("tr", {}, h("th", {}, "Category"), h("th", { class: "num" }, "Lines"), h("th", { class: "num" }, "Amount"))),
          h("tbody", {}, r.breakdown.map((b) => h("tr", {}, h("td", {}, b.category), h("td", { class: "num" }, b.lines), h("td", { class: "num" }, amount(b.amount, cur))))))
      : null,
    r.breakdown.length ? h("a", { href: `${API}/invoices/${encodeURIComponent(provider)}/${encodeURIComponent(invoiceId)}/breakdown.csv`, download: true }, "Download the breakdown as CSV") : null,
    r.usage_mismatch_run ? h("p", {}, h("a", { href: `${API}/invoices/${encodeURIComponent(provider)}/${encodeURIComponent(invoiceId)}/usage-mismatches.csv`, download: true, id: "usage-mismatches-link" }, "Download the Azure usage mismatches as CSV (largest difference first)")) : null,
    h("h2", {}, "Likely causes"), causes,
    h("div", { class: "actions" },
      inv.status === "active" ? deactivateForm(provider, invoiceId) : syncForm(provider, invoiceId, r.override_suggestion)),
    h("h2", {}, "Attempts"),
    h("table", { id: "attempts" },
      h("thead", {}, h("tr", {}, ["When", "Who", "Outcome", "Run"].map((t) => h("th", {}, t)), h("th", { class: "num" }, "Difference"),
        h("th", { class: "num" }, "Tolerance"), h("th", {}, "Override and reason"), h("th", {}, "Message"))),
      h("tbody", {}, r.attempts.map((a) => h("tr", {},
        h("td", {}, when(a.started_at)), h("td", {}, a.by || "–"), h("td", {}, a.outcome),
        h("td", {}, a.task_url ? h("a", { href: a.task_url, target: "_top" }, a.dag_id) : a.dag_id, h("br"), h("span", { class: "muted" }, a.run_id)),
        h("td", { class: "num" }, amount(a.difference)), h("td", { class: "num" }, amount(a.tolerance_applied)),
        h("td", {}, a.override_tolerance ? `${a.override_tolerance}: ${a.override_reason}` : "–"),
        h("td", {}, a.message ? h("pre", {}, a.message) : "–"))))),
    h("h2", {}, "Notes"),
    r.notes.length
      ? h("table", { id: "notes" }, h("tbody", {}, r.notes.map((n) => h("tr", {}, h("td", {}, when(n.at)), h("td", {}, n.by || "–"), h("td", {}, n.note)))))
      : h("p", { class: "muted" }, "No notes."));
}

// -- routing ----------------------------------------------------------------------------------------

function route() {
  const [path, query] = (location.hash.slice(1) || "/").split("?");
  const params = new URLSearchParams(query || "");
  const invoice = path.match(/^\/invoice\/([^/]+)\/(.+)$/);
  if (invoice) return showInvoice(decodeURIComponent(invoice[1]), decodeURIComponent(invoice[2]));
  if (path === "/available") return showAvailable(params);
  return showList(params);
}

window.addEventListener("hashchange", route);
api("/me").then((me) => (document.getElementById("user").textContent = `Signed in as ${me.name}`)).catch(() => {});
route();
