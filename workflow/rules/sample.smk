# The one random sample: the scoring background and the activation sample (docs/ARCHITECTURE.md, "Identifiers").


rule sample_sentences:
    input:
        expand("results/{{run}}/corpus/{dataset}.parquet", dataset=DATASETS),
    output:
        "results/{run}/sample/sentences.parquet",
    log:
        "results/{run}/logs/sample/sentences.log",
    benchmark:
        "results/{run}/benchmarks/sample/sentences.tsv"
    conda:
        "../../envs/corpus.yaml"
    params:
        sample=config["sample"],
    script:
        "../scripts/sample_sentences.py"
