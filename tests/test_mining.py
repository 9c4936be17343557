"""The per-neuron core (`neurotext.mining`) called directly, as the scores stage does: any subset of a neuron's top
sentences against any background. Inputs: the patterns tests' synthetic run (a planted skip-gram "going ... be" in 60
of neuron 0's top 100); expected counts recounted by brute force over the synthetic sentences."""

from __future__ import annotations

import numpy as np
import pytest

from neurotext.artifacts.patterns import read_corpus_metadata, read_sentences
from neurotext.mining import Background, PatternSettings, encode_sentences, match_patterns, mine_neuron
from neurotext.validate import with_defaults
from test_patterns import PLANTED, RANDOM_NEURONS, has_skipgram, has_uh_rb_rb, rows_of, run_stage, write_inputs


@pytest.fixture(scope="module")
def mined(tmp_path_factory):
    run = write_inputs(tmp_path_factory.mktemp("mining"))
    out = run_stage(run)
    settings = PatternSettings.from_config(with_defaults("patterns"))
    counts = read_corpus_metadata(out["corpus_metadata"])
    enc = encode_sentences(read_sentences(out["sentences"]), counts, settings.word_classes)
    return run, out, settings, counts, enc


def test_default_background_reproduces_the_stage(mined):
    run, out, settings, counts, enc = mined
    top_ids = run.ids[run.tops[PLANTED]]
    prof = mine_neuron(enc, Background.build(enc), top_ids, counts, settings, neuron=PLANTED)
    stage_rows = rows_of(out["patterns"], PLANTED, "skipgrams")
    assert prof.patterns["skipgrams"].pattern == [r["pattern"] for r in stage_rows]
    assert prof.patterns["skipgrams"].support_bg == [r["support_bg"] for r in stage_rows]
    assert prof.row["summary"] == rows_of(out["profiles"], PLANTED)[0]["summary"]
    sample_ids = run.ids[sorted(run.sample)]
    by_ids = mine_neuron(enc, Background.of_ids(enc, sample_ids), top_ids, counts, settings, neuron=PLANTED)
    assert by_ids.row == prof.row


def test_a_subset_against_another_background_counts_exactly(mined):
    run, _, settings, counts, enc = mined
    subset = run.tops[PLANTED][:50]  # the 50 best-ranked top sentences
    background = sorted({i for n in RANDOM_NEURONS for i in run.tops[n]} | set(run.tops[PLANTED][40:]))
    prof = mine_neuron(enc, Background.of_ids(enc, run.ids[background]), run.ids[subset], counts, settings)
    rows = prof.patterns["skipgrams"]
    assert "going be" in rows.pattern
    i = rows.pattern.index("going be")
    top = [run.sentences[j] for j in subset if run.sentences[j].parsed]
    rest = [run.sentences[j] for j in background if j not in set(subset) and run.sentences[j].parsed]
    expected = (sum(has_skipgram(s.tokens, ("going", "be"), 2) for s in top),
                sum(has_skipgram(s.tokens, ("going", "be"), 2) for s in rest))  # fmt: skip
    assert (rows.support_top[i], rows.support_bg[i]) == expected
    assert prof.row["n_top"] == 50 and prof.row["n_background"] == len(rest)
    assert rows.q[i] < 1e-6


def test_ids_outside_the_encoded_sentences_are_an_error(mined):
    _, _, settings, counts, enc = mined
    missing = np.array([int(enc.sentence_ids.max()) + 1], np.uint32)
    with pytest.raises(ValueError, match="not among the gathered sentences"):
        mine_neuron(enc, Background.build(enc), missing, counts, settings)


def test_match_patterns_finds_exactly_the_sentences_that_contain_each_pattern(mined):
    run, _, settings, _, enc = mined
    bg = Background.build(enc)
    sample = sorted(run.sample, key=lambda i: run.ids[i])
    row_of = {int(run.ids[i]): r for i, r in zip(sample, enc.rows_of(run.ids[sample]).tolist())}
    cases = {"skipgrams": ["going be", "the dog"], "words": ["verb:going", "noun:dog"], "posgrams": ["DT NN"],
             "subtrees": ["(UH (RB) (RB))"]}  # fmt: skip

    def contains(s, kind: str, pattern: str) -> bool:
        if not s.parsed:  # the synthetic parse files give an unparsed sentence no tokens
            return False
        if kind == "skipgrams":
            return has_skipgram(s.tokens, tuple(pattern.split(" ")), settings.skipgrams.max_gap)
        if kind == "words":
            name, word = pattern.split(":")
            return any(w == word and t in dict(settings.word_classes)[name] for w, t in zip(s.tokens, s.tags))
        if kind == "posgrams":
            items = pattern.split(" ")
            return any(s.tags[i : i + len(items)] == items for i in range(len(s.tags)))
        return has_uh_rb_rb(s.tree)

    for kind, patterns in cases.items():
        matches = match_patterns(kind, bg, patterns, settings)
        for k, pattern in enumerate(patterns):
            expected = sorted(row_of[int(run.ids[i])] for i in sample if contains(run.sentences[i], kind, pattern))
            assert matches.rows_of(k).tolist() == expected, (kind, pattern)
    with pytest.raises(ValueError, match="unknown pattern kind"):
        match_patterns("trigrams", bg, ["a b c"], settings)


def test_mining_kernels_record_names_the_numba_version(tmp_path):
    """The workflow's `mining_kernels` job runs every kernel once and writes the numba version it cached them with."""
    import numba

    from neurotext.mining.kernels import compile_kernels

    out = tmp_path / "patterns" / "kernels.txt"
    compile_kernels(out)
    assert out.read_text() == f"numba\t{numba.__version__}\n"
