# The fine-tuning experiment (paper section 4.4, Table 3): fine-tune the encoder on a labelled dataset, then measure
# how far each sentence's activations move and how each neuron's top set changes. Off when the config has no
# `finetune:` block (FINETUNE_TARGETS is then empty). The block is checked when the DAG is built.
from neurotext.finetune import check_finetune_config  # noqa: E402

FINETUNE = check_finetune_config(
    config.get("finetune"), DATASETS, config["sample"]["size"]
)
FINETUNE_TARGETS = (
    [] if FINETUNE is None else [f"{OUT}/tables/table3.md", f"{OUT}/tables/table3.csv"]
)
# overlap.source: corpus compares each neuron's corpus top K before and after (a full rescan of the corpus with
# the fine-tuned model, topk/finetuned/); sample (default) its top k among the sample's activations.
FINETUNE_TOPK = FINETUNE is not None and FINETUNE.overlap.source == "corpus"


rule finetune_split:
    input:
        corpus=lambda wc: f"results/{wc.run}/corpus/{FINETUNE.dataset}.parquet",
    output:
        "results/{run}/finetune/labelled.parquet",
    log:
        "results/{run}/logs/finetune/split.log",
    benchmark:
        "results/{run}/benchmarks/finetune/split.tsv"
    conda:
        "../../envs/scan.yaml"
    params:
        finetune=config.get("finetune"),
    script:
        "../scripts/finetune_split.py"


rule finetune_train:
    input:
        labelled="results/{run}/finetune/labelled.parquet",
    output:
        model=directory("results/{run}/finetune/model"),
        metrics="results/{run}/finetune/metrics.json",
    log:
        "results/{run}/logs/finetune/train.log",
    benchmark:
        "results/{run}/benchmarks/finetune/train.tsv"
    conda:
        "../../envs/scan.yaml"
    threads: FINETUNE.threads if FINETUNE is not None else 1  # the rule only runs with a finetune block
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=8000,
        runtime=240,
    params:
        model_dir=MODEL_DIR,
        finetune=config.get("finetune"),
        model=config["model"],
        scan=config["scan"],
    script:
        "../scripts/finetune_train.py"


rule finetune_eval_sentences:
    input:
        labelled="results/{run}/finetune/labelled.parquet",
        out_of_domain=lambda wc: (
            f"results/{wc.run}/corpus/{FINETUNE.eval.out_of_domain}.parquet"
        ),
    output:
        "results/{run}/finetune/eval/sentences.parquet",
    log:
        "results/{run}/logs/finetune/eval_sentences.log",
    benchmark:
        "results/{run}/benchmarks/finetune/eval_sentences.tsv"
    conda:
        "../../envs/scan.yaml"
    params:
        finetune=config.get("finetune"),
    script:
        "../scripts/finetune_eval_sentences.py"


rule finetune_activations:
    input:
        sentences="results/{run}/finetune/eval/sentences.parquet",
        model=lambda wc: [model_dir(wc.model)] if wc.model == "finetuned" else [],
    output:
        expand(
            "results/{{run}}/finetune/eval/{{model}}/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
    log:
        "results/{run}/logs/finetune/activations_{model}.log",
    benchmark:
        "results/{run}/benchmarks/finetune/activations_{model}.tsv"
    conda:
        "../../envs/scan.yaml"
    threads: config["scan"]["threads"]
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=8000,
    params:
        model_dir=lambda wc: model_dir(wc.model),
        model=config["model"],
        scan=config["scan"],
        poolings=[config["model"]["pooling"]],
    script:
        "../scripts/finetune_activations.py"


rule finetune_distances:
    input:
        sentences="results/{run}/finetune/eval/sentences.parquet",
        before=expand(
            "results/{{run}}/finetune/eval/base/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
        after=expand(
            "results/{{run}}/finetune/eval/finetuned/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
    output:
        distances="results/{run}/finetune/distances.parquet",
        sentences="results/{run}/finetune/sentence_distances.parquet",
    log:
        "results/{run}/logs/finetune/distances.log",
    benchmark:
        "results/{run}/benchmarks/finetune/distances.tsv"
    conda:
        "../../envs/scan.yaml"
    resources:
        mem_mb=4000,
    params:
        layers=LAYERS,
    script:
        "../scripts/finetune_distances.py"


rule finetune_neurons:
    input:
        sample="results/{run}/sample/sentences.parquet",
        sample_before=expand(
            "results/{{run}}/sample/base/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
        sample_after=expand(
            "results/{{run}}/sample/finetuned/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
        sentences="results/{run}/finetune/eval/sentences.parquet",
        eval_before=expand(
            "results/{{run}}/finetune/eval/base/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
        eval_after=expand(
            "results/{{run}}/finetune/eval/finetuned/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
        topk_before=expand(
            "results/{{run}}/topk/base/layer{layer}.parquet",
            layer=LAYERS if FINETUNE_TOPK else [],
        ),
        topk_after=expand(
            "results/{{run}}/topk/finetuned/layer{layer}.parquet",
            layer=LAYERS if FINETUNE_TOPK else [],
        ),
    output:
        "results/{run}/finetune/neurons.parquet",
    log:
        "results/{run}/logs/finetune/neurons.log",
    benchmark:
        "results/{run}/benchmarks/finetune/neurons.tsv"
    conda:
        "../../envs/scan.yaml"
    resources:
        mem_mb=4000,
    params:
        layers=LAYERS,
        finetune=config.get("finetune"),
        dataset_codes={name: config["datasets"][name]["code"] for name in DATASETS},
    script:
        "../scripts/finetune_neurons.py"


rule table3:
    input:
        distances="results/{run}/finetune/distances.parquet",
        sentence_distances="results/{run}/finetune/sentence_distances.parquet",
        neurons="results/{run}/finetune/neurons.parquet",
        metrics="results/{run}/finetune/metrics.json",
        sample="results/{run}/sample/sentences.parquet",
    output:
        md=report(
            "results/{run}/tables/table3.md",
            category="Tables",
            caption="../report/table3.rst",
        ),
        csv="results/{run}/tables/table3.csv",
    log:
        "results/{run}/logs/finetune/table3.log",
    benchmark:
        "results/{run}/benchmarks/finetune/table3.tsv"
    conda:
        "../../envs/scan.yaml"
    params:
        finetune=config.get("finetune"),
        model=config["model"],
    script:
        "../scripts/table3.py"
