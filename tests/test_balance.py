"""data.balance: MSeg's equal share of every training dataset (GSS's RepeatDataset factors), in the
train stream (genseg.data.base.StreamSampler), deterministic, resumable and sharded as the plain one."""

from itertools import islice

import numpy as np
import pytest

from genseg.config import ConfigError, RunConfig
from genseg.data.base import StreamSampler
from genseg.data.layouts import load_split
from genseg.data.taxonomy import union


def _indices(sampler, count):
    return np.array([index for index, _ in islice(iter(sampler), count)])


def test_none_keeps_the_plain_stream_bit_for_bit():
    """The stream every earlier run trained on (pinned), whatever the union's parts."""
    first = [(104, 0), (85, 1), (39, 2), (5, 3), (16, 4), (75, 5), (27, 6), (13, 7), (20, 8), (91, 9), (34, 10), (90, 11)]
    assert list(islice(iter(StreamSampler(110, 0)), 12)) == first
    resumed = [(36, 105), (71, 106), (54, 107), (5, 108), (19, 109), (60, 110), (37, 111), (73, 112), (89, 113), (7, 114)]
    assert list(islice(iter(StreamSampler(110, 3, start=105)), 10)) == resumed
    assert list(islice(iter(StreamSampler(110, 0, parts=(110,))), 12)) == first  # one dataset: nothing to balance


def test_equal_gives_a_10_image_and_a_100_image_dataset_half_the_samples_each():
    equal, plain = StreamSampler(110, 0, parts=(10, 100)), StreamSampler(110, 0)
    batches = _indices(equal, 16 * 125).reshape(125, 16)  # 125 batches of 16: 2000 samples, 10 epochs
    assert (batches < 10).mean() == 0.5  # over whole epochs: exactly half
    assert 0.45 < (batches[:61] < 10).mean() < 0.55  # mid-epoch: about half (a batch is a random draw, as GSS's)
    assert np.bincount(batches[batches < 10]).tolist() == [100] * 10  # each small image as often
    assert sorted(np.unique(batches[batches >= 10]).tolist()) == list(range(10, 110))
    assert abs((_indices(plain, 2000) < 10).mean() - 10 / 110) < 0.03  # without: its share of the images


def test_equal_with_seven_datasets_gives_each_a_seventh_and_depends_on_the_seed():
    parts = (5, 7, 3, 40, 7, 9, 5)  # as MSeg's: one large dataset, the others 7-40x smaller
    edges = np.cumsum((0,) + parts)
    stream = _indices(StreamSampler(sum(parts), 1, parts=parts), 7 * 40 * 3)
    assert np.bincount(np.searchsorted(edges, stream, side="right") - 1).tolist() == [120] * 7
    assert not np.array_equal(stream, _indices(StreamSampler(sum(parts), 2, parts=parts), 7 * 40 * 3))


@pytest.mark.parametrize("start", [0, 137, 200])
def test_equal_resumes_mid_epoch_with_the_same_sequence(start):
    full = list(islice(iter(StreamSampler(110, 4, parts=(10, 100))), 450))
    assert list(islice(iter(StreamSampler(110, 4, start=start, parts=(10, 100))), 450 - start)) == full[start:]


@pytest.mark.parametrize("start", [0, 36])
def test_equal_ranks_read_the_one_process_stream_in_contiguous_shares(start):
    one = _indices(StreamSampler(13, 3, start=start, parts=(3, 10)), 6 * 20).reshape(20, 6)
    ranks = [_indices(StreamSampler(13, 3, start=start, rank=r, world=3, batch=6, parts=(3, 10)), 2 * 20).reshape(20, 2)
             for r in range(3)]
    assert np.array_equal(np.concatenate(ranks, axis=1), one)


def test_parts_must_add_up_to_the_dataset():
    with pytest.raises(ValueError, match=r"parts \[3, 4\] must be sizes >= 1 adding up to 10"):
        StreamSampler(10, 0, parts=(3, 4))


def test_unions_and_synthetic_domains_record_their_parts(tiny_synthetic):
    clean = load_split("synthetic", str(tiny_synthetic), "train", ["clean"])
    both = load_split("synthetic", str(tiny_synthetic), "train", ["clean", "shifted"])
    assert clean.parts == () and both.parts == (24, 24)
    assert union([both, clean]).parts == (24, 24, 24) and union([clean]).parts == ()


def test_balance_is_checked_and_defaults_to_none():
    assert RunConfig.from_dict({}).data.balance == "none"
    with pytest.raises(ConfigError, match=r"data.balance must be one of none, equal, got 'uniform'"):
        RunConfig.from_dict({"data": {"balance": "uniform"}})


@pytest.mark.parametrize("balance, parts", [("none", ()), ("equal", (24, 24))])
def test_training_samples_with_the_unions_parts_when_balanced(balance, parts, tiny_synthetic, tiny_config, tmp_path, monkeypatch):
    from toy_method import TOY_SPEC

    from genseg import methods
    from genseg.engine import train as train_module

    seen = []

    class Recording(StreamSampler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen.append(self.parts)

    monkeypatch.setitem(methods.METHODS, "toy", TOY_SPEC)
    monkeypatch.setattr(train_module, "StreamSampler", Recording)
    cfg = tiny_config(tiny_synthetic, model={"method": "toy"}, optim__iterations=1, train__val_every=0, train__checkpoint_every=0,
                      data__train_domains=["clean", "shifted"], data__crop_size=16, data__balance=balance)
    train_module.train(cfg, tmp_path / "run")
    assert seen == [parts]


def test_balanced_training_resumes_to_the_straight_runs_weights(tiny_synthetic, tiny_config, tmp_path, monkeypatch):
    """The checkpoint's step restarts the balanced stream where it stopped: bitwise the straight run."""
    from test_engine import assert_resume_is_exact
    from toy_method import TOY_SPEC

    from genseg import methods
    from genseg.engine.train import train

    monkeypatch.setitem(methods.METHODS, "toy", TOY_SPEC)
    cfg = tiny_config(tiny_synthetic, model={"method": "toy"}, data__train_domains=["clean", "shifted"], data__crop_size=16,
                      data__balance="equal", train__val_every=0)
    train(cfg, tmp_path / "straight")
    assert_resume_is_exact(cfg, tmp_path / "straight", tmp_path / "resumed", monkeypatch)
