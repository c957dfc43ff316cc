"""``mnv1.data.check``: pure-Python config problems, each naming the key, value and remedy."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mnv1.config import DataConfig, SyntheticConfig
from mnv1.data import check, locate


def test_default_synthetic_config_has_no_problems(tmp_path: Path) -> None:
    assert check.problems(DataConfig(data_dir=str(tmp_path))) == []


def test_check_does_not_import_tensorflow(tmp_path: Path) -> None:
    # The validator runs problems() for every grid cell before any TF process: it must stay
    # pure Python. Checked in a fresh interpreter, where nothing else imported TF first.
    code = f"""
import json, sys
from mnv1.config import DataConfig
from mnv1.data.check import problems
for source, name in [("synthetic", "mnv1_synthetic"), ("tfds", "imagenet2012"),
                     ("tfds", "tf_flowers"), ("folder", "x")]:
    where = {str(tmp_path)!r}
    problems(DataConfig(source=source, name=name, data_dir=where, path=where))
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
                        ("tensorflow", "tensorflow_datasets", "keras"))))
"""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_bad_common_values_name_the_key(tmp_path: Path) -> None:
    cfg = DataConfig(
        source="s3", augment="heavy", val_fraction=1.5, max_val_examples=0, data_dir=str(tmp_path)
    )
    found = check.problems(cfg)
    assert [line.split(":")[0] for line in found] == [
        "data.source='s3'",
        "data.val_fraction=1.5",
        "data.augment='heavy'",
        "data.max_val_examples=0",
    ]
    assert "data.source='s3': must be one of synthetic, tfds, folder" in found[0]
    assert "data.augment='heavy': must be one of standard, light, none" in found[2]


def test_synthetic_sizes_are_checked(tmp_path: Path) -> None:
    cfg = DataConfig(
        data_dir=str(tmp_path),
        synthetic=SyntheticConfig(train_size=5, val_size=0, num_classes=26, image_size=16, seed=-1),
    )
    text = "\n".join(check.problems(cfg))
    for key in ("num_classes=26", "val_size=0", "image_size=16", "seed=-1"):
        assert f"data.synthetic.{key}" in text
    # Every class needs an example: the bound is num_classes, when that one is valid.
    assert "data.synthetic.train_size" not in text
    cfg.synthetic = SyntheticConfig(train_size=5, num_classes=10)
    assert check.problems(cfg) == [
        "data.synthetic.train_size=5: must be an integer >= data.synthetic.num_classes=10 "
        "(every class needs an example)"
    ]


def test_synthetic_source_with_another_name_is_a_problem(tmp_path: Path) -> None:
    (found,) = check.problems(DataConfig(name="cifar10", data_dir=str(tmp_path)))
    assert "data.name='cifar10'" in found and "data.source=tfds" in found


def test_unprepared_named_dataset_without_download_is_a_problem(data_dir: Path) -> None:
    cfg = DataConfig(source="tfds", name="tf_flowers", data_dir=str(data_dir))
    (found,) = check.problems(cfg)
    assert "data.name='tf_flowers' is not prepared" in found
    assert "data.download=true" in found
    # Allowed to download, or already prepared: no problem.
    cfg.download = True
    assert check.problems(cfg) == []
    cfg.download = False
    version_dir = data_dir / "tf_flowers" / "3.0.1"
    version_dir.mkdir(parents=True)
    (version_dir / "dataset_info.json").write_text("{}")
    assert check.problems(cfg) == []
    assert locate.prepared_dir(cfg.data_dir, "tf_flowers:3.0.1") == version_dir
    assert locate.prepared_dir(cfg.data_dir, "tf_flowers:9.0.0") is None


def test_imagenet_names_both_tar_files_and_manual_dir(tmp_path: Path) -> None:
    cfg = DataConfig(source="tfds", name="imagenet2012", data_dir=str(tmp_path), download=True)
    (found,) = check.problems(cfg)
    assert "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar" in found
    assert "data.manual_dir is not set" in found
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "ILSVRC2012_img_train.tar").write_bytes(b"")
    cfg.manual_dir = str(manual)
    (found,) = check.problems(cfg)
    assert f"data.manual_dir={str(manual)!r} lacks ILSVRC2012_img_val.tar" in found
    (manual / "ILSVRC2012_img_val.tar").write_bytes(b"")
    assert check.problems(cfg) == []


def test_malformed_tfds_name(tmp_path: Path) -> None:
    (found,) = check.problems(DataConfig(source="tfds", name="Tf Flowers", data_dir=str(tmp_path)))
    assert "data.name='Tf Flowers' is not a TFDS dataset name" in found


def test_folder_problems(tmp_path: Path, data_dir: Path) -> None:
    cfg = DataConfig(source="folder", data_dir=str(data_dir))
    (found,) = check.problems(cfg)
    assert "data.path is not set" in found
    cfg.path = str(tmp_path / "nowhere")
    (found,) = check.problems(cfg)
    assert f"data.path={cfg.path!r} is not an existing directory" in found
    root = tmp_path / "images"
    (root / "train" / "cat").mkdir(parents=True)
    cfg.path = str(root)
    (found,) = check.problems(cfg)
    assert "has 1 class subfolder(s)" in found and "(cat)" in found
    (root / "train" / "dog").mkdir()
    (root / "train" / "cat" / "a.png").write_bytes(b"")
    (found,) = check.problems(cfg)
    assert "class folder(s) dog" in found and "hold no image file" in found
    (root / "train" / "dog" / "b.JPG").write_bytes(b"")
    assert check.problems(cfg) == []
    (root / "val" / "bird").mkdir(parents=True)
    (found,) = check.problems(cfg)
    assert "class folder(s) bird" in found and "same classes" in found
