# Data: write the embedded synthetic dataset (real datasets are read in place from their roots).
SYNTH = config["dataset"].get("synthetic", {})

if SYNTHETIC:

    rule synthetic_data:
        output:
            meta=f"{DATA_ROOT}/meta.json",
        log:
            f"logs/{config['name']}/synthetic_data.log",
        conda:
            "../../environment.yml"
        threads: 2
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            root=lambda w, output: os.path.dirname(output.meta),
            seed=SYNTH.get("seed", 0),
            image_size=SYNTH.get("image_size", 64),
            num_train=SYNTH.get("num_train", 1000),
            num_val=SYNTH.get("num_val", 200),
            num_test=SYNTH.get("num_test", 200),
        shell:
            "genseg generate-synthetic {params.root:q} --overwrite --seed {params.seed:q}"
            " --image-size {params.image_size:q} --num-train {params.num_train:q}"
            " --num-val {params.num_val:q} --num-test {params.num_test:q} > {log:q} 2>&1"
