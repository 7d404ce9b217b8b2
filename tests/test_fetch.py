"""``make reproduce DOWNLOAD=1``: what a fresh machine lacks is fetched, once, and a failed download is named."""

import urllib.error

import pytest

import mh.repro.fetch as fetch
from mh.data import DataNotFoundError, load_cifar10_pool
from mh.repro.reproduce import ReproduceInputError, check_inputs


def pretend_torchvision_download(data_dir):
    (data_dir / "cifar-10-batches-py").mkdir(parents=True)


def test_missing_cifar10_is_fetched_once_into_the_data_directory(tmp_path, monkeypatch):
    monkeypatch.setitem(fetch.FETCHERS, "cifar10", pretend_torchvision_download)
    data_dir = tmp_path / "data"
    assert fetch.fetch_missing(["cifar10", "cifar10"], str(data_dir)) == ["cifar10"]
    assert (data_dir / "cifar-10-batches-py").is_dir()
    assert fetch.fetch_missing(["cifar10"], str(data_dir)) == []


def test_a_dataset_without_a_public_download_stays_a_named_error(tmp_path):
    with pytest.raises(DataNotFoundError, match="imagenet: .* lacks train.txt"):
        fetch.fetch_missing(["imagenet"], str(tmp_path))


def test_a_failed_download_says_where_it_looked_and_what_to_do(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("torchvision.datasets.CIFAR10", offline)
    with pytest.raises(DataNotFoundError, match="torchvision could not provide CIFAR-10 .*no network"):
        load_cifar10_pool(tmp_path, download=True)


def test_without_the_data_the_reproduce_says_how_to_fetch_it(tmp_path):
    with pytest.raises(ReproduceInputError, match="make reproduce DOWNLOAD=1"):
        check_inputs(tmp_path, ["03_training"], str(tmp_path / "empty"))
