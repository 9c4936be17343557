from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.finetune import write_distances

write_distances(
    sentences=snakemake.input.sentences,
    before=list(snakemake.input.before),
    after=list(snakemake.input.after),
    layers=snakemake.params.layers,
    out=snakemake.output.distances,
    sentences_out=snakemake.output.sentences,
    config_hash=config_hash(snakemake.config),
)
