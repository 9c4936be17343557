"""Sentence cleaning (properties with hypothesis, thresholds by example) and the Punkt helpers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nltk.tokenize.punkt import PunktSentenceTokenizer

from neurotext.cleaning import (
    COLLAPSE_SYMBOLS,
    ELLIPSIS,
    SYMBOL_COLLAPSE_CHOICES,
    CleanConfig,
    clean_sentence,
    drop_reason,
    load_punkt,
    normalize_text,
    punkt_parameters_from_json,
    punkt_parameters_to_json,
    sanitize,
    split_sentences,
    train_punkt_parameters,
)
from neurotext.io import write_json

DATA = Path(__file__).parent / "data"
MOVIES = DATA / "vader" / "movieReviewSnippets_GroundTruth.txt"

# Text heavy in the characters that matter (collapse symbols, odd whitespace, controls, format characters,
# combining marks) mixed with anything Unicode has.
_SPECIAL = list(COLLAPSE_SYMBOLS) + list("ab \t\n\r\x00\x85\u00a0\u2028\u200b\u00ad\ufeff\u0301e\u00e9'\"_~^/\\")
TEXTS = st.text(alphabet=st.one_of(st.sampled_from(_SPECIAL), st.characters()), max_size=80)
CONFIGS = st.builds(
    CleanConfig,
    symbol_collapse=st.sampled_from(SYMBOL_COLLAPSE_CHOICES),
    min_chars=st.integers(0, 20),
    min_words=st.integers(0, 5),
    max_chars=st.integers(1, 100),
    max_symbol_ratio=st.floats(0, 1),
)


def _oracle_same(text: str) -> str:
    """Brute force of `same`: walk the runs of one repeated symbol; keep "...", else one symbol."""
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and text[j] == text[i]:
            j += 1
        run = text[i:j]
        out.append(run[0] if text[i] in COLLAPSE_SYMBOLS and run != ELLIPSIS else run)
        i = j
    return "".join(out)


def _oracle_any(text: str) -> str:
    """Brute force of `any`: drop every symbol that follows a symbol."""
    return "".join(
        c for k, c in enumerate(text) if not (k and c in COLLAPSE_SYMBOLS and text[k - 1] in COLLAPSE_SYMBOLS)
    )


@settings(max_examples=400, deadline=None)
@given(TEXTS, st.sampled_from(SYMBOL_COLLAPSE_CHOICES))
def test_normalize_is_idempotent_and_matches_the_oracles(text: str, rule: str) -> None:
    cleaned = normalize_text(text, rule)
    assert normalize_text(cleaned, rule) == cleaned
    plain = normalize_text(text, "none")
    assert cleaned == {"same": _oracle_same, "any": _oracle_any, "none": str}[rule](plain)
    assert cleaned == cleaned.strip() and "  " not in cleaned
    assert not any(char.isspace() and char != " " for char in cleaned)
    if rule == "any":
        assert not any(a in COLLAPSE_SYMBOLS and b in COLLAPSE_SYMBOLS for a, b in zip(cleaned, cleaned[1:]))


@settings(max_examples=300, deadline=None)
@given(TEXTS, CONFIGS)
def test_clean_sentence_never_crashes_and_is_stable(text: str, config: CleanConfig) -> None:
    cleaned, reason = clean_sentence(text, config)
    again, reason_again = clean_sentence(cleaned, config)
    assert (again, reason_again) == (cleaned, reason)
    if reason is None:
        assert config.min_chars <= len(cleaned) <= config.max_chars


@settings(max_examples=200, deadline=None)
@given(TEXTS, st.sampled_from(["same", "any"]))
def test_collapse_keeps_the_first_symbol_of_each_run(text: str, rule: str) -> None:
    """Dropping the symbols from both sides gives the same text: collapsing only shortens symbol runs."""
    plain = normalize_text(text, "none")
    collapsed = normalize_text(text, rule)
    assert [c for c in collapsed if c not in COLLAPSE_SYMBOLS] == [c for c in plain if c not in COLLAPSE_SYMBOLS]
    assert len(collapsed) <= len(plain)


@pytest.mark.parametrize(
    ("raw", "same", "any_"),
    [
        ("Wow!!!  That was   great...", "Wow! That was great...", "Wow! That was great."),
        ("what?!  really?!?", "what?! really?!?", "what? really?"),
        ("a -- b == c", "a - b = c", "a - b = c"),
        ("(see above).", "(see above).", "(see above)"),
        ("the scan (MRI), and then", "the scan (MRI), and then", "the scan (MRI) and then"),
        ("it... and then.....", "it... and then.", "it. and then."),
        ("wait.... what", "wait. what", "wait. what"),
        ("``quoted''", "`quoted''", "`quoted''"),
        ("tab\there\r\nnewline\u00a0nbsp", "tab here newline nbsp", "tab here newline nbsp"),
        ("soft\u00adhyphen zero\u200bwidth", "softhyphen zerowidth", "softhyphen zerowidth"),
        ("e\u0301t\u00e9", "\u00e9t\u00e9", "\u00e9t\u00e9"),
        ("evil\u202etxt.exe and\x00 nul", "eviltxt.exe and nul", "eviltxt.exe and nul"),
    ],
)
def test_normalize_examples(raw: str, same: str, any_: str) -> None:
    assert normalize_text(raw) == same  # the default rule
    assert normalize_text(raw, "same") == same
    assert normalize_text(raw, "any") == any_


def test_sanitize_removes_controls_and_bidi_only() -> None:
    assert sanitize("plain text, (MRI)!!") == "plain text, (MRI)!!"
    assert sanitize("a\x00b\tc\u2028d") == "a b c d"
    assert sanitize("\u202aL\u202bR\u202cP\u202dO\u202eE\u2066I\u2067J\u2068K\u2069\u200e\u200f\u061c") == "LRPOEIJK"


def test_symbol_collapse_config() -> None:
    assert CleanConfig.from_config({}).symbol_collapse == "same"
    assert CleanConfig.from_config({"symbol_collapse": "none"}).symbol_collapse == "none"
    assert CleanConfig.from_config({"collapse_symbols": True}).symbol_collapse == "any"  # the old boolean
    assert CleanConfig.from_config({"collapse_symbols": False}).symbol_collapse == "none"
    with pytest.raises(ValueError, match="corpus.clean.symbol_collapse = 'some'"):
        CleanConfig.from_config({"symbol_collapse": "some"})


def test_thresholds_drop_and_keep() -> None:
    config = CleanConfig(min_chars=10, min_words=3, max_chars=40, max_symbol_ratio=0.3)
    assert drop_reason("", config) == "empty"
    assert drop_reason("Too short", config) == "short_chars"  # 9 characters
    assert drop_reason("Ten chars!", config) == "short_words"  # 10 characters, 2 words
    assert drop_reason("Three words here", config) is None
    assert drop_reason("a b c d " * 6, config) == "long_chars"
    assert drop_reason("x = (y) + [z] - {w} ; @", config) == "symbols"  # 11 of 15 visible characters are symbols
    assert drop_reason("one, two; 3 : 4", config) is None  # 3 of 11 visible characters are symbols: 0.27
    assert drop_reason("one, two; 3 : 4", CleanConfig(max_symbol_ratio=0.2)) == "symbols"
    assert drop_reason("Three words here", CleanConfig(min_words=4)) == "short_words"


def test_clean_config_from_config_names_bad_keys() -> None:
    assert CleanConfig.from_config({"min_chars": 5, "max_symbol_ratio": 0.5}) == CleanConfig(
        min_chars=5, max_symbol_ratio=0.5
    )
    with pytest.raises(ValueError, match="corpus.clean: unknown key"):
        CleanConfig.from_config({"min_char": 5})
    with pytest.raises(ValueError, match="corpus.clean.min_words"):
        CleanConfig.from_config({"min_words": "many"})


# --- Punkt -----------------------------------------------------------------------------------------------------

TRAINING = " ".join(
    f"Yesterday Dr. {name} met the board in room {n}. The meeting ran late and Dr. {name} left at {n} o'clock."
    for n, name in enumerate(["Smith", "Jones", "Brown", "Adams", "Clark", "Baker", "Evans", "Green"] * 6)
)


def test_punkt_training_learns_abbreviations() -> None:
    text = "Then Dr. Watson arrived. He sat down."
    untrained = PunktSentenceTokenizer()
    assert untrained.tokenize(text) == ["Then Dr.", "Watson arrived.", "He sat down."]
    params = train_punkt_parameters([TRAINING])
    assert "dr" in params.abbrev_types
    assert PunktSentenceTokenizer(params).tokenize(text) == ["Then Dr. Watson arrived.", "He sat down."]


def test_punkt_json_round_trip_splits_the_same(tmp_path: Path) -> None:
    texts = [line.split(b"\t")[2].decode() for line in MOVIES.read_bytes().split(b"\r\n")]
    params = train_punkt_parameters(texts + [TRAINING])
    data = punkt_parameters_to_json(params, "trained", documents=len(texts))
    assert json.loads(json.dumps(data)) == data
    again = punkt_parameters_from_json(data)
    assert (again.abbrev_types, again.collocations, again.sent_starters) == (
        params.abbrev_types,
        params.collocations,
        params.sent_starters,
    )
    assert {k: v for k, v in again.ortho_context.items() if v} == {k: v for k, v in params.ortho_context.items() if v}
    path = tmp_path / "punkt.json"
    write_json(path, data)
    in_memory, from_file = PunktSentenceTokenizer(params), load_punkt(path)
    for text in texts:
        assert split_sentences(from_file, text) == split_sentences(in_memory, text)
    assert sum(len(split_sentences(from_file, text)) for text in texts) > len(texts)


def test_split_sentences_splits_paragraphs_first() -> None:
    tokenizer = PunktSentenceTokenizer()
    text = "A heading without a period\n\nThe first sentence. The second one.\n  \n\nLast"
    assert split_sentences(tokenizer, text) == [
        "A heading without a period",
        "The first sentence.",
        "The second one.",
        "Last",
    ]
    assert split_sentences(tokenizer, "   \n\n ") == []


def test_load_punkt_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "punkt.json"
    path.write_text('{"abbrev_types": []}')
    with pytest.raises(ValueError, match="not a neurotext Punkt parameter file"):
        load_punkt(path)
