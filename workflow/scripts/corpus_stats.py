import sys

console = sys.stderr  # the summary goes to the console; everything else to the job's log
from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.corpus import write_stats

write_stats(
    list(snakemake.input),
    snakemake.output.stats,
    snakemake.output.table_md,
    snakemake.output.table_csv,
    metadata_counts_tsv=snakemake.output.metadata_counts,
    summary_to=console,
)
