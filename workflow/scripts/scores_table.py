from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.scores.summary import write_table

write_table(
    dict(zip(snakemake.params.layers, snakemake.input.scores, strict=True)),
    md_out=snakemake.output.md,
    csv_out=snakemake.output.csv,
    headline=snakemake.params.headline,
)
