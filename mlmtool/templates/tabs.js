/* mlmtool serve: the tabs beyond Fill & attention. Plain browser JavaScript, no library.
 *
 * mlmtoolTabs(ctx) returns one object per tab: {run(), save(query), load(query), ready()}, and
 * optionally auto() (what opening the tab runs, default run()), manual (opening runs nothing)
 * and modelChanged(). run() asks the JSON API (the same JSON the commands print with --json) and draws the
 * answer; save/load put the tab's inputs into the URL and back; ready() says whether the tab
 * has the input it needs. ctx (from app.js) holds the shared pieces: the API call, the
 * sentence box, the model switcher, and openSentence(text) for the Fill tab.
 * The Compare tab hands /api/compare/view's data to mlmtoolCompare (compare.js), exactly
 * as the static comparison page does. Every string from the user or the server is inserted
 * with textContent (or as SVG text nodes), never as HTML. Layers and heads count from 1.
 */
const mlmtoolTabs = (function () {
  "use strict";

  /* ---- the kit every tab shares: elements, tables, one runner per tab ---- */
  function tabKit(ctx) {
    const $ = (id) => document.getElementById(id);
    const SVG = "http://www.w3.org/2000/svg";

    function el(tag, cls, text) {
      const e = document.createElement(tag);
      if (cls) e.className = cls;
      if (text !== undefined && text !== null) e.textContent = String(text);
      return e;
    }
    function svg(tag, attrs, text) {
      const e = document.createElementNS(SVG, tag);
      for (const k in attrs) e.setAttribute(k, String(attrs[k]));
      if (text !== undefined) e.textContent = String(text);
      return e;
    }
    const fmt = (v, d) => (v === null || v === undefined || Number.isNaN(v)) ? "\u2013" : Number(v).toFixed(d);
    const lines = (text) => text.split("\n").map((s) => s.trim()).filter((s) => s);
    const num = (input) => (input.value.trim() === "" ? null : Math.round(Number(input.value)));
    function table(headers) {
      const t = el("table", "tab-table"), tr = el("tr");
      headers.forEach((h) => tr.appendChild(el("th", "", h)));
      t.appendChild(el("thead")).appendChild(tr);
      t.appendChild(el("tbody"));
      return t;
    }
    function row(t, cells) {  // cells: text or [text, class]
      const tr = el("tr");
      cells.forEach((c) => tr.appendChild(Array.isArray(c) ? el("td", c[1], c[0]) : el("td", "", c)));
      t.tBodies[0].appendChild(tr);
      return tr;
    }
    // viridis-like ramp from white to dark blue, for weights in [0, 1]
    const shade = (v) => "rgba(42, 111, 219, " + Math.max(0, Math.min(1, v)).toFixed(3) + ")";

    /* ---- one run per tab at a time: the newest wins; status, one error line, data-state ---- */
    function runner(name, work) {
      const panel = $("tab-" + name);
      const status = panel.querySelector(".tab-status"), error = panel.querySelector(".tab-error");
      let seq = 0;
      return async function () {
        const my = ++seq;
        error.hidden = true;
        status.textContent = "Computing\u2026";
        panel.dataset.state = "busy";
        try {
          const note = await work(() => my === seq);
          if (my !== seq) return;
          status.textContent = note || "";
          panel.dataset.state = "done";
        } catch (err) {
          if (my !== seq) return;
          status.textContent = "";
          error.textContent = err.message;
          error.hidden = false;
          panel.dataset.state = "error";
        }
        panel.dataset.runs = String(Number(panel.dataset.runs || 0) + 1);
      };
    }
    function sentence() {
      const text = ctx.text();
      if (!text) throw new Error("Type a sentence in the box at the top first.");
      return text;
    }
    function textsOf(area, what) {
      let items = lines(area.value);
      if (!items.length && ctx.text()) {
        area.value = ctx.text();
        items = [ctx.text()];
      }
      if (!items.length) throw new Error("Type " + what + ", one per line.");
      return items;
    }

    return {$: $, el: el, svg: svg, fmt: fmt, lines: lines, num: num, table: table, row: row, shade: shade,
            runner: runner, sentence: sentence, textsOf: textsOf};
  }

  /* ---- Layers: predict --by-layer and attention --summary rollout|flow ---- */
  function layersTab(ctx, k) {
    const {$, el, svg, fmt, lines, num, table, row, shade, runner, sentence, textsOf} = k;
    const cfg = ctx.cfg;
    const layers = {
      run: runner("layers", async (current) => {
        const text = sentence(), model = ctx.model();
        const lo = num($("layers-from")), hi = num($("layers-to")), method = $("layers-method").value;
        const body = {text: text, model: model, method: method};
        if (lo !== null || hi !== null) body.layers = [lo === null ? 1 : lo, hi === null ? ctx.modelInfo().layers : hi];
        const info = ctx.modelInfo(), masked = text.includes("[MASK]") || text.includes(info.mask_token);
        const why = !info.has_mlm_head ? "the model has no masked-LM head" : "no [MASK] in the sentence";
        const [byLayer, summary] = await Promise.allSettled([
          info.has_mlm_head && masked ? ctx.api("/api/layers", {text: text, model: model, top_k: ctx.topK()}) :
            Promise.reject(new Error(why)), ctx.api("/api/summary", body)]);
        if (!current()) return;
        drawByLayer(byLayer);
        if (summary.status === "rejected") throw summary.reason;
        drawSummary(summary.value);
        if (byLayer.status === "rejected" && masked && info.has_mlm_head) {
          throw new Error("Layer by layer: " + byLayer.reason.message);
        }
        return summary.value.tokens.length + " tokens, " + summary.value.method + " of layers " +
          summary.value.layers[0] + "\u2013" + summary.value.layers[1];
      }),
      save(q) {
        if ($("layers-method").value !== "rollout") q.set("summary", $("layers-method").value);
        if ($("layers-from").value) q.set("from", $("layers-from").value);
        if ($("layers-to").value) q.set("to", $("layers-to").value);
      },
      load(q) {
        $("layers-method").value = q.get("summary") === "flow" ? "flow" : "rollout";
        $("layers-from").value = q.get("from") || "";
        $("layers-to").value = q.get("to") || "";
      },
      ready: () => !!ctx.text(),
    };
    function drawByLayer(settled) {
      const out = $("layers-by-layer");
      out.replaceChildren();
      if (settled.status !== "fulfilled") {
        out.appendChild(el("p", "tab-muted", "(none: " + settled.reason.message + ")"));
        return;
      }
      settled.value.masks.forEach((m) => {
        out.appendChild(el("p", "", "Mask " + m.index + " of " + settled.value.masks.length + ": final \u201c" +
                           m.final_token + "\u201d"));
        const t = table(["Layer", "Top pieces (probability)", "Rank of the final", "p(final)"]);
        m.by_layer.forEach((r) => {
          const tr = row(t, [r.layer === 0 ? "0 (emb)" : String(r.layer),
                             [r.top.map((p) => p.token + " " + p.probability.toFixed(3)).join(", "), "tab-mono"],
                             [String(r.final_rank), "num"], ""]);
          const cell = tr.lastChild, bar = el("span", "tab-bar");
          bar.style.width = Math.round(120 * r.final_probability) + "px";
          cell.append(bar, document.createTextNode(r.final_probability.toFixed(4)));
        });
        out.appendChild(t);
      });
    }
    function drawSummary(s) {
      $("layers-summary-title").firstChild.textContent = (s.method === "flow" ? "Attention flow" : "Attention rollout") +
        ", layers " + s.layers[0] + "\u2013" + s.layers[1] + " ";
      const t = el("table", "tab-table tab-heat"), head = el("tr");
      head.appendChild(el("th"));
      s.tokens.forEach((tok) => head.appendChild(el("th", "", tok)));
      t.appendChild(el("thead")).appendChild(head);
      const body = t.appendChild(el("tbody"));
      s.matrix.forEach((r, i) => {
        const tr = body.appendChild(el("tr"));
        tr.appendChild(el("th", "", s.tokens[i]));
        r.forEach((v, j) => {
          const td = tr.appendChild(el("td", "cell"));
          td.style.background = shade(v);
          td.title = s.tokens[i] + " \u2190 " + s.tokens[j] + ": " + v.toFixed(3);
        });
      });
      const out = $("layers-summary");
      out.replaceChildren(t);
      (s.notes || []).forEach((n) => out.appendChild(el("p", "tab-muted", n)));
    }

    return layers;
  }

  /* ---- Score: sentences (token bars) or minimal pairs (typed or from a TSV file) ---- */
  function scoreTab(ctx, k) {
    const {$, el, svg, fmt, lines, num, table, row, shade, runner, sentence, textsOf} = k;
    const cfg = ctx.cfg;
    cfg.variants.forEach((v) => $("score-variant").appendChild(el("option", "", v)));
    $("score-file").addEventListener("change", async (ev) => {
      const file = ev.target.files[0];
      if (!file) return;
      $("score-pairs").value = (await file.text()).replace(/\r/g, "");
      $("score-texts").value = "";
      ctx.push();
      score.run();
    });
    function parsePairs(text) {
      return lines(text).filter((l) => !l.startsWith("#")).map((l, i) => {
        const parts = (l.includes("\t") ? l.split("\t") : l.split("|")).map((p) => p.trim());
        if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
          throw new Error("pair " + (i + 1) + " is not \u201cgood | bad\u201d (or good<TAB>bad<TAB>phenomenon): " + l);
        }
        return parts;
      });
    }
    const score = {
      run: runner("score", async (current) => {
        const pairs = parsePairs($("score-pairs").value), variant = $("score-variant").value;
        const body = pairs.length ? {pairs: pairs} : {texts: textsOf($("score-texts"), "sentences to score")};
        const data = await ctx.api("/api/score", Object.assign(body, {model: ctx.model(), variant: variant}));
        if (!current()) return;
        const out = $("score-out");
        out.replaceChildren();
        if (pairs.length) return drawPairs(out, data);
        data.forEach((s) => drawSentenceScore(out, s));
        return data.length + " sentence" + (data.length > 1 ? "s" : "") + " (" + variant + ")";
      }),
      save(q) {
        if ($("score-texts").value.trim()) q.set("texts", $("score-texts").value.trim());
        if ($("score-pairs").value.trim()) q.set("pairs", $("score-pairs").value.trim());
        if ($("score-variant").value !== cfg.variants[0]) q.set("variant", $("score-variant").value);
      },
      load(q) {
        $("score-texts").value = q.get("texts") || "";
        $("score-pairs").value = q.get("pairs") || "";
        $("score-variant").value = cfg.variants.includes(q.get("variant")) ? q.get("variant") : cfg.variants[0];
      },
      ready: () => !!($("score-texts").value.trim() || $("score-pairs").value.trim() || ctx.text()),
    };
    function drawSentenceScore(out, s) {
      out.appendChild(el("p", "tab-text", s.text));
      out.appendChild(el("p", "tab-muted", "PLL " + s.pll.toFixed(3) + " nats \u00b7 pseudo-perplexity " +
                         s.pppl.toFixed(2) + " \u00b7 bar height = surprisal \u2212log p of each token"));
      const bars = el("div", "tab-bars"), top = Math.max(1e-9, ...s.tokens.map((t) => -t.log_prob));
      s.tokens.forEach((t) => {
        const box = el("div", "tab-tok"), col = el("div", "tab-col");
        col.style.height = Math.max(1, Math.round(60 * -t.log_prob / top)) + "px";
        box.title = t.token + ": log p = " + t.log_prob.toFixed(3);
        box.append(col, el("span", "tab-lab", t.token));
        bars.appendChild(box);
      });
      out.appendChild(bars);
    }
    function drawPairs(out, data) {
      out.appendChild(el("p", "", "Accuracy " + (100 * data.accuracy).toFixed(1) + " % (" + data.correct + " of " +
                         data.total + " pairs: the good sentence has the higher PLL)"));
      const t = table(["", "Good", "PLL", "Bad", "PLL", "Phenomenon"]);
      data.pairs.forEach((p) => row(t, [[p.correct ? "\u2713" : "\u2717", p.correct ? "tab-ok" : "tab-bad"],
                                        [p.good, "tab-text"], [p.good_pll.toFixed(3), "num"], [p.bad, "tab-text"],
                                        [p.bad_pll.toFixed(3), "num"], p.phenomenon || ""]));
      out.appendChild(t);
      return data.total + " pairs";
    }

    return score;
  }

  /* ---- Compare: two models on the sentence, or two sentences (compare.js draws it) ---- */
  function compareTab(ctx, k) {
    const {$, el, svg, fmt, lines, num, table, row, shade, runner, sentence, textsOf} = k;
    const cfg = ctx.cfg;
    const compareRoot = $(cfg.compare_root), comparePristine = compareRoot.cloneNode(true);
    cfg.models.forEach((m) => $("compare-model2").appendChild(el("option", "", m.name)));
    const twoModels = cfg.models.length > 1;
    function pickB() {  // model B: another loaded model, one with the same vocabulary if there is one
      const a = ctx.modelInfo(), others = cfg.models.filter((m) => m.name !== a.name);
      const b = others.find((m) => m.vocab === a.vocab) || others[0];
      if (b) $("compare-model2").value = b.name;
    }
    pickB();
    $("compare-mode-models").disabled = !twoModels;
    $(twoModels ? "compare-mode-models" : "compare-mode-texts").checked = true;
    const compare = {
      run: runner("compare", async (current) => {
        const text = sentence(), byModels = $("compare-mode-models").checked;
        const body = {top_k: ctx.topK()};
        if (byModels) {
          Object.assign(body, {models: [ctx.model(), $("compare-model2").value], texts: [text]});
        } else {
          if (!$("compare-text2").value.trim()) throw new Error("Type the second sentence to compare with.");
          Object.assign(body, {model: ctx.model(), texts: [text, $("compare-text2").value.trim()]});
        }
        const data = await ctx.api("/api/compare/view", body);
        if (!current()) return;
        const fresh = comparePristine.cloneNode(true);
        fresh.querySelector(".mlmc-data").textContent = JSON.stringify(data);
        $(cfg.compare_root).replaceWith(fresh);
        $("compare-host").hidden = false;
        mlmtoolCompare(cfg.compare_root);  // compare.js, as on the static page
        return data.labels[0] + " vs " + data.labels[1];
      }),
      save(q) {
        q.set("mode", $("compare-mode-models").checked ? "models" : "texts");
        if ($("compare-mode-models").checked) q.set("model2", $("compare-model2").value);
        else q.set("text2", $("compare-text2").value.trim());
      },
      load(q) {
        const mode = q.get("mode") === "texts" || !twoModels ? "texts" : "models";
        $("compare-mode-" + mode).checked = true;
        if (q.get("model2") && cfg.models.some((m) => m.name === q.get("model2"))) $("compare-model2").value = q.get("model2");
        $("compare-text2").value = (q.get("text2") || "").slice(0, cfg.max_text_chars);
      },
      ready: () => !!ctx.text() && ($("compare-mode-models").checked || !!$("compare-text2").value.trim()),
      modelChanged: pickB,
    };

    return compare;
  }

  /* ---- Embed: words on a plane (PCA / t-SNE), hover or focus a point for its sentence ---- */
  function embedTab(ctx, k) {
    const {$, el, svg, fmt, lines, num, table, row, shade, runner, sentence, textsOf} = k;
    const cfg = ctx.cfg;
    cfg.methods.forEach((m) => $("embed-method").appendChild(el("option", "", m)));
    const tip = $("tab-tip");
    const embed = {
      run: runner("embed", async (current) => {
        const body = {texts: textsOf($("embed-texts"), "sentences"), model: ctx.model(), method: $("embed-method").value};
        if (num($("embed-layer")) !== null) body.layer = num($("embed-layer"));
        const data = await ctx.api("/api/embed", body);
        if (!current()) return;
        drawScatter($("embed-out"), data);
        return data.points.length + " words, " + data.method + ", layer " + data.layer;
      }),
      save(q) {
        if ($("embed-texts").value.trim()) q.set("texts", $("embed-texts").value.trim());
        if ($("embed-method").value !== cfg.methods[0]) q.set("method", $("embed-method").value);
        if ($("embed-layer").value) q.set("layer", $("embed-layer").value);
      },
      load(q) {
        $("embed-texts").value = q.get("texts") || "";
        $("embed-method").value = cfg.methods.includes(q.get("method")) ? q.get("method") : cfg.methods[0];
        $("embed-layer").value = q.get("layer") || "";
      },
      ready: () => !!($("embed-texts").value.trim() || ctx.text()),
    };
    const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                     "#bcbd22", "#17becf"];
    function drawScatter(out, data) {
      const W = 760, H = 480, pad = 30, xs = data.points.map((p) => p.x), ys = data.points.map((p) => p.y);
      const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
      const sx = (x) => pad + (W - 2 * pad) * (x1 > x0 ? (x - x0) / (x1 - x0) : 0.5);
      const sy = (y) => H - pad - (H - 2 * pad) * (y1 > y0 ? (y - y0) / (y1 - y0) : 0.5);
      const plot = svg("svg", {class: "tab-scatter", width: W, height: H, viewBox: "0 0 " + W + " " + H,
                               role: "img", "aria-label": "Words on the plane"});
      data.points.forEach((p) => {
        const words = p.word + " (sentence " + p.sentence + ")\n" + data.sentences[p.sentence - 1];
        const c = svg("circle", {cx: sx(p.x).toFixed(1), cy: sy(p.y).toFixed(1), r: p.special ? 4 : 6, tabindex: 0,
                                 fill: PALETTE[(p.sentence - 1) % PALETTE.length], "aria-label": words});
        c.appendChild(svg("title", {}, words));
        const show = (x, y) => { tip.textContent = words; tip.style.left = x + 14 + "px"; tip.style.top = y + 12 + "px"; tip.hidden = false; };
        c.addEventListener("mousemove", (e) => show(e.clientX, e.clientY));
        c.addEventListener("focus", () => { const r = c.getBoundingClientRect(); show(r.right, r.bottom); });
        c.addEventListener("mouseleave", () => { tip.hidden = true; });
        c.addEventListener("blur", () => { tip.hidden = true; });
        plot.appendChild(c);
        plot.appendChild(svg("text", {x: (sx(p.x) + 8).toFixed(1), y: (sy(p.y) + 4).toFixed(1)}, p.word));
      });
      const legend = el("div", "tab-legend");
      data.sentences.forEach((s, i) => {
        const item = el("span"), sw = el("i");
        sw.style.background = PALETTE[i % PALETTE.length];
        item.append(sw, document.createTextNode((i + 1) + ": " + s));
        legend.appendChild(item);
      });
      out.replaceChildren(plot, legend);
    }

    return embed;
  }

  /* ---- Heads: score every head over typed sentences, or show the heads.json given ---- */
  function headsTab(ctx, k) {
    const {$, el, svg, fmt, lines, num, table, row, shade, runner, sentence, textsOf} = k;
    const cfg = ctx.cfg;
    $("heads-threshold").value = String(cfg.defaults.threshold);
    async function analyse(current) {
      const threshold = Number($("heads-threshold").value);
      const data = await ctx.api("/api/heads", {texts: textsOf($("heads-texts"), "sentences"), model: ctx.model(),
                                                threshold: Number.isFinite(threshold) ? threshold : cfg.defaults.threshold});
      if (!current()) return;
      drawHeads($("heads-out"), data);
      return data.num_layers + " layers \u00d7 " + data.num_heads + " heads over " + data.n_sentences + " sentences";
    }
    async function showGiven(current) {
      const data = await ctx.api("/api/heads?model=" + encodeURIComponent(ctx.model()));
      if (!current()) return;
      drawHeads($("heads-out"), data);
      return "the heads.json given at start (" + (data.n_sentences || "?") + " sentences)";
    }
    let given = false;  // what the next run shows: the heads.json given at start, or an analysis
    const run = runner("heads", (current) => (given ? showGiven : analyse)(current));
    const heads = {
      run() { given = false; return run(); },
      given() { given = true; return run(); },
      auto() {  // on opening: the heads.json given at start, unless sentences were typed
        given = !$("heads-texts").value.trim() && !!ctx.modelInfo().head_labels;
        return run();
      },
      save(q) { if ($("heads-texts").value.trim()) q.set("texts", $("heads-texts").value.trim()); },
      load(q) { $("heads-texts").value = q.get("texts") || ""; },
      ready: () => !!($("heads-texts").value.trim() || ctx.text() || ctx.modelInfo().head_labels),
      modelChanged() { $("heads-given").hidden = !ctx.modelInfo().head_labels; },
    };
    $("heads-given").addEventListener("click", heads.given);
    const LABEL_COLOURS = {prev: "#fdd0a2", next: "#c7e9c0", self: "#dadaeb", cls: "#c6dbef", sep: "#fcbba1",
                           punct: "#fee391", broad: "#e0e0e0", mixed: "#ffffff"};
    function drawHeads(out, data) {
      const L = data.num_layers, H = data.num_heads, byKey = {};
      (data.heads || []).forEach((h) => { byKey[h.layer + ":" + h.head] = h; });
      const t = el("table", "tab-table tab-grid"), head = el("tr");
      head.appendChild(el("th"));
      for (let h = 1; h <= H; h++) head.appendChild(el("th", "", "H" + h));
      t.appendChild(el("thead")).appendChild(head);
      const body = t.appendChild(el("tbody"));
      for (let l = 1; l <= L; l++) {
        const tr = body.appendChild(el("tr"));
        tr.appendChild(el("th", "", "Layer " + l));
        for (let h = 1; h <= H; h++) {
          const rec = byKey[l + ":" + h] || {label: "", scores: {}}, td = el("td", "head", rec.label);
          td.dataset.layer = l; td.dataset.head = h;
          td.style.background = LABEL_COLOURS[rec.label] || "#f4f4f8";
          td.title = "L" + l + "-H" + h + ": " + rec.label + "\n" + Object.entries(rec.scores || {})
            .map(([k, v]) => k + " " + fmt(v, 3)).join("\n");
          tr.appendChild(td);
        }
      }
      const legend = el("div", "tab-legend");
      (data.metrics || []).filter((m) => m.pattern).forEach((m) => {
        const item = el("span"), sw = el("i");
        sw.style.background = LABEL_COLOURS[m.name] || "#f4f4f8";
        item.append(sw, document.createTextNode(m.name + ": " + m.title));
        legend.appendChild(item);
      });
      out.replaceChildren(el("p", "tab-muted", "Each head labelled with the pattern it follows most (score \u2265 " +
                             data.threshold + "), else broad or mixed; hover a head for its scores (Clark et al. 2019)."),
                          t, legend);
      (data.notes || []).forEach((n) => out.appendChild(el("p", "tab-muted", n)));
    }

    return heads;
  }

  /* ---- Explain: SHAP (POST /api/explain, then polling the job) ---- */
  function explainTab(ctx, k) {
    const {$, el, svg, fmt, lines, num, table, row, shade, runner, sentence, textsOf} = k;
    const cfg = ctx.cfg;
    $("explain-evals").max = String(cfg.max_evals);
    $("explain-evals").value = String(cfg.defaults.max_evals);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const explain = {
      run: runner("explain", async (current) => {
        const note = $("app-explain-status"), evals = num($("explain-evals")), mask = num($("explain-mask"));
        const body = {text: sentence(), model: ctx.model(), max_evals: evals === null ? cfg.defaults.max_evals : evals,
                      mask: mask === null ? 1 : mask};
        if ($("explain-target").value.trim()) body.target = $("explain-target").value.trim();
        $("app-explain-words").replaceChildren();
        $("app-explain-sum").textContent = "";
        let job = await ctx.api("/api/explain", body);
        while (job.status === "queued" || job.status === "running") {
          note.textContent = job.status === "queued" ? "waiting for the SHAP worker\u2026" :
            "SHAP: " + job.progress.evaluations + " of at most " + job.progress.max_evals + " evaluations\u2026";
          await sleep(300);
          if (!current()) return;
          job = await ctx.api("/api/explain/" + encodeURIComponent(job.id));
        }
        if (!current()) return;
        if (job.status !== "done") throw new Error(job.error || "the explanation failed");
        drawExplain(job.result);
        return "";
      }),
      save(q) {
        if ($("explain-target").value.trim()) q.set("target", $("explain-target").value.trim());
        if ($("explain-mask").value && $("explain-mask").value !== "1") q.set("mask", $("explain-mask").value);
        if ($("explain-evals").value !== String(cfg.defaults.max_evals)) q.set("evals", $("explain-evals").value);
      },
      load(q) {
        $("explain-target").value = (q.get("target") || "").slice(0, 100);
        $("explain-mask").value = q.get("mask") || "1";
        $("explain-evals").value = q.get("evals") || String(cfg.defaults.max_evals);
      },
      ready: () => !!ctx.text(),
      manual: true,  // SHAP takes seconds: it runs on a click (or from a shared URL), not on every tab switch
    };
    function drawExplain(r) {
      const box = $("app-explain-words");
      box.replaceChildren();
      const top = Math.max(1e-12, ...r.word_values.map((v) => Math.abs(v)));
      r.words.forEach((w, i) => {
        const v = r.word_values[i], a = (0.85 * Math.min(1, Math.abs(v) / top)).toFixed(3);
        const span = el("span", "app-word", w);
        span.style.background = v >= 0 ? "rgba(214, 39, 40, " + a + ")" : "rgba(31, 119, 180, " + a + ")";
        span.title = (v >= 0 ? "+" : "") + v.toFixed(4);
        box.appendChild(span);
      });
      $("app-explain-sum").textContent = "p(\u201c" + r.target + "\u201d) = " + r.full_value.toFixed(4) +
        " = base " + r.base_value.toFixed(4) + " + the sum of the values " + r.sum_of_values.toFixed(4) +
        " (red raises it, blue lowers it; " + r.evaluations + " evaluations)";
    }

    return explain;
  }

  /** The tabs of the page: {name: {run, save, load, ready[, manual, modelChanged]}}. */
  return function (ctx) {
    const k = tabKit(ctx);
    const tabs = {layers: layersTab(ctx, k), score: scoreTab(ctx, k), compare: compareTab(ctx, k),
                  embed: embedTab(ctx, k), heads: headsTab(ctx, k), explain: explainTab(ctx, k)};
    if (ctx.cfg.probe) tabs.probe = probeTab(ctx, k);
    if (ctx.cfg.search) tabs.search = searchTab(ctx, k);
    return tabs;
  };

  /* ---- Probe (serve --probe DIR): the saved per-layer results; the saved probes on a sentence ---- */
  function probeTab(ctx, k) {
    const {$, el, svg, fmt, table, row, runner} = k;
    const METRICS = {upos: ["accuracy", "selectivity"], xpos: ["accuracy", "selectivity"],
                     deprel: ["accuracy", "selectivity"], distance: ["uuas", "dspr"], depth: ["root_accuracy", "nspr"]};
    let saved = null;
    const button = $("probe-run");
    button.hidden = $("probe-task").parentNode.hidden = !ctx.cfg.probe.predict;
    $("probe-task").replaceChildren(...ctx.cfg.probe.word_tasks.map((t) => el("option", "", t)));
    async function show(current) {
      if (!saved) saved = await ctx.api("/api/probe");
      if (!current()) return;
      const tasks = saved.tasks;
      const out = $("probe-out");
      out.replaceChildren(el("h2", "", "Probes of " + saved.model + " (layer 0 = embeddings; best layer in bold)"));
      const headers = ["Layer"];
      tasks.forEach((t) => (METRICS[t] || []).forEach((m) => headers.push(t + " " + m)));
      const t = table(headers);
      saved.layers.forEach((r) => {
        const cells = [String(r.layer)];
        tasks.forEach((task) => (METRICS[task] || []).forEach((m, i) => {
          cells.push([fmt(r[task] ? r[task][m] : null, 3), "num" + (i === 0 && saved.best[task] === r.layer ? " best" : "")]);
        }));
        row(t, cells);
      });
      out.appendChild(t);
      tasks.forEach((task) => out.appendChild(plot(task)));
      return saved.layers.length + " layers, " + tasks.join(", ");
    }
    function plot(task) {  // one line per task across layers; control accuracy dashed
      const W = 300, H = 180, pad = 30, rows = saved.layers, m = (METRICS[task] || ["accuracy"])[0];
      const g = svg("svg", {class: "tab-plot", width: W, height: H, role: "img", "aria-label": task + " per layer"});
      const x = (i) => pad + (W - 2 * pad) * (rows.length > 1 ? i / (rows.length - 1) : 0.5);
      const y = (v) => H - pad - (H - 2 * pad) * Math.max(0, Math.min(1, v));
      const line = (key, dash) => {
        const pts = rows.map((r, i) => [i, r[task] ? r[task][key] : null]).filter((p) => p[1] !== null && p[1] !== undefined);
        if (!pts.length) return;
        g.appendChild(svg("polyline", {points: pts.map(([i, v]) => x(i).toFixed(1) + "," + y(v).toFixed(1)).join(" "),
                                       fill: "none", stroke: dash ? "#999" : "#2a6fdb", "stroke-width": 2,
                                       "stroke-dasharray": dash ? "4 3" : "none"}));
      };
      line(m, false);
      if (m === "accuracy") line("control_accuracy", true);
      g.appendChild(svg("text", {x: pad, y: 14}, task + ": " + m + (m === "accuracy" ? " (control dashed)" : "")));
      rows.forEach((r, i) => g.appendChild(svg("text", {x: x(i) - 3, y: H - 10}, r.layer)));
      return g;
    }
    function drawWords(data) {  // predict_words: per layer, each word's label (or depth, or tree edges)
      const t = table(["Layer"].concat(data.words));
      data.layers.forEach((r) => {
        let cells;
        if (r.labels) cells = r.labels.map((label, i) => [label + " " + r.probabilities[i].toFixed(2), "tab-mono"]);
        else if (r.depths) cells = r.depths.map((d) => [d.toFixed(2), "num"]);
        else cells = data.words.map((w, i) => [r.edges.filter((e) => e[0] === i).map((e) => data.words[e[1]]).join(", "), ""]);
        row(t, [String(r.layer)].concat(cells));
      });
      const what = {upos: "the probe's UPOS tag (probability)", xpos: "the probe's XPOS tag (probability)",
                    depth: "the predicted tree depth", distance: "the predicted tree: each word's edges to later words"};
      $("probe-words").replaceChildren(el("h2", "", "The saved probes on the sentence: " + (what[data.task] || data.task)), t);
    }
    let labelling = false;  // whether the run also applies the saved probes to the sentence
    const run = runner("probe", async (current) => {
      const note = await show(current);
      if (!labelling || !current()) return note;
      const text = ctx.text();
      if (!text) throw new Error("Type a sentence in the box at the top first.");
      const data = await ctx.api("/api/probe", {text: text, task: $("probe-task").value});
      if (!current()) return;
      drawWords(data);
      return data.words.length + " words \u00d7 " + data.layers.length + " layers (" + data.task + ")";
    });
    const tab = {
      run() { return run(); },
      label() { labelling = true; ctx.push(); return run(); },
      save(q) { if (labelling) q.set("label", $("probe-task").value); },
      load(q) {
        labelling = ctx.cfg.probe.word_tasks.includes(q.get("label"));
        if (labelling) $("probe-task").value = q.get("label");
      },
      ready: () => true,
    };
    button.addEventListener("click", tab.label);
    return tab;
  }

  /* ---- Search (serve --index DIR): click a word, see its neighbours; click a hit to open it ---- */
  function searchTab(ctx, k) {
    const {$, el, table, row, runner} = k;
    const info = ctx.cfg.search;
    info.layers.forEach((l) => $("search-layer").appendChild(el("option", "", String(l))));
    $("search-layer").value = String(info.layers[info.layers.length - 1]);
    let chosen = null;  // the index of the chosen whitespace-separated word of the sentence
    let chosenIn = null;  // ... in this sentence (another sentence resets the choice)
    const chunks = () => ctx.text().split(/\s+/).filter((w) => w);
    function drawWords() {
      const box = $("search-words"), words = chunks();
      box.replaceChildren(...words.map((w, i) => {
        const b = el("button", "", w);
        b.type = "button";
        b.dataset.word = String(i);
        b.setAttribute("aria-pressed", String(i === chosen));
        b.addEventListener("click", () => { chosen = i; chosenIn = ctx.text(); ctx.push(); tab.run(); });
        return b;
      }));
    }
    // the sentence with the chosen word in brackets, as `mlmtool search` takes it; the sentence's
    // own brackets ([MASK]) are written \[ \] (literal brackets in a query)
    const literal = (s) => s.replace(/[\[\]]/g, (c) => "\\" + c);
    function query() {
      const text = ctx.text(), re = /\S+/g;
      let m, i = 0;
      while ((m = re.exec(text)) !== null) {
        if (i++ === chosen) {
          const after = text.slice(m.index + m[0].length);
          return literal(text.slice(0, m.index)) + "[" + literal(m[0]) + "]" + literal(after);
        }
      }
      return null;
    }
    async function open(n) {
      try {
        const s = await ctx.api("/api/search/sentence/" + n);
        ctx.openSentence(s.text);
      } catch (err) {
        const e = $("tab-search").querySelector(".tab-error");
        e.textContent = err.message;
        e.hidden = false;
      }
    }
    function drawHits(data) {
      const t = table(["", "Word", "", "Cosine", "Sentence"]);
      t.classList.add("tab-hits");
      data.hits.forEach((hit) => {
        const tr = row(t, [[hit.left, "left"], [hit.word, "kw"], [hit.right, ""], [hit.score.toFixed(3), "num"],
                           [String(hit.sentence), "num"]]);
        tr.className = "hit";
        tr.tabIndex = 0;
        tr.title = "Open this sentence in Fill & attention";
        tr.addEventListener("click", () => open(hit.sentence));
        tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(hit.sentence); } });
      });
      const words = Object.entries(data.summary.words).map(([w, c]) => w + " \u00d7" + c).join(", ");
      $("search-out").replaceChildren(
        el("p", "", "Nearest to \u201c" + data.word + "\u201d at layer " + data.layer + ": " + words), t);
    }
    const tab = {
      run: runner("search", async (current) => {
        if (chosenIn !== ctx.text()) chosen = null;
        drawWords();
        if (chosen === null) return "Click a word of the sentence.";
        const q = query();
        if (q === null) { chosen = null; drawWords(); return "Click a word of the sentence."; }
        const k = Math.round(Number($("search-k").value)) || 20;
        const data = await ctx.api("/api/search", {query: q, layer: Number($("search-layer").value), top_k: k,
                                                   words: $("search-filter").value});
        if (!current()) return;
        drawHits(data);
        return data.hits.length + " hits" + (data.exact ? " (exact search)" : " (approximate)");
      }),
      save(q) {
        if (chosen !== null) q.set("word", String(chosen));
        q.set("layer", $("search-layer").value);
        if ($("search-filter").value !== "any") q.set("filter", $("search-filter").value);
      },
      load(q) {
        const w = q.get("word");
        chosen = w !== null && /^\d+$/.test(w) ? Number(w) : null;
        chosenIn = ctx.text();
        if (info.layers.map(String).includes(q.get("layer"))) $("search-layer").value = q.get("layer");
        $("search-filter").value = ["same", "other"].includes(q.get("filter")) ? q.get("filter") : "any";
      },
      ready: () => true,
    };
    return tab;
  }
})();
