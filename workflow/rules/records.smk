# Neuron records: histogram edges fixed from the sample before the scan (scan_shard counts each neuron's
# histogram into them), the exact merged histogram per layer, and token-level activations of each neuron's top
# `records.top_n` sentences and quantile samples, re-running only those sentences: one job for all layers, each
# sentence run once up to the deepest layer that wants it (a third cheaper than a job per layer on the demo). The
# records block is checked (and its schema defaults filled) by neurotext.validate before any job; each job builds
# its settings from the block it receives.

# Token-level records and merged histograms of every layer of the base model (for `rule all`).
RECORDS_TARGETS = [
    *expand(f"{OUT}/records/base/layer{{layer}}.parquet", layer=LAYERS),
    *expand(f"{OUT}/records/base/hist_layer{{layer}}.parquet", layer=LAYERS),
]


rule records_histogram_edges:
    input:
        expand(
            "results/{{run}}/sample/{{model}}/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
    output:
        "results/{run}/records/{model}/histogram_edges.npz",
    log:
        "results/{run}/logs/records/{model}/histogram_edges.log",
    benchmark:
        "results/{run}/benchmarks/records/{model}/histogram_edges.tsv"
    conda:
        "../../envs/scan.yaml"
    params:
        histogram=config["records"]["histogram"],
    script:
        "../scripts/records_histogram_edges.py"


rule records_histograms:
    input:
        acts=lambda wc: [
            f"results/{wc.run}/acts/{wc.model}/{d}/{s}.npz"
            for d in DATASETS
            for s in shards_of(d)
        ],
    output:
        expand(
            "results/{{run}}/records/{{model}}/hist_layer{layer}.parquet", layer=LAYERS
        ),
    log:
        "results/{run}/logs/records/{model}/histograms.log",
    benchmark:
        "results/{run}/benchmarks/records/{model}/histograms.tsv"
    conda:
        "../../envs/scan.yaml"
    resources:
        mem_mb=4000,
    params:
        layers=LAYERS,
    script:
        "../scripts/records_histograms.py"


rule records_layers:
    input:
        topk=expand("results/{{run}}/topk/{{model}}/layer{layer}.parquet", layer=LAYERS),
        sample="results/{run}/sample/sentences.parquet",
        sample_acts=expand(
            "results/{{run}}/sample/{{model}}/{pooling}/layer{layer}.npy",
            pooling=config["model"]["pooling"],
            layer=LAYERS,
        ),
        corpus=expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
        model=lambda wc: [model_dir(wc.model)] if wc.model == "finetuned" else [],
        top_tokens=lambda wc: [
            f"results/{wc.run}/acts/{wc.model}/{d}/{s}.toptokens.npz"
            for d in DATASETS
            for s in shards_of(d)
        ],
        shards=lambda wc: [
            f"results/{wc.run}/shards/{d}/{s}.parquet"
            for d in DATASETS
            for s in shards_of(d)
        ],
    output:
        expand("results/{{run}}/records/{{model}}/layer{layer}.parquet", layer=LAYERS),
    log:
        "results/{run}/logs/records/{model}/layers.log",
    benchmark:
        "results/{run}/benchmarks/records/{model}/layers.tsv"
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
        records=config["records"],
        layers=LAYERS,
    script:
        "../scripts/records_layers.py"
