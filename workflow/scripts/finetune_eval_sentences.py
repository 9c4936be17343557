from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.finetune import eval_sentences

eval_sentences(
    labelled=snakemake.input.labelled,
    out_of_domain_corpus=snakemake.input.out_of_domain,
    finetune=snakemake.params.finetune,
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
)
