"""Patterns stage on synthetic parquet inputs: a planted-signal neuron, random neurons, bad input, Table 2, Figure 1.

The corpus comes from a small random grammar with PTB tags and dependency trees (labels-only; docs/ARCHITECTURE.md,
"Pattern mining").
Neuron 0's top 100 are built to hold the skip-gram "going ... be" in exactly 60 sentences, the subtree
"(UH (RB) (RB))" in exactly 50 and domain=wiki in exactly 80; every expected count is recounted here by brute force
(plain Python over tokens, bracket strings and metadata), never taken from the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from neurotext.config import ConfigError
from neurotext.artifacts.corpus import CORPUS_SCHEMA, METADATA_FIELDS
from neurotext.artifacts.patterns import PATTERNS_SCHEMA
from neurotext.artifacts.topk import TOPK_SCHEMA
from neurotext.io import write_parquet
from neurotext.validate import with_defaults
from neurotext.patterns import (
    METADATA_SCHEMA,
    RANGE_OUTPUTS,
    PatternSettings,
    Table2Settings,
    choose_neurons,
    count_corpus_metadata,
    gather_sentences,
    merge_layer,
    neuron_ranges,
    profile_range,
    range_name,
    write_figure1,
    write_table2,
)

# --- a random grammar with dependency trees -----------------------------------------------------------------------

WORDS = {
    "DT": ["the", "a", "this", "that"],
    "NN": ["dog", "cat", "house", "river", "idea", "game", "team", "city", "book", "song", "road", "car"],
    "NNS": ["dogs", "cats", "houses", "games", "teams", "books"],
    "NNP": ["Paris", "London", "Mary", "John", "Olympics"],
    "JJ": ["big", "small", "red", "old", "new", "happy", "long"],
    "VBD": ["saw", "liked", "built", "found", "played", "won", "lost"],
    "VBZ": ["is", "seems", "looks"],
    "VBG": ["going", "trying", "hoping", "planning"],
    "VB": ["be", "win", "see", "go", "stay"],
    "IN": ["in", "on", "near", "with", "at"],
    "PRP": ["he", "she", "it", "they"],
    "RB": ["very", "quite", "really", "rather", "too"],
    "UH": ["oh", "wow", "well", "hey", "ah"],
}
MIDDLE = [("to", "TO"), ("really", "RB"), ("soon", "RB"), ("not", "RB"), ("surely", "RB")]
TEMPLATE2_RATE = 0.25  # "PRP VBZ VBG <mid> VB JJ": "going <mid> be" is one of 4 x 5 verb pairs
UH_RATE = 0.005  # an interjection clause (UH (RB) (RB)) in the base grammar


@dataclass
class Node:
    tag: str
    word: str
    left: list[Node] = field(default_factory=list)
    right: list[Node] = field(default_factory=list)

    def linear(self) -> list[Node]:
        return [n for c in self.left for n in c.linear()] + [self] + [n for c in self.right for n in c.linear()]

    def bracket(self) -> str:
        children = "".join(" " + c.bracket() for c in self.left + self.right)
        return f"({self.tag}{children})"


def word(rng: np.random.Generator, tag: str) -> Node:
    return Node(tag, str(rng.choice(WORDS[tag])))


def noun_phrase(rng: np.random.Generator) -> Node:
    u = rng.random()
    if u < 0.25:
        return word(rng, "PRP")
    if u < 0.4:
        return word(rng, "NNP")
    noun = word(rng, "NN" if rng.random() < 0.7 else "NNS")
    noun.left.append(word(rng, "DT"))
    if rng.random() < 0.5:
        adjective = word(rng, "JJ")
        if rng.random() < 0.3:
            adjective.left.append(word(rng, "RB"))
        noun.left.append(adjective)
    return noun


def template1(rng: np.random.Generator) -> Node:
    verb = word(rng, "VBD")
    verb.left.append(noun_phrase(rng))
    verb.right.append(noun_phrase(rng))
    if rng.random() < 0.5:
        prep = word(rng, "IN")
        prep.right.append(noun_phrase(rng))
        verb.right.append(prep)
    return verb


def template2(rng: np.random.Generator, gerund: str | None = None, verb: str | None = None) -> Node:
    root = Node("VBG", gerund or str(rng.choice(WORDS["VBG"])))
    root.left += [word(rng, "PRP"), word(rng, "VBZ")]
    middle_word, middle_tag = MIDDLE[rng.integers(len(MIDDLE))]
    inner = Node("VB", verb or str(rng.choice(WORDS["VB"])), left=[Node(middle_tag, middle_word)])
    inner.right.append(word(rng, "JJ"))
    root.right.append(inner)
    return root


def add_interjection(rng: np.random.Generator, root: Node) -> None:
    """Prefix an interjection (UH (RB) (RB)) to the root or to the root's first left child."""
    clause = word(rng, "UH")
    clause.right += [word(rng, "RB"), word(rng, "RB")]
    target = root.left[0] if root.left and rng.random() < 0.5 else root
    target.left.insert(0, clause)


@dataclass
class Sentence:
    tokens: list[str]
    tags: list[str]
    tree: str
    domain: str
    parsed: bool = True


def realize(root: Node, domain: str) -> Sentence:
    nodes = root.linear()
    return Sentence([n.word for n in nodes], [n.tag for n in nodes], f"(ROOT {root.bracket()})", domain)


def base_sentence(rng: np.random.Generator, domain: str) -> Sentence:
    root = template2(rng) if rng.random() < TEMPLATE2_RATE else template1(rng)
    if rng.random() < UH_RATE:
        add_interjection(rng, root)
    return realize(root, domain)


# --- independent counting ---------------------------------------------------------------------------------------


def has_skipgram(tokens: list[str], items: tuple[str, ...], max_gap: int) -> bool:
    """Brute force over every position tuple."""

    def search(start: int, k: int) -> bool:
        if k == len(items):
            return True
        stop = len(tokens) if k == 0 else min(len(tokens), start + max_gap + 1)
        return any(tokens[i] == items[k] and search(i + 1, k + 1) for i in range(start, stop))

    return search(0, 0)


def parse_tree(text: str) -> tuple[str, list]:
    """'(A (B) (C))' -> ('A', [('B', []), ('C', [])])."""
    tokens = text.replace("(", " ( ").replace(")", " ) ").split()
    pos = 0

    def node():
        nonlocal pos
        assert tokens[pos] == "("
        label = tokens[pos + 1]
        pos += 2
        children = []
        while tokens[pos] == "(":
            children.append(node())
        pos += 1
        return label, children

    return node()


def has_uh_rb_rb(tree: str) -> bool:
    """Does some UH node have two RB children (in order, not necessarily adjacent)?"""

    def walk(n) -> bool:
        label, children = n
        if label == "UH" and sum(1 for c in children if c[0] == "RB") >= 2:
            return True
        return any(walk(c) for c in children)

    return walk(parse_tree(tree))


# --- the synthetic run ------------------------------------------------------------------------------------------

N_CORPUS = 3000
N_SAMPLE = 2000
K = 100
DOMAINS = ["wiki", "book", "news", "review"]
PLANTED, RANDOM_NEURONS, TINY, ABSENT = 0, (1, 2, 3, 4, 5, 6), 7, 8
N_NEURONS = 9
UNPARSED_TOP = 5  # neuron 0's top sentences the "parser" failed on
UNPARSED_SAMPLE = 30


@dataclass
class SyntheticRun:
    root: Path
    sentences: list[Sentence]
    ids: np.ndarray  # uint32 sentence ids, corpus order
    sample: set[int]  # indices into sentences
    tops: dict[int, list[int]]  # neuron -> indices into sentences, by rank
    files: dict[str, Path]


def build_sentences(rng: np.random.Generator) -> tuple[list[Sentence], list[int]]:
    """N_CORPUS sentences: the base grammar, then neuron 0's planted top K (indices returned) in place of some."""
    domains = rng.choice(DOMAINS, size=N_CORPUS, p=[0.25, 0.35, 0.25, 0.15])
    sentences = [base_sentence(rng, str(d)) for d in domains]
    planted_rows = sorted(rng.choice(N_CORPUS, size=K, replace=False).tolist())
    with_going = set(rng.choice(K, size=60, replace=False).tolist())
    with_uh = set(rng.choice(K, size=50, replace=False).tolist())
    wiki = set(rng.choice(K, size=80, replace=False).tolist())
    plain = [i for i in range(K) if i not in with_going]
    unparsed = set(rng.choice([i for i in plain if i not in with_uh], size=UNPARSED_TOP, replace=False).tolist())
    for i, row in enumerate(planted_rows):
        domain = "wiki" if i in wiki else str(rng.choice(["book", "news", "review"]))
        while True:
            root = template2(rng, "going", "be") if i in with_going else base_root(rng)
            if i in with_uh:
                add_interjection(rng, root)
            sentence = realize(root, domain)
            if (has_skipgram(sentence.tokens, ("going", "be"), 2) == (i in with_going)
                    and has_uh_rb_rb(sentence.tree) == (i in with_uh)):  # fmt: skip
                break
        sentence.parsed = i not in unparsed
        sentences[row] = sentence
    return sentences, planted_rows


def base_root(rng: np.random.Generator) -> Node:
    return template2(rng) if rng.random() < TEMPLATE2_RATE else template1(rng)


def write_inputs(root: Path, seed: int = 7) -> SyntheticRun:
    rng = np.random.default_rng(seed)
    sentences, planted_rows = build_sentences(rng)
    codes = np.where(np.arange(N_CORPUS) < N_CORPUS // 2, 1, 2)
    rows_in_dataset = np.where(codes == 1, np.arange(N_CORPUS), np.arange(N_CORPUS) - N_CORPUS // 2)
    ids = ((codes.astype(np.uint32) << np.uint32(27)) | rows_in_dataset.astype(np.uint32)).astype(np.uint32)
    # the sample: 10 of the planted top sentences and random others
    planted_in_sample = rng.choice(planted_rows, size=10, replace=False).tolist()
    others = [i for i in range(N_CORPUS) if i not in set(planted_rows)]
    sample = set(planted_in_sample) | set(rng.choice(others, size=N_SAMPLE - 10, replace=False).tolist())
    for i in rng.choice(sorted(sample - set(planted_rows)), size=UNPARSED_SAMPLE, replace=False).tolist():
        sentences[i].parsed = False
    tops = {PLANTED: planted_rows}
    for neuron in RANDOM_NEURONS:  # uniform draws from the base grammar's sentences
        tops[neuron] = rng.choice(others, size=K, replace=False).tolist()
    tops[TINY] = rng.choice(N_CORPUS, size=2, replace=False).tolist()
    files = {}
    for code, name in ((1, "alpha"), (2, "beta")):
        members = [i for i in range(N_CORPUS) if codes[i] == code]
        files[f"corpus_{name}"] = root / "corpus" / f"{name}.parquet"
        write_parquet(corpus_table([sentences[i] for i in members], ids[members], name), files[f"corpus_{name}"])
        files[f"parses_{name}"] = root / "parses" / name / "0.parquet"
        wanted = [i for i in members if i in sample or any(i in t for t in tops.values())]
        write_parquet(parses_table([sentences[i] for i in wanted], ids[wanted]), files[f"parses_{name}"])
    order = sorted(sample, key=lambda i: ids[i])
    files["sample"] = root / "sample" / "sentences.parquet"
    write_parquet(corpus_table([sentences[i] for i in order], ids[order], None), files["sample"])
    files["topk"] = root / "topk" / "base" / "layer1.parquet"
    write_parquet(topk_table(tops, ids), files["topk"])
    return SyntheticRun(root, sentences, ids, sample, tops, files)


def corpus_table(sentences: list[Sentence], ids: np.ndarray, dataset: str | None) -> pa.Table:
    n = len(sentences)
    columns = {
        "sentence_id": pa.array(ids, pa.uint32()),
        "dataset": pa.array([dataset or ("alpha" if (i >> 27) == 1 else "beta") for i in ids.tolist()]),
        "doc_id": pa.array([f"d{i}" for i in range(n)]),
        "text": pa.array([" ".join(s.tokens) for s in sentences]),
        "domain": pa.array([s.domain for s in sentences]),
        "year": pa.array([2000 + (i % 3) for i in range(n)], pa.int32()),
    }
    for f in CORPUS_SCHEMA:
        columns.setdefault(f.name, pa.nulls(n, f.type))
    return pa.table([columns[f.name] for f in CORPUS_SCHEMA], schema=CORPUS_SCHEMA)


def parses_table(sentences: list[Sentence], ids: np.ndarray) -> pa.Table:
    """The parse stage's columns; an unparsed sentence has no tokens, no tags, no tree and a reason."""
    ok = [s.parsed for s in sentences]
    return pa.table({
        "sentence_id": pa.array(ids, pa.uint32()),
        "tokens": pa.array([s.tokens if p else [] for s, p in zip(sentences, ok)], pa.list_(pa.string())),
        "char_start": pa.array([[0] * len(s.tokens) if p else [] for s, p in zip(sentences, ok)], pa.list_(pa.int32())),
        "char_end": pa.array([[1] * len(s.tokens) if p else [] for s, p in zip(sentences, ok)], pa.list_(pa.int32())),
        "tags": pa.array([s.tags if p else [] for s, p in zip(sentences, ok)], pa.list_(pa.string())),
        "heads": pa.array([[] for _ in sentences], pa.list_(pa.int32())),
        "tree": pa.array([s.tree if p else None for s, p in zip(sentences, ok)], pa.string()),
        "parsed": pa.array(ok),
        "reason": pa.array([None if p else "too_long: synthetic" for p in ok], pa.string()),
    })  # fmt: skip


def topk_table(tops: dict[int, list[int]], ids: np.ndarray) -> pa.Table:
    rows = [(n, r, int(ids[i])) for n, top in sorted(tops.items()) for r, i in enumerate(top)]
    return pa.table({
        "neuron": pa.array([r[0] for r in rows], pa.int32()), "rank": pa.array([r[1] for r in rows], pa.int32()),
        "sentence_id": pa.array([r[2] for r in rows], pa.uint32()),
        "activation": pa.array([10.0 - 0.01 * r[1] for r in rows], pa.float32()),
        "token_index": pa.array([1] * len(rows), pa.int32()), "char_start": pa.array([0] * len(rows), pa.int32()),
        "char_end": pa.array([1] * len(rows), pa.int32()),
    }, schema=TOPK_SCHEMA)  # fmt: skip


def run_stage(run: SyntheticRun, settings: dict | None = None, tag: str = "a") -> dict[str, Path]:
    root = run.root / tag
    out = {"corpus_metadata": root / "patterns" / "corpus_metadata.parquet",
           "sentences": root / "patterns" / "sentences" / "layer1.parquet"}  # fmt: skip
    corpus = [run.files["corpus_alpha"], run.files["corpus_beta"]]
    count_corpus_metadata(corpus, out["corpus_metadata"], "hash")
    gather_sentences(run.files["topk"], [run.files["parses_alpha"], run.files["parses_beta"]], corpus,
                     run.files["sample"], out["sentences"], "hash")  # fmt: skip
    ranges = neuron_ranges(N_NEURONS, 5)
    range_files = {kind: [] for kind in RANGE_OUTPUTS}
    for start, end in ranges:
        name = range_name(start, end)
        outputs = {kind: root / "patterns" / kind / "layer1" / f"{name}.parquet" for kind in RANGE_OUTPUTS}
        profile_range(run.files["topk"], out["sentences"], out["corpus_metadata"], start, end,
                      with_defaults("patterns", settings), outputs, "hash")  # fmt: skip
        for kind in RANGE_OUTPUTS:
            range_files[kind].append(outputs[kind])
    out["patterns"] = root / "patterns" / "layer1.parquet"
    out["profiles"] = root / "profiles" / "layer1.parquet"
    out["metadata"] = root / "profiles" / "metadata" / "layer1.parquet"
    merge_layer({k: v[::-1] for k, v in range_files.items()}, out["patterns"], out["profiles"], out["metadata"], "hash")
    return out


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> SyntheticRun:
    return write_inputs(tmp_path_factory.mktemp("patterns"))


@pytest.fixture(scope="module")
def stage(synthetic) -> dict[str, Path]:
    return run_stage(synthetic)


def rows_of(path: Path, neuron: int, kind: str | None = None) -> list[dict]:
    rows = [r for r in pq.read_table(path).to_pylist() if r["neuron"] == neuron]
    return [r for r in rows if kind is None or r["kind"] == kind]


def background_indices(run: SyntheticRun, neuron: int, need_parse: bool) -> list[int]:
    top = set(run.tops.get(neuron, []))
    return [i for i in run.sample if i not in top and (run.sentences[i].parsed or not need_parse)]


# --- the planted signal -----------------------------------------------------------------------------------------


def test_planted_skipgram_ranks_first_with_exact_supports(synthetic, stage):
    skipgrams = rows_of(stage["patterns"], PLANTED, "skipgrams")
    top = [synthetic.sentences[i] for i in synthetic.tops[PLANTED] if synthetic.sentences[i].parsed]
    expected_top = sum(has_skipgram(s.tokens, ("going", "be"), 2) for s in top)
    background = [synthetic.sentences[i] for i in background_indices(synthetic, PLANTED, need_parse=True)]
    expected_bg = sum(has_skipgram(s.tokens, ("going", "be"), 2) for s in background)
    assert expected_top == 60 and 5 <= expected_bg <= 60  # the construction itself
    best = skipgrams[0]
    assert best["pattern"] == "going be"
    assert (best["support_top"], best["support_bg"]) == (expected_top, expected_bg)
    assert best["q"] < 1e-10 and best["z"] > 3
    assert all(r["z"] <= best["z"] for r in skipgrams)


def test_planted_subtree_ranks_first_with_exact_supports(synthetic, stage):
    subtrees = rows_of(stage["patterns"], PLANTED, "subtrees")
    top = [synthetic.sentences[i] for i in synthetic.tops[PLANTED] if synthetic.sentences[i].parsed]
    background = [synthetic.sentences[i] for i in background_indices(synthetic, PLANTED, need_parse=True)]
    expected_top = sum(has_uh_rb_rb(s.tree) for s in top)
    expected_bg = sum(has_uh_rb_rb(s.tree) for s in background)
    assert expected_top == 50
    best = subtrees[0]
    assert best["pattern"] == "(UH (RB) (RB))"
    assert (best["support_top"], best["support_bg"]) == (expected_top, expected_bg)
    assert best["q"] < 1e-10


def test_planted_domain_is_dominant_with_exact_shares(synthetic, stage):
    metadata = [r for r in rows_of(stage["metadata"], PLANTED) if r["field"] == "domain"]
    top_domains = [synthetic.sentences[i].domain for i in synthetic.tops[PLANTED]]
    corpus_wiki = sum(s.domain == "wiki" for s in synthetic.sentences)
    wiki = metadata[0]
    assert (wiki["value"], wiki["dominant"]) == ("wiki", True)
    assert not any(r["dominant"] for r in metadata[1:])
    assert (wiki["count_top"], wiki["n_top"]) == (top_domains.count("wiki"), K) == (80, K)
    assert (wiki["count_corpus"], wiki["n_corpus"]) == (corpus_wiki, N_CORPUS)
    assert wiki["share_top"] == pytest.approx(0.8) and wiki["share_corpus"] == pytest.approx(corpus_wiki / N_CORPUS)
    assert wiki["q"] < 1e-10 and wiki["z"] > 0
    profile = rows_of(stage["profiles"], PLANTED)[0]
    assert (profile["dominant_domain"], profile["dominant_domain_share"]) == ("wiki", pytest.approx(0.8))
    assert profile["summary"].startswith("wiki 80% · \"going be\" · (UH (RB) (RB))")


def test_unparsed_sentences_are_counted_and_left_out_of_tree_kinds(synthetic, stage):
    profile = rows_of(stage["profiles"], PLANTED)[0]
    top_unparsed = sum(not synthetic.sentences[i].parsed for i in synthetic.tops[PLANTED])
    assert (profile["n_top"], profile["n_top_unparsed"], profile["n_top_parsed"]) == (K, top_unparsed, K - top_unparsed)
    assert top_unparsed == UNPARSED_TOP
    assert profile["n_background_parsed"] == len(background_indices(synthetic, PLANTED, need_parse=True))
    # shares count the tags of the parsed top sentences
    parsed = [synthetic.sentences[i] for i in synthetic.tops[PLANTED] if synthetic.sentences[i].parsed]
    n_tokens = sum(len(s.tags) for s in parsed)
    nouns = sum(t in ("NN", "NNS", "NNP", "NNPS") for s in parsed for t in s.tags)
    assert profile["noun_share"] == pytest.approx(nouns / n_tokens)


def test_words_are_counted_by_class_case_sensitively(synthetic, stage):
    words = rows_of(stage["patterns"], PLANTED, "words")
    top = [synthetic.sentences[i] for i in synthetic.tops[PLANTED] if synthetic.sentences[i].parsed]
    background = [synthetic.sentences[i] for i in background_indices(synthetic, PLANTED, need_parse=True)]
    verbs = [r for r in words if r["pattern"].startswith("verb:")]
    assert {verbs[0]["pattern"], verbs[1]["pattern"]} == {"verb:going", "verb:be"}  # the planted pair
    def count(group: list[Sentence], token: str, tags: tuple[str, ...]) -> int:
        return sum(any(w == token and t in tags for w, t in zip(s.tokens, s.tags)) for s in group)

    for row in words:
        name, token = row["pattern"].split(":", 1)
        tags = dict(PatternSettings.from_config(with_defaults("patterns")).word_classes)[name]
        assert (row["support_top"], row["support_bg"]) == (count(top, token, tags), count(background, token, tags))


def test_random_top_k_yields_no_significant_pattern(synthetic, stage):
    """Six neurons whose top 100 are uniform draws from the corpus: under this null the top K and the rest of the
    sample are exchangeable, so every selective p is valid and BH keeps the chance of any false discovery per
    neuron near 5 %; we see none (profile `n_significant` counts every candidate, kept or not)."""
    for neuron in RANDOM_NEURONS:
        profile = rows_of(stage["profiles"], neuron)[0]
        assert profile["status"] == "ok" and profile["n_top"] == K
        assert profile["n_significant"] == 0, neuron
        assert all(r["q"] >= 0.05 for r in rows_of(stage["patterns"], neuron))
        assert all(r["q"] >= 0.05 for r in rows_of(stage["metadata"], neuron))
        assert profile["summary"].endswith("no significant pattern")


def test_plain_fisher_p_finds_chance_patterns_the_selective_p_rejects(synthetic, stage):
    """The same random neurons with the textbook Fisher p: patterns seen only in a few top sentences pass BH. Counted
    here (not asserted exactly) because the number depends on the grammar; the selective p finds none above."""
    out = run_stage(synthetic, {"p_value": "plain"}, tag="plain")
    significant = [rows_of(out["profiles"], n)[0]["n_significant"] for n in RANDOM_NEURONS]
    planted = rows_of(out["patterns"], PLANTED, "skipgrams")[0]
    assert planted["pattern"] == "going be" and planted["q"] < 1e-10
    print(f"plain Fisher p, random neurons: significant candidates per neuron {significant}")
    assert sum(significant) >= 0


# --- bad input, edge cases, determinism --------------------------------------------------------------------------


def test_too_few_top_sentences_give_an_empty_profile(synthetic, stage):
    for neuron, n_top in ((TINY, 2), (ABSENT, 0)):
        profile = rows_of(stage["profiles"], neuron)[0]
        assert (profile["status"], profile["n_top"], profile["n_patterns"]) == ("too_few_top_sentences", n_top, 0)
        assert profile["summary"] == f"too few top sentences ({n_top} < 3)"
        assert rows_of(stage["patterns"], neuron) == [] and rows_of(stage["metadata"], neuron) == []


def test_output_files_have_the_shared_schemas(stage, synthetic):
    kinds = pq.read_table(stage["patterns"])
    assert kinds.schema.names == ["kind", *PATTERNS_SCHEMA.names]
    assert set(kinds["kind"].to_pylist()) == {"words", "skipgrams", "posgrams", "subtrees"}
    range_file = synthetic.root / "a" / "patterns" / "skipgrams" / "layer1" / "n00000-00005.parquet"
    assert pq.read_schema(range_file).remove_metadata() == PATTERNS_SCHEMA
    assert pq.read_table(stage["metadata"]).schema.remove_metadata() == METADATA_SCHEMA
    assert pq.read_table(stage["profiles"])["neuron"].to_pylist() == list(range(N_NEURONS))
    counts = {(r["field"], r["value"]): r["count"] for r in pq.read_table(stage["corpus_metadata"]).to_pylist()}
    assert counts[("year", "2001")] == sum(1 for i in range(N_CORPUS) if (i if i < 1500 else i - 1500) % 3 == 1)
    assert {f for f, _ in counts} <= set(METADATA_FIELDS)


def test_reruns_give_the_same_bytes(synthetic, stage):
    again = run_stage(synthetic, tag="b")
    for key in ("patterns", "profiles", "metadata", "corpus_metadata", "sentences"):
        assert hashlib.sha256(stage[key].read_bytes()).digest() == hashlib.sha256(again[key].read_bytes()).digest()


def test_missing_parse_is_a_clear_error(synthetic, tmp_path):
    table = pq.read_table(synthetic.files["parses_alpha"])
    broken = tmp_path / "parses.parquet"
    write_parquet(table.slice(1), broken)
    missing = table["sentence_id"][0].as_py()
    with pytest.raises(ValueError, match=f"no row in the parse files.*{missing}"):
        gather_sentences(synthetic.files["topk"], [broken, synthetic.files["parses_beta"]],
                         [synthetic.files["corpus_alpha"], synthetic.files["corpus_beta"]], synthetic.files["sample"],
                         tmp_path / "out.parquet")  # fmt: skip
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    ("block", "key"),
    [({"top_n": 0}, "patterns.top_n"), ({"p_value": "exact"}, "patterns.p_value"),
     ({"skipgrams": {"min_len": 3, "max_len": 2}}, "patterns.skipgrams.max_len"),
     ({"words": {"classes": {"noun": []}}}, "patterns.words.classes.noun"),
     ({"prior_weight": 0}, "patterns.prior_weight"), ({"posgrams": {"max_gap": 1}}, "patterns.posgrams: unknown"),
     ({"skipgram": {}}, "patterns: unknown key")],
)  # fmt: skip
def test_bad_config_names_the_key(block, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        PatternSettings.from_config(with_defaults("patterns", block))


def test_an_unvalidated_block_names_the_missing_key():
    """Defaults live in the schema only: a block that skipped validation fails naming the key, never guesses."""
    block = with_defaults("patterns")
    del block["skipgrams"]["max_gap"]
    with pytest.raises(ConfigError, match=r"patterns\.skipgrams\.max_gap.*with_defaults"):
        PatternSettings.from_config(block)
    with pytest.raises(ConfigError, match=r"table2\.per_cell"):
        Table2Settings.from_config({"neurons": [], "seed": 0, "count": 3})


def test_table2_neurons_from_config_or_a_seeded_draw():
    chosen = Table2Settings(("L11.309", "L6.200", "L8.270"), 0, 3, 3)
    assert choose_neurons(chosen, 12, 768) == [(11, 309), (6, 200), (8, 270)]
    with pytest.raises(ConfigError, match=r"table2\.neurons\[0\].*L13\.5"):
        choose_neurons(Table2Settings(("L13.5",), 0, 3, 3), 12, 768)
    drawn = choose_neurons(Table2Settings((), seed=0, count=3, per_cell=3), 6, 384)
    assert drawn == choose_neurons(Table2Settings((), seed=0, count=3, per_cell=3), 6, 384)
    assert len(set(drawn)) == 3 and all(1 <= layer <= 6 and 0 <= n < 384 for layer, n in drawn)
    assert drawn != choose_neurons(Table2Settings((), seed=1, count=3, per_cell=3), 6, 384)


def test_table2_and_figure1(synthetic, stage, tmp_path):
    neurons = [(1, PLANTED), (1, RANDOM_NEURONS[0]), (1, TINY)]
    grid = write_table2({1: stage["patterns"]}, {1: stage["profiles"]}, neurons, tmp_path / "t2.md",
                        tmp_path / "t2.csv")  # fmt: skip
    md = (tmp_path / "t2.md").read_text()
    assert md.startswith("|  | L1.0 | L1.1 | L1.7 |")
    rows = {row[0]: row[1:] for row in csv.reader(io.StringIO((tmp_path / "t2.csv").read_text()))}
    assert rows == {row[0]: row[1:] for row in grid}
    assert rows["Skip-n-grams"][0].startswith("going be")
    assert rows["Subtrees"][0].startswith("(UH (RB) (RB))")
    assert rows["Verbs"][0].split(", ")[:2] in (["going", "be"], ["be", "going"])
    assert rows["Dominant domain"][0].startswith("wiki 80.0%")
    assert rows["Skip-n-grams"][2] == "-"
    assert set(rows) >= {"Nouns", "Adjectives", "POS n-grams", "Noun / verb / adjective share"}
    digests = []
    for tag in ("x", "y"):
        png, pdf = tmp_path / f"{tag}.png", tmp_path / f"{tag}.pdf"
        write_figure1({1: stage["metadata"]}, stage["corpus_metadata"], neurons, png, pdf)
        digests.append((hashlib.sha256(png.read_bytes()).digest(), hashlib.sha256(pdf.read_bytes()).digest()))
        assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    assert digests[0] == digests[1]


def test_malformed_tree_names_the_file_and_sentence(synthetic, stage, tmp_path):
    table = pq.read_table(stage["sentences"])
    trees = table["tree"].to_pylist()
    row = next(i for i, (t, p) in enumerate(zip(trees, table["parsed"].to_pylist())) if p)
    trees[row] = "(ROOT (NN dog))"
    broken = tmp_path / "sentences.parquet"
    write_parquet(table.set_column(table.schema.get_field_index("tree"), "tree", pa.array(trees, pa.string())), broken)
    sentence = table["sentence_id"][row].as_py()
    outputs = {kind: tmp_path / f"{kind}.parquet" for kind in RANGE_OUTPUTS}
    with pytest.raises(ValueError, match=f"{broken}: sentence {sentence}: malformed tree"):
        profile_range(synthetic.files["topk"], broken, stage["corpus_metadata"], 0, N_NEURONS,
                      with_defaults("patterns"), outputs)  # fmt: skip
    assert not any(path.exists() for path in outputs.values())
