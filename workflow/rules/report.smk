# Aggregate every evaluation into one tidy CSV, then tables and figures from it alone.


rule aggregate:
    input:
        metrics=eval_outputs(),
        curves=curve_outputs(),
    output:
        metrics=f"{RESULTS}/metrics.csv",
        curves=f"{RESULTS}/curves.csv",
    log:
        f"logs/{config['name']}/aggregate.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "genseg aggregate {input.metrics} --out {output.metrics}"
        " --curves {input.curves} --curves-out {output.curves} > {log} 2>&1"


rule report:
    input:
        metrics=f"{RESULTS}/metrics.csv",
        curves=f"{RESULTS}/curves.csv",
    output:
        [
            (
                report(
                    f"{RESULTS}/report/{name}.{ext}",
                    caption=f"../report/{name}.rst",
                    category="Results",
                )
                if ext == "png"
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
    shell:
        "genseg report --metrics {input.metrics} --curves {input.curves}"
        " --out-dir {params.out_dir} > {log} 2>&1"
