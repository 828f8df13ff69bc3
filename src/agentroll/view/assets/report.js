// agentroll run report. Reads the JSON embedded in the page (no network): #run-data holds the run,
// the summary, one row per episode and the token vocabulary; #ep-N holds episode N's token strip and
// turns, parsed only when that episode is selected, so a run of thousands of episodes stays fast.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("run-data").textContent);
  const RUN = DATA.run, SUMMARY = DATA.summary || {}, EPISODES = DATA.episodes, VOCAB = DATA.vocab || {};
  const PREFIXES = DATA.prefixes || [];
  const state = { stop: "", min: null, max: null, text: "", sort: "i", asc: true, selected: null, colour: "mask" };
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const fmt = (x, d = 3) => (x === null || x === undefined ? "–" : typeof x === "number" ? +x.toFixed(d) + "" : String(x));
  const sum = (xs) => xs.reduce((a, b) => a + b, 0);
  const ERROR_STOPS = new Set(["engine_error", "tool_failure", "timeout", "render_error", "environment_error", "error"]);

  // ---------- header, cards ----------
  function header() {
    $("run-name").textContent = RUN.name;
    const bits = [RUN.started_at && "started " + RUN.started_at, RUN.engine && "engine " + RUN.engine,
      RUN.renderer && "renderer " + RUN.renderer, RUN.tools && "tools " + [].concat(RUN.tools).join(", "),
      RUN.tool_choice && RUN.tool_choice !== "auto" && "tool_choice " + RUN.tool_choice,
      RUN.max_turns && "max_turns " + RUN.max_turns, RUN.samples_per_task && RUN.samples_per_task + " samples/task"];
    $("run-meta").textContent = bits.filter(Boolean).join(" · ");
    const v = RUN.versions || {};
    $("footer").textContent = RUN.dir + " · " + Object.keys(v).map((k) => k + " " + v[k]).join(", ") +
      (RUN.decode_note ? " · " + RUN.decode_note : "");
    const rewards = EPISODES.map((e) => e.reward).filter((r) => r !== null);
    const cards = [
      ["episodes", EPISODES.length + (SUMMARY.planned && SUMMARY.planned !== EPISODES.length ? " / " + SUMMARY.planned : "")],
      ["mean reward", rewards.length ? fmt(sum(rewards) / rewards.length) : "–"],
      ["reward > 0", rewards.length ? rewards.filter((r) => r > 0).length : "–"],
      ["sampled tokens", sum(EPISODES.map((e) => e.sampled)).toLocaleString()],
      ["sampled tok/s", fmt(SUMMARY.sampled_tokens_per_s, 1)],
      ["wall time", SUMMARY.wall_s ? fmt(SUMMARY.wall_s, 1) + " s" : "–"],
      ["tool calls", sum(EPISODES.map((e) => e.tool_calls))],
      ["tool errors", sum(EPISODES.map((e) => e.tool_errors)), true],
      ["errored episodes", EPISODES.filter((e) => ERROR_STOPS.has(e.stop)).length, true],
      ["drifted", EPISODES.filter((e) => e.drift).length, true],
    ];
    $("cards").innerHTML = cards.map(([k, v, warn]) =>
      `<div class="card${warn && v > 0 ? " warn" : ""}"><div class="v">${esc(v)}</div><div class="k">${esc(k)}</div></div>`).join("");
  }

  // ---------- charts (inline SVG) ----------
  const W = 360, H = 140, PAD = { l: 38, r: 8, t: 10, b: 26 };

  function bins(values, maxBars = 12) {
    // Few distinct values (rewards 0/1, turn counts): one bar each; otherwise equal-width bins.
    const distinct = [...new Set(values)].sort((a, b) => a - b);
    if (distinct.length <= maxBars) return distinct.map((v) => ({ label: fmt(v, 2), n: values.filter((x) => x === v).length, lo: v, hi: v }));
    const lo = distinct[0], hi = distinct[distinct.length - 1], n = 10, w = (hi - lo) / n;
    const out = Array.from({ length: n }, (_, i) => ({ label: fmt(lo + i * w, 0), n: 0, lo: lo + i * w, hi: lo + (i + 1) * w }));
    values.forEach((x) => out[Math.min(n - 1, Math.floor((x - lo) / w))].n++);
    return out;
  }

  function barChart(bars, { click } = {}) {
    if (!bars.length) return `<svg viewBox="0 0 ${W} ${H}"><text x="${W / 2}" y="${H / 2}" text-anchor="middle">no data</text></svg>`;
    const top = Math.max(...bars.map((b) => b.n)), iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
    const bw = iw / bars.length, every = Math.ceil(bars.length / 8);
    let s = `<svg viewBox="0 0 ${W} ${H}" role="img">`;
    s += `<line class="axis" x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}"/>`;
    s += `<text x="${PAD.l - 4}" y="${PAD.t + 8}" text-anchor="end">${top}</text><text x="${PAD.l - 4}" y="${PAD.t + ih}" text-anchor="end">0</text>`;
    bars.forEach((b, i) => {
      const h = top ? (b.n / top) * ih : 0, x = PAD.l + i * bw + 1;
      const attrs = click ? ` class="bar click" data-${click}="${esc(b.label)}"` : ` class="bar"`;
      s += `<rect${attrs} x="${x}" y="${PAD.t + ih - h}" width="${Math.max(1, bw - 2)}" height="${h}"><title>${esc(b.label)}: ${b.n}</title></rect>`;
      if (i % every === 0) s += `<text x="${x + bw / 2 - 1}" y="${H - 10}" text-anchor="middle">${esc(String(b.label).slice(0, 14))}</text>`;
    });
    return s + "</svg>";
  }

  function lineChart(points, xLabel) {
    if (points.length < 1) return barChart([]);
    const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
    const x0 = Math.min(...xs), x1 = Math.max(...xs) || 1, y1 = Math.max(...ys) || 1;
    const iw = W - PAD.l - PAD.r, ih = H - PAD.t - PAD.b;
    const px = (x) => PAD.l + (x1 === x0 ? iw / 2 : ((x - x0) / (x1 - x0)) * iw), py = (y) => PAD.t + ih - (y / y1) * ih;
    let s = `<svg viewBox="0 0 ${W} ${H}" role="img">`;
    s += `<line class="axis" x1="${PAD.l}" y1="${PAD.t + ih}" x2="${W - PAD.r}" y2="${PAD.t + ih}"/><line class="axis" x1="${PAD.l}" y1="${PAD.t}" x2="${PAD.l}" y2="${PAD.t + ih}"/>`;
    s += `<polyline class="line" points="${points.map((p) => px(p[0]).toFixed(1) + "," + py(p[1]).toFixed(1)).join(" ")}"/>`;
    if (points.length <= 60) points.forEach((p) => (s += `<circle class="dot" cx="${px(p[0]).toFixed(1)}" cy="${py(p[1]).toFixed(1)}" r="2"><title>${esc(fmt(p[0], 2))}: ${esc(fmt(p[1], 1))}</title></circle>`));
    s += `<text x="${PAD.l - 4}" y="${PAD.t + 8}" text-anchor="end">${esc(fmt(y1, 0))}</text><text x="${PAD.l - 4}" y="${PAD.t + ih}" text-anchor="end">0</text>`;
    s += `<text x="${PAD.l}" y="${H - 10}">${esc(fmt(x0, 1))}</text><text x="${W - PAD.r}" y="${H - 10}" text-anchor="end">${esc(fmt(x1, 1))}</text>`;
    s += `<text x="${PAD.l + iw / 2}" y="${H - 1}" text-anchor="middle">${esc(xLabel)}</text>`;
    return s + "</svg>";
  }

  function throughput() {
    // With wall-clock stamps: cumulative sampled tokens over time. Without (what the runner writes today):
    // each episode's decode rate (sampled tokens / its generate time) in finish order.
    const stamped = EPISODES.filter((e) => e.finished_at !== null);
    if (stamped.length === EPISODES.length && stamped.length > 1) {
      const order = [...stamped].sort((a, b) => a.finished_at - b.finished_at), t0 = order[0].finished_at - order[0].generate_s;
      let acc = 0;
      const pts = order.map((e) => [e.finished_at - t0, (acc += e.sampled)]);
      return { title: "throughput · sampled tokens over time", svg: lineChart(pts, "seconds since start"), note: "cumulative sampled tokens over wall time" };
    }
    const pts = EPISODES.filter((e) => e.generate_s > 0).map((e) => [e.i + 1, e.sampled / e.generate_s]);
    const note = "per-episode decode rate (sampled tok / generate s) by finish order" +
      (SUMMARY.sampled_tokens_per_s ? `; run total ${fmt(SUMMARY.sampled_tokens_per_s, 1)} tok/s` : "");
    return { title: "throughput · decode tok/s", svg: lineChart(pts, "episode (finish order)"), note };
  }

  function charts() {
    const rewards = EPISODES.map((e) => e.reward).filter((r) => r !== null);
    const stops = {};
    EPISODES.forEach((e) => (stops[e.stop] = (stops[e.stop] || 0) + 1));
    const tp = throughput();
    const items = [
      ["reward distribution", barChart(bins(rewards)), rewards.length + " scored episodes"],
      ["turns per episode", barChart(bins(EPISODES.map((e) => e.turns), 20)), ""],
      ["tokens per episode", barChart(bins(EPISODES.map((e) => e.tokens))), "all tokens (prompt + sampled + bridges)"],
      ["sampled tokens per episode", barChart(bins(EPISODES.map((e) => e.sampled))), "loss-mask 1 tokens"],
      ["stop reasons", barChart(Object.entries(stops).sort((a, b) => b[1] - a[1]).map(([k, n]) => ({ label: k, n })), { click: "stop" }), "click a bar to filter"],
      [tp.title, tp.svg, tp.note],
    ];
    $("charts").innerHTML = items.map(([title, svg, note], i) =>
      `<div class="chart" id="chart-${i}"><h2>${esc(title)}</h2>${svg}<div class="note">${esc(note)}</div></div>`).join("");
    $("charts").addEventListener("click", (ev) => {
      const stop = ev.target.getAttribute && ev.target.getAttribute("data-stop");
      if (stop !== null && stop !== undefined) { $("filter-stop").value = stop; state.stop = stop; renderRows(); }
    });
  }

  // ---------- episode list ----------
  function filtered() {
    const t = state.text.toLowerCase();
    const rows = EPISODES.filter((e) =>
      (!state.stop || e.stop === state.stop) &&
      (state.min === null || (e.reward !== null && e.reward >= state.min)) &&
      (state.max === null || (e.reward !== null && e.reward <= state.max)) &&
      (!t || e.id.toLowerCase().includes(t) || String(e.task).toLowerCase().includes(t)));
    const k = state.sort, dir = state.asc ? 1 : -1;
    return rows.sort((a, b) => (a[k] === b[k] ? a.i - b.i : (a[k] === null ? -1 : b[k] === null ? 1 : a[k] < b[k] ? -1 : 1) * dir));
  }

  function rewardCell(r) {
    if (r === null || r === undefined) return `<span class="reward-zero">–</span>`;
    return `<span class="${r > 0 ? "reward-pos" : "reward-zero"}">${esc(fmt(r))}</span>`;
  }

  function stopPill(stop) {
    const cls = ERROR_STOPS.has(stop) ? " bad" : stop === "done" ? " good" : "";
    return `<span class="pill${cls}">${esc(stop)}</span>`;
  }

  function renderRows() {
    const rows = filtered();
    $("episodes").querySelector("tbody").innerHTML = rows.map((e) =>
      `<tr data-i="${e.i}" data-stop="${esc(e.stop)}"${e.i === state.selected ? ' class="selected"' : ""}>` +
      `<td class="mono">${esc(e.id)}</td><td class="num">${rewardCell(e.reward)}</td><td>${stopPill(e.stop)}</td>` +
      `<td class="num">${e.turns}</td><td class="num">${e.tokens}</td><td class="num">${e.sampled}</td>` +
      `<td class="num">${e.tool_calls}${e.tool_errors ? ` <span class="pill bad">${e.tool_errors} err</span>` : ""}</td></tr>`).join("");
    $("row-count").textContent = rows.length + " of " + EPISODES.length;
    document.querySelectorAll("#episodes th").forEach((th) => {
      th.classList.toggle("sorted", th.dataset.key === state.sort);
      th.classList.toggle("asc", th.dataset.key === state.sort && state.asc);
    });
  }

  function listControls() {
    const stops = [...new Set(EPISODES.map((e) => e.stop))].sort();
    $("filter-stop").innerHTML += stops.map((s) => `<option value="${esc(s)}">${esc(s)}</option>`).join("");
    const num = (v) => (v === "" ? null : Number(v));
    $("filter-stop").addEventListener("change", (ev) => { state.stop = ev.target.value; renderRows(); });
    $("filter-reward-min").addEventListener("input", (ev) => { state.min = num(ev.target.value); renderRows(); });
    $("filter-reward-max").addEventListener("input", (ev) => { state.max = num(ev.target.value); renderRows(); });
    $("filter-text").addEventListener("input", (ev) => { state.text = ev.target.value; renderRows(); });
    $("filter-clear").addEventListener("click", () => {
      Object.assign(state, { stop: "", min: null, max: null, text: "" });
      ["filter-stop", "filter-reward-min", "filter-reward-max", "filter-text"].forEach((id) => ($(id).value = ""));
      renderRows();
    });
    document.querySelector("#episodes thead").addEventListener("click", (ev) => {
      const key = ev.target.dataset && ev.target.dataset.key;
      if (!key) return;
      state.asc = state.sort === key ? !state.asc : true;
      state.sort = key;
      renderRows();
    });
    $("episodes").querySelector("tbody").addEventListener("click", (ev) => {
      const tr = ev.target.closest("tr");
      if (tr) select(Number(tr.dataset.i));
    });
  }

  // ---------- one episode ----------
  const details = {};
  function detail(i) {
    if (!(i in details)) {
      const d = JSON.parse(document.getElementById("ep-" + i).textContent);
      // A strip may start with a prompt prefix shared across episodes (stored once): put it back.
      // The mask comes as runs ("0:526,1:25"): expand it to one character per token.
      d.segments.forEach((seg) => {
        if (seg.prefix) seg.ids = PREFIXES[seg.prefix[0]].slice(0, seg.prefix[1]).concat(seg.ids);
        seg.mask = seg.mask ? seg.mask.split(",").map((r) => r.split(":")).map(([m, n]) => m.repeat(+n)).join("") : "";
      });
      details[i] = d;
    }
    return details[i];
  }

  function select(i) {
    state.selected = i;
    document.querySelectorAll("#episodes tbody tr").forEach((tr) => tr.classList.toggle("selected", Number(tr.dataset.i) === i));
    const e = EPISODES[i], d = detail(i);
    $("detail-empty").hidden = true;
    const box = $("detail");
    box.hidden = false;
    box.dataset.episode = e.id;
    const comps = Object.entries(d.rewards || {}).map(([k, v]) => `${esc(k)} ${esc(fmt(v))}`).join(", ");
    const question = d.question;
    const meta = Object.entries(d.metadata || {}).filter(([k, v]) => !(k === "drift" && Array.isArray(v) && !v.length));
    box.innerHTML =
      `<div class="detail-head"><span class="title mono">${esc(e.id)}</span>${stopPill(e.stop)}` +
      `<span>reward ${rewardCell(e.reward)}${comps ? ` <span class="muted">(${comps})</span>` : ""}</span>` +
      `<span class="muted">task ${esc(e.task)} · sample ${e.sample} · ${e.turns} turns · ${e.tokens} tokens (${e.sampled} sampled) · ${e.segments} segment${e.segments === 1 ? "" : "s"}</span></div>` +
      (question ? `<h3>Task</h3><div class="question">${esc(question)}</div>` : "") +
      (meta.length ? `<dl class="kv">${meta.map(([k, v]) => `<dt>${esc(k)}</dt><dd class="mono">${esc(typeof v === "string" ? v : JSON.stringify(v))}</dd>`).join("")}</dl>` : "") +
      `<h3>Turns</h3><div class="turns">${d.turns.map(turnCard).join("") || '<span class="muted">no turns</span>'}</div>` +
      `<h3>Tokens</h3><div class="strip-tools"><span class="legend"><i class="m1"></i>sampled (loss mask 1)</span>` +
      `<span class="legend"><i class="m0"></i>prompt / template / tool (mask 0)</span><span class="legend"><i class="m2"></i>forced tool-call opener (mask 0)</span>` +
      `<label>colour <select id="colour-mode"><option value="mask">by loss mask</option><option value="logprob">sampled by probability</option></select></label></div>` +
      `<div id="hover-info">hover a token: id · text · logprob</div><div id="strip"></div>`;
    $("colour-mode").value = state.colour;
    $("colour-mode").addEventListener("change", (ev) => { state.colour = ev.target.value; renderStrip(d); });
    box.querySelectorAll(".turn").forEach((el) => el.addEventListener("click", () => {
      const mark = document.getElementById("turn-mark-" + el.dataset.turn);
      if (!mark) return;
      $("strip").scrollTop = mark.offsetTop - 20;  // #strip is the offset parent
      mark.classList.add("flash");
      setTimeout(() => mark.classList.remove("flash"), 900);
    }));
    renderStrip(d);
    // The prompt is long and the same in every episode: start the strip just before the first turn.
    const first = document.querySelector("#strip .turn-mark");
    if (first) $("strip").scrollTop = Math.max(0, first.offsetTop - 60);
  }

  function turnCard(t) {
    const calls = t.calls.map((c) => {
      const bad = c.status !== "ok";
      const body = c.name ? `${esc(c.name)}(${esc(c.arguments || "")})` : esc(c.raw || "");
      return `<div class="call${bad ? " bad" : ""}"><span class="lbl">call · ${esc(c.status)}</span>${body}${c.error ? `\n<span class="lbl">error</span>${esc(c.error)}` : ""}</div>`;
    }).join("");
    const results = t.results.map((r) => {
      const md = r.metadata && Object.keys(r.metadata).length ? `<span class="md">metadata ${esc(JSON.stringify(r.metadata))}</span>` : "";
      return `<div class="result${r.is_error ? " bad" : ""}"><span class="lbl">result${r.is_error ? " · error" : ""} · ${esc(r.name)} · ${esc(fmt(r.duration_s * 1000, 1))} ms</span>${esc(r.content)}${md}</div>`;
    }).join("");
    return `<div class="turn" data-turn="${t.index}"><div class="th"><b>turn ${t.index + 1}</b><span>${t.sampled} sampled${t.forced ? ` + ${t.forced} forced` : ""}</span>` +
      `<span>finish ${esc(t.finish)}</span><span>generate ${esc(fmt(t.generate_s, 2))} s</span><span>tools ${esc(fmt(t.tools_s, 3))} s</span>` +
      `<span class="muted">bridge ${t.bridge} tok${t.segment ? " · segment " + (t.segment + 1) : ""}</span></div>${calls}${results}</div>`;
  }

  function piece(id) {
    const text = VOCAB[id];
    return text === undefined ? null : text;
  }

  function tokenHtml(id, m, lp) {
    const text = piece(id);
    const special = text !== null && /^<[|｜].*[|｜]>$|^<\/?[a-z_]+>$/.test(text);
    let shown = text === null ? `[${id}]` : esc(text).replace(/\n/g, '<span class="nl">↵</span>\n').replace(/\t/g, "→\t");
    if (shown === "") shown = "∅";
    let style = "";
    if (state.colour === "logprob" && m === "1" && typeof lp === "number") {
      const p = Math.exp(lp), hue = Math.round(120 * p);  // red (unlikely) .. green (certain)
      style = ` style="background:hsl(${hue},75%,82%)"`;
    }
    const lpAttr = m === "1" ? ` data-lp="${esc(lp)}"` : "";
    return `<span class="tok m${m}${special ? " special" : ""}" data-id="${id}"${lpAttr}${style}>${shown}</span>`;
  }

  function renderStrip(d) {
    // Turn marks go where each turn's own tokens start (forced opener first); segment breaks between segments.
    const marks = {};
    d.turns.forEach((t) => ((marks[t.segment] = marks[t.segment] || {})[t.start] = t.index));
    const out = [];
    d.segments.forEach((seg, n) => {
      if (n > 0) out.push(`<span class="seg-break">segment ${n + 1} · ${esc(seg.reason)}</span>`);
      const segMarks = marks[n] || {};
      let k = 0;
      seg.ids.forEach((id, j) => {
        if (j in segMarks) out.push(`<span class="turn-mark" id="turn-mark-${segMarks[j]}">T${segMarks[j] + 1}</span>`);
        const m = seg.mask[j];
        out.push(tokenHtml(id, m, m === "1" ? seg.lp[k++] : null));
      });
    });
    const strip = $("strip");
    strip.innerHTML = out.join("");
    strip.onmouseover = (ev) => {
      const tok = ev.target.closest(".tok");
      if (!tok) return;
      const id = Number(tok.dataset.id), text = piece(id), m = tok.classList.contains("m1") ? "sampled" : tok.classList.contains("m2") ? "forced opener" : "rendered";
      const lp = tok.dataset.lp;
      $("hover-info").textContent = `id ${id} · ${text === null ? "(no tokenizer)" : JSON.stringify(text)} · ${m}` +
        (lp !== undefined ? ` · logprob ${lp} (p=${fmt(Math.exp(Number(lp)), 4)})` : " · logprob –");
      if (!tok.title) tok.title = $("hover-info").textContent;
    };
  }

  header();
  charts();
  listControls();
  renderRows();
  if (EPISODES.length) select(filtered()[0].i);
})();
