/* mlmtool interactive attention view: plain browser JavaScript, no library, no network.
 *
 * mlmtoolView(rootId) reads the JSON block inside the root element, decodes the attention
 * with mlmtoolDecode (decode.js: base64 -> optional deflate -> uint8 levels or float16), and draws:
 * a layers x heads grid of thumbnails, and for the selected head a large heatmap (canvas)
 * and a two-column line view (SVG, after BertViz's head view, Vig 2019). When the data has
 * them: the rollout heatmap (data.rollout, Abnar & Zuidema 2020), the layer-wise predictions
 * at each mask (data.layerwise), and always the "selected tokens" panel: click tokens of the
 * sentence and see their summed attention in the selected head and in the rollout.
 * When the data has a word view (data.words: the same attention aggregated to words by the
 * Python side, Clark et al. 2019, and the rollout aggregated after it was computed), a "Words"
 * switch swaps every panel between pieces and words; data.unit says which is shown first.
 * data.layer_labels (per layer, e.g. "local ±64") name the layers in the grid and titles, and
 * data.notes (the model's attention notes) are shown as a caption; BERT has neither.
 * Every string from the data is inserted with textContent / setAttribute, never as HTML.
 * Layers and heads are numbered from 1 on screen; arrays are indexed from 0.
 */
function mlmtoolView(rootId) {
  "use strict";
  const {hexBytes, unpack} = mlmtoolDecode;  // decode.js: one decoder for every page
  const root = document.getElementById(rootId);
  if (!root) return;
  const $ = (sel) => root.querySelector(sel);
  const SVGNS = "http://www.w3.org/2000/svg";
  let data;
  try {
    data = JSON.parse($(".mlmv-data").textContent);
  } catch (err) {
    return fail("cannot read the view's data: " + err.message);
  }
  const L = data.layers, H = data.heads;
  // the two views of the same attention: pieces (as the model computes it) and, when sent, words
  const views = {token: {tokens: data.tokens, special: data.special, masks: data.masks || [],
                         attention: data.attention, rollout: data.rollout}};
  if (data.words) views.word = data.words;
  let unit = data.unit === "word" && views.word ? "word" : "token";
  let cur = views[unit];  // the view shown: {tokens, special, masks, attention, rollout, decoded...}
  let N = cur.tokens.length, tokens = cur.tokens, special = cur.special, maskSet = new Set(cur.masks);
  const labels = data.labels || {};
  const layerLabels = data.layer_labels || [];  // per layer "global" / "local ±w"; [] = all global
  const lut = hexBytes(data.colormap);  // 256 x RGB
  let levels = null;   // Uint8Array [L*H*N*N]: 0..255 colour level of each weight
  let values = null;   // Float32Array of weights when sent as float16 (else levels / 255)
  const thumbs = [];   // canvases [l*H + h], N x N pixels each
  let selected = null; // {l, h}, from 0
  let roll = null;     // {levels, values} of the rollout matrix [N*N], or null
  const picked = new Set();  // token indices (from 0) clicked in the sentence

  function fail(message) {
    const box = $(".mlmv-error");
    box.textContent = "Error: " + message;
    box.hidden = false;
    $(".mlmv-status").hidden = true;
  }

  async function decode() {
    for (const v of Object.values(views)) {
      v.att = await unpack(v.attention, "attention");
      v.roll = v.rollout ? await unpack(v.rollout.matrix, "rollout") : null;
    }
    use(unit);
  }

  // make `u` ("token" or "word") the view every panel draws from
  function use(u) {
    unit = u;
    cur = views[u];
    N = cur.tokens.length;
    tokens = cur.tokens;
    special = cur.special;
    maskSet = new Set(cur.masks);
    levels = cur.att.levels;
    values = cur.att.values;
    roll = cur.roll;
    root.dataset.unit = u;
  }

  const base = (l, h) => (l * H + h) * N * N;
  const weight = (l, h, i, j) => {
    const k = base(l, h) + i * N + j;
    return values ? values[k] : levels[k] / cur.attention.scale;
  };
  const layerKind = (l) => layerLabels.length ? " \u00b7 " + layerLabels[l] : "";
  const headName = (l, h) => "Layer " + (l + 1) + layerKind(l) + ", Head " + (h + 1);
  const labelOf = (l, h) => labels["L" + (l + 1) + "H" + (h + 1)] || "";
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const svgEl = (tag, attrs) => {
    const e = document.createElementNS(SVGNS, tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  };
  const fmt = (w) => w.toFixed(3);

  const rollValue = (i, j) => roll.values ? roll.values[i * N + j] : roll.levels[i * N + j] / cur.rollout.matrix.scale;

  /* ---- sentence, tokens, predictions ---- */
  function drawModelLine() {
    $(".mlmv-model").textContent = (data.model ? "Model: " + data.model + " \u00b7 " : "") +
      L + " layers \u00d7 " + H + " heads \u00b7 " + N + (unit === "word" ? " words" : " tokens");
  }

  function drawChips() {
    const box = $(".mlmv-tokens");
    while (box.firstChild) box.removeChild(box.firstChild);
    tokens.forEach((t, i) => {
      const chip = el("span", "mlmv-chip", t);
      if (special[i]) chip.classList.add("mlmv-special");
      if (maskSet.has(i)) chip.classList.add("mlmv-mask");
      chip.title = "token " + i;
      chip.dataset.i = i;
      chip.addEventListener("mouseenter", () => focusToken("from", i));
      chip.addEventListener("mouseleave", () => focusToken(null));
      chip.addEventListener("click", () => pick(i));
      chip.setAttribute("role", "button");
      chip.setAttribute("aria-pressed", "false");
      box.appendChild(chip);
    });
  }

  // the model's attention notes (local layers, shared keys) and, in the word view, how words are made
  function drawNotes() {
    const box = $(".mlmv-arch-notes");
    if (!box) return;
    while (box.firstChild) box.removeChild(box.firstChild);
    const notes = (data.notes || []).concat(unit === "word" && cur.note ? [cur.note] : []);
    notes.forEach((n) => box.appendChild(el("li", null, n)));
    box.hidden = !notes.length;
  }

  function drawHeader() {
    drawModelLine();
    $(".mlmv-text").textContent = data.text;
    drawChips();
    drawNotes();
    if (data.note) {
      $(".mlmv-note").textContent = data.note;
      $(".mlmv-note").hidden = false;
    }
    if (!data.predictions) return;
    const body = $(".mlmv-preds-body");
    for (const mask of data.predictions) {
      const part = el("div", "mlmv-mask-preds");
      const head = el("h3", null, "Mask " + mask.index + " ");
      head.appendChild(el("small", null, "(token " + mask.position + ")"));
      part.appendChild(head);
      const table = el("table");
      mask.candidates.forEach((c, r) => {
        const row = el("tr");
        row.title = c.sequence;
        row.appendChild(el("td", null, String(r + 1)));
        row.appendChild(el("td", "mlmv-tok", c.token));
        const barCell = el("td");
        const bar = el("span", "mlmv-bar");
        const fill = el("span");
        fill.style.width = (100 * c.score).toFixed(1) + "%";
        bar.appendChild(fill);
        barCell.appendChild(bar);
        row.appendChild(barCell);
        row.appendChild(el("td", "mlmv-p", (100 * c.score).toFixed(1) + " %"));
        table.appendChild(row);
      });
      part.appendChild(table);
      body.appendChild(part);
    }
    $(".mlmv-preds").hidden = false;
  }

  /* ---- the grid of thumbnails ---- */
  function paintHead(canvas, l, h) {
    canvas.width = N;
    canvas.height = N;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(N, N);
    const off = base(l, h);
    for (let k = 0; k < N * N; k++) {
      const c = 3 * levels[off + k];
      img.data[4 * k] = lut[c];
      img.data[4 * k + 1] = lut[c + 1];
      img.data[4 * k + 2] = lut[c + 2];
      img.data[4 * k + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function drawGrid() {
    const grid = $(".mlmv-grid");
    grid.style.setProperty("--mlmv-cols", H);
    grid.appendChild(el("span", "mlmv-axis mlmv-corner", ""));
    for (let h = 0; h < H; h++) {
      const c = el("span", "mlmv-axis mlmv-col", "H" + (h + 1));
      c.dataset.head = h + 1;
      grid.appendChild(c);
    }
    for (let l = 0; l < L; l++) {
      const r = el("span", "mlmv-axis mlmv-row", "L" + (l + 1) + layerKind(l));
      r.dataset.layer = l + 1;
      grid.appendChild(r);
      for (let h = 0; h < H; h++) {
        const b = el("button", "mlmv-thumb");
        b.type = "button";
        b.dataset.layer = l + 1;
        b.dataset.head = h + 1;
        const label = labelOf(l, h);
        const name = headName(l, h) + (label ? ": " + label : "");
        b.title = name;
        b.setAttribute("aria-label", name);
        const canvas = el("canvas");
        paintHead(canvas, l, h);
        thumbs[l * H + h] = canvas;
        b.appendChild(canvas);
        b.appendChild(el("span", "mlmv-cap", label || "L" + (l + 1) + " H" + (h + 1)));
        b.addEventListener("click", () => select(l, h));
        b.addEventListener("keydown", (ev) => moveFocus(ev, l, h));
        grid.appendChild(b);
      }
    }
  }

  function moveFocus(ev, l, h) {
    const step = {ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0]}[ev.key];
    if (!step) return;
    const nl = l + step[0], nh = h + step[1];
    const target = root.querySelector('.mlmv-thumb[data-layer="' + (nl + 1) + '"][data-head="' + (nh + 1) + '"]');
    if (target && !target.hidden) {
      ev.preventDefault();
      target.focus();
      target.click();
    }
  }

  /* ---- filters ---- */
  function option(select, value, text) {
    const o = el("option", null, text);
    o.value = value;
    select.appendChild(o);
  }

  function drawFilters() {
    const fl = $(".mlmv-f-layer"), fh = $(".mlmv-f-head"), fr = $(".mlmv-f-role");
    option(fl, "", "All layers");
    for (let l = 1; l <= L; l++) option(fl, String(l), "Layer " + l + layerKind(l - 1));
    option(fh, "", "All heads");
    for (let h = 1; h <= H; h++) option(fh, String(h), "Head " + h);
    const roles = Array.from(new Set(Object.values(labels))).sort();
    if (roles.length) {
      option(fr, "", "All roles");
      roles.forEach((r) => option(fr, r, r));
      $(".mlmv-f-role-wrap").hidden = false;
    }
    [fl, fh, fr].forEach((s) => s.addEventListener("change", applyFilters));
  }

  function applyFilters() {
    const fl = $(".mlmv-f-layer").value, fh = $(".mlmv-f-head").value, fr = $(".mlmv-f-role").value;
    const grid = $(".mlmv-grid");
    grid.querySelectorAll(".mlmv-row").forEach((e) => { e.hidden = fl !== "" && e.dataset.layer !== fl; });
    grid.querySelectorAll(".mlmv-col").forEach((e) => { e.hidden = fh !== "" && e.dataset.head !== fh; });
    grid.querySelectorAll(".mlmv-thumb").forEach((b) => {
      b.hidden = (fl !== "" && b.dataset.layer !== fl) || (fh !== "" && b.dataset.head !== fh);
      const role = labels["L" + b.dataset.layer + "H" + b.dataset.head] || "";
      b.classList.toggle("mlmv-dim", fr !== "" && role !== fr);
    });
    grid.style.setProperty("--mlmv-cols", fh === "" ? H : 1);
  }

  /* ---- the selected head: heatmap and line view ---- */
  let heat = null;  // geometry of the drawn heatmap

  function drawHeat(l, h) {
    heat = drawMatrix($(".mlmv-heat"), thumbs[l * H + h]);
    heat.l = l;
    heat.h = h;
  }

  // a token x token heatmap: `image` (an N x N canvas of colour levels) scaled up, with
  // the token labels and the 0..1 colour bar; returns the geometry (CSS pixels)
  function drawMatrix(canvas, image) {
    const ctx = canvas.getContext("2d");
    const cell = Math.max(3, Math.min(22, Math.floor(520 / N)));
    const showLabels = cell >= 9;
    const font = "12px ui-monospace, 'DejaVu Sans Mono', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Hiragino Sans', 'Microsoft YaHei', 'Yu Gothic', 'Malgun Gothic', 'WenQuanYi Micro Hei', 'Noto Sans Devanagari', 'Noto Color Emoji', 'Segoe UI Emoji', 'Apple Color Emoji', monospace";
    ctx.font = font;
    const labelW = showLabels ? Math.ceil(Math.max(...tokens.map((t) => ctx.measureText(t).width))) + 10 : 6;
    const left = labelW, top = labelW, side = N * cell;
    const barX = left + side + 14, width = barX + 60, height = top + side + 10;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image, left, top, side, side);
    ctx.font = font;
    ctx.fillStyle = "#1d1d1f";
    if (showLabels) {
      ctx.textBaseline = "middle";
      ctx.textAlign = "right";
      tokens.forEach((t, i) => ctx.fillText(t, left - 5, top + i * cell + cell / 2));
      ctx.save();
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "left";
      tokens.forEach((t, j) => ctx.fillText(t, -(top - 5), left + j * cell + cell / 2));
      ctx.restore();
    }
    for (let y = 0; y < side; y++) {  // colour bar, 1 at the top
      const c = 3 * Math.round(255 * (1 - y / Math.max(1, side - 1)));
      ctx.fillStyle = "rgb(" + lut[c] + "," + lut[c + 1] + "," + lut[c + 2] + ")";
      ctx.fillRect(barX, top + y, 12, 1);
    }
    ctx.fillStyle = "#1d1d1f";
    ctx.textAlign = "left";
    ctx.textBaseline = "middle";
    ctx.font = "11px system-ui, sans-serif";
    [[1, "1"], [0.5, "0.5"], [0, "0"]].forEach(([v, s]) => ctx.fillText(s, barX + 16, top + (1 - v) * (side - 1)));
    Object.assign(canvas.dataset, {left, top, cell});  // CSS pixels, for tests and tools
    return {left, top, cell, width, height};
  }

  // the cell (i, j) under the mouse on a canvas drawn by drawMatrix, or null
  function cellAt(ev, geo) {
    if (!geo) return null;
    const r = ev.currentTarget.getBoundingClientRect();
    const x = ev.clientX - r.left, y = ev.clientY - r.top;
    const i = Math.floor((y - geo.top) / geo.cell), j = Math.floor((x - geo.left) / geo.cell);
    return (i < 0 || j < 0 || i >= N || j >= N) ? null : [i, j];
  }

  const pairText = (i, j, w) => "\u201c" + tokens[i] + "\u201d (" + i + ") \u2192 \u201c" + tokens[j] +
    "\u201d (" + j + "): " + fmt(w);

  function onHeatMove(ev) {
    const at = cellAt(ev, heat);
    $(".mlmv-hover").textContent = at ? pairText(at[0], at[1], weight(heat.l, heat.h, at[0], at[1]))
      : "Rows: attending token; columns: token attended to. Hover a cell.";
  }

  /* ---- the rollout (or flow) of all layers ---- */
  let rollGeo = null;

  function drawRollout() {
    if (!roll) return;
    const image = el("canvas");
    image.width = N;
    image.height = N;
    const ctx = image.getContext("2d");
    const img = ctx.createImageData(N, N);
    for (let k = 0; k < N * N; k++) {
      const c = 3 * roll.levels[k];
      img.data[4 * k] = lut[c];
      img.data[4 * k + 1] = lut[c + 1];
      img.data[4 * k + 2] = lut[c + 2];
      img.data[4 * k + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    rollGeo = drawMatrix($(".mlmv-rollout"), image);
    $(".mlmv-rollout-title").textContent = cur.rollout.title;
    $(".mlmv-rollout-wrap").hidden = false;
    $(".mlmv-sum-roll").textContent = cur.rollout.method === "flow" ? "Flow" : "Rollout";
  }

  function onRollMove(ev) {
    const at = roll ? cellAt(ev, rollGeo) : null;
    $(".mlmv-rollout-hover").textContent = at ? pairText(at[0], at[1], rollValue(at[0], at[1]))
      : "Rows: token after the last layer; columns: input token it draws on. Hover a cell.";
  }

  /* ---- layer-wise predictions at each mask ---- */
  function drawLayerwise() {
    if (!data.layerwise) return;
    const body = $(".mlmv-layerwise-body");
    for (const mask of data.layerwise) {
      const part = el("div", "mlmv-lw-mask");
      part.dataset.mask = mask.index;
      const head = el("h3", null, "Mask " + mask.index + ": final \u201c" + mask.final_token.trim() + "\u201d ");
      head.appendChild(el("small", null, "(token " + mask.position + ")"));
      part.appendChild(head);
      const table = el("table");
      const hrow = el("tr");
      ["Layer", "Top pieces", "Rank of final", "p(final)"].forEach((t) => hrow.appendChild(el("th", null, t)));
      table.appendChild(hrow);
      for (const row of mask.by_layer) {
        const tr = el("tr", "mlmv-lw-row");
        tr.dataset.layer = row.layer;
        tr.appendChild(el("td", "mlmv-n", row.layer === 0 ? "0 (emb)" : String(row.layer)));
        const cell = el("td");
        row.top.forEach((t) => {
          const piece = el("span", "mlmv-piece" + (t.token === mask.final_token ? " mlmv-final" : ""), t.token);
          piece.appendChild(el("small", null, " " + (100 * t.probability).toFixed(1) + "%"));
          cell.appendChild(piece);
        });
        tr.appendChild(cell);
        tr.appendChild(el("td", "mlmv-n mlmv-rank", String(row.final_rank)));
        const pc = el("td", "mlmv-n");
        const bar = el("span", "mlmv-bar");
        const fill = el("span");
        fill.style.width = (100 * row.final_probability).toFixed(1) + "%";
        bar.appendChild(fill);
        pc.appendChild(bar);
        pc.appendChild(document.createTextNode(" " + (100 * row.final_probability).toFixed(1) + " %"));
        tr.appendChild(pc);
        table.appendChild(tr);
      }
      part.appendChild(table);
      body.appendChild(part);
    }
    $(".mlmv-layerwise").hidden = false;
  }

  /* ---- selected tokens: their summed attention in the selected head and in the rollout ---- */
  function pick(i) {
    if (picked.has(i)) picked.delete(i); else picked.add(i);
    const chip = root.querySelector('.mlmv-chip[data-i="' + i + '"]');
    if (chip) {
      chip.classList.toggle("mlmv-picked", picked.has(i));
      chip.setAttribute("aria-pressed", picked.has(i) ? "true" : "false");
    }
    drawPicked();
  }

  function clearPicked() {
    picked.clear();
    root.querySelectorAll(".mlmv-chip.mlmv-picked").forEach((c) => {
      c.classList.remove("mlmv-picked");
      c.setAttribute("aria-pressed", "false");
    });
    drawPicked();
  }

  function sumBar(value, count) {
    const td = el("td", "mlmv-n");
    const bar = el("span", "mlmv-bar");
    const fill = el("span");
    fill.style.width = (100 * Math.min(1, value / Math.max(1, count))).toFixed(1) + "%";
    bar.appendChild(fill);
    td.appendChild(bar);
    td.appendChild(document.createTextNode(" " + fmt(value)));
    return td;
  }

  function drawPicked() {
    const list = Array.from(picked).sort((a, b) => a - b);
    root.dataset.picked = list.join(",");
    const table = $(".mlmv-sum"), body = table.querySelector("tbody");
    while (body.firstChild) body.removeChild(body.firstChild);
    if (!list.length || !levels) {
      $(".mlmv-picked-list").textContent = "No token selected: click one or more tokens above.";
      table.hidden = true;
      return;
    }
    const where = selected ? headName(selected.l, selected.h) : "";
    $(".mlmv-picked-list").textContent = "From " + list.map((i) => "\u201c" + tokens[i] + "\u201d (" + i + ")").join(" + ") +
      ": summed over the " + list.length + " selected token" + (list.length > 1 ? "s" : "") +
      (where ? ", in " + where : "") + (roll ? " and in the " + cur.rollout.method : "") + ".";
    $(".mlmv-sum-head").textContent = where || "Selected head";
    $(".mlmv-sum-roll").hidden = !roll;
    for (let j = 0; j < N; j++) {
      let head = 0, total = 0;
      for (const i of list) {
        if (selected) head += weight(selected.l, selected.h, i, j);
        if (roll) total += rollValue(i, j);
      }
      const tr = el("tr", "mlmv-sum-row");
      tr.dataset.j = j;
      tr.dataset.head = head.toFixed(6);
      tr.appendChild(el("td", "mlmv-tok", tokens[j]));
      tr.appendChild(sumBar(head, list.length));
      if (roll) {
        tr.dataset.rollout = total.toFixed(6);
        tr.appendChild(sumBar(total, list.length));
      }
      body.appendChild(tr);
    }
    table.hidden = false;
  }

  function drawLines(l, h) {
    const svg = $(".mlmv-lines");
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    svg.classList.remove("mlmv-focus");
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.font = "12px ui-monospace, 'DejaVu Sans Mono', 'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Hiragino Sans', 'Microsoft YaHei', 'Yu Gothic', 'Malgun Gothic', 'WenQuanYi Micro Hei', 'Noto Sans Devanagari', 'Noto Color Emoji', 'Segoe UI Emoji', 'Apple Color Emoji', monospace";
    const longest = Math.max(...tokens.map((t) => ctx.measureText(t).width));
    const row = N > 48 ? 14 : 18, colW = Math.ceil(Math.min(320, longest + 12)), gap = 150;
    const width = 2 * colW + gap, height = N * row + 8;
    svg.setAttribute("width", width);
    svg.setAttribute("height", height);
    svg.setAttribute("viewBox", "0 0 " + width + " " + height);
    // keep the links that can be seen: weight >= 2/255, at most 12000 of them
    const off = base(l, h);
    let floor = 2;
    const counts = new Uint32Array(256);
    for (let k = 0; k < N * N; k++) counts[levels[off + k]]++;
    let kept = 0;
    for (let v = 255; v >= 2; v--) {
      if (kept + counts[v] > 12000) { floor = v + 1; break; }
      kept += counts[v];
    }
    const group = svgEl("g", {});
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) {
        if (levels[off + i * N + j] < floor) continue;
        const w = weight(l, h, i, j);
        const line = svgEl("line", {x1: colW + 4, y1: 4 + i * row + row / 2, x2: colW + gap - 4,
                                    y2: 4 + j * row + row / 2, "stroke-opacity": w.toFixed(3)});
        line.dataset.i = i;
        line.dataset.j = j;
        group.appendChild(line);
      }
    }
    svg.appendChild(group);
    for (const side of ["from", "to"]) {
      tokens.forEach((t, i) => {
        const text = svgEl("text", side === "from"
          ? {x: colW, y: 4 + i * row + row / 2, "text-anchor": "end", "dominant-baseline": "middle"}
          : {x: colW + gap, y: 4 + i * row + row / 2, "text-anchor": "start", "dominant-baseline": "middle"});
        text.textContent = t;
        text.classList.add("mlmv-tok-" + side);
        if (special[i]) text.classList.add("mlmv-special");
        if (maskSet.has(i)) text.classList.add("mlmv-mask");
        text.dataset.i = i;
        text.addEventListener("mouseenter", () => focusToken(side, i));
        text.addEventListener("mouseleave", () => focusToken(null));
        svg.appendChild(text);
      });
    }
  }

  function focusToken(side, i) {
    const svg = $(".mlmv-lines");
    root.querySelectorAll(".mlmv-on").forEach((e) => e.classList.remove("mlmv-on"));
    if (side === null) {
      svg.classList.remove("mlmv-focus");
      return;
    }
    svg.classList.add("mlmv-focus");
    const key = side === "from" ? "i" : "j";
    svg.querySelectorAll("line").forEach((line) => {
      if (line.dataset[key] === String(i)) line.classList.add("mlmv-on");
    });
    const tok = svg.querySelector(".mlmv-tok-" + side + '[data-i="' + i + '"]');
    if (tok) tok.classList.add("mlmv-on");
    const chip = root.querySelector('.mlmv-chip[data-i="' + i + '"]');
    if (chip) chip.classList.add("mlmv-on");
  }

  function select(l, h) {
    selected = {l, h};
    root.querySelectorAll(".mlmv-thumb.mlmv-selected").forEach((b) => {
      b.classList.remove("mlmv-selected");
      b.setAttribute("aria-pressed", "false");
    });
    const b = root.querySelector('.mlmv-thumb[data-layer="' + (l + 1) + '"][data-head="' + (h + 1) + '"]');
    if (b) {
      b.classList.add("mlmv-selected");
      b.setAttribute("aria-pressed", "true");
    }
    $(".mlmv-detail-title").textContent = headName(l, h);
    const label = labelOf(l, h);
    $(".mlmv-detail-label").textContent = label ? "Role: " + label : "";
    drawHeat(l, h);
    drawLines(l, h);
    drawPicked();
    root.dataset.selected = "L" + (l + 1) + "H" + (h + 1);
  }

  /* ---- downloads ---- */
  function fileName(ext) {
    return "Attention_Layer" + (selected.l + 1) + "_Head" + (selected.h + 1) + (unit === "word" ? "_words" : "") + "." + ext;
  }

  function download(blob, name) {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.hidden = true;
    root.appendChild(a);
    a.click();
    setTimeout(() => { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
  }

  function xml(s) {
    return String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/'/g, "&apos;");
  }

  function headSVG(l, h) {
    const cell = 20, label = 10 + 8 * Math.max(...tokens.map((t) => t.length));
    const left = label, top = 30 + label, side = N * cell, width = left + side + 10, height = top + side + 10;
    const parts = ['<svg xmlns="' + SVGNS + '" width="' + width + '" height="' + height +
      '" font-family="system-ui, -apple-system, \'Segoe UI\', \'DejaVu Sans\', Arial, \'Noto Sans CJK SC\', \'Source Han Sans SC\', \'PingFang SC\', \'Hiragino Sans\', \'Microsoft YaHei\', \'Yu Gothic\', \'Malgun Gothic\', \'WenQuanYi Micro Hei\', \'Noto Sans Devanagari\', \'Noto Color Emoji\', \'Segoe UI Emoji\', \'Apple Color Emoji\', sans-serif" font-size="12">',
      '<rect width="100%" height="100%" fill="#fff"/>',
      '<text x="8" y="20" font-size="14">' + xml(headName(l, h) + (data.model ? " (" + data.model + ")" : "")) + "</text>"];
    tokens.forEach((t, i) => {
      parts.push('<text x="' + (left - 4) + '" y="' + (top + i * cell + cell / 2 + 4) + '" text-anchor="end">' + xml(t) + "</text>");
      parts.push('<text transform="translate(' + (left + i * cell + cell / 2 + 4) + "," + (top - 4) +
        ') rotate(-90)">' + xml(t) + "</text>");
    });
    const off = base(l, h);
    for (let i = 0; i < N; i++) {
      for (let j = 0; j < N; j++) {
        const c = 3 * levels[off + i * N + j];
        const colour = "#" + [lut[c], lut[c + 1], lut[c + 2]].map((v) => v.toString(16).padStart(2, "0")).join("");
        parts.push('<rect x="' + (left + j * cell) + '" y="' + (top + i * cell) + '" width="' + cell + '" height="' +
          cell + '" fill="' + colour + '"><title>' + fmt(weight(l, h, i, j)) + "</title></rect>");
      }
    }
    parts.push("</svg>");
    return parts.join("\n");
  }

  function bindButtons() {
    $(".mlmv-dl-svg").addEventListener("click", () => {
      if (selected) download(new Blob([headSVG(selected.l, selected.h)], {type: "image/svg+xml"}), fileName("svg"));
    });
    $(".mlmv-dl-png").addEventListener("click", () => {
      if (selected) $(".mlmv-heat").toBlob((blob) => download(blob, fileName("png")), "image/png");
    });
    $(".mlmv-heat").addEventListener("mousemove", onHeatMove);
    $(".mlmv-rollout").addEventListener("mousemove", onRollMove);
    $(".mlmv-picked-clear").addEventListener("click", clearPicked);
  }

  /* ---- the "Words" switch: every panel between pieces and words ---- */
  function bindWords() {
    const box = $(".mlmv-f-words");
    if (!box || !views.word) return;
    box.checked = unit === "word";
    box.closest(".mlmv-f-words-wrap").hidden = false;
    box.addEventListener("change", () => switchUnit(box.checked ? "word" : "token"));
  }

  function switchUnit(u) {
    if (u === unit || !views[u]) return;
    picked.clear();
    use(u);
    drawModelLine();
    drawChips();
    drawNotes();
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) paintHead(thumbs[l * H + h], l, h);
    drawRollout();
    const at = selected || {l: 0, h: 0};
    select(at.l, at.h);
  }

  drawHeader();
  drawLayerwise();
  decode().then(() => {
    drawFilters();
    drawGrid();
    drawRollout();
    bindButtons();
    bindWords();
    select(0, 0);
    $(".mlmv-status").hidden = true;
    root.classList.remove("mlmv-loading");
    root.dataset.ready = "1";
  }).catch((err) => fail(err.message));
}
