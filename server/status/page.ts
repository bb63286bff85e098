/**
 * The status page: one self-contained HTML document (no external scripts,
 * fonts or styles, so it works on an isolated lab network). It renders
 * /status/state.json and then follows /status/stream; every value is put
 * in with textContent, never as HTML.
 */
export function statusPage(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>rackboot status</title>
<style>
  :root { --fg: #1d2329; --muted: #66707a; --line: #dde2e7; --bg: #f6f8fa; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e; --run: #0969da; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: baseline; padding: .8rem 1.2rem; background: #fff; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 1.15rem; margin: 0; }
  header .meta { color: var(--muted); }
  #live { margin-left: auto; font-size: .85rem; color: var(--muted); }
  #live.on::before { content: "\\25CF "; color: var(--ok); }
  main { padding: 1rem 1.2rem; display: grid; gap: 1rem; grid-template-columns: minmax(0, 2fr) minmax(22rem, 1fr); }
  section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: .8rem 1rem; min-width: 0; }
  section h2 { font-size: 1rem; margin: 0 0 .6rem; }
  #hosts-section { grid-row: span 4; align-self: start; }
  #warnings, #fleet-section { grid-column: 1 / -1; }
  #warnings:empty { display: none; }
  #fleet { display: grid; gap: 1rem; grid-template-columns: minmax(0, 3fr) minmax(18rem, 2fr); }
  #fleet h3 { font-size: .85rem; margin: 0 0 .3rem; font-weight: 600; }
  #racks { display: flex; flex-wrap: wrap; gap: .6rem 1.2rem; align-content: start; }
  .rack { min-width: 9rem; max-width: 100%; }
  .rack h3 .meta { font-weight: 400; }
  .rack.failing h3 { color: var(--bad); }
  .tiles { display: flex; flex-wrap: wrap; gap: 2px; max-width: 24rem; }
  .tile { display: block; width: 12px; height: 12px; border-radius: 2px; background: #d0d7de; }
  .tile:hover { outline: 2px solid var(--fg); }
  .tile.s-ready { background: #2da44e; }
  .tile.s-dhcp { background: #54aeff; }
  .tile.s-tftp, .tile.s-files { background: #0969da; }
  .tile.s-runtime { background: #8250df; }
  .tile.s-rebooting { background: #bf8700; }
  .tile.s-failing { background: var(--bad); outline: 2px solid #ff8182; outline-offset: 1px; }
  .tile.alarmed { box-shadow: inset 0 0 0 2px var(--bad); }
  .stage-legend { display: flex; flex-wrap: wrap; gap: .2rem .9rem; font-size: .8rem; color: var(--muted); margin-bottom: .5rem; }
  .stage-legend .tile { display: inline-block; vertical-align: -1px; margin-right: .25rem; }
  #boot-chart { width: 100%; height: auto; display: block; }
  #boot-chart text { font: 11px system-ui, sans-serif; fill: var(--muted); }
  #hosts tbody tr[data-mac] { cursor: pointer; }
  #hosts tbody tr[data-mac]:hover { background: #f3f6f9; }
  #hosts tbody tr.failing { background: #fff5f5; box-shadow: inset 3px 0 0 var(--bad); }
  td.mac a { color: inherit; text-decoration: none; }
  td.mac a:hover { text-decoration: underline; }
  .controls { display: flex; gap: .6rem; margin-bottom: .6rem; }
  .controls input { flex: 1; padding: .35rem .5rem; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
  .controls select { padding: .35rem; border: 1px solid var(--line); border-radius: 4px; font: inherit; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
  th { font-weight: 600; color: var(--muted); font-size: .8rem; text-transform: uppercase; letter-spacing: .03em; }
  td.mac, td.sha { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: .85rem; }
  td.sha { overflow: hidden; text-overflow: ellipsis; max-width: 7rem; }
  .scroll { overflow-x: auto; }
  .stage { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .8rem; background: #eef1f4; }
  .stage.ready { background: #dafbe1; color: var(--ok); }
  .stage.failed, .stage.setting-failed, .stage.domain-failed, .stage.guest-failed { background: #ffebe9; color: var(--bad); }
  .stage.alarm { background: var(--bad); color: #fff; font-weight: 600; }
  .failures { color: var(--bad); }
  #warnings { margin: 0 0 1em; padding: 0; list-style: none; }
  #warnings li { background: #fff8c5; color: var(--warn); border: 1px solid #d4a72c; padding: .4em .8em; margin-bottom: .3em; }
  button.image-link { padding: 0 .4rem; font: inherit; font-size: .75rem; border: 1px solid var(--line); border-radius: 4px; background: #fff; cursor: pointer; }
  .empty { color: var(--muted); padding: .8rem .5rem; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .2rem .8rem; margin: 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-variant-numeric: tabular-nums; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>rackboot</h1>
  <span class="meta" id="server"></span>
  <span id="live">connecting</span>
</header>
<main>
  <ul id="warnings"></ul>
  <section id="fleet-section">
    <h2>Racks <span class="meta" id="fleet-count"></span></h2>
    <div id="fleet">
      <div>
        <div class="stage-legend" id="stage-legend"></div>
        <div id="racks"></div>
      </div>
      <div>
        <h3>Boot durations <span class="meta">(each host's last boot to ready; failed hosts marked at the top, in red)</span></h3>
        <svg id="boot-chart" viewBox="0 0 480 220" role="img" aria-label="Boot durations over time"></svg>
      </div>
    </div>
  </section>
  <section id="hosts-section">
    <h2>Hosts <span class="meta" id="host-count"></span></h2>
    <div class="controls">
      <input id="search" type="search" placeholder="Search by MAC or hostname" autocomplete="off">
      <select id="stage-filter"><option value="">All stages</option></select>
    </div>
    <div class="scroll"><table id="hosts">
      <thead><tr><th>MAC</th><th>Hostname</th><th>Profile</th><th>Address</th><th>Stage</th><th>Last seen</th><th>Last boot</th><th>Failures</th><th>Build</th><th>Storage</th><th>Image</th></tr></thead>
      <tbody></tbody>
    </table></div>
  </section>
  <section id="load-section">
    <h2>Server load</h2>
    <dl id="load"></dl>
  </section>
  <section id="build-section">
    <h2>Current build <span class="meta" id="build-id"></span></h2>
    <div class="scroll"><table id="build"><thead><tr><th>Part</th><th>Size</th><th>sha256</th></tr></thead><tbody></tbody></table></div>
    <h3>Channels</h3>
    <div class="scroll"><table id="channels"><thead><tr><th>Channel</th><th>Current build</th><th>Made</th><th>Changes</th></tr></thead><tbody></tbody></table></div>
  </section>
  <section id="rollouts-section">
    <h2>Rollouts</h2>
    <div class="scroll"><table id="rollouts"><thead><tr><th>Channel</th><th>Build</th><th>State</th><th>Hosts</th><th></th></tr></thead><tbody></tbody></table></div>
  </section>
  <section id="downloads-section">
    <h2>Downloads</h2>
    <div class="scroll"><table id="downloads"><thead><tr><th>Image</th><th>Size</th><th>sha256</th><th>Channel</th></tr></thead><tbody></tbody></table></div>
  </section>
</main>
<script>
"use strict";
let state = null;
const $ = (id) => document.getElementById(id);
const svgNs = "http://www.w3.org/2000/svg";
const failureStages = new Set(["failed", "setting-failed", "domain-failed", "guest-failed", "tftp-failed", "dhcp-nak", "refused"]);

/** Where a stage is in a boot, for a tile's colour. */
function stageClass(stage) {
  if (stage === "ready") return "ready";
  if (failureStages.has(stage)) return "failing";
  if (/^(dhcp|proxy)-/.test(stage)) return "dhcp";
  if (stage === "tftp") return "tftp";
  if (stage === "boot.ipxe" || stage === "xen.cfg" || stage === "boot-file") return "files";
  if (stage === "rebooting") return "rebooting";
  if (["booted", "runtime.env", "configured", "domain-started", "domain.cfg"].includes(stage)) return "runtime";
  return "other";
}
const stageClassNames = { ready: "ready", failing: "failed", dhcp: "DHCP", tftp: "TFTP", files: "boot files", runtime: "runtime", rebooting: "rebooting", other: "other" };

function hostPath(mac) {
  return "/status/hosts/" + encodeURIComponent(mac);
}

/** The rack or group the overview files a host under. */
function rackOf(h) {
  if (h.rack) return "rack " + h.rack;
  if (h.group) return "group " + h.group;
  if (h.profile === "default.yaml" || h.profile === "default.yml") return "default profile";
  return h.profile ? "own profile" : "no profile";
}

function svgElement(name, attributes, parent) {
  const element = document.createElementNS(svgNs, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (parent) parent.append(element);
  return element;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function bytes(n) {
  if (!Number.isFinite(n)) return "?";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function ago(iso) {
  const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (seconds < 60) return seconds + " s ago";
  if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
  if (seconds < 86400) return Math.round(seconds / 3600) + " h ago";
  return new Date(iso).toLocaleString();
}

function renderHosts() {
  const body = $("hosts").tBodies[0];
  const search = $("search").value.trim().toLowerCase();
  const stage = $("stage-filter").value;
  const hosts = state.hosts;
  const stages = [...new Set(hosts.map((h) => h.stage))].sort();
  const select = $("stage-filter");
  const known = [...select.options].map((o) => o.value);
  for (const s of stages) if (!known.includes(s)) select.add(new Option(s, s));
  // Failures first, the rest as the server sent them (the newest first).
  const failingFirst = [...hosts.filter((h) => failureStages.has(h.stage)), ...hosts.filter((h) => !failureStages.has(h.stage))];
  const shown = failingFirst.filter((h) =>
    (!stage || h.stage === stage) &&
    (!search || h.mac.includes(search) || h.mac.replaceAll(":", "").includes(search.replaceAll(/[:-]/g, "")) ||
      (h.hostname || "").toLowerCase().includes(search)));
  body.replaceChildren();
  for (const h of shown) {
    const row = body.insertRow();
    row.dataset.mac = h.mac;
    if (failureStages.has(h.stage)) row.className = "failing";
    const link = document.createElement("a");
    link.href = hostPath(h.mac);
    link.textContent = h.mac;
    cell(row, "", "mac").append(link);
    cell(row, h.hostname, "hostname");
    // The cell names the file; its title says how (own file, group entry, default).
    cell(row, h.profile, "profile").title = h.profileFrom || "";
    cell(row, h.address, "address");
    const stageCell = row.insertCell();
    stageCell.className = "stage-cell";
    const badge = document.createElement("span");
    badge.className = "stage " + h.stage;
    badge.textContent = h.stage;
    stageCell.append(badge);
    if (h.alarms) {
      const alarm = document.createElement("span");
      alarm.className = "stage alarm";
      alarm.textContent = "alarm" + (h.alarms > 1 ? " \u00d7" + h.alarms : "");
      alarm.title = h.lastAlarm || "";
      stageCell.append(" ", alarm);
    }
    cell(row, ago(h.lastSeen), "last-seen").title = h.lastSeen;
    cell(row, h.lastBootSeconds === null ? "" : h.lastBootSeconds.toFixed(1) + " s", "last-boot");
    const failures = cell(row, h.failures ? String(h.failures) : "", "failures");
    if (h.lastFailure) failures.title = h.lastFailure;
    // The build its runtime last reported ready with; the title names the Xen and kernel it ran.
    cell(row, h.build || "", "build").title = h.build ? "Xen " + (h.xen || "?") + ", kernel " + (h.kernel || "?") : "";
    cell(row, h.storage || "", "storage");
    const imageCell = cell(row, "", "image");
    if (h.profile && h.profile !== "default.yaml" && h.profile !== "default.yml") {
      // A host's own image is an admin download: the admin API signs a short-lived link for it.
      const button = document.createElement("button");
      button.className = "image-link";
      button.textContent = "image";
      button.title = "Download this host's CD/USB image (asks for the admin token)";
      button.addEventListener("click", () => downloadImage(h.mac));
      imageCell.append(button);
    }
  }
  if (shown.length === 0) {
    const row = body.insertRow();
    const td = cell(row, hosts.length === 0 ? "No host has asked to boot yet." : "No host matches.", "empty");
    td.colSpan = 11;
  }
  $("host-count").textContent = shown.length === hosts.length ? "(" + hosts.length + ")" : "(" + shown.length + " of " + hosts.length + ")";
}

/** Every host as a tile, coloured by stage, in its rack or group; failing racks first. */
function renderRacks() {
  const hosts = state.hosts;
  const groups = new Map();
  const counts = {};
  for (const h of hosts) {
    const key = rackOf(h);
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(h);
    const kind = stageClass(h.stage);
    counts[kind] = (counts[kind] || 0) + 1;
  }
  const legend = $("stage-legend");
  legend.replaceChildren();
  for (const [kind, name] of Object.entries(stageClassNames)) {
    if (!counts[kind]) continue;
    const item = document.createElement("span");
    item.className = "legend-" + kind;
    const key = document.createElement("span");
    key.className = "tile s-" + kind;
    item.append(key, counts[kind] + " " + name);
    legend.append(item);
  }
  const failing = (list) => list.filter((h) => failureStages.has(h.stage)).length;
  const ordered = [...groups].sort((a, b) => (failing(b[1]) > 0) - (failing(a[1]) > 0) || a[0].localeCompare(b[0], undefined, { numeric: true }));
  const racks = $("racks");
  racks.replaceChildren();
  for (const [name, list] of ordered) {
    const rack = document.createElement("div");
    const failed = failing(list);
    rack.className = "rack" + (failed ? " failing" : "");
    rack.dataset.rack = name;
    const heading = document.createElement("h3");
    const count = document.createElement("span");
    count.className = "meta";
    count.textContent = " " + list.length + (failed ? ", " + failed + " failed" : "");
    heading.append(name, count);
    const tiles = document.createElement("div");
    tiles.className = "tiles";
    list.sort((a, b) => (a.hostname || a.mac).localeCompare(b.hostname || b.mac, undefined, { numeric: true }));
    for (const h of list) {
      const tile = document.createElement("a");
      tile.className = "tile s-" + stageClass(h.stage) + (h.alarms ? " alarmed" : "");
      tile.href = hostPath(h.mac);
      tile.dataset.mac = h.mac;
      tile.title = (h.hostname ? h.hostname + " " : "") + h.mac + ": " + h.stage + (h.lastFailure ? " (" + h.lastFailure + ")" : "");
      tiles.append(tile);
    }
    rack.append(heading, tiles);
    racks.append(rack);
  }
  $("fleet-count").textContent = hosts.length ? "(" + groups.size + " groups, " + hosts.length + " hosts)" : "";
}

/** Boot durations over time: a dot per host's last boot to ready, a red mark per failing host when it failed. */
function renderChart() {
  const chart = $("boot-chart");
  chart.replaceChildren();
  const width = 480, height = 220, left = 40, right = 470, top = 22, bottom = 190;
  const done = state.hosts.filter((h) => h.lastReadyAt && h.lastBootSeconds !== null);
  const failing = state.hosts.filter((h) => failureStages.has(h.stage));
  if (done.length === 0 && failing.length === 0) {
    svgElement("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, chart).textContent = "No boot has finished yet.";
    return;
  }
  const times = [...done.map((h) => Date.parse(h.lastReadyAt)), ...failing.map((h) => Date.parse(h.lastSeen))];
  let from = Math.min(...times), to = Math.max(...times);
  if (to - from < 60000) { from -= 30000; to += 30000; }
  const most = Math.ceil(Math.max(10, ...done.map((h) => h.lastBootSeconds)) / 20) * 20;
  const x = (time) => left + ((time - from) / (to - from)) * (right - left);
  const y = (seconds) => bottom - (seconds / most) * (bottom - top);
  const axis = svgElement("g", { class: "axis" }, chart);
  svgElement("line", { x1: left, x2: right, y1: bottom, y2: bottom, stroke: "#dde2e7" }, axis);
  svgElement("line", { x1: left, x2: left, y1: top, y2: bottom, stroke: "#dde2e7" }, axis);
  for (let i = 0; i <= 4; i++) {
    const seconds = (most * i) / 4;
    svgElement("line", { x1: left, x2: right, y1: y(seconds), y2: y(seconds), stroke: "#eef1f4" }, axis);
    svgElement("text", { x: left - 4, y: y(seconds) + 4, "text-anchor": "end" }, axis).textContent = Math.round(seconds) + " s";
  }
  // Seconds on the time axis when the chart spans less than ten minutes, else they would repeat.
  const clock = to - from < 600000 ? { hour: "2-digit", minute: "2-digit", second: "2-digit" } : { hour: "2-digit", minute: "2-digit" };
  for (let i = 0; i <= 3; i++) {
    const time = from + ((to - from) * i) / 3;
    svgElement("text", { x: x(time), y: bottom + 16, "text-anchor": i === 0 ? "start" : i === 3 ? "end" : "middle" }, axis).textContent = new Date(time).toLocaleTimeString([], clock);
  }
  const dots = svgElement("g", { class: "boots" }, chart);
  for (const h of done) {
    const link = svgElement("a", { href: hostPath(h.mac), "data-mac": h.mac }, dots);
    const dot = svgElement("circle", { cx: x(Date.parse(h.lastReadyAt)), cy: y(h.lastBootSeconds), r: 3, fill: "#2da44e", "fill-opacity": 0.7 }, link);
    svgElement("title", {}, dot).textContent = (h.hostname || h.mac) + ": " + h.lastBootSeconds.toFixed(1) + " s, ready at " + new Date(h.lastReadyAt).toLocaleString();
  }
  const marks = svgElement("g", { class: "failures" }, chart);
  for (const h of failing) {
    const link = svgElement("a", { href: hostPath(h.mac), "data-mac": h.mac }, marks);
    const cx = x(Date.parse(h.lastSeen));
    const mark = svgElement("path", { d: "M" + (cx - 4) + " " + (top - 12) + " l8 8 m0 -8 l-8 8", stroke: "#cf222e", "stroke-width": 2 }, link);
    svgElement("title", {}, mark).textContent = (h.hostname || h.mac) + ": " + h.stage + (h.lastFailure ? " (" + h.lastFailure + ")" : "");
  }
}

async function downloadImage(mac) {
  const token = prompt("Admin token (the file admin.token in the server's state folder) for a link to " + mac + "'s image:");
  if (!token) return;
  const response = await fetch("/api/hosts/" + encodeURIComponent(mac) + "/image-link", { method: "POST", headers: { Authorization: "Bearer " + token.trim() } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) { alert("No image link: " + (body.error || response.status)); return; }
  location.href = body.path;
}

function renderFiles(id, files) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  for (const f of files) {
    const row = body.insertRow();
    const name = cell(row, "", "name");
    if (f.url) {
      const a = document.createElement("a");
      a.href = f.url;
      a.textContent = f.name;
      name.append(a);
    } else {
      name.textContent = f.name;
    }
    cell(row, bytes(f.size), "size");
    cell(row, f.sha256, "sha").title = f.sha256;
    // An image: its build's channel, and the channels it is the current image of.
    if (id === "downloads") cell(row, (f.channel || "default") + (f.currentFor && f.currentFor.length > 0 ? " (current for " + f.currentFor.join(", ") + ")" : ""), "channel");
  }
  if (files.length === 0) cell(body.insertRow(), id === "build" ? "No build yet: run rackboot build." : "No images yet.", "empty").colSpan = id === "downloads" ? 4 : 3;
}

// A rollout's pause, resume or abort: an admin call, so it asks for the admin token.
async function rolloutAction(channel, action) {
  const token = prompt("Admin token (the file admin.token in the server's state folder) to " + action + " the rollout of channel " + channel + ":");
  if (!token) return;
  const response = await fetch("/api/rollouts/" + encodeURIComponent(channel) + "/" + action, { method: "POST", headers: { Authorization: "Bearer " + token.trim() } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) alert("Not done: " + (body.error || response.status));
}

function renderRollouts() {
  const body = $("rollouts").tBodies[0];
  body.replaceChildren();
  for (const r of state.rollouts || []) {
    const row = body.insertRow();
    row.dataset.channel = r.channel;
    cell(row, r.channel, "channel");
    cell(row, r.build + " (from " + r.previous + ")", "build");
    cell(row, r.state + (r.reason ? ": " + r.reason : ""), "state");
    const counts = {};
    for (const h of r.hosts) counts[h.stage] = (counts[h.stage] || 0) + 1;
    const hosts = cell(row, Object.entries(counts).map(([stage, n]) => n + " " + stage).join(", "), "hosts");
    hosts.title = r.hosts.map((h) => h.mac + " " + h.stage + (h.reason ? ": " + h.reason : "")).join("\\n");
    const actions = cell(row, "", "actions");
    const allowed = { running: ["pause", "abort"], paused: ["resume", "abort"], failed: ["abort"] }[r.state] || [];
    for (const action of allowed) {
      const button = document.createElement("button");
      button.textContent = action;
      button.className = "rollout-" + action;
      button.addEventListener("click", () => rolloutAction(r.channel, action));
      actions.append(button, " ");
    }
  }
  if (!state.rollouts || state.rollouts.length === 0) cell(body.insertRow(), "No rollout: rackboot rollout start --channel NAME --build ID.", "empty").colSpan = 5;
}

function renderChannels() {
  const body = $("channels").tBodies[0];
  body.replaceChildren();
  for (const c of state.channels || []) {
    const row = body.insertRow();
    cell(row, c.name, "name");
    cell(row, c.build, "build");
    cell(row, new Date(c.created).toLocaleString(), "made");
    // What changed since the build before it: the first line, and every line in the title.
    const changes = c.changes || [];
    cell(row, changes.length === 0 ? "" : changes[0] + (changes.length > 1 ? " (+" + (changes.length - 1) + " more)" : ""), "changes").title = changes.join("\\n");
  }
  if (!state.channels || state.channels.length === 0) cell(body.insertRow(), "No build yet: run rackboot build.", "empty").colSpan = 4;
}

function renderLoad() {
  const dl = $("load");
  dl.replaceChildren();
  const load = state.load;
  const add = (term, value) => {
    const dt = document.createElement("dt"); dt.textContent = term;
    const dd = document.createElement("dd"); dd.textContent = value;
    dl.append(dt, dd);
  };
  if (!load) { add("Load", "measuring..."); return; }
  add("CPU", load.cpuPercent + " %");
  add("Memory", bytes(load.memoryUsedBytes) + " of " + bytes(load.memoryTotalBytes));
  add("rackboot RSS", bytes(load.processRssBytes));
  if (load.network) {
    add("Network in", bytes(load.network.rxBytesPerSecond) + "/s on " + load.network.interface);
    add("Network out", bytes(load.network.txBytesPerSecond) + "/s");
  }
}

function render() {
  const s = state.server;
  $("server").textContent = s.address + " on " + s.interface + ", DHCP " + s.dhcp + ", version " + s.version + ", up since " + new Date(s.startedAt).toLocaleString();
  $("warnings").replaceChildren(...(s.warnings || []).map((text) => {
    const item = document.createElement("li");
    item.textContent = text;
    return item;
  }));
  renderHosts();
  renderRacks();
  renderChart();
  $("build-id").textContent = state.build ? state.build.id : "";
  renderFiles("build", state.build ? state.build.files : []);
  renderChannels();
  renderRollouts();
  renderFiles("downloads", state.downloads);
  renderLoad();
}

// A click on a row opens the host's page (its buttons and links do what they say).
$("hosts").tBodies[0].addEventListener("click", (event) => {
  if (event.target.closest("a, button")) return;
  const row = event.target.closest("tr[data-mac]");
  if (row) location.href = hostPath(row.dataset.mac);
});
$("search").addEventListener("input", () => state && renderHosts());
$("stage-filter").addEventListener("change", () => state && renderHosts());

function follow() {
  const live = $("live");
  const events = new EventSource("/status/stream");
  events.addEventListener("state", (event) => {
    state = JSON.parse(event.data);
    render();
    live.textContent = "live";
    live.className = "on";
  });
  events.onerror = () => { live.textContent = "reconnecting"; live.className = ""; };
}

fetch("/status/state.json").then((r) => r.json()).then((s) => { state = s; render(); }).finally(follow);
setInterval(() => state && renderHosts(), 10000);
</script>
</body>
</html>
`;
}
