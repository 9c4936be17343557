from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.patterns import write_table2

layers = snakemake.params.layers
write_table2(
    patterns_files=dict(zip(layers, snakemake.input.patterns, strict=True)),
    profile_files=dict(zip(layers, snakemake.input.profiles, strict=True)),
    neurons=[tuple(pair) for pair in snakemake.params.neurons],
    md_out=snakemake.output.md,
    csv_out=snakemake.output.csv,
    per_cell=snakemake.params.per_cell,
    q_max=snakemake.params.q_max,
    features=snakemake.params.features,
)
