# Outputs people look at: the static neuron browser (results/{run}/browser/index.html; works from file://) and the
# `paper` target (Tables 1-3, Figures 1-4). An input is taken only when an included rule makes it (or it exists),
# so the browser builds from whatever stages the Snakefile has. Targets: `snakemake --cores 2 paper` and `browser`.
from neurotext.browser import (  # noqa: E402
    BrowserSettings,
    browser_rule_inputs,
    paper_targets,
)
from neurotext.validate import with_defaults  # noqa: E402

# The browser block with the schema's defaults filled (a config may leave the block out: validation fills only the
# blocks a config has, so its hash stays) and checked when the DAG is built; the job receives this block.
BROWSER_BLOCK = with_defaults("browser", config.get("browser"))
BrowserSettings.from_config(BROWSER_BLOCK)
# A stage the config switches off keeps its rules (fine-tuning without a `finetune:` block): its files are left out.
# FINETUNE (finetune.smk) and RELATIONS (relations.smk) are included before this file (Snakefile).
STAGE_OFF = lambda path: FINETUNE is None and any(
    part in path for part in ("finetune/", "tables/table3.")
)
PRODUCIBLE = lambda path: not STAGE_OFF(path) and (
    os.path.exists(path) or any(r.is_producer(path) for r in workflow.rules)
)


rule build_browser:
    input:
        unpack(
            lambda wc: browser_rule_inputs(
                f"results/{wc.run}",
                LAYERS,
                DATASETS,
                RELATIONS.layer.k,
                PRODUCIBLE,
            )
        ),
    output:
        index="results/{run}/browser/index.html",
        neuron="results/{run}/browser/neuron.html",
        assets=expand(
            "results/{{run}}/browser/assets/{name}", name=["browser.js", "style.css"]
        ),
        data=expand(
            "results/{{run}}/browser/data/{name}.js",
            name=["meta", "index", *[f"layer{layer}" for layer in LAYERS]],
        ),
    log:
        "results/{run}/logs/browser.log",
    benchmark:
        "results/{run}/benchmarks/browser.tsv"
    conda:
        "../../envs/plot.yaml"
    resources:
        mem_mb=4000,
    params:
        browser=BROWSER_BLOCK,
    script:
        "../scripts/browser.py"


localrules:
    paper,
    browser,


rule paper:
    input:
        lambda wc: paper_targets(OUT, PRODUCIBLE),


rule browser:
    input:
        f"{OUT}/browser/index.html",
