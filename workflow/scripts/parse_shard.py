from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.parse import parse_shard

parse_shard(
    corpus=snakemake.input.corpus,
    targets=snakemake.input.targets,
    shard=int(snakemake.wildcards.shard),
    n_shards=snakemake.params.n_shards,
    parse=snakemake.params.parse,
    gpu=snakemake.params.gpu,
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
    dataset=snakemake.wildcards.dataset,
    cache_root=snakemake.params.cache_root,
)
