from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.config import config_hash
from neurotext.scores.stage import score_layer

score_layer(
    topk=snakemake.input.topk,
    sentences=snakemake.input.sentences,
    negative_sentences=snakemake.input.negative_sentences,
    negative_acts=snakemake.input.negative_acts,
    corpus_metadata=snakemake.input.corpus_metadata,
    patterns=snakemake.params.patterns,
    scores=snakemake.params.scores,
    out=snakemake.output.scores,
    summary_out=snakemake.output.summary,
    predictions_out=snakemake.output.get("predictions"),
    config_hash=config_hash(snakemake.config),
)
