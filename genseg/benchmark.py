"""Model cost benchmark: forward FLOPs, inference and training throughput, peak memory.

``genseg benchmark --config <workflow config> --out models.csv`` measures every experiment of a
workflow config (first seed; its run config's model, crop size and batch size, random weights)
and, unless ``--paper-size 0``, each model of :data:`genseg.methods.baselines.PAPER_MODELS` at
paper size (random weights, built offline as ``genseg models`` does) at ``--paper-size`` pixels.

- FLOPs: :class:`torch.utils.flop_counter.FlopCounterMode` on one ``predict`` call, batch 1,
  under ``no_grad``. FlopCounterMode (torch 2.14) counts no FLOPs for the CPU SDPA kernel
  (``aten._scaled_dot_product_flash_attention_for_cpu``): it is added here with torch's own SDPA
  formula (4 N_q N_k d per head) and the row's ``flops_note`` says so.
- images/s: inference (``predict``; for a method whose ``predict`` takes ``steps``: 1 and its
  default) and one training step (forward + backward + AdamW) after one warm-up step.
- peak memory: CUDA max allocated on a GPU; on CPU the process's peak RSS (``resource.getrusage``)
  while measuring the model minus its RSS before (the peak is reset first through
  ``/proc/self/clear_refs`` on Linux; elsewhere the increase over the earlier peak, 0 below it);
  ``peak_memory_kind`` names which.
- MFU (GPU only): model FLOPs/s over the device's bf16 matmul peak measured with a large matmul
  (``peak_tflops``); ``mfu_train`` counts a training step as 3 x the forward FLOPs. ``--precision bf16``
  (or fp16): inference and the training step under autocast, as ``train.precision``.

Runs that start from another run's files (``{runs}/...``) are built without them where possible: a
GSS / maskige ``posterior_file`` becomes a random VQ-VAE of the configured shape; any other such
file (GSS-FT's ``init_file``) makes the row ``skipped`` with the reason in ``note``.

``--flops-only``: the FLOPs alone (no timing, no training step, batch 1, ``predict`` with 1 step),
so paper-size configs can be counted on a CPU; weight files the run config names but the disk lacks
(``{weights}/...``, another run's ``init_file``) are replaced by random ones of the same shape, and
``gpu_hours.csv`` gets one row per experiment, its forward FLOPs counted at its own crop size.

``gpu_hours.csv``: for each paper-size model found in ``workflow/config/paper-*.yaml``, the
estimated GPU-hours of its schedule (iterations x batch images, training FLOPs = 3 x forward
FLOPs per image, scaled to the config's crop size by area) at an ASSUMED 40% MFU of an H100-class
bf16 dense peak of 989 TFLOP/s; an estimate, never a measurement.
"""

from __future__ import annotations

import csv
import inspect
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode, conv_flop_count, sdpa_backward_flop_count, sdpa_flop_count

from .engine.provenance import device_name, peak_memory_mb, reset_peak_memory, resolve_device

COLUMNS = [
    "experiment", "method", "source", "status", "image_size", "batch", "gflops_per_image", "train_gflops_per_image", "flops_note",
    "steps", "infer_images_per_s", "train_batch", "train_images_per_s", "peak_memory_mb", "peak_memory_kind",
    "mfu_infer", "mfu_train", "peak_tflops", "device", "precision", "note", "config",
]
GPU_HOURS_COLUMNS = [
    "model", "config", "crop_size", "iterations", "batch", "train_images", "gflops_per_image_at_crop",
    "train_flops", "assumed_mfu", "assumed_peak_tflops", "gpu_hours_estimate", "train_gflops_per_image_counted",
    "gpu_hours_estimate_counted", "basis",
]
ASSUMED_MFU = 0.40
ASSUMED_PEAK_TFLOPS = 989.0  # H100 SXM bf16 dense
REPO = Path(__file__).resolve().parents[1]
SDPA_NOTE = "SDPA added by hand (4*Nq*Nk*d per head): FlopCounterMode counts 0 for the CPU kernel"


def _sdpa_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)


def _sdpa_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out, query, key, value)


def _conv_backward_flops(grad_out, x, w, _bias, _stride, _padding, _dilation, transposed, _output_padding, _groups,
                         output_mask, out_shape=None, **kwargs) -> int:
    """Each requested gradient (input, weight) costs one forward convolution. torch 2.14's own formula
    ignores ``groups``: a depthwise convolution's backward came out groups + 1 times its forward."""
    return conv_flop_count(x, w, grad_out, transposed) * (int(bool(output_mask[0])) + int(bool(output_mask[1])))


def _custom_flops() -> dict:
    """SDPA kernels FlopCounterMode does not count in this torch (probed, not assumed)."""
    aten = torch.ops.aten
    mapping = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu",):
        op = getattr(aten, name, None)
        if op is not None:
            mapping[op] = _sdpa_flops
    mapping[aten.convolution_backward] = _conv_backward_flops
    op = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if op is not None:
        mapping[op] = _sdpa_backward_flops
    return mapping


def sdpa_counted_natively(device: str = "cpu") -> bool:
    """Whether FlopCounterMode alone counts a scaled_dot_product_attention call on ``device``."""
    q = torch.randn(1, 1, 8, 4, device=device)
    with FlopCounterMode(display=False) as mode:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    return mode.get_total_flops() > 0


class _Global:
    """In place of FlopCounterMode's per-module tracker: totals only. The tracker's backward hooks fail on
    some transformers models ("Expected gradient function to be set") when a backward is counted."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def count_flops(fn) -> tuple[int, bool]:
    """FLOPs of ``fn()`` (a backward in it included) and whether any came from the hand-added SDPA formula."""
    custom = _custom_flops()
    mode = FlopCounterMode(display=False, custom_mapping=custom)
    mode.mod_tracker = _Global()
    with mode:
        fn()
    counts = mode.get_flop_counts().get("Global", {})
    added = any(n for op, n in counts.items() if op in custom)
    return mode.get_total_flops(), added


def _peak_rss_mb() -> float:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if platform.system() == "Darwin" else rss / 1024  # macOS bytes, Linux KiB


def _reset_peak_rss() -> float:
    """Reset the process's peak RSS to its current RSS where Linux allows it (``/proc/self/clear_refs``
    5, also what ``getrusage`` reports); returns the RSS to measure the increase from (MiB)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:")) / 1024
    except (OSError, StopIteration, ValueError):
        return _peak_rss_mb()  # no reset: the increase over the earlier peak (0 below it)


def _sync(device: torch.device) -> None:
    if device.type != "cpu":
        torch.accelerator.synchronize(device)


def matmul_peak_tflops(device: torch.device, n: int = 8192, reps: int = 10) -> float:
    """Measured bf16 matmul throughput of ``device`` (TFLOP/s): a short large matmul."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(2):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start) / 1e12


def _predict_kwargs(model, labels) -> dict:
    params = inspect.signature(model.predict).parameters
    return {"labels": labels} if "labels" in params else {}


def step_counts(model) -> list[int | None]:
    """[1, default] when ``predict`` takes ``steps`` (the default from its options), else [None]."""
    if "steps" not in inspect.signature(model.predict).parameters:
        return [None]
    default = getattr(getattr(model, "options", None), "steps", None)
    return sorted({1, int(default)}) if default else [1]


def measure(model, image_size: int, batch: int, train_batch: int, num_classes: int, device: torch.device,
            infer_repeats: int = 2, train_repeats: int = 1, warmup: bool = True, precision: str = "fp32") -> list[dict]:
    """One dict per step count: FLOPs per image, inference and training images/s, peak memory;
    ``precision`` bf16 / fp16: predict and the training step under autocast (train.precision's)."""
    from .engine.precision import autocast

    model = model.to(device)
    rss0 = _reset_peak_rss()
    reset_peak_memory(device)
    gen = torch.Generator().manual_seed(0)

    def data(n):
        images = torch.rand(n, 3, image_size, image_size, generator=gen).to(device)
        labels = torch.randint(0, num_classes, (n, image_size, image_size), generator=gen).to(device)
        return images, labels

    rows = []
    model.eval()
    one_images, one_labels = data(1)
    images, labels = data(batch)
    for steps in step_counts(model):
        kw = {"steps": steps} if steps is not None else {}
        with torch.no_grad(), autocast(precision, device):
            flops, added = count_flops(lambda: model.predict(one_images, **kw, **_predict_kwargs(model, one_labels)))
            if warmup:
                model.predict(images, **kw, **_predict_kwargs(model, labels))
            _sync(device)
            start = time.perf_counter()
            for _ in range(infer_repeats):
                model.predict(images, **kw, **_predict_kwargs(model, labels))
            _sync(device)
            elapsed = time.perf_counter() - start
        rows.append({"gflops_per_image": flops / 1e9, "flops_note": SDPA_NOTE if added else "",
                     "steps": "" if steps is None else steps, "infer_images_per_s": batch * infer_repeats / elapsed})
    train_ips, note = "", ""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        note = "no trainable parameters: no training step"
    else:
        model.train()
        opt = torch.optim.AdamW(trainable, lr=1e-4)
        images, labels = data(train_batch)

        def step():
            with autocast(precision, device):
                loss, _ = model.training_loss(images, labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        try:
            step()  # warm-up
            _sync(device)
            start = time.perf_counter()
            for _ in range(train_repeats):
                step()
            _sync(device)
            train_ips = train_batch * train_repeats / (time.perf_counter() - start)
        except Exception as err:  # a method without a plain training step (e.g. a frozen stage)
            note = f"training step failed: {type(err).__name__}: {str(err)[:120]}"
    if device.type != "cpu":
        peak, kind = peak_memory_mb(device), f"{device.type}_max_allocated"
    else:
        peak, kind = max(_peak_rss_mb() - rss0, 0.0), "cpu_peak_rss_increase"
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    dtype = dtype if precision == "fp32" else f"{precision} autocast"
    for row in rows:
        row.update(train_batch=train_batch, train_images_per_s=train_ips, peak_memory_mb=peak, peak_memory_kind=kind,
                   device=device_name(device), precision=dtype, note=note)
    model.to("cpu")
    return rows


def workflow_num_classes(workflow: dict, default: int) -> int:
    """The dataset's class count without reading the data (synthetic, or a layout's class list)."""
    name = workflow["dataset"]["name"]
    if name == "synthetic":
        from .data.synthetic import CLASSES

        return len(CLASSES)
    from .data import layouts

    classes = getattr(layouts, f"{name.upper().replace('-', '_')}_CLASSES", None)
    return len(classes) if classes else default


def _without_run_files(cfg, runs_dir: Path, tmp: Path):
    """The model config with files of other runs replaced (a random posterior) or a reason to skip."""
    from .config import ModelConfig
    from .methods import method_options

    options = dict(cfg.model.options)
    prefix = str(runs_dir).rstrip("/") + "/"
    for key, value in list(options.items()):
        if not (isinstance(value, str) and value.startswith(prefix)) or Path(value).is_file():
            continue
        if key == "posterior_file" and options.get("posterior", "vqvae") != "dalle":
            from safetensors.torch import save_file

            from .methods.gss.vqvae import VQVAE

            o = method_options(cfg.model)
            posterior = VQVAE(o.codes, o.downsample, o.vq_width, o.code_dim)
            path = tmp / f"{cfg.name}-posterior.safetensors"
            save_file({f"posterior.{k}": v.contiguous() for k, v in posterior.state_dict().items()}, str(path))
            options[key] = str(path)
        else:
            return None, f"needs another run's file ({key}: {Path(value).relative_to(runs_dir)})"
    return ModelConfig(cfg.model.method, options), ""


WEIGHT_FILE_KEYS = ("pretrained_file", "pixnerd_file", "backbone_file", "weights_file")


def with_random_weights(cfg, runs_dir: Path, tmp: Path, classes: int):
    """The model config with every weight file the disk lacks replaced by random weights (``--flops-only``):
    ImageNet / PixNerd / backbone files dropped (random init), a missing DALL-E dVAE written at full size
    (random), another run's ``init_file`` written from a random model of that run's shape."""
    from .config import ModelConfig
    from .engine.checkpoint import save_weights
    from .methods import build_method

    options = dict(cfg.model.options)
    for key in WEIGHT_FILE_KEYS:
        if options.get(key) and not Path(options[key]).expanduser().is_file():
            options[key] = ""
    if options.get("posterior") == "dalle" and not Path(options.get("posterior_file", "")).is_file():
        from safetensors.torch import save_file

        from .methods.gss.dvae import FORMAT, DalleDecoder, DalleDVAE, DalleEncoder

        path = tmp / "dalle-dvae-random.safetensors"
        if not path.is_file():
            torch.manual_seed(0)
            dvae = DalleDVAE(DalleEncoder(), DalleDecoder())
            meta = {"format": FORMAT, **{k: str(v) for k, v in dvae.config().items()}, "source": "random (benchmark)"}
            save_file({k: v.contiguous() for k, v in dvae.state_dict().items()}, str(path), metadata=meta)
        options["posterior_file"] = str(path)
    if options.get("init_file") and not Path(options["init_file"]).is_file():
        prior = {k: v for k, v in options.items() if k not in ("stage", "inverse", "inverse_width", "init_file")}
        path = tmp / f"{cfg.name}-random-prior.safetensors"
        save_weights(path, build_method(ModelConfig(cfg.model.method, prior), classes))
        options["init_file"] = str(path)
    return ModelConfig(cfg.model.method, options)


def measure_flops(model, image_size: int, num_classes: int, train_step: bool = False) -> list[dict]:
    """FLOPs per image alone (``--flops-only``), batch 1, CPU: the forward (one ``predict``, 1 step where it
    takes steps) and, with ``train_step``, one training step (``training_loss`` and its backward at batch 2, per
    image; no optimizer; 2 as BatchNorm after a global pooling, smp's ASPP, needs two images when training)."""
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(1, 3, image_size, image_size, generator=gen)
    labels = torch.randint(0, num_classes, (1, image_size, image_size), generator=gen)
    kw = {"steps": 1} if step_counts(model) != [None] else {}
    model.eval()
    with torch.no_grad():
        flops, added = count_flops(lambda: model.predict(images, **kw, **_predict_kwargs(model, labels)))
    train_flops, note = "", ""
    if train_step and any(p.requires_grad for p in model.parameters()):
        model.train()
        torch.manual_seed(0)

        # batch 2 (per image: / 2): BatchNorm after a global pooling (smp's ASPP) needs 2 images when training
        images2 = torch.rand(2, 3, image_size, image_size, generator=gen)
        labels2 = torch.randint(0, num_classes, (2, image_size, image_size), generator=gen)

        def step():
            loss, _ = model.training_loss(images2, labels2)
            loss.backward()

        try:
            counted, added_train = count_flops(step)
            train_flops, added = counted / 2 / 1e9, added or added_train
        except Exception as err:  # a method without a plain training step
            note = f"; training step not counted: {type(err).__name__}: {str(err)[:120]}"
        model.zero_grad(set_to_none=True)
    dtype = str(next(model.parameters()).dtype).replace("torch.", "")
    return [{"gflops_per_image": flops / 1e9, "train_gflops_per_image": train_flops, "flops_note": SDPA_NOTE if added else "",
             "steps": kw.get("steps", ""),
             "infer_images_per_s": "", "train_batch": "", "train_images_per_s": "", "peak_memory_mb": "",
             "peak_memory_kind": "", "device": "cpu", "precision": dtype, "note": "flops only (random weights)" + note}]


def config_gpu_hours(rows: list[dict], runs: dict) -> list[dict]:
    """GPU-hour estimates of each measured config experiment's own schedule (``--flops-only`` rows: FLOPs at its crop)."""
    out = []
    for row in rows:
        if row.get("source") != "config" or row.get("status") != "ok" or row.get("steps") not in ("", 1):
            continue
        cfg = runs[row["experiment"]]
        iterations, batch, crop = cfg.optim.iterations, cfg.data.batch_size * cfg.train.accumulate, cfg.data.crop_size
        train_flops = 3 * row["gflops_per_image"] * 1e9 * iterations * batch
        counted = row.get("train_gflops_per_image") or 0.0
        out.append({
            "model": row["experiment"], "config": row["config"], "crop_size": f"{crop}x{crop}", "iterations": iterations,
            "batch": batch, "train_images": iterations * batch, "gflops_per_image_at_crop": round(row["gflops_per_image"], 3),
            "train_flops": f"{train_flops:.4g}", "assumed_mfu": ASSUMED_MFU, "assumed_peak_tflops": ASSUMED_PEAK_TFLOPS,
            "gpu_hours_estimate": round(train_flops / (ASSUMED_MFU * ASSUMED_PEAK_TFLOPS * 1e12) / 3600, 1),
            "train_gflops_per_image_counted": round(counted, 3) if counted else "",
            "gpu_hours_estimate_counted": round(counted * 1e9 * iterations * batch / (ASSUMED_MFU * ASSUMED_PEAK_TFLOPS * 1e12) / 3600, 1)
            if counted else "",
            "basis": f"assumed: {ASSUMED_MFU:.0%} MFU of {ASSUMED_PEAK_TFLOPS:g} TFLOP/s bf16 dense (H100-class); "
                     f"training FLOPs = 3 x forward FLOPs counted at the crop (random weights, batch 1, 1 step); "
                     f"_counted: one training step's forward + backward counted (no optimizer)",
        })
    return out


def paper_gpu_hours(flops_at: dict[str, tuple[float, int]], config_dir: Path = REPO / "workflow/config") -> list[dict]:
    """GPU-hour estimates of each measured paper-size model's schedule in the paper configs (assumed MFU).
    The configs are repository files (``workflow/config``), not package data: an installed genseg
    outside a checkout has none, and says so."""
    import yaml

    if not config_dir.is_dir():
        raise FileNotFoundError(f"{config_dir}: no workflow configs here; the GPU-hour estimates read the "
                                "repository's workflow/config/paper-*.yaml (run from a checkout)")
    from .config import merge

    rows = []
    for path in sorted(config_dir.glob("paper-*.yaml")):
        workflow = yaml.safe_load(path.read_text())
        for name, (gflops, size) in flops_at.items():
            if name not in workflow.get("experiments", {}):
                continue
            run = merge(workflow.get("defaults") or {}, workflow["experiments"][name] or {})
            crop = run.get("data", {}).get("crop_size", size)
            crop_h, crop_w = (crop, crop) if isinstance(crop, int) else crop
            iterations, batch = run["optim"]["iterations"], run["data"]["batch_size"]
            at_crop = gflops * crop_h * crop_w / size**2
            train_flops = 3 * at_crop * 1e9 * iterations * batch
            rows.append({
                "model": name, "config": path.name, "crop_size": f"{crop_h}x{crop_w}", "iterations": iterations, "batch": batch,
                "train_images": iterations * batch, "gflops_per_image_at_crop": round(at_crop, 3), "train_flops": f"{train_flops:.4g}",
                "assumed_mfu": ASSUMED_MFU, "assumed_peak_tflops": ASSUMED_PEAK_TFLOPS,
                "gpu_hours_estimate": round(train_flops / (ASSUMED_MFU * ASSUMED_PEAK_TFLOPS * 1e12) / 3600, 1),
                "basis": f"assumed: {ASSUMED_MFU:.0%} MFU of {ASSUMED_PEAK_TFLOPS:g} TFLOP/s bf16 dense (H100-class); "
                         f"training FLOPs = 3 x forward FLOPs measured at {size}px, scaled by area to the crop",
            })
    return rows


def _round(row: dict) -> dict:
    return {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in row.items()}


def write_csv(rows: list[dict], path: Path, columns: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(_round(r) for r in rows)


def plot(rows: list[dict], path: Path) -> None:
    """GFLOPs per image vs inference images/s, log axes, one point per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for row in rows:
        if row.get("status") != "ok" or not row.get("gflops_per_image") or not row.get("infer_images_per_s"):
            continue
        label = row["experiment"] + (f" ({row['steps']} st.)" if row.get("steps") != "" else "")
        marker = "s" if row["source"] == "paper" else "o"
        ax.scatter(row["gflops_per_image"], row["infer_images_per_s"], marker=marker)
        ax.annotate(label, (row["gflops_per_image"], row["infer_images_per_s"]), fontsize=6, xytext=(3, 3),
                    textcoords="offset points")
    ax.set(xscale="log", yscale="log", xlabel="forward GFLOPs per image", ylabel="inference images/s",
           title=f"genseg models on {rows[0]['device'] if rows else ''} (o config, s paper size)")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def benchmark(config: str | Path | dict, out: str | Path, paper_size: int = 512, paper_batch: int = 2, figure: str | Path = "",
              gpu_hours: str | Path = "", device: str = "cpu", num_classes: int = 150, experiments: list[str] | None = None,
              infer_repeats: int = 2, paper_models: list[str] | None = None, flops_only: bool = False, precision: str = "fp32",
              count_train_step: bool = False,
              log=print) -> list[dict]:
    """Measure the config's experiments (and the paper-size models) and write the CSV(s); returns the rows.
    ``config``: one workflow config (a file or a dict) or a list of them (rows of each, in order)."""
    import yaml

    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # random weights; no hub
    from .config import ModelConfig
    from .experiments import apply_overlay, experiment_seeds, run_configs, run_id
    from .methods import build_method
    from .methods.baselines import PAPER_MODELS

    dev = resolve_device(device)
    if precision != "fp32":
        from .engine.precision import check_precision

        check_precision(precision, dev)
    if flops_only and dev.type != "cpu":
        raise ValueError(f"genseg benchmark --flops-only counts FLOPs on the CPU; got --device {device}")
    peak = matmul_peak_tflops(dev) if dev.type != "cpu" else None
    rows: list[dict] = []
    hours: list[dict] = []
    cache: dict[str, list[dict]] = {}  # --flops-only: the same model at the same crop in several configs

    def finish(base: dict, measured: list[dict]) -> None:
        for m in measured:
            row = {**base, "status": "ok", **m}
            if peak and m["infer_images_per_s"]:
                row["mfu_infer"] = m["gflops_per_image"] * 1e9 * m["infer_images_per_s"] / (peak * 1e12)
                row["peak_tflops"] = peak
            if peak and m["train_images_per_s"] and m["steps"] in ("", 1):  # training: 3 x forward FLOPs (1 step)
                row["mfu_train"] = 3 * m["gflops_per_image"] * 1e9 * m["train_images_per_s"] / (peak * 1e12)
            rows.append(row)
            ips = lambda v: f"{v:.3g}" if v else "-"  # noqa: E731
            log(f"{row['experiment']:<28} {row['gflops_per_image']:>9.3f} GFLOPs  steps {row['steps'] or '-':>2}  "
                f"infer {ips(row['infer_images_per_s'])} img/s  train {ips(row['train_images_per_s'])} img/s", flush=True)

    configs = config if isinstance(config, (list, tuple)) else [config]
    with tempfile.TemporaryDirectory() as tmp:
        for one in configs:
            workflow = apply_overlay(one if isinstance(one, dict) else yaml.safe_load(Path(one).read_text()))
            classes = workflow_num_classes(workflow, num_classes)
            runs_dir = Path(tmp, "runs")
            runs = run_configs(workflow, "", runs_dir, weights_dir=Path(tmp, "weights"), require_upstream=False)  # random weights
            by_name = {}
            first = len(rows)
            for name in workflow["experiments"]:
                if experiments and name not in experiments:
                    continue
                cfg = by_name[name] = runs[run_id(name, experiment_seeds(workflow, name)[0])]
                base = {"experiment": name, "method": cfg.model.method, "source": "config", "image_size": cfg.data.crop_size,
                        "batch": 1 if flops_only else cfg.data.batch_size, "config": workflow["name"]}
                if flops_only:
                    model_cfg, reason = with_random_weights(cfg, runs_dir, Path(tmp), classes), ""
                else:
                    model_cfg, reason = _without_run_files(cfg, runs_dir, Path(tmp))
                if model_cfg is None:
                    rows.append({**base, "status": "skipped", "note": reason, "device": device_name(dev)})
                    log(f"{name:<28} skipped: {reason}")
                    continue
                key = repr((model_cfg.method, sorted((k, repr(v)) for k, v in model_cfg.options.items()
                                                      if k not in ("posterior_file", "init_file")), cfg.data.crop_size, classes))
                if flops_only and key in cache:
                    finish(base, [dict(m) for m in cache[key]])
                    continue
                torch.manual_seed(0)
                try:
                    model = build_method(model_cfg, classes)
                except (ValueError, FileNotFoundError, RuntimeError) as err:
                    rows.append({**base, "status": "skipped", "note": f"not built: {err}", "device": device_name(dev)})
                    continue
                if flops_only:
                    start = time.perf_counter()
                    measured = cache[key] = measure_flops(model, cfg.data.crop_size, classes, count_train_step)
                    measured[0]["note"] += f"; {classes} classes; counted in {time.perf_counter() - start:.0f} s"
                else:
                    measured = measure(model, cfg.data.crop_size, cfg.data.batch_size, cfg.data.batch_size, classes, dev,
                                       infer_repeats=infer_repeats, precision=precision)
                finish(base, [dict(m) for m in measured])
                del model
                if flops_only:  # written as it goes: a process killed for memory keeps the rows before
                    write_csv(rows, Path(out), COLUMNS)
                    if gpu_hours:
                        write_csv(hours + config_gpu_hours(rows[first:], by_name), Path(gpu_hours), GPU_HOURS_COLUMNS)
            if flops_only:
                hours += config_gpu_hours(rows[first:], by_name)
        flops_at = {}
        if paper_size > 0:
            for name, section in PAPER_MODELS.items():
                if paper_models and name not in paper_models:
                    continue
                options = {k: v for k, v in section.items() if k != "method"}
                torch.manual_seed(0)
                model = build_method(ModelConfig(section["method"], options), num_classes)
                base = {"experiment": name, "method": section["method"], "source": "paper", "image_size": paper_size,
                        "batch": 1 if flops_only else paper_batch}
                start = time.perf_counter()
                if flops_only:
                    measured = measure_flops(model, paper_size, num_classes, count_train_step)
                else:  # paper size on a CPU: no warm-up forward, one timed repetition (a forward takes seconds)
                    measured = measure(model, paper_size, paper_batch, paper_batch, num_classes, dev,
                                       infer_repeats=1 if dev.type == "cpu" else infer_repeats, warmup=dev.type != "cpu",
                                       precision=precision)
                for m in measured:
                    m["note"] = (m.get("note") + "; " if m.get("note") else "") + f"{num_classes} classes; measured in {time.perf_counter() - start:.0f} s"
                finish(base, measured)
                flops_at[name] = (measured[0]["gflops_per_image"], paper_size)
                del model
    write_csv(rows, Path(out), COLUMNS)
    if figure:
        plot(rows, Path(figure))
    if gpu_hours:
        write_csv(hours + paper_gpu_hours(flops_at), Path(gpu_hours), GPU_HOURS_COLUMNS)
    return rows
