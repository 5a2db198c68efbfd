/* mlmtool compare page: plain browser JavaScript, no library, no network.
 *
 * mlmtoolCompare(rootId) reads the JSON block inside the root element, decodes both sides'
 * attention with mlmtoolDecode (decode.js: base64 -> optional deflate -> uint8 levels / 255) and
 * draws three layers x heads grids: side A, side B and their difference B - A on the aligned
 * units (signed colour scale, each head's Jensen-Shannon distance written under it). Clicking
 * a head draws both large heatmaps and their difference. Every string from the data is
 * inserted with textContent (or drawn on a canvas), never as HTML.
 * Layers and heads are numbered from 1 on screen; arrays are indexed from 0.
 */
function mlmtoolCompare(rootId) {
  "use strict";
  const {hexBytes} = mlmtoolDecode;  // decode.js: one decoder for every page
  const root = document.getElementById(rootId);
  if (!root) return;
  const $ = (sel) => root.querySelector(sel);
  let data;
  try {
    data = JSON.parse($(".mlmc-data").textContent);
  } catch (err) {
    return fail("cannot read the page's data: " + err.message);
  }
  const L = data.layers, H = data.heads;
  const UA = data.units_a, UB = data.units_b, NA = UA.length, NB = UB.length;
  const pairs = data.pairs, NP = pairs.length;
  const viridis = hexBytes(data.viridis), diverging = hexBytes(data.diverging);
  let A = null, B = null;   // Float32Array [L*H*N*N] weights of each side
  let dmax = 1e-9;          // largest |B - A| over all heads (thumbnail scale)
  let selected = null;      // {l, h}, from 0
  const cells = {a: [], b: [], d: []};

  function fail(message) {
    const box = $(".mlmc-error");
    box.textContent = "Error: " + message;
    box.hidden = false;
    $(".mlmc-status").hidden = true;
    root.dataset.ready = "error";
  }

  async function unpack(packed, n) {  // -> Float32Array [L*H*n*n] weights
    const out = await mlmtoolDecode.weights(packed, "attention");
    if (out.length !== L * H * n * n) throw new Error("attention data has the wrong size");
    return out;
  }

  const wA = (l, h, i, j) => A[((l * H + h) * NA + i) * NA + j];
  const wB = (l, h, i, j) => B[((l * H + h) * NB + i) * NB + j];
  const diff = (l, h, p, q) => wB(l, h, pairs[p][1], pairs[q][1]) - wA(l, h, pairs[p][0], pairs[q][0]);
  const pairName = (p) => {
    const a = UA[pairs[p][0]], b = UB[pairs[p][1]];
    return a.toLowerCase() === b.toLowerCase() ? a : a + "/" + b;
  };
  const headName = (l, h) => "Layer " + (l + 1) + ", head " + (h + 1);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const level = (v) => Math.max(0, Math.min(255, Math.round(v * 255)));
  const signed = (v, m) => level((v / m + 1) / 2);
  const pct = (p) => (p === null ? "\u2013" : (100 * p).toFixed(1) + "%");
  const change = (d) => (d === null ? "\u2013" : (d >= 0 ? "+" : "\u2212") + (100 * Math.abs(d)).toFixed(1));

  /* ---- texts, alignment, notes, predictions ---- */
  function drawHeader() {
    const [la, lb] = data.labels;
    $(".mlmc-sub").textContent = data.kind === "models"
      ? "Two models on the same text: A = " + la + ", B = " + lb
      : "One model (" + data.models[0] + ") on two texts: A = text 1, B = text 2";
    const box = $(".mlmc-texts");
    if (data.kind === "texts") {
      for (const [name, text] of [["Text 1", data.texts_a[0]], ["Text 2", data.texts_b[0]]]) {
        const p = el("p");
        p.append(el("span", "mlmc-side", name + ":"), document.createTextNode(text));
        box.append(p);
      }
    } else {
      const n = data.texts_a.length;
      const p = el("p");
      p.append(el("span", "mlmc-side", n > 1 ? "Sentence " + (data.shown + 1) + " of " + n + ":" : "Text:"),
               document.createTextNode(data.texts_a[data.shown]));
      box.append(p);
      if (n > 1) box.append(el("p", "mlmc-sub", "Distances are averaged over the " + n +
                                " sentences; the heatmaps show sentence " + (data.shown + 1) + "."));
    }
    if (data.alignment.length) {
      const body = $(".mlmc-align-body");
      for (const w of data.alignment) {
        body.append(el("span", "mlmc-chip" + (w.same ? "" : " mlmc-changed"), w.same ? w.a : w.a + " \u2192 " + w.b));
      }
      $(".mlmc-align").hidden = false;
    }
    for (const note of data.notes) $(".mlmc-notes").append(el("p", "mlmc-note", note));
    $(".mlmc-method").textContent = "Distance: " + data.method + ". Sources: " + data.citation + ".";
  }

  function drawPredictions() {
    const body = $(".mlmc-preds-body");
    const [la, lb] = data.labels;
    const several = data.texts_a.length > 1;
    for (const c of data.changes) {
      const table = el("table");
      table.append(el("caption", "", (several ? "Sentence " + c.sentence + ", " : "") + "mask " + c.mask));
      const head = el("tr");
      for (const t of ["candidate", la, lb, "change"]) head.append(el("th", "", t));
      table.append(head);
      for (const cand of c.candidates) {
        const tr = el("tr");
        tr.append(el("td", "mlmc-tok", cand.word), el("td", "", pct(cand.score_a)), el("td", "", pct(cand.score_b)),
                  el("td", cand.change === null ? "" : cand.change >= 0 ? "mlmc-up" : "mlmc-down", change(cand.change)));
        tr.title = "rank in " + la + ": " + (cand.rank_a || "-") + ", in " + lb + ": " + (cand.rank_b || "-");
        table.append(tr);
      }
      body.append(table);
    }
    if (!data.changes.length) {  // one side only (e.g. a model without a masked-LM head)
      for (const [label, preds] of [[la, data.predictions_a], [lb, data.predictions_b]]) {
        const masks = preds[data.shown] || [];
        for (const m of masks) {
          const table = el("table");
          table.append(el("caption", "", label + ": mask " + m.mask));
          for (const cand of m.candidates) {
            const tr = el("tr");
            tr.append(el("td", "mlmc-tok", cand.word), el("td", "", pct(cand.score)));
            table.append(tr);
          }
          body.append(table);
        }
      }
    }
    $(".mlmc-preds").hidden = body.childElementCount === 0;
  }

  function drawLayers() {
    const sides = [[data.labels[0], data.layerwise_a], [data.labels[1], data.layerwise_b]].filter((x) => x[1]);
    if (!sides.length) return;
    const body = $(".mlmc-layers-body");
    const masks = Math.min(...sides.map((x) => x[1].length));
    for (let m = 0; m < masks; m++) {
      const table = el("table");
      table.append(el("caption", "", "mask " + (m + 1)));
      const head = el("tr");
      head.append(el("th", "", "layer"));
      for (const [label, lw] of sides) head.append(el("th", "", label + ": top"), el("th", "", "rank of \u2018" + lw[m].final + "\u2019"));
      table.append(head);
      for (let l = 0; l < sides[0][1][m].layers.length; l++) {
        const tr = el("tr");
        tr.append(el("td", "", String(l)));
        for (const [, lw] of sides) {
          const row = lw[m].layers[l];
          tr.append(el("td", "mlmc-tok", row.top.map((t) => t[0] + " " + pct(t[1])).join(", ")), el("td", "", String(row.rank)));
        }
        table.append(tr);
      }
      body.append(table);
    }
    $(".mlmc-layers").hidden = false;
  }

  /* ---- heatmaps ---- */
  function paint(canvas, n, get, lut) {
    canvas.width = n;
    canvas.height = n;
    const ctx = canvas.getContext("2d");
    const img = ctx.createImageData(n, n);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const k = get(i, j), o = 4 * (i * n + j);
        img.data[o] = lut[3 * k]; img.data[o + 1] = lut[3 * k + 1]; img.data[o + 2] = lut[3 * k + 2];
        img.data[o + 3] = 255;
      }
    }
    ctx.putImageData(img, 0, 0);
  }

  function drawGrids() {
    for (let l = 0; l < L; l++) for (let h = 0; h < H; h++) for (let p = 0; p < NP; p++) for (let q = 0; q < NP; q++) {
      dmax = Math.max(dmax, Math.abs(diff(l, h, p, q)));
    }
    const [la, lb] = data.labels;
    $(".mlmc-cap-a").textContent = "A: " + la;
    $(".mlmc-cap-b").textContent = "B: " + lb;
    $(".mlmc-cap-d").textContent = "B \u2212 A (blue = less, red = more, \u00b1" + dmax.toFixed(2) +
                                   "); number = distance";
    for (const side of ["a", "b", "d"]) {
      const grid = $(".mlmc-grid-" + side);
      grid.style.setProperty("--mlmc-cols", H);
      grid.append(el("span", "mlmc-axis", ""));
      for (let h = 0; h < H; h++) grid.append(el("span", "mlmc-axis", "H" + (h + 1)));
      for (let l = 0; l < L; l++) {
        grid.append(el("span", "mlmc-axis", "L" + (l + 1)));
        for (let h = 0; h < H; h++) {
          const cell = el("button", "mlmc-cell");
          cell.type = "button";
          cell.dataset.layer = l + 1;
          cell.dataset.head = h + 1;
          cell.title = headName(l, h) + ": distance " + data.distance[l][h].toFixed(4);
          const canvas = el("canvas");
          if (side === "a") paint(canvas, NA, (i, j) => level(wA(l, h, i, j)), viridis);
          else if (side === "b") paint(canvas, NB, (i, j) => level(wB(l, h, i, j)), viridis);
          else paint(canvas, NP, (p, q) => signed(diff(l, h, p, q), dmax), diverging);
          cell.append(canvas);
          if (side === "d") cell.append(el("span", "mlmc-dist", data.distance[l][h].toFixed(3)));
          cell.addEventListener("click", () => select(l, h));
          cells[side].push(cell);
          grid.append(cell);
        }
      }
    }
  }

  function bigHeat(canvas, names, get, lut, value) {
    const n = names.length;
    const size = Math.max(8, Math.min(26, Math.floor(440 / n)));
    const ctx0 = canvas.getContext("2d");
    ctx0.font = "11px ui-monospace, monospace";
    const margin = 8 + Math.ceil(Math.max(...names.map((s) => ctx0.measureText(s).width)));
    canvas.width = margin + n * size + 2;
    canvas.height = margin + n * size + 2;
    const ctx = canvas.getContext("2d");
    ctx.font = "11px ui-monospace, monospace";
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        const k = get(i, j);
        ctx.fillStyle = "rgb(" + lut[3 * k] + "," + lut[3 * k + 1] + "," + lut[3 * k + 2] + ")";
        ctx.fillRect(margin + j * size, margin + i * size, size, size);
      }
    }
    ctx.fillStyle = "#1d1d1f";
    ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    names.forEach((s, i) => ctx.fillText(s, margin - 4, margin + (i + 0.5) * size));
    ctx.save();
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "left";
    names.forEach((s, j) => ctx.fillText(s, -margin + 4, margin + (j + 0.5) * size));
    ctx.restore();
    canvas.onmousemove = (ev) => {
      const r = canvas.getBoundingClientRect();
      const x = (ev.clientX - r.left) * canvas.width / r.width - margin;
      const y = (ev.clientY - r.top) * canvas.height / r.height - margin;
      const i = Math.floor(y / size), j = Math.floor(x / size);
      if (i < 0 || j < 0 || i >= n || j >= n) return;
      $(".mlmc-hover").textContent = names[i] + " \u2192 " + names[j] + ": " + value(i, j);
    };
  }

  function select(l, h) {
    if (selected) for (const side in cells) cells[side][selected.l * H + selected.h].classList.remove("mlmc-selected");
    selected = {l, h};
    for (const side in cells) cells[side][l * H + h].classList.add("mlmc-selected");
    const [la, lb] = data.labels;
    $(".mlmc-detail-title").textContent = headName(l, h) + ": Jensen\u2013Shannon distance " + data.distance[l][h].toFixed(4);
    let m = 1e-9;
    for (let p = 0; p < NP; p++) for (let q = 0; q < NP; q++) m = Math.max(m, Math.abs(diff(l, h, p, q)));
    const names = pairs.map((_, p) => pairName(p));
    $(".mlmc-big-cap-a").textContent = "A: " + la;
    $(".mlmc-big-cap-b").textContent = "B: " + lb;
    $(".mlmc-big-cap-d").textContent = "B \u2212 A (blue \u2212" + m.toFixed(3) + " \u2026 red +" + m.toFixed(3) + ")";
    bigHeat($(".mlmc-big-a"), UA, (i, j) => level(wA(l, h, i, j)), viridis, (i, j) => wA(l, h, i, j).toFixed(3));
    bigHeat($(".mlmc-big-b"), UB, (i, j) => level(wB(l, h, i, j)), viridis, (i, j) => wB(l, h, i, j).toFixed(3));
    bigHeat($(".mlmc-big-d"), names, (p, q) => signed(diff(l, h, p, q), m), diverging, (p, q) =>
      "A " + wA(l, h, pairs[p][0], pairs[q][0]).toFixed(3) + ", B " + wB(l, h, pairs[p][1], pairs[q][1]).toFixed(3) +
      ", B \u2212 A " + (diff(l, h, p, q) >= 0 ? "+" : "") + diff(l, h, p, q).toFixed(3));
  }

  async function start() {
    drawHeader();
    drawPredictions();
    drawLayers();
    try {
      A = await unpack(data.attention_a, NA);
      B = await unpack(data.attention_b, NB);
    } catch (err) {
      return fail(err.message);
    }
    drawGrids();
    let best = 0;
    for (let k = 1; k < L * H; k++) if (data.distance[Math.floor(k / H)][k % H] > data.distance[Math.floor(best / H)][best % H]) best = k;
    select(Math.floor(best / H), best % H);
    $(".mlmc-status").hidden = true;
    root.classList.remove("mlmc-loading");
    root.dataset.ready = "1";
  }

  start();
}
