from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.browser import run_browser_job
from neurotext.config import config_hash

run_browser_job(
    named_inputs={name: snakemake.input.get(name) for name in snakemake.input.keys()},
    out_index=snakemake.output.index,
    browser_config=snakemake.params.browser,
    run=snakemake.wildcards.run,
    config_hash=config_hash(snakemake.config),
)
