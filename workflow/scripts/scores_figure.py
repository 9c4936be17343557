from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.scores.summary import write_figure

write_figure(
    dict(zip(snakemake.params.layers, snakemake.input.scores, strict=True)),
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
