"""Patterns stage (the paper's step 3): each neuron's top sentences abstracted into frequent words by POS class,
skip-n-grams, POS n-grams, parse subtrees and metadata, each contrasted with the background, plus a one-line summary;
Table 2 and Figure 1.

Files (all under ``results/{run}/``; schemas in `neurotext.artifacts.patterns`; docs/ARCHITECTURE.md, "Artifacts"):

* ``patterns/corpus_metadata.parquet`` (`count_corpus_metadata`, corpus_metadata.py): the exact count of every
  metadata value over the whole corpus (the corpus share of Figure 1 and of the metadata scores).
* ``patterns/sentences/layer{L}.parquet`` (`gather_sentences`, gather.py): tokens, tags, tree and metadata of
  every sentence in the layer's top K or in the sample, gathered once per layer from the parse shards and the corpus,
  so the range jobs never scan every parse file.
* ``patterns/{kind}/layer{L}/n{start:05d}-{end:05d}.parquet`` (`profile_range`, ranges.py): neurons
  ``start <= n < end`` (end exclusive); kinds ``words``, ``skipgrams``, ``posgrams``, ``subtrees`` in
  ``PATTERNS_SCHEMA``, ``metadata`` in ``METADATA_SCHEMA``, and ``profile`` (one row per neuron, ``profile_schema``).
* ``patterns/layer{L}.parquet`` (`merge_layer`, merge.py): the four pattern kinds of the layer with a ``kind``
  column first; ``profiles/layer{L}.parquet``: the profiles; ``profiles/metadata/layer{L}.parquet``: the metadata rows.
* ``tables/table2.{md,csv}`` (`write_table2`, table2.py), ``figures/fig1.{png,pdf}`` (`write_figure1`, figures.py).

The per-neuron explanation itself is `neurotext.mining` (shared with the scores stage).

What is counted (``a`` of ``K`` top sentences against ``b`` of ``N`` background sentences, `neurotext.scoring`):

* Top K: the neuron's rows in ``topk/base/layer{L}.parquet``. Background: the sample (``sample/sentences.parquet``)
  *minus the neuron's own top sentences*: a top sentence that is also in the sample counts once, in the top group,
  so the two groups are disjoint and Fisher's test applies (background support = support in the sample - support
  in the overlap, both from the miners' background counter).
* Eligibility: skip-n-grams use every sentence with tokens; words (they need tags), POS n-grams and subtrees only
  parsed sentences (``parsed`` true in the parse files). ``K`` and ``N`` are the eligible counts of each kind; the
  profile records how many top and background sentences were left out as unparsed.
* Words: a word (case-sensitive, as the parser split it) counts in a sentence when it occurs there with a tag of
  its class (``PatternSettings.word_classes``, PTB tags); pattern string ``class:word``, e.g. ``noun:Olympics``.
  Skip-n-grams: ``is going be`` (items joined by a space, at most ``max_gap`` tokens skipped between two);
  POS n-grams: ``IN DT CD`` (contiguous); subtrees: ``(VBD (PRP) (NN))`` (labels-only, FREQT).
* Minimum support in the top K: ``max(min_support, ceil(min_support_frac * K))`` per kind. A neuron with fewer top
  sentences than ``min_support`` gets an empty profile (status ``too_few_top_sentences``), never an error.
* Closed: a skip-n-gram or POS n-gram is dropped when a one-item extension has the same top-K support (the miners'
  ``closed=True``); a subtree when a one-node extension (a new leaf, or a new root above it) has the same top-K
  support (``neurotext.miners.closed_subtrees``). Patterns of the maximum size are kept (their extensions are
  not mined).
* Scores (`neurotext.scoring`): z (log-odds, informative Dirichlet prior), lift, one-sided Fisher p (selective by
  default), Benjamini-Hochberg q over one family per neuron: all its word, skip-n-gram, POS n-gram and subtree
  candidates together. Kept: candidates with z > 0, the significant ones (q < ``q_max``) first, each group ranked
  by z (ties: more top support, then the pattern string), the first ``top_n`` per kind (per word class for words).
  Significance first because the z of `neurotext.scoring` (a prior as large as the data, which keeps z monotone)
  ranks a pattern in 3 of 100 top sentences and none of the sample (z = 1.9, selective p = 1) above one in 20 of 100
  against 150 of 2,000 (z = 1.2, p = 9e-5); the first is chance, the second is what the neuron responds to.
* Metadata: per field of ``METADATA_FIELDS``, each value's count among the top sentences where the field is set
  against its count in the rest of the corpus (corpus count - top count) with the same z and p (min support 1), BH
  over the neuron's values; per field the ``metadata_top_n`` most frequent values are kept and the most frequent one
  (ties: smaller value) is flagged ``dominant``.
"""

from neurotext.artifacts.patterns import (
    CORPUS_METADATA_SCHEMA,
    METADATA_SCHEMA,
    SENTENCES_SCHEMA,
    FieldCounts,
    profile_schema,
    read_corpus_metadata,
)
from neurotext.mining import PATTERN_KINDS, PatternSettings
from neurotext.patterns.corpus_metadata import count_corpus_metadata
from neurotext.patterns.figures import figure1, plot_figure1, write_figure1
from neurotext.patterns.gather import gather_sentences
from neurotext.patterns.merge import merge_layer
from neurotext.patterns.plan import PatternsPlan, patterns_plan
from neurotext.patterns.ranges import RANGE_OUTPUTS, neuron_ranges, profile_range, range_name
from neurotext.patterns.table2 import Table2Settings, choose_neurons, table2_rows, write_table2

__all__ = [
    "CORPUS_METADATA_SCHEMA",
    "METADATA_SCHEMA",
    "PATTERN_KINDS",
    "RANGE_OUTPUTS",
    "SENTENCES_SCHEMA",
    "FieldCounts",
    "PatternSettings",
    "PatternsPlan",
    "Table2Settings",
    "choose_neurons",
    "count_corpus_metadata",
    "figure1",
    "gather_sentences",
    "merge_layer",
    "neuron_ranges",
    "patterns_plan",
    "plot_figure1",
    "profile_range",
    "profile_schema",
    "range_name",
    "read_corpus_metadata",
    "table2_rows",
    "write_figure1",
    "write_table2",
]
