// poolkit explore: the page. It draws what the server computes; no pooling happens here.
// Controls are built from GET /api/kinds, so a new pooling kind needs no change in this file
// unless it brings a new control type (see CONTROLS) or a new way to explain a cell (EXPLAIN).
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "dataset") Object.assign(e.dataset, v);
    else if (k === "text") e.textContent = v;
    else if (k in e) e[k] = v;
    else e.setAttribute(k, v);
  }
  for (const kid of kids) if (kid != null) e.append(kid);
  return e;
};

const state = {
  kinds: null,          // GET /api/kinds
  values: {},           // current parameter values by name
  x: null,              // input grid (2-D array)
  label: null,          // input description
  pool: null,           // last POST /api/pool response
  model: null,          // GET /api/model
  maps: null,           // last POST /api/model response
  channel: 0,
  seq: { pool: 0, model: 0, shift: 0 },
  playing: null,
  inCells: [], outCells: [], padCells: [],
};

// ------------------------------------------------------------------------------------------
// Server calls.

async function api(path, opts = {}) {
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { data = { error: `HTTP ${res.status}` }; }
  if (!res.ok) {
    const err = new Error((data && data.error) || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return data;
}
const post = (path, body) => api(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
});

function showError(msg) {
  const box = $("error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

// ------------------------------------------------------------------------------------------
// Number formatting and colours.

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  if (a >= 1000 || (a > 0 && a < 0.001)) return v.toExponential(2);
  return String(Number(v.toFixed(3)));
}

function range2d(grid) {
  let lo = Infinity, hi = -Infinity;
  for (const row of grid) for (const v of row) {
    if (v === null) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!isFinite(lo)) { lo = 0; hi = 1; }
  if (hi <= lo) hi = lo + 1;
  return [lo, hi];
}

function gray(v, lo, hi) {
  const t = Math.max(0, Math.min(1, (v - lo) / (hi - lo)));
  const g = Math.round(255 * t);
  return [`rgb(${g},${g},${g})`, t > 0.55 ? "#111" : "#eee"];
}

const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
function viridis(t) {
  t = Math.max(0, Math.min(1, t)) * (VIRIDIS.length - 1);
  const i = Math.min(Math.floor(t), VIRIDIS.length - 2), f = t - i;
  return VIRIDIS[i].map((a, k) => Math.round(a + f * (VIRIDIS[i + 1][k] - a)));
}

function paint(canvas, grid, lo, hi, map = "viridis") {
  const h = grid.length, w = grid[0].length;
  canvas.width = w; canvas.height = h;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(w, h);
  for (let r = 0; r < h; r++) for (let c = 0; c < w; c++) {
    const v = grid[r][c], t = v === null ? 0 : (v - lo) / (hi - lo);
    const rgb = map === "gray" ? [0, 0, 0].map(() => Math.round(255 * Math.max(0, Math.min(1, t))))
      : viridis(t);
    const o = 4 * (r * w + c);
    img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// ------------------------------------------------------------------------------------------
// Controls, from the kinds table.

const call = () => {
  const kind = state.kinds.kinds.find((k) => k.name === $("kind").value);
  return kind.conventions[$("convention").value];
};

function selectOf(testid, options, value) {
  const s = el("select", { dataset: { testid } });
  for (const [v, text] of options) s.append(el("option", { value: v, text }));
  s.value = value;
  return s;
}

const sizeOptions = (p) => {
  const out = [];
  for (let v = p.min; v <= Math.min(p.max, 16); v++) out.push([String(v), String(v)]);
  return out;
};

// control type -> (param, current value, onchange) -> element; read() gives the JSON value.
const CONTROLS = {
  size(p, value, changed) {
    const s = selectOf(p.testid, sizeOptions(p), String(value[0]));
    s.addEventListener("change", () => changed([+s.value, +s.value]));
    return s;
  },
  stride(p, value, changed) {
    const s = selectOf(p.testid, [["", "= pool size"], ...sizeOptions(p)],
      value === null ? "" : String(value[0]));
    s.addEventListener("change", () => changed(s.value === "" ? null : [+s.value, +s.value]));
    return s;
  },
  torch_padding(p, value, changed) {
    const opts = [];
    for (let v = p.min; v <= Math.min(p.max, 8); v++) opts.push([String(v), String(v)]);
    const s = selectOf(p.testid, opts, String(value[0]));
    s.addEventListener("change", () => changed([+s.value, +s.value]));
    return s;
  },
  keras_padding(p, value, changed) {
    const word = typeof value === "string" ? value : "explicit";
    const s = selectOf(p.testid, [["valid", "valid"], ["same", "same"],
      ["explicit", "explicit [[top, bottom], [left, right]]"]], word);
    const pads = Array.isArray(value) ? value : [[0, 0], [0, 0]];
    const box = el("span", { className: "explicit" });
    const inputs = ["top", "bottom", "left", "right"].map((name, i) => {
      const inp = el("input", { type: "number", min: p.min, max: p.max,
        value: pads[i >> 1][i & 1], title: name, dataset: { testid: `padding-${name}` } });
      box.append(el("label", { text: `${name} ` }, inp), " ");
      return inp;
    });
    box.hidden = word !== "explicit";
    const read = () => s.value !== "explicit" ? s.value
      : [[+inputs[0].value, +inputs[1].value], [+inputs[2].value, +inputs[3].value]];
    s.addEventListener("change", () => { box.hidden = s.value !== "explicit"; changed(read()); });
    for (const inp of inputs) inp.addEventListener("change", () => changed(read()));
    return el("span", {}, s, " ", box);
  },
  bool(p, value, changed) {
    const c = el("input", { type: "checkbox", checked: !!value, dataset: { testid: p.testid } });
    c.addEventListener("change", () => changed(c.checked));
    return c;
  },
  int_or_null(p, value, changed) {
    const inp = el("input", { type: "number", min: p.min, max: p.max, placeholder: "none",
      value: value === null ? "" : value, dataset: { testid: p.testid } });
    inp.addEventListener("change", () => changed(inp.value === "" ? null : +inp.value));
    return inp;
  },
};

const sameShape = (a, b) => JSON.stringify(typeof a) === JSON.stringify(typeof b)
  && Array.isArray(a) === Array.isArray(b);

// Offer only the conventions the kind has; keep the current one if it can.
function syncConventions() {
  const kind = state.kinds.kinds.find((k) => k.name === $("kind").value);
  const sel = $("convention");
  for (const o of sel.options) o.disabled = !(o.value in kind.conventions);
  if (!(sel.value in kind.conventions)) sel.value = Object.keys(kind.conventions)[0];
}

function buildParams() {
  syncConventions();
  const c = call(), box = $("params");
  box.replaceChildren();
  const old = state.values, values = {};
  for (const p of c.params) {
    // Keep a value the user set if the new control understands it, else the default.
    const keep = p.name in old && old[`${p.name}:control`] === p.control
      && (old[p.name] === null || p.default === null || sameShape(old[p.name], p.default));
    values[p.name] = keep ? old[p.name] : p.default;
    values[`${p.name}:control`] = p.control;
    const make = CONTROLS[p.control];
    const ctl = make ? make(p, values[p.name], (v) => { state.values[p.name] = v; changed(); })
      : el("span", { text: `(no control for ${p.control})` });
    box.append(el("div", { className: "param" },
      el("label", { text: p.label }), ctl, el("span", { className: "help", text: p.help })));
  }
  state.values = values;
}

function requestParams() {
  const out = {};
  for (const p of call().params) out[p.name] = state.values[p.name];
  return out;
}

function callText() {
  const c = call(), args = requestParams();
  const show = (v) => v === null ? "None"
    : typeof v === "boolean" ? (v ? "True" : "False")
      : typeof v === "string" ? `'${v}'`
        : Array.isArray(v) ? `(${v.map(show).join(", ")})` : String(v);
  const parts = c.params.map((p) => `${p.arg}=${show(args[p.name])}`);
  return `${c.function}(x, ${parts.join(", ")})`;
}

// ------------------------------------------------------------------------------------------
// Grids.

function cellSize(rows, cols) {
  return Math.max(8, Math.min(44, Math.floor(400 / Math.max(rows, cols))));
}
const SHOW_VALUES = 30;  // cells at least this many pixels wide show their value
const short = (v) => (v === null ? "–" : Number.isInteger(v) ? String(v) : v.toFixed(2));

// The input grid, with the padding the windows reach drawn around it.
function renderInput() {
  const x = state.x, H = x.length, W = x[0].length, p = state.pool;
  let r0 = 0, r1 = H - 1, c0 = 0, c1 = W - 1;
  if (p) {
    const rs = p.windows.rows.flat(), cs = p.windows.cols.flat();
    r0 = Math.min(0, ...rs); r1 = Math.max(H - 1, ...rs);
    c0 = Math.min(0, ...cs); c1 = Math.max(W - 1, ...cs);
  }
  const rows = r1 - r0 + 1, cols = c1 - c0 + 1, size = cellSize(rows, cols);
  const grid = $("in-grid");
  grid.style.setProperty("--cell", `${size}px`);
  grid.style.gridTemplateColumns = `repeat(${cols}, ${size}px)`;
  const [lo, hi] = range2d(x);
  state.range = [lo, hi];
  state.inCells = x.map(() => []);
  state.padCells = new Map();
  const kids = [];
  for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) {
    if (r >= 0 && r < H && c >= 0 && c < W) {
      const v = x[r][c], [bg, ink] = gray(v, lo, hi);
      const d = el("div", { className: "cell", dataset: { testid: "in-cell", row: r, col: c },
        title: `input (${r}, ${c}) = ${fmt(v)}` });
      d.style.background = bg; d.style.color = ink;
      if (size >= SHOW_VALUES) d.textContent = short(v);
      state.inCells[r][c] = d;
      kids.push(d);
    } else {
      const over = p && isOverhang(p, r, c, H, W);
      const d = el("div", { className: over ? "cell pad over" : "cell pad",
        dataset: { testid: "pad-cell", row: r, col: c },
        title: over ? `(${r}, ${c}) lies past the padding: only ceil_mode windows reach it`
          : `padding (${r}, ${c})` });
      state.padCells.set(`${r},${c}`, d);
      kids.push(d);
    }
  }
  grid.replaceChildren(...kids);
}

// Past the declared padding: where a ceil_mode window overhangs.
function isOverhang(p, r, c, H, W) {
  const [pt, pl] = p.padding.before, [pb, pr] = p.padding.after;
  return r < -pt || r >= H + pb || c < -pl || c >= W + pr;
}

function renderOutput() {
  const p = state.pool, grid = $("out-grid");
  state.outCells = [];
  if (!p) { grid.replaceChildren(); return; }
  const [OH, OW] = p.shape, size = cellSize(OH, OW);
  grid.style.setProperty("--cell", `${size}px`);
  grid.style.gridTemplateColumns = `repeat(${OW}, ${size}px)`;
  const [lo, hi] = state.range;  // the input's scale: pooled values compare with the input's
  const kids = [];
  for (let i = 0; i < OH; i++) {
    state.outCells.push([]);
    for (let j = 0; j < OW; j++) {
      const v = p.output[i][j];
      const d = el("div", { className: "cell", dataset: { testid: "out-cell", row: i, col: j },
        title: `output (${i}, ${j}) = ${fmt(v)}` });
      if (v === null) d.classList.add("nan");
      else { const [bg, ink] = gray(v, lo, hi); d.style.background = bg; d.style.color = ink; }
      if (size >= SHOW_VALUES) d.textContent = short(v);
      state.outCells[i].push(d);
      kids.push(d);
    }
  }
  grid.replaceChildren(...kids);
}

function clearMarks() {
  for (const row of state.inCells) for (const d of row) {
    delete d.dataset.inWindow; d.classList.remove("winner");
  }
  for (const d of state.padCells.values()) d.classList.remove("in-window");
  for (const row of state.outCells) for (const d of row) {
    delete d.dataset.fed; d.classList.remove("current");
  }
}

// How one output cell is explained, by the kind's "explain" field from the server.
const EXPLAIN = {
  argmax(p, i, j, cells, box) {
    const win = p.argmax && p.argmax[i][j];
    const vals = cells.filter((c) => c.inside);
    const list = vals.slice(0, 25).map((c) => {
      const s = el("span", { text: fmt(c.v) });
      if (win && c.r === win[0] && c.c === win[1]) s.className = "win";
      return s;
    });
    const f = el("div", { className: "formula" }, `${p.kind}(`);
    list.forEach((s, k) => { if (k) f.append(", "); f.append(s); });
    if (vals.length > 25) f.append(", …");
    f.append(`) = ${fmt(p.output[i][j])}`);
    box.append(f);
    if (win) {
      box.append(el("div", { text: `The winner is input (${win[0]}, ${win[1]}), the first ` +
        "one in row-major order if values tie. Backpropagation sends this output's whole " +
        `gradient there; the other ${vals.length - 1} cell(s) of the window get 0 from it.` }));
    } else {
      box.append(el("div", { text: "No input cell in this window: the output is empty (−inf)." }));
    }
  },
  divisor(p, i, j, cells, box) {
    const div = p.divisor && p.divisor[i][j], out = p.output[i][j];
    const vals = cells.filter((c) => c.inside);
    const nPad = cells.length - vals.length;
    const terms = vals.slice(0, 25).map((c) => fmt(c.v)).join(" + ") + (vals.length > 25 ? " + …" : "");
    if (div === null || div === undefined) {
      box.append(el("div", { text: "No input cell in this window: the output is 0." }));
      return;
    }
    box.append(el("div", { className: "formula",
      text: `(${terms}) / ${div} = ${fmt(out * div)} / ${div} = ${fmt(out)}` }));
    let why;
    if (p.args.divisor_override) why = `divisor_override=${div}`;
    else if (div === vals.length) why = `the ${vals.length} input cell(s) read` +
      (nPad ? `; the ${nPad} position(s) outside the input are not counted` : "");
    else why = `${vals.length} input cell(s) + ${div - vals.length} padding cell(s): ` +
      "count_include_pad counts the padding";
    box.append(el("div", { text: `Divisor ${div}: ${why}. Backpropagation gives each of the ` +
      `${vals.length} input cell(s) 1/${div} of this output's gradient.` }));
  },
  window(p, i, j, cells, box) {
    box.append(el("div", { text: `${cells.filter((c) => c.inside).length} input cells read; ` +
      `output ${fmt(p.output[i][j])}.` }));
  },
};

function showWindow(i, j) {
  const p = state.pool;
  if (!p || !state.outCells[i]) return;
  clearMarks();
  state.outCells[i][j].classList.add("current");
  const H = state.x.length, W = state.x[0].length, cells = [];
  for (const r of p.windows.rows[i]) for (const c of p.windows.cols[j]) {
    const inside = r >= 0 && r < H && c >= 0 && c < W;
    cells.push({ r, c, inside, v: inside ? state.x[r][c] : null });
    if (inside) state.inCells[r][c].dataset.inWindow = "true";
    else { const d = state.padCells.get(`${r},${c}`); if (d) d.classList.add("in-window"); }
  }
  const win = p.argmax && p.argmax[i][j];
  if (win) state.inCells[win[0]][win[1]].classList.add("winner");
  const box = $("explain");
  const rows = p.windows.rows[i], cols = p.windows.cols[j];
  const nOut = cells.filter((c) => !c.inside).length;
  const nOver = cells.filter((c) => !c.inside && isOverhang(p, c.r, c.c, H, W)).length;
  box.replaceChildren(el("div", { text: `Output (${i}, ${j}) reads input rows ` +
    `${rows.join(", ")} and columns ${cols.join(", ")}` + (nOut ? ` (${nOut} of the ` +
      `${cells.length} positions are outside the input, never read: ${nOut - nOver} padding` +
      (nOver ? `, ${nOver} past the padding, where ceil_mode lets the window overhang` : "") +
      ")." : ".") }));
  (EXPLAIN[p.explain] || EXPLAIN.window)(p, i, j, cells, box);
}

function showFeeds(r, c) {
  const p = state.pool;
  if (!p) return;
  clearMarks();
  const fed = [];
  p.windows.rows.forEach((rows, i) => {
    if (!rows.includes(r)) return;
    p.windows.cols.forEach((cols, j) => {
      if (cols.includes(c)) { state.outCells[i][j].dataset.fed = "true"; fed.push([i, j]); }
    });
  });
  state.inCells[r][c].dataset.inWindow = "true";
  let wins = 0;
  if (p.argmax) for (const [i, j] of fed) {
    const w = p.argmax[i][j];
    if (w && w[0] === r && w[1] === c) wins++;
  }
  const box = $("explain");
  box.replaceChildren(el("div", { text: `Input (${r}, ${c}) = ${fmt(state.x[r][c])} is in the ` +
    `window of ${fed.length} output cell(s)` + (fed.length ? ": " +
      fed.slice(0, 12).map(([i, j]) => `(${i}, ${j})`).join(" ") + (fed.length > 12 ? " …" : "")
      : " (no window reads it: it is dropped)") + "." }));
  if (p.argmax) box.append(el("div", { text: `It wins ${wins} of them, so it receives the ` +
    `gradient of ${wins} output(s)` + (wins ? "." : ": during training it does not learn from this layer.") }));
}

function bindGrids() {
  $("out-grid").addEventListener("mouseover", (e) => {
    const d = e.target.closest("[data-testid=out-cell]");
    if (d) { stopPlay(); showWindow(+d.dataset.row, +d.dataset.col); }
  });
  $("in-grid").addEventListener("mouseover", (e) => {
    const d = e.target.closest("[data-testid=in-cell]");
    if (d) { stopPlay(); showFeeds(+d.dataset.row, +d.dataset.col); }
  });
  for (const id of ["in-grid", "out-grid"]) {
    $(id).addEventListener("mouseleave", () => { if (!state.playing) clearMarks(); });
  }
  $("play").addEventListener("click", () => (state.playing ? stopPlay() : startPlay()));
}

function startPlay() {
  const p = state.pool;
  if (!p) return;
  let k = 0;
  const n = p.shape[0] * p.shape[1];
  $("play").textContent = "⏸ pause";
  const step = () => {
    if (k >= n) { stopPlay(); return; }
    showWindow(Math.floor(k / p.shape[1]), k % p.shape[1]);
    k++;
  };
  step();
  state.playing = setInterval(step, Math.max(60, Math.min(500, 12000 / n)));
}

function stopPlay() {
  if (state.playing) clearInterval(state.playing);
  state.playing = null;
  $("play").textContent = "▶ play";
}

// ------------------------------------------------------------------------------------------
// Shapes table.

function renderShapes(p) {
  const body = $("shape-rules").tBodies[0];
  body.replaceChildren();
  for (const r of p.shapes.rules) {
    const pad = r.convention === "keras"
      ? (typeof r.padding === "string" ? `'${r.padding}'` : JSON.stringify(r.padding))
      : `padding=${r.padding[0] === r.padding[1] ? r.padding[0] : JSON.stringify(r.padding)}` +
        `, ceil_mode=${r.ceil_mode ? "True" : "False"}`;
    const name = `${r.convention === "keras" ? "Keras" : "PyTorch"} ${pad}`;
    const tr = el("tr", { className: r.active ? "active" : "" }, el("td", { text: name }));
    if (r.error) {
      tr.append(el("td", { text: "invalid" }),
        el("td", { colSpan: 2, className: "err", text: r.error }));
    } else {
      tr.append(el("td", { text: `${r.shape[0]} x ${r.shape[1]}` }),
        el("td", { text: r.formula[0] }), el("td", { text: r.formula[1] }));
    }
    body.append(tr);
  }
}

// ------------------------------------------------------------------------------------------
// Pooling requests.

let poolTimer = null;
function changed() {
  document.body.dataset.busy = "pool";  // until the answer to this change is drawn
  $("call").textContent = callText();
  clearTimeout(poolTimer);
  poolTimer = setTimeout(runPool, 40);
}

async function runPool() {
  if (!state.x || !state.kinds) return;
  stopPlay();
  document.body.dataset.busy = "pool";
  const seq = ++state.seq.pool;
  // The first call of a kind of window compiles poolkit's kernels (once, cached on disk).
  const slow = setTimeout(() => {
    if (seq === state.seq.pool) $("output-desc").textContent = "computing… (the first call " +
      "of a new kind of window compiles poolkit's kernels, once)";
  }, 400);
  const body = { x: state.x, kind: $("kind").value, convention: $("convention").value,
    ...requestParams() };
  try {
    const p = await post("/api/pool", body).finally(() => clearTimeout(slow));
    if (seq !== state.seq.pool) return;
    state.pool = p;
    showError("");
    $("output-shape").textContent = `${p.shape[0]} x ${p.shape[1]}`;
    $("output-desc").textContent = `${p.function}: ${p.input_shape[0]} x ${p.input_shape[1]} → ` +
      `${p.shape[0]} x ${p.shape[1]}`;
    renderInput();
    renderOutput();
    renderShapes(p);
    $("explain").textContent = "Hover an output cell to see its window and its arithmetic.";
  } catch (e) {
    if (seq !== state.seq.pool) return;
    state.pool = null;
    $("output-shape").textContent = "invalid";
    showError(e.message);
    renderInput();
    renderOutput();
  }
  delete document.body.dataset.busy;
}

// ------------------------------------------------------------------------------------------
// Input sources.

function setInput(x, label) {
  state.x = x;
  state.label = label;
  $("input-desc").textContent = `${label}, ${x.length} x ${x[0].length}`;
  state.pool = null;
  renderInput();
  runPool();
  runModel();
}

async function loadDigit(i) {
  const n = state.digitCount || 2000;
  i = ((i % n) + n) % n;
  $("digit-index").value = i;
  try {
    const d = await api(`/api/digit/${i}`);
    setInput(d.x, `test digit ${d.index} (label ${d.label})`);
  } catch (e) { showError(e.message); }
}

async function uploadBlob(blob, label) {
  if (blob.size > 1 << 20) { showError(`image: ${blob.size} bytes; at most 1 MB is accepted`); return; }
  try {
    const d = await api("/api/upload", { method: "POST", body: blob,
      headers: { "Content-Type": blob.type || "application/octet-stream" } });
    setInput(d.x, label + (d.format ? ` (${d.format} ${d.width} x ${d.height}, made MNIST-like)` : ""));
  } catch (e) { showError(e.message); }
}

function numbers() {
  const n = +$("numbers-size").value;
  const x = [];
  for (let r = 0; r < n; r++) {
    x.push([]);
    for (let c = 0; c < n; c++) x[r].push(Math.floor(Math.random() * 10));
  }
  setInput(x, "random integers 0–9");
}

function setSource(src) {
  for (const e of document.querySelectorAll("[data-source]")) e.hidden = e.dataset.source !== src;
  if (src === "digit") loadDigit(+$("digit-index").value || 0);
  else if (src === "numbers") numbers();
  else if (src === "draw") clearDrawing(true);
}

function clearDrawing(send) {
  const cv = $("draw"), ctx = cv.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, cv.width, cv.height);
  if (send) setInput(Array.from({ length: 28 }, () => new Array(28).fill(0)), "your drawing");
}

function bindDrawing() {
  const cv = $("draw"), ctx = cv.getContext("2d");
  let drawing = false, last = null;
  const pos = (e) => {
    const b = cv.getBoundingClientRect();
    return [(e.clientX - b.left) * cv.width / b.width, (e.clientY - b.top) * cv.height / b.height];
  };
  cv.addEventListener("pointerdown", (e) => {
    drawing = true; last = pos(e); cv.setPointerCapture(e.pointerId);
  });
  cv.addEventListener("pointermove", (e) => {
    if (!drawing) return;
    const p = pos(e);
    ctx.strokeStyle = "#fff"; ctx.lineWidth = 22; ctx.lineCap = "round"; ctx.lineJoin = "round";
    ctx.beginPath(); ctx.moveTo(...last); ctx.lineTo(...p); ctx.stroke();
    last = p;
  });
  const end = () => {
    if (!drawing) return;
    drawing = false;
    cv.toBlob((b) => b && uploadBlob(b, "your drawing"), "image/png");
  };
  cv.addEventListener("pointerup", end);
  cv.addEventListener("pointercancel", end);
  $("draw-clear").addEventListener("click", () => clearDrawing(true));
}

// ------------------------------------------------------------------------------------------
// The model panel and the shift panel.

async function pollModel() {
  try {
    const m = await api("/api/model");
    state.model = m;
    $("model-source").textContent = `Model: ${m.source}.`;
    if (m.status === "ready") {
      $("model-status").textContent = m.layers.map((l) => l.type).join(" → ");
      runModel();
      return;
    }
    if (m.status === "failed") { $("model-status").textContent = `failed: ${m.error}`; return; }
    $("model-status").textContent = "training the demo's model, once (a few seconds; the " +
      "first run also compiles poolkit's kernels)…";
  } catch (e) {
    $("model-status").textContent = `unavailable: ${e.message}`;
  }
  setTimeout(pollModel, 1000);
}

function modelReady() {
  return state.model && state.model.status === "ready" && state.x && state.x.length === 28
    && state.x[0].length === 28;
}

async function runModel() {
  if (!state.model || state.model.status !== "ready") return;
  if (!modelReady()) {
    $("model-body").hidden = true; $("shift-body").hidden = true;
    $("model-source").textContent = `Model: ${state.model.source}. It reads 28 x 28 digits: ` +
      "pick a digit, draw or upload an image to see it.";
    return;
  }
  $("model-source").textContent = `Model: ${state.model.source}.`;
  const seq = ++state.seq.model;
  try {
    const m = await post("/api/model", { x: state.x });
    if (seq !== state.seq.model) return;
    state.maps = m;
    if (!state.channelPicked) {  // start on the most active channel
      const sums = m.conv.maps.map((g) => g.flat().reduce((a, v) => a + (v || 0), 0));
      state.channel = sums.indexOf(Math.max(...sums));
      state.channelPicked = true;
    }
    $("model-body").hidden = false;
    renderScores($("scores"), m.scores);
    $("prediction").textContent = `${m.prediction} (${Math.round(100 * m.scores[m.prediction])}%)`;
    renderThumbs();
    renderChannel();
    $("shift-body").hidden = false;
    runShift();
  } catch (e) { showError(e.message); }
}

function renderScores(box, scores) {
  box.replaceChildren();
  const top = scores.indexOf(Math.max(...scores));
  scores.forEach((s, k) => {
    const bar = el("div", { className: "bar" + (k === top ? " top" : "") });
    bar.style.width = `${Math.max(1, 100 * s)}%`;
    box.append(el("span", { text: String(k) }), el("div", {}, bar),
      el("span", { text: `${(100 * s).toFixed(1)}%` }));
  });
}

function channelRange(k) {
  const m = state.maps;
  const [lo, hi] = range2d(m.conv.maps[k]);
  if (!m.pooled) return [lo, hi];
  const [plo, phi] = range2d(m.pooled.maps[k]);
  return [Math.min(lo, plo), Math.max(hi, phi)];
}

function renderThumbs() {
  const m = state.maps, tc = $("thumbs-conv"), tp = $("thumbs-pool");
  tc.replaceChildren(); tp.replaceChildren();
  m.conv.maps.forEach((g, k) => {
    const [lo, hi] = channelRange(k);
    const a = el("canvas", { title: `channel ${k}, before pooling`, dataset: { channel: k } });
    paint(a, g, lo, hi);
    tc.append(a);
    if (m.pooled) {
      const b = el("canvas", { title: `channel ${k}, after pooling`, dataset: { channel: k } });
      paint(b, m.pooled.maps[k], lo, hi);
      tp.append(b);
    }
  });
  markChannel();
}

function markChannel() {
  for (const c of document.querySelectorAll(".thumbs canvas")) {
    c.classList.toggle("sel", +c.dataset.channel === state.channel);
  }
}

function renderChannel() {
  const m = state.maps, k = state.channel, [lo, hi] = channelRange(k);
  paint($("conv-big"), m.conv.maps[k], lo, hi);
  const cs = m.conv.shape;
  $("channel-label").textContent = `${k} of ${cs[2]}`;
  $("conv-caption").textContent = `${m.conv.layer.name}: ${cs[0]} x ${cs[1]}`;
  if (m.pooled) {
    paint($("pool-big"), m.pooled.maps[k], lo, hi);
    const l = m.pooled.layer, ps = m.pooled.shape;
    $("pool-caption").textContent = `${l.type} ${l.pool_size.join("x")}, stride ` +
      `${l.strides.join("x")}: ${ps[0]} x ${ps[1]}`;
  } else {
    $("pool-caption").textContent = "this model has no pooling layer after its convolution";
  }
  markChannel();
}

async function runShift() {
  if (!modelReady()) return;
  const dy = +$("shift-dy").value, dx = +$("shift-dx").value;
  $("shift-dy-val").textContent = dy; $("shift-dx-val").textContent = dx;
  const seq = ++state.seq.shift;
  try {
    const s = await post("/api/shift", { x: state.x, shift: [dy, dx] });
    if (seq !== state.seq.shift) return;
    state.shift = s;
    renderShift();
  } catch (e) { showError(e.message); }
}

function renderShift() {
  const s = state.shift, k = state.channel;
  if (!s) return;
  paint($("shift-input"), s.x, 0, 1, "gray");
  if (s.pooled) {
    const [lo, hi] = range2d([...s.pooled.base[k], ...s.pooled.maps[k]]);
    paint($("shift-base"), s.pooled.base[k], lo, hi);
    paint($("shift-pooled"), s.pooled.maps[k], lo, hi);
  }
  const p = s.prediction, b = s.base.prediction;
  $("shift-prediction").textContent = `Shifted by (${s.shift[0]}, ${s.shift[1]}): predicted ` +
    `${p} (${Math.round(100 * s.scores[p])}%); unshifted: ${b} ` +
    `(${Math.round(100 * s.base.scores[b])}%)` + (p === b ? "." : " — the shift changed the answer.");
  const eq = s.equivariance;
  $("shift-equivariance").textContent = eq
    ? `Pooled map vs the unshifted pooled map moved by (${eq.q[0]}, ${eq.q[1]}) cells: relative ` +
      `difference ${eq.error.toFixed(3)} (0 would mean the pooling commuted with the shift).`
    : "";
  const t = $("shift-grid");
  t.replaceChildren();
  const head = el("tr", {}, el("th", { text: "↓ \\ →" }));
  s.grid[0].forEach((_, j) => head.append(el("th", { text: String(j) })));
  t.append(head);
  s.grid.forEach((row, i) => {
    const tr = el("tr", {}, el("th", { text: String(i) }));
    row.forEach((v, j) => {
      const td = el("td", { text: String(v), className: v === b ? "same" : "diff",
        title: `shift down ${i}, right ${j}: predicted ${v}` });
      if (i === s.shift[0] && j === s.shift[1]) td.classList.add("now");
      tr.append(td);
    });
    t.append(tr);
  });
  const n = s.grid.length * s.grid[0].length;
  $("shift-consistency").textContent = `${s.consistent} of ${n} shifts keep the unshifted ` +
    "prediction.";
}

// ------------------------------------------------------------------------------------------
// Start.

async function main() {
  bindGrids();
  bindDrawing();
  for (let n = 4; n <= 12; n++) $("numbers-size").append(el("option", { value: n, text: `${n} x ${n}` }));
  $("numbers-size").value = "8";
  try {
    await api("/api/health");
    $("server-status").textContent = "connected to poolkit";
  } catch (e) {
    $("server-status").textContent = "server unreachable";
    $("server-status").classList.add("bad");
  }
  state.kinds = await api("/api/kinds");
  for (const k of state.kinds.kinds) {
    $("kind").append(el("option", { value: k.name, disabled: !k.explorer,
      text: k.label + (k.explorer ? "" : " (not in the explorer yet)") }));
  }
  buildParams();
  $("call").textContent = callText();
  $("kind").addEventListener("change", () => { buildParams(); changed(); });
  $("convention").addEventListener("change", () => { buildParams(); changed(); });
  $("source").addEventListener("change", () => setSource($("source").value));
  $("digit-index").addEventListener("change", () => loadDigit(+$("digit-index").value || 0));
  $("digit-prev").addEventListener("click", () => loadDigit(+$("digit-index").value - 1));
  $("digit-next").addEventListener("click", () => loadDigit(+$("digit-index").value + 1));
  $("digit-random").addEventListener("click", () =>
    loadDigit(Math.floor(Math.random() * (state.digitCount || 2000))));
  $("numbers-new").addEventListener("click", numbers);
  $("numbers-size").addEventListener("change", numbers);
  $("upload").addEventListener("change", () => {
    const f = $("upload").files[0];
    if (f) uploadBlob(f, `uploaded ${f.name}`);
  });
  for (const id of ["shift-dy", "shift-dx"]) $(id).addEventListener("input", runShift);
  for (const id of ["thumbs-conv", "thumbs-pool"]) {
    $(id).addEventListener("click", (e) => {
      const c = e.target.closest("canvas");
      if (c) { state.channel = +c.dataset.channel; renderChannel(); renderShift(); }
    });
  }
  try {
    const d = await api("/api/digits");
    state.digitCount = d.count;
    $("digit-index").max = d.count - 1;
  } catch (e) { showError(e.message); }
  await loadDigit(0);
  pollModel();
}

main().catch((e) => showError(`the page could not start: ${e.message}`));
