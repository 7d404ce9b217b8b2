"""Retrieval at scale: FAISS binary indexes over packed hash codes, saved, loaded and queried.

    index = CodeIndex.build(database, kind="flat")          # a CodeSet, or packed (n, K/8) uint8 codes
    distances, positions = index.search(query_codes, k=10)  # ties by database position, as mh.metrics
    index.ids[positions]                                    # → the dataset's item ids (pool indices)
    hits = index.within_radius(query_codes, radius=2)       # every item at Hamming distance ≤ 2
    index.save("cifar10-48.faissindex"); CodeIndex.load("cifar10-48.faissindex")

Index kinds (FAISS's binary indexes; codes are stored packed, K/8 bytes an item):

    flat       IndexBinaryFlat: every code compared (popcount of XOR); exact, the reference for the others
    hash       IndexBinaryHash: a hash table on the first b bits, buckets within ``nflip`` bit flips probed —
               the classic hashing lookup (exact within the probed radius)
    multihash  IndexBinaryMultiHash: multi-index hashing (Norouzi et al.): the code cut into m substrings,
               one table each; an item within radius r < m of the query shares one substring exactly
    ivf        IndexBinaryIVF: k-means cells in Hamming space, ``nprobe`` cells searched; approximate
    hnsw       IndexBinaryHNSW: a navigable small-world graph; approximate

Ranking convention: the flat index returns exactly ``mh.metrics``' ranking (distance, then database
position): FAISS orders ties arbitrarily, so the items tied at the k-th distance are fetched whole by a range
search and re-sorted. ``radius`` always means Hamming distance ≤ radius (FAISS's own range search is strict).

``faiss`` is imported on first use (``pip install faiss-cpu``, or ``faiss-gpu``): ``import mh`` works without it.
"""

from __future__ import annotations

import importlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mh.binary import label_rows, matching_label_rows, pack_codes
from mh.checks import int_in_range, one_of, positive_int
from mh.cli import OneLineParser, add_debug_flag, cli_errors, returns_status
from mh.codes import CodeSet
from mh.io import atomic_output, load_checkpoint, read_json, reading
from mh.progress import progress_bar

INDEX_KINDS = ("flat", "hash", "multihash", "ivf", "hnsw")
ADD_CHUNK = 100_000
FAISS_HINT = "pip install faiss-cpu (conda: conda install -c conda-forge faiss-cpu; faiss-gpu where CUDA is present)"


def faiss_module():
    """The ``faiss`` module, or ImportError naming the install command."""
    try:
        return importlib.import_module("faiss")
    except ImportError as error:
        raise ImportError(f"retrieval indexes need FAISS, which is not installed: {FAISS_HINT}") from error


def index_options(kind: str, bits: int, size: int, options: dict) -> dict[str, int]:
    """The options of a ``kind`` index over ``size`` codes of ``bits`` bits: the given ones checked (an unknown
    name, a non-integer or a value out of range is an error naming it), the others at their defaults."""
    one_of(kind, "index kind", INDEX_KINDS)
    cells = max(1, int(np.sqrt(size)))
    ranges = {  # name: (lowest, highest, default)
        "flat": {},
        "hash": {"hash_bits": (1, min(bits, 63), min(bits, 16)), "nflip": (0, bits, 2)},
        "multihash": {"tables": (1, bits, max(1, bits // 16)), "nflip": (0, bits, 1)},
        "ivf": {"cells": (1, max(1, size), cells), "nprobe": (1, 1 << 20, 16)},  # FAISS clamps nprobe
        "hnsw": {"neighbours": (1, 1024, 16), "ef_search": (1, 1 << 20, 128)},
    }[kind]
    unknown = sorted(set(options) - set(ranges))
    if unknown:
        raise ValueError(f"the {kind} index takes no options {unknown}; it takes {sorted(ranges) or 'none'}")
    return {
        name: int_in_range(options.get(name, default), name, low, high, f"an option of the {kind} index")
        for name, (low, high, default) in ranges.items()
    }


def _new_index(kind: str, bits: int, size: int, options: dict):
    faiss, options = faiss_module(), index_options(kind, bits, size, options)
    index = {
        "flat": lambda: faiss.IndexBinaryFlat(bits),
        "hash": lambda: faiss.IndexBinaryHash(bits, options["hash_bits"]),
        "multihash": lambda: faiss.IndexBinaryMultiHash(bits, options["tables"], bits // options["tables"]),
        "ivf": lambda: faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(bits), bits, options["cells"]),
        "hnsw": lambda: faiss.IndexBinaryHNSW(bits, options["neighbours"]),
    }[kind]()
    for name, value in options.items():  # the search-time settings
        if name in ("nflip", "nprobe"):
            setattr(index, name, value)
    if kind == "hnsw":
        index.hnsw.efSearch = options["ef_search"]
    return index


def _kind_of(index) -> str:
    name = type(faiss_module().downcast_IndexBinary(index)).__name__
    kinds = {
        "IndexBinaryFlat": "flat",
        "IndexBinaryHash": "hash",
        "IndexBinaryMultiHash": "multihash",
        "IndexBinaryIVF": "ivf",
        "IndexBinaryHNSW": "hnsw",
    }
    return kinds.get(name, name)


@dataclass
class CodeIndex:
    """A FAISS binary index of K-bit codes, with the dataset ids and labels of the items it holds.

    Positions (0 … n−1, the order codes were added) are what searches return; ``ids[position]`` is the
    item's id in its dataset (pool index), ``labels[position]`` its label row.
    """

    index: object
    bits: int
    kind: str
    ids: np.ndarray
    labels: np.ndarray | None = None
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls,
        database,
        kind: str = "flat",
        ids=None,
        labels=None,
        metadata: dict | None = None,
        progress: bool = True,
        **options,
    ) -> CodeIndex:
        """Index ``database`` (a CodeSet, or packed (n, K/8) uint8 codes with ``bits`` in ``options``).

        Options by kind: hash ``hash_bits``, ``nflip``; multihash ``tables``, ``nflip``; ivf ``cells``,
        ``nprobe``; hnsw ``neighbours``, ``ef_search``."""
        if isinstance(database, CodeSet):
            packed, bits = database.packed, database.bits
            labels = database.labels if labels is None else labels
            ids = database.ids if ids is None else ids
            metadata = {**database.metadata, **(metadata or {})}
        else:
            packed, bits = np.ascontiguousarray(database, dtype=np.uint8), options.pop("bits", None)
            if bits is None:
                raise ValueError("packed codes need their code length: pass bits=K")
        if bits % 8 or packed.ndim != 2 or packed.shape[1] != bits // 8:
            raise ValueError(
                f"FAISS binary indexes take codes of a multiple of 8 bits as (n, K/8) bytes; "
                f"got {bits} bits and packed shape {packed.shape}"
            )
        index = _new_index(kind, bits, len(packed), options)
        if not index.is_trained:
            sample = np.random.default_rng(0).permutation(len(packed))[: 64 * index.nlist]  # k-means on a sample
            index.train(np.ascontiguousarray(packed[np.sort(sample)]))
        for start in progress_bar(range(0, len(packed), ADD_CHUNK), f"index {kind}", progress, leave=False):
            index.add(np.ascontiguousarray(packed[start : start + ADD_CHUNK]))
        ids = np.arange(len(packed)) if ids is None else np.asarray(ids)
        return cls(index, bits, kind, ids, None if labels is None else np.asarray(labels), dict(metadata or {}))

    def packed_queries(self, queries) -> np.ndarray:
        """Queries as packed uint8 (n, K/8): a CodeSet, packed uint8 codes, or (n, K) ±1 / 0-1 / real codes."""
        if isinstance(queries, CodeSet):
            packed, bits = queries.packed, queries.bits
        elif isinstance(queries, np.ndarray) and queries.dtype == np.uint8:
            packed = np.atleast_2d(queries)
            bits = packed.shape[1] * 8
        else:
            codes = np.atleast_2d(np.asarray(queries.cpu() if hasattr(queries, "cpu") else queries))
            packed, bits = pack_codes(codes), codes.shape[1]
        if bits != self.bits:
            raise ValueError(
                f"this index holds {self.bits}-bit codes; the queries have {bits} bits. Encode them "
                f"with a {self.bits}-bit model, or build an index from codes of their length"
            )
        return np.ascontiguousarray(packed)

    def search(self, queries, k: int = 10, ties: str = "position") -> tuple[np.ndarray, np.ndarray]:
        """Top-k: (distances (n, k) int64, positions (n, k) int64), sorted by (distance, position); an
        approximate index may return fewer than k items (position −1, distance −1 at the end).

        ``ties="position"`` (flat index): the items tied at the k-th distance are the lowest positions, as in
        ``mh.metrics`` — a range search fetches all of them, a second pass over the database.
        ``ties="any"``: FAISS's own choice among them (the same distances, one pass; faster)."""
        if ties not in ("position", "any"):
            raise ValueError(f"ties must be 'position' or 'any'; got {ties!r}")
        k = positive_int(k, "k", "how many database items to return")
        packed, k = self.packed_queries(queries), min(int(k), len(self))
        distances, positions = self.index.search(packed, k)
        distances, positions = distances.astype(np.int64), positions.astype(np.int64)
        if self.kind == "flat" and ties == "position":
            return self._with_ties_by_position(packed, distances, k)
        distances[positions < 0] = np.iinfo(np.int64).max
        order = np.lexsort((positions, distances), axis=1)
        distances, positions = np.take_along_axis(distances, order, 1), np.take_along_axis(positions, order, 1)
        distances[positions < 0] = -1
        return distances, positions

    def _with_ties_by_position(self, packed: np.ndarray, distances: np.ndarray, k: int):
        """Exact top-k ranking: all items within the k-th distance, sorted by (distance, position)."""
        out_distances, out_positions = np.empty_like(distances), np.empty_like(distances)
        for boundary in np.unique(distances[:, -1]):
            rows = np.flatnonzero(distances[:, -1] == boundary)
            for row, (found, positions) in zip(rows, self._range(packed[rows], int(boundary)), strict=True):
                order = np.lexsort((positions, found))[:k]
                out_distances[row], out_positions[row] = found[order], positions[order]
        return out_distances, out_positions

    def _range(self, packed: np.ndarray, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        limits, distances, positions = self.index.range_search(packed, radius + 1)  # FAISS: distance < radius
        return [
            (distances[a:b].astype(np.int64), positions[a:b].astype(np.int64))
            for a, b in zip(limits[:-1], limits[1:], strict=True)
        ]

    def within_radius(self, queries, radius: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every item at Hamming distance ≤ ``radius`` of each query: a list of (distances, positions),
        sorted by (distance, position). Not available for ``hnsw``."""
        radius = int_in_range(radius, "radius", 0, self.bits, "a Hamming radius of these codes")
        if self.kind == "hnsw":
            raise ValueError("FAISS's HNSW index has no range search; build a flat, hash, multihash or ivf index")
        hits = self._range(self.packed_queries(queries), int(radius))
        return [
            (found[order], positions[order]) for found, positions in hits for order in [np.lexsort((positions, found))]
        ]

    def relevance(self, query_labels, positions: np.ndarray) -> np.ndarray:
        """(n, k) bool: does the item at each returned position share a label with its query."""
        if self.labels is None:
            raise ValueError("this index was built without labels; pass labels= to CodeIndex.build")
        query_rows, item_rows = (rows.numpy() for rows in matching_label_rows(query_labels, self.labels))
        shared = np.einsum("qc,qkc->qk", query_rows, item_rows[np.maximum(positions, 0)]) > 0
        return shared & (positions >= 0)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the FAISS index to ``path`` (``faiss.write_index_binary``) and ids, labels, kind, code length
        and metadata beside it (``<path>.meta.npz``), both atomically."""
        path = Path(path)
        with atomic_output(path) as temporary:
            faiss_module().write_index_binary(self.index, str(temporary))
        with atomic_output(meta_path(path), suffix=".npz") as temporary:
            np.savez(
                temporary,
                ids=self.ids,
                labels=np.asarray([]) if self.labels is None else self.labels,
                header=np.array(json.dumps({"kind": self.kind, "bits": self.bits, "metadata": self.metadata})),
            )
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> CodeIndex:
        """Read what ``save`` wrote; ValueError when the index and its record disagree (kind, bits, size)."""
        path = Path(path)
        for needed in (path, meta_path(path)):
            if not needed.is_file():
                raise FileNotFoundError(
                    f"{needed} does not exist; build the index with: python -m mh.search build RUN_DIR"
                )
        faiss = faiss_module()
        with reading(path, "FAISS binary index", "build the index again: python -m mh.search build RUN_DIR"):
            index = faiss.read_index_binary(str(path))
        with (
            reading(meta_path(path), "index record", "build the index again: python -m mh.search build RUN_DIR"),
            np.load(meta_path(path)) as stored,
        ):
            header, ids, labels = json.loads(str(stored["header"])), stored["ids"], stored["labels"]
            kind, bits, metadata = header["kind"], header["bits"], header["metadata"]
        problems = [
            f"{what}: index {actual}, record {recorded}"
            for what, actual, recorded in (
                ("kind", _kind_of(index), kind),
                ("bits", index.d, bits),
                ("items", index.ntotal, len(ids)),
            )
            if actual != recorded
        ]
        if problems:
            raise ValueError(f"{path} does not match its record {meta_path(path)} ({'; '.join(problems)}); rebuild it")
        return cls(index, bits, kind, ids, labels if labels.size else None, metadata)


def meta_path(path: Path) -> Path:
    """Where ``CodeIndex.save`` keeps the ids, labels and record of the index at ``path``."""
    return path.with_name(path.name + ".meta.npz")


def index_mean_average_precision(index: CodeIndex, queries: CodeSet, topk: int | None = None) -> float:
    """mAP@topK of ``queries`` ranked by ``index`` (the whole database when topk is None), ``mh.metrics``' AP."""
    from mh.metrics import average_precisions

    depth = len(index) if topk is None else min(topk, len(index))
    _, positions = index.search(queries, depth)
    return float(average_precisions(index.relevance(queries.labels, positions)).mean())


def build_run_index(
    run_dir: str | os.PathLike, kind: str = "flat", output: str | os.PathLike | None = None, progress: bool = True
) -> Path:
    """Index a finished run's database codes (``codes.npz``); default file ``RUN_DIR/database-<kind>.faissindex``."""
    from mh.codes import load_code_sets

    run_dir = Path(run_dir)
    codes_path = run_dir / "codes.npz"
    if not codes_path.is_file():
        raise FileNotFoundError(f"{codes_path} is missing: is {run_dir} a finished run of `python -m mh.train`?")
    database = load_code_sets(codes_path)["database"]
    index = CodeIndex.build(database, kind, metadata={"run_dir": str(run_dir.resolve())}, progress=progress)
    return index.save(output or run_dir / f"database-{kind}.faissindex")


def encode_image(run_dir: str | os.PathLike, image_path: str | os.PathLike) -> np.ndarray:
    """The code (1, K) of one image file under the trained network of ``run_dir`` (its config and checkpoint)."""
    import torch
    from PIL import Image, UnidentifiedImageError

    from mh.binary import binarize
    from mh.data import build_transform
    from mh.registry import build_hashing_model

    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json", "run configuration")
    profile = config["resolved_profile"]
    try:
        image = Image.open(image_path).convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise ValueError(f"cannot read the image {image_path}: {error}") from error
    model = build_hashing_model(config["model"], config["bits"], image_size=profile["image_size"])
    model.load_state_dict(load_checkpoint(run_dir / "checkpoint.ckpt")["model"])
    pixels = build_transform(False, profile["image_size"], profile["transform_style"])(image)
    with torch.no_grad():
        return binarize(model.eval()(pixels[None])).numpy()


def _query_codes(index: CodeIndex, args) -> np.ndarray:
    from mh.codes import load_code_sets

    run_dir = Path(args.run_dir or index.metadata.get("run_dir", ""))
    if args.image:
        return encode_image(run_dir, args.image)
    queries = load_code_sets(run_dir / "codes.npz")["query"]
    if not 0 <= args.query_id < len(queries):
        raise ValueError(f"--query-id must be in 0..{len(queries) - 1} (the run's query set)")
    return queries.packed[args.query_id : args.query_id + 1]


def _results(index: CodeIndex, distances: np.ndarray, positions: np.ndarray) -> list[dict]:
    rows = []
    for rank, (distance, position) in enumerate(zip(distances, positions, strict=True), start=1):
        if position < 0:
            break
        label = None if index.labels is None else np.flatnonzero(label_rows(index.labels[position : position + 1])[0])
        rows.append(
            {
                "rank": rank,
                "position": int(position),
                "id": int(index.ids[position]),
                "distance": int(distance),
                "labels": None if label is None else label.tolist(),
            }
        )
    return rows


@returns_status
def main(argv: list[str] | None = None) -> int:

    parser = OneLineParser(prog="python -m mh.search", description="FAISS indexes of a run's hash codes.")
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="index the database codes of a finished run")
    build.add_argument("run_dir")
    build.add_argument("--index", default="flat", choices=INDEX_KINDS)
    build.add_argument("--output", help="index file (default RUN_DIR/database-<index>.faissindex)")
    query = commands.add_parser("query", help="the top-k database items of one query")
    query.add_argument("index")
    source = query.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", help="an image file, encoded by the run's trained network")
    source.add_argument("--query-id", type=int, help="position of a query in the run's query set")
    query.add_argument("-k", type=int, default=10)
    query.add_argument("--run-dir", help="the run that made the index (default: recorded in the index)")
    query.add_argument("--json", action="store_true", help="print JSON for scripts")
    args = add_debug_flag(parser).parse_args(argv)
    with cli_errors(args.debug, user_errors=(ImportError,)):
        if args.command == "build":
            print(f"wrote {build_run_index(args.run_dir, args.index, args.output)}")
            return 0
        index = CodeIndex.load(args.index)
        distances, positions = index.search(_query_codes(index, args), args.k)
    rows = _results(index, distances[0], positions[0])
    if args.json:
        print(json.dumps({"index": args.index, "kind": index.kind, "bits": index.bits, "results": rows}, indent=2))
    else:
        print(f"top {len(rows)} of {len(index)} ({index.kind} index, {index.bits} bits)")
        for row in rows:
            print(f"{row['rank']:3d}  id {row['id']:7d}  distance {row['distance']:3d}  labels {row['labels']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
