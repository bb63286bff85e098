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
  #hosts-section { grid-row: span 3; align-self: start; }
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
  const shown = hosts.filter((h) =>
    (!stage || h.stage === stage) &&
    (!search || h.mac.includes(search) || h.mac.replaceAll(":", "").includes(search.replaceAll(/[:-]/g, "")) ||
      (h.hostname || "").toLowerCase().includes(search)));
  body.replaceChildren();
  for (const h of shown) {
    const row = body.insertRow();
    row.dataset.mac = h.mac;
    cell(row, h.mac, "mac");
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
  $("build-id").textContent = state.build ? state.build.id : "";
  renderFiles("build", state.build ? state.build.files : []);
  renderChannels();
  renderRollouts();
  renderFiles("downloads", state.downloads);
  renderLoad();
}

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
