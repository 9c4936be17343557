from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.report import write_layer_page

write_layer_page(
    topk=snakemake.input.topk,
    corpus_files=list(snakemake.input.corpus),
    layer=int(snakemake.wildcards.layer),
    sentences_per_neuron=snakemake.params.sentences_per_neuron,
    out=snakemake.output[0],
    features=snakemake.params.features,
)
