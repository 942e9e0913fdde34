# Train: resolve each run's config, then train it (a rerun resumes from its checkpoint).


rule run_config:
    output:
        f"{RESULTS}/runs/{{run}}/config.yaml",
    log:
        f"logs/{config['name']}/run_config/{{run}}.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        cfg=run_config_json,
    shell:
        "genseg write-config --json {params.cfg:q} --out {output} > {log} 2>&1"


rule train:
    input:
        config=f"{RESULTS}/runs/{{run}}/config.yaml",
        data=dataset_ready(),
        upstream=run_upstream,
    output:
        model=f"{RESULTS}/runs/{{run}}/model.safetensors",
        metrics=f"{RESULTS}/runs/{{run}}/train_metrics.json",
        curve=f"{RESULTS}/runs/{{run}}/val_curve.csv",
    log:
        f"logs/{config['name']}/train/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{run}}.tsv"
    conda:
        "../../environment.yml"
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"],
        gpu=config["resources"]["gpus_per_job"],
    shell:
        "OMP_NUM_THREADS={threads} genseg train {input.config} > {log} 2>&1"
