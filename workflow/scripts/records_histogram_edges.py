from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.records import write_histogram_edges

write_histogram_edges(
    sample_acts=list(snakemake.input),
    histogram=snakemake.params.histogram,
    out=snakemake.output[0],
)
