# Aggregate every evaluation into one tidy CSV (and a .parquet beside each tidy CSV), then tables
# and figures from it alone (`genseg report` reads the parquet when present).


rule aggregate:
    input:
        metrics=eval_outputs(),
        curves=curve_outputs(),
        uncertainty=uncertainty_outputs(),
    output:
        metrics=f"{RESULTS}/metrics.csv",
        curves=f"{RESULTS}/curves.csv",
        summary=f"{RESULTS}/summary.csv",
        paired=f"{RESULTS}/paired.csv",
        samples=f"{RESULTS}/samples.npz",
        parquet=[
            f"{RESULTS}/{name}.parquet"
            for name in ("metrics", "curves", "summary", "paired", "uncertainty")
        ],
        uncertainty=f"{RESULTS}/uncertainty.csv",
        uncertainty_samples=f"{RESULTS}/uncertainty_samples.npz",
    log:
        f"logs/{config['name']}/aggregate.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        pairs=json.dumps(config.get("compare", [])),
    shell:
        "genseg aggregate {input.metrics:q} --out {output.metrics:q} --summary-out {output.summary:q}"
        " --curves {input.curves:q} --curves-out {output.curves:q}"
        " --pairs {params.pairs:q} --paired-out {output.paired:q} --samples-out {output.samples:q}"
        " --uncertainty {input.uncertainty:q} --uncertainty-out {output.uncertainty:q}"
        " --uncertainty-samples-out {output.uncertainty_samples:q} > {log:q} 2>&1"


rule ablation_index:
    input:
        sorted(str(p) for p in ABLATIONS_DIR.glob("*.yaml")),
    output:
        f"{RESULTS}/ablations.json",
    log:
        f"logs/{config['name']}/ablation_index.log",
    localrule: True
    run:
        # Which experiment is each ablation row (from the parsed ablation files), for the report.
        write_json(
            output[0],
            {
                "ablations": [
                    asdict(a) for a in ABLATIONS if config["name"] in a.configs
                ],
                "rows": ABLATION_ROWS,
            },
        )
        write_text(log[0], f"wrote {output[0]}\n")


rule report:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        curves=f"{RESULTS}/curves.csv",
        ablations=f"{RESULTS}/ablations.json",
        paired=f"{RESULTS}/paired.csv",
        samples=f"{RESULTS}/samples.npz",
        uncertainty=f"{RESULTS}/uncertainty.csv",
        uncertainty_samples=f"{RESULTS}/uncertainty_samples.npz",
    output:
        [
            (
                report(
                    f"{RESULTS}/report/{name}.{ext}",
                    caption=report_caption(name),
                    category="Figures" if ext == "png" else "Tables",
                )
                if ext in ("png", "md")
                else f"{RESULTS}/report/{name}.{ext}"
            )
            for name, exts in REPORT_FILES.items()
            for ext in exts
        ],
    log:
        f"logs/{config['name']}/report.log",
    localrule: True
    conda:
        "../../environment.yml"
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),
        splits=json.dumps(DOMAIN_SPLITS),
    shell:
        "genseg report --metrics {input.metrics:q} --curves {input.curves:q} --ablations {input.ablations:q}"
        " --paired {input.paired:q} --samples {input.samples:q} --splits {params.splits:q}"
        " --uncertainty {input.uncertainty:q} --uncertainty-samples {input.uncertainty_samples:q}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"


# `snakemake figures`: every table and figure again, from the aggregated results of one
# default run committed under results/reference/default/ (no training, no data; < 1 min).
# The committed uncertainty results join when present (reference_uncertainty_args, common.smk).


rule figures:
    input:
        metrics=REFERENCE_RESULTS / "metrics.csv",
        curves=REFERENCE_RESULTS / "curves.csv",
        ablations=REFERENCE_RESULTS / "ablations.json",
        paired=REFERENCE_RESULTS / "paired.csv",
        samples=REFERENCE_RESULTS / "samples.npz",
    output:
        [
            f"results/figures/{name}.{ext}"
            for name, exts in REPORT_FILES.items()
            for ext in exts
        ],
    log:
        "logs/figures.log",
    benchmark:
        "results/figures/benchmark.tsv"
    localrule: True
    conda:
        "../../environment.yml"
    params:
        out_dir=lambda w, output: os.path.dirname(output[0]),
        uncertainty=reference_uncertainty_args(),
    shell:
        "genseg report --metrics {input.metrics:q} --curves {input.curves:q} --ablations {input.ablations:q}"
        " --paired {input.paired:q} --samples {input.samples:q} {params.uncertainty}"
        " --out-dir {params.out_dir:q} > {log:q} 2>&1"
