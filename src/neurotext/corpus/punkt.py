"""Punkt parameters of a dataset: ``resources/punkt/{run}/{dataset}.json`` (JSON, never pickled)."""

from __future__ import annotations

import heapq
import logging

import numpy as np

from neurotext.cleaning import pretrained_punkt_parameters, punkt_parameters_to_json, train_punkt_parameters
from neurotext.corpus.common import BATCH_ROWS
from neurotext.ids import splitmix64
from neurotext.io import write_json
from neurotext.loaders.base import Document, load_documents
from neurotext.loaders.lines import sentence_per_line
from neurotext.logs import progress

log = logging.getLogger(__name__)

#: Punkt training reads at most this many characters in all (~0.5M characters a CPU second), spread over the sampled
#: documents (at most PUNKT_MAX_CHARS_PER_DOC each: a whole book adds time, not knowledge).
PUNKT_TRAIN_CHARS_BUDGET = 10_000_000
PUNKT_MAX_CHARS_PER_DOC = 20_000
#: Pre-split documents (Brown) are never split by Punkt; their short training text only keeps the file valid.
PUNKT_PRESPLIT_CHARS_PER_DOC = 2_000
PUNKT_CHOICES = ("auto", "train", "english")


def _scores(indices: np.ndarray, seed: int) -> np.ndarray:
    """The seeded sampling score (uint64) of document indices: splitmix64(index ^ seed)."""
    return splitmix64(np.asarray(indices, dtype=np.uint64) ^ np.uint64(seed))


def _training_text(document: Document, max_chars: int) -> str:
    """The start of a document's text for Punkt training (pre-split documents: their sentences joined)."""
    if document.text is not None:
        return document.text[:max_chars]
    return " ".join(document.sentences or ())[: min(max_chars, PUNKT_PRESPLIT_CHARS_PER_DOC)]


def sample_training_texts(source: str, dataset: dict, n_docs: int, seed: int) -> list[str]:
    """Texts of the `n_docs` documents with the smallest splitmix64(doc_index ^ seed), in document order, each cut
    to its share of PUNKT_TRAIN_CHARS_BUDGET (1,000 to PUNKT_MAX_CHARS_PER_DOC characters). Streams the source;
    holds only the sample."""
    max_chars = min(PUNKT_MAX_CHARS_PER_DOC, max(1_000, PUNKT_TRAIN_CHARS_BUDGET // max(n_docs, 1)))
    heap: list[tuple[int, int, str]] = []  # (-score, doc_index, text): a max-heap of the kept scores
    block_scores = np.empty(0, dtype=np.uint64)
    for doc_index, item in enumerate(progress(load_documents(source, dataset), desc="punkt sample", unit="doc")):
        if doc_index % BATCH_ROWS == 0:
            block_scores = _scores(np.arange(doc_index, doc_index + BATCH_ROWS), seed)
        if not isinstance(item, Document):
            continue
        score = int(block_scores[doc_index % BATCH_ROWS])
        if len(heap) < n_docs:
            heapq.heappush(heap, (-score, doc_index, _training_text(item, max_chars)))
        elif score < -heap[0][0]:
            heapq.heapreplace(heap, (-score, doc_index, _training_text(item, max_chars)))
    return [text for _, _, text in sorted(heap, key=lambda entry: entry[1])]


def train_punkt(source: str, dataset: dict, corpus: dict, out: str) -> None:
    """Write the Punkt parameters of `dataset` to `out` (JSON).

    `corpus.punkt_model`: ``auto`` (default: NLTK's pretrained English model when its data is installed, else
    trained), ``train`` (always train here) or ``english`` (pretrained, an error when missing). Training is
    unsupervised (`PunktTrainer`) on a seeded sample of `corpus.punkt_train_docs` documents (`corpus.seed`).
    Pre-split sources (Brown) are trained on their joined sentences, so the file is always valid; a dataset in line
    mode (`datasets.<name>.sentence_per_line`) gets empty parameters without reading its source.
    """
    name = dataset.get("name", "?")
    choice = corpus.get("punkt_model") or "auto"
    if choice not in PUNKT_CHOICES:
        raise ValueError(f"corpus.punkt_model = {choice!r}: use one of {', '.join(PUNKT_CHOICES)}")
    if sentence_per_line(source, dataset):
        from nltk.tokenize.punkt import PunktParameters

        log.info("%s: sentence_per_line: every line is a sentence, Punkt is not used", name)
        write_json(out, punkt_parameters_to_json(PunktParameters(), "unused:sentence_per_line"))
        return
    if choice in ("auto", "english"):
        pretrained = pretrained_punkt_parameters("english")
        if pretrained is not None:
            log.info("%s: using NLTK's pretrained English Punkt model", name)
            write_json(out, punkt_parameters_to_json(pretrained, "pretrained:english"))
            return
        if choice == "english":
            raise ValueError(
                "corpus.punkt_model = 'english' but NLTK's punkt_tab data is not installed; run "
                "`python -m nltk.downloader punkt_tab` where the network allows, or set corpus.punkt_model: train"
            )
    n_docs = int(corpus.get("punkt_train_docs") or 5000)
    seed = int(corpus.get("seed") or 0)
    texts = sample_training_texts(source, dataset, n_docs, seed)
    params = train_punkt_parameters(texts)
    characters = sum(len(text) for text in texts)
    log.info(
        "%s: trained Punkt on %d documents (%d characters): %d abbreviations, %d collocations",
        name,
        len(texts),
        characters,
        len(params.abbrev_types),
        len(params.collocations),
    )
    write_json(out, punkt_parameters_to_json(params, "trained", documents=len(texts), characters=characters, seed=seed))
