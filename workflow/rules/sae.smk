# SAE training: a TopK sparse autoencoder per layer of `sae.layers` on the sample's token activations, written in
# the SAELens layout (cfg.json + sae_weights.safetensors) with metrics.json (FVU, dead latents). Scans with
# `model.features: sae` and `model.sae: results/{run}/sae` read them (workflow/rules/common.smk: features_input).


rule sae_train:
    input:
        sample="results/{run}/sample/sentences.parquet",
    output:
        cfg="results/{run}/sae/layer{layer}/cfg.json",
        weights="results/{run}/sae/layer{layer}/sae_weights.safetensors",
        metrics="results/{run}/sae/layer{layer}/metrics.json",
    log:
        "results/{run}/logs/sae/layer{layer}.log",
    benchmark:
        "results/{run}/benchmarks/sae/layer{layer}.tsv"
    conda:
        "../../envs/scan.yaml"
    threads: config.get("sae", {}).get("threads", 2)
    resources:
        mem_mb=8000,
    params:
        model_dir=MODEL_DIR,
        model=config["model"],
        scan=config["scan"],
        sae=config.get("sae"),
        out_dir=lambda wc: f"results/{wc.run}/sae/layer{wc.layer}",
        checkpoint_dir=lambda wc: f"results/{wc.run}/sae/checkpoints/layer{wc.layer}",
    script:
        "../scripts/sae_train.py"
