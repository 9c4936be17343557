from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.records import merge_histograms

merge_histograms(
    acts=list(snakemake.input.acts),
    layers=snakemake.params.layers,
    outputs=list(snakemake.output),
    config_hash=config_hash(snakemake.config),
)
