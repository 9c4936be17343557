# neurotext: explain transformer neurons by the corpus sentences that activate them most.
# Run: snakemake --cores 2                      (embedded default, config/config.yaml)
#      snakemake --cores 2 --configfile config/paper.yaml
from snakemake.utils import min_version, validate

min_version("9")


# The embedded default, unless a config file is given on the command line (--configfile replaces it rather than
# being merged into it, so a run never inherits the demo's datasets).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/corpus.smk"
include: "workflow/rules/sample.smk"
include: "workflow/rules/scan.smk"
include: "workflow/rules/records.smk"
include: "workflow/rules/parse.smk"
include: "workflow/rules/patterns.smk"
include: "workflow/rules/relations.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/browser.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        all_targets(),
