# Aggregate every evaluation into one tidy CSV, then tables and figures from it alone.


rule aggregate:
    input:
        eval_outputs(),
    output:
        f"{RESULTS}/metrics.csv",
    log:
        f"logs/{config['name']}/aggregate.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "genseg aggregate {input} --out {output} > {log} 2>&1"


rule report:
    input:
        f"{RESULTS}/metrics.csv",
    output:
        md=f"{RESULTS}/report/miou_by_domain.md",
        tex=f"{RESULTS}/report/miou_by_domain.tex",
        png=report(
            f"{RESULTS}/report/miou_by_domain.png",
            caption="../report/miou_by_domain.rst",
            category="Results",
        ),
        pdf=f"{RESULTS}/report/miou_by_domain.pdf",
    params:
        out_dir=lambda w, output: os.path.dirname(output.md),
    log:
        f"logs/{config['name']}/report.log",
    localrule: True
    conda:
        "../../environment.yml"
    shell:
        "genseg report --metrics {input} --out-dir {params.out_dir} > {log} 2>&1"
