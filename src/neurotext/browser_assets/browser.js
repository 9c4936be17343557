/* neurotext neuron browser: renders index.html and neuron.html from the data files in data/ (window.NEUROTEXT).
 *
 * Works from file:// with no server and no network: the data are JavaScript files loaded with <script src>.
 * Safety: every string that comes from the corpus or the run is put into the page as a text node or an attribute
 * value set through the DOM (textContent, title, href built from numbers or encodeURIComponent); this file never
 * parses HTML from strings.
 */
(function () {
  "use strict";

  var NT = window.NEUROTEXT || (window.NEUROTEXT = { layers: {} });
  var SVG_NS = "http://www.w3.org/2000/svg";
  var PAGE_SIZE = 200;
  var LONG_SENTENCE = 600; // code points shown of a longer sentence until asked for the whole
  var KIND_NAMES = {
    "words:noun": "Nouns", "words:verb": "Verbs", "words:adjective": "Adjectives",
    skipgrams: "Skip-n-grams", posgrams: "POS n-grams", subtrees: "Subtrees"
  };
  var KIND_SHORT = {
    "words:noun": "noun", "words:verb": "verb", "words:adjective": "adj",
    skipgrams: "skip", posgrams: "pos", subtrees: "tree"
  };
  var PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#17becf", "#393b79", "#ad494a", "#637939", "#8c6d31", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1",
    "#636363"];

  // --- DOM helpers ---------------------------------------------------------------------------------------------

  /** An element with properties (className, href, title, dir, id, type, value, hidden) and children (nodes or
   *  strings, which become text nodes). */
  function el(tag, props, children) {
    var node = document.createElement(tag);
    var key;
    if (props) {
      for (key in props) {
        if (Object.prototype.hasOwnProperty.call(props, key) && props[key] !== undefined && props[key] !== null) {
          if (key === "text") node.textContent = String(props[key]);
          else if (key.indexOf("data-") === 0) node.setAttribute(key, String(props[key]));
          else node[key] = props[key];
        }
      }
    }
    append(node, children);
    return node;
  }

  function append(node, children) {
    if (children === undefined || children === null) return node;
    if (!Array.isArray(children)) children = [children];
    children.forEach(function (child) {
      if (child === undefined || child === null || child === false) return;
      node.appendChild(typeof child === "string" || typeof child === "number"
        ? document.createTextNode(String(child)) : child);
    });
    return node;
  }

  function svg(tag, attrs, title) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, String(attrs[key])); });
    if (title !== undefined) {
      var t = document.createElementNS(SVG_NS, "title");
      t.textContent = title;
      node.appendChild(t);
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function fmt(x, digits) {
    if (typeof x === "string") return x;
    if (x === null || x === undefined || typeof x !== "number" || !isFinite(x)) return "–";
    var d = digits || 3;
    if (x !== 0 && (Math.abs(x) >= 1e5 || Math.abs(x) < 1e-3)) return x.toExponential(d - 1);
    return String(Number(x.toPrecision(d)));
  }

  function pct(x) {
    return (x === null || x === undefined || !isFinite(x)) ? "–" : (100 * x).toFixed(1) + "%";
  }

  /** A unit's name as neurotext.ids.unit_name writes it: L6.12 for a neuron, L6.f12 for a feature (direction or
   *  SAE latent: meta.unit_marker, set by the build from the run's model.features). */
  function neuronName(layer, neuron) {
    return "L" + layer + "." + ((NT.meta && NT.meta.unit_marker) || "") + neuron;
  }

  /* What the run's units are called in running text: neurons, or SAE latents / direction features. */
  function unitsWord() {
    if (!(NT.meta && NT.meta.unit_marker)) return "neurons";
    return NT.meta.features === "sae" ? "latents" : "features";
  }

  function parseName(text) {
    var m = /^\s*L(\d{1,3})\.f?(\d{1,6})\s*$/i.exec(String(text || ""));
    return m ? [parseInt(m[1], 10), parseInt(m[2], 10)] : null;
  }

  function neuronHref(layer, neuron) { return "neuron.html?" + neuronName(layer, neuron); }

  function neuronLink(layer, neuron, extra) {
    return el("a", { href: neuronHref(layer, neuron), className: "nlink" }, [neuronName(layer, neuron), extra]);
  }

  function indexHref(params) {
    var parts = [];
    Object.keys(params).forEach(function (key) {
      if (params[key] !== "" && params[key] !== undefined && params[key] !== null) {
        parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(String(params[key])));
      }
    });
    return "index.html" + (parts.length ? "#" + parts.join("&") : "");
  }

  function readParams(text) {
    var out = {};
    String(text || "").replace(/^[#?]/, "").split("&").forEach(function (part) {
      if (!part) return;
      var i = part.indexOf("=");
      var key = i < 0 ? part : part.slice(0, i);
      var value = i < 0 ? "" : part.slice(i + 1);
      try {
        out[decodeURIComponent(key)] = decodeURIComponent(value.replace(/\+/g, " "));
      } catch (e) {
        out[key] = value;
      }
    });
    return out;
  }

  function setReady(state) {
    document.body.setAttribute("data-ready", state);
    document.body.setAttribute("data-ready-ms", String(Math.round(performance.now())));
  }

  // --- footer: provenance ----------------------------------------------------------------------------------------

  function renderFooter() {
    var footer = document.getElementById("provenance");
    var meta = NT.meta;
    if (!footer) return;
    clear(footer);
    if (!meta) {
      append(footer, "No provenance: data/meta.js is missing; rebuild the browser.");
      return;
    }
    var items = [
      ["run", meta.run], ["config hash", meta.config_hash], ["model", meta.model], ["created", meta.created],
      ["git", meta.git_commit ? String(meta.git_commit).slice(0, 12) + (meta.git_dirty ? " (dirty)" : "") : null],
      ["device", meta.device ? meta.device + (meta.dtype ? ", " + meta.dtype : "") : null]
    ];
    var list = el("dl", { className: "prov" });
    items.forEach(function (item) {
      if (item[1] === null || item[1] === undefined || item[1] === "") return;
      append(list, [el("dt", { text: item[0] }), el("dd", { text: item[1] })]);
    });
    append(footer, [list, el("p", { className: "small", text: "Built by neurotext from this run's files; no server, no network." })]);
  }

  // --- token highlighting ----------------------------------------------------------------------------------------

  function tokenColour(q, quant) {
    var a = Math.min(1, Math.abs(q) / quant);
    if (q >= 0) return "rgba(255, 127, 14, " + (0.08 + 0.82 * a).toFixed(3) + ")";
    return "rgba(31, 119, 180, " + (0.08 + 0.82 * a).toFixed(3) + ")";
  }

  /** The sentence `text` with its tokens highlighted: `tokens` is a flat [gap, length, q, ...] list, tokens in
   *  order of their start: a token starts `gap` code points after the previous token's end and spans `length`;
   *  value = q * scale / quant. */
  function renderText(text, tokens, scale, quant, full) {
    var box = el("span", { className: "text", dir: "auto" });
    if (text === null || text === undefined) {
      box.className += " missing";
      box.textContent = "(sentence text not found in the corpus)";
      return box;
    }
    var cps = Array.from(text);
    var spans = [];
    var previousEnd = 0;
    var best = -1;
    for (var i = 0; tokens && i + 2 < tokens.length; i += 3) {
      var start = previousEnd + tokens[i];
      previousEnd = start + tokens[i + 1];
      spans.push([start, Math.min(previousEnd, cps.length), tokens[i + 2]]);
      if (best < 0 || Math.abs(tokens[i + 2]) > Math.abs(spans[best][2])) best = spans.length - 1;
    }
    // A very long sentence shows a window around its strongest token, with a button for the whole sentence.
    var from = 0, to = cps.length;
    if (!full && cps.length > LONG_SENTENCE) {
      var centre = best >= 0 ? spans[best][0] : 0;
      from = Math.max(0, Math.min(centre - LONG_SENTENCE / 2, cps.length - LONG_SENTENCE));
      to = from + LONG_SENTENCE;
    }
    if (from > 0) append(box, el("span", { className: "ellipsis", text: "… " }));
    var pos = from;
    spans.forEach(function (t) {
      var start = t[0], end = Math.min(t[1], to), q = t[2];
      if (start < pos || start >= end) return;
      if (start > pos) box.appendChild(document.createTextNode(cps.slice(pos, start).join("")));
      var value = quant ? (q / quant) * scale : 0;
      var span = el("span", { className: "tok", title: "activation " + fmt(value, 4), text: cps.slice(start, end).join("") });
      span.setAttribute("data-value", String(Number(value.toPrecision(4))));
      span.style.backgroundColor = tokenColour(q, quant);
      box.appendChild(span);
      pos = end;
    });
    if (pos < to) box.appendChild(document.createTextNode(cps.slice(pos, to).join("")));
    if (to < cps.length) append(box, el("span", { className: "ellipsis", text: " …" }));
    if (from > 0 || to < cps.length) {
      var more = el("button", { type: "button", className: "whole", text: "whole sentence (" + cps.length + " characters)" });
      more.addEventListener("click", function () {
        box.parentNode.replaceChild(renderText(text, tokens, scale, quant, true), box);
      });
      append(box, [" ", more]);
    }
    if (!cps.length) append(box, el("span", { className: "missing", text: "(empty sentence)" }));
    return box;
  }

  function sentenceItem(layerData, ref, activation, tokens, scale, label) {
    var row = layerData.sentences[ref] || [null, "", null, ""];
    var info = [row[1], row[2]].filter(function (x) { return x; }).join(" · ");
    var li = el("li", { className: "sentence" }, [
      el("span", { className: "act", title: "sentence activation", text: fmt(activation, 4) }),
      label ? el("span", { className: "qlabel", text: label }) : null,
      renderText(row[0], tokens, scale, NT.meta ? NT.meta.quant : 127),
      el("span", { className: "sinfo", dir: "auto", text: info + (row[3] ? " · " + row[3] : "") })
    ]);
    return li;
  }

  // --- index page ----------------------------------------------------------------------------------------------

  function indexRows() {
    var index = NT.index || { fields: [], rows: [] };
    var f = {};
    var kinds = index.kinds || [];
    index.fields.forEach(function (name, i) { f[name] = i; });
    return index.rows.map(function (r) {
      var patterns = (r[f.patterns] || []).map(function (p) { return [kinds[p[0]], p[1]]; });
      var tokens = r[f.top_tokens] || [];
      var row = {
        layer: r[f.layer], neuron: r[f.neuron], summary: r[f.summary] || "", domain: r[f.domain],
        share: r[f.domain_share], patterns: patterns, tokens: tokens, max: r[f.max], cluster: r[f.cluster],
        finetune: r[f.finetune],
        score: f.score === undefined ? null : r[f.score],
        scoreKind: f.score_kind === undefined ? null : r[f.score_kind],
        explained: f.explained === undefined ? null : r[f.explained],
        patternSummary: f.pattern_summary === undefined ? "" : r[f.pattern_summary] || ""
      };
      row.name = neuronName(row.layer, row.neuron);
      row.patternText = patterns.map(function (p) { return String(p[1]).toLowerCase(); });
      row.haystack = [row.name, row.summary, row.patternSummary, row.domain || "", row.patternText.join("\n"), tokens.join("\n")]
        .join("\n").toLowerCase();
      return row;
    });
  }

  function fillSelect(select, values) {
    values.forEach(function (v) { select.appendChild(el("option", { value: String(v), text: String(v) })); });
  }

  function initIndex() {
    var rows = indexRows();
    var meta = NT.meta || {};
    var q = document.getElementById("q");
    var layer = document.getElementById("layer");
    var domain = document.getElementById("domain");
    var pattern = document.getElementById("pattern");
    var order = document.getElementById("order");
    var explained = document.getElementById("explained");
    var tbody = document.querySelector("#neurons tbody");
    var count = document.getElementById("count");
    var more = document.getElementById("more");
    var shown = PAGE_SIZE;
    var matches = [];

    var layers = [];
    var domains = [];
    rows.forEach(function (r) {
      if (layers.indexOf(r.layer) < 0) layers.push(r.layer);
      if (r.domain && domains.indexOf(r.domain) < 0) domains.push(r.domain);
    });
    layers.sort(function (a, b) { return a - b; });
    domains.sort();
    fillSelect(layer, layers);
    fillSelect(domain, domains);
    var lede = document.getElementById("lede");
    var missing = [];
    var sections = meta.sections || {};
    ["profiles", "patterns", "records", "clusters", "finetune", "scores"].forEach(function (s) { if (!sections[s]) missing.push(s); });
    if (!sections.scores && explained) explained.parentNode.hidden = true;
    lede.textContent = rows.length + " " + unitsWord() + " in " + layers.length + (layers.length === 1 ? " layer" : " layers") +
      (meta.run ? " (run " + meta.run + ")" : "") + ". Type to search; open a neuron for its sentences and patterns." +
      (missing.length ? " Not in this run: " + missing.join(", ") + "." : "");

    function fromHash() {
      var p = readParams(location.hash);
      q.value = p.q || "";
      layer.value = p.layer || "";
      domain.value = p.domain || "";
      pattern.value = p.pattern || "";
      order.value = p.order || "neuron";
      if (explained) explained.value = p.explained || "";
    }

    function toHash() {
      var href = indexHref({ q: q.value, layer: layer.value, domain: domain.value, pattern: pattern.value,
        order: order.value === "neuron" ? "" : order.value, explained: explained ? explained.value : "" });
      var hash = href.indexOf("#") < 0 ? "" : href.slice(href.indexOf("#"));
      try {
        history.replaceState(null, "", hash || location.pathname);
      } catch (e) { /* some file:// setups refuse; the filters still work */ }
    }

    function compute() {
      var words = q.value.toLowerCase().split(/\s+/).filter(function (w) { return w; });
      var wantLayer = layer.value === "" ? null : parseInt(layer.value, 10);
      var wantDomain = domain.value;
      var wantPattern = pattern.value.trim().toLowerCase();
      var wantExplained = explained ? explained.value : "";
      matches = rows.filter(function (r) {
        if (wantExplained === "yes" && r.explained !== true) return false;
        if (wantExplained === "no" && r.explained !== false) return false;
        if (wantLayer !== null && r.layer !== wantLayer) return false;
        if (wantDomain && r.domain !== wantDomain) return false;
        if (wantPattern && !r.patternText.some(function (p) { return p.indexOf(wantPattern) >= 0; })) return false;
        for (var i = 0; i < words.length; i++) if (r.haystack.indexOf(words[i]) < 0) return false;
        return true;
      });
      var key = order.value;
      if (key !== "neuron") {
        var field = key === "share" ? "share" : key;
        matches = matches.slice().sort(function (a, b) {
          var x = a[field], y = b[field];
          var xa = typeof x === "number" && isFinite(x), ya = typeof y === "number" && isFinite(y);
          if (xa !== ya) return xa ? -1 : 1;
          if (xa && x !== y) return y - x;
          return a.layer - b.layer || a.neuron - b.neuron;
        });
      }
    }

    function render() {
      clear(tbody);
      var fragment = document.createDocumentFragment();
      matches.slice(0, shown).forEach(function (r) {
        var chips = el("span", { className: "chips" });
        r.patterns.slice(0, 4).forEach(function (p) {
          append(chips, el("a", { className: "chip", href: indexHref({ pattern: p[1] }), title: KIND_NAMES[p[0]] || p[0] }, [
            el("span", { className: "kind", text: KIND_SHORT[p[0]] || p[0] }), el("span", { dir: "auto", text: p[1] })
          ]));
        });
        fragment.appendChild(el("tr", { "data-neuron": r.name }, [
          el("td", null, neuronLink(r.layer, r.neuron)),
          el("td", { className: "summary", dir: "auto", text: r.summary || "–" }),
          el("td", { text: r.domain ? r.domain + " " + pct(r.share) : "–" }),
          el("td", null, r.patterns.length ? chips : "–"),
          el("td", { className: "tokens", dir: "auto", text: r.tokens.slice(0, 5).join(" · ") || "–" }),
          el("td", { className: "num", text: fmt(r.max, 3) }),
          el("td", { className: "num", title: r.scoreKind ? "best kind: " + r.scoreKind +
            (r.explained === false ? " (not above the controls)" : "") : "",
            text: r.score === null || r.score === undefined ? "–" : fmt(r.score, 2) + (r.explained === false ? "*" : "") })
        ]));
      });
      tbody.appendChild(fragment);
      count.textContent = matches.length + " of " + rows.length + " " + unitsWord() +
        (matches.length > shown ? " (showing " + shown + ")" : "");
      more.hidden = matches.length <= shown;
    }

    function update() {
      shown = PAGE_SIZE;
      compute();
      render();
      toHash();
    }

    var timer = null;
    function soon() {
      if (timer) clearTimeout(timer);
      timer = setTimeout(update, 60);
    }
    q.addEventListener("input", soon);
    pattern.addEventListener("input", soon);
    [layer, domain, order, explained].forEach(function (s) { if (s) s.addEventListener("change", update); });
    document.getElementById("filters").addEventListener("submit", function (e) { e.preventDefault(); update(); });
    more.addEventListener("click", function () { shown += PAGE_SIZE; render(); });
    window.addEventListener("hashchange", function () { fromHash(); shown = PAGE_SIZE; compute(); render(); });
    fromHash();
    compute();
    render();
  }

  // --- neuron page ---------------------------------------------------------------------------------------------

  function section(title, id, children, note) {
    return el("section", { id: id, className: "block" }, [el("h2", { text: title }),
      note ? el("p", { className: "note", text: note }) : null].concat(children || []));
  }

  function emptyNote(text) { return el("p", { className: "empty", text: text }); }

  function factList(items) {
    var dl = el("dl", { className: "facts" });
    items.forEach(function (item) {
      if (item[1] === null || item[1] === undefined) return;
      append(dl, [el("dt", { text: item[0] }), el("dd", null, item[1])]);
    });
    return dl;
  }

  function histogram(hist, entry) {
    var W = 640, H = 170, L = 40, B = 28, T = 10;
    var counts = hist.counts || [];
    var peak = Math.max.apply(null, counts.concat([1]));
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, class: "hist", role: "img" });
    box.appendChild(svg("title", {}, undefined)).textContent = "Activation histogram over " + hist.n + " corpus sentences";
    var span = hist.hi - hist.lo || 1;
    var bw = (W - L - 10) / Math.max(counts.length, 1);
    function x(v) { return L + ((v - hist.lo) / span) * (W - L - 10); }
    counts.forEach(function (c, i) {
      var h = (c / peak) * (H - B - T);
      var a = hist.lo + (i * span) / counts.length, b = hist.lo + ((i + 1) * span) / counts.length;
      box.appendChild(svg("rect", { x: (L + i * bw).toFixed(1), y: (H - B - h).toFixed(1), width: Math.max(bw - 1, 1).toFixed(1),
        height: h.toFixed(1), class: "bar" }, fmt(a) + " to " + fmt(b) + ": " + c + " sentences"));
    });
    box.appendChild(svg("line", { x1: L, x2: W - 10, y1: H - B, y2: H - B, class: "axis" }));
    [[hist.lo, "start"], [hist.hi, "end"]].forEach(function (t) {
      var label = svg("text", { x: x(t[0]), y: H - B + 16, "text-anchor": t[1], class: "tick" });
      label.textContent = fmt(t[0]);
      box.appendChild(label);
    });
    var peakLabel = svg("text", { x: L - 4, y: T + 8, "text-anchor": "end", class: "tick" });
    peakLabel.textContent = String(peak);
    box.appendChild(peakLabel);
    [[entry.kth, "top-K threshold", "mark kth"], [entry.max, "top sentence", "mark top"]].forEach(function (m) {
      if (typeof m[0] !== "number" || m[0] < hist.lo || m[0] > hist.hi) return;
      box.appendChild(svg("line", { x1: x(m[0]), x2: x(m[0]), y1: T, y2: H - B, class: m[2] }, m[1] + ": " + fmt(m[0], 4)));
    });
    return box;
  }

  function patternTables(entry) {
    var out = [];
    (entry.patterns || []).forEach(function (group) {
      var kind = group[0], rows = group[1];
      var tbody = el("tbody");
      rows.forEach(function (r) {
        append(tbody, el("tr", null, [
          el("td", null, el("a", { href: indexHref({ pattern: r[0] }), className: "pattern", dir: "auto",
            title: "neurons with this pattern", text: r[0] })),
          el("td", { className: "num", text: r[1] }), el("td", { className: "num", text: r[2] }),
          el("td", { className: "num", text: fmt(r[3]) }), el("td", { className: "num", text: fmt(r[4]) }),
          el("td", { className: "num", text: fmt(r[5], 2) })
        ]));
      });
      out.push(el("div", { className: "ptable" }, [el("h3", { text: KIND_NAMES[kind] || kind }),
        el("table", { className: "patterns" }, [el("thead", null, el("tr", null, [
          el("th", { text: "pattern" }), el("th", { className: "num", text: "top", title: "top sentences with it" }),
          el("th", { className: "num", text: "sample", title: "sample sentences with it" }),
          el("th", { className: "num", text: "z" }), el("th", { className: "num", text: "lift" }),
          el("th", { className: "num", text: "q" })])), tbody])]));
    });
    return out;
  }

  function metadataBars(entry) {
    var out = [];
    (entry.metadata || []).forEach(function (group) {
      var list = el("div", { className: "bars" });
      group[1].forEach(function (v) {
        var top = el("span", { className: "bar top" });
        top.style.width = (100 * Math.max(0, Math.min(1, v[1] || 0))).toFixed(1) + "%";
        var corpus = el("span", { className: "bar corpus" });
        corpus.style.width = (100 * Math.max(0, Math.min(1, v[2] || 0))).toFixed(1) + "%";
        append(list, el("div", { className: "barrow", title: v[3] + " top sentences" }, [
          el("span", { className: "blabel", dir: "auto", text: v[0] }),
          el("span", { className: "track" }, [top, corpus]),
          el("span", { className: "bval", text: pct(v[1]) + " (corpus " + pct(v[2]) + ")" })
        ]));
      });
      out.push(el("div", { className: "mfield" }, [el("h3", { text: group[0] }), list]));
    });
    return out;
  }

  // Explanation scores: per kind and control, AUROC / Spearman / F1 on held-out top sentences vs negatives.
  function scoresTable(scores) {
    var body = el("tbody");
    var controls = { derangement: 1, length: 1, bow: 1 };
    (scores.kinds || []).forEach(function (kind, i) {
      var cls = (kind === scores.best ? "best" : "") + (controls[kind] ? " control" : "");
      append(body, el("tr", { className: cls.trim() }, [
        el("td", { text: (controls[kind] ? "control: " : "") + kind }),
        el("td", { className: "num", text: fmt(scores.auroc[i], 3) }),
        el("td", { className: "num", text: fmt(scores.spearman[i], 3) }),
        el("td", { className: "num", text: scores.f1[i] === null ? "–" : fmt(scores.f1[i], 3) })
      ]));
    });
    var head = el("thead", null, el("tr", null, [el("th", { text: "kind" }), el("th", { className: "num", text: "AUROC" }),
      el("th", { className: "num", text: "Spearman" }), el("th", { className: "num", text: "F1" })]));
    return el("table", { className: "scores" }, [head, body]);
  }

  function tsneMap(layerData, entry) {
    var W = 320, H = 320, P = 8;
    var box = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, class: "tsne", role: "img" });
    box.appendChild(svg("title", {})).textContent = "t-SNE map of layer " + layerData.layer + "; this neuron circled";
    var mates = {};
    (entry.mates || []).forEach(function (m) { mates[m] = true; });
    var me = null;
    layerData.tsne.forEach(function (p, n) {
      var cx = P + (p[0] / 1000) * (W - 2 * P), cy = P + (1 - p[1] / 1000) * (H - 2 * P);
      var colour = p[2] >= 0 ? PALETTE[p[2] % PALETTE.length] : "#999";
      var link = svg("a", { href: neuronHref(layerData.layer, n) });
      link.appendChild(svg("circle", { cx: cx.toFixed(1), cy: cy.toFixed(1), r: mates[n] ? 3.2 : 2, fill: colour,
        "fill-opacity": mates[n] ? 0.95 : 0.55 }, neuronName(layerData.layer, n) + (p[2] >= 0 ? ", cluster " + p[2] : "")));
      box.appendChild(link);
      if (n === entry.neuron) me = [cx, cy];
    });
    if (me) box.appendChild(svg("circle", { cx: me[0].toFixed(1), cy: me[1].toFixed(1), r: 6, class: "me" }, "this neuron"));
    return box;
  }

  function relations(layerData, entry) {
    var parts = [];
    var layer = layerData.layer;
    if (entry.cluster !== undefined) {
      var mates = el("p", { className: "links" }, [el("span", { className: "lbl",
        text: "Cluster " + entry.cluster + (entry.cluster_size ? " (" + entry.cluster_size + " " + unitsWord() + ")" : "") + ": " })]);
      (entry.mates || []).forEach(function (m) { append(mates, [neuronLink(layer, m), " "]); });
      if (!(entry.mates || []).length) append(mates, "no other neuron in this cluster");
      parts.push(mates);
    }
    if (entry.overlap !== undefined) {
      if (entry.overlap.length) {
        var tbody = el("tbody");
        entry.overlap.forEach(function (o) {
          append(tbody, el("tr", null, [el("td", null, neuronLink(o[0], o[1])), el("td", { className: "num", text: fmt(o[2]) }),
            el("td", { className: "num", text: o[3] })]));
        });
        parts.push(el("table", { className: "overlap" }, [el("thead", null, el("tr", null, [
          el("th", { text: "most-overlapping neuron" }), el("th", { className: "num", text: "Jaccard" }),
          el("th", { className: "num", text: "shared top sentences" })])), tbody]));
      } else {
        parts.push(emptyNote("No neuron shares top sentences with this one."));
      }
    }
    if (layerData.tsne) parts.push(tsneMap(layerData, entry));
    return parts;
  }

  function legend(scale, quant) {
    var bar = el("span", { className: "legend" });
    [-quant, -quant / 2, 0, quant / 2, quant].forEach(function (q) {
      var cell = el("span", { className: "lcell", text: fmt((q / quant) * scale, 2) });
      cell.style.backgroundColor = tokenColour(q, quant);
      bar.appendChild(cell);
    });
    return bar;
  }

  function renderNeuron(layerData, neuron) {
    var main = clear(document.getElementById("neuron"));
    var meta = NT.meta || {};
    var entry = layerData.neurons[neuron];
    var layer = layerData.layer;
    var name = neuronName(layer, neuron);
    document.title = name + " · neurotext";
    var nav = clear(document.getElementById("nav"));
    append(nav, [el("a", { href: "index.html", text: "all " + unitsWord() }), " "]);
    if (neuron > 0) append(nav, [neuronLink(layer, neuron - 1, " ←"), " "]);
    if (neuron + 1 < layerData.n_neurons) append(nav, [neuronLink(layer, neuron + 1, " →"), " "]);
    var jump = el("input", { type: "search", placeholder: "go to " + neuronName(layer, 200), className: "jump", spellcheck: false });
    var form = el("form", { className: "jumpform" }, [jump]);
    form.addEventListener("submit", function (e) {
      e.preventDefault();
      var target = parseName(jump.value);
      if (target) location.href = neuronHref(target[0], target[1]);
    });
    append(nav, form);
    if (!entry) {
      append(main, [el("h1", { text: name }), emptyNote("Layer " + layer + " has no neuron " + neuron + " in this run.")]);
      return;
    }
    var profile = entry.profile || {};
    var quant = meta.quant || 127;
    var scale = entry.scale || 0;
    var domainRow = null;
    if (profile.dominant_domain) {
      domainRow = profile.dominant_domain + " " + pct(profile.dominant_domain_share) + " (corpus " +
        pct(profile.dominant_domain_corpus_share) + ")";
    } else if (entry.metadata && entry.metadata.length && entry.metadata[0][0] === "domain" && entry.metadata[0][1].length) {
      var d = entry.metadata[0][1][0];
      domainRow = d[0] + " " + pct(d[1]) + " (corpus " + pct(d[2]) + ")";
    }
    var tokens = (entry.top_tokens || []).map(function (t) { return t[0] + " ×" + t[1]; }).join(", ");
    var ft = entry.finetune ? Object.keys(entry.finetune).map(function (k) { return k + " " + fmt(entry.finetune[k], 4); }).join("; ") : null;
    append(main, [
      el("h1", { className: "nname", text: name }),
      el("p", { className: "summary", dir: "auto", text: profile.summary || (meta.sections && meta.sections.profiles
        ? "No summary: " + (profile.status === "too_few_top_sentences" ? "too few top sentences." : "no pattern stood out.")
        : "No summary: the run has no profiles.") }),
      factList([
        ["top sentences (K)", entry.k ? String(entry.k) : "none"],
        ["max activation", fmt(entry.max, 4)],
        ["K-th activation", fmt(entry.kth, 4)],
        ["dominant domain", domainRow],
        ["top tokens", tokens || null],
        ["cluster", entry.cluster !== undefined ? String(entry.cluster) : null],
        ["fine-tuning change", ft]
      ])
    ]);

    var top = el("ol", { className: "sentences" });
    (entry.top || []).forEach(function (s) { top.appendChild(sentenceItem(layerData, s[0], s[1], s[2], scale)); });
    append(main, section("Top sentences", "top", [
      el("p", { className: "note" }, [layerData.token_level
        ? "Each token coloured by this neuron's activation at it (hover for the value). Scale: "
        : "The token that gave each sentence its activation is coloured (hover for the value); this run has no " +
          "token-level records. Scale: ", legend(scale, quant)]),
      (entry.top || []).length ? top : emptyNote("No top sentences for this neuron.")
    ]));

    var quantiles = el("ol", { className: "sentences quantiles" });
    (entry.quantiles || []).forEach(function (s) { quantiles.appendChild(sentenceItem(layerData, s[1], s[2], s[3], scale, s[0])); });
    append(main, section("Quantile samples", "quantiles", [(entry.quantiles || []).length ? quantiles
      : emptyNote(meta.sections && meta.sections.records ? "No quantile samples." : "No quantile samples: the run has no records.")],
      "Sentences from each quantile band of this neuron's activation over the sample, with their quantile (q0.50 = the median sentence)."));

    append(main, section("Activation histogram", "histogram", [entry.hist ? histogram(entry.hist, entry)
      : emptyNote("No histogram: the run has no records histograms.")],
      entry.hist ? "Sentence activations over all " + entry.hist.n + " corpus sentences" +
        (entry.hist.under || entry.hist.over ? " (" + (entry.hist.under || 0) + " below and " + (entry.hist.over || 0) + " above the bins)" : "") +
        "; lines: the K-th and the top activation." : null));

    var ptables = patternTables(entry);
    append(main, section("Patterns", "patterns", ptables.length ? [el("div", { className: "pgrid" }, ptables)]
      : [emptyNote(entry.patterns ? "No pattern met the minimum support in this neuron's top sentences." : "No patterns: the run has no patterns stage.")],
      ptables.length ? "Ranked by log-odds z against the sample; top / sample = sentences containing the pattern; click a pattern for the neurons that share it." : null));

    var bars = metadataBars(entry);
    append(main, section("Metadata", "metadata", bars.length ? bars : [emptyNote("No metadata for this neuron's top sentences.")],
      bars.length ? "Share of each value among the top sentences (orange) against the corpus (grey)." : null));

    if (entry.scores) {
      var sc = entry.scores;
      var verdict = sc.best ? (sc.explained ? "Best explained by " + sc.best + " (AUROC " + fmt(sc.best_auroc, 3) +
        ", controls " + fmt(sc.control, 3) + ")." : "Nothing explains this neuron better than the controls (best: " +
        sc.best + " " + fmt(sc.best_auroc, 3) + ", controls " + fmt(sc.control, 3) + ").") : "Not scored.";
      append(main, section("Explanation scores", "scores", [
        el("p", { className: "summary", dir: "auto", text: sc.summary || verdict }),
        el("p", { text: verdict }),
        scoresTable(sc)
      ], "Patterns re-mined on 80% of the top sentences predict the other " + (sc.n_pos || 0) + " (positives) against " +
        (sc.n_neg || 0) + " random negatives. AUROC 0.5 = chance. Controls: another neuron's patterns (derangement), " +
        "sentence length, bag-of-words logistic regression."));
    }

    var rel = relations(layerData, entry);
    append(main, section("Related neurons", "related", rel.length ? rel : [emptyNote("No relations: the run has no relations stage.")]));

    if (entry.finetune) {
      var ftBody = el("tbody");
      Object.keys(entry.finetune).forEach(function (k) {
        append(ftBody, el("tr", null, [el("td", { text: k }), el("td", { className: "num", text: fmt(entry.finetune[k], 4) })]));
      });
      append(main, section("Fine-tuning", "finetune", [el("table", { className: "finetune" }, ftBody)],
        "How this neuron changed when the model was fine-tuned."));
    }
  }

  function initNeuron() {
    var main = document.getElementById("neuron");
    var meta = NT.meta || { layers: [] };
    var raw = location.search.replace(/^\?/, "") || location.hash.replace(/^#/, "");
    var params = readParams(raw);
    var target = parseName(raw) || parseName(params.n || params.neuron || "");
    function fail(text) {
      clear(main);
      append(main, [el("p", { className: "warn", text: text }), el("p", null, el("a", { href: "index.html", text: "Back to all " + unitsWord() }))]);
      setReady("error");
    }
    if (!target) return fail("No neuron given: open a neuron from the index, e.g. neuron.html?L1.0.");
    var layer = target[0], neuron = target[1];
    if ((meta.layers || []).indexOf(layer) < 0) return fail("Layer " + layer + " is not in this run.");
    function done() {
      var data = NT.layers[layer];
      if (!data) return fail("The data of layer " + layer + " did not load.");
      renderNeuron(data, neuron);
      setReady("1");
    }
    if (NT.layers[layer]) return done();
    var script = document.createElement("script");
    script.src = "data/layer" + layer + ".js";
    script.charset = "utf-8";
    script.onload = done;
    script.onerror = function () { fail("Cannot load data/layer" + layer + ".js; rebuild the browser."); };
    document.head.appendChild(script);
  }

  function init() {
    renderFooter();
    var page = document.body.getAttribute("data-page");
    if (page === "index") {
      initIndex();
      setReady("1");
    } else if (page === "neuron") {
      initNeuron();
    }
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
