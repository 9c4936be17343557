# Shared definitions: the package on the path, model dimensions, target lists. No logic beyond naming files.
import os
import sys

SRC = os.path.abspath(os.path.join(workflow.basedir, "src"))
sys.path.insert(0, SRC)

from neurotext.config import (  # noqa: E402
    ConfigError,
    config_hash,
    model_dims,
    prepare_job_environment,
    resolve_model_path,
)
from neurotext.fetch import dataset_source  # noqa: E402
from neurotext.hashing import stage_hash  # noqa: E402

prepare_job_environment(SRC)

RUN = config["run"]
OUT = f"results/{RUN}"
CONFIG_HASH = config_hash(config)
DATASETS = list(config["datasets"])
# The model is resolved only when the config has a `model:` block, and a model that cannot be resolved stops only
# the targets that need it: the corpus stage and Table 1 build without one (the Snakefile includes the model's
# stages only when HAS_MODEL; asking for their outputs then raises MODEL_ERROR, naming model.path).
HAS_MODEL, MODEL_ERROR = False, None
if config.get("model"):
    try:
        MODEL_DIR = str(resolve_model_path(config["model"]["path"]))
        DIMS = model_dims(
            MODEL_DIR, config["model"]["site"], config["model"], config.get("sae")
        )
        HAS_MODEL = True
    except ConfigError as error:
        MODEL_ERROR = error
if HAS_MODEL:
    LAYERS = list(DIMS.layers)  # model.layers (default: every layer)
    # The run's pooling and the relations' (schema default cls; a decoder has no [CLS]: set relations.pooling).
    POOLINGS = sorted({config["model"]["pooling"], config["relations"]["pooling"]})


wildcard_constraints:
    run=r"[^/]+",
    dataset="|".join(DATASETS),
    model="base|finetuned",
    layer=r"\d+",
    part=r"\d+",
    shard=r"\d+",
    pooling="[a-z]+",  # the values: neurotext.encoder.POOLINGS (checked with the config)


def dataset_config(dataset):
    """The config block of one dataset, with its name added."""
    return {"name": dataset, **config["datasets"][dataset]}


def parts_of(dataset):
    return range(int(config["datasets"][dataset].get("parts", 1)))


def shards_of(dataset):
    return range(int(config["datasets"][dataset].get("shards", 1)))


def model_dir(model):
    """Model directory for the {model} wildcard: the configured model, or the fine-tuned one."""
    return MODEL_DIR if model == "base" else f"{OUT}/finetune/model"


def model_required(wildcards=None):
    """Input function of the targets that need the model when it cannot be resolved: raises its error."""
    raise MODEL_ERROR


def all_targets():
    """Everything `snakemake` builds by default (a config without `model:` builds the corpus and Table 1)."""
    if MODEL_ERROR is not None:
        raise MODEL_ERROR
    targets = [
        f"{OUT}/corpus/stats.tsv",
        f"{OUT}/tables/table1.md",
    ]
    if not HAS_MODEL:
        return targets
    targets.append(f"{OUT}/provenance.json")
    targets += expand(f"{OUT}/topk/base/layer{{layer}}.parquet", layer=LAYERS)
    targets += expand(
        f"{OUT}/sample/base/{{pooling}}/layer{{layer}}.npy",
        pooling=POOLINGS,
        layer=LAYERS,
    )
    targets += expand(f"{OUT}/pages/layer{{layer}}.md", layer=LAYERS)
    targets += parse_outputs()
    targets += PATTERNS_TARGETS
    targets += SCORES_TARGETS
    targets += COMPARE_TARGETS
    targets += RELATIONS_TARGETS
    targets += FINETUNE_TARGETS
    targets += RECORDS_TARGETS
    targets.append(f"{OUT}/browser/index.html")
    return targets


# Used by workflow/rules/corpus.smk.
def source_input(wildcards):
    """The dataset's source (`datasets.<name>.path`): a missing one is reported by that key, not as a missing input."""
    return dataset_source(config, wildcards.dataset)


def corpus_dataset_config(dataset, drop=("shards",)):
    """The dataset block for corpus rules, without keys that do not change their output (so editing them reruns
    nothing here)."""
    return {
        key: value for key, value in dataset_config(dataset).items() if key not in drop
    }


# Used by workflow/rules/scan.smk.
def features_input(wildcards):
    """The SAEs the scan reads when the workflow trains them (model.features: sae with model.sae =
    results/{run}/sae and the layers in sae.layers; workflow/rules/sae.smk), else none.
    """
    model = config["model"]
    trained = config.get("sae") or {}
    sae_dir = os.path.normpath(str(model.get("sae")))
    if model.get("features") != "sae" or sae_dir != f"results/{wildcards.run}/sae":
        return []
    return [
        f"results/{wildcards.run}/sae/layer{layer}/{name}"
        for layer in LAYERS
        if layer in trained.get("layers", [])
        for name in ("cfg.json", "sae_weights.safetensors")
    ]


# Used by workflow/rules/parse.smk.
def parse_outputs():
    """Every parse file of the run (for `rule all`)."""
    return [f"{OUT}/parses/{d}/{s}.parquet" for d in DATASETS for s in shards_of(d)]


# Used by workflow/rules/relations.smk.
def next_layer_topk(wildcards):
    """The next layer's top K (for the cross-layer overlap), none for the last layer."""
    layer = int(wildcards.layer)
    return (
        [f"results/{wildcards.run}/topk/base/layer{layer + 1}.parquet"]
        if layer < LAYERS[-1]
        else []
    )
