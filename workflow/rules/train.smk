# Train: resolve each run's config, then train it (a rerun resumes from its checkpoint; one whose
# config changed restarts from step 0: `--on-config-change restart`).
# GSS's stages are the same command under their own names: posterior_learning trains the
# VQ-VAE (frozen afterwards; first, as later runs wait on it), inverse_stage trains a maskige
# inverse with all before it frozen.
# Train and evaluate pass their `gpu` resource as --gpus: the job checks it against the visible
# devices and locks free ones (genseg.devices), so concurrent jobs get distinct GPUs.
# Their threads, cpus_per_task, mem_mb, runtime and gpu come from the config's `resources`
# (common.smk RESOURCES); cpus_per_task is what SLURM's --cpus-per-task reads.


rule run_config:
    output:
        f"{RESULTS}/runs/{{run}}/config.yaml",
    log:
        f"logs/{config['name']}/run_config/{{run}}.log",
    localrule: True
    params:
        # the resolved config as a param: editing it reruns this rule (Snakemake's params trigger),
        # and the new config.yaml reruns train, which restarts a checkpoint of the old config
        resolved=lambda wildcards: json.dumps(
            RUNS[wildcards.run].to_dict(), sort_keys=True
        ),
    run:
        # Checked when the workflow was parsed (common.smk); written here without a subprocess.
        write_yaml(output[0], RUNS[wildcards.run].to_dict())
        write_text(log[0], f"wrote {output[0]}\n")


rule train:
    input:
        config=f"{RESULTS}/runs/{{run}}/config.yaml",
        data=dataset_ready,
        upstream=run_upstream,
    output:
        model=f"{RESULTS}/runs/{{run}}/model.safetensors",
        metrics=f"{RESULTS}/runs/{{run}}/train_metrics.json",
        curve=f"{RESULTS}/runs/{{run}}/val_curve.csv",
    log:
        f"logs/{config['name']}/train/{{run}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train/{{run}}.tsv"
    wildcard_constraints:
        run=runs_of("train"),
    conda:
        "../../environment.yml"
    threads: RESOURCES["train_threads"]
    resources:
        cpus_per_task=RESOURCES["train_threads"],
        mem_mb=RESOURCES["train_mem_mb"],
        runtime=RESOURCES["train_runtime_min"],
        gpu=RESOURCES["gpus_per_job"],
    shell:
        "OMP_NUM_THREADS={threads} genseg train {input.config:q} --gpus {resources.gpu}"
        " --on-config-change restart > {log:q} 2>&1"


use rule train as posterior_learning with:
    wildcard_constraints:
        run=runs_of("posterior_learning"),
    priority: 10


use rule train as inverse_stage with:
    wildcard_constraints:
        run=runs_of("inverse_stage"),
