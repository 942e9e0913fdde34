"""The embedded synthetic segmentation dataset: procedurally generated scenes.

Each scene has a sky above a random, gently sloping and undulating horizon, ground
below it, and 2 to 6 textured objects at random positions, sizes and rotations, drawn
in order so later objects occlude earlier ones. A class is carried by its texture, its
shape and its context, not by the colour of a single pixel: classes share colour
families (the same hue distribution, with per-instance jitter of hue, saturation and
value, and every texture mixing a light and a dark shade of it), so within a family
only texture type, stripe orientation, shape or position tell them apart. Stripe
orientation is fixed in the image frame, whatever the object's rotation.

Classes (id, name: colour family, texture, shape or context):

    0  sky       blue    smooth vertical gradient    region above the horizon
    1  ground    ochre   fine grain noise            region below the horizon
    2  pond      blue    wavy ripples                irregular blob
    3  crate     ochre   checkerboard                rotated rectangle
    4  flag      red     diagonal stripes (45 deg)   triangle
    5  ladybird  red     dots                        ellipse
    6  bush      green   soft blotches               irregular blob
    7  hedge     green   horizontal stripes          rotated rectangle
    8  ring      violet  smooth radial gradient      ring (annulus)
    9  lantern   violet  vertical stripes            ellipse
    10 kite      red     diagonal stripes (45 deg)   rotated rectangle
    11 disc      violet  smooth radial gradient      ellipse

Pairs told apart by shape alone: flag / kite (triangle vs rectangle) and ring / disc
(hole vs filled); sky / pond and ground / crate differ in texture and context.

``num_classes`` (default 12, the list above; 3 to 227) sets the class count: fewer keep the
first N; more add object classes after these 12, one per remaining (colour family, texture,
shape) combination of the five families, nine textures (stripes at 0, 45, 90 and 135 deg,
checkerboard, dots, waves, blotches, radial gradient) and five shapes, in a fixed seeded
order (:func:`class_styles`), named ``<family>-<texture>-<shape>`` (e.g. ``red-dotted-ring``).
Each object is drawn uniformly from the object classes (ids 2..N-1), so with N classes an
object class appears in about 4 / (N - 2) of the objects (4 objects per image on average).

Labels hold the class ids; a 1-pixel band on every boundary between different classes
(on the side of the region drawn later) is ``IGNORE_INDEX`` = 255, like the border in
PASCAL VOC.

Domains (same classes and layout statistics, different look):

    clean    as described above
    shifted  global colour shift (hue rotation by 25 deg, channel gains 1.08, 0.96,
             0.88) plus Gaussian pixel noise (sigma 0.05 of the range)
    blurred  textures rendered at 1.7x their period, then a Gaussian blur
             (sigma 1 pixel at 64 px)

On-disk layout written by :func:`generate`:

    <root>/meta.json
    <root>/<domain>/<split>/images/<index:05d>.png   RGB, image_size x image_size
    <root>/<domain>/<split>/labels/<index:05d>.png   mode "L", values 0..N-1 and 255

with ``<domain>`` among the generated domains, ``<split>`` in train, val, test and
``<index>`` counting from 00000 within each split. ``meta.json`` holds::

    {"name": "synthetic", "classes": [...], "ignore_index": 255, "domains": [...],
     "splits": {"train": n, "val": n, "test": n}, "image_size": s, "seed": s,
     "version": 1}

Image ``index`` of split ``split_index`` (train 0, val 1, test 2) in domain
``domain_index`` (its position in ``DOMAINS``) is rendered from
``np.random.default_rng([seed, domain_index, split_index, index])``, so the files are
byte-identical whenever they are regenerated with the same arguments, whatever the
number of worker processes.
"""

from __future__ import annotations

import colorsys
import json
import multiprocessing
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image
from scipy import ndimage

IGNORE_INDEX = 255
DOMAINS: tuple[str, ...] = ("clean", "shifted", "blurred")
SPLITS: tuple[str, ...] = ("train", "val", "test")
VERSION = 1

MIN_OBJECTS, MAX_OBJECTS = 2, 6
REFERENCE_SIZE = 64  # texture periods and blur are given in pixels at this image size


@dataclass(frozen=True)
class ClassStyle:
    """How one class looks: colour family hue (degrees), texture and shape."""

    name: str
    hue: float
    texture: str
    shape: str
    stripe_angle: float = 0.0  # direction the stripes run, degrees (stripes only)


@dataclass(frozen=True)
class DomainStyle:
    """How one domain changes the rendering."""

    name: str
    texture_scale: float = 1.0
    blur_sigma: float = 0.0
    noise_sigma: float = 0.0
    hue_rotation: float = 0.0
    channel_gains: tuple[float, float, float] = (1.0, 1.0, 1.0)


BLUE, OCHRE, RED, GREEN, VIOLET = 215.0, 38.0, 355.0, 118.0, 285.0

CLASS_STYLES: tuple[ClassStyle, ...] = (
    ClassStyle("sky", BLUE, "vertical_gradient", "top_band"),
    ClassStyle("ground", OCHRE, "grain", "bottom_band"),
    ClassStyle("pond", BLUE, "waves", "blob"),
    ClassStyle("crate", OCHRE, "checker", "rectangle"),
    ClassStyle("flag", RED, "stripes", "triangle", stripe_angle=45.0),
    ClassStyle("ladybird", RED, "dots", "ellipse"),
    ClassStyle("bush", GREEN, "blotches", "blob"),
    ClassStyle("hedge", GREEN, "stripes", "rectangle", stripe_angle=0.0),
    ClassStyle("ring", VIOLET, "radial_gradient", "ring"),
    ClassStyle("lantern", VIOLET, "stripes", "ellipse", stripe_angle=90.0),
    ClassStyle("kite", RED, "stripes", "rectangle", stripe_angle=45.0),
    ClassStyle("disc", VIOLET, "radial_gradient", "ellipse"),
)
CLASSES: tuple[str, ...] = tuple(style.name for style in CLASS_STYLES)
SKY, GROUND = CLASSES.index("sky"), CLASSES.index("ground")
OBJECT_CLASSES: tuple[int, ...] = tuple(i for i in range(len(CLASSES)) if i not in (SKY, GROUND))
assert (SKY, GROUND) == (0, 1)

# Classes beyond the 12: every other (family, texture, shape) combination, in a seeded order.
FAMILIES = (("blue", BLUE), ("ochre", OCHRE), ("red", RED), ("green", GREEN), ("violet", VIOLET))
TEXTURES = (("hstriped", "stripes", 0.0), ("diagonal", "stripes", 45.0), ("vstriped", "stripes", 90.0),
            ("antidiagonal", "stripes", 135.0), ("checked", "checker", 0.0), ("dotted", "dots", 0.0),
            ("wavy", "waves", 0.0), ("blotchy", "blotches", 0.0), ("shaded", "radial_gradient", 0.0))
SHAPES = ("blob", "rectangle", "triangle", "ellipse", "ring")
EXTRA_ORDER_SEED = 0


def _extra_styles() -> tuple[ClassStyle, ...]:
    base = {(s.hue, s.texture, s.stripe_angle, s.shape) for s in CLASS_STYLES}
    extra = [ClassStyle(f"{family}-{word}-{shape}", hue, texture, shape, stripe_angle=angle)
             for family, hue in FAMILIES for word, texture, angle in TEXTURES for shape in SHAPES
             if (hue, texture, angle, shape) not in base]
    order = np.random.default_rng(EXTRA_ORDER_SEED).permutation(len(extra))
    return tuple(extra[i] for i in order)


EXTRA_STYLES: tuple[ClassStyle, ...] = _extra_styles()
MAX_CLASSES = len(CLASS_STYLES) + len(EXTRA_STYLES)  # 227


def class_styles(num_classes: int = len(CLASSES)) -> tuple[ClassStyle, ...]:
    """The first ``num_classes`` styles: the 12 above, then :data:`EXTRA_STYLES`."""
    if not 3 <= num_classes <= MAX_CLASSES:
        raise ValueError(f"num_classes must be 3 to {MAX_CLASSES} (sky, ground and at least one object class), got {num_classes}")
    return (CLASS_STYLES + EXTRA_STYLES)[:num_classes]

DOMAIN_STYLES: tuple[DomainStyle, ...] = (
    DomainStyle("clean"),
    DomainStyle("shifted", noise_sigma=0.05, hue_rotation=25.0, channel_gains=(1.08, 0.96, 0.88)),
    DomainStyle("blurred", texture_scale=1.7, blur_sigma=1.0),
)
assert tuple(style.name for style in DOMAIN_STYLES) == DOMAINS


def domain_style(domain: str) -> DomainStyle:
    """The style of ``domain``; an unknown name raises ValueError listing the known ones."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown synthetic domain {domain!r}; allowed domains: {', '.join(DOMAINS)}")
    return DOMAIN_STYLES[DOMAINS.index(domain)]


# ---------------------------------------------------------------------------------------
# Rendering


def _hsv(hue_deg: float, saturation: float, value: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, saturation, value))


def _instance_colours(rng: np.random.Generator, hue: float) -> tuple[np.ndarray, np.ndarray]:
    """A light and a dark shade of the colour family ``hue``, jittered per instance."""
    hues = hue + rng.uniform(-22.0, 22.0, size=2)
    light = _hsv(hues[0], rng.uniform(0.35, 0.85), rng.uniform(0.65, 0.95))
    dark = _hsv(hues[1], rng.uniform(0.35, 0.85), rng.uniform(0.25, 0.50))
    return light, dark


def _square_wave(phase: np.ndarray, period: float) -> np.ndarray:
    """Square wave in [0, 1] of ``phase`` (in cycles), its edges smoothed over one pixel."""
    distance = np.abs(phase % 1.0 - 0.5) - 0.25  # in cycles, > 0 on the first half-period
    return np.clip(distance * period + 0.5, 0.0, 1.0)


def _texture(
    style: ClassStyle, rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, scale: float,
    frame: tuple[float, float, float],
) -> np.ndarray:
    """Texture value in [0, 1] over the whole grid (0 = light shade, 1 = dark shade).

    ``scale`` multiplies every texture period. ``frame`` places the gradients: an
    object's (centre x, centre y, radius), or a band's (unused, top row, bottom row).
    """
    kind = style.texture
    phase = rng.uniform(0.0, 1.0)
    if kind == "stripes":
        angle = np.deg2rad(style.stripe_angle + rng.uniform(-8.0, 8.0))
        period = 6.0 * scale * rng.uniform(0.85, 1.15)
        across = -xx * np.sin(angle) + yy * np.cos(angle)
        return _square_wave(across / period + phase, period)
    if kind == "checker":
        angle = np.deg2rad(rng.uniform(-10.0, 10.0))
        cell = 3.5 * scale * rng.uniform(0.85, 1.15)
        u = (xx * np.cos(angle) + yy * np.sin(angle)) / cell + phase
        v = (-xx * np.sin(angle) + yy * np.cos(angle)) / cell + rng.uniform(0.0, 1.0)
        su, sv = 2.0 * _square_wave(u / 2.0, 2.0 * cell) - 1.0, 2.0 * _square_wave(v / 2.0, 2.0 * cell) - 1.0
        return 0.5 + 0.5 * su * sv
    if kind == "dots":
        period = 6.0 * scale * rng.uniform(0.9, 1.1)
        du = (xx / period + phase) % 1.0 - 0.5
        dv = (yy / period + rng.uniform(0.0, 1.0)) % 1.0 - 0.5
        return np.clip((0.3 - np.hypot(du, dv)) * period + 0.5, 0.0, 1.0)
    if kind == "waves":
        period = 5.0 * scale * rng.uniform(0.9, 1.1)
        wobble = 1.5 * scale * np.sin(2.0 * np.pi * xx / (14.0 * scale) + rng.uniform(0.0, 2.0 * np.pi))
        return 0.5 + 0.5 * np.sin(2.0 * np.pi * ((yy + wobble) / period + phase))
    if kind == "grain":
        cell = scale
        shape = (int(np.ceil(xx.shape[0] / cell)) + 1, int(np.ceil(xx.shape[1] / cell)) + 1)
        noise = rng.uniform(0.0, 1.0, size=shape)
        return noise[(yy / cell).astype(int), (xx / cell).astype(int)]
    if kind == "blotches":
        noise = ndimage.gaussian_filter(rng.standard_normal(xx.shape), sigma=1.6 * scale, mode="wrap")
        noise /= noise.std() + 1e-12
        return 1.0 / (1.0 + np.exp(-3.0 * noise))
    if kind == "radial_gradient":
        cx, cy, radius = frame
        distance = np.hypot(xx - cx, yy - cy) / radius
        return np.clip(1.6 * (distance - 0.45), 0.0, 1.0)
    if kind == "vertical_gradient":
        top, bottom = frame[1], frame[2]
        return np.clip((yy - top) / max(bottom - top, 1.0), 0.0, 1.0)
    raise ValueError(f"unknown texture {kind!r}")


def _shape_mask(
    shape: str, rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Mask of one object of ``shape`` at a random place, size and rotation, and its frame."""
    size = xx.shape[0]
    cx, cy = rng.uniform(0.08, 0.92, size=2) * size
    radius = rng.uniform(0.13, 0.28) * size
    theta = rng.uniform(0.0, 2.0 * np.pi)
    aspect = rng.uniform(0.55, 1.0)
    dx, dy = xx - cx, yy - cy
    u = (dx * np.cos(theta) + dy * np.sin(theta)) / radius
    v = (-dx * np.sin(theta) + dy * np.cos(theta)) / (radius * aspect)
    if shape == "ellipse":
        mask = u * u + v * v <= 1.0
    elif shape == "rectangle":
        mask = (np.abs(u) <= 0.85) & (np.abs(v) <= 0.85)
    elif shape == "triangle":
        mask = np.ones(xx.shape, dtype=bool)
        for k in range(3):
            normal = 2.0 * np.pi * k / 3.0
            mask &= u * np.cos(normal) + v * np.sin(normal) <= 0.65
    elif shape == "ring":
        rho2 = u * u + v * v
        mask = (rho2 <= 1.0) & (rho2 >= rng.uniform(0.45, 0.6) ** 2)
    elif shape == "blob":
        phi = np.arctan2(v, u)
        boundary = np.ones(xx.shape)
        for k in (2, 3, 5):
            boundary += rng.uniform(0.0, 0.18) * np.cos(k * phi + rng.uniform(0.0, 2.0 * np.pi))
        mask = np.hypot(u, v) <= boundary
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return mask, (cx, cy, radius)


def _horizon(rng: np.random.Generator, xx: np.ndarray) -> np.ndarray:
    """Row of the horizon at each pixel's column: random height, slope and undulation."""
    size = xx.shape[1]
    height = rng.uniform(0.3, 0.6) * size
    slope = rng.uniform(-0.15, 0.15)
    amplitude = rng.uniform(0.0, 0.05) * size
    wavelength = rng.uniform(0.5, 1.5) * size
    phase = rng.uniform(0.0, 2.0 * np.pi)
    return height + slope * (xx - size / 2) + amplitude * np.sin(2.0 * np.pi * xx / wavelength + phase)


def _boundary_band(label: np.ndarray, layer: np.ndarray) -> np.ndarray:
    """1-pixel band where 4-neighbours differ in class, on the side of the later layer."""
    band = np.zeros(label.shape, dtype=bool)
    for axis in (0, 1):
        first = [slice(None), slice(None)]
        second = [slice(None), slice(None)]
        first[axis], second[axis] = slice(None, -1), slice(1, None)
        first_t, second_t = tuple(first), tuple(second)
        differs = label[first_t] != label[second_t]
        first_on_top = layer[first_t] > layer[second_t]
        band[first_t] |= differs & first_on_top
        band[second_t] |= differs & ~first_on_top
    return band


def _apply_domain(image: np.ndarray, style: DomainStyle, rng: np.random.Generator, size: int) -> np.ndarray:
    """Domain effects on a float (H, W, 3) image in [0, 1]."""
    if style.hue_rotation:
        angle = np.deg2rad(style.hue_rotation)
        cos, sin = np.cos(angle), np.sin(angle)
        cross = np.array([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]])
        rotation = cos * np.eye(3) + (1.0 - cos) / 3.0 * np.ones((3, 3)) + sin / np.sqrt(3.0) * cross
        image = image @ rotation.T
    image = image * np.asarray(style.channel_gains)
    if style.blur_sigma:
        sigma = style.blur_sigma * size / REFERENCE_SIZE
        image = ndimage.gaussian_filter(image, sigma=(sigma, sigma, 0.0), mode="nearest")
    if style.noise_sigma:
        image = image + rng.normal(0.0, style.noise_sigma, size=image.shape)
    return image


def render_scene(rng: np.random.Generator, image_size: int, domain: str,
                 num_classes: int = len(CLASSES)) -> tuple[np.ndarray, np.ndarray]:
    """One scene: (H x W x 3 uint8 image, H x W uint8 label with 255 on boundaries)."""
    style = domain_style(domain)
    styles = class_styles(num_classes)
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8, got {image_size}")
    scale = style.texture_scale * image_size / REFERENCE_SIZE
    yy, xx = np.mgrid[0:image_size, 0:image_size].astype(np.float64)
    image = np.empty((image_size, image_size, 3))
    label = np.empty((image_size, image_size), dtype=np.uint8)
    layer = np.empty((image_size, image_size), dtype=np.int16)

    horizon = _horizon(rng, xx)
    sky = yy < horizon
    for class_id, mask, layer_id, frame in (
        (SKY, sky, 0, (0.0, 0.0, float(horizon.max()))),
        (GROUND, ~sky, 1, (0.0, float(horizon.min()), float(image_size))),
    ):
        _paint(image, label, layer, mask, class_id, layer_id, _texture_for(styles[class_id], rng, xx, yy, scale, frame))

    for layer_id in range(2, 2 + int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))):
        class_id = 2 + int(rng.integers(num_classes - 2))  # an object class: ids after sky and ground
        mask, frame = _shape_mask(styles[class_id].shape, rng, xx, yy)
        _paint(image, label, layer, mask, class_id, layer_id, _texture_for(styles[class_id], rng, xx, yy, scale, frame))

    label[_boundary_band(label, layer)] = IGNORE_INDEX
    image = _apply_domain(image, style, rng, image_size)
    return np.clip(image * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8), label


def _texture_for(style: ClassStyle, rng: np.random.Generator, xx: np.ndarray, yy: np.ndarray, scale: float,
                 frame: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(texture, light shade, dark shade) of one instance of a class of ``style``."""
    light, dark = _instance_colours(rng, style.hue)
    return _texture(style, rng, xx, yy, scale, frame), light, dark


def _paint(image: np.ndarray, label: np.ndarray, layer: np.ndarray, mask: np.ndarray, class_id: int,
           layer_id: int, look: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Draw one region over what is there: colours, class id and layer."""
    texture, light, dark = look
    image[mask] = light + (dark - light) * texture[mask][:, None]
    label[mask] = class_id
    layer[mask] = layer_id


# ---------------------------------------------------------------------------------------
# Writing a dataset


@dataclass(frozen=True)
class _SampleJob:
    """One image/label pair to render and write (picklable for worker processes)."""

    folder: str  # <tmp root>/<domain>/<split>
    domain: str
    seed: int
    domain_index: int
    split_index: int
    index: int
    image_size: int
    num_classes: int


def _write_sample(job: _SampleJob) -> None:
    rng = np.random.default_rng([job.seed, job.domain_index, job.split_index, job.index])
    image, label = render_scene(rng, job.image_size, job.domain, job.num_classes)
    name = f"{job.index:05d}.png"
    folder = Path(job.folder)
    Image.fromarray(image).save(folder / "images" / name, format="PNG")
    Image.fromarray(label).save(folder / "labels" / name, format="PNG")


def _run_jobs(jobs: list[_SampleJob], workers: int) -> None:
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            _write_sample(job)
        return
    chunksize = max(1, min(64, len(jobs) // (4 * workers)))
    with multiprocessing.get_context().Pool(workers) as pool:
        for _ in pool.imap_unordered(_write_sample, jobs, chunksize=chunksize):
            pass


def _meta(seed: int, image_size: int, counts: dict[str, int], domains: tuple[str, ...], num_classes: int) -> dict:
    return {
        "name": "synthetic",
        "classes": [style.name for style in class_styles(num_classes)],
        "ignore_index": IGNORE_INDEX,
        "domains": list(domains),
        "splits": dict(counts),
        "image_size": image_size,
        "seed": seed,
        "version": VERSION,
    }


def _check_target(root: Path, meta: dict, overwrite: bool) -> None:
    """Refuse to replace a non-empty ``root`` unless ``overwrite``."""
    if not root.exists() and not root.is_symlink():
        return
    if root.is_dir() and not root.is_symlink() and not any(root.iterdir()):
        return
    if overwrite and root.is_dir() and not root.is_symlink():
        return
    meta_path = root / "meta.json"
    same = False
    if meta_path.is_file():
        try:
            same = json.loads(meta_path.read_text()) == meta
        except (OSError, ValueError):
            pass
    what = "already holds this synthetic dataset (same meta.json)" if same else "already exists and is not empty"
    raise FileExistsError(f"{root} {what}; remove it or pass overwrite=True")


def _install(tmp: Path, root: Path) -> None:
    """Move the finished ``tmp`` onto ``root``, replacing an empty or old ``root``."""
    if root.is_dir() and any(root.iterdir()):
        old = root.parent / f"{root.name}.old-{os.getpid()}"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(root, old)
        os.replace(tmp, root)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, root)


def generate(
    root: str | os.PathLike[str],
    *,
    seed: int = 0,
    image_size: int = 64,
    num_train: int = 1000,
    num_val: int = 200,
    num_test: int = 200,
    domains: Iterable[str] = DOMAINS,
    num_classes: int = len(CLASSES),
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write the dataset under ``root`` (layout in the module docstring) and return it.

    Files are written to ``<root>.tmp-<pid>`` and renamed onto ``root`` at the end, so
    an interrupted run leaves nothing at ``root``. A non-empty ``root`` raises
    FileExistsError unless ``overwrite``. ``workers=None`` uses every CPU core.
    """
    root = Path(root)
    domains = tuple(domains)
    for domain in domains:
        domain_style(domain)
    if not domains:
        raise ValueError(f"no domains given; allowed domains: {', '.join(DOMAINS)}")
    if len(set(domains)) != len(domains):
        raise ValueError(f"duplicate domains in {domains}")
    counts = dict(zip(SPLITS, (num_train, num_val, num_test)))
    for split, count in counts.items():
        if count < 0:
            raise ValueError(f"num_{split} must be >= 0, got {count}")
    if image_size < 8:
        raise ValueError(f"image_size must be at least 8, got {image_size}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    class_styles(num_classes)  # checks the range
    workers = (os.cpu_count() or 1) if workers is None else workers
    meta = _meta(seed, image_size, counts, domains, num_classes)
    _check_target(root, meta, overwrite)

    tmp = root.parent / f"{root.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        jobs = []
        for domain in domains:
            for split_index, split in enumerate(SPLITS):
                folder = tmp / domain / split
                (folder / "images").mkdir(parents=True)
                (folder / "labels").mkdir(parents=True)
                jobs += [
                    _SampleJob(str(folder), domain, seed, DOMAINS.index(domain), split_index, index, image_size, num_classes)
                    for index in range(counts[split])
                ]
        _run_jobs(jobs, workers)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
        _install(tmp, root)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return root
