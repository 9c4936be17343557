from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.scan import merge_topk

merge_topk(
    acts=list(snakemake.input.acts),
    shards=list(snakemake.input.shards),
    layer=int(snakemake.wildcards.layer),
    k=snakemake.params.k,
    out=snakemake.output[0],
    config_hash=snakemake.params.config_hash,
)
