# Relations among neurons (paper section 4.3): per layer k-means SSE, clusters, t-SNE and top-K overlap;
# Figures 2-4 and the summary numbers. The relations block is checked against the model when the DAG is built.
from neurotext.relations import check_relations_config  # noqa: E402

RELATIONS = check_relations_config(
    config["relations"], LAYERS[-1], DIMS.n_neurons, POOLINGS
)

# The summary and Figures 2-4 (for `rule all`).
RELATIONS_TARGETS = [
    f"{OUT}/relations/summary.csv",
    *expand(f"{OUT}/figures/fig{{n}}.{{ext}}", n=[2, 3, 4], ext=["png", "pdf"]),
]


rule relations_layer:
    input:
        sample=f"results/{{run}}/sample/base/{RELATIONS.layer.pooling}/layer{{layer}}.npy",
        topk="results/{run}/topk/base/layer{layer}.parquet",
        topk_next=next_layer_topk,
    output:
        sse="results/{run}/relations/layer{layer}/sse.csv",
        clusters=f"results/{{run}}/relations/layer{{layer}}/clusters_k{RELATIONS.layer.k}.parquet",
        tsne="results/{run}/relations/layer{layer}/tsne.parquet",
        overlap="results/{run}/relations/layer{layer}/overlap.parquet",
    log:
        "results/{run}/logs/relations/layer{layer}.log",
    benchmark:
        "results/{run}/benchmarks/relations/layer{layer}.tsv"
    conda:
        "../../envs/plot.yaml"
    threads: RELATIONS.threads
    resources:
        mem_mb=4000,
    params:
        relations=RELATIONS.layer_config(),
    script:
        "../scripts/relations_layer.py"


rule relations_summary:
    input:
        topk=expand("results/{{run}}/topk/base/layer{layer}.parquet", layer=LAYERS),
        clusters=expand(
            "results/{{run}}/relations/layer{layer}/clusters_k{k}.parquet",
            layer=LAYERS,
            k=RELATIONS.layer.k,
        ),
        sse=expand("results/{{run}}/relations/layer{layer}/sse.csv", layer=LAYERS),
        overlap=expand(
            "results/{{run}}/relations/layer{layer}/overlap.parquet", layer=LAYERS
        ),
        corpus=expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
    output:
        "results/{run}/relations/summary.csv",
    log:
        "results/{run}/logs/relations/summary.log",
    benchmark:
        "results/{run}/benchmarks/relations/summary.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        layers=LAYERS,
        k=RELATIONS.layer.k,
    script:
        "../scripts/relations_summary.py"


rule figure2:
    input:
        topk=expand("results/{{run}}/topk/base/layer{layer}.parquet", layer=LAYERS),
        corpus=expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
    output:
        png=report(
            "results/{run}/figures/fig2.png",
            category="Figures",
            caption="../report/fig2.rst",
        ),
        pdf="results/{run}/figures/fig2.pdf",
    log:
        "results/{run}/logs/figures/fig2.log",
    benchmark:
        "results/{run}/benchmarks/figures/fig2.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        figure="figure2",  # the entry in src/neurotext/relations/figures.py
        layers=LAYERS,
        neurons=list(RELATIONS.figure2_neurons),
    script:
        "../scripts/relations_figure.py"


rule figure3:
    input:
        sse=expand("results/{{run}}/relations/layer{layer}/sse.csv", layer=LAYERS),
    output:
        png=report(
            "results/{run}/figures/fig3.png",
            category="Figures",
            caption="../report/fig3.rst",
        ),
        pdf="results/{run}/figures/fig3.pdf",
    log:
        "results/{run}/logs/figures/fig3.log",
    benchmark:
        "results/{run}/benchmarks/figures/fig3.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        figure="figure3",
        layers=LAYERS,
    script:
        "../scripts/relations_figure.py"


rule figure4:
    input:
        tsne=f"results/{{run}}/relations/layer{RELATIONS.figure4_layer}/tsne.parquet",
        clusters=(
            f"results/{{run}}/relations/layer{RELATIONS.figure4_layer}/clusters_k{RELATIONS.layer.k}.parquet"
        ),
    output:
        png=report(
            "results/{run}/figures/fig4.png",
            category="Figures",
            caption="../report/fig4.rst",
        ),
        pdf="results/{run}/figures/fig4.pdf",
    log:
        "results/{run}/logs/figures/fig4.log",
    benchmark:
        "results/{run}/benchmarks/figures/fig4.tsv"
    conda:
        "../../envs/plot.yaml"
    params:
        figure="figure4",
        layer=RELATIONS.figure4_layer,
    script:
        "../scripts/relations_figure.py"
