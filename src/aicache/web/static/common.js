// Shared helpers of aicache's pages: fetching the API, building tables and charts.
"use strict";

const API = "/api/v1";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options) {
  const answer = await fetch(API + path, Object.assign({ credentials: "same-origin" }, options || {}));
  if (answer.status === 401) {
    throw new Error("401: open the address the command printed (with ?token=...)");
  }
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({}));
    throw new Error(body.detail || body.error || answer.statusText);
  }
  return answer.json();
}

function num(value, digits) {
  if (value === null || value === undefined) return "–";
  if (value === "inf") return "∞";
  if (typeof value !== "number") return String(value);
  if (Number.isInteger(value) && digits === undefined) return String(value);
  // δ and other small figures: in powers of ten rather than as zero.
  if (value !== 0 && Math.abs(value) < 0.001) return value.toExponential(1);
  return value.toFixed(digits === undefined ? 4 : digits);
}

function when(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

function size(bytes) {
  const units = ["B", "KB", "MB", "GB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return (unit ? value.toFixed(1) : String(value)) + " " + units[unit];
}

// A table: headers, then rows of cells (text or nodes); each row may carry attributes.
function table(headers, rows, rowAttrs) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells, i) =>
      el("tr", rowAttrs ? rowAttrs(i) : {}, cells.map((c) => el("td", {}, c))))));
}

// A line chart of series over x (uPlot); values may be null (gaps).
function lineChart(title, xs, series, opts) {
  const box = el("div", { class: "chart", "data-chart": title });
  const colours = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2"];
  const toNumber = (v) => (typeof v === "number" ? v : null);
  const options = {
    title: title, width: (opts && opts.width) || 560, height: (opts && opts.height) || 240,
    scales: { x: { time: !!(opts && opts.time) } },
    // Rounds and versions are whole numbers: no ticks between them.
    axes: (opts && opts.time) ? undefined : [{ incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}],
    series: [{ label: (opts && opts.xLabel) || "round" }].concat(
      series.map((s, i) => ({ label: s.label, stroke: colours[i % colours.length], width: 2 }))),
  };
  const data = [xs].concat(series.map((s) => s.values.map(toNumber)));
  // uPlot measures its box: draw once it is in the document.
  requestAnimationFrame(() => new uPlot(options, data, box));
  return box;
}

function setStatus(text) {
  const node = document.getElementById("status");
  if (node) node.textContent = text;
}

// Draw with render(data) now and, on live pages, again whenever the answer changes.
function keepDrawn(path, render, every) {
  let last = null;
  const main = document.getElementById("main");
  async function once() {
    try {
      const data = await api(path);
      const text = JSON.stringify(data);
      if (text !== last) {
        last = text;
        main.replaceChildren(...[].concat(render(data)));
        document.body.dataset.drawn = String(Number(document.body.dataset.drawn || 0) + 1);
      }
      setStatus("updated " + new Date().toLocaleTimeString());
    } catch (error) {
      setStatus(String(error.message || error));
      if (last === null) main.replaceChildren(el("p", { class: "bad" }, String(error.message || error)));
    }
  }
  window.redraw = once;
  once();
  if (document.body.dataset.live === "1") setInterval(once, every || 2000);
}
