from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.shards import make_shard

make_shard(
    corpus=snakemake.input.corpus,
    shard=int(snakemake.wildcards.shard),
    n_shards=snakemake.params.n_shards,
    model_dir=snakemake.params.model_dir,
    max_length=snakemake.params.max_length,
    out=snakemake.output[0],
    config_hash=snakemake.params.config_hash,
)
