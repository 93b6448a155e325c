/* chump: the live dashboard and the HTML report, drawn by one script.
 *
 * The page carries its data in the element #chump-data: null for the live dashboard (which
 * reads /api/v1/state and follows /api/v1/events), a history object for a report. Every
 * string of the data is untrusted: it reaches the page as text (textContent, text nodes,
 * attribute values set through the DOM), never as markup. No framework, no fetch elsewhere.
 */
"use strict";

(() => {
  const OUTCOMES = ["shipped", "ci_failed", "stalled", "killed", "race_abandoned"];
  const EVENT_NAMES = [
    "run-started", "dispatched", "dispatch-failed", "resumed", "state", "outcome", "reflection",
    "retry", "needs-human", "circuit", "budget", "notify", "lost", "reloaded", "run-finished",
    "reset", // the server says events were missed (pruned, or the store replaced): refetch
  ];
  const BOARD_STATES = ["silent", "stalled", "awaiting-pr"]; // anything else in flight: running
  const PALETTE = ["#2f6fde", "#e0752d", "#2e9e5b", "#c2418f", "#7a5bc7", "#3aa3b5", "#b59a2a", "#6b7385"];
  const SVG_NS = "http://www.w3.org/2000/svg";
  const COALESCE_MS = 250; // at most one state fetch per this, however many events arrive
  const POLL_MS = 5000; // without the event stream, poll this often
  const SLOW_POLL_MS = 15000; // with it, still refresh (last activity lines change silently)
  const LOG_TAIL = 50;

  const body = document.body;
  const $ = (id) => document.getElementById(id);

  // --- building DOM from untrusted values --------------------------------------------------

  function setProps(node, props) {
    if (!props) return;
    for (const [key, value] of Object.entries(props)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "dataset") {
        for (const [name, v] of Object.entries(value)) {
          if (v !== null && v !== undefined) node.dataset[name] = String(v);
        }
      } else if (key === "text") {
        node.textContent = String(value);
      } else {
        node.setAttribute(key, String(value));
      }
    }
  }

  function add(node, children) {
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      if (Array.isArray(child)) add(node, child);
      else if (child instanceof Node) node.appendChild(child);
      else node.appendChild(document.createTextNode(String(child)));
    }
    return node;
  }

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    setProps(node, props);
    return add(node, children);
  }

  function svg(tag, props, ...children) {
    const node = document.createElementNS(SVG_NS, tag);
    setProps(node, props);
    return add(node, children);
  }

  // --- values ------------------------------------------------------------------------------

  const arr = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === "object" && !Array.isArray(v) ? v : {});
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const str = (v) => (v === null || v === undefined ? "" : String(v));
  const outcomeClass = (o) => (OUTCOMES.includes(o) ? `o-${o}` : o === null || o === undefined ? "o-running" : "o-other");
  const pad = (n) => String(n).padStart(2, "0");

  function fmtDuration(seconds) {
    let s = num(seconds);
    if (s === null) return "–";
    const sign = s < 0 ? "-" : "";
    s = Math.floor(Math.abs(s));
    if (s < 60) return `${sign}${s}s`;
    if (s < 3600) return `${sign}${Math.floor(s / 60)}m ${pad(s % 60)}s`;
    if (s < 86400) return `${sign}${Math.floor(s / 3600)}h ${pad(Math.floor(s / 60) % 60)}m`;
    return `${sign}${Math.floor(s / 86400)}d ${pad(Math.floor(s / 3600) % 24)}h`;
  }

  function fmtUsd(v) {
    const x = num(v);
    if (x === null) return "–";
    if (x > 0 && x < 0.01) return "<$0.01";
    return `$${x.toLocaleString("en-US", { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
  }

  const fmtInt = (v) => (num(v) === null ? "–" : Math.round(v).toLocaleString("en-US"));
  const fmtPct = (v) => (num(v) === null ? "–" : `${Math.round(v * 100)}%`);

  function fmtDate(ts) {
    const d = new Date(ts * 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  }

  function fmtTime(ts, withDate) {
    if (num(ts) === null) return "–";
    const d = new Date(ts * 1000);
    const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
    return withDate ? `${fmtDate(ts)} ${hm}` : `${hm}:${pad(d.getSeconds())}`;
  }

  // --- mode, clock, token ------------------------------------------------------------------

  function embedded() {
    const node = $("chump-data");
    try {
      return JSON.parse(node ? node.textContent : "null");
    } catch {
      return null; // the raw template (marker not filled): behave as the live page
    }
  }

  const REPORT = obj(embedded());
  const MODE = Object.keys(REPORT).length ? "report" : "live";
  const TOKEN = new URLSearchParams(window.location.search).get("token");
  let clockOffset = 0; // server epoch seconds - this browser's
  const now = () => Date.now() / 1000 + clockOffset;
  let lastData = null;

  function withToken(path) {
    if (!TOKEN) return path;
    return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(TOKEN)}`;
  }

  class HttpError extends Error {
    constructor(status) {
      super(status === 401 ? "unauthorized: open this page with ?token=<the server's token>" : `HTTP ${status}`);
      this.status = status;
    }
  }

  async function api(path) {
    const res = await fetch(withToken(path), { cache: "no-store", headers: { Accept: "application/json" } });
    if (!res.ok) throw new HttpError(res.status);
    return res.json();
  }

  function showError(message) {
    const box = $("error");
    box.hidden = !message;
    box.textContent = message || "";
  }

  // --- header --------------------------------------------------------------------------------

  function renderHeader(data) {
    const repo = str(data.repo);
    let title;
    let subtitle;
    if (MODE === "report") {
      title = `chump report — ${repo}`;
      const since = num(data.since);
      subtitle = `since ${since ? fmtTime(since, true) : "the first dispatch"} · generated ${fmtTime(num(data.generated_at), true)}`;
    } else {
      title = `chump — ${repo}`;
      const owners = arr(data.orchestrators);
      const live = owners.filter((o) => obj(o).live).length;
      subtitle = `max parallel ${str(data.max_parallel)} · orchestrators: ${live} live of ${owners.length} · updated ${fmtTime(num(data.generated_at))}`;
    }
    $("title").textContent = title;
    $("subtitle").textContent = subtitle;
    document.title = title;
  }

  // --- board ---------------------------------------------------------------------------------

  function armLabel(r) {
    if (r.arm) return str(r.arm);
    return str(r.backend) + (r.model ? `:${str(r.model)}` : "");
  }

  function dispatchCard(r) {
    const id = num(r.dispatch_id);
    const card = el("div", {
      class: "card",
      tabindex: "0",
      role: "button",
      title: "show the log tail",
      dataset: { kind: "dispatch", dispatchId: id, gapId: str(r.gap_id), state: str(r.state), watched: String(Boolean(r.watched)) },
    },
      el("div", { class: "gap" }, str(r.gap_id), el("span", { class: "muted" }, ` #${str(id)}`)),
      el("div", { class: "row" }, el("span", { class: "arm" }, armLabel(r)), el("span", {}, `try ${str(r.attempt)}`)),
      el("div", { class: "row" },
        el("span", { class: "elapsed", title: "elapsed", dataset: { since: num(r.started_at) } }),
        el("span", { class: "cost", title: "cost so far" }, fmtUsd(r.cost_usd))),
      el("div", { class: "row" },
        el("span", { class: "deadline", dataset: { deadline: num(r.deadline_at) } }),
        r.watched ? null : el("span", { class: "late", title: "no live orchestrator watches it" }, "unwatched")),
      r.last_activity ? el("div", { class: "activity", title: str(r.last_activity) }, str(r.last_activity)) : null,
    );
    if (id !== null) {
      const open = () => showLog(id, str(r.gap_id));
      card.addEventListener("click", open);
      card.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") {
          ev.preventDefault();
          open();
        }
      });
    }
    return card;
  }

  function retryCard(r) {
    return el("div", { class: "card", dataset: { kind: "retry", gapId: str(r.gap_id), attempt: num(r.attempt) } },
      el("div", { class: "gap" }, str(r.gap_id)),
      el("div", { class: "row" }, el("span", {}, `attempt ${str(r.attempt)}`), el("span", {}, str(r.kind))),
      el("div", { class: "row" }, el("span", {}, str(r.cause)), el("span", { class: "countdown", dataset: { until: num(r.not_before) } })),
    );
  }

  function holdCard(h) {
    return el("div", { class: "card", dataset: { kind: "hold", gapId: str(h.gap_id), dispatchId: num(h.dispatch_id) } },
      el("div", { class: "gap" }, str(h.gap_id)),
      el("div", { class: "row" }, el("span", {}, str(h.cause)), el("span", { class: "ago", dataset: { since: num(h.since) } })),
      h.reason ? el("div", { class: "activity", title: str(h.reason) }, str(h.reason)) : null,
    );
  }

  function renderBoard(data) {
    const columns = new Map([["running", []], ["silent", []], ["stalled", []], ["awaiting-pr", []], ["retrying", []], ["needs-human", []]]);
    for (const r of arr(data.running).map(obj)) {
      columns.get(BOARD_STATES.includes(r.state) ? r.state : "running").push(dispatchCard(r));
    }
    for (const r of arr(data.retries).map(obj)) columns.get("retrying").push(retryCard(r));
    for (const h of arr(data.needs_human).map(obj)) columns.get("needs-human").push(holdCard(h));
    for (const [name, cards] of columns) {
      const column = $(`col-${name}`);
      column.querySelector(".cards").replaceChildren(...cards);
      column.querySelector(".count").textContent = cards.length ? String(cards.length) : "";
      column.dataset.count = String(cards.length);
    }
    $("board-count").textContent = `${arr(data.running).length} in flight of ${str(data.max_parallel)}`;
  }

  let logFor = null;

  async function showLog(id, gap) {
    logFor = id;
    const panel = $("log");
    panel.hidden = false;
    panel.dataset.dispatchId = String(id);
    panel.dataset.loaded = "0";
    $("log-title").textContent = `#${id} ${gap}: last ${LOG_TAIL} lines`;
    await loadLog();
  }

  let logLoading = false; // one log request at a time, however often the state refreshes

  async function loadLog() {
    const id = logFor;
    if (id === null || logLoading) return;
    logLoading = true;
    try {
      const res = obj(await api(`/api/v1/dispatches/${encodeURIComponent(id)}/log?tail=${LOG_TAIL}`));
      if (logFor !== id) return;
      const lines = arr(res.lines).map(str);
      $("log-lines").textContent = lines.length ? lines.join("\n") : "(no output yet)";
    } catch (err) {
      if (logFor !== id) return;
      $("log-lines").textContent = `could not read the log: ${err.message}`;
    } finally {
      logLoading = false;
    }
    $("log").dataset.loaded = "1";
  }

  $("log-close").addEventListener("click", () => {
    logFor = null;
    $("log").hidden = true;
  });

  // --- ticking: elapsed times, deadlines, countdowns, running bars -------------------------

  function tick() {
    const t = now();
    for (const node of document.querySelectorAll(".elapsed[data-since]")) {
      node.textContent = fmtDuration(t - Number(node.dataset.since));
    }
    for (const node of document.querySelectorAll(".ago[data-since]")) {
      node.textContent = `${fmtDuration(t - Number(node.dataset.since))} ago`;
    }
    for (const node of document.querySelectorAll(".deadline[data-deadline]")) {
      const left = Number(node.dataset.deadline) - t;
      node.textContent = left >= 0 ? `deadline in ${fmtDuration(left)}` : `${fmtDuration(-left)} past deadline`;
      node.classList.toggle("late", left < 0);
    }
    for (const node of document.querySelectorAll(".countdown[data-until]")) {
      const left = Number(node.dataset.until) - t;
      node.textContent = left > 0 ? `in ${fmtDuration(left)}` : "due";
    }
    const scale = timelineScale;
    if (scale) {
      const xNow = Math.min(scale.x(t), scale.right);
      for (const bar of document.querySelectorAll("#timeline rect[data-running='1']")) {
        bar.setAttribute("width", String(Math.max(2, xNow - Number(bar.getAttribute("x")))));
      }
    }
  }

  // --- charts --------------------------------------------------------------------------------

  function chartWidth(host) {
    return Math.max(480, Math.floor(host.clientWidth || 0) || 960);
  }

  function niceStep(span, count) {
    const steps = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 1209600, 2592000];
    return steps.find((s) => span / s <= count) || Math.ceil(span / count / 86400) * 86400;
  }

  function legend(host, entries) {
    host.replaceChildren(...entries.map(([label, cls, color]) =>
      el("span", { class: "item", dataset: { legend: label } },
        el("span", { class: `swatch ${cls || ""}`, style: color ? `background:${color}` : null }), label)));
  }

  let timelineScale = null;

  function renderTimeline(timeline, live) {
    const host = $("timeline");
    const bars = arr(obj(timeline).bars).map(obj).filter((b) => num(b.start) !== null);
    legend($("timeline-legend"), [...OUTCOMES.map((o) => [o, `o-${o}`]), ["running", "o-running"]]);
    timelineScale = null;
    if (!bars.length) {
      $("timeline-range").textContent = "";
      host.replaceChildren(el("p", { class: "empty" }, live ? "no dispatch in the last 24 hours" : "no dispatch in this period"));
      return;
    }
    const t = live ? now() : num(REPORT.generated_at) || now();
    let t0 = Infinity;
    let t1 = -Infinity;
    let lanes = num(obj(timeline).lanes) || 0;
    for (const b of bars) {
      t0 = Math.min(t0, b.start);
      t1 = Math.max(t1, num(b.end) ?? t);
      lanes = Math.max(lanes, (num(b.lane) || 0) + 1);
    }
    if (live) t1 = Math.max(t1, t);
    const span = Math.max(t1 - t0, 60);
    t0 -= span * 0.01;
    t1 += span * 0.01;
    const width = chartWidth(host);
    const left = 58;
    const right = width - 12;
    const rowH = Math.max(5, Math.min(20, Math.floor(480 / lanes)));
    const top = 6;
    const height = top + lanes * rowH + 24;
    const k = (right - left) / (t1 - t0);
    const x = (ts) => left + (ts - t0) * k;
    const withDate = t1 - t0 > 86400;
    $("timeline-range").textContent = `${fmtTime(t0, true)} → ${live ? "now" : fmtTime(t1, true)}`;

    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "dispatches per slot over time" });
    for (let lane = 0; lane < lanes; lane++) {
      const y = top + lane * rowH;
      if (lane % 2 === 0) chart.appendChild(svg("rect", { class: "lane-bg", x: left, y, width: right - left, height: rowH }));
      if (rowH >= 10) chart.appendChild(svg("text", { x: left - 6, y: y + rowH * 0.7, "text-anchor": "end" }, `slot ${lane + 1}`));
    }
    const step = niceStep(t1 - t0, 8);
    const axisY = top + lanes * rowH;
    chart.appendChild(svg("line", { class: "axis", x1: left, x2: right, y1: axisY, y2: axisY }));
    for (let tick = Math.ceil(t0 / step) * step; tick <= t1; tick += step) {
      const tx = x(tick);
      chart.appendChild(svg("line", { class: "axis", x1: tx, x2: tx, y1: axisY, y2: axisY + 4 }));
      const label = step >= 86400 ? fmtDate(tick) : withDate ? fmtTime(tick, true) : fmtTime(tick, true).slice(11);
      chart.appendChild(svg("text", { x: tx, y: axisY + 16, "text-anchor": "middle" }, label));
    }
    const pad = rowH > 8 ? 2 : 1;
    for (const b of bars) {
      const running = num(b.end) === null;
      const end = running ? t : b.end;
      const bx = x(b.start);
      const outcome = running ? "running" : str(b.outcome);
      const title = `${str(b.gap_id)} #${str(b.dispatch_id)} · ${str(b.backend)} · attempt ${str(b.attempt)} · ${running ? str(b.state) : outcome} · ${fmtDuration(end - b.start)}`;
      chart.appendChild(svg("rect", {
        class: `bar ${running ? "o-running" : outcomeClass(b.outcome)}`,
        x: bx,
        y: top + (num(b.lane) || 0) * rowH + pad,
        width: Math.max(2, Math.min(x(end), right) - bx),
        height: rowH - 2 * pad,
        rx: rowH > 8 ? 2 : 0,
        dataset: { dispatchId: num(b.dispatch_id), gapId: str(b.gap_id), outcome, state: str(b.state), lane: num(b.lane), running: running ? "1" : null },
      }, svg("title", {}, title)));
    }
    if (live) {
      chart.appendChild(svg("line", { class: "now", x1: x(t), x2: x(t), y1: top, y2: axisY }));
      timelineScale = { x, right };
    }
    host.replaceChildren(chart);
  }

  function renderOutcomes(totals) {
    const byOutcome = obj(totals.by_outcome);
    const entries = Object.entries(byOutcome).filter(([, n]) => num(n) !== null);
    entries.sort((a, b) => {
      const ia = OUTCOMES.indexOf(a[0]);
      const ib = OUTCOMES.indexOf(b[0]);
      return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || b[1] - a[1];
    });
    const ended = entries.reduce((sum, [, n]) => sum + n, 0);
    const stack = el("div", { class: "stack" }, entries.filter(([, n]) => n > 0).map(([name, n]) =>
      el("span", { class: outcomeClass(name), style: `width:${(100 * n) / ended}%`, title: `${name}: ${n}` })));
    const rows = entries.map(([name, n]) => el("tr", { dataset: { outcome: name } },
      el("td", {}, el("span", { class: `swatch legend-dot ${outcomeClass(name)}` }), name),
      el("td", { class: "num" }, fmtInt(n)),
      el("td", { class: "num" }, ended ? fmtPct(n / ended) : "–")));
    $("outcomes").replaceChildren(
      el("dl", { class: "figures" },
        el("dt", {}, "dispatches"), el("dd", { id: "total-dispatches" }, fmtInt(totals.dispatches)),
        el("dt", {}, "ended"), el("dd", {}, fmtInt(totals.ended)),
        el("dt", {}, "ship rate"), el("dd", { id: "ship-rate" }, fmtPct(totals.ship_rate))),
      ended ? stack : null,
      rows.length
        ? el("table", { id: "outcomes-table" }, el("thead", {}, el("tr", {}, el("th", {}, "outcome"), el("th", { class: "num" }, "count"), el("th", { class: "num" }, "share"))), el("tbody", {}, rows))
        : el("p", { class: "empty" }, "no dispatch has ended yet"),
    );
  }

  function meter(value, limit) {
    const v = num(value) || 0;
    const l = num(limit);
    if (!l) return null;
    const share = Math.min(1, v / l);
    return el("div", { class: v > l ? "meter over" : "meter", title: `${fmtUsd(v)} of ${fmtUsd(l)}` }, el("span", { style: `width:${(share * 100).toFixed(1)}%` }));
  }

  function renderCosts(data) {
    const totals = obj(data.totals);
    const figures = el("dl", { class: "figures" },
      el("dt", {}, "total"), el("dd", { id: "cost-total" }, fmtUsd(totals.cost_usd)),
      el("dt", {}, "tokens in"), el("dd", {}, fmtInt(totals.tokens_in)),
      el("dt", {}, "tokens out"), el("dd", {}, fmtInt(totals.tokens_out)));
    if (MODE === "live") {
      const b = obj(data.budgets);
      figures.append(
        el("dt", {}, "spent today"), el("dd", { id: "spent-today" }, fmtUsd(b.spent_today_usd), b.daily_usd ? ` of ${fmtUsd(b.daily_usd)} a day` : " (no daily budget)"),
        el("dt", {}, ""), el("dd", {}, meter(b.spent_today_usd, b.daily_usd)),
        el("dt", {}, "run budget"), el("dd", {}, b.run_usd ? fmtUsd(b.run_usd) : "none"),
        el("dt", {}, "over budget"), el("dd", {}, str(b.on_budget) || "–"),
      );
    }
    $("costs").replaceChildren(figures);
  }

  function renderRouting(routing) {
    const rows = arr(routing).map(obj);
    if (!rows.length) {
      $("routing").replaceChildren(el("p", { class: "empty" }, "no routing outcome yet"));
      return;
    }
    $("routing").replaceChildren(el("table", { id: "routing-table" },
      el("thead", {}, el("tr", {}, el("th", {}, "arm"), el("th", { class: "num" }, "ok"), el("th", { class: "num" }, "failed"), el("th", {}, "posterior mean"))),
      el("tbody", {}, rows.map((r) => {
        const mean = num(r.mean);
        return el("tr", { dataset: { arm: str(r.arm), mean: mean } },
          el("td", { class: "mono" }, str(r.arm)),
          el("td", { class: "num" }, fmtInt(r.successes)),
          el("td", { class: "num" }, fmtInt(r.failures)),
          el("td", {}, el("div", { class: "mean" },
            el("div", { class: "meter", title: mean === null ? "" : mean.toFixed(3) },
              el("span", { style: `width:${((mean || 0) * 100).toFixed(1)}%` })),
            el("span", { class: "num" }, mean === null ? "–" : mean.toFixed(2)))));
      }))));
  }

  function renderCircuits(circuits) {
    const rows = arr(circuits).map(obj);
    $("circuits").replaceChildren(rows.length
      ? el("ul", { id: "circuit-list" }, rows.map((c) => el("li", { dataset: { arm: str(c.arm) } },
        el("strong", { class: "mono" }, str(c.arm)), ` since ${fmtTime(num(c.opened_at), true)}: `, str(c.message))))
      : el("p", { class: "empty" }, "none open"));
  }

  function renderRecent(recent) {
    const rows = arr(recent).map(obj).map((r) => el("tr", { dataset: { dispatchId: num(r.dispatch_id), outcome: str(r.outcome) } },
      el("td", {}, fmtTime(num(r.ended_at), true)),
      el("td", { class: "mono" }, str(r.gap_id)),
      el("td", {}, str(r.backend) + (r.model ? `:${str(r.model)}` : "")),
      el("td", { class: "num" }, str(r.attempt)),
      el("td", {}, el("span", { class: `pill ${outcomeClass(r.outcome)}` }, str(r.outcome))),
      el("td", {}, str(r.cause)),
      el("td", { class: "num" }, fmtDuration(r.duration_s)),
      el("td", { class: "num" }, fmtUsd(r.cost_usd)),
      el("td", { class: "num" }, num(r.pr_number) === null ? "" : `#${r.pr_number}`),
      el("td", { class: "reason", title: str(r.reason) }, str(r.reason))));
    const tbody = $("recent").querySelector("tbody");
    tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: "10", class: "empty" }, "nothing ended yet"))]));
  }

  function backendsOf(days) {
    return [...new Set(days.map((d) => str(d.backend)))].sort();
  }

  function colorOf(backends, name) {
    return PALETTE[backends.indexOf(name) % PALETTE.length];
  }

  function renderDays(days) {
    const host = $("days");
    if (!days.length) {
      host.replaceChildren(el("p", { class: "empty" }, "no dispatch ended in this period"));
      return;
    }
    const backends = backendsOf(days);
    const names = [...new Set(days.map((d) => str(d.day)))].sort();
    const perDay = new Map(names.map((n) => [n, []]));
    for (const d of days) perDay.get(str(d.day)).push(d);
    const top = Math.max(...names.map((n) => perDay.get(n).reduce((s, d) => s + (num(d.cost_usd) || 0), 0)), 0.01);
    const width = chartWidth(host);
    const height = 170;
    const left = 58;
    const bottom = height - 22;
    const slot = (width - left - 12) / names.length;
    const y = (v) => bottom - (v / top) * (bottom - 10);
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "cost per day" });
    chart.appendChild(svg("line", { class: "axis", x1: left, x2: width - 12, y1: bottom, y2: bottom }));
    chart.appendChild(svg("text", { x: left - 6, y: 14, "text-anchor": "end" }, fmtUsd(top)));
    chart.appendChild(svg("text", { x: left - 6, y: bottom, "text-anchor": "end" }, "$0"));
    const every = Math.ceil(names.length / 12);
    names.forEach((name, i) => {
      let base = 0;
      const barW = Math.max(1, Math.min(slot * 0.7, 40));
      const x = left + i * slot + (slot - barW) / 2;
      for (const d of perDay.get(name)) {
        const cost = num(d.cost_usd) || 0;
        const y0 = y(base);
        const y1 = y(base + cost);
        base += cost;
        chart.appendChild(svg("rect", {
          x, y: y1, width: barW, height: Math.max(0, y0 - y1), fill: colorOf(backends, str(d.backend)),
          dataset: { day: name, backend: str(d.backend), cost: cost },
        }, svg("title", {}, `${name} ${str(d.backend)}: ${fmtUsd(cost)}, ${fmtInt(d.ended)} ended, ${fmtInt(d.shipped)} shipped`)));
      }
      if (i % every === 0) chart.appendChild(svg("text", { x: x + barW / 2, y: height - 6, "text-anchor": "middle" }, name.slice(5)));
    });
    host.replaceChildren(chart);
  }

  function renderShipRate(days) {
    const host = $("shiprate");
    const backends = backendsOf(days);
    legend($("shiprate-legend"), backends.map((b) => [b, "", colorOf(backends, b)]));
    if (!days.length) {
      host.replaceChildren(el("p", { class: "empty" }, "no dispatch ended in this period"));
      return;
    }
    const names = [...new Set(days.map((d) => str(d.day)))].sort();
    const width = chartWidth(host);
    const height = 170;
    const left = 58;
    const right = width - 28;
    const bottom = height - 22;
    const topY = 10;
    const x = (i) => (names.length === 1 ? (left + right) / 2 : left + (i * (right - left)) / (names.length - 1));
    const y = (rate) => bottom - rate * (bottom - topY);
    const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": "ship rate per backend per day" });
    for (const rate of [0, 0.5, 1]) {
      chart.appendChild(svg("line", { class: "axis", x1: left, x2: right, y1: y(rate), y2: y(rate) }));
      chart.appendChild(svg("text", { x: left - 6, y: y(rate) + 4, "text-anchor": "end" }, fmtPct(rate)));
    }
    const every = Math.ceil(names.length / 12);
    names.forEach((name, i) => {
      if (i % every === 0) chart.appendChild(svg("text", { x: x(i), y: height - 6, "text-anchor": "middle" }, name.slice(5)));
    });
    for (const backend of backends) {
      const color = colorOf(backends, backend);
      const points = days.filter((d) => str(d.backend) === backend && num(d.ended) > 0)
        .map((d) => ({ i: names.indexOf(str(d.day)), day: str(d.day), shipped: num(d.shipped) || 0, ended: d.ended }))
        .sort((a, b) => a.i - b.i);
      const group = svg("g", { class: "series", dataset: { backend } });
      if (points.length > 1) {
        group.appendChild(svg("polyline", { fill: "none", stroke: color, "stroke-width": 2, points: points.map((p) => `${x(p.i)},${y(p.shipped / p.ended)}`).join(" ") }));
      }
      for (const p of points) {
        const rate = p.shipped / p.ended;
        group.appendChild(svg("circle", { cx: x(p.i), cy: y(rate), r: 3.5, fill: color, dataset: { day: p.day, rate: rate.toFixed(3) } },
          svg("title", {}, `${backend} ${p.day}: ${p.shipped}/${p.ended} shipped (${fmtPct(rate)})`)));
      }
      chart.appendChild(group);
    }
    host.replaceChildren(chart);
  }

  // --- rendering -----------------------------------------------------------------------------

  function section(name, draw) {
    try {
      draw();
      return null;
    } catch (err) {
      console.error(`chump: drawing ${name} failed`, err);
      return `${name}: ${err.message}`;
    }
  }

  function render(data) {
    lastData = data;
    const totals = obj(data.totals);
    const failed = [
      section("header", () => renderHeader(data)),
      MODE === "live" ? section("board", () => renderBoard(data)) : null,
      section("timeline", () => renderTimeline(data.timeline, MODE === "live")),
      section("outcomes", () => renderOutcomes(totals)),
      section("costs", () => renderCosts(data)),
      section("routing", () => renderRouting(data.routing)),
      MODE === "live" ? section("circuits", () => renderCircuits(data.circuits)) : null,
      MODE === "report" ? section("cost per day", () => renderDays(arr(data.days).map(obj))) : null,
      MODE === "report" ? section("ship rate", () => renderShipRate(arr(data.days).map(obj))) : null,
      section("recent", () => renderRecent(data.recent)),
    ].filter(Boolean);
    if (MODE === "live") tick();
    if (failed.length) showError(`could not draw ${failed.join("; ")}`);
    body.dataset.renders = String((Number(body.dataset.renders) || 0) + 1);
    if (body.dataset.ready !== "1") {
      body.dataset.readyMs = performance.now().toFixed(1);
      body.dataset.ready = "1";
    }
  }

  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => lastData && render(lastData), 150);
  });

  // --- live: state fetches driven by the event stream --------------------------------------

  let fetchTimer = null;
  let lastFetch = 0;
  let inFlight = false;
  let fetchAgain = false;
  let streamOpen = false;
  let fetchFailed = false;
  let connected = false;
  let stream = null;

  function showConnection() {
    const node = $("conn");
    let state = "connecting";
    if (fetchFailed) state = "offline";
    else if (streamOpen) state = "live";
    else if (connected) state = "polling";
    node.dataset.state = state;
    $("conn-text").textContent = { connecting: "connecting", live: "live", polling: "polling", offline: "offline" }[state];
  }

  function scheduleFetch() {
    if (fetchTimer !== null) return;
    const wait = Math.max(0, lastFetch + COALESCE_MS - Date.now());
    fetchTimer = setTimeout(() => {
      fetchTimer = null;
      refresh();
    }, wait);
  }

  async function refresh() {
    if (inFlight) {
      fetchAgain = true;
      return;
    }
    inFlight = true;
    lastFetch = Date.now();
    try {
      const sent = Date.now();
      const data = obj(await api("/api/v1/state"));
      const at = num(data.generated_at);
      if (at !== null) clockOffset = at - (sent + Date.now()) / 2000;
      fetchFailed = false;
      connected = true;
      showError(null);
      render(data);
      if (logFor !== null) loadLog();
    } catch (err) {
      fetchFailed = true;
      showError(`cannot read the state: ${err.message}`);
    } finally {
      inFlight = false;
      showConnection();
      if (fetchAgain) {
        fetchAgain = false;
        scheduleFetch();
      }
    }
  }

  function onEvent(ev) {
    body.dataset.events = String((Number(body.dataset.events) || 0) + 1);
    if (ev && ev.lastEventId) body.dataset.lastSeq = ev.lastEventId;
    scheduleFetch();
  }

  function openStream() {
    if (typeof EventSource !== "function") return;
    stream = new EventSource(withToken("/api/v1/events"));
    stream.onopen = () => {
      streamOpen = true;
      showConnection();
      scheduleFetch(); // whatever happened while it was closed
    };
    stream.onerror = () => {
      streamOpen = false;
      showConnection();
      if (stream.readyState === EventSource.CLOSED) {
        stream = null;
        setTimeout(openStream, POLL_MS); // the browser gave up: try again later
      }
    };
    stream.onmessage = onEvent;
    for (const name of EVENT_NAMES) stream.addEventListener(name, onEvent);
  }

  function startLive() {
    body.dataset.mode = "live";
    showConnection();
    refresh();
    openStream();
    setInterval(() => {
      if (!streamOpen || Date.now() - lastFetch >= SLOW_POLL_MS) scheduleFetch();
    }, POLL_MS);
    setInterval(tick, 1000);
  }

  function startReport() {
    body.dataset.mode = "report";
    $("conn").dataset.state = "report";
    render(REPORT);
  }

  if (MODE === "report") startReport();
  else startLive();
})();
