from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.patterns import figures
from neurotext.plots import rule_arguments

getattr(figures, snakemake.params.figure)(**rule_arguments(snakemake))
