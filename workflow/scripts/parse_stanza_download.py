from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.parse import download_stanza

download_stanza(snakemake.params.stanza_dir, snakemake.params.lang)
