from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.patterns import count_corpus_metadata

count_corpus_metadata(list(snakemake.input), snakemake.output[0], config_hash(snakemake.config))
