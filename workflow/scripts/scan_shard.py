from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.scan import scan_shard

scan_shard(
    shard=snakemake.input.shard,
    model_dir=snakemake.params.model_dir,
    model=snakemake.params.model,
    scan=snakemake.params.scan,
    out=snakemake.output.acts,
    top_tokens=snakemake.output.top_tokens,
    top_n=snakemake.params.top_n,
    histogram_edges=snakemake.input.histogram_edges,
)
