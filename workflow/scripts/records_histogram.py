from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.records import merge_histograms

merge_histograms(
    acts=list(snakemake.input.acts),
    layer=int(snakemake.wildcards.layer),
    out=snakemake.output[0],
    config_hash=snakemake.params.config_hash,
)
