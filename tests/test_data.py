"""mh.data: the CIFAR-10 split (released algorithm, stored and reused), sources, list files, transforms."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mh.data import (
    DataNotFoundError,
    ListFileError,
    build_transform,
    load_cifar10_pool,
    read_list_file,
    resolve_data_dir,
)
from mh.datasets import DATASETS, dataset_entry, load_hashing_data
from mh.io import PROJECT_ROOT
from mh.splits import CIFAR10_CLASSES, cifar_split, draw_cifar_split, stratified_subset

REPO = Path(__file__).resolve().parent.parent
POOL_LABELS = np.repeat(np.arange(10), 6000)  # the canonical class-major pool order


def released_split(labels, seed=2025, query_size=100, train_size=500):
    """The released code's split, literally: global numpy seed, then per class np.random.permutation."""
    np.random.seed(seed)
    query, train, database = [], [], []
    for label in range(10):
        index = np.where(labels == label)[0]
        index = index[np.random.permutation(index.shape[0])]
        query.append(index[:query_size])
        train.append(index[query_size : query_size + train_size])
        database.append(index[query_size + train_size :])
    return [np.concatenate(part) for part in (query, train, database)]


def test_split_is_the_released_algorithm_and_partitions_the_pool():
    split = draw_cifar_split(POOL_LABELS, DATASETS["cifar10"].protocol)
    expected = released_split(POOL_LABELS)
    for ours, theirs in zip((split.query, split.train, split.database), expected, strict=True):
        np.testing.assert_array_equal(np.sort(ours), np.sort(theirs))  # same membership …
    assert split.sizes() == {"query": 1000, "train": 5000, "database": 54000}
    everything = np.concatenate([split.query, split.train, split.database])
    assert len(np.unique(everything)) == 60000
    for part, per_class in ((split.query, 100), (split.train, 500), (split.database, 5400)):
        assert np.all(np.bincount(POOL_LABELS[part]) == per_class)


def test_set_order_does_not_follow_the_class():
    """… but not class-sorted: ties are broken by database index, so a sorted database would bias mAP."""
    split = draw_cifar_split(POOL_LABELS, DATASETS["cifar10"].protocol)
    for part in (split.query, split.train, split.database):
        first_tenth = POOL_LABELS[part[: len(part) // 10]]
        assert len(np.unique(first_tenth)) == 10


def test_cifar10_1_and_2_protocols():
    one = draw_cifar_split(POOL_LABELS, DATASETS["cifar10-1"].protocol)
    assert one.sizes() == {"query": 1000, "train": 5000, "database": 59000}
    assert not set(one.query) & set(one.database)
    two = draw_cifar_split(POOL_LABELS, DATASETS["cifar10-2"].protocol)
    assert two.sizes() == {"query": 10000, "train": 50000, "database": 50000}
    np.testing.assert_array_equal(two.train, two.database)


def test_committed_split_file_matches_a_fresh_draw():
    stored = np.load(REPO / "results" / "splits" / "cifar10-seed2025.npz")
    fresh = draw_cifar_split(POOL_LABELS, DATASETS["cifar10"].protocol)
    np.testing.assert_array_equal(stored["query"], fresh.query)
    np.testing.assert_array_equal(stored["database"], fresh.database)


def test_split_file_is_written_once_and_reused(tmp_path):
    first = cifar_split(POOL_LABELS, DATASETS["cifar10"].protocol, split_dir=tmp_path)
    path = tmp_path / "cifar10-seed2025.npz"
    assert path.exists() and len(first.sha256) == 64
    written = path.stat().st_mtime_ns
    second = cifar_split(POOL_LABELS, DATASETS["cifar10"].protocol, split_dir=tmp_path)
    assert path.stat().st_mtime_ns == written and second.sha256 == first.sha256
    np.testing.assert_array_equal(first.train, second.train)


def test_split_file_for_another_pool_or_tampered_is_refused(tmp_path):
    cifar_split(POOL_LABELS, DATASETS["cifar10"].protocol, split_dir=tmp_path)
    with pytest.raises(ValueError, match="different image pool"):
        cifar_split(POOL_LABELS[:-6000], DATASETS["cifar10"].protocol, split_dir=tmp_path)
    path = tmp_path / "cifar10-seed2025.npz"
    stored = dict(np.load(path))
    stored["query"] = stored["query"][::-1].copy()
    np.savez(path, **stored)
    with pytest.raises(ValueError, match="corrupt"):
        cifar_split(POOL_LABELS, DATASETS["cifar10"].protocol, split_dir=tmp_path)


def test_unknown_dataset_is_refused_with_the_known_names():
    with pytest.raises(ValueError, match="unknown dataset 'cifar100'; expected one of cifar10, cifar10-1"):
        dataset_entry("cifar100")


def test_a_list_file_protocol_is_not_split_per_class():
    with pytest.raises(ValueError, match="not split per class"):
        cifar_split(POOL_LABELS, DATASETS["nuswide_21"].protocol)


def test_missing_cifar_says_where_it_looked_and_how_to_fix(tmp_path):
    with pytest.raises(DataNotFoundError) as error:
        load_cifar10_pool(tmp_path)
    message = str(error.value)
    assert str(tmp_path) in message and "MH_DATA_DIR" in message and "download" in message


def test_incomplete_image_folder_names_the_folder(tmp_path):
    for part in ("train", "test"):
        for name in CIFAR10_CLASSES:
            (tmp_path / "cifar10" / part / name).mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "cifar10" / "train" / "airplane" / "0000.jpg")
    with pytest.raises(DataNotFoundError, match=r"train/airplane holds 1 images, expected 5000"):
        load_cifar10_pool(tmp_path)


def test_data_dir_falls_back_to_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MH_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(DataNotFoundError, match="elsewhere"):
        load_cifar10_pool()


def test_stratified_subset_is_balanced_seeded_and_ordered():
    indices = np.arange(60000)
    chosen = stratified_subset(indices, POOL_LABELS, 200, seed=1)
    assert len(chosen) == 200 and np.all(np.diff(chosen) > 0)
    assert np.all(np.bincount(POOL_LABELS[chosen]) == 20)
    np.testing.assert_array_equal(chosen, stratified_subset(indices, POOL_LABELS, 200, seed=1))
    assert not np.array_equal(chosen, stratified_subset(indices, POOL_LABELS, 200, seed=2))


@pytest.mark.parametrize("style", ["paper", "released_cifar"])
@pytest.mark.parametrize("train", [True, False])
def test_transforms_give_the_requested_size(style, train):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    tensor = build_transform(train, 64, style)(image)
    assert tensor.shape == (3, 64, 64) and tensor.dtype == torch.float32


def test_transform_rejects_tiny_images_and_unknown_styles():
    with pytest.raises(ValueError, match="at least 32"):
        build_transform(True, 16)
    with pytest.raises(ValueError, match="unknown transform style"):
        build_transform(True, 64, "fancy")


def write_list_dataset(root: Path, name: str, classes: int, sizes: dict[str, int]) -> None:
    """Images and DeepHash-style list files: <root>/<name>/{train,test,database}.txt, paths relative to root."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / name).mkdir(parents=True, exist_ok=True)
    for file_name, size in sizes.items():
        lines = []
        for item in range(size):
            relative = f"images/{file_name}_{item}.jpg"
            Image.fromarray(rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)).save(root / relative)
            label = np.zeros(classes, dtype=int)
            label[rng.choice(classes, size=2, replace=False)] = 1
            lines.append(relative + " " + " ".join(map(str, label)))
        (root / name / file_name).write_text("\n".join(lines) + "\n")


def test_list_file_dataset_loads_multi_label_items(tmp_path):
    write_list_dataset(tmp_path, "nuswide_21", 21, {"train.txt": 6, "test.txt": 3, "database.txt": 5})
    data = load_hashing_data("nuswide_21", tmp_path, image_size=32)
    assert data.record["sizes"] == {"train": 6, "query": 3, "database": 5}
    image, label, position = data.train[2]
    assert image.shape == (3, 32, 32) and label.shape == (21,) and label.sum() == 2 and position == 2
    assert data.protocol.topk == 5000


@pytest.mark.parametrize(
    "line, reason",
    [
        ("images/a.jpg 1 0 1", "label vector has 3 entries, expected 4"),
        ("images/a.jpg 1 0 2 0", "labels must be 0 or 1"),
        ("images/a.jpg", "no label vector"),
        ("images/missing.jpg 1 0 0 0", "does not exist"),
    ],
)
def test_malformed_list_lines_report_file_and_line(tmp_path, line, reason):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.jpg")
    list_file = tmp_path / "train.txt"
    list_file.write_text("images/a.jpg 0 1 0 0\n\n" + line + "\n")
    with pytest.raises(ListFileError, match=f"train.txt:3: .*{reason}"):
        read_list_file(list_file, tmp_path, num_classes=4)


def test_missing_list_file_says_where_lists_go(tmp_path):
    with pytest.raises(DataNotFoundError, match="train,test,database"):
        load_hashing_data("imagenet", tmp_path, image_size=32)


def test_one_data_directory_rule(monkeypatch, tmp_path):
    monkeypatch.delenv("MH_DATA_DIR", raising=False)
    assert resolve_data_dir() == PROJECT_ROOT / "data"
    monkeypatch.setenv("MH_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path and resolve_data_dir(tmp_path / "x") == tmp_path / "x"
