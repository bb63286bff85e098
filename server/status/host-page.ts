/**
 * One host's page (/status/hosts/<mac>): one self-contained HTML document
 * like the overview (no external scripts, fonts or styles). It renders
 * /status/hosts/<mac>.json, read again every two seconds, and draws each
 * recent boot as SVG. The host's log comes from the admin API with the
 * admin token, which the page keeps in sessionStorage only and sends as a
 * header, never in a URL. Every value is put in with textContent or as an
 * SVG attribute, never as HTML.
 */
export function hostPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rackboot host</title>
<style>
  :root { --fg: #1d2329; --muted: #66707a; --line: #dde2e7; --bg: #f6f8fa; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --run: #0969da; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: 1rem; align-items: baseline; padding: .8rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.15rem; margin: 0; font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; }
  header a { color: var(--run); text-decoration: none; }
  header .meta { color: var(--muted); }
  #live { margin-left: auto; font-size: .85rem; color: var(--muted); }
  #live.on::before { content: "\\25CF "; color: var(--ok); }
  main { padding: 1rem 1.2rem; display: grid; gap: 1rem; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  section h2 { font-size: 1rem; margin: 0 0 .6rem; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .2rem .8rem; margin: 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid var(--line); }
  th { font-weight: 600; color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
  .stage { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .8rem; background: #eef1f4; }
  .stage.ready { background: #dafbe1; color: var(--ok); }
  .stage.failing { background: #ffebe9; color: var(--bad); }
  .empty, .note { color: var(--muted); }
  .boot { margin-bottom: 1rem; padding-bottom: .6rem; border-bottom: 1px solid var(--line); }
  .boot:last-child { border-bottom: 0; margin-bottom: 0; }
  .boot h3 { font-size: .9rem; margin: 0 0 .3rem; font-weight: 600; }
  .boot h3 .outcome.failed { color: var(--bad); }
  .boot h3 .outcome.ready { color: var(--ok); }
  .boot svg { width: 100%; height: auto; display: block; }
  .boot svg text { font: 11px system-ui, sans-serif; }
  .legend { display: flex; flex-wrap: wrap; gap: .2rem 1rem; font-size: .8rem; color: var(--muted); margin-top: .2rem; }
  .legend .key { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px; margin-right: .3rem; vertical-align: -1px; }
  .legend .failed { color: var(--bad); }
  .failures { margin: .3rem 0 0; padding-left: 1.2rem; color: var(--bad); font-size: .85rem; }
  .controls { display: flex; flex-wrap: wrap; gap: .6rem; margin-bottom: .6rem; align-items: center; }
  .controls input, .controls select, form input { padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
  #log-search { flex: 1; min-width: 12rem; }
  button { padding: .3rem .7rem; font: inherit; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
  #log-lines { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .8rem; max-height: 32rem; overflow: auto; background: #0d1117; color: #e6edf3; border-radius: 4px; padding: .4rem .6rem; }
  #log-lines .line { white-space: pre-wrap; overflow-wrap: anywhere; }
  #log-lines .time { color: #7d8590; }
  #log-lines .app { color: #79c0ff; }
  #log-lines .sev-0, #log-lines .sev-1, #log-lines .sev-2, #log-lines .sev-3 { color: #ff7b72; }
  #log-lines .sev-4 { color: #d29922; }
  #log-status { color: var(--muted); font-size: .85rem; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <a href="/status">&larr; all hosts</a>
  <h1 id="mac"></h1>
  <span id="hostname" class="meta"></span>
  <span id="stage" class="stage"></span>
  <span id="live">loading</span>
</header>
<main>
  <section id="summary-section">
    <h2>Host</h2>
    <dl id="summary"></dl>
  </section>
  <section id="profile-section">
    <h2>Profile <span class="meta" id="profile-file"></span></h2>
    <dl id="profile"></dl>
    <table id="domains"><thead><tr><th>Domain</th><th>Memory</th><th>vCPUs</th><th>Starts</th><th>Image</th></tr></thead><tbody></tbody></table>
  </section>
  <section id="boots-section" class="wide">
    <h2>Recent boots <span class="meta" id="boot-count"></span></h2>
    <div id="boots"></div>
  </section>
  <section id="log-section" class="wide">
    <h2>Log</h2>
    <form id="token-form">
      <p id="log-note" class="note">The log needs the admin token (the file admin.token in the server's state folder). It is kept in this tab only.</p>
      <input id="token" type="password" autocomplete="off" placeholder="Admin token" size="48">
      <button type="submit">Show the log</button>
    </form>
    <div id="log-view" hidden>
      <div class="controls">
        <select id="log-boot"><option value="">All boots</option></select>
        <input id="log-search" type="search" placeholder="Search the log" autocomplete="off">
        <span id="log-status"></span>
        <button id="forget-token" type="button">Forget the token</button>
      </div>
      <div id="log-lines"></div>
    </div>
  </section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const svgNs = "http://www.w3.org/2000/svg";
const failureStages = new Set(["failed", "setting-failed", "domain-failed", "guest-failed", "tftp-failed", "dhcp-nak", "refused"]);
const phaseColours = { dhcp: "#54aeff", tftp: "#0969da", files: "#8250df", kernel: "#bf8700", runtime: "#1a7f37", domains: "#2da44e" };
const asked = decodeURIComponent(location.pathname.split("/").filter(Boolean).pop() || "");
let mac = asked;
let shown = "";

function svg(name, attributes, parent) {
  const element = document.createElementNS(svgNs, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (parent) parent.append(element);
  return element;
}

function seconds(value) {
  if (value === null || value === undefined) return "";
  return value < 10 ? value.toFixed(1) + " s" : value < 120 ? Math.round(value) + " s" : Math.floor(value / 60) + " min " + Math.round(value % 60) + " s";
}

function clock(ms) {
  const date = new Date(ms);
  return date.toLocaleTimeString([], { hour12: false }) + "." + String(date.getMilliseconds()).padStart(3, "0");
}

function describe(dl, pairs) {
  dl.replaceChildren();
  for (const [term, value, title] of pairs) {
    if (value === null || value === undefined || value === "") continue;
    const dt = document.createElement("dt");
    dt.textContent = term;
    const dd = document.createElement("dd");
    dd.textContent = String(value);
    if (title) dd.title = title;
    dl.append(dt, dd);
  }
}

function renderSummary(data) {
  const h = data.host;
  $("mac").textContent = h.mac;
  $("hostname").textContent = h.hostname || "";
  document.title = (h.hostname || h.mac) + " \\u2013 rackboot";
  const stage = $("stage");
  stage.textContent = h.stage;
  stage.className = "stage" + (h.stage === "ready" ? " ready" : failureStages.has(h.stage) ? " failing" : "");
  const lease = data.lease;
  const build = data.build;
  describe($("summary"), [
    ["Address", h.address],
    ["Last seen", new Date(h.lastSeen).toLocaleString()],
    ["Last boot", h.lastBootSeconds === null ? "" : seconds(h.lastBootSeconds) + (h.lastReadyAt ? ", ready at " + new Date(h.lastReadyAt).toLocaleString() : "")],
    ["Failures", h.failures ? h.failures + (h.lastFailure ? ": " + h.lastFailure : "") : "none this boot"],
    ["Alarms", h.alarms ? h.alarms + ": " + (h.lastAlarm || "") : ""],
    ["Build (ran)", build.reported ? build.reported : "no ready report yet"],
    ["Xen, kernel", build.xen || build.kernel ? (build.xen || "?") + ", " + (build.kernel || "?") : ""],
    ["Channel", build.pinned ? "pinned to build " + build.pinned : build.channel],
    ["Next boot gets", build.next ? build.next : build.nextReason, build.nextReason || ""],
    ["Lease", lease ? lease.address + " (" + lease.state + " until " + new Date(lease.expiresAt).toLocaleString() + ")" : "none from this server"],
    ["Slot", h.slot],
    ["Storage", h.storage],
  ]);
}

function renderProfile(data) {
  const p = data.profile;
  $("profile-file").textContent = p ? p.from : "";
  const body = $("domains").tBodies[0];
  body.replaceChildren();
  if (!p) {
    describe($("profile"), [["Profile", "none: no profile file matches this host"]]);
    $("domains").hidden = true;
    return;
  }
  const net = p.network;
  describe($("profile"), [
    ["Hostname", p.hostname],
    ["Network", net.mode === "dhcp" ? "DHCP" : "static " + net.address + (net.gateway ? ", gateway " + net.gateway : "") + (net.dns.length ? ", DNS " + net.dns.join(" ") : "")],
    ["Group", p.group],
    ["Slot", p.slot],
    ["Boot entry", p.boot.entry + (p.boot.menuTimeout ? ", menu " + p.boot.menuTimeout + " s" : ", no menu")],
    ["Channel", p.boot.pinnedBuild ? "build " + p.boot.pinnedBuild + " (pinned)" : p.boot.channel],
    ["Rollout reboots", p.boot.allowReboot ? "allowed" : "never"],
    ["SSH", p.ssh ? "on, " + p.sshKeys + " key" + (p.sshKeys === 1 ? "" : "s") : "off"],
    ["Root password", p.rootPassword ? "set" : "locked"],
    ["Timezone", p.timezone],
    ["apt update", p.aptUpdate ? "yes" : "no"],
    ["BMC", p.bmc ? "configured" : "none"],
  ]);
  $("domains").hidden = p.domains.length === 0;
  for (const d of p.domains) {
    const row = body.insertRow();
    row.insertCell().textContent = d.name;
    row.insertCell().textContent = d.memory + " MiB";
    row.insertCell().textContent = String(d.vcpus);
    row.insertCell().textContent = d.autostart ? "at boot" : "by hand";
    row.insertCell().textContent = d.image;
  }
}

/** A tick step of about a tenth of the span, in whole seconds where it can be. */
function tickStep(spanSeconds) {
  for (const step of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]) if (spanSeconds / step <= 10) return step;
  return 7200;
}

function drawBoot(boot, spanMs) {
  const left = 104, right = 990, rowHeight = 26, laneHeight = 16, top = 6;
  const x = (time) => left + ((time - boot.startedAt) / spanMs) * (right - left);
  const height = top + rowHeight + 14 + boot.domains.length * (laneHeight + 6) + 22;
  const chart = svg("svg", { viewBox: "0 0 1000 " + height, role: "img" });
  svg("title", {}, chart).textContent = "Boot at " + new Date(boot.startedAt).toLocaleString();
  svg("text", { x: 0, y: top + rowHeight / 2 + 4, fill: "#66707a" }, chart).textContent = boot.fromDhcp ? "boot" : "boot (start unseen)";
  const bar = svg("g", { class: "bar" }, chart);
  for (const segment of boot.segments) {
    const group = svg("g", { class: "segment", "data-phase": segment.phase, "data-seconds": segment.seconds, "data-failed": segment.failed }, bar);
    const x0 = x(segment.start), width = Math.max(1.5, x(segment.end) - x0);
    const fill = segment.failed ? "#cf222e" : phaseColours[segment.phase];
    svg("rect", { x: x0, y: top, width, height: rowHeight, fill, rx: 2, "fill-opacity": segment.open ? 0.45 : 1, stroke: "#fff", "stroke-width": 1 }, group);
    const words = segment.label + " " + seconds(segment.seconds) + (segment.open ? " so far" : "");
    svg("title", {}, group).textContent = words + (segment.detail ? ": " + segment.detail : "");
    // The words where they fit, else the time alone; the legend below has them all.
    const short = seconds(segment.seconds);
    const fits = width > words.length * 6 + 8 ? words : width > short.length * 6 + 8 ? short : "";
    if (fits) svg("text", { x: x0 + 4, y: top + rowHeight / 2 + 4, fill: "#fff" }, group).textContent = fits;
  }
  // Every event of the boot as a tick under the bar, its words as its title.
  const ticks = svg("g", { class: "ticks" }, chart);
  for (const event of boot.events) {
    const tx = x(event.time);
    const tick = svg("line", { x1: tx, x2: tx, y1: top + rowHeight + 1, y2: top + rowHeight + 7, stroke: failureStages.has(event.stage) ? "#cf222e" : "#8c959f", "stroke-width": 1 }, ticks);
    svg("title", {}, tick).textContent = clock(event.time) + " " + event.source + " " + event.stage + (event.domain ? " " + event.domain : "") + (event.detail ? ": " + event.detail : "");
  }
  let y = top + rowHeight + 14;
  for (const lane of boot.domains) {
    const group = svg("g", { class: "domain", "data-domain": lane.name, "data-outcome": lane.outcome, "data-seconds": lane.seconds === null ? "" : lane.seconds }, chart);
    svg("text", { x: 0, y: y + laneHeight / 2 + 4, fill: "#1d2329" }, group).textContent = lane.name;
    const colour = lane.outcome === "failed" ? "#cf222e" : lane.outcome === "ready" ? "#2da44e" : "#8c959f";
    const words = lane.outcome === "ready" ? seconds(lane.seconds) + " to ready" : lane.outcome === "failed" ? "failed" + (lane.seconds !== null ? " after " + seconds(lane.seconds) : "") : "started, no ready report";
    if (lane.start !== null) {
      const x0 = x(lane.start), x1 = x(lane.end !== null ? lane.end : boot.endedAt);
      svg("rect", { x: x0, y, width: Math.max(1.5, x1 - x0), height: laneHeight, fill: colour, rx: 2, "fill-opacity": lane.outcome === "starting" ? 0.4 : 1 }, group);
      // Inside the bar where it fits, else beside it on whichever side has room.
      const room = words.length * 6 + 8;
      const label = x1 - x0 > room ? svg("text", { x: x0 + 4, y: y + laneHeight / 2 + 4, fill: "#fff" }, group)
        : right - x1 > room ? svg("text", { x: x1 + 4, y: y + laneHeight / 2 + 4, fill: colour }, group)
        : svg("text", { x: x0 - 4, y: y + laneHeight / 2 + 4, fill: colour, "text-anchor": "end" }, group);
      label.textContent = words;
    } else if (lane.end !== null) {
      const mx = x(lane.end);
      svg("path", { d: "M" + mx + " " + y + " l6 " + laneHeight / 2 + " l-6 " + laneHeight / 2 + " l-6 -" + laneHeight / 2 + " z", fill: colour }, group);
      svg("text", { x: Math.min(mx + 8, right - 100), y: y + laneHeight / 2 + 4, fill: colour }, group).textContent = "not started";
    }
    svg("title", {}, group).textContent = lane.name + ": " + words + (lane.detail ? " (" + lane.detail + ")" : "");
    y += laneHeight + 6;
  }
  // The time axis, shared by every boot on the page so they compare.
  const axis = svg("g", { class: "axis" }, chart);
  svg("line", { x1: left, x2: right, y1: y + 2, y2: y + 2, stroke: "#dde2e7" }, axis);
  const step = tickStep(spanMs / 1000);
  for (let t = 0; t * 1000 <= spanMs; t += step) {
    const tx = left + ((t * 1000) / spanMs) * (right - left);
    svg("line", { x1: tx, x2: tx, y1: y, y2: y + 5, stroke: "#8c959f" }, axis);
    svg("text", { x: tx, y: y + 17, fill: "#66707a", "text-anchor": "middle" }, axis).textContent = seconds(t).replace(".0 s", " s");
  }
  return chart;
}

function renderBoots(data) {
  const boots = data.boots;
  const container = $("boots");
  container.replaceChildren();
  $("boot-count").textContent = boots.length ? "(newest " + boots.length + ", one time scale)" : "";
  if (boots.length === 0) {
    const p = document.createElement("p");
    p.className = "empty";
    p.textContent = "No boot on its timeline.";
    container.append(p);
    return;
  }
  const extent = (boot) => Math.max(boot.endedAt, ...boot.domains.map((d) => d.end || 0)) - boot.startedAt;
  const spanMs = Math.max(1000, ...boots.map(extent));
  boots.forEach((boot, index) => {
    const block = document.createElement("div");
    block.className = "boot " + boot.outcome.replace(" ", "-");
    block.dataset.index = String(index);
    const heading = document.createElement("h3");
    const outcome = document.createElement("span");
    outcome.className = "outcome " + boot.outcome.replace(" ", "-");
    outcome.textContent = boot.outcome === "ready" ? "ready in " + seconds(boot.seconds) : boot.outcome === "failed" ? "failed after " + seconds(boot.seconds) : "in progress";
    heading.append(new Date(boot.startedAt).toLocaleString() + ": ", outcome);
    block.append(heading, drawBoot(boot, spanMs));
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const segment of boot.segments) {
      const item = document.createElement("span");
      item.className = "phase" + (segment.failed ? " failed" : "");
      item.dataset.phase = segment.phase;
      const key = document.createElement("span");
      key.className = "key";
      key.style.background = segment.failed ? "#cf222e" : phaseColours[segment.phase];
      item.append(key, segment.label + " " + seconds(segment.seconds) + (segment.open ? " so far" : ""));
      legend.append(item);
    }
    block.append(legend);
    if (boot.failures.length > 0) {
      const list = document.createElement("ul");
      list.className = "failures";
      for (const failure of boot.failures) {
        const item = document.createElement("li");
        item.textContent = clock(failure.time) + " " + failure.stage + (failure.domain ? " " + failure.domain : "") + ": " + failure.detail;
        list.append(item);
      }
      block.append(list);
    }
    container.append(block);
  });
}

async function refresh() {
  const live = $("live");
  try {
    const response = await fetch("/status/hosts/" + encodeURIComponent(asked) + ".json", { cache: "no-store" });
    const text = await response.text();
    if (!response.ok) {
      live.textContent = JSON.parse(text).error || "HTTP " + response.status;
      live.className = "";
      return;
    }
    live.textContent = "live";
    live.className = "on";
    if (text === shown) return;
    shown = text;
    const data = JSON.parse(text);
    mac = data.mac;
    renderSummary(data);
    renderProfile(data);
    renderBoots(data);
  } catch (error) {
    live.textContent = "reconnecting";
    live.className = "";
  }
}

// --- the log: admin data, with the token from sessionStorage ---

const tokenKey = "rackboot.adminToken";
const log = { lines: [], lastId: 0, boot: "", timer: undefined, running: false, generation: 0 };
const maxLines = 5000;

function lineMatches(line, search) {
  return !search || line.dataset.text.includes(search);
}

function addLines(lines) {
  const box = $("log-lines");
  const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
  const search = $("log-search").value.trim().toLowerCase();
  for (const line of lines) {
    const row = document.createElement("div");
    row.className = "line";
    row.dataset.id = String(line.id);
    row.dataset.boot = String(line.boot);
    const time = document.createElement("span");
    time.className = "time";
    time.textContent = new Date(line.receivedAt).toLocaleTimeString([], { hour12: false }) + " ";
    const app = document.createElement("span");
    app.className = "app";
    app.textContent = (line.app || line.source) + ": ";
    const text = document.createElement("span");
    text.className = "text" + (line.severity !== undefined && line.severity !== null ? " sev-" + line.severity : "");
    text.textContent = line.text;
    row.append(time, app, text);
    row.dataset.text = ((line.app || line.source) + ": " + line.text).toLowerCase();
    row.hidden = !lineMatches(row, search);
    box.append(row);
    log.lastId = Math.max(log.lastId, line.id);
  }
  while (box.childElementCount > maxLines) box.firstElementChild.remove();
  if (atBottom) box.scrollTop = box.scrollHeight;
  updateLogStatus();
}

function updateLogStatus() {
  const box = $("log-lines");
  const total = box.childElementCount;
  const visible = [...box.children].filter((row) => !row.hidden).length;
  $("log-status").textContent = total === 0 ? "no lines yet; following" : (visible === total ? total + " lines" : visible + " of " + total + " lines") + ", following";
}

function renderBootChoices(boots) {
  const select = $("log-boot");
  const known = new Set([...select.options].map((o) => o.value));
  for (const boot of boots) {
    const value = String(boot.boot);
    if (known.has(value)) continue;
    const option = new Option("boot " + boot.boot + " (" + new Date(boot.startedAt).toLocaleString() + ")", value);
    select.add(option, select.options[1] || null);
  }
}

function stopLog(note) {
  log.generation += 1;
  clearTimeout(log.timer);
  $("log-view").hidden = true;
  $("token-form").hidden = false;
  $("log-note").textContent = note;
}

async function pollLog(generation) {
  const token = sessionStorage.getItem(tokenKey);
  if (!token || generation !== log.generation) return;
  const query = new URLSearchParams();
  if (log.boot) query.set("boot", log.boot);
  if (log.lastId) query.set("sinceId", String(log.lastId));
  else query.set("limit", "1000");
  try {
    const response = await fetch("/api/hosts/" + encodeURIComponent(mac) + "/logs?" + query, { headers: { Authorization: "Bearer " + token }, cache: "no-store" });
    if (generation !== log.generation) return;
    if (response.status === 401) {
      sessionStorage.removeItem(tokenKey);
      stopLog("The admin token was refused. The log needs the admin token (the file admin.token in the server's state folder).");
      return;
    }
    const body = await response.json();
    if (generation !== log.generation) return;
    if (!response.ok) {
      $("log-status").textContent = body.error || "HTTP " + response.status;
    } else {
      renderBootChoices(body.boots);
      addLines(body.lines);
      // A full page means more wait: ask again at once.
      if (log.lastId && body.lines.length >= 1000) {
        log.timer = setTimeout(() => pollLog(generation), 0);
        return;
      }
    }
  } catch (error) {
    if (generation === log.generation) $("log-status").textContent = "log: " + error.message + "; trying again";
  }
  if (generation === log.generation) log.timer = setTimeout(() => pollLog(generation), 1000);
}

function startLog() {
  log.generation += 1;
  clearTimeout(log.timer);
  log.lastId = 0;
  $("log-lines").replaceChildren();
  $("token-form").hidden = true;
  $("log-view").hidden = false;
  $("log-status").textContent = "loading";
  pollLog(log.generation);
}

$("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const token = $("token").value.trim();
  if (!token) return;
  sessionStorage.setItem(tokenKey, token);
  $("token").value = "";
  startLog();
});
$("forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(tokenKey);
  $("log-lines").replaceChildren();
  stopLog("The log needs the admin token (the file admin.token in the server's state folder). It is kept in this tab only.");
});
$("log-boot").addEventListener("change", () => {
  log.boot = $("log-boot").value;
  startLog();
});
$("log-search").addEventListener("input", () => {
  const search = $("log-search").value.trim().toLowerCase();
  for (const row of $("log-lines").children) row.hidden = !lineMatches(row, search);
  updateLogStatus();
});

refresh().then(() => {
  if (sessionStorage.getItem(tokenKey)) startLog();
});
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
}
