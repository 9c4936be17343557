# Explanation scores: how well each neuron's patterns, re-mined on 80% of its top K, predict its activations on the
# other 20% against negatives (a second random sample, disjoint from the background sample), next to controls
# (another neuron's patterns, sentence length, bag-of-words logistic regression). Per layer scores/layer{L}.parquet;
# tables/scores.{md,csv} and figures/scores.{png,pdf}. The scores block is checked when the DAG is built.
from neurotext.scores.settings import ScoreSettings  # noqa: E402

SCORES = ScoreSettings.from_config(config.get("scores"))

# Per-layer scores, the table and the figure (for `rule all`; the table and figure are also in `paper`).
SCORES_TARGETS = [
    *expand(f"{OUT}/scores/layer{{layer}}.parquet", layer=LAYERS),
    f"{OUT}/tables/scores.md",
    f"{OUT}/figures/scores.png",
]


rule scores_negatives:
    input:
        corpus=expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
        sample="results/{run}/sample/sentences.parquet",
    output:
        "results/{run}/scores/negatives.parquet",
    log:
        "results/{run}/logs/scores/negatives.log",
    conda:
        "../../envs/corpus.yaml"
    params:
        size=SCORES.negatives,
        seed=SCORES.negatives_seed,
    script:
        "../scripts/scores_negatives.py"


# The negatives' pooled activations, exactly as the sample's (rule sample_activations, same script).
rule scores_negative_activations:
    input:
        sample="results/{run}/scores/negatives.parquet",
        features=features_input,
    output:
        expand(
            "results/{{run}}/scores/negatives/base/{pooling}/layer{layer}.npy",
            pooling=[config["model"]["pooling"]],
            layer=LAYERS,
        ),
    log:
        "results/{run}/logs/scores/negative_activations.log",
    benchmark:
        "results/{run}/benchmarks/scores/negative_activations.tsv"
    conda:
        "../../envs/scan.yaml"
    threads: config["scan"]["threads"]
    resources:
        gpu=config["resources"]["gpu"],
        mem_mb=8000,
    params:
        model_dir=MODEL_DIR,
        model=config["model"],
        scan=config["scan"],
        poolings=[config["model"]["pooling"]],
    script:
        "../scripts/sample_activations.py"


rule scores_negative_sentences:
    input:
        negatives="results/{run}/scores/negatives.parquet",
        parses=[
            f"results/{{run}}/parses/{d}/{s}.parquet"
            for d in DATASETS
            for s in shards_of(d)
        ],
    output:
        "results/{run}/scores/negatives/sentences.parquet",
    log:
        "results/{run}/logs/scores/negative_sentences.log",
    conda:
        "../../envs/scores.yaml"
    script:
        "../scripts/scores_negative_sentences.py"


rule scores_layer:
    input:
        topk="results/{run}/topk/base/layer{layer}.parquet",
        sentences="results/{run}/patterns/sentences/layer{layer}.parquet",
        negative_sentences="results/{run}/scores/negatives/sentences.parquet",
        negative_acts=f"results/{{run}}/scores/negatives/base/{config['model']['pooling']}/layer{{layer}}.npy",
        corpus_metadata="results/{run}/patterns/corpus_metadata.parquet",
        kernels="results/{run}/patterns/kernels.txt",
    output:
        **(
            {"predictions": "results/{run}/scores/predictions/layer{layer}.parquet"}
            if SCORES.keep_predictions
            else {}
        ),
        scores="results/{run}/scores/layer{layer}.parquet",
        summary="results/{run}/scores/summary/layer{layer}.parquet",
    log:
        "results/{run}/logs/scores/layer{layer}.log",
    benchmark:
        "results/{run}/benchmarks/scores/layer{layer}.tsv"
    conda:
        "../../envs/scores.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        patterns=config.get("patterns", {}),
        scores=config.get("scores", {}),
    script:
        "../scripts/scores_layer.py"


rule scores_table:
    input:
        scores=expand("results/{{run}}/scores/layer{layer}.parquet", layer=LAYERS),
    output:
        md=report(
            "results/{run}/tables/scores.md",
            category="Tables",
            caption="../report/scores_table.rst",
        ),
        csv="results/{run}/tables/scores.csv",
    log:
        "results/{run}/logs/tables/scores.log",
    conda:
        "../../envs/scores.yaml"
    params:
        layers=LAYERS,
        headline=(
            "length-matched negatives" if SCORES.length_matched else "random negatives"
        ),
    script:
        "../scripts/scores_table.py"


rule scores_figure:
    input:
        scores=expand("results/{{run}}/scores/layer{layer}.parquet", layer=LAYERS),
    output:
        png=report(
            "results/{run}/figures/scores.png",
            category="Figures",
            caption="../report/scores_figure.rst",
        ),
        pdf="results/{run}/figures/scores.pdf",
    log:
        "results/{run}/logs/figures/scores.log",
    conda:
        "../../envs/scores.yaml"
    params:
        layers=LAYERS,
    script:
        "../scripts/scores_figure.py"
