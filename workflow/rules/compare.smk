# Neurons against latents: this run's explanation scores (e.g. the SAE latents of config/sae.yaml) next to those of
# the neuron run named by `compare.neurons_run` (e.g. demo, the default run), per layer of this run:
# tables/neurons_vs_latents.{md,csv} and figures/neurons_vs_latents.{png,pdf}. The neuron run's scores are read
# when the job runs, not as inputs: this config must never rebuild another run's files (run that run first).
# Without a `compare:` block there is no such rule (the default run's DAG is unchanged).
from neurotext.compare import CompareSettings  # noqa: E402

COMPARE = CompareSettings.from_config(config.get("compare"))
COMPARE_TARGETS = (
    [f"{OUT}/tables/neurons_vs_latents.md", f"{OUT}/figures/neurons_vs_latents.png"]
    if COMPARE.neurons_run
    else []
)

if COMPARE.neurons_run:

    rule neurons_vs_latents:
        input:
            latents=expand("results/{{run}}/scores/layer{layer}.parquet", layer=LAYERS),
            topk=expand("results/{{run}}/topk/base/layer{layer}.parquet", layer=LAYERS),
        output:
            md="results/{run}/tables/neurons_vs_latents.md",
            csv="results/{run}/tables/neurons_vs_latents.csv",
            png="results/{run}/figures/neurons_vs_latents.png",
            pdf="results/{run}/figures/neurons_vs_latents.pdf",
        log:
            "results/{run}/logs/tables/neurons_vs_latents.log",
        conda:
            "../../envs/scores.yaml"
        params:
            layers=LAYERS,
            neurons_run=str(COMPARE.neurons_root()),
            features=config["model"]["features"],  # sae: latents firing on < K sentences left out
        script:
            "../scripts/neurons_vs_latents.py"
