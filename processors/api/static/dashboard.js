// otel-impact on-call dashboard. Plain JavaScript, no dependencies: everything it shows comes
// from the processor's own JSON API (api/v1/dashboard, api/v1/impact, api/v1/slos,
// api/v1/customers/top, api/v1/explain), fetched with relative URLs so the page also works behind a proxy path.
"use strict";

const STATE_RANK = { page: 3, ticket: 2, ok: 1, unknown: 0 };
const BURN_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];
let refreshSeconds = 10;
let minAttribution = 0.95;
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

const SVG = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function timeLabel(seconds, span) {
  const d = new Date(seconds * 1000);
  if (span > 2 * 86400) return d.toLocaleDateString("en-US", { month: "short", day: "numeric" });
  const withSeconds = span < 600 ? { second: "2-digit" } : {};
  return d.toLocaleTimeString("en-US", { hour: "2-digit", minute: "2-digit", ...withSeconds, hour12: false });
}

function budgetChart(points) {
  // points: [{t: seconds, budget_remaining: fraction}]: the budget left over time, with a time
  // axis (x) and a budget-remaining axis in percent (y)
  const width = 560, height = 160, left = 56, right = 12, top = 10, bottom = 36;
  const svg = svgEl("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img" });
  const plotW = width - left - right, plotH = height - top - bottom;
  svg.append(svgEl("text", { class: "axis-title", x: 12, y: top + plotH / 2, transform: `rotate(-90 12 ${top + plotH / 2})`, "text-anchor": "middle" }, "budget left %"));
  svg.append(svgEl("text", { class: "axis-title", x: left + plotW / 2, y: height - 2, "text-anchor": "middle" }, "time"));
  svg.append(svgEl("line", { class: "axis", x1: left, x2: left, y1: top, y2: top + plotH }));
  svg.append(svgEl("line", { class: "axis", x1: left, x2: left + plotW, y1: top + plotH, y2: top + plotH }));
  if (!points || points.length < 2) {
    svg.setAttribute("aria-label", "not enough history for a chart yet");
    svg.append(svgEl("text", { class: "axis-label", x: left + plotW / 2, y: top + plotH / 2, "text-anchor": "middle" }, "not enough history for a chart yet"));
    return svg;
  }
  // at least a minute wide, so the first minutes of a young processor read as time, not a dot
  const t1 = points[points.length - 1].t, t0 = Math.min(points[0].t, t1 - 60);
  // drawn between -100% and +100%: an overspent budget is pinned to the bottom, its number is in the table
  const clamp = (v) => Math.max(-1, Math.min(1, v));
  const values = points.map((p) => clamp(p.budget_remaining));
  const lo = Math.min(0, ...values) < 0 ? -1 : 0, hi = 1;
  const x = (t) => left + ((t - t0) / Math.max(1, t1 - t0)) * plotW;
  const y = (v) => top + (1 - (v - lo) / (hi - lo)) * plotH;
  for (const v of lo < 0 ? [1, 0.5, 0, -0.5, -1] : [1, 0.5, 0]) {
    svg.append(svgEl("line", { class: "grid", x1: left, x2: left + plotW, y1: y(v), y2: y(v) }));
    svg.append(svgEl("text", { class: "axis-label", x: left - 6, y: y(v) + 4, "text-anchor": "end" }, `${Math.round(v * 100)}%`));
  }
  const span = t1 - t0;
  for (const [t, anchor] of [[t0, "start"], [(t0 + t1) / 2, "middle"], [t1, "end"]]) {
    svg.append(svgEl("line", { class: "axis", x1: x(t), x2: x(t), y1: top + plotH, y2: top + plotH + 4 }));
    svg.append(svgEl("text", { class: "axis-label", x: x(t), y: top + plotH + 16, "text-anchor": anchor }, timeLabel(t, span)));
  }
  svg.append(svgEl("line", { class: "zero", x1: left, x2: left + plotW, y1: y(0), y2: y(0) }));
  svg.append(svgEl("polyline", { class: "line",
    points: points.map((p) => `${x(p.t).toFixed(1)},${y(clamp(p.budget_remaining)).toFixed(1)}`).join(" ") }));
  const last = points[points.length - 1].budget_remaining;
  svg.setAttribute("aria-label", `error budget remaining over the SLO period, now ${fmtPct(last, 1)}`);
  return svg;
}

function budgetText(budget, remaining) {
  // the API's words ("82.3% left", "exhausted: 26× the budget spent"), never a bare negative percentage
  if (budget && budget.text) return budget.text;
  if (remaining === null || remaining === undefined) return "–";
  return remaining <= 0 ? "exhausted" : `${fmtPct(remaining, 1)} left`;
}

function renderSlo(slo, history) {
  const state = slo.status === "ok" ? slo.alert_state || "ok" : "unknown";
  const box = el("div", { class: "slo", "data-slo": slo.name },
    el("div", { class: "slo-head" },
      el("span", { class: `badge state-${state}`, text: state.toUpperCase() }),
      el("strong", { text: slo.name }),
      el("span", { class: "muted", text: `objective ${slo.objective}% · ${windowText(slo.window)}` }),
      slo.budget_remaining !== null && slo.budget_remaining !== undefined
        ? el("span", { class: "budget", "data-field": "budget", "data-value": String(slo.budget_remaining),
          text: `error budget${slo.budget && slo.budget.covers ? " of " + slo.budget.covers : ""}: ${budgetText(slo.budget, slo.budget_remaining)}` })
        : null,
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
        el("td", { "data-field": "budget.remaining", "data-value": seg.budget ? String(seg.budget.remaining) : "",
          text: seg.budget ? budgetText(seg.budget, seg.budget.remaining) : "–" }),
        ...BURN_WINDOWS.map((w) => {
          const rate = burns[w];
          return el("td", { class: burnClass(rate), "data-burn": w, text: rate === null || rate === undefined ? "–" : rate.toFixed(2) + "×" });
        }));
    });
    box.append(el("table", {}, el("thead", {}, head), el("tbody", {}, ...rows)));
  }
  box.append(budgetChart(history));
  if (slo.budget && slo.budget.covers) box.append(el("div", { class: "muted chart-note", text: `error budget left over ${slo.budget.covers}` }));
  return box;
}

function telemetryWarning(telemetry) {
  const reason = telemetry.reason || "unknown reason";
  if (telemetry.state_covers_window === false && telemetry.telemetry_lost === false)
    return `First run: ${reason} (it started after the window's start). Figures are lower bounds (≥), not health, until the processor has run for the whole window.`;
  return `Telemetry incomplete: ${reason}. Figures below are lower bounds, not health.`;
}

function findingText(f) {
  const one = `${f.attribute}=${f.value}`;
  return f.and ? `${one} AND ${f.and.attribute}=${f.and.value}` : one;
}

function renderExplain(explain) {
  // "what failing requests have in common": the API's findings, strongest first
  const box = el("div", { class: "explain", "data-field": "explain" });
  box.append(el("h3", { text: "What failing requests have in common" }));
  if (!explain) {
    box.append(el("div", { class: "muted", text: "Explain is not available for this task." }));
    return box;
  }
  const findings = explain.findings || [];
  const tested = `${fmtInt(explain.failing_events)} failing vs ${fmtInt(explain.passing_events)} passing events; ` +
    `${fmtInt(explain.candidates_tested)} candidate values tested (${explain.scope})`;
  if (!findings.length) {
    box.append(el("div", { class: "muted", "data-field": "explain.none", text: explain.failing_events
      ? `Nothing stands out beyond chance. ${tested}.` : `No failing events in this window. ${tested}.` }));
    return box;
  }
  const head = el("tr", {}, el("th", { text: "value" }), el("th", { text: "of failures" }), el("th", { text: "of successes" }),
    el("th", { text: "difference (95%)" }), el("th", { text: "impacted users" }));
  const rows = findings.slice(0, 5).map((f) => el("tr", { "data-finding": findingText(f) },
    el("td", { class: "mono", text: findingText(f) }),
    el("td", { "data-field": "failing_share", "data-value": String(f.failing_share), text: fmtPct(f.failing_share, 0) }),
    el("td", { "data-field": "passing_share", "data-value": String(f.passing_share), text: fmtPct(f.passing_share, 0) }),
    el("td", { text: `${fmtPct(f.difference.estimate, 0)} (${fmtPct(f.difference.low, 0)} – ${fmtPct(f.difference.high, 0)})` }),
    el("td", { "data-field": "failing_users", "data-value": String(f.failing_users), text: fmtInt(f.failing_users) })));
  box.append(el("table", { class: "findings" }, el("thead", {}, head), el("tbody", {}, ...rows)));
  box.append(el("div", { class: "muted chart-note", text: tested }));
  return box;
}

function renderTask(task, impact, slos, top, histories, completeness, attributionDoc, synthetic, explain) {
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
  // one decision for the whole page: the overview's completeness of this window (the same
  // function answers the impact document's telemetry)
  const telemetry = completeness || impact.telemetry || {};
  section.setAttribute("data-telemetry-complete", String(Boolean(telemetry.complete)));
  if (!telemetry.complete) {
    section.append(el("div", { class: "warning", "data-field": "telemetry.reason", "data-value": telemetry.reason || "",
      text: telemetryWarning(telemetry) }));
  }
  const attribution = impact.attribution || {};
  if (attribution.coverage !== null && attribution.coverage !== undefined && attribution.coverage < minAttribution) {
    section.append(el("div", { class: "warning", "data-field": "attribution.coverage", "data-value": String(attribution.coverage),
      text: `Only ${fmtPct(attribution.coverage)} of ${task.name} events carry the customer (` +
        `${fmtInt(attribution.bad_events_without_customer)} bad events without one): impacted users are undercounted.` }));
  }
  const lossy = ((attributionDoc && attributionDoc.edges) || []).filter((e) => e.coverage !== null && e.coverage < minAttribution);
  for (const edge of lossy) {
    section.append(el("div", { class: "warning", "data-field": "edges.coverage", "data-edge": `${edge.caller} -> ${edge.callee}`,
      "data-value": String(edge.coverage),
      text: `${edge.callee} loses the customer on ${fmtPct(1 - edge.coverage, 1)} of calls from ${edge.caller} ` +
        `(${fmtInt(edge.children_without_customer)} of ${fmtInt(edge.children_with_customer + edge.children_without_customer)} ` +
        "in sampled traces): it does not pass the baggage on." }));
  }
  if (synthetic && synthetic.mismatch) {
    const worse = synthetic.direction === "synthetic_worse" ? "synthetic probes fail more than real users" : "real users fail more than synthetic probes";
    section.append(el("div", { class: "warning", "data-field": "synthetic.mismatch", "data-value": synthetic.direction || "",
      text: `Synthetic and real traffic disagree: ${worse} (synthetic success ${fmtPct(synthetic.success_ratio)}, ` +
        `real ${fmtPct(synthetic.real_success_ratio)}, beyond chance at ${fmtPct(synthetic.confidence)}).` }));
  }
  if (telemetry.delayed) {
    const behind = Math.round(telemetry.behind_seconds || 0);
    section.append(el("div", { class: "warning", "data-field": "telemetry.delayed", "data-value": telemetry.delay_reason || "",
      text: `Data is ${behind} s behind: ${telemetry.delay_reason || "spans arrive late"}.` }));
  }
  const events = impact.events || {};
  const latency = impact.latency_ms || {};
  section.append(el("div", { class: "kpis" },
    kpi("impacted users", "impacted_users.estimate", impact.impacted_users.estimate, fmtInt(impact.impacted_users.estimate), boundsText(impact.impacted_users)),
    kpi("users", "users.estimate", impact.users.estimate, fmtInt(impact.users.estimate), boundsText(impact.users)),
    kpi("success", "success_ratio", impact.success_ratio, fmtPct(impact.success_ratio), `${fmtInt(events.bad)} bad of ${fmtInt(events.total)}`),
    kpi("revenue at risk", "revenue_at_risk", impact.revenue_at_risk, fmtMoney(impact.revenue_at_risk), `over ${impact.window}`),
    kpi("latency p95", "latency_ms.p95", latency.p95, fmtMs(latency.p95), `p50 ${fmtMs(latency.p50)} · p99 ${fmtMs(latency.p99)}`),
    synthetic && synthetic.events.total ? kpi("synthetic success", "synthetic.success_ratio", synthetic.success_ratio,
      fmtPct(synthetic.success_ratio), `${fmtInt(synthetic.events.bad)} bad of ${fmtInt(synthetic.events.total)} probes`) : null));

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

  section.append(renderExplain(explain));

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

function renderBanner(allSlos, incomplete) {
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
    minAttribution = overview.min_attribution ?? minAttribution;
    document.getElementById("refresh-seconds").textContent = String(refreshSeconds);
    const slosDoc = overview.slos_enabled ? await getJson("api/v1/slos") : { slos: [] };
    const allSlos = slosDoc.slos || [];
    const sections = [];
    const telemetry = overview.telemetry || {};
    let incomplete = 0;
    for (const task of overview.tasks) {
      const q = `task=${encodeURIComponent(task.name)}&window=${encodeURIComponent(windowName)}`;
      const [impact, top, attributionDoc, explain] = await Promise.all([
        getJson(`api/v1/impact?${q}`).catch(() => null),
        getJson(`api/v1/customers/top?${q}`).catch(() => null),
        getJson(`api/v1/attribution?${q}`).catch(() => null),
        getJson(`api/v1/explain?${q}`).catch(() => null),
      ]);
      const completeness = telemetry[task.name] || (impact && impact.telemetry);
      if (completeness && !completeness.complete) incomplete += 1;
      const synthetic = (overview.synthetic || {})[task.name];
      sections.push(renderTask(task, impact, allSlos.filter((s) => s.task === task.name), top, overview.budget_history || {},
        completeness, attributionDoc, synthetic, explain));
    }
    const main = document.getElementById("tasks");
    main.replaceChildren(...(sections.length ? sections : [el("p", { class: "muted", text: "No user tasks seen yet. Send spans with impact.task.name, or configure tasks." })]));
    renderBanner(allSlos, incomplete);
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
