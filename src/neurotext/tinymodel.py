"""A tiny random BERT model directory for tests and smoke runs.

`make_tiny_model(out_dir, texts=...)` writes a complete Hugging Face model directory: `config.json` (BertModel,
2 layers, hidden 32, intermediate 64, 2 heads by default), `model.safetensors` (random weights from a fixed seed),
and an uncased WordPiece fast tokenizer (`tokenizer.json`, `tokenizer_config.json`, `vocab.txt`). The vocabulary is
built deterministically: the special tokens, every printable ASCII character and every character of the texts (each
also as a ``##`` continuation, so any such text tokenizes without [UNK]), then the most frequent words of the texts
or word list (ties broken alphabetically). Same arguments, same files.

Command line: ``python -m neurotext.tinymodel OUT_DIR [--texts FILE]``.
"""

from __future__ import annotations

import argparse
import json
import os
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
DEFAULT_WORDS = (
    "the a an of to and in is was it that for on with as by at from this be are not have has had but or he she "
    "they we you i his her their its what which who one all there will would can could about more new said time "
    "good bad great movie film book story news world people day year make like just very well also than then "
    "into over only after before because while love hate best worst funny boring government market president"
).split()


def _normalize_and_split(texts: Iterable[str]) -> Iterable[str]:
    """Words of `texts` as the BERT uncased pre-tokenizer sees them (lowercased, accents stripped)."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalizer = BertNormalizer(lowercase=True)
    pre_tokenizer = BertPreTokenizer()
    for text in texts:
        for word, _span in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            yield word


def build_vocab(texts: Sequence[str] = (), words: Sequence[str] = (), max_words: int = 2000) -> list[str]:
    """Deterministic WordPiece vocabulary: specials, characters (plain and ``##``), then up to `max_words` words."""
    counts = Counter(_normalize_and_split(texts))
    counts.update(_normalize_and_split(words))
    if not counts:
        counts.update(DEFAULT_WORDS)
    characters = set(string.printable.strip().lower()) | {c for word in counts for c in word}
    characters.discard(" ")
    vocab = list(SPECIAL_TOKENS)
    for character in sorted(characters):
        vocab.append(character)
    for character in sorted(characters):
        vocab.append("##" + character)
    seen = set(vocab)
    frequent = sorted((w for w in counts if len(w) > 1 and w not in seen), key=lambda w: (-counts[w], w))
    vocab.extend(frequent[:max_words])
    return vocab


def _write_tokenizer(out_dir: Path, vocab: list[str], max_length: int) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    token_ids = {token: index for index, token in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordPiece(token_ids, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", token_ids["[CLS]"]), ("[SEP]", token_ids["[SEP]"])],
    )
    tokenizer.decoder = decoders.WordPiece(prefix="##")
    for token in SPECIAL_TOKENS:
        tokenizer.add_special_tokens([token])
    tokenizer.save(str(out_dir / "tokenizer.json"))
    (out_dir / "vocab.txt").write_text("".join(token + "\n" for token in vocab), encoding="utf-8")
    tokenizer_config = {
        "tokenizer_class": "BertTokenizer",
        "do_lower_case": True,
        "model_max_length": max_length,
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    }
    (out_dir / "tokenizer_config.json").write_text(json.dumps(tokenizer_config, indent=2, sort_keys=True) + "\n")


def make_tiny_model(
    out_dir: str | os.PathLike[str],
    texts: Sequence[str] = (),
    words: Sequence[str] = (),
    seed: int = 0,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    max_position_embeddings: int = 512,
    max_words: int = 2000,
) -> Path:
    """Write a tiny random BertModel directory to `out_dir` and return its path (see the module docstring)."""
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = build_vocab(texts, words, max_words)
    _write_tokenizer(out, vocab, max_position_embeddings)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=max_position_embeddings,
        pad_token_id=0,
        architectures=["BertModel"],
    )
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = BertModel(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(str(out), safe_serialization=True)
    return out


#: Alias of `make_tiny_model` (the name the workflow tests use).
make_tiny_bert = make_tiny_model


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m neurotext.tinymodel",
        description="Write a tiny random BERT model directory (config.json, model.safetensors, fast tokenizer).",
    )
    parser.add_argument("out_dir", help="directory to write (created if missing)")
    parser.add_argument("--texts", help="UTF-8 text file, one sentence a line, to build the WordPiece vocab from")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed (default 0)")
    parser.add_argument("--hidden-size", type=int, default=32)
    parser.add_argument("--intermediate-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--heads", type=int, default=2)
    args = parser.parse_args(argv)
    texts: list[str] = []
    if args.texts:
        texts = Path(args.texts).read_text(encoding="utf-8").splitlines()
    out = make_tiny_model(
        args.out_dir,
        texts=texts,
        seed=args.seed,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_layers=args.layers,
        num_heads=args.heads,
    )
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
