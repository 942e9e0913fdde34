# genseg workflow: data -> train -> evaluate -> aggregate -> tables and figures.
# Run: snakemake --cores all    (other configs: --configfile workflow/config/<name>.yaml)
from snakemake.utils import min_version, validate

min_version("9.0")


# The embedded default unless a config was given (--configfile workflow/config/<name>.yaml);
# a given config replaces it whole, so its experiments are exactly the ones it lists.
if "name" not in config:

    configfile: Path(workflow.basedir) / "workflow/config/default.yaml"


validate(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/benchmarks.smk"


# An ablation's custom rules: ablations/<name>.smk beside its <name>.yaml.
for ablation in sorted(ABLATIONS_DIR.glob("*.smk")):

    include: ablation


rule all:
    default_target: True
    input:
        report_outputs(),
        EXTRA_TARGETS,
