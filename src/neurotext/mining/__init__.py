"""Explaining one neuron by its top sentences: the core shared by the patterns stage and the scores stage.

Typical use (one layer; docs/ARCHITECTURE.md, "Pattern mining")::

    from neurotext.artifacts.patterns import read_corpus_metadata, read_sentences
    from neurotext.mining import Background, PatternSettings, encode_sentences, mine_neuron

    settings = PatternSettings.from_config(config["patterns"])   # a validated config: every key filled
    counts = read_corpus_metadata("results/run/patterns/corpus_metadata.parquet")
    table = read_sentences("results/run/patterns/sentences/layer6.parquet", top_ids)   # + the sample's rows
    enc = encode_sentences(table, counts, settings.word_classes)
    bg = Background.build(enc)                   # the sample; or Background.of_ids(enc, background_ids)
    prof = mine_neuron(enc, bg, top_ids[:50], counts, settings, neuron=200)
    prof.patterns["skipgrams"].pattern, prof.metadata, prof.row["summary"]
"""

from neurotext.mining.candidates import (
    KIND_LABELS,
    PATTERN_KINDS,
    Candidates,
    TopRows,
    match_patterns,
    neuron_candidates,
)
from neurotext.mining.encode import Background, EncodedSentences, encode_sentences
from neurotext.mining.metadata import dominant_domain, metadata_rows
from neurotext.mining.profile import STATUS_OK, STATUS_TOO_FEW, NeuronProfile, mine_neuron, profile_neuron, summarize
from neurotext.mining.rank import PatternRows, score_candidates
from neurotext.mining.settings import NgramSettings, PatternSettings, WordClasses

__all__ = [
    "KIND_LABELS",
    "PATTERN_KINDS",
    "STATUS_OK",
    "STATUS_TOO_FEW",
    "Background",
    "Candidates",
    "EncodedSentences",
    "NeuronProfile",
    "NgramSettings",
    "PatternRows",
    "PatternSettings",
    "TopRows",
    "WordClasses",
    "dominant_domain",
    "encode_sentences",
    "match_patterns",
    "metadata_rows",
    "mine_neuron",
    "neuron_candidates",
    "profile_neuron",
    "score_candidates",
    "summarize",
]
