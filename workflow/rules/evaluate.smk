# Evaluate: one metrics JSON (+ per-image areas .npz) per run x split x domain.


rule evaluate:
    input:
        model=f"{RESULTS}/runs/{{run}}/model.safetensors",
        data=dataset_ready(),
    output:
        metrics=f"{RESULTS}/runs/{{run}}/eval/{{split}}_{{domain}}.json",
        per_image=f"{RESULTS}/runs/{{run}}/eval/{{split}}_{{domain}}.npz",
    params:
        run_dir=lambda w, input: os.path.dirname(input.model),
    log:
        f"logs/{config['name']}/evaluate/{{run}}_{{split}}_{{domain}}.log",
    threads: 1
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=30,
        gpu=config["resources"]["gpus_per_job"],
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} genseg evaluate {params.run_dir} --split {wildcards.split}"
        " --domains {wildcards.domain} --out {output.metrics} > {log} 2>&1"
