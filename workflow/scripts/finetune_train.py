from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.finetune import finetune_model

finetune_model(
    labelled=snakemake.input.labelled,
    model_dir=snakemake.params.model_dir,
    finetune={**snakemake.params.finetune, "threads": snakemake.threads},
    model=snakemake.params.model,
    scan=snakemake.params.scan,
    model_out=snakemake.output.model,
    metrics_out=snakemake.output.metrics,
)
