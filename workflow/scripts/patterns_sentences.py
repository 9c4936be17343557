from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.patterns import gather_sentences

gather_sentences(
    topk=snakemake.input.topk,
    parse_files=list(snakemake.input.parses),
    corpus_files=list(snakemake.input.corpus),
    sample=snakemake.input.sample,
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
)
