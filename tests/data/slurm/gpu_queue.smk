# Local probe for the workstation profile: three GPU jobs and two CPU jobs, each recording when it ran.
GPU_JOBS = ["g1", "g2", "g3"]
CPU_JOBS = ["c1", "c2"]


rule all:
    input:
        expand("{name}.gpu", name=GPU_JOBS),
        expand("{name}.cpu", name=CPU_JOBS),


rule gpu_job:
    output:
        "{name}.gpu",
    resources:
        gpu=1,
    shell:
        "start=$(date +%s.%N); sleep 1; echo $start $(date +%s.%N) > {output}"


rule cpu_job:
    output:
        "{name}.cpu",
    shell:
        "start=$(date +%s.%N); sleep 1; echo $start $(date +%s.%N) > {output}"
