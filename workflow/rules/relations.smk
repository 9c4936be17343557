# Relations among neurons (paper section 4.3): per layer k-means SSE, clusters, t-SNE and top-K overlap;
# Figures 2-4 and the summary numbers. The relations block is checked against the model when the DAG is built.
from neurotext.relations import check_relations_config  # noqa: E402

RELATIONS = check_relations_config(
    config["relations"], len(LAYERS), DIMS.n_neurons, POOLINGS
)


rule relations_layer:
    input:
        sample=f"results/{{run}}/sample/base/{RELATIONS.pooling}/layer{{layer}}.npy",
        topk="results/{run}/topk/base/layer{layer}.parquet",
        topk_next=next_layer_topk,
    output:
        sse="results/{run}/relations/layer{layer}/sse.csv",
        clusters=f"results/{{run}}/relations/layer{{layer}}/clusters_k{RELATIONS.k}.parquet",
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
            k=RELATIONS.k,
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
    conda:
        "../../envs/plot.yaml"
    params:
        layers=LAYERS,
        k=RELATIONS.k,
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
    conda:
        "../../envs/plot.yaml"
    params:
        layers=LAYERS,
        neurons=list(RELATIONS.figure2_neurons),
    script:
        "../scripts/figure2.py"


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
    conda:
        "../../envs/plot.yaml"
    params:
        layers=LAYERS,
    script:
        "../scripts/figure3.py"


rule figure4:
    input:
        tsne=f"results/{{run}}/relations/layer{RELATIONS.figure4_layer}/tsne.parquet",
        clusters=(
            f"results/{{run}}/relations/layer{RELATIONS.figure4_layer}/clusters_k{RELATIONS.k}.parquet"
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
    conda:
        "../../envs/plot.yaml"
    params:
        layer=RELATIONS.figure4_layer,
    script:
        "../scripts/figure4.py"
