# Scan: token shards -> per-shard top K keys (GPU rule) -> exact merged top K per layer; sample activations.


rule make_shard:
    input:
        corpus="results/{run}/corpus/{dataset}.parquet",
    output:
        "results/{run}/shards/{dataset}/{shard}.parquet",
    params:
        n_shards=lambda wc: len(shards_of(wc.dataset)),
        model_dir=MODEL_DIR,
        max_length=config["model"]["max_length"],
        config_hash=CONFIG_HASH,
    log:
        "results/{run}/logs/shards/{dataset}/{shard}.log",
    conda:
        "../../envs/scan.yaml"
    script:
        "../scripts/make_shard.py"


def histogram_edges_input(wildcards):
    """The records stage's histogram edges (each shard counts every neuron's histogram into them) when
    workflow/rules/records.smk is included, else none."""
    if "RECORDS_TARGETS" not in globals():
        return []
    return [f"results/{wildcards.run}/records/{wildcards.model}/histogram_edges.npz"]


rule scan_shard:
    input:
        shard="results/{run}/shards/{dataset}/{shard}.parquet",
        model=lambda wc: [model_dir(wc.model)] if wc.model == "finetuned" else [],
        histogram_edges=histogram_edges_input,
    output:
        "results/{run}/acts/{model}/{dataset}/{shard}.npz",
    params:
        model_dir=lambda wc: model_dir(wc.model),
        model=config["model"],
        scan=config["scan"],
    log:
        "results/{run}/logs/scan/{model}/{dataset}/{shard}.log",
    benchmark:
        "results/{run}/benchmarks/scan/{model}/{dataset}/{shard}.tsv"
    threads: config["scan"]["threads"]
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/scan.yaml"
    script:
        "../scripts/scan_shard.py"


rule merge_topk:
    input:
        acts=lambda wc: [
            f"{OUT}/acts/{wc.model}/{d}/{s}.npz" for d in DATASETS for s in shards_of(d)
        ],
        shards=[f"{OUT}/shards/{d}/{s}.parquet" for d in DATASETS for s in shards_of(d)],
    output:
        "results/{run}/topk/{model}/layer{layer}.parquet",
    params:
        k=config["scan"]["k"],
        config_hash=CONFIG_HASH,
    log:
        "results/{run}/logs/topk/{model}/layer{layer}.log",
    resources:
        mem_mb=8000,
    conda:
        "../../envs/scan.yaml"
    script:
        "../scripts/merge_topk.py"


rule sample_activations:
    input:
        sample="results/{run}/sample/sentences.parquet",
        model=lambda wc: [model_dir(wc.model)] if wc.model == "finetuned" else [],
    output:
        expand(
            "results/{{run}}/sample/{{model}}/{pooling}/layer{layer}.npy",
            pooling=POOLINGS,
            layer=LAYERS,
        ),
    params:
        model_dir=lambda wc: model_dir(wc.model),
        model=config["model"],
        scan=config["scan"],
        poolings=POOLINGS,
    log:
        "results/{run}/logs/sample/{model}_activations.log",
    threads: config["scan"]["threads"]
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=8000,
    conda:
        "../../envs/scan.yaml"
    script:
        "../scripts/sample_activations.py"
