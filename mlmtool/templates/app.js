/* mlmtool serve: the app around the static view. Plain browser JavaScript, no library.
 *
 * The page holds the static view's own template (view.html, rendered empty by the server)
 * and its own scripts (decode.js, the payload decoder every page shares, and view.js,
 * mlmtoolView). This file is the app-only part: the text box
 * (Enter runs), the model switcher, the URL state (?text=...&model=...&k=...), fetching
 * POST /api/view and handing its data to mlmtoolView exactly as the static page hands it the
 * data it embeds, and the SHAP panel (POST /api/explain, then polling the job).
 * Every string from the server is inserted with textContent, never as HTML.
 */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("app-config").textContent);
  const form = $("app-form"), input = $("app-text"), select = $("app-model"), topk = $("app-topk");
  const status = $("app-status"), errorBox = $("app-error"), host = $("app-view");
  const pristine = $(cfg.root).cloneNode(true);  // the empty view, before mlmtoolView touches it
  const names = new Set(cfg.models.map((m) => m.name));
  let current = null;  // the request whose answer is shown
  let seq = 0;         // the newest request wins; older answers are dropped

  cfg.models.forEach((m) => {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.name + " (" + m.layers + " \u00d7 " + m.heads + (m.has_mlm_head ? ")" : ", no MLM head)");
    select.appendChild(o);
  });
  select.value = cfg.default;

  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  async function api(path, body) {
    const init = body === undefined ? {} : {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)};
    const res = await fetch(path, init);
    let data = null;
    try { data = await res.json(); } catch (err) { data = null; }
    if (!res.ok) throw new Error((data && data.error) || ("HTTP " + res.status));
    return data;
  }

  function showError(message) {
    errorBox.textContent = message;
    errorBox.hidden = false;
  }

  function topK() {
    const k = Math.round(Number(topk.value));
    const ok = Number.isFinite(k) ? Math.min(cfg.max_top_k, Math.max(1, k)) : 5;
    topk.value = ok;
    return ok;
  }

  /* ---- the view: a fresh copy of the empty template, filled and drawn by view.js ---- */
  function show(data) {
    const fresh = pristine.cloneNode(true);
    fresh.querySelector(".mlmv-data").textContent = JSON.stringify(data);
    $(cfg.root).replaceWith(fresh);
    host.hidden = false;
    mlmtoolView(cfg.root);  // from view.js
  }

  async function run(push) {
    const text = input.value.trim();
    if (!text) {
      status.textContent = "Type a sentence first (write [MASK] where the model should guess a word).";
      return;
    }
    const req = {text: text, model: select.value, top_k: topK()};
    const my = ++seq;
    errorBox.hidden = true;
    status.textContent = "Computing\u2026";
    if (push) saveUrl(req);
    const started = performance.now();
    try {
      const data = await api("/api/view", req);
      if (my !== seq) return;
      current = req;
      show(data);
      resetExplain(data);
      status.textContent = data.tokens.length + " tokens, " + data.layers + " layers \u00d7 " + data.heads +
        " heads, " + Math.round(performance.now() - started) + " ms";
      document.body.dataset.shown = String(my);
    } catch (err) {
      if (my !== seq) return;
      status.textContent = "";
      showError(err.message);
    }
  }

  /* ---- URL state: ?text=...&model=...&k=... ---- */
  function saveUrl(req) {
    const q = new URLSearchParams({text: req.text, model: req.model});
    if (req.top_k !== 5) q.set("k", String(req.top_k));
    const url = "?" + q.toString();
    if (location.search !== url) history.pushState(null, "", url);
  }

  function loadUrl() {
    const q = new URLSearchParams(location.search);
    const model = q.get("model"), text = q.get("text"), k = q.get("k");
    errorBox.hidden = true;
    select.value = cfg.default;
    if (model !== null && names.has(model)) {
      select.value = model;
    } else if (model !== null) {
      showError("Model '" + model + "' is not loaded on this server; showing " + cfg.default + ".");
    }
    topk.value = k !== null ? k : "5";
    input.value = text !== null ? text.slice(0, cfg.max_text_chars) : "";
    if (input.value.trim()) run(false);
  }

  /* ---- the SHAP panel ---- */
  function resetExplain(data) {
    $("app-explain").hidden = !(data.predictions && data.predictions.length);
    $("app-explain-words").replaceChildren();
    $("app-explain-status").textContent = "";
    $("app-explain-sum").textContent = "";
    $("app-explain-run").disabled = false;
  }

  async function explain() {
    if (!current) return;
    const req = current, my = seq, button = $("app-explain-run"), note = $("app-explain-status");
    button.disabled = true;
    note.textContent = "starting\u2026";
    try {
      let job = await api("/api/explain", {text: req.text, model: req.model});
      while (job.status === "queued" || job.status === "running") {
        note.textContent = job.status === "queued" ? "waiting for the SHAP worker\u2026" :
          "SHAP: " + job.progress.evaluations + " of at most " + job.progress.max_evals + " evaluations\u2026";
        await sleep(300);
        if (my !== seq) return;  // another sentence is shown now
        job = await api("/api/explain/" + encodeURIComponent(job.id));
      }
      if (my !== seq) return;
      if (job.status !== "done") throw new Error(job.error || "the explanation failed");
      drawExplain(job.result);
      note.textContent = "";
    } catch (err) {
      if (my === seq) note.textContent = "Error: " + err.message;
    } finally {
      button.disabled = false;
    }
  }

  function drawExplain(r) {
    const box = $("app-explain-words");
    box.replaceChildren();
    const top = Math.max(1e-12, ...r.word_values.map((v) => Math.abs(v)));
    r.words.forEach((w, i) => {
      const v = r.word_values[i], a = (0.85 * Math.min(1, Math.abs(v) / top)).toFixed(3);
      const span = document.createElement("span");
      span.className = "app-word";
      span.textContent = w;
      span.style.background = v >= 0 ? "rgba(214, 39, 40, " + a + ")" : "rgba(31, 119, 180, " + a + ")";
      span.title = (v >= 0 ? "+" : "") + v.toFixed(4);
      box.appendChild(span);
    });
    $("app-explain-sum").textContent = "p(\u201c" + r.target + "\u201d) = " + r.full_value.toFixed(4) +
      " = base " + r.base_value.toFixed(4) + " + the sum of the values " + r.sum_of_values.toFixed(4) +
      " (red raises it, blue lowers it; " + r.evaluations + " evaluations)";
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); run(true); });
  select.addEventListener("change", () => { if (input.value.trim()) run(true); });
  $("app-explain-run").addEventListener("click", explain);
  window.addEventListener("popstate", loadUrl);
  loadUrl();
  input.focus();
})();
