from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.compare import neurons_vs_latents

neurons_vs_latents(
    latents=list(snakemake.input.latents),
    layers=snakemake.params.layers,
    neurons_run=snakemake.params.neurons_run,
    md=snakemake.output.md,
    csv_out=snakemake.output.csv,
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
    latents_run=snakemake.wildcards.run,
    topk=list(snakemake.input.topk),
    features=snakemake.params.features,
)
