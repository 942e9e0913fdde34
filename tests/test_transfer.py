"""Cross-dataset evaluation: single-source transfer mappings, per-domain splits, archive folder names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from genseg.config import ConfigError, DataConfig
from genseg.data.base import DataError
from genseg.data.fixtures import write_fixture
from genseg.data.layouts import load_split
from genseg.data.sources import eval_spec, transfer_targets
from genseg.data.taxonomy import converted_predictions, load_taxonomy, universal_to_dataset
from genseg.data.transfer import MAPPING_ROOT, load_mapping, shipped_mappings, transfer_table, unreachable
from genseg.experiments import domain_splits, eval_domains
from genseg.metrics import ConfusionMatrix
from genseg.report.tables import cross_domain, miou_by_domain, select_split, unreachable_note

UNREACHABLE = {  # target classes no source class maps to (README: "Cross-domain protocols")
    "camvid-to-idd_lite": 0, "cityscapes-to-idd_lite": 0, "cityscapes-to-camvid": 0,
    "camvid-to-cityscapes": 8, "idd_lite-to-camvid": 4, "idd_lite-to-cityscapes": 12,
}


def test_shipped_mappings_follow_the_road_taxonomy():
    """Every row is the road taxonomy's conversion of the source class (its merged class when it
    covers several), and the unreachable counts are the README's."""
    road = load_taxonomy("road")
    assert set(shipped_mappings()) == set(UNREACHABLE)
    for name in shipped_mappings():
        source, target = name.split("-to-")
        mapping = load_mapping(source, target)
        src, tgt = road.mapping(source), road.mapping(target)
        table = transfer_table(mapping, src.classes, tgt.classes)
        to_target = universal_to_dataset(road, target)
        for i, ids in enumerate(src.universal):
            universal = ids[0] if len(ids) == 1 else road.merged(ids)
            assert table[i] == to_target[universal], (name, src.classes[i])
        assert len(unreachable(table, tgt.classes)) == UNREACHABLE[name], name


def test_transfer_scores_unreachable_classes_as_errors():
    mapping = load_mapping("camvid", "cityscapes")
    city = load_taxonomy("road").mapping("cityscapes").classes
    camvid = load_taxonomy("road").mapping("camvid").classes
    table = transfer_table(mapping, camvid, city)
    assert table[camvid.index("Car")] == city.index("car") and table[camvid.index("Bicyclist")] == city.index("rider")
    assert unreachable(table, city) == ["wall", "traffic light", "terrain", "truck", "bus", "train", "motorcycle", "bicycle"]
    # a truck labelled in Cityscapes: the CamVid model can at best say Car -> car: every truck pixel is wrong
    label = torch.tensor([[city.index("truck")] * 2 + [city.index("car")] * 2])
    pred = converted_predictions(torch.tensor([[camvid.index("Car")] * 4]), table)
    matrix = ConfusionMatrix(len(city))
    matrix.update(pred, label)
    iou = matrix.compute()["iou"]
    assert iou[city.index("truck")] == 0.0 and iou[city.index("car")] == pytest.approx(0.5)
    assert matrix.compute()["miou"] == pytest.approx(0.25)
    # cityscapes terrain has no CamVid class: it maps to K (always wrong)
    back = transfer_table(load_mapping("cityscapes", "camvid"), city, camvid)
    assert back[city.index("terrain")] == len(camvid)


@pytest.mark.parametrize(("old", "new", "message"), [
    (",Bicyclist,living things,", ",Bicyclist,cyclists,", "row of 'Bicyclist': unknown target_class 'cyclists'"),
    ("10,Bicyclist,", "9,Bicyclist,", "duplicate source_id 9"),
    (",Sky,sky,", ",Heaven,sky,", "is not the model's classes"),
])
def test_mapping_errors_name_the_file(tmp_path, old, new, message):
    path = tmp_path / "camvid-to-idd_lite.csv"
    text = (MAPPING_ROOT / path.name).read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    road = load_taxonomy("road")
    with pytest.raises(DataError) as err:
        transfer_table(load_mapping("camvid", "idd_lite", path), road.mapping("camvid").classes, road.mapping("idd_lite").classes)
    assert str(path) in str(err.value) and message in str(err.value)
    with pytest.raises(DataError, match="no class mapping camvid-to-voc.csv .*shipped: camvid-to-cityscapes"):
        load_mapping("camvid", "voc")


def test_transfer_eval_spec_on_fixtures_and_archive_folder_names(tmp_path, monkeypatch):
    """A CamVid model tested on IDD-Lite (found as $GENSEG_DATA/idd20k_lite): IDD-Lite's own classes,
    CamVid's through the shipped table; a missing dataset lists the folder names tried."""
    write_fixture("camvid", tmp_path / "camvid", num_train=1, num_val=1, num_test=1, size=(16, 16))
    write_fixture("idd_lite", tmp_path / "data", num_train=1, num_val=1, size=(16, 16))
    monkeypatch.setenv("GENSEG_DATA", str(tmp_path / "data"))
    data = DataConfig(dataset="camvid", root=str(tmp_path / "camvid"), train_domains=("camvid",))
    assert transfer_targets(data, ["camvid", "idd_lite"]) == ["idd_lite"]
    spec, table = eval_spec(data, "val", "idd_lite")
    assert spec.classes[0] == "drivable" and len(spec.pairs) == 1 and "idd20k_lite" in str(spec.pairs[0][0])
    assert table.tolist() == [6, 5, 4, 0, 1, 5, 4, 4, 3, 2, 2]
    own, none = eval_spec(data, "test", "camvid")
    assert none is None and own.name == "camvid/test"
    with pytest.raises(DataError, match=r"no folder for dataset 'ade20k' in .*data \(\$GENSEG_DATA\): tried ade20k, ADEChallengeData2016, ADE20K"):
        load_split("ade20k", "", "val")
    (tmp_path / "data" / "ADEChallengeData2016").mkdir()
    with pytest.raises(DataError, match="ADEChallengeData2016/images/validation"):  # found; its layout checked next
        load_split("ade20k", "", "val")


def test_eval_domains_name_their_split_and_scale():
    evaluate = {"split": "test", "domains": ["camvid", {"name": "idd_lite", "split": "val", "scale": 0.75}]}
    assert eval_domains(evaluate) == [{"name": "camvid", "split": "test", "scale": None},
                                      {"name": "idd_lite", "split": "val", "scale": 0.75}]
    assert domain_splits(evaluate) == {"camvid": "test", "idd_lite": "val"}
    with pytest.raises(ConfigError, match="'camvid' listed twice"):
        eval_domains({"split": "test", "domains": ["camvid", {"name": "camvid", "split": "val"}]})
    with pytest.raises(ConfigError, match=r"evaluate.domains\[0\].scale must be > 0"):
        eval_domains({"split": "test", "domains": [{"name": "camvid", "scale": 0}]})


def test_eval_plan_per_split(tiny_config, tmp_path):
    from genseg.experiments import eval_plan

    cfg = tiny_config(tmp_path)
    evaluate = {"split": "test", "domains": ["clean", {"name": "shifted", "split": "val", "scale": 0.5}]}
    assert eval_plan(evaluate, cfg, split="test") == [("clean", {})]
    assert eval_plan(evaluate, cfg, split="val") == [("shifted", {}, {"scale": 0.5})]
    assert eval_plan(evaluate, cfg, with_sweeps=False, split="val") == []  # ablation variants: in-domain only


def rows(experiment, dataset, values):
    base = {"metric": "miou", "variant": "default", "method": "deeplabv3plus", "experiment": experiment, "seed": 0,
            "train_domains": "camvid", "dataset": dataset}
    return [dict(base, domain=d, split=s, value=v, in_domain=d == "camvid") for (d, s), v in values.items()]


def test_tables_read_each_domains_own_split():
    """camvid on test, idd_lite on val: rows of other splits are left out, columns name the split."""
    frame = pd.DataFrame(rows("b", "camvid", {("camvid", "test"): 0.5, ("camvid", "val"): 0.9, ("idd_lite", "val"): 0.2})
                         + [dict(rows("b", "camvid", {("idd_lite", "val"): 2})[0], metric="unreachable_classes"),
                            *[dict(rows("b", "camvid", {("idd_lite", "val"): 0.1})[0], metric=f"iou/{c}") for c in "abcdefg"]])
    splits = {"camvid": "test", "idd_lite": "val"}
    assert len(select_split(frame[frame.metric == "miou"], splits)) == 2
    table = cross_domain(frame, split=splits)
    assert list(table.columns)[2:] == ["idd_lite (val)", "h.mean", "in-domain (camvid test)"]
    assert table.loc["b", "idd_lite (val)"] == "20.0" and table.loc["b", "in-domain (camvid test)"] == "50.0"
    assert unreachable_note(frame, splits).endswith("idd_lite from camvid: 2 of 7.")
    assert list(miou_by_domain(frame, split=splits).columns)[:2] == ["camvid (in-domain, test)", "idd_lite (val)"]
    # one split for every domain: the old columns (the caption names the split)
    same = cross_domain(frame.assign(split="test"), split={"camvid": "test", "idd_lite": "test"})
    assert list(same.columns)[2:] == ["idd_lite", "h.mean", "in-domain"]
    assert np.isclose(float(same.loc["b", "idd_lite"]), 20.0)
