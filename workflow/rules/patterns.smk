# Patterns (the paper's step 3): each neuron's top sentences abstracted into words by POS class, skip-n-grams,
# POS n-grams, parse subtrees and metadata, contrasted with the sample (and the corpus for metadata). Corpus
# metadata counts once; each layer's sentences gathered once; neuron ranges in parallel; merged per layer; Table 2
# and Figure 1 for the chosen neurons. The patterns and table2 blocks are checked when the DAG is built.
from neurotext.patterns import (  # noqa: E402
    PatternSettings,
    Table2Settings,
    choose_neurons,
    neuron_ranges,
    range_name,
)

PATTERNS = PatternSettings.from_config(config.get("patterns"))
TABLE2_NEURONS = choose_neurons(
    Table2Settings.from_config(config.get("table2")), len(LAYERS), DIMS.n_neurons
)
TABLE2_LAYERS = sorted({layer for layer, _ in TABLE2_NEURONS})
PATTERN_RANGES = [
    range_name(start, end)
    for start, end in neuron_ranges(DIMS.n_neurons, PATTERNS.neurons_per_job)
]


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


rule patterns_corpus_metadata:
    input:
        expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
    output:
        "results/{run}/patterns/corpus_metadata.parquet",
    log:
        "results/{run}/logs/patterns/corpus_metadata.log",
    conda:
        "../../envs/mine.yaml"
    script:
        "../scripts/patterns_corpus_metadata.py"


rule patterns_sentences:
    input:
        topk="results/{run}/topk/base/layer{layer}.parquet",
        parses=[f"{OUT}/parses/{d}/{s}.parquet" for d in DATASETS for s in shards_of(d)],
        corpus=expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
        sample="results/{run}/sample/sentences.parquet",
    output:
        "results/{run}/patterns/sentences/layer{layer}.parquet",
    log:
        "results/{run}/logs/patterns/sentences_layer{layer}.log",
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
    output:
        words="results/{run}/patterns/words/layer{layer}/n{start}-{end}.parquet",
        skipgrams="results/{run}/patterns/skipgrams/layer{layer}/n{start}-{end}.parquet",
        posgrams="results/{run}/patterns/posgrams/layer{layer}/n{start}-{end}.parquet",
        subtrees="results/{run}/patterns/subtrees/layer{layer}/n{start}-{end}.parquet",
        metadata="results/{run}/patterns/metadata/layer{layer}/n{start}-{end}.parquet",
        profile="results/{run}/patterns/profile/layer{layer}/n{start}-{end}.parquet",
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
        patterns=config.get("patterns", {}),
    script:
        "../scripts/patterns_range.py"


rule patterns_merge:
    input:
        words=expand(
            "results/{{run}}/patterns/words/layer{{layer}}/{name}.parquet",
            name=PATTERN_RANGES,
        ),
        skipgrams=expand(
            "results/{{run}}/patterns/skipgrams/layer{{layer}}/{name}.parquet",
            name=PATTERN_RANGES,
        ),
        posgrams=expand(
            "results/{{run}}/patterns/posgrams/layer{{layer}}/{name}.parquet",
            name=PATTERN_RANGES,
        ),
        subtrees=expand(
            "results/{{run}}/patterns/subtrees/layer{{layer}}/{name}.parquet",
            name=PATTERN_RANGES,
        ),
        metadata=expand(
            "results/{{run}}/patterns/metadata/layer{{layer}}/{name}.parquet",
            name=PATTERN_RANGES,
        ),
        profile=expand(
            "results/{{run}}/patterns/profile/layer{{layer}}/{name}.parquet",
            name=PATTERN_RANGES,
        ),
    output:
        patterns="results/{run}/patterns/layer{layer}.parquet",
        profiles="results/{run}/profiles/layer{layer}.parquet",
        metadata="results/{run}/profiles/metadata/layer{layer}.parquet",
    log:
        "results/{run}/logs/patterns/merge_layer{layer}.log",
    conda:
        "../../envs/mine.yaml"
    script:
        "../scripts/patterns_merge.py"


rule table2:
    input:
        patterns=expand(
            "results/{{run}}/patterns/layer{layer}.parquet", layer=TABLE2_LAYERS
        ),
        profiles=expand(
            "results/{{run}}/profiles/layer{layer}.parquet", layer=TABLE2_LAYERS
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
    conda:
        "../../envs/mine.yaml"
    params:
        layers=TABLE2_LAYERS,
        neurons=TABLE2_NEURONS,
        per_cell=config.get("table2", {}).get("per_cell", 3),
        q_max=PATTERNS.q_max,
    script:
        "../scripts/table2.py"


rule figure1:
    input:
        metadata=expand(
            "results/{{run}}/profiles/metadata/layer{layer}.parquet",
            layer=TABLE2_LAYERS,
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
    conda:
        "../../envs/mine.yaml"
    params:
        layers=TABLE2_LAYERS,
        neurons=TABLE2_NEURONS,
    script:
        "../scripts/figure1.py"
