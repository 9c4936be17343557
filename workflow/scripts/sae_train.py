from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.sae.train import train_sae

train_sae(
    sample=snakemake.input.sample,
    model_dir=snakemake.params.model_dir,
    model=snakemake.params.model,
    scan=snakemake.params.scan,
    sae=snakemake.params.sae,
    layer=int(snakemake.wildcards.layer),
    out_dir=snakemake.params.out_dir,
    checkpoint_dir=snakemake.params.checkpoint_dir,
)
