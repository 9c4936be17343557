"""The fine-tuning experiment (paper section 4.4, Table 3): how far fine-tuning moves each sentence's activations.

The paper fine-tunes BERT on Reuters category classification and measures, for 10,000 sentences each of Reuters
train, Reuters test and Sentiment140, the mean Manhattan and Euclidean distance between a sentence's 9,216-dim
activation vector (12 layers x 768 neurons) before and after fine-tuning: text closer to the fine-tuning data moves
more. Stages, each a rule, meeting only through files under `results/{run}/finetune/` (paths, schemas and readers in
`neurotext.artifacts.finetune`); one module per concern:

1. `split.split_labelled` -> `labelled.parquet` (`LABELLED_SCHEMA`): the labelled sentences of `finetune.dataset`,
   their label (the metadata column `finetune.label`; multi-label values joined by '|' are handled by
   `finetune.multi_label`) and their part, train or holdout. The held-out part is the dataset's own split column
   (`finetune.holdout.column`, e.g. Reuters' LEWISSPLIT train/test) when it has values, else a seeded,
   document-level split (`holdout.fraction` of each class's documents, so no document is on both sides). Classes
   with fewer than `min_class_examples` training examples are dropped; at most `max_train_examples` /
   `max_holdout_examples` examples are kept (seeded choice).
2. `train.finetune_model` -> `model/` (Hugging Face `save_pretrained` of the encoder with its classification head,
   plus the tokenizer; written to a temporary directory beside it and renamed, so a killed run leaves no model) and
   `metrics.json` (held-out accuracy before training and after each epoch, the chance rate). Sequence
   classification with the paper's hyper-parameters by config: batch size, dropout, Adam, learning rate, epochs.
3. `split.eval_sentences` -> `eval/sentences.parquet` (`EVAL_SCHEMA`): N sentences (`eval.n`, seeded) each of the
   training part, the held-out part and the out-of-domain dataset (`eval.out_of_domain`). Their activations before
   and after fine-tuning come from `neurotext.scan.sample_activations` (the scan's own path: same tokenization,
   site, pooling and batch plan) as `eval/{model}/{pooling}/layer{L}.npy`.
4. `distances.write_distances` -> `distances.parquet` (`DISTANCES_SCHEMA`: per set, per layer and
   over all layers, mean Manhattan and Euclidean distance) and `sentence_distances.parquet` (per sentence).
5. `neurons.neuron_changes` -> `neurons.parquet` (`NEURONS_SCHEMA`): per neuron, the mean absolute change of its
   activation over the sample and over each evaluation set, and how its top set moved: the Jaccard overlap of its
   top K' sample sentences before and after (`overlap.source: sample`, from `sample/{model}/{pooling}/layer{L}.npy`)
   or of its corpus top K (`overlap.source: corpus`, from `topk/{base,finetuned}/layer{L}.parquet`).
6. `table.write_table3` -> `tables/table3.md` (ours beside the paper's numbers, plus per-layer distances and the
   neurons that moved most) and `tables/table3.csv`.

Settings: `settings.FinetuneSettings` (the config block validated; the config schema holds the defaults).

Distances, exactly: for sentence s with pooled activations a_L(s) (before) and b_L(s) (after) of layer L, float32
[n_neurons], d_L(s) = b_L(s) - a_L(s) in float64; Manhattan_L(s) = sum |d_L(s)|, Euclidean_L(s) = sqrt(sum d_L(s)^2);
over all layers (the paper's vector: layers concatenated) Manhattan(s) = sum_L Manhattan_L(s) and
Euclidean(s) = sqrt(sum_L Euclidean_L(s)^2). Tables report means over the set's sentences, in activation units.

Determinism: fixed seeds (data order, dropout, head initialisation), `torch.use_deterministic_algorithms` (warn
only), torch threads from config. Same machine, threads and config -> same bytes (tested); across thread counts,
machines or devices the fine-tuned weights can differ in the last bits and drift apart over the steps, so distances
from different machines agree to a tolerance, not byte for byte.
"""

from __future__ import annotations

from neurotext.artifacts.finetune import (
    DISTANCES_SCHEMA,
    EVAL_SCHEMA,
    EVAL_SETS,
    LABEL_SEPARATOR,
    LABELLED_SCHEMA,
    NEURONS_SCHEMA,
    PARTS,
    SENTENCE_DISTANCES_SCHEMA,
    LabelledRows,
    read_labelled,
)
from neurotext.finetune.distances import (
    SentenceDistances,
    activation_distances,
    iter_layers,
    load_layer,
    write_distances,
)
from neurotext.finetune.neurons import (
    dominant_dataset,
    jaccard_rows,
    neuron_changes,
    read_topk_sets,
    top_sets,
)
from neurotext.finetune.settings import (
    DROPOUT_SCOPES,
    MULTI_LABEL_MODES,
    OPTIMIZERS,
    OVERLAP_SOURCES,
    UNITS,
    EvalSettings,
    FinetuneSettings,
    HoldoutSettings,
    OverlapSettings,
    check_finetune_config,
)
from neurotext.finetune.split import (
    choose_seeded,
    eval_sentences,
    parse_labels,
    seeded_order,
    split_documents,
    split_labelled,
)
from neurotext.finetune.table import (
    LENGTH_BINS,
    PAPER_TABLE3,
    length_matched_section,
    ordering_verdict,
    write_table3,
)
from neurotext.finetune.train import (
    EvalResult,
    Examples,
    TrainingReport,
    atomic_directory,
    build_examples,
    chance_rate,
    deterministic_torch,
    epoch_batches,
    evaluate,
    finetune_model,
    load_classifier,
    train_classifier,
)

__all__ = [
    "DISTANCES_SCHEMA", "DROPOUT_SCOPES", "EVAL_SCHEMA", "EVAL_SETS", "LABELLED_SCHEMA", "LABEL_SEPARATOR",
    "LENGTH_BINS", "MULTI_LABEL_MODES", "NEURONS_SCHEMA", "OPTIMIZERS", "OVERLAP_SOURCES", "PAPER_TABLE3", "PARTS",
    "SENTENCE_DISTANCES_SCHEMA", "UNITS", "EvalResult", "EvalSettings", "Examples", "FinetuneSettings",
    "HoldoutSettings", "LabelledRows", "OverlapSettings", "SentenceDistances", "TrainingReport",
    "activation_distances", "atomic_directory", "build_examples", "chance_rate", "check_finetune_config",
    "choose_seeded", "deterministic_torch", "dominant_dataset", "epoch_batches", "eval_sentences", "evaluate",
    "finetune_model", "iter_layers", "jaccard_rows", "length_matched_section", "load_classifier", "load_layer",
    "neuron_changes", "ordering_verdict", "parse_labels", "read_labelled", "read_topk_sets", "seeded_order",
    "split_documents", "split_labelled", "top_sets", "train_classifier", "write_distances", "write_table3",
]  # fmt: skip
