from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.relations import figure4

figure4(
    tsne=snakemake.input.tsne,
    clusters=snakemake.input.clusters,
    layer=int(snakemake.params.layer),
    png=snakemake.output.png,
    pdf=snakemake.output.pdf,
)
