# Scan: token shards -> per-shard top K keys (GPU rule) -> exact merged top K per layer; sample activations.


rule make_shard:
    input:
        corpus="results/{run}/corpus/{dataset}.parquet",
    output:
        "results/{run}/shards/{dataset}/{shard}.parquet",
    log:
        "results/{run}/logs/shards/{dataset}/{shard}.log",
    benchmark:
        "results/{run}/benchmarks/shards/{dataset}/{shard}.tsv"
    conda:
        "../../envs/scan.yaml"
    params:
        n_shards=lambda wc: len(shards_of(wc.dataset)),
        model_dir=MODEL_DIR,
        max_length=config["model"]["max_length"],
        config_hash=stage_hash(config, "shards"),
    script:
        "../scripts/make_shard.py"


rule scan_shard:
    input:
        shard="results/{run}/shards/{dataset}/{shard}.parquet",
        model=lambda wc: [model_dir(wc.model)] if wc.model == "finetuned" else [],
        histogram_edges="results/{run}/records/{model}/histogram_edges.npz",
        features=features_input,
    output:
        acts="results/{run}/acts/{model}/{dataset}/{shard}.npz",
        top_tokens="results/{run}/acts/{model}/{dataset}/{shard}.toptokens.npz",
    log:
        "results/{run}/logs/scan/{model}/{dataset}/{shard}.log",
    benchmark:
        "results/{run}/benchmarks/scan/{model}/{dataset}/{shard}.tsv"
    conda:
        "../../envs/scan.yaml"
    threads: config["scan"]["threads"]
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=8000,
        runtime=120,
    params:
        model_dir=lambda wc: model_dir(wc.model),
        model=config["model"],
        scan=config["scan"],
        # token records of each neuron's top sentences, kept during the scan
        top_n=lambda wc: config["records"]["top_n"],
    script:
        "../scripts/scan_shard.py"


rule merge_topk:
    input:
        acts=[
            f"results/{{run}}/acts/{{model}}/{d}/{s}.npz"
            for d in DATASETS
            for s in shards_of(d)
        ],
        shards=[
            f"results/{{run}}/shards/{d}/{s}.parquet"
            for d in DATASETS
            for s in shards_of(d)
        ],
    output:
        "results/{run}/topk/{model}/layer{layer}.parquet",
    log:
        "results/{run}/logs/topk/{model}/layer{layer}.log",
    benchmark:
        "results/{run}/benchmarks/topk/{model}/layer{layer}.tsv"
    conda:
        "../../envs/scan.yaml"
    resources:
        mem_mb=8000,
    params:
        k=config["scan"]["k"],
        config_hash=stage_hash(config, "topk"),
    script:
        "../scripts/merge_topk.py"


rule sample_activations:
    input:
        sample="results/{run}/sample/sentences.parquet",
        features=features_input,
        model=lambda wc: [model_dir(wc.model)] if wc.model == "finetuned" else [],
    output:
        expand(
            "results/{{run}}/sample/{{model}}/{pooling}/layer{layer}.npy",
            pooling=POOLINGS,
            layer=LAYERS,
        ),
    log:
        "results/{run}/logs/sample/{model}_activations.log",
    benchmark:
        "results/{run}/benchmarks/sample/{model}_activations.tsv"
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
        poolings=POOLINGS,
    script:
        "../scripts/sample_activations.py"
