from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.patterns import RANGE_OUTPUTS, merge_layer

merge_layer(
    range_files={kind: list(snakemake.input[kind]) for kind in RANGE_OUTPUTS},
    patterns_out=snakemake.output.patterns,
    profiles_out=snakemake.output.profiles,
    metadata_out=snakemake.output.metadata,
    config_hash=config_hash(snakemake.config),
)
