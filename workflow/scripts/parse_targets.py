from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.parse import write_targets

write_targets(
    topk_paths=list(snakemake.input.topk),
    sample_path=snakemake.input.sample,
    extra_paths=list(snakemake.input.get("negatives", [])),
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
)
