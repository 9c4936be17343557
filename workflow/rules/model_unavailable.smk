# Included instead of the model's stages when `model:` is set but cannot be resolved (workflow/rules/common.smk):
# any output of those stages fails before a job runs, with the model's own error (naming model.path).


rule model_unavailable:
    input:
        model_required,
    output:
        "results/{run}/{stage}/{name}",
    log:
        "results/{run}/logs/model_unavailable/{stage}/{name}.log",
    wildcard_constraints:
        stage=r"(?!corpus$|logs$|benchmarks$)[^/]+",
        name=r".+",
    conda:
        "../../envs/corpus.yaml"


ruleorder: corpus_stats > model_unavailable
