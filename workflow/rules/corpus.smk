# Corpus: raw sources -> cleaned sentence parts -> one parquet per dataset with sentence ids -> stats and Table 1.

PUNKT_KEYS = ("seed", "punkt_train_docs", "punkt_model")


rule train_punkt:
    input:
        source=source_input,
    output:
        "resources/punkt/{run}/{dataset}.json",
    log:
        "results/{run}/logs/corpus/punkt_{dataset}.log",
    benchmark:
        "results/{run}/benchmarks/corpus/punkt_{dataset}.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        dataset=lambda wc: corpus_dataset_config(
            wc.dataset, drop=("shards", "parts", "code")
        ),
        corpus={
            key: config["corpus"][key] for key in PUNKT_KEYS if key in config["corpus"]
        },
    script:
        "../scripts/train_punkt.py"


rule corpus_part:
    input:
        source=source_input,
        punkt="resources/punkt/{run}/{dataset}.json",
    output:
        part="results/{run}/corpus/{dataset}/part{part}.parquet",
        losses="results/{run}/corpus/{dataset}/part{part}.losses.tsv",
    log:
        "results/{run}/logs/corpus/{dataset}_part{part}.log",
    benchmark:
        "results/{run}/benchmarks/corpus/{dataset}_part{part}.tsv"
    conda:
        "../../envs/corpus.yaml"
    resources:
        mem_mb=4000,
    params:
        dataset=lambda wc: corpus_dataset_config(wc.dataset),
        corpus=config["corpus"],
    script:
        "../scripts/corpus_part.py"


rule corpus_dataset:
    input:
        parts=lambda wc: expand(
            "results/{{run}}/corpus/{{dataset}}/part{part}.parquet",
            part=parts_of(wc.dataset),
        ),
        losses=lambda wc: expand(
            "results/{{run}}/corpus/{{dataset}}/part{part}.losses.tsv",
            part=parts_of(wc.dataset),
        ),
    output:
        corpus="results/{run}/corpus/{dataset}.parquet",
        losses="results/{run}/corpus/{dataset}.losses.tsv",
    log:
        "results/{run}/logs/corpus/{dataset}.log",
    benchmark:
        "results/{run}/benchmarks/corpus/{dataset}.tsv"
    conda:
        "../../envs/corpus.yaml"
    resources:
        mem_mb=8000,
    params:
        dataset=lambda wc: corpus_dataset_config(wc.dataset),
        corpus=config["corpus"],
    script:
        "../scripts/corpus_dataset.py"


rule corpus_stats:
    input:
        expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
    output:
        stats="results/{run}/corpus/stats.tsv",
        metadata_counts="results/{run}/corpus/metadata_counts.tsv",
        table_md=report(
            "results/{run}/tables/table1.md",
            category="Tables",
            caption="../report/table1.rst",
        ),
        table_csv="results/{run}/tables/table1.csv",
    log:
        "results/{run}/logs/corpus/stats.log",
    benchmark:
        "results/{run}/benchmarks/corpus/stats.tsv"
    conda:
        "../../envs/corpus.yaml"
    script:
        "../scripts/corpus_stats.py"
