"""The package's structure, held by tests: imports point one way, and an extension is one entry in one place.

Imports are read from the source (``ast``), lazy imports inside functions included:

* the paper core (the modules directly under ``mh/``) never imports ``mh.repro``, the harness (its registry
  imports the networks of ``mh.baselines`` and ``mh.family``, to build them by name);
* ``mh.baselines`` and ``mh.family`` import only the core and their own package;
* nothing imports in a circle.

The extension test copies the package, adds a toy loss (one entry of ``mh.registry.LOSSES``), a toy dataset
(one entry of ``mh.datasets.DATASETS``, over a tiny image folder the test writes) and a toy profile knob (one
field of ``mh.profiles.Profile``), and trains one step through ``python -m mh.train``.
"""

import ast
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from mh.config import TrainConfig
from mh.profiles import KNOBS, RESULT_FREE_FIELDS
from mh.train import build_parser

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "mh"
GROUPS = ("baselines", "family", "repro")


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The ``mh`` modules ``path`` imports anywhere in its source (a ``from X import name`` of a submodule
    counts as importing the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "mh"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "mh":
            submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules
            found |= submodules or {node.module}
    return found


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    paths = sorted(package.rglob("*.py"))
    modules = {module_name(path, package) for path in paths}
    return {module_name(path, package): imports_of(path, modules) - {module_name(path, package)} for path in paths}


def layer(module: str) -> str:
    """``core`` for ``mh`` and the modules directly under it, else the group (``repro``, ``family``, …)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in GROUPS) else "core"


def direction_violations(graph: dict[str, set[str]]) -> list[str]:
    """``A -> B`` for every import the layering forbids."""
    # the registry (core) builds every network by name, so the core may import the two groups of networks
    allowed = {
        "core": {"core", "baselines", "family"},
        "baselines": {"core", "baselines"},
        "family": {"core", "family"},
    }
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        for target in targets
        if layer(module) in allowed and layer(target) not in allowed[layer(module)]
    )


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_checks_catch_a_climb_and_a_circle():
    graph = {"mh.train": {"mh.repro.run_cache"}, "mh.repro.run_cache": {"mh.train"}, "mh.family.x": {"mh.repro.y"}}
    graph["mh.baselines.vit"] = {"mh.family.mpvh", "mh.engine"}
    assert direction_violations(graph) == [
        "mh.baselines.vit -> mh.family.mpvh",
        "mh.family.x -> mh.repro.y",
        "mh.train -> mh.repro.run_cache",
    ]
    assert cycles(graph) == [["mh.repro.run_cache", "mh.train"]]
    assert layer("mh") == layer("mh.engine") == "core" and layer("mh.repro") == "repro"


def test_lazy_imports_inside_functions_are_read(tmp_path):
    module = tmp_path / "mh" / "late.py"
    module.parent.mkdir()
    module.write_text("def f():\n    from mh.repro import site\n    import mh.engine\n")
    assert imports_of(module, {"mh.repro.site"}) == {"mh.repro.site", "mh.engine"}


def test_the_core_never_imports_the_harness_and_the_groups_import_only_the_core():
    assert direction_violations(import_graph()) == []


def test_nothing_imports_in_a_circle():
    assert cycles(import_graph()) == []


def test_every_profile_knob_is_a_config_field_and_a_flag():
    fields = {field.name for field in TrainConfig.__dataclass_fields__.values()}
    destinations = {action.dest for action in build_parser()._actions}
    assert {knob.name for knob in KNOBS} <= fields & destinations
    assert {
        "note",
        "comparison",
        "encode_batch_size",
        "seeds",
        "headline_seeds",
        "pipeline_check",
    } == RESULT_FREE_FIELDS


TOY_LOSS = '''

class ToyLoss(HashingLoss):
    """Squared distance of every code to +1: a loss that keeps no memory bank."""

    def __init__(self, *, num_train, bits, num_classes, quantization_weight):
        super().__init__()

    def forward(self, codes, labels):
        loss = (codes - 1).pow(2).mean()
        self.last_terms = {"toy": loss.detach()}
        return loss


LOSSES["toy"] = ToyLoss
'''

TOY_DATASET = """

def _toy_sets(data_dir, protocol, seed, split_dir, download):
    files = sorted((data_dir / "toy").glob("*/*.png"))
    labels = np.array([int(path.parent.name) for path in files])
    pool = ImagePool(labels, f"toy folder {data_dir}", paths=files)
    every = np.arange(len(files))
    return SourceSets({"train": (pool, every), "query": (pool, every[::2]), "database": (pool, every)}, {})


DATASETS["toy"] = DatasetEntry(Protocol("toy", 2, None, 0.01), lambda data_dir: data_dir / "toy", _toy_sets)
"""

TOY_KNOB = '    toy_knob: int = knob(0, help="a toy knob: changes nothing but its record", parse=int)\n'


def package_with_extensions(target: Path) -> Path:
    """A copy of ``mh`` with the three extensions, each added in its one place."""
    copy = target / "mh"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "registry.py").open("a") as registry:
        registry.write(TOY_LOSS)
    with (copy / "datasets.py").open("a") as datasets:
        datasets.write(TOY_DATASET)
    profiles = (copy / "profiles.py").read_text()
    anchor = "    comparison: str | None = label_field("
    assert profiles.count(anchor) == 1
    (copy / "profiles.py").write_text(profiles.replace(anchor, TOY_KNOB + anchor))
    return target


@pytest.mark.slow
def test_a_toy_loss_dataset_and_knob_train_one_step_through_the_command_line(tmp_path):
    for label in (0, 1):
        folder = tmp_path / "data" / "toy" / str(label)
        folder.mkdir(parents=True)
        for number in range(4):
            Image.new("RGB", (32, 32), (200 * label, 40 * number, 90)).save(folder / f"{number}.png")
    code = package_with_extensions(tmp_path / "code")
    command = [sys.executable, "-m", "mh.train", "--dataset", "toy", "--loss", "toy", "--toy-knob", "3"]
    command += ["--profile", "smoke", "--epochs", "1", "--batch-size", "8", "--bits", "16", "--device", "cpu"]
    command += ["--data-dir", str(tmp_path / "data"), "--runs-dir", str(tmp_path / "runs"), "--no-progress"]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(code)}, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path / "runs" / "toy-mambahash-16bits-smoke"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["toy_knob"] == config["resolved_profile"]["toy_knob"] == 3 and config["loss"] == "toy"
    assert json.loads((run_dir / "fingerprint.json").read_text())["profile"]["toy_knob"] == 3
    losses = (run_dir / "losses.csv").read_text().splitlines()
    assert losses[0] == "epoch,step,loss,toy" and len(losses) == 2  # one step: 8 training images, batch 8


def readme_module_table() -> dict[str, str]:
    """The README's "What is here" table: first cell → second cell."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| path | what |") :].split("\n\n")[0]
    rows = [line.split(" | ", 1) for line in table.splitlines()[2:]]
    return {cells[0].strip("| "): cells[1] for cells in rows}


def test_the_readme_module_table_matches_the_files():
    table = readme_module_table()
    cited = {path for cell in table for path in re.findall(r"`(mh/[\w/]+\.py|mh/\w+/)`", cell)}
    assert sorted(path for path in cited if not (ROOT / path).exists()) == []
    core = {f"mh/{path.name}" for path in PACKAGE.glob("*.py") if path.stem != "__init__"}
    assert sorted(core - cited) == []
    for group in GROUPS:
        row = table[f"`mh/{group}/`"]
        modules = {path.stem for path in (PACKAGE / group).glob("*.py") if path.stem != "__init__"}
        assert sorted(name for name in modules if f"`{name}`" not in row) == [], group


def test_every_registered_loss_keeps_the_hashing_loss_contract():
    from mh.losses import HashingLoss
    from mh.registry import LOSSES

    for name, loss_class in LOSSES.items():
        assert issubclass(loss_class, HashingLoss), name
        criterion = loss_class(num_train=6, bits=8, num_classes=3, quantization_weight=0.01)
        codes, labels = torch.tanh(torch.randn(4, 8)), torch.tensor([0, 1, 2, 0])
        if criterion.memory_bank:
            criterion.update_bank(codes, labels, torch.arange(4))
        assert criterion(codes, labels).ndim == 0 and criterion.last_terms, name
