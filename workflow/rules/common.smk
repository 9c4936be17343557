# Shared definitions: the package on the path, model dimensions, target lists. No logic beyond naming files.
import os
import sys

SRC = os.path.abspath(os.path.join(workflow.basedir, "src"))
sys.path.insert(0, SRC)

from neurotext.config import (  # noqa: E402
    config_hash,
    model_dims,
    prepare_job_environment,
    resolve_model_path,
)

prepare_job_environment(SRC)

RUN = config["run"]
OUT = f"results/{RUN}"
CONFIG_HASH = config_hash(config)
DATASETS = list(config["datasets"])
MODEL_DIR = str(resolve_model_path(config["model"]["path"]))
DIMS = model_dims(MODEL_DIR, config["model"]["site"])
LAYERS = list(range(1, DIMS.n_layers + 1))
POOLINGS = sorted({config["model"]["pooling"], "cls"})


wildcard_constraints:
    run=r"[^/]+",
    dataset="|".join(DATASETS),
    model="base|finetuned",
    layer=r"\d+",
    part=r"\d+",
    shard=r"\d+",
    pooling="max|cls|mean",


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


def all_targets():
    """Everything `snakemake` builds by default."""
    targets = [
        f"{OUT}/corpus/stats.tsv",
        f"{OUT}/tables/table1.md",
        f"{OUT}/provenance.json",
    ]
    targets += expand(f"{OUT}/topk/base/layer{{layer}}.parquet", layer=LAYERS)
    targets += expand(
        f"{OUT}/sample/base/{{pooling}}/layer{{layer}}.npy",
        pooling=POOLINGS,
        layer=LAYERS,
    )
    targets += expand(f"{OUT}/pages/layer{{layer}}.md", layer=LAYERS)
    targets += parse_outputs()
    targets += PATTERNS_TARGETS
    targets.append(f"{OUT}/relations/summary.csv")
    targets += FINETUNE_TARGETS
    targets += RECORDS_TARGETS
    targets.append(f"{OUT}/browser/index.html")
    targets += expand(
        f"{OUT}/figures/fig{{n}}.{{ext}}", n=[2, 3, 4], ext=["png", "pdf"]
    )
    return targets


# Used by workflow/rules/corpus.smk.
def corpus_dataset_config(dataset, drop=("shards",)):
    """The dataset block for corpus rules, without keys that do not change their output (so editing them reruns
    nothing here)."""
    return {
        key: value for key, value in dataset_config(dataset).items() if key not in drop
    }


# Used by workflow/rules/scan.smk.
def histogram_edges_input(wildcards):
    """The records stage's histogram edges (each shard counts every neuron's histogram into them) when
    workflow/rules/records.smk is included, else none."""
    if "RECORDS_TARGETS" not in globals():
        return []
    return [f"results/{wildcards.run}/records/{wildcards.model}/histogram_edges.npz"]


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
