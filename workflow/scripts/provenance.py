from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.report import write_provenance

write_provenance(
    config=snakemake.params.config,
    model_dir=snakemake.params.model_dir,
    source_files=list(snakemake.input.sources),
    repo=snakemake.params.repo,
    out=snakemake.output[0],
)
