from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.scores.split import draw_negatives

draw_negatives(
    corpus_files=list(snakemake.input.corpus),
    sample=snakemake.input.sample,
    size=snakemake.params.size,
    seed=snakemake.params.seed,
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
)
