from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.corpus import build_part

build_part(
    source=snakemake.input.source,
    punkt=snakemake.input.punkt,
    dataset=snakemake.params.dataset,
    corpus=snakemake.params.corpus,
    part=int(snakemake.wildcards.part),
    out=snakemake.output.part,
    config_hash=config_hash(snakemake.config),
    losses_out=snakemake.output.losses,
)
