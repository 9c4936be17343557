from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.relations import relations_layer

relations_layer(
    sample=snakemake.input.sample,
    topk=snakemake.input.topk,
    topk_next=snakemake.input.topk_next[0] if snakemake.input.topk_next else None,
    layer=int(snakemake.wildcards.layer),
    relations=snakemake.params.relations,
    threads=snakemake.threads,
    sse_out=snakemake.output.sse,
    clusters_out=snakemake.output.clusters,
    tsne_out=snakemake.output.tsne,
    overlap_out=snakemake.output.overlap,
    config_hash=config_hash(snakemake.config),
)
