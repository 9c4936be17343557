from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.sample import draw_sample

draw_sample(list(snakemake.input), snakemake.params.sample, snakemake.output[0], config_hash(snakemake.config))
