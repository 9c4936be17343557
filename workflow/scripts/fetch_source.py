from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.fetch import fetch_source

fetch_source(snakemake.params.source, snakemake.output[0])
