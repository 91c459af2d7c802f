// otel-impact on-call dashboard. Plain JavaScript, no dependencies: everything it shows comes
// from the processor's own JSON API (api/v1/dashboard, api/v1/impact, api/v1/slos,
// api/v1/customers/top), fetched with relative URLs so the page also works behind a proxy path.
"use strict";

const STATE_RANK = { page: 3, ticket: 2, ok: 1, unknown: 0 };
const BURN_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];
let refreshSeconds = 10;
let timer = null;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

const fmtInt = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
const fmtPct = (r, digits = 2) => (r === null || r === undefined ? "–" : (r * 100).toFixed(digits) + "%");
const fmtMoney = (v) => (v === null || v === undefined ? "–" : v.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 }));
const fmtMs = (v) => (v === null || v === undefined ? "–" : v.toFixed(v < 10 ? 2 : 0) + " ms");
const segmentText = (segment) => Object.entries(segment || {}).map(([k, v]) => `${k}=${v}`).join(" ") || "all";

function windowChoice() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("window");
  const select = document.getElementById("window");
  if (fromHash && [...select.options].some((o) => o.value === fromHash)) select.value = fromHash;
  return select.value;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, cache: "no-store" });
  if (!response.ok) {
    let reason = response.statusText;
    try { reason = (await response.json()).error || reason; } catch (_) { /* not JSON */ }
    throw new Error(`${path.split("?")[0]}: HTTP ${response.status} ${reason}`);
  }
  return response.json();
}

function kpi(label, field, value, text, sub) {
  return el("div", { class: "kpi" },
    el("div", { class: "label", text: label }),
    el("div", { class: "value", "data-field": field, "data-value": value === null || value === undefined ? "" : String(value), text }),
    sub ? el("div", { class: "sub", text: sub }) : null);
}

function boundsText(b) {
  // upper is null when telemetry is incomplete: the estimate is then only a lower bound
  if (!b) return "";
  return b.upper === null || b.upper === undefined ? `at least ${fmtInt(b.lower)}` : `${fmtInt(b.lower)} – ${fmtInt(b.upper)}`;
}

function windowText(window) {
  if (!window) return "";
  if (window.kind === "calendar_month") return `calendar month (${window.time_zone})`;
  return `rolling ${window.length}`;
}

function worstState(slos) {
  let worst = "unknown";
  for (const slo of slos) {
    const state = slo.status === "ok" ? slo.alert_state || "ok" : "unknown";
    if (STATE_RANK[state] > STATE_RANK[worst]) worst = state;
  }
  return worst;
}

function burnClass(rate) {
  if (rate === null || rate === undefined) return "";
  if (rate >= 6) return "burn-hot";
  if (rate >= 1) return "burn-warm";
  return "";
}

function budgetChart(points) {
  // points: [{t: seconds, budget_remaining: fraction}], drawn as remaining budget over the SLO period
  const width = 520, height = 90, pad = 4;
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("role", "img");
  if (!points || points.length < 2) {
    svg.setAttribute("aria-label", "not enough history for a chart yet");
    return svg;
  }
  const t0 = points[0].t, t1 = points[points.length - 1].t;
  // drawn between -100% and +100%: an overspent budget is pinned to the bottom, its number is in the table
  const clamp = (v) => Math.max(-1, Math.min(1, v));
  const values = points.map((p) => clamp(p.budget_remaining));
  const lo = Math.min(0, ...values), hi = 1;
  const x = (t) => pad + ((t - t0) / Math.max(1, t1 - t0)) * (width - 2 * pad);
  const y = (v) => pad + (1 - (v - lo) / (hi - lo)) * (height - 2 * pad);
  const ns = "http://www.w3.org/2000/svg";
  const zero = document.createElementNS(ns, "line");
  zero.setAttribute("class", "zero");
  zero.setAttribute("x1", pad); zero.setAttribute("x2", width - pad);
  zero.setAttribute("y1", y(0)); zero.setAttribute("y2", y(0));
  const path = document.createElementNS(ns, "polyline");
  path.setAttribute("class", "line");
  path.setAttribute("points", points.map((p) => `${x(p.t).toFixed(1)},${y(clamp(p.budget_remaining)).toFixed(1)}`).join(" "));
  svg.append(zero, path);
  const last = points[points.length - 1].budget_remaining;
  svg.setAttribute("aria-label", `error budget remaining over the SLO period, now ${fmtPct(last, 1)}`);
  return svg;
}

function renderSlo(slo, history) {
  const state = slo.status === "ok" ? slo.alert_state || "ok" : "unknown";
  const box = el("div", { class: "slo", "data-slo": slo.name },
    el("div", { class: "slo-head" },
      el("span", { class: `badge state-${state}`, text: state.toUpperCase() }),
      el("strong", { text: slo.name }),
      el("span", { class: "muted", text: `objective ${slo.objective}% · ${windowText(slo.window)}` +
        (slo.budget_remaining !== null && slo.budget_remaining !== undefined ? ` · budget left ${fmtPct(slo.budget_remaining, 1)}` : "") }),
      slo.severity ? el("span", { class: "badge state-page", text: `${slo.severity} · score ${fmtInt(slo.score)}` }) : null),
    slo.reason ? el("div", { class: "muted", text: slo.reason }) : null);
  const alertOf = (seg) => (seg.alert && seg.alert.state) || "ok";
  const segments = (slo.segments || []).slice().sort((a, b) => STATE_RANK[alertOf(b)] - STATE_RANK[alertOf(a)]);
  if (segments.length) {
    const head = el("tr", {}, el("th", { text: "segment" }), el("th", { text: "state" }), el("th", { text: "budget left" }),
      ...BURN_WINDOWS.map((w) => el("th", { text: `burn ${w}` })));
    const rows = segments.map((seg) => {
      const alert = alertOf(seg);
      const burns = seg.burn_rates || {};
      return el("tr", { "data-segment": JSON.stringify(seg.segment || {}) },
        el("td", { text: segmentText(seg.segment) }),
        el("td", {}, el("span", { class: `badge state-${alert}`, text: alert.toUpperCase() })),
        el("td", { text: seg.budget ? fmtPct(seg.budget.remaining, 1) : "–" }),
        ...BURN_WINDOWS.map((w) => {
          const rate = burns[w];
          return el("td", { class: burnClass(rate), "data-burn": w, text: rate === null || rate === undefined ? "–" : rate.toFixed(2) + "×" });
        }));
    });
    box.append(el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
  }
  box.append(budgetChart(history));
  return box;
}

function renderTask(task, impact, slos, top, histories) {
  const state = worstState(slos);
  const section = el("section", { class: `task state-${state}`, "data-task": task.name, "data-state": state });
  const runbooks = (task.runbooks || []).map((r) => el("a", { href: r.url, target: "_blank", rel: "noopener", text: r.title || r.url }));
  section.append(el("div", { class: "task-head" },
    el("h2", { text: task.name }),
    el("span", { class: `badge state-${state}`, text: state.toUpperCase() }),
    runbooks.length ? el("span", { class: "runbooks" }, "runbook: ", ...runbooks) : null));
  if (!impact) {
    section.append(el("div", { class: "muted", text: "No events for this task in the selected window." }));
    return section;
  }
  const telemetry = impact.telemetry || {};
  section.setAttribute("data-telemetry-complete", String(Boolean(telemetry.complete)));
  if (!telemetry.complete) {
    section.append(el("div", { class: "warning", "data-field": "telemetry.reason",
      text: `Telemetry incomplete: ${telemetry.reason || "unknown reason"}. Figures below are lower bounds, not health.` }));
  }
  const events = impact.events || {};
  const latency = impact.latency_ms || {};
  section.append(el("div", { class: "kpis" },
    kpi("impacted users", "impacted_users.estimate", impact.impacted_users.estimate, fmtInt(impact.impacted_users.estimate), boundsText(impact.impacted_users)),
    kpi("users", "users.estimate", impact.users.estimate, fmtInt(impact.users.estimate), boundsText(impact.users)),
    kpi("success", "success_ratio", impact.success_ratio, fmtPct(impact.success_ratio), `${fmtInt(events.bad)} bad of ${fmtInt(events.total)}`),
    kpi("revenue at risk", "revenue_at_risk", impact.revenue_at_risk, fmtMoney(impact.revenue_at_risk), `over ${impact.window}`),
    kpi("latency p95", "latency_ms.p95", latency.p95, fmtMs(latency.p95), `p50 ${fmtMs(latency.p50)} · p99 ${fmtMs(latency.p99)}`)));

  section.append(el("h3", { text: "impacted users by segment" }));
  const segHead = el("tr", {}, el("th", { text: "segment" }), el("th", { text: "events" }), el("th", { text: "bad" }),
    el("th", { text: "success" }), el("th", { text: "impacted users" }), el("th", { text: "bounds" }), el("th", { text: "revenue at risk" }));
  const segRows = (impact.segments || []).map((seg) => el("tr", { class: seg.events.bad ? "row-bad" : "", "data-segment": JSON.stringify(seg.segment) },
    el("td", { text: segmentText(seg.segment) }),
    el("td", { "data-field": "events.total", "data-value": String(seg.events.total), text: fmtInt(seg.events.total) }),
    el("td", { "data-field": "events.bad", "data-value": String(seg.events.bad), text: fmtInt(seg.events.bad) }),
    el("td", { text: fmtPct(seg.success_ratio) }),
    el("td", { "data-field": "impacted_users.estimate", "data-value": String(seg.impacted_users.estimate), text: fmtInt(seg.impacted_users.estimate) }),
    el("td", { text: boundsText(seg.impacted_users) }),
    el("td", { "data-field": "revenue_at_risk", "data-value": String(seg.revenue_at_risk), text: fmtMoney(seg.revenue_at_risk) })));
  section.append(el("table", { class: "segments" }, el("thead", {}, segHead), el("tbody", {}, ...segRows)));

  if (slos.length) {
    section.append(el("h3", { text: "SLOs, burn rates and error budget" }));
    for (const slo of slos) section.append(renderSlo(slo, histories[slo.name]));
  }
  if (top && top.customers && top.customers.length) {
    section.append(el("h3", { text: "top impacted customers (pseudonyms)" }));
    const rows = top.customers.map((c) => el("tr", {}, el("td", { class: "mono", text: c.customer }),
      el("td", { "data-field": "bad_events", "data-value": String(c.bad_events), text: fmtInt(c.bad_events) })));
    section.append(el("table", { class: "top" }, el("thead", {}, el("tr", {}, el("th", { text: "customer" }), el("th", { text: "bad events" }))), el("tbody", {}, ...rows)));
  }
  return section;
}

function renderBanner(allSlos, impacts) {
  const banner = document.getElementById("banner");
  const state = worstState(allSlos);
  banner.className = `banner state-${state}`;
  banner.setAttribute("data-state", state);
  document.getElementById("banner-state").textContent = state.toUpperCase();
  let text = allSlos.length ? "All SLOs within budget." : "No SLOs configured; showing task impact only.";
  const firing = allSlos.filter((s) => s.status === "ok" && s.alert_state === state && state !== "ok");
  if (firing.length) {
    const slo = firing[0];
    const seg = (slo.segments || []).find((s) => s.alert && s.alert.state === state) || {};
    const burns = Object.values(seg.burn_rates || {}).filter((v) => typeof v === "number");
    const burn = burns.length ? Math.max(...burns).toFixed(1) + "× burn" : "";
    const impacted = seg.impact && seg.impact.impacted_users ? `${fmtInt(seg.impact.impacted_users.estimate)} impacted users` : "";
    text = [slo.name + (seg.segment && Object.keys(seg.segment).length ? ` (${segmentText(seg.segment)})` : ""), burn, slo.severity, impacted]
      .filter(Boolean).join(" · ");
  }
  const incomplete = impacts.filter((i) => i && i.telemetry && !i.telemetry.complete).length;
  if (incomplete) text += ` · telemetry incomplete for ${incomplete} task(s)`;
  document.getElementById("banner-text").textContent = text;
}

async function refresh() {
  clearTimeout(timer);
  const windowName = windowChoice();
  const errorBox = document.getElementById("fetch-error");
  try {
    const overview = await getJson(`api/v1/dashboard?window=${encodeURIComponent(windowName)}`);
    refreshSeconds = overview.refresh_seconds || refreshSeconds;
    document.getElementById("refresh-seconds").textContent = String(refreshSeconds);
    const slosDoc = overview.slos_enabled ? await getJson("api/v1/slos") : { slos: [] };
    const allSlos = slosDoc.slos || [];
    const sections = [];
    const impacts = [];
    for (const task of overview.tasks) {
      const q = `task=${encodeURIComponent(task.name)}&window=${encodeURIComponent(windowName)}`;
      const [impact, top] = await Promise.all([
        getJson(`api/v1/impact?${q}`).catch(() => null),
        getJson(`api/v1/customers/top?${q}`).catch(() => null),
      ]);
      impacts.push(impact);
      sections.push(renderTask(task, impact, allSlos.filter((s) => s.task === task.name), top, overview.budget_history || {}));
    }
    const main = document.getElementById("tasks");
    main.replaceChildren(...(sections.length ? sections : [el("p", { class: "muted", text: "No user tasks seen yet. Send spans with impact.task.name, or configure tasks." })]));
    renderBanner(allSlos, impacts);
    const now = new Date();
    const updated = document.getElementById("updated");
    updated.textContent = `updated ${now.toLocaleTimeString()}`;
    updated.setAttribute("data-updated", now.toISOString());
    errorBox.hidden = true;
    document.body.setAttribute("data-ready", "true");
  } catch (error) {
    errorBox.hidden = false;
    errorBox.textContent = `Cannot read the processor (${error.message}). Showing the last good data; retrying every ${refreshSeconds} s.`;
  }
  timer = setTimeout(refresh, refreshSeconds * 1000);
}

document.getElementById("window").addEventListener("change", (event) => {
  location.hash = `window=${event.target.value}`;
  refresh();
});
refresh();
