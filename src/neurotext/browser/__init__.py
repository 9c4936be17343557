"""Browser stage: a static neuron browser that works from ``file://`` with no server and no network.

Files written under ``results/{run}/browser/`` (`build.build_browser`):

* ``index.html``, ``neuron.html``, ``assets/browser.js``, ``assets/style.css``: copied verbatim from the package's
  ``browser_assets/`` (hand-written; no CDN, no build step). They hold no run data.
* ``data/meta.js``: ``window.NEUROTEXT.meta`` = provenance (run, config hash, model, date, git commit), the layers,
  the sections the run had and the build settings.
* ``data/index.js``: ``window.NEUROTEXT.index`` = one compact row per neuron (name, summary, dominant domain and
  share, top patterns, top tokens, maximum activation, cluster, fine-tuning change) for the index page's search.
* ``data/layer{L}.js``: ``window.NEUROTEXT.layers[L]`` = the layer's sentence table (each shown sentence once) and
  one entry per neuron (top sentences with token activations, quantile-band samples, histogram, patterns, metadata
  bars, cluster mates, overlap partners, fine-tuning change), plus the layer's t-SNE map. ``neuron.html?L6.200``
  loads only ``data/layer6.js``.

Why JavaScript data files: Chromium blocks ``fetch()`` of local files from a ``file://`` page, but loads
``<script src>``. Every corpus string reaches the page as a JSON string inside such a file (`js_assignment`: ``<``,
``>``, ``&``, U+2028 and U+2029 escaped, so no string can close a script element or break the JavaScript) and is put
into the page with ``textContent`` / DOM nodes only (``browser.js`` never uses ``innerHTML``).

Inputs, every one optional except the top K and the corpus (`inputs.BrowserInputs`; the page says what a run lacks).
The browser reads the files that cross a stage boundary through `neurotext.artifacts`:

* ``topk/base/layer{L}.parquet``: the top sentences (rank < `BrowserSettings.top_sentences`), each with its max
  token's span as the highlight when there are no records; the K-th activation (histogram mark); the dominant domain
  of the top K when there are no profiles.
* ``corpus/{dataset}.parquet``: texts and metadata of the shown sentences, read once, row group by row group (row
  groups without a wanted id are skipped by their statistics).
* ``records/base/layer{L}.parquet`` (`artifacts.records.read_records`): every token's activation of each neuron's
  top sentences (kind ``top``, replacing the top-K highlights) and its quantile-band samples (kind ``quantile``: the
  records stage's bands of the sample, labelled with the sentence's quantile).
* ``records/base/hist_layer{L}.parquet`` (`artifacts.records.read_histograms`): each neuron's exact histogram of its
  sentence activation over the whole corpus, in the records' bins.
* ``patterns/layer{L}.parquet``, ``profiles/layer{L}.parquet`` (summary, dominant domain),
  ``profiles/metadata/layer{L}.parquet`` (per field and value: share in the top K and in the corpus).
* ``relations/layer{L}/clusters_k{k}.parquet``, ``tsne.parquet``, ``overlap.parquet``.
* ``finetune/neurons.parquet`` (`artifacts.finetune.read_neuron_changes`): how fine-tuning moved each neuron.
* ``provenance.json``.

Modules: `settings` (the config block), `inputs` (the rule's files by layer, the rule's inputs), `sentences`
(shown sentences and their token encoding), `corpus` (texts, domains), `tables` (per-layer tables), `layers` (a
layer's data file and index rows; where a per-neuron block is added), `jsdata` (JSON as JavaScript, rounding),
`build` (the whole browser).

Sizes: a token is three small integers (`sentences.ShownSentence.tokens`: its start as a gap after the previous
token, its length, its activation quantized per neuron to -127..127 of the neuron's largest absolute token
activation, so the page shows ``q * scale / 127``, within 0.4% of that maximum); other floats keep 4 significant
digits (`round_significant`). Same inputs and settings give the same bytes (no clock, no set order).
"""

from __future__ import annotations

from neurotext.browser.build import (
    ASSET_FILES,
    BuildStats,
    build_browser,
    copy_assets,
    read_provenance,
    run_browser_job,
)
from neurotext.browser.corpus import SentenceInfo, read_corpus
from neurotext.browser.inputs import (
    LAYER_INPUTS,
    PAPER_FILES,
    BrowserInputs,
    LayerInputs,
    browser_rule_inputs,
    clean_stale_layers,
    paper_targets,
)
from neurotext.browser.jsdata import js_assignment, round_significant
from neurotext.browser.sentences import encode_token_rows, sentences_from_records, top_from_topk
from neurotext.browser.settings import BrowserSettings

__all__ = [
    "ASSET_FILES", "LAYER_INPUTS", "PAPER_FILES", "BrowserInputs", "BrowserSettings", "BuildStats", "LayerInputs",
    "SentenceInfo", "browser_rule_inputs", "build_browser", "clean_stale_layers", "copy_assets",
    "encode_token_rows", "js_assignment", "paper_targets", "read_corpus", "read_provenance", "round_significant",
    "run_browser_job", "sentences_from_records", "top_from_topk",
]  # fmt: skip
