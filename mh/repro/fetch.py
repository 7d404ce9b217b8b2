"""Fetching what ``make reproduce`` needs when a fresh machine lacks it (``make reproduce DOWNLOAD=1``).

Only datasets with a public download are fetched: CIFAR-10, through torchvision, into the data directory of
the one rule (``--data-dir``, else ``$MH_DATA_DIR``, else ``data/`` in the checkout). NUS-WIDE and ImageNet-100
lists cannot be fetched; their entries in ``mh.datasets`` say where the files go.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from mh.data import DataNotFoundError, load_cifar10_pool, resolve_data_dir
from mh.datasets import dataset_entry

FETCHERS: dict[str, Callable[[Path], object]] = {"cifar10": lambda data_dir: load_cifar10_pool(data_dir, download=True)}
HOW_TO_FETCH = "or let the reproduce fetch it: make reproduce DOWNLOAD=1 (python -m mh.repro.reproduce --download)"


def fetch_missing(datasets, data_dir: str | None = None) -> list[str]:
    """Download each of ``datasets`` (names, each once) that is not in the data directory and can be fetched;
    returns those fetched.
    A download that fails raises DataNotFoundError saying where it looked and what to do."""
    root, fetched = resolve_data_dir(data_dir), []
    for name in datasets:
        try:
            dataset_entry(name).locate(root)
        except DataNotFoundError:
            if name not in FETCHERS:
                raise
            print(f"[reproduce] {name} is not in {root}: fetching it through torchvision …", flush=True)
            root.mkdir(parents=True, exist_ok=True)
            FETCHERS[name](root)
            fetched.append(name)
    return fetched
