# neurotext: explain transformer neurons by the corpus sentences that activate them most.
# Run: snakemake --cores 2                      (embedded default, config/config.yaml)
#      snakemake --cores 2 --configfile config/paper.yaml
import os
import sys
import time

from snakemake.utils import min_version

min_version("9")

sys.path.insert(0, os.path.join(workflow.basedir, "src"))
from neurotext.failures import report_failures, report_warnings  # noqa: E402
from neurotext.validate import check_config  # noqa: E402

# The embedded default, unless a config file is given on the command line (--configfile replaces it rather than
# being merged into it, so a run never inherits the demo's datasets).
if not workflow.config_settings.configfiles:

    configfile: "config/config.yaml"


# This run's job logs are the ones written after this moment (onsuccess).
_STARTED = time.time()

# The whole config is checked before any job (unknown keys, types, cross-key rules; schema defaults filled in):
# src/neurotext/validate.py.
_SCHEMA = os.path.join(workflow.basedir, "workflow/schemas/config.schema.yaml")
for _warning in check_config(config, _SCHEMA):
    print(f"neurotext: warning: {_warning}", file=sys.stderr)


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/corpus.smk"


# The model's stages need a resolvable `model:` block (workflow/rules/common.smk); without one the corpus stage and
# Table 1 still build, and the other targets say why they cannot (model_unavailable).
if HAS_MODEL:

    include: "workflow/rules/sample.smk"
    include: "workflow/rules/scan.smk"
    include: "workflow/rules/sae.smk"
    include: "workflow/rules/records.smk"
    include: "workflow/rules/parse.smk"
    include: "workflow/rules/patterns.smk"
    include: "workflow/rules/scores.smk"
    include: "workflow/rules/compare.smk"
    include: "workflow/rules/relations.smk"
    include: "workflow/rules/finetune.smk"
    include: "workflow/rules/browser.smk"
    include: "workflow/rules/report.smk"

elif MODEL_ERROR is not None:

    include: "workflow/rules/model_unavailable.smk"


rule all:
    default_target: True
    input:
        lambda wildcards: all_targets(),


# A failed job's own error message (the exception the package raised, naming the key or file and the fix) on the
# console, not only its log path.
onerror:
    report_failures(log if isinstance(log, (list, tuple)) else [log], workflow)


# Warnings the jobs logged (e.g. scan.k above the corpus's sentence count) on the console too.
onsuccess:
    report_warnings(f"results/{config['run']}/logs", _STARTED)
