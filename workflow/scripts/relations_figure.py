from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.plots import rule_arguments
from neurotext.relations import figures

getattr(figures, snakemake.params.figure)(**rule_arguments(snakemake))
