from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.finetune import split_labelled

split_labelled(
    corpus=snakemake.input.corpus,
    finetune=snakemake.params.finetune,
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
)
