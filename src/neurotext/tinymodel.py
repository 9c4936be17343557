"""A tiny random BERT model directory for tests and smoke runs.

`make_tiny_model(out_dir, texts=...)` writes a complete Hugging Face model directory: `config.json` (BertModel,
2 layers, hidden 32, intermediate 64, 2 heads by default), `model.safetensors` (random weights from a fixed seed),
and an uncased WordPiece fast tokenizer (`tokenizer.json`, `tokenizer_config.json`, `vocab.txt`). The vocabulary is
built deterministically: the special tokens, every printable ASCII character and every character of the texts (each
also as a ``##`` continuation, so any such text tokenizes without [UNK]), then the most frequent words of the texts
or word list (ties broken alphabetically). Same arguments, same files.

`make_tiny_decoder(out_dir, family="gpt2" | "gpt_neox" | "llama", texts=...)` writes a tiny random decoder LM
(base model weights) with a BPE tokenizer trained locally with the `tokenizers` library: byte-level like GPT-2 /
Pythia (BOS = ``<|endoftext|>``, not added by the tokenizer) or SentencePiece-style for Llama (``<s>`` prepended).

Command line: ``python -m neurotext.tinymodel OUT_DIR [--texts FILE] [--family bert|gpt2|gpt_neox|llama]``.
"""

from __future__ import annotations

import argparse
import json
import os
import string
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

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
    _write_json(out_dir / "tokenizer_config.json", tokenizer_config)


def _write_json(path: Path, data: dict) -> None:
    """`data` as indented JSON with sorted keys and a final newline (the same bytes for the same data)."""
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def _save_seeded(model_class: Any, config: Any, seed: int, out: Path) -> Path:
    """Initialise ``model_class(config)`` under torch seed `seed` (the global RNG state is restored afterwards) and
    save it to `out` as safetensors; returns `out`."""
    import torch

    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        model = model_class(config)
    finally:
        torch.random.set_rng_state(generator_state)
    model.save_pretrained(str(out), safe_serialization=True)
    return out


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
    return _save_seeded(BertModel, config, seed, out)


#: Alias of `make_tiny_model` (the name the workflow tests use).
make_tiny_bert = make_tiny_model

DECODER_FAMILIES = ("gpt2", "gpt_neox", "llama")


def _train_decoder_tokenizer(
    out_dir: Path, family: str, texts: Sequence[str], vocab_size: int, max_length: int
) -> dict[str, int]:
    """Train a BPE tokenizer on `texts` (plus the default words) and write tokenizer.json / tokenizer_config.json.

    gpt2 / gpt_neox: byte-level BPE like GPT-2 (offsets include the leading space; no BOS added by the tokenizer,
    BOS = EOS = ``<|endoftext|>``). llama: SentencePiece-style BPE (Metaspace ``▁``, byte fallback off, every
    character of the texts in the alphabet) whose post-processor prepends ``<s>``. Deterministic for the same input.
    Returns the special token ids (bos, eos, pad, unk)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    corpus = list(texts) or [" ".join(DEFAULT_WORDS)]
    corpus = [*corpus, " ".join(DEFAULT_WORDS), string.printable]
    if family == "llama":
        specials = ["<unk>", "<s>", "</s>"]
        tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
        tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
        alphabet = sorted({c for text in corpus for c in text} | {"\u2581"})
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet,
                                      show_progress=False)  # fmt: skip
        tokenizer.train_from_iterator(corpus, trainer=trainer)
        ids = {t: tokenizer.token_to_id(t) for t in specials}
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", ids["<s>"])]
        )
        config = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
        special_ids = {"bos": ids["<s>"], "eos": ids["</s>"], "pad": ids["</s>"], "unk": ids["<unk>"]}
    else:
        eot = "<|endoftext|>"
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=[eot],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(corpus, trainer=trainer)
        config = {"bos_token": eot, "eos_token": eot, "unk_token": eot}
        eot_id = tokenizer.token_to_id(eot)
        special_ids = {"bos": eot_id, "eos": eot_id, "pad": eot_id, "unk": eot_id}
    tokenizer.save(str(out_dir / "tokenizer.json"))
    tokenizer_config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": max_length, **config}
    _write_json(out_dir / "tokenizer_config.json", tokenizer_config)
    special_ids["vocab_size"] = tokenizer.get_vocab_size()
    return special_ids


def make_tiny_decoder(
    out_dir: str | os.PathLike[str],
    family: str = "gpt2",
    texts: Sequence[str] = (),
    seed: int = 0,
    hidden_size: int = 32,
    intermediate_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 2,
    max_position_embeddings: int = 512,
    vocab_size: int = 600,
) -> Path:
    """Write a tiny random decoder LM directory (`family` gpt2, gpt_neox or llama: config.json, model.safetensors of
    the base model, and a locally trained fast tokenizer, see `_train_decoder_tokenizer`) and return its path."""
    from transformers import GPT2Config, GPT2Model, GPTNeoXConfig, GPTNeoXModel, LlamaConfig, LlamaModel
    from transformers.utils import logging as hf_logging

    if family not in DECODER_FAMILIES:
        raise ValueError(f"family {family!r}: choose one of {', '.join(DECODER_FAMILIES)}")
    hf_logging.disable_progress_bar()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ids = _train_decoder_tokenizer(out, family, texts, vocab_size, max_position_embeddings)
    common = {"bos_token_id": ids["bos"], "eos_token_id": ids["eos"], "pad_token_id": ids["pad"]}
    if family == "gpt2":
        config = GPT2Config(vocab_size=ids["vocab_size"], n_embd=hidden_size, n_layer=num_layers, n_head=num_heads,
                            n_inner=intermediate_size, n_positions=max_position_embeddings,
                            architectures=["GPT2Model"], **common)  # fmt: skip
        model_class = GPT2Model
    elif family == "gpt_neox":
        config = GPTNeoXConfig(vocab_size=ids["vocab_size"], hidden_size=hidden_size, num_hidden_layers=num_layers,
                               num_attention_heads=num_heads, intermediate_size=intermediate_size,
                               max_position_embeddings=max_position_embeddings, architectures=["GPTNeoXModel"],
                               **common)  # fmt: skip
        model_class = GPTNeoXModel
    else:
        config = LlamaConfig(vocab_size=ids["vocab_size"], hidden_size=hidden_size, num_hidden_layers=num_layers,
                             num_attention_heads=num_heads, num_key_value_heads=max(1, num_heads // 2),
                             intermediate_size=intermediate_size, max_position_embeddings=max_position_embeddings,
                             architectures=["LlamaModel"], **common)  # fmt: skip
        model_class = LlamaModel
    return _save_seeded(model_class, config, seed, out)


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
    parser.add_argument(
        "--family", default="bert", choices=("bert", *DECODER_FAMILIES),
        help="bert (WordPiece encoder, default) or a decoder LM: gpt2, gpt_neox, llama (locally trained BPE)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    texts: list[str] = []
    if args.texts:
        texts = Path(args.texts).read_text(encoding="utf-8").splitlines()
    if args.family != "bert":
        out = make_tiny_decoder(
            args.out_dir, family=args.family, texts=texts, seed=args.seed, hidden_size=args.hidden_size,
            intermediate_size=args.intermediate_size, num_layers=args.layers, num_heads=args.heads,
        )  # fmt: skip
        print(out)
        return 0
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
