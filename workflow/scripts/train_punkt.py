from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.corpus import train_punkt

train_punkt(snakemake.input.source, snakemake.params.dataset, snakemake.params.corpus, snakemake.output[0])
