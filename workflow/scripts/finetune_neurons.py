from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.finetune import neuron_changes

neuron_changes(
    sample=snakemake.input.sample,
    sample_before=list(snakemake.input.sample_before),
    sample_after=list(snakemake.input.sample_after),
    eval_sentences_path=snakemake.input.sentences,
    eval_before=list(snakemake.input.eval_before),
    eval_after=list(snakemake.input.eval_after),
    layers=snakemake.params.layers,
    finetune=snakemake.params.finetune,
    dataset_codes=snakemake.params.dataset_codes,
    out=snakemake.output[0],
    config_hash=config_hash(snakemake.config),
    topk_before=list(snakemake.input.topk_before),
    topk_after=list(snakemake.input.topk_after),
)
