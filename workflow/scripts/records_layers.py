from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.records import build_records

build_records(
    topk=list(snakemake.input.topk),
    sample=snakemake.input.sample,
    sample_acts=list(snakemake.input.sample_acts),
    corpus=list(snakemake.input.corpus),
    model_dir=snakemake.params.model_dir,
    model=snakemake.params.model,
    scan=snakemake.params.scan,
    records=snakemake.params.records,
    layers=snakemake.params.layers,
    outputs=list(snakemake.output),
    config_hash=config_hash(snakemake.config),
    top_tokens=list(snakemake.input.top_tokens),
    shards=list(snakemake.input.shards),
)
