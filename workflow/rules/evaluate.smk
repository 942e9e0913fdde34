# Evaluate: one job per run and split loads the model once and evaluates every
# (domain, predict options) pair of its plan (see genseg.experiments.eval_plan): the test
# domains evaluated on that split (evaluate.domains entries name their split), writing
# eval/<split>/<domain>/<variant>.json (+ .npz of per-image areas) and, last, index.json.


rule evaluate:
    input:
        model=f"{RESULTS}/runs/{{run}}/model.safetensors",
        data=dataset_ready(),
    output:
        index=f"{RESULTS}/runs/{{run}}/eval/{{split}}/index.json",
    log:
        f"logs/{config['name']}/evaluate/{{run}}_{{split}}.log",
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=30,
        gpu=config["resources"]["gpus_per_job"],
    params:
        run_dir=lambda w, input: os.path.dirname(input.model),
        out_dir=lambda w, output: os.path.dirname(output.index),
        plan=eval_plan_json,
    shell:
        "OMP_NUM_THREADS={threads} genseg evaluate {params.run_dir} --split {wildcards.split}"
        " --plan {params.plan:q} --out-dir {params.out_dir} --gpus {resources.gpu} > {log} 2>&1"
