# Evaluate: one job per run and split loads the model once and evaluates every
# (domain, predict options) pair of its plan (see genseg.experiments.eval_plan): the test
# domains evaluated on that split (evaluate.domains entries name their split), writing
# eval/<split>/<domain>/<variant>.json (+ .npz of per-image areas) and, last, index.json.


rule evaluate:
    input:
        model=f"{RESULTS}/runs/{{run}}/model.safetensors",
        data=dataset_ready,
    output:
        index=f"{RESULTS}/runs/{{run}}/eval/{{split}}/index.json",
    log:
        f"logs/{config['name']}/evaluate/{{run}}_{{split}}.log",
    conda:
        "../../environment.yml"
    threads: RESOURCES["eval_threads"]
    resources:
        cpus_per_task=RESOURCES["eval_threads"],
        mem_mb=RESOURCES["eval_mem_mb"],
        runtime=eval_runtime,
        gpu=RESOURCES["gpus_per_job"],
    params:
        run_dir=lambda w, input: os.path.dirname(input.model),
        out_dir=lambda w, output: os.path.dirname(output.index),
        plan=eval_plan_json,
    shell:
        "OMP_NUM_THREADS={threads} genseg evaluate {params.run_dir:q} --split {wildcards.split}"
        " --plan {params.plan:q} --out-dir {params.out_dir:q} --gpus {resources.gpu} > {log:q} 2>&1"
