# Patterns (the paper's step 3): each neuron's top sentences abstracted into words by POS class, skip-n-grams,
# POS n-grams, parse subtrees and metadata, contrasted with the sample (and the corpus for metadata). Corpus
# metadata counts once; each layer's sentences gathered once; neuron ranges in parallel; merged per layer; Table 2
# and Figure 1 for the chosen neurons. The patterns and table2 blocks are checked when the DAG is built.
from neurotext.patterns import patterns_plan  # noqa: E402

# The checked patterns and table2 blocks, the neuron ranges and Table 2's neurons (src/neurotext/patterns/plan.py).
PATTERNS_PLAN = patterns_plan(config, LAYERS, DIMS.n_neurons)


wildcard_constraints:
    start=r"\d{5}",
    end=r"\d{5}",


# Merged patterns and profiles of every layer, Table 2 and Figure 1 (for `rule all`).
PATTERNS_TARGETS = [
    *expand(f"{OUT}/patterns/layer{{layer}}.parquet", layer=LAYERS),
    *expand(f"{OUT}/profiles/layer{{layer}}.parquet", layer=LAYERS),
    f"{OUT}/tables/table2.md",
    f"{OUT}/figures/fig1.png",
]


# The numba kernels of mining and scoring, compiled once into numba's cache before the jobs that use them (a fresh
# checkout's first patterns and scores jobs would otherwise both compile them; src/neurotext/mining/kernels.py).
rule mining_kernels:
    output:
        "results/{run}/patterns/kernels.txt",
    log:
        "results/{run}/logs/patterns/kernels.log",
    benchmark:
        "results/{run}/benchmarks/patterns/kernels.tsv"
    priority: 1  # first among ready jobs: it has no inputs, and the patterns and scores jobs wait for it
    conda:
        "../../envs/mine.yaml"
    script:
        "../scripts/mining_kernels.py"


rule patterns_corpus_metadata:
    input:
        expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
    output:
        "results/{run}/patterns/corpus_metadata.parquet",
    log:
        "results/{run}/logs/patterns/corpus_metadata.log",
    benchmark:
        "results/{run}/benchmarks/patterns/corpus_metadata.tsv"
    conda:
        "../../envs/mine.yaml"
    script:
        "../scripts/patterns_corpus_metadata.py"


rule patterns_sentences:
    input:
        topk="results/{run}/topk/base/layer{layer}.parquet",
        parses=[
            f"results/{{run}}/parses/{d}/{s}.parquet"
            for d in DATASETS
            for s in shards_of(d)
        ],
        corpus=expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
        sample="results/{run}/sample/sentences.parquet",
    output:
        "results/{run}/patterns/sentences/layer{layer}.parquet",
    log:
        "results/{run}/logs/patterns/sentences_layer{layer}.log",
    benchmark:
        "results/{run}/benchmarks/patterns/sentences_layer{layer}.tsv"
    conda:
        "../../envs/mine.yaml"
    resources:
        mem_mb=8000,
    script:
        "../scripts/patterns_sentences.py"


rule patterns_range:
    input:
        topk="results/{run}/topk/base/layer{layer}.parquet",
        sentences="results/{run}/patterns/sentences/layer{layer}.parquet",
        corpus_metadata="results/{run}/patterns/corpus_metadata.parquet",
        kernels="results/{run}/patterns/kernels.txt",
    output:
        # one file per pattern kind, metadata and profile (src/neurotext/patterns/plan.py)
        **PATTERNS_PLAN.range_outputs(),
    log:
        "results/{run}/logs/patterns/layer{layer}/n{start}-{end}.log",
    benchmark:
        "results/{run}/benchmarks/patterns/layer{layer}/n{start}-{end}.tsv"
    conda:
        "../../envs/mine.yaml"
    resources:
        mem_mb=4000,
        runtime=240,
    params:
        patterns=config["patterns"],  # the validated block (schema defaults filled)
    script:
        "../scripts/patterns_range.py"


rule patterns_merge:
    input:
        # every range's file of each pattern kind, metadata and profile
        **PATTERNS_PLAN.merge_inputs(),
    output:
        patterns="results/{run}/patterns/layer{layer}.parquet",
        profiles="results/{run}/profiles/layer{layer}.parquet",
        metadata="results/{run}/profiles/metadata/layer{layer}.parquet",
    log:
        "results/{run}/logs/patterns/merge_layer{layer}.log",
    benchmark:
        "results/{run}/benchmarks/patterns/merge_layer{layer}.tsv"
    conda:
        "../../envs/mine.yaml"
    script:
        "../scripts/patterns_merge.py"


rule table2:
    input:
        patterns=expand(
            "results/{{run}}/patterns/layer{layer}.parquet",
            layer=PATTERNS_PLAN.table2_layers,
        ),
        profiles=expand(
            "results/{{run}}/profiles/layer{layer}.parquet",
            layer=PATTERNS_PLAN.table2_layers,
        ),
    output:
        md=report(
            "results/{run}/tables/table2.md",
            category="Tables",
            caption="../report/table2.rst",
        ),
        csv="results/{run}/tables/table2.csv",
    log:
        "results/{run}/logs/tables/table2.log",
    benchmark:
        "results/{run}/benchmarks/tables/table2.tsv"
    conda:
        "../../envs/mine.yaml"
    params:
        layers=PATTERNS_PLAN.table2_layers,
        neurons=PATTERNS_PLAN.table2_neurons,
        per_cell=PATTERNS_PLAN.table2.per_cell,
        q_max=PATTERNS_PLAN.settings.q_max,
        features=config["model"]["features"],  # names: L6.12, or L6.f12 for latents
    script:
        "../scripts/table2.py"


rule figure1:
    input:
        metadata=expand(
            "results/{{run}}/profiles/metadata/layer{layer}.parquet",
            layer=PATTERNS_PLAN.table2_layers,
        ),
        corpus_metadata="results/{run}/patterns/corpus_metadata.parquet",
    output:
        png=report(
            "results/{run}/figures/fig1.png",
            category="Figures",
            caption="../report/fig1.rst",
        ),
        pdf="results/{run}/figures/fig1.pdf",
    log:
        "results/{run}/logs/figures/fig1.log",
    benchmark:
        "results/{run}/benchmarks/figures/fig1.tsv"
    conda:
        "../../envs/mine.yaml"
    params:
        figure="figure1",  # the entry in src/neurotext/patterns/figures.py
        layers=PATTERNS_PLAN.table2_layers,
        neurons=PATTERNS_PLAN.table2_neurons,
        features=config["model"]["features"],
    script:
        "../scripts/patterns_figure.py"
