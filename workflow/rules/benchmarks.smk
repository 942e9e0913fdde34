# Model costs (not part of `rule all`): snakemake benchmarks --cores 1
# FLOPs, inference / training images/s and peak memory of every experiment of the config (random
# weights, genseg/benchmark.py); paper-size models too when benchmarks.paper_size > 0 (default 0:
# minutes per model on a CPU). gpu_hours.csv estimates their paper schedules at an ASSUMED MFU.
BENCHMARKS = config.get("benchmarks", {})


rule benchmarks:
    output:
        models=f"{RESULTS}/benchmarks/models.csv",
        figure=f"{RESULTS}/benchmarks/models.png",
        gpu_hours=f"{RESULTS}/benchmarks/gpu_hours.csv",
    log:
        f"logs/{config['name']}/benchmarks.log",
    localrule: True
    conda:
        "../../environment.yml"
    threads: 2
    params:
        # a function: the config holds {runs} / {seed} placeholders, not wildcards
        workflow_config=lambda wildcards: json.dumps(config, default=str),
        paper_size=int(BENCHMARKS.get("paper_size", 0)),
        paper_batch=int(BENCHMARKS.get("paper_batch", 2)),
        device=BENCHMARKS.get("device", "cpu"),
    shell:
        "genseg benchmark --config-json {params.workflow_config:q} --out {output.models:q}"
        " --figure {output.figure:q} --gpu-hours {output.gpu_hours:q} --paper-size {params.paper_size:q}"
        " --paper-batch {params.paper_batch:q} --device {params.device:q} --threads {threads} > {log:q} 2>&1"
