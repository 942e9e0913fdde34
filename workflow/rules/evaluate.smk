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


# Uncertainty: one job per run and in-domain test domain of the config's `uncertainty` block
# (genseg.experiments.uncertainty_jobs): the softmax or K samples per image over the first
# max_images test images -> uncertainty/<split>/<domain>.json (+ .npz of a few entropy maps).


rule uncertainty:
    input:
        model=f"{RESULTS}/runs/{{run}}/model.safetensors",
        upstream=run_upstream,
        data=dataset_ready,
    output:
        record=f"{RESULTS}/runs/{{run}}/uncertainty/{{split}}/{{domain}}.json",
        maps=f"{RESULTS}/runs/{{run}}/uncertainty/{{split}}/{{domain}}.npz",
    log:
        f"logs/{config['name']}/uncertainty/{{run}}_{{split}}_{{domain}}.log",
    conda:
        "../../environment.yml"
    threads: RESOURCES["eval_threads"]
    resources:
        cpus_per_task=RESOURCES["eval_threads"],
        mem_mb=RESOURCES["eval_mem_mb"],
        runtime=RESOURCES["eval_runtime_min"],
        gpu=RESOURCES["gpus_per_job"],
    params:
        run_dir=lambda w, input: os.path.dirname(input.model),
        k=UNCERTAINTY.k,
        max_images=UNCERTAINTY.max_images,
        seed=UNCERTAINTY.sample_seed,
    shell:
        "OMP_NUM_THREADS={threads} genseg uncertainty {params.run_dir:q} --split {wildcards.split} --domain {wildcards.domain}"
        " --out {output.record:q} --k {params.k} --max-images {params.max_images} --seed {params.seed}"
        " --gpus {resources.gpu} > {log:q} 2>&1"
