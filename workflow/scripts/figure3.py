from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.relations import figure3

figure3(
    sse=list(snakemake.input.sse),
    layers=list(snakemake.params.layers),
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
