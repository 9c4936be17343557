# Parse: PTB tags and labels-only trees for every sentence in some top K (base model, any layer) or in the sample.
# parse_targets collects that union once; parse_shard parses one dataset shard (the scan shards' row split), reusing
# earlier parses from resources/parse_cache/{backend}/{key}/ (a side cache keyed by text hash and backend, not a
# declared output: deleting it only costs time). stanza_download fetches the stanza models where the network allows.
from neurotext.parse import ParseConfig  # noqa: E402
from neurotext.validate import with_defaults  # noqa: E402

# a config without a parse block gets the schema's defaults (the schema gives the block no default: hashes stay)
PARSE = ParseConfig.from_config(
    with_defaults("parse", config.get("parse")), gpu=config["resources"]["gpu"]
)
PARSE_CACHE = "resources/parse_cache"
STANZA_RESOURCES = f"{PARSE.stanza_dir}/resources.json"


localrules:
    stanza_download,


rule parse_targets:
    input:
        topk=expand("results/{{run}}/topk/base/layer{layer}.parquet", layer=LAYERS),
        sample="results/{run}/sample/sentences.parquet",
        # the scores stage's negatives (workflow/rules/scores.smk)
        negatives=["results/{run}/scores/negatives.parquet"],
    output:
        "results/{run}/parses/targets.parquet",
    log:
        "results/{run}/logs/parse/targets.log",
    benchmark:
        "results/{run}/benchmarks/parse/targets.tsv"
    conda:
        "../../envs/parse.yaml"
    script:
        "../scripts/parse_targets.py"


rule parse_shard:
    input:
        corpus="results/{run}/corpus/{dataset}.parquet",
        targets="results/{run}/parses/targets.parquet",
        stanza=[STANZA_RESOURCES] if PARSE.backend == "stanza" else [],
    output:
        "results/{run}/parses/{dataset}/{shard}.parquet",
    log:
        "results/{run}/logs/parse/{dataset}/{shard}.log",
    benchmark:
        "results/{run}/benchmarks/parse/{dataset}/{shard}.tsv"
    conda:
        "../../envs/parse.yaml"
    threads: PARSE.n_process
    resources:
        gpu=config["resources"]["gpu"] if PARSE.backend == "stanza" else 0,
        mem_mb=4000,
        runtime=240,
    params:
        parse=config.get("parse", {}),
        gpu=config["resources"]["gpu"],
        n_shards=lambda wc: len(shards_of(wc.dataset)),
        cache_root=PARSE_CACHE,
    script:
        "../scripts/parse_shard.py"


rule stanza_download:
    output:
        STANZA_RESOURCES,
    log:
        "resources/logs/stanza_download.log",
    conda:
        "../../envs/parse.yaml"
    params:
        stanza_dir=lambda wildcards, output: os.path.dirname(output[0]),
        lang=PARSE.stanza_lang,
    script:
        "../scripts/parse_stanza_download.py"
