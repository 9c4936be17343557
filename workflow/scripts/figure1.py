from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.patterns import write_figure1

write_figure1(
    metadata_files=dict(zip(snakemake.params.layers, snakemake.input.metadata, strict=True)),
    corpus_metadata=snakemake.input.corpus_metadata,
    neurons=[tuple(pair) for pair in snakemake.params.neurons],
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
