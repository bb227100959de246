"use strict";
// The token is typed into the form and kept for this tab only (sessionStorage): never read from the
// address bar, where it would end up in browser history and proxy logs. A token someone put in the
// URL is dropped from it, unused.
const TOKEN_KEY = "carecontract-token";
if (new URLSearchParams(location.search).has("token")) {
  history.replaceState(null, "", location.pathname);
}
localStorage.removeItem(TOKEN_KEY);  // older dashboards kept it here
const tokenInput = document.getElementById("token");

async function api(path) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const response = await fetch(path, {headers: token ? {Authorization: "Bearer " + token} : {}});
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(`${path}: ${response.status} ${body.detail || response.statusText}`);
  }
  return response.json();
}

const layout = (title, extra) => Object.assign({
  title: {text: title, font: {size: 14}}, autosize: true, margin: {t: 60, l: 55, r: 15, b: 60},
  legend: {orientation: "h", y: -0.2}}, extra || {});
const config = {responsive: true, displaylogo: false};
// outcome ids as short labels, so none is cut; the full id shows on hover
const SHORT = {cwt_62: "62-day", cwt_31: "31-day", fds_28: "28-day FDS", early_stage: "early stage",
               survival_1y: "1-yr survival", emergency_presentation: "emergency",
               usual_place_of_death: "place of death", patient_experience: "experience", equity_gap: "equity gap"};

// -- payments (issue 17): one function per piece, fed by /payments and /money-by-kind -------------
// the groups a chart stacks, from /payments "components" (payments.components: the one home of them)
const GROUP_LABELS = {fee: "prime's management fee", gain_loss_prime: "prime's gain/loss share", vat: "VAT (to HMRC)",
  subcontractor: "subcontractors", suspense: "held in suspense (dispute)", held: "with the prime, not yet passed on"};
const millions = x => (x === null || x === undefined ? "—" : (x / 1e6).toFixed(2));  // £ → £m, as text

function headerRow(table, texts) {
  const tr = table.createTHead().insertRow();
  for (const text of texts) {
    const th = document.createElement("th");
    th.textContent = text;
    tr.appendChild(th);
  }
}

function paymentsChart(data) {
  // with the components (public, prime, auditor): what the commissioners paid, stacked by where it went;
  // otherwise each visible account by its readable name
  let traces;
  if (data.components && data.components.length) {
    const years = [...new Set(data.components.map(c => c.year))].sort();
    const sum = (y, g) => data.components.filter(c => c.year === y && c.group === g && c.section === "went to")
      .reduce((a, c) => a + c.gbp, 0);
    const note = (y, g) => (data.components.find(c => c.year === y && c.group === g && c.note) || {note: ""}).note;
    traces = Object.keys(GROUP_LABELS).filter(g => years.some(y => sum(y, g))).map(g => ({type: "bar",
      name: GROUP_LABELS[g], x: years.map(String), y: years.map(y => sum(y, g) / 1e6), hovertext: years.map(y => note(y, g))}));
  } else {
    const years = [...new Set(data.by_year_and_account.map(r => r.year))].sort();
    const names = [...new Set(data.by_year_and_account.filter(r => r.net_gbp > 0).map(r => r.name))].sort();
    traces = names.map(name => ({type: "bar", name, x: years.map(String),
      y: years.map(y => (data.by_year_and_account.find(r => r.year === y && r.name === name) || {net_gbp: 0})
                        .net_gbp / 1e6)}));
  }
  Plotly.newPlot("chart-payments", traces, layout("Where the money went, £m by contract year",
    {barmode: "relative", xaxis: {type: "category"}}), config);
}

function paymentsTable(data, byKind) {
  // the same table as the CLI and the report (component_table): a line per component, a column per year,
  // each section's total (equal: checked), the price, and numbered notes for negative amounts; then money by kind
  const wrap = document.getElementById("payment-components");
  const parts = [];
  const t = data.component_table;
  if (t && t.lines.length) {
    const table = document.createElement("table");
    table.className = "components";
    headerRow(table, ["£m", ...t.years.map(String)]);
    const body = table.createTBody();  // rows inserted into the table itself would join the head
    const line = (label, cells) => {
      const tr = body.insertRow();
      cell(tr, label);
      for (const c of cells) cell(tr, c);
    };
    for (const section of ["paid by the commissioners", "went to"]) {
      for (const l of t.lines.filter(x => x.section === section)) {
        line((section === "went to" ? "\u2003" : "") + l.component,
             t.years.map(y => millions(l.gbp[y]) + (l.note[y] ? ` (${l.note[y]})` : "")));
      }
      line(`total ${section}`, t.years.map(y => millions(t.totals[y][section])));
    }
    line("price (planned, for reference)", t.years.map(y => millions(t.price[y])));
    line("adds up", t.years.map(y => (t.balanced[y] ? "yes" : "NO")));
    const notes = document.createElement("ol");
    for (const note of t.notes) {
      const li = document.createElement("li");
      li.textContent = note;
      notes.append(li);
    }
    parts.push(table, notes);
  }
  if (data.disputes && data.disputes.length) {
    // each notice of calculation error: its state and the amount held in suspense while it is open
    const list = document.createElement("ul");
    for (const d of data.disputes) {
      const li = document.createElement("li");
      li.textContent = `Dispute ${d.id} (${d.reconciliation}, by ${d.by}, ${d.clause}): £${(d.amount_pence / 100).toFixed(2)} ` +
        `${d.status === "resolved" ? "resolved" : "held in suspense, " + d.status.replace("_", " ")}.`;
      list.append(li);
    }
    parts.push(list);
  }
  if (byKind && byKind.length) {
    const table = document.createElement("table");
    headerRow(table, ["year", "kind of organisation", "received £m", "share of value"]);
    const body = table.createTBody();
    for (const k of byKind) {
      const tr = body.insertRow();
      cell(tr, String(k.year));
      cell(tr, k.label);
      cell(tr, millions(k.gbp));
      cell(tr, k.share_of_value === null ? "—" : (100 * k.share_of_value).toFixed(1) + "%");
    }
    parts.push(table);
  }
  wrap.replaceChildren(...parts);
}

function measuresChart(rows, targets) {
  // proportions only: the experience score is out of 10 and the equity gap is a difference of rates
  const shown = rows.filter(r => r.rate !== null && !["patient_experience", "equity_gap"].includes(r.measure));
  const labels = shown.map(r => SHORT[r.measure] || r.measure);
  Plotly.newPlot("chart-measures", [
    {type: "bar", name: "rate", x: labels, y: shown.map(r => r.rate), hovertext: shown.map(r => r.measure),
     error_y: {type: "data", symmetric: false, array: shown.map(r => (r.ci_high ?? r.rate) - r.rate),
               arrayminus: shown.map(r => r.rate - (r.ci_low ?? r.rate))}},
    {type: "scatter", mode: "markers", name: "target", x: labels,
     y: shown.map(r => targets[r.measure] ?? r.target), marker: {symbol: "line-ew-open", size: 24}},
  ], layout("Outcomes with 95% intervals and targets",
            {yaxis: {range: [0, 1], tickformat: ".0%"}, xaxis: {automargin: true, tickangle: -30}}), config);
}

function viabilityChart(v) {
  const years = v.by_year.map(r => String(r.year));
  const m = key => v.by_year.map(r => r[key] / 1e6);
  Plotly.newPlot("chart-viability", [
    {x: years, y: m("cumulative_p90_gbp"), mode: "lines", line: {width: 0}, showlegend: false},
    {x: years, y: m("cumulative_p10_gbp"), mode: "lines", name: "10th–90th percentile", fill: "tonexty",
     line: {width: 0}, fillcolor: "rgba(31,119,180,0.25)"},
    {x: years, y: m("cumulative_p50_gbp"), mode: "lines+markers", name: "median", line: {width: 3}},
  ], layout(`Cumulative surplus / deficit, £m<br>deficit probability ${(100 * v.deficit_probability).toFixed(0)}%`,
            {xaxis: {type: "category", automargin: true}, yaxis: {automargin: true}}), config);
}

function cell(row, text) {
  const td = document.createElement(row.parentElement && row.parentElement.tagName === "THEAD" ? "th" : "td");
  td.textContent = text;  // text, never markup: a value cannot inject anything
  row.appendChild(td);
}

function accountabilityTable(rows) {
  const fmt = x => x === null || x === undefined ? "suppressed" : (typeof x === "number" ? x.toLocaleString() : x);
  const money = x => x === null || x === undefined ? "suppressed" : (x / 1e6).toFixed(2);
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const h of ["commissioner", "subcontractor", "events", "cost £m", "paid £m"]) cell(head, h);
  const body = table.createTBody();
  for (const r of rows) {
    const tr = body.insertRow();
    for (const text of [r.commissioner, r.subcontractor, fmt(r.events), money(r.cost_gbp), money(r.payment_received_gbp)]) {
      cell(tr, text);
    }
  }
  document.getElementById("accountability").replaceChildren(table);
}

// -- fair comparisons: its own block (loadFair), so a failure here leaves the charts above standing --

const Z95 = 1.959963984540054, Z998 = 3.090232306167813;  // the two-sided 95% and 99.8% normal quantiles
const LIMIT_STYLE = {"95%": {dash: "dash", color: "#7f8c9a"}, "99.8%": {dash: "dot", color: "#a61b1b"}};
// the legend below the axis title, short names so it fits a phone's width
const FAIR_LEGEND = {legend: {orientation: "h", y: -0.3, entrywidth: 0.5, entrywidthmode: "fraction", traceorder: "normal"},
                     margin: {t: 60, l: 55, r: 15, b: 110}};
const SPC_COLOURS = {special_cause_improvement: "#1f77b4", special_cause_concern: "#ff7f0e",
                     special_cause_neither: "#7f7f7f", common_cause: "#9aa5b1"};

function fairFunnel(rows, measure) {
  // standardised ratios on the SHMI funnel: limits exp(±z·√(1/E + τ²)) around O/E = 1 (docs/measures.md)
  const shown = rows.filter(r => r.base_measure === measure && r.ratio !== null && r.expected);
  const el = "chart-fair-funnel";
  if (!shown.length) {
    Plotly.newPlot(el, [], layout(`${SHORT[measure] || measure}: no ratio to show<br>(small numbers suppressed)`), config);
    return;
  }
  const tau2 = (shown[0].funnel || {}).tau2 || 0;
  const top = Math.max(...shown.map(r => r.expected)) * 1.1;
  const xs = Array.from({length: 80}, (_, i) => Math.max(1, top * (i + 1) / 80));
  const traces = [];
  for (const [name, z] of [["95%", Z95], ["99.8%", Z998]]) {
    for (const sign of [1, -1]) {
      traces.push({x: xs, y: xs.map(e => Math.exp(sign * z * Math.sqrt(1 / e + tau2))), mode: "lines",
        name: `${name} limit`, legendgroup: name, showlegend: sign === 1, line: LIMIT_STYLE[name],
        hoverinfo: "skip"});
    }
  }
  traces.push({x: [0, top], y: [1, 1], mode: "lines", name: "O/E = 1", line: {color: "#1d2733"}});
  const unit = r => r.commissioner ? `${r.provider} (${r.commissioner})` : r.provider;
  const out = r => (r.funnel || {}).outlier;
  traces.push({x: shown.map(r => r.expected), y: shown.map(r => r.ratio), mode: "markers+text", name: "provider",
    text: shown.map(r => out(r) ? `${unit(r)} (${out(r)})` : ""), textposition: "top right",
    cliponaxis: false,
    hovertext: shown.map(r => `${unit(r)}: O/E ${r.ratio.toFixed(2)}, raw ${(100 * r.raw_rate).toFixed(1)}%`),
    hoverinfo: "text", marker: {size: 9, color: shown.map(r => out(r) ? "#a61b1b" : "#1f77b4")}});
  Plotly.newPlot(el, traces, layout(`${SHORT[measure] || measure}: observed / expected<br>by provider, case-mix adjusted`,
    {xaxis: {title: {text: "expected cases (for these patients)"}, automargin: true},
     yaxis: {title: {text: "observed / expected"}, automargin: true}, ...FAIR_LEGEND}), config);
}

function fairSpc(points, measure, adjusted) {
  const shown = points.filter(p => p.value !== null && p.value !== undefined);
  const el = "chart-fair-spc";
  const basis = adjusted ? "case-mix adjusted rate" : "rate";
  if (!shown.length) {
    Plotly.newPlot(el, [], layout(`${SHORT[measure] || measure}: no month to show<br>(small numbers suppressed)`), config);
    return;
  }
  const x = shown.map(p => p.month);
  const line = (key, name, style) => ({x, y: shown.map(p => p[key]), mode: "lines", name, line: style});
  const traces = [
    line("upper_process_limit", "limits", {dash: "dot", color: "#7f8c9a"}),
    Object.assign(line("lower_process_limit", "limits", {dash: "dot", color: "#7f8c9a"}), {showlegend: false}),
    line("mean", "mean", {color: "#1d2733"}),
    {x, y: shown.map(p => p.value), mode: "lines+markers", name: adjusted ? "adjusted" : "rate",
     line: {color: "#9aa5b1"},
     marker: {size: 8, color: shown.map(p => SPC_COLOURS[p.point_type] || "#9aa5b1")},
     hovertext: shown.map(p => (p.point_type || "").replaceAll("_", " ")), hoverinfo: "x+y+text"},
  ];
  if (shown[0].target !== null && shown[0].target !== undefined) {
    traces.push(line("target", "target", {dash: "dash", color: "#2ca02c"}));
  }
  const hidden = points.length - shown.length;
  Plotly.newPlot(el, traces, layout(`${SHORT[measure] || measure}: monthly XmR chart<br>of the ${basis}` +
      (hidden ? `, ${hidden} month(s) suppressed` : ""),
    {xaxis: {title: {text: "month"}, automargin: true},
     yaxis: {title: {text: `${basis}, %`}, tickformat: ".0%", automargin: true}, ...FAIR_LEGEND}), config);
}

async function loadFair(id) {
  const status = document.getElementById("fair-status");
  const measure = document.getElementById("fair-measure").value;
  const adjusted = document.getElementById("fair-adjusted").checked;
  try {
    const [rows, points] = await Promise.all([
      api(`/api/contracts/${id}/adjusted?measure=${measure}`),
      api(`/api/contracts/${id}/spc?measure=${measure}&adjusted=${adjusted}`)]);
    fairFunnel(rows, measure);
    fairSpc(points, measure, adjusted);
    status.textContent = "Funnel limits widened for overdispersion (SHMI method); an outlier lies outside the 99.8% " +
      "limits. SPC: Making Data Count rules; orange a concern, blue an improvement.";
  } catch (error) {
    const span = document.createElement("span");
    span.className = "error";
    span.textContent = error.message;
    status.replaceChildren(span);
  }
}

async function load() {
  const status = document.getElementById("status");
  try {
    const who = await api("/api/whoami");
    document.getElementById("role").textContent = who.organisation ? `${who.role} ${who.organisation}` : who.role;
    const select = document.getElementById("contract");
    if (!select.options.length) {
      const contracts = await api("/api/contracts");
      for (const c of contracts) select.add(new Option(c.name, c.id));
      select.targets = Object.fromEntries(contracts.map(c => [c.id, c.targets]));
    }
    const id = encodeURIComponent(select.value);
    status.textContent = "Computing…";
    const [payments, measures, viability, accountability, byKind] = await Promise.all([
      api(`/api/contracts/${id}/payments`), api(`/api/contracts/${id}/measures`),
      api(`/api/contracts/${id}/viability`), api(`/api/contracts/${id}/accountability`),
      api(`/api/contracts/${id}/money-by-kind`)]);
    paymentsChart(payments);
    paymentsTable(payments, byKind);
    measuresChart(measures, select.targets[select.value] || {});
    viabilityChart(viability);
    accountabilityTable(accountability);
    loadFair(id);  // its own block: not awaited, its errors shown beside it
    status.textContent = `Showing ${select.options[select.selectedIndex].text} as ${document.getElementById("role").textContent}` +
      (who.role === "public" ? ": the latest published period; counts below 8 suppressed, others rounded to 5." : ".");
  } catch (error) {
    const span = document.createElement("span");
    span.className = "error";
    span.textContent = error.message;
    status.replaceChildren(span);
  }
}
document.getElementById("token-form").addEventListener("submit", event => {
  event.preventDefault();
  const token = tokenInput.value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
  tokenInput.value = "";
  load();
});
document.getElementById("forget").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  tokenInput.value = "";
  load();
});
document.getElementById("contract").addEventListener("change", load);
for (const input of ["fair-measure", "fair-adjusted"]) {
  document.getElementById(input).addEventListener("change",
    () => loadFair(encodeURIComponent(document.getElementById("contract").value)));
}
load();
