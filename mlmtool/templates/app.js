/* mlmtool serve: the app around the static views. Plain browser JavaScript, no library.
 *
 * The page holds the static view's own template (view.html, rendered empty by the server)
 * and its own scripts (decode.js, the payload decoder every page shares, and view.js,
 * mlmtoolView); the comparison page's template and compare.js likewise for the Compare tab.
 * This file is the app's frame: the sentence box (Enter runs the open tab), the model
 * switcher, the tabs (role=tab; arrow keys, Home and End move between them), the URL state
 * (?tab=...&text=...&model=...&k=... plus each tab's own inputs, restored on load and on
 * Back), and the Fill & attention tab: POST /api/view, handed to mlmtoolView exactly as the
 * static page hands it the data it embeds. The other tabs live in tabs.js (mlmtoolTabs).
 * Every string from the user or the server is inserted with textContent, never as HTML.
 */
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const cfg = JSON.parse($("app-config").textContent);
  const form = $("app-form"), input = $("app-text"), select = $("app-model"), topk = $("app-topk");
  const status = $("app-status"), errorBox = $("app-error"), host = $("app-view");
  const pristine = $(cfg.root).cloneNode(true);  // the empty view, before mlmtoolView touches it
  const names = new Set(cfg.models.map((m) => m.name));
  const DEFAULT_K = cfg.defaults.top_k;
  let seq = 0;         // the newest request wins; older answers are dropped
  let active = "fill"; // the open tab

  cfg.models.forEach((m) => {
    const o = document.createElement("option");
    o.value = m.name;
    o.textContent = m.name + " (" + m.layers + " \u00d7 " + m.heads + (m.has_mlm_head ? ")" : ", no MLM head)");
    select.appendChild(o);
  });
  select.value = cfg.default;

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
    const ok = Number.isFinite(k) ? Math.min(cfg.max_top_k, Math.max(1, k)) : DEFAULT_K;
    topk.value = ok;
    return ok;
  }

  /* ---- the Fill & attention tab: a fresh copy of the empty template, drawn by view.js ---- */
  function show(data) {
    const fresh = pristine.cloneNode(true);
    fresh.querySelector(".mlmv-data").textContent = JSON.stringify(data);
    $(cfg.root).replaceWith(fresh);
    host.hidden = false;
    mlmtoolView(cfg.root);  // from view.js
  }

  async function runFill() {
    const text = input.value.trim();
    if (!text) {
      status.textContent = "Type a sentence first (write [MASK] where the model should guess a word).";
      return;
    }
    const req = {text: text, model: select.value, top_k: topK()};
    const my = ++seq;
    errorBox.hidden = true;
    status.textContent = "Computing\u2026";
    const started = performance.now();
    try {
      const data = await api("/api/view", req);
      if (my !== seq) return;
      show(data);
      status.textContent = data.tokens.length + " tokens, " + data.layers + " layers \u00d7 " + data.heads +
        " heads, " + Math.round(performance.now() - started) + " ms";
      document.body.dataset.shown = String(my);
    } catch (err) {
      if (my !== seq) return;
      status.textContent = "";
      showError(err.message);
    }
  }

  /* ---- the shared pieces every tab uses ---- */
  const ctx = {
    cfg: cfg, api: api, topK: topK,
    text: () => input.value.trim(),
    model: () => select.value,
    modelInfo: () => cfg.models.find((m) => m.name === select.value) || cfg.models[0],
    push: () => saveUrl(),
    openSentence(text) {  // a search hit: its sentence in the Fill & attention tab
      input.value = text.slice(0, cfg.max_text_chars);
      activate("fill", false);
      saveUrl();
      runFill();
    },
  };
  const tabs = Object.assign({fill: {run: runFill, save() {}, load() {}, ready: () => !!ctx.text()}},
                             mlmtoolTabs(ctx));
  const buttons = Array.from(document.querySelectorAll("#app-tabs [role=tab]"));

  /* ---- tabs: click, Enter/Space, arrow keys, Home/End (WAI-ARIA tabs pattern) ---- */
  function activate(name, focus) {
    if (!tabs[name]) name = "fill";
    active = name;
    buttons.forEach((b) => {
      const on = b.dataset.tab === name;
      b.setAttribute("aria-selected", String(on));
      b.tabIndex = on ? 0 : -1;
      $(b.getAttribute("aria-controls")).hidden = !on;
      if (on && focus) b.focus();
    });
    document.body.dataset.tab = name;
    status.hidden = name !== "fill";  // the Fill tab's line; the other tabs have their own
  }
  function openTab(name, focus) {
    if (name === active) return;
    activate(name, focus);
    saveUrl();
    const panel = $("tab-" + name);
    const tab = tabs[name];
    if (name !== "fill" && !tab.manual && tab.ready() && !panel.dataset.runs) (tab.auto || tab.run)();
  }
  buttons.forEach((b, i) => {
    b.addEventListener("click", () => openTab(b.dataset.tab, true));
    b.addEventListener("keydown", (ev) => {
      const step = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1}[ev.key];
      let j = null;
      if (step) j = (i + step + buttons.length) % buttons.length;
      else if (ev.key === "Home") j = 0;
      else if (ev.key === "End") j = buttons.length - 1;
      if (j === null) return;
      ev.preventDefault();
      openTab(buttons[j].dataset.tab, true);
    });
  });

  /* ---- URL state: ?tab=...&text=...&model=...&k=... and the open tab's own inputs ---- */
  function saveUrl() {
    const q = new URLSearchParams();
    if (active !== "fill") q.set("tab", active);
    q.set("text", input.value.trim());
    q.set("model", select.value);
    if (topK() !== DEFAULT_K) q.set("k", String(topK()));
    tabs[active].save(q);
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
    topk.value = k !== null ? k : String(DEFAULT_K);
    modelChanged();
    input.value = text !== null ? text.slice(0, cfg.max_text_chars) : "";
    const name = tabs[q.get("tab")] ? q.get("tab") : "fill";
    if (q.get("tab") !== null && !tabs[q.get("tab")]) {
      showError("This server has no tab '" + q.get("tab") + "'; showing Fill & attention.");
    }
    activate(name, false);
    tabs[name].load(q);
    const tab = tabs[name];
    if (tab.ready() && (name !== "fill" || input.value.trim())) (tab.auto || tab.run)();
  }

  function runActive() {
    saveUrl();
    tabs[active].run();
  }

  form.addEventListener("submit", (ev) => { ev.preventDefault(); runActive(); });
  function modelChanged() {
    Object.values(tabs).forEach((t) => { if (t.modelChanged) t.modelChanged(); });
  }
  select.addEventListener("change", () => {
    modelChanged();
    if (tabs[active].manual) saveUrl();
    else if (input.value.trim() || active !== "fill") runActive();
  });
  document.querySelectorAll(".tab-run").forEach((b) => b.addEventListener("click", runActive));
  window.addEventListener("popstate", loadUrl);
  loadUrl();
  input.focus();
})();
