from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.finetune import write_table3

write_table3(
    distances=snakemake.input.distances,
    neurons=snakemake.input.neurons,
    metrics=snakemake.input.metrics,
    sample=snakemake.input.sample,
    md_out=snakemake.output.md,
    csv_out=snakemake.output.csv,
    finetune=snakemake.params.finetune,
    model=snakemake.params.model,
    config_hash=config_hash(snakemake.config),
    sentence_distances=snakemake.input.sentence_distances,
)
