// The operator's dashboard: one renderer per page, all fed by /api/v1.
"use strict";

function metricCells(headline, metrics) {
  return headline.map((m) => num(metrics[m.key]));
}

function renderRuns(runs) {
  if (!runs.length) return el("p", { class: "muted" }, "No runs yet: `aicache server run` starts one.");
  return runs.map((run) => {
    const rounds = run.rounds;
    const last = rounds.length ? rounds[rounds.length - 1].round : 0;
    const heads = ["round", "version", "clients asked", "accepted", "not accepted", "seconds"]
      .concat(run.headline.map((m) => m.label), ["ε"]);
    const rows = rounds.map((r) => [r.round, r.version, num(r.sampled), r.accepted,
      num(r.not_accepted), num(r.seconds, 1)].concat(metricCells(run.headline, r.metrics), [num(r.epsilon, 3)]));
    const xs = rounds.map((r) => r.round);
    const charts = run.headline.length && rounds.length
      ? el("div", { class: "charts" }, lineChart(run.task + ": headline metrics", xs,
          run.headline.map((m) => ({ label: m.label, values: rounds.map((r) => r.metrics[m.key]) }))))
      : null;
    return el("section", { "data-run": run.run_id, "data-status": run.status, "data-round": last },
      el("h2", {}, `${run.task} · run ${run.run_id} `, el("span", { class: "badge" }, run.status)),
      el("p", {}, el("span", { class: "current-round" }, `round ${last}`),
        ` of ${num(run.rounds_planned)} · ${run.strategy || ""} · started ${when(run.started_at)}`,
        run.finished_at ? ` · ended ${when(run.finished_at)}` : "",
        run.message ? el("span", { class: run.status === "failed" ? "bad" : "muted" }, " · " + run.message) : ""),
      charts,
      el("div", { class: "scroll" }, table(heads, rows, (i) => ({ "data-round": rounds[i].round }))));
  });
}

function renderVersions(tasks) {
  if (!tasks.length) return el("p", { class: "muted" }, "No model versions registered yet.");
  return tasks.map((task) => {
    const heads = ["version", "parent", "round", "run", "created", "clients"]
      .concat(task.headline.map((m) => m.label),
        ["signature", "DP", "ε", "δ", "mechanism", "z", "C", "note"]);
    const rows = task.versions.map((v) => [
      v.version + (v.version === task.serving ? " ★" : ""), num(v.parent), v.round, v.run_id,
      when(v.created_at), v.clients].concat(metricCells(task.headline, v.metrics), [
      el("span", { class: v.signature === "valid" ? "ok" : v.signature === "invalid" ? "bad" : "muted" }, v.signature),
      v.privacy.dp, num(v.privacy.epsilon, 3), num(v.privacy.delta), num(v.privacy.mechanism),
      num(v.privacy.z, 3), num(v.privacy.clip, 3), v.note]));
    const ordered = task.versions.slice().reverse();
    const chart = task.headline.length ? lineChart(task.task + ": by version",
      ordered.map((v) => v.version),
      task.headline.map((m) => ({ label: m.label, values: ordered.map((v) => v.metrics[m.key]) })),
      { xLabel: "version" }) : null;
    const more = task.count > task.versions.length
      ? el("p", { class: "muted" }, `The newest ${task.versions.length} of ${task.count} versions · `,
          el("a", { href: "/versions?all=1" }, "show all"))
      : null;
    return el("section", { "data-task": task.task, "data-count": task.count },
      el("h2", {}, task.task, " ", el("span", { class: "badge" },
        `serving v${task.serving}${task.pinned ? " (pinned)" : ""}`)),
      more,
      chart,
      el("div", { class: "scroll" }, table(heads, rows, (i) => ({ "data-version": task.versions[i].version }))));
  });
}

function renderPrivacy(rows) {
  if (!rows.length) return el("p", { class: "muted" }, "Nothing spent yet: no run has released a model.");
  return rows.map((row) => {
    const infinite = row.epsilon === "inf";
    const budget = typeof row.budget === "number" ? row.budget : null;
    const gauge = budget !== null && !infinite
      ? el("meter", { min: 0, max: budget, high: budget * 0.8, value: row.epsilon || 0 })
      : null;
    const said = infinite
      ? el("span", { class: "bad" }, "ε = ∞: a run used this data without differential privacy")
      : el("span", {}, `ε = ${num(row.epsilon, 3)}`, budget !== null ? ` of a budget of ${num(budget, 3)}` : " (no budget set)",
        row.delta !== null ? ` at δ = ${num(row.delta)}` : "");
    const curve = row.curve.filter((p) => typeof p.epsilon === "number");
    const chart = curve.length ? lineChart("ε over time", curve.map((p) => p.at),
      [{ label: "ε", values: curve.map((p) => p.epsilon) }], { time: true, xLabel: "time" }) : null;
    return el("section", { "data-task": row.task, "data-federation": row.federation },
      el("h2", {}, `${row.task} · federation ${row.federation}`),
      el("p", { class: "spent" }, said), gauge, chart,
      el("h3", {}, "Ledger"),
      table(["run", "rounds", "ε", "δ", "DP", "updated"], row.history.map((h) =>
        [h.run_id, h.rounds, num(h.epsilon, 3), num(h.delta), num(h.mechanism), when(h.at)])));
  });
}

function renderNodes(answer) {
  const note = answer.checked_with_flower ? "Checked against the SuperLink's list of keys."
    : "The SuperLink is not running: keys Flower knows were not checked.";
  const rows = answer.nodes.map((n) => [
    n.unknown ? el("span", { class: "flag" }, "(unknown: not enrolled)") : n.name,
    String(n.node_id), n.status, when(n.enrolled_at), num(n.last_round), n.last_run || "–",
    when(n.last_seen), n.revoked_at ? when(n.revoked_at) : "–"]);
  return el("section", {},
    el("h2", {}, `Nodes (${answer.nodes.length})`), el("p", { class: "muted" }, note),
    answer.nodes.length ? table(["name", "node id", "status", "enrolled", "last round", "last run",
      "last seen", "revoked"], rows, (i) => ({ "data-node": String(answer.nodes[i].node_id),
      class: answer.nodes[i].unknown ? "flag" : null }))
      : el("p", { class: "muted" }, "No nodes enrolled yet (`aicache server enroll NAME`)."));
}

function renderAlerts(alerts) {
  if (!alerts.length) return el("p", { class: "ok" }, "No alerts.");
  return el("section", {}, el("h2", {}, `Alerts (${alerts.filter((a) => !a.acknowledged).length} open)`),
    table(["kind", "what", "when", ""], alerts.map((a) => [a.kind, a.text, when(a.at),
      a.acknowledged ? el("span", { class: "muted" }, "acknowledged")
        : el("button", { "data-ack": a.id, onclick: async (event) => {
            event.target.disabled = true;
            await api("/alerts/" + encodeURIComponent(a.id) + "/ack", { method: "POST" });
            event.target.replaceWith(el("span", { class: "muted" }, "acknowledged"));
          } }, "acknowledge")]),
    (i) => ({ "data-alert": alerts[i].id, class: alerts[i].acknowledged ? "muted" : null })));
}

const RENDERERS = {
  runs: ["/runs", renderRuns, 2000],
  // The newest 100 versions of each task unless the address asks for all.
  versions: [new URLSearchParams(location.search).has("all") ? "/versions" : "/versions?limit=100",
    renderVersions, 10000],
  privacy: ["/privacy", renderPrivacy, 10000],
  nodes: ["/nodes", renderNodes, 10000],
  alerts: ["/alerts", renderAlerts, 10000],
};
const [path, render, every] = RENDERERS[document.body.dataset.page];
keepDrawn(path, render, every);
