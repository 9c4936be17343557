# The evaluation sentences' activations through the scan's own path (same tokenization, site, pooling, batch plan).
from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.scan import sample_activations

sample_activations(
    sample=snakemake.input.sentences,
    model_dir=snakemake.params.model_dir,
    model=snakemake.params.model,
    scan=snakemake.params.scan,
    poolings=snakemake.params.poolings,
    outputs=list(snakemake.output),
)
