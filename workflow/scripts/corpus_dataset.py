from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.corpus import merge_parts

merge_parts(
    parts=list(snakemake.input.parts),
    dataset=snakemake.params.dataset,
    corpus=snakemake.params.corpus,
    out=snakemake.output.corpus,
    config_hash=config_hash(snakemake.config),
    part_losses=list(snakemake.input.losses),
    losses_out=snakemake.output.losses,
)
