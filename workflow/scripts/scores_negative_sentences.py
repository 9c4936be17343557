from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.scores.stage import gather_negatives

gather_negatives(
    negatives=snakemake.input.negatives,
    parse_files=list(snakemake.input.parses),
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
)
