from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.relations import relations_summary

relations_summary(
    layers=list(snakemake.params.layers),
    topk=list(snakemake.input.topk),
    clusters=list(snakemake.input.clusters),
    sse=list(snakemake.input.sse),
    overlap=list(snakemake.input.overlap),
    corpus=list(snakemake.input.corpus),
    k=snakemake.params.k,
    out=snakemake.output[0],
)
