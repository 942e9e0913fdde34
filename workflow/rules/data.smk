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

    # The same dataset with another class count (runs' data.num_classes): DATA_ROOT-c<N>.
    rule synthetic_data_classes:
        output:
            meta=f"{DATA_ROOT}-c{{num_classes}}/meta.json",
        log:
            f"logs/{config['name']}/synthetic_data_c{{num_classes}}.log",
        wildcard_constraints:
            num_classes="|".join(map(str, SYNTHETIC_CLASS_COUNTS)) or "NONE",
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
            " --num-val {params.num_val:q} --num-test {params.num_test:q}"
            " --num-classes {wildcards.num_classes:q} > {log:q} 2>&1"
