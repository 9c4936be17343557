from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.patterns import RANGE_OUTPUTS, profile_range

profile_range(
    topk=snakemake.input.topk,
    sentences=snakemake.input.sentences,
    corpus_metadata=snakemake.input.corpus_metadata,
    start=int(snakemake.wildcards.start),
    end=int(snakemake.wildcards.end),
    settings=snakemake.params.patterns,
    outputs={kind: snakemake.output[kind] for kind in RANGE_OUTPUTS},
    config_hash=config_hash(snakemake.config),
)
