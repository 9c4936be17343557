from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.relations import figure2

figure2(
    topk=list(snakemake.input.topk),
    layers=list(snakemake.params.layers),
    corpus=list(snakemake.input.corpus),
    neurons=list(snakemake.params.neurons),
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
