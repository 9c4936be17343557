# First readable outputs: a Markdown page per layer, and provenance.json.


rule layer_page:
    input:
        topk="results/{run}/topk/base/layer{layer}.parquet",
        corpus=expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
    output:
        "results/{run}/pages/layer{layer}.md",
    log:
        "results/{run}/logs/pages/layer{layer}.log",
    benchmark:
        "results/{run}/benchmarks/pages/layer{layer}.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        sentences_per_neuron=config["report"]["sentences_per_neuron"],
        features=config["model"]["features"],
    script:
        "../scripts/layer_page.py"


rule provenance:
    input:
        sources=sorted({config["datasets"][d]["path"] for d in DATASETS}),
        topk=expand("results/{{run}}/topk/base/layer{layer}.parquet", layer=LAYERS),
    output:
        "results/{run}/provenance.json",
    log:
        "results/{run}/logs/provenance.log",
    benchmark:
        "results/{run}/benchmarks/provenance.tsv"
    conda:
        "../../envs/scan.yaml"
    params:
        config=config,
        model_dir=MODEL_DIR,
        repo=workflow.basedir,
    script:
        "../scripts/provenance.py"
