/**
 * The dashboard's page: one static HTML document with its style and script inline, so it needs
 * no build step and loads nothing from anywhere else. The script opens an EventSource on
 * /events and redraws the grids from each snapshot (src/dashboard/state.ts, DashboardSnapshot).
 * Every value from the network is set as text (textContent), never parsed as HTML.
 */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MarcoPolo dashboard</title>
<style>
  :root { --fg: #1d2330; --muted: #687086; --line: #dde1ea; --bg: #f5f6f9; --card: #fff; --up: #1e8e4e; --down: #c0392b; --svc: #2a5db0; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px; background: #232a3b; color: #fff; }
  header h1 { font-size: 18px; margin: 0; font-weight: 600; }
  header .summary { color: #c5cbe0; }
  #status { margin-left: auto; font-size: 13px; padding: 2px 10px; border-radius: 10px; background: #7a5b00; }
  #status.live { background: var(--up); }
  main { display: grid; grid-template-columns: minmax(0, 1fr) 360px; gap: 20px; padding: 20px 24px; }
  section.grid, aside { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin-bottom: 20px; }
  h2 { font-size: 15px; margin: 0; padding: 10px 14px; border-bottom: 1px solid var(--line); }
  h2 .count { color: var(--muted); font-weight: normal; margin-left: 8px; }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 7px 14px; border-bottom: 1px solid var(--line); vertical-align: top; }
  th { font-size: 12px; color: var(--muted); font-weight: 600; text-transform: uppercase; letter-spacing: .03em; }
  tr:last-child td { border-bottom: 0; }
  td.address { font-family: ui-monospace, "DejaVu Sans Mono", monospace; white-space: nowrap; }
  .kind { font-size: 12px; color: var(--muted); }
  .params { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: 12px; color: var(--muted); }
  .service { display: inline-block; margin: 0 6px 4px 0; padding: 1px 8px; border-radius: 10px; background: #e7eefb; color: var(--svc); font-size: 13px; }
  .service.failing { background: #fbe9e7; color: var(--down); }
  .service .params { margin-left: 4px; }
  .service .params, td .params { display: inline-block; max-width: 30ch; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; vertical-align: bottom; }
  .unknown, .empty { color: var(--muted); font-style: italic; }
  .empty { padding: 12px 14px; }
  aside ol { list-style: none; margin: 0; padding: 0; max-height: 80vh; overflow-y: auto; }
  aside li { padding: 6px 14px; border-bottom: 1px solid var(--line); font-size: 13px; }
  aside time { color: var(--muted); font-family: ui-monospace, monospace; font-size: 12px; margin-right: 6px; }
  .ev { font-weight: 600; margin-right: 6px; }
  .ev.up { color: var(--up); } .ev.down { color: var(--down); } .ev.services, .ev.update { color: var(--svc); }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
</style>
</head>
<body>
<header>
  <h1>MarcoPolo dashboard</h1>
  <span class="summary" id="summary"></span>
  <span id="status">connecting…</span>
</header>
<main>
  <div id="grids"></div>
  <aside><h2>Recent events</h2><ol id="events"></ol></aside>
</main>
<script>
"use strict";
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const show = (v) => typeof v === "string" ? v : JSON.stringify(v);
const paramsText = (params) => Object.entries(params || {}).map(([k, v]) => k + "=" + show(v)).join(" ");

function nodeRow(node) {
  const tr = el("tr");
  tr.dataset.node = node.address;
  tr.dataset.servicesFrom = node.servicesFrom || "";
  tr.appendChild(el("td", "address", node.address));
  const name = el("td");
  const host = node.params && node.params.hostname;
  name.appendChild(el("div", "", typeof host === "string" ? host : "—"));
  name.appendChild(el("div", "kind", node.kind === "reference" ? "reference node" : "announcing"));
  tr.appendChild(name);
  const services = el("td");
  services.className = "services";
  if (node.services === null) {
    services.appendChild(el("span", "unknown", node.unanswered ? "not known (no answer to a Services query)" : "asking…"));
  }
  else if (node.services.length === 0) services.appendChild(el("span", "unknown", "none"));
  for (const s of node.services || []) {
    const chip = el("span", "service", s.id);
    chip.dataset.service = s.id;
    const p = paramsText(s.params);
    if (p) chip.appendChild(el("span", "params", p));
    chip.title = s.id + (p ? " " + p : "");
    services.appendChild(chip);
  }
  if (node.cut) services.appendChild(el("span", "unknown", "and more: the node cut its list to fit one datagram"));
  for (const id of node.failing || []) {
    const chip = el("span", "service failing", id + " (check failing)");
    services.appendChild(chip);
  }
  tr.appendChild(services);
  const rest = Object.assign({}, node.params);
  delete rest.hostname;
  const nodeParams = el("span", "params", paramsText(rest));
  nodeParams.title = nodeParams.textContent;
  tr.appendChild(el("td")).appendChild(nodeParams);
  return tr;
}

function render(snap) {
  const grids = document.getElementById("grids");
  grids.replaceChildren();
  let nodes = 0, services = 0;
  for (const g of snap.groups) {
    const section = el("section", "grid");
    section.dataset.group = g.group;
    const h = el("h2", "", "Grid " + g.group);
    h.appendChild(el("span", "count", g.nodes.length + (g.nodes.length === 1 ? " node" : " nodes")));
    section.appendChild(h);
    if (g.nodes.length === 0) section.appendChild(el("div", "empty", "No node seen yet."));
    else {
      const table = el("table");
      const head = el("tr");
      for (const t of ["Address", "Node", "Services", "Node params"]) head.appendChild(el("th", "", t));
      table.appendChild(head);
      for (const n of g.nodes) {
        table.appendChild(nodeRow(n));
        nodes++;
        services += (n.services || []).length;
      }
      section.appendChild(table);
    }
    grids.appendChild(section);
  }
  document.getElementById("summary").textContent =
    snap.groups.length + (snap.groups.length === 1 ? " grid, " : " grids, ") + nodes + " nodes, " + services + " services";
  const list = document.getElementById("events");
  list.replaceChildren();
  if (snap.events.length === 0) list.appendChild(el("li", "unknown", "Nothing happened yet."));
  for (const e of snap.events) {
    const li = el("li");
    li.dataset.event = e.event;
    li.dataset.address = e.address;
    li.appendChild(el("time", "", new Date(e.time).toTimeString().slice(0, 8)));
    li.appendChild(el("span", "ev " + e.event, e.event));
    li.appendChild(document.createTextNode(e.address + " in " + e.group + (e.detail ? ": " + e.detail : "")));
    list.appendChild(li);
  }
}

const status = document.getElementById("status");
const source = new EventSource("events");
source.onopen = () => { status.textContent = "live"; status.className = "live"; };
source.onerror = () => { status.textContent = "reconnecting…"; status.className = ""; };
source.onmessage = (m) => render(JSON.parse(m.data));
</script>
</body>
</html>
`;
