// The developer's page: the cache, the models in use, what left this machine, and actions.
"use strict";

function weeklyCharts(weeks) {
  if (!weeks.length) return el("p", { class: "muted" }, "No calls in the last 12 weeks.");
  // Every one of the last 12 weeks, those without calls at zero.
  const newest = Math.max(...weeks.map((w) => w.week_start));
  const starts = Array.from({ length: 12 }, (_, i) => newest - (11 - i) * 7 * 86400);
  const tools = [...new Set(weeks.map((w) => w.tool))].sort();
  const value = (tool, start, field) => {
    const found = weeks.find((w) => w.tool === tool && w.week_start === start);
    return found ? found[field] : 0;
  };
  const chart = (title, field) => lineChart(title, starts,
    tools.map((t) => ({ label: t, values: starts.map((s) => value(t, s, field)) })),
    { time: true, xLabel: "week" });
  return el("div", { class: "charts" }, chart("Calls saved per week", "calls_saved"),
    chart("Seconds saved per week", "time_saved_s"));
}

function entryTable(entries) {
  return table(["key", "tool", "command", "size", "created", "hits"], entries.map((e) =>
    [e.key, e.tool, e.command.length > 60 ? e.command.slice(0, 57) + "..." : e.command,
      size(e.bytes), when(e.created_at), e.hits]), (i) => ({ "data-key": entries[i].key }));
}

async function act(name, options) {
  const answer = await api("/actions/" + name, Object.assign({ method: "POST" }, options || {}));
  await window.redraw();
  document.getElementById("action-result").textContent = name + ": " + JSON.stringify(answer);
  document.body.dataset.action = name;
  return answer;
}

function actions() {
  return el("section", { id: "actions" }, el("h2", {}, "Actions"),
    el("button", { id: "clear", onclick: () => act("clear") }, "Clear the cache"), " ",
    el("button", { id: "prune", onclick: () => act("prune") }, "Prune old entries"), " ",
    el("a", { id: "export", href: API + "/actions/export", download: "aicache-export.json" },
      el("button", {}, "Export everything (JSON)")), " ",
    el("button", { id: "forget", class: "danger", onclick: async () => {
      if (!window.confirm("Erase everything aicache keeps about you on this machine? This cannot be undone.")) return;
      await act("forget", { headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ confirm: "forget" }) });
    } }, "Forget everything…"), " ",
    el("button", { id: "leave", onclick: () => act("leave") }, "Leave the federation"),
    el("p", { id: "action-result", class: "muted" }));
}

function renderCache(d) {
  const t = d.total;
  return [
    el("section", { id: "totals" }, el("h2", {}, "Cache"),
      el("span", { class: "stat" }, "calls", el("b", { id: "calls" }, t.calls)),
      el("span", { class: "stat" }, "exact hits", el("b", { id: "exact-hits" }, d.hits.exact)),
      el("span", { class: "stat" }, "semantic hits", el("b", { id: "semantic-hits" }, d.hits.semantic)),
      el("span", { class: "stat" }, "hit rate", el("b", { id: "hit-rate" }, (t.hit_rate * 100).toFixed(1) + " %")),
      el("span", { class: "stat" }, "time saved", el("b", { id: "time-saved" }, t.time_saved_s.toFixed(1) + " s")),
      el("span", { class: "stat" }, "entries", el("b", { id: "entries" }, d.entries)),
      el("span", { class: "stat" }, "kept", el("b", {}, size(d.entry_bytes)))),
    actions(),
    el("section", {}, el("h2", {}, "Saved per tool and week"), weeklyCharts(d.weeks),
      table(["tool", "calls", "hits", "misses", "time saved"], d.tools.map((r) =>
        [r.tool, r.calls, r.hits, r.misses, r.time_saved_s.toFixed(1) + " s"]), (i) => ({ "data-tool": d.tools[i].tool }))),
    el("section", { id: "largest" }, el("h2", {}, "Largest entries"), entryTable(d.largest)),
    el("section", { id: "oldest" }, el("h2", {}, "Oldest entries"), entryTable(d.oldest)),
  ];
}

function renderModels(d) {
  return [
    el("section", {}, el("h2", {}, "Models in use"),
      table(["task", "version", "from", "ε", "note"], d.models.map((m) =>
        [m.task, m.version === null ? "shipped / none" : "v" + m.version, num(m.origin),
          num(m.epsilon, 3), m.note]), (i) => ({ "data-task": d.models[i].task }))),
    el("section", {}, el("h2", {}, "Suggested next commands"),
      d.suggestions.length ? el("ol", {}, d.suggestions.map((s) => el("li", {}, s)))
        : el("p", { class: "muted" }, "Nothing to suggest yet.")),
  ];
}

function renderPrivacy(d) {
  const said = d.joined ? `Joined ${d.federation} (${d.running ? "node running" : "node stopped"}).`
    : "Not part of a federation.";
  const rows = d.tasks.map((r) => [r.task, r.updates_sent, size(r.bytes_sent), r.rounds, r.runs,
    r.updates_without_dp ? "∞ (updates without DP)" : num(r.epsilon, 3), num(r.delta),
    num(r.mechanism), when(r.first), when(r.last)]);
  return [
    el("section", {}, el("h2", {}, "What left this machine"), el("p", {}, said),
      d.tasks.length ? table(["task", "updates", "bytes", "rounds", "runs", "ε", "δ", "mechanism",
        "first", "last"], rows, (i) => ({ "data-task": d.tasks[i].task }))
        : el("p", { class: "muted" }, "Nothing has left this machine: only model updates ever would.")),
    actions(),
  ];
}

const RENDERERS = { cache: ["/cache", renderCache], models: ["/models", renderModels],
  privacy: ["/privacy", renderPrivacy] };
const [path, render] = RENDERERS[document.body.dataset.page];
keepDrawn(path, render);
