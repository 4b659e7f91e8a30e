// scalefit web page: plain JavaScript against the same server's /api (no framework, no build step).
"use strict";

const $ = (id) => document.getElementById(id);
let profiles = [];

async function api(path, options = {}) {
  const response = await fetch(path, options);
  let body;
  try { body = await response.json(); } catch (_) { body = { detail: response.statusText }; }
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

const postJSON = (path, body) =>
  api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function count(x) {  // 1234567 -> 1.23M, as the CLI prints parameters and tokens
  for (const [unit, scale] of [["T", 1e12], ["B", 1e9], ["M", 1e6], ["K", 1e3]]) {
    if (Math.abs(x) >= scale) return (x / scale).toPrecision(3) + unit;
  }
  return Number(x).toPrecision(3);
}

const number = (x, unit) => (x === null || x === undefined ? "–"
  : unit === "nats/token" ? Number(x).toFixed(4) : Number(x).toPrecision(4));

function field(container, name, label, value = "", type = "text") {
  const row = el("label", label);
  const input = el("input", null, { name, id: `field-${container.id}-${name}`, type });
  input.value = value;
  row.appendChild(input);
  container.appendChild(row);
  return input;
}

function showError(id, err) {
  const box = $(id);
  box.textContent = `error: ${err.message}`;
  box.hidden = false;
}

async function loadSidebar() {
  const [health, fits, laws] = await Promise.all([api("/api/health"), api("/api/fits"), api("/api/laws")]);
  const writes = { token: "writes need a token", open: "writes open (loopback)", disabled: "read-only" };
  $("status").textContent = `v${health.version} · ${health.fits} fit(s) · ${writes[health.writes]}`;
  const body = $("fits").querySelector("tbody");
  body.replaceChildren();
  for (const f of fits) {
    const tr = el("tr", null, { "data-fit-id": f.id });
    tr.append(el("td", f.name), el("td", f.law), el("td", f.n_rows), el("td", f.created.slice(0, 16).replace("T", " ")));
    tr.addEventListener("click", () => { location.hash = `fit=${f.id}`; });
    body.appendChild(tr);
  }
  $("no-fits").hidden = fits.length > 0;
  const list = $("laws");
  list.replaceChildren();
  for (const law of laws.filter((l) => l.kind === "published")) {
    const li = el("li");
    const a = el("a", law.name, { href: `#law=${law.name}`, "data-law": law.name });
    li.append(a, el("span", ` — ${law.description}`, { class: "muted" }));
    list.appendChild(li);
  }
  profiles = await api("/api/profiles");
}

function inputsOf(info) {
  const cols = [...info.inputs];
  for (const group of info.alternatives) if (!group.some((c) => cols.includes(c))) cols.push(group[0]);
  return cols;
}

function buildPredict(info, source) {
  const box = $("predict-fields");
  box.replaceChildren();
  const numeric = [];
  for (const c of inputsOf(info)) {
    const range = info.ranges[c];
    numeric.push(c);
    field(box, c, c, range ? range[1].toPrecision(3) : "");
  }
  if (info.precision_inputs) field(box, "precision", "precision (training)", "bf16");
  if (info.ptq_input) field(box, "ptq", "PTQ bits or format (blank: none)", "");
  $("predict-result").hidden = true;
  $("predict-error").hidden = true;
  $("predict-form").onsubmit = async (event) => {
    event.preventDefault();
    $("predict-error").hidden = true;
    const points = {};
    for (const input of box.querySelectorAll("input")) {
      const v = input.value.trim();
      if (numeric.includes(input.name)) points[input.name] = [v === "" ? null : Number(v)];
      else if (v !== "") points[input.name] = [v];
    }
    try {
      const out = await postJSON("/api/predict", { ...source, points });
      const p = out.points;
      $("prediction-label").textContent = `predicted ${out.target}:`;
      $("prediction-value").textContent = number(p.prediction[0], out.unit);
      $("prediction-value").dataset.value = String(p.prediction[0]);  // full precision, for scripts
      $("prediction-unit").textContent = out.unit;
      $("prediction-interval").textContent = p.lower[0] === null
        ? (out.n_boot ? "no interval" : "no interval: published constants carry no uncertainty")
        : `${(100 * (1 - out.alpha)).toPrecision(3)}% interval: ${number(p.lower[0], out.unit)} .. ` +
          `${number(p.upper[0], out.unit)} (${out.n_boot} bootstrap draws)`;
      const warnings = $("prediction-warnings");
      warnings.replaceChildren(...out.warnings.map((w) => el("li", w)));
      $("predict-result").hidden = false;
    } catch (err) { $("predict-result").hidden = true; showError("predict-error", err); }
  };
}

function optionsTable(options) {
  const table = el("table");
  const head = el("tr");
  for (const h of ["precision", "N", "D", "D/N", "loss"]) head.appendChild(el("th", h));
  table.appendChild(head);
  for (const o of options) {
    const tr = el("tr");
    tr.append(el("td", o.precision), el("td", count(o.N)), el("td", count(o.D)),
      el("td", o.tokens_per_param.toPrecision(3)), el("td", o.loss.toFixed(4)));
    table.appendChild(tr);
  }
  return table;
}

function buildRecommend(info, source) {
  const box = $("recommend-fields");
  box.replaceChildren();
  $("recommend-result").hidden = true;
  $("recommend-error").hidden = true;
  const knowledge = info.unit === "bits";
  $("recommend-title").textContent = knowledge ? "Recommend (knowledge to store)" : "Recommend (compute budget)";
  if (knowledge) {
    field(box, "knowledge_bits", "knowledge bits", "1.4e10");
    field(box, "exposures", "exposures", "100");
    field(box, "corpus_tokens", "corpus tokens (optional)", "");
  } else {
    const c = info.ranges.C;
    field(box, "flops", "budget (FLOPs)", c ? (10 * c[1]).toPrecision(2) : "1e21");
    const row = el("label", "hardware profile");
    const select = el("select", null, { name: "profile", id: "field-recommend-profile" });
    for (const p of profiles) select.appendChild(el("option", p.name, { value: p.name }));
    row.appendChild(select);
    box.appendChild(row);
    field(box, "max_params", "max parameters (optional)", "");
    field(box, "max_tokens", "max tokens (optional)", "");
    if (info.ptq_input) field(box, "serve_precision", "serving precision (optional)", "");
  }
  $("recommend-form").onsubmit = async (event) => {
    event.preventDefault();
    $("recommend-error").hidden = true;
    const body = { ...source };
    for (const input of box.querySelectorAll("input, select")) {
      const v = input.value.trim();
      if (v === "") continue;
      body[input.name] = ["profile", "serve_precision"].includes(input.name) ? v : Number(v);
    }
    const result = $("recommend-result");
    try {
      if (knowledge) {
        const out = await postJSON("/api/recommend/knowledge", body);
        result.replaceChildren(el("div", `${count(out.params)} parameters (${out.bits_per_param.toPrecision(3)} bits/param; ${out.law})`, { id: "recommend-best" }));
        if (out.tokens !== null) result.appendChild(el("div", `training tokens: ${count(out.tokens)}`));
        result.appendChild(el("ul", null, { class: "warnings" }));
        for (const w of out.warnings) result.lastChild.appendChild(el("li", w));
      } else {
        const out = await postJSON("/api/recommend", body);
        const b = out.best;
        result.replaceChildren(el("div", `Train ${count(b.N)} parameters on ${count(b.D)} tokens at ${b.precision}: ` +
          `predicted ${out.objective} ${b.loss.toFixed(4)} nats/token`, { id: "recommend-best" }));
        if (out.loss_interval_95) {
          result.appendChild(el("div", `95% interval ${out.loss_interval_95[0].toFixed(4)}–${out.loss_interval_95[1].toFixed(4)} ` +
            `over ${out.bootstrap_draws} bootstrap fits`, { class: "muted" }));
        }
        result.appendChild(optionsTable(out.options));
        const warnings = el("ul", null, { class: "warnings" });
        for (const w of out.warnings) warnings.appendChild(el("li", w));
        result.appendChild(warnings);
      }
      result.hidden = false;
    } catch (err) { result.hidden = true; showError("recommend-error", err); }
  };
}

function select(attr, value) {
  for (const tr of document.querySelectorAll("#fits tbody tr")) tr.classList.toggle("selected", tr.getAttribute(attr) === value);
}

async function showFit(id) {
  const d = await api(`/api/fits/${encodeURIComponent(id)}`);
  select("data-fit-id", id);
  $("title").textContent = d.name;
  $("subtitle").textContent = `${d.law}: ${d.equation} · ${d.nobs} rows · ${d.n_boot} bootstrap draws · ` +
    `created ${d.created} · id ${d.id}`;
  $("summary").innerHTML = d.summary_html;  // built by fits' Summary, every cell escaped
  const plot = $("plot");
  Plotly.purge(plot);
  plot.hidden = !d.has_rows;
  if (d.has_rows) {
    const fig = await api(`/api/fits/${encodeURIComponent(id)}/plot`);
    await Plotly.newPlot(plot, fig.data, fig.layout, { responsive: true, displaylogo: false });
  }
  buildPredict(d, { fit: id });
  buildRecommend(d, { fit: id });
}

async function showLaw(name) {
  const info = await api(`/api/laws/${encodeURIComponent(name)}`);
  select("data-fit-id", null);
  $("title").textContent = info.name;
  $("subtitle").textContent = `${info.equation} · ${info.citation}`;
  const table = el("table");
  table.appendChild(el("tr"));
  table.firstChild.append(el("th", "param"), el("th", "value"));
  for (const [k, v] of Object.entries(info.params || {})) {
    const tr = el("tr");
    tr.append(el("td", k), el("td", v === null ? "inf" : v));
    table.appendChild(tr);
  }
  const summary = $("summary");
  summary.replaceChildren(el("div", info.description, { class: "muted" }), table);
  Plotly.purge($("plot"));
  $("plot").hidden = true;
  buildPredict(info, { law: name });
  buildRecommend(info, { law: name });
}

async function route() {
  const hash = decodeURIComponent(location.hash.slice(1));
  const [kind, id] = hash.split("=");
  if (!id) return;
  $("placeholder").hidden = true;
  $("view").hidden = false;
  try {
    if (kind === "fit") await showFit(id);
    else if (kind === "law") await showLaw(id);
  } catch (err) {
    $("title").textContent = `error: ${err.message}`;
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", async () => {
  try { await loadSidebar(); } catch (err) { $("status").textContent = `error: ${err.message}`; }
  await route();
  document.body.setAttribute("data-ready", "1");
});
