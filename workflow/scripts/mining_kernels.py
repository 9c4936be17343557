from neurotext.logs import setup_job_logging

setup_job_logging(snakemake.log[0])
from neurotext.mining.kernels import compile_kernels

compile_kernels(out=snakemake.output[0])
