"""The lock file (``requirements/cpu.lock``, ``make lock``) agrees with what the project declares.

Declared: ``pyproject.toml``'s dependencies and its ``test`` and ``notebooks`` extras, and the torch pins of
``requirements/cpu.in``. Locked: one ``name==version`` with hashes per distribution, and pip-compile's
``# via`` lines, which mark a declared one as ``mambahash-companion (pyproject.toml)`` or ``-r
requirements/cpu.in``. A dependency added to one side and not the other, or a pin outside the declared range,
is a problem the test names, with the fix (``make lock``). ``environment.yml`` (the approximate conda route) may
pin nothing that the lock pins differently.
"""

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKED_EXTRAS = ("test", "notebooks")
DIRECT_MARKERS = ("mambahash-companion (pyproject.toml)", "-r requirements/cpu.in")
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def declared(pyproject_text: str, inputs_text: str) -> dict[str, Requirement]:
    """Every requirement the CPU environment declares, by canonical name."""
    project = tomllib.loads(pyproject_text)["project"]
    lines = [*project["dependencies"], *(r for extra in LOCKED_EXTRAS for r in project["optional-dependencies"][extra])]
    lines += [line.split("#")[0].strip() for line in inputs_text.splitlines()]
    requirements = [Requirement(line) for line in lines if line]
    return {canonicalize_name(requirement.name): requirement for requirement in requirements}


def locked(lock_text: str) -> dict[str, dict]:
    """name → {"version", "hashes", "direct"} for every pin of a pip-compile lock file."""
    pins, current = {}, None
    for line in lock_text.splitlines():
        match = PIN.match(line)
        if match:
            current = {"version": match.group(2), "hashes": 0, "direct": False}
            pins[canonicalize_name(match.group(1))] = current
        elif current is not None and "--hash=sha256:" in line:
            current["hashes"] += 1
        elif current is not None and line.lstrip().startswith("#"):
            current["direct"] |= any(marker in line for marker in DIRECT_MARKERS)
    return pins


def lock_problems(pyproject_text: str, inputs_text: str, lock_text: str) -> list[str]:
    """One line per disagreement between the declared requirements and the lock (empty: they agree)."""
    wanted, pins = declared(pyproject_text, inputs_text), locked(lock_text)
    fix = "run `make lock` and commit requirements/cpu.lock"
    problems = [f"{name} is declared but not in the lock: {fix}" for name in sorted(set(wanted) - set(pins))]
    problems += [
        f"{name}=={pins[name]['version']} in the lock is outside the declared {wanted[name].specifier}: {fix}"
        for name in sorted(set(wanted) & set(pins))
        if not wanted[name].specifier.contains(pins[name]["version"], prereleases=True)
    ]
    problems += [
        f"{name} is in the lock as a direct dependency but declared nowhere: {fix}"
        for name, pin in sorted(pins.items())
        if pin["direct"] and name not in wanted and name != "mambahash-companion"
    ]
    problems += [f"{name} has no hash in the lock: {fix}" for name, pin in sorted(pins.items()) if not pin["hashes"]]
    return problems


def read(name: str) -> str:
    return (ROOT / name).read_text()


def test_the_lock_agrees_with_pyproject_and_the_torch_pins():
    assert lock_problems(read("pyproject.toml"), read("requirements/cpu.in"), read("requirements/cpu.lock")) == []


def test_a_dependency_added_to_pyproject_only_is_caught():
    pyproject = read("pyproject.toml").replace('"pillow>=10",', '"pillow>=10",\n    "rich>=13",')
    assert lock_problems(pyproject, read("requirements/cpu.in"), read("requirements/cpu.lock")) == [
        "rich is declared but not in the lock: run `make lock` and commit requirements/cpu.lock"
    ]


def test_a_dependency_left_in_the_lock_only_and_a_pin_out_of_range_are_caught():
    pyproject = read("pyproject.toml").replace('    "tabulate>=0.9",', "").replace('"pandas>=2.0"', '"pandas<2"')
    problems = lock_problems(pyproject, read("requirements/cpu.in"), read("requirements/cpu.lock"))
    assert [line.split(" ")[0] for line in problems] == [
        "pandas==" + locked(read("requirements/cpu.lock"))["pandas"]["version"],
        "tabulate",
    ]


def test_the_conda_route_pins_nothing_against_the_lock():
    pins = locked(read("requirements/cpu.lock"))
    environment = read("environment.yml")
    exact = re.findall(r"^\s*-\s*([A-Za-z0-9._-]+)\s*==\s*([^\s#]+)", environment, flags=re.MULTILINE)
    ranges = re.findall(r"^\s*-\s*([A-Za-z0-9._-]+)\s*([<>=!~]=?[^\s#]+)", environment, flags=re.MULTILINE)
    assert [
        f"{name}=={version}" for name, version in exact if pins[canonicalize_name(name)]["version"] != version
    ] == []
    outside = [
        f"{name}{spec}"
        for name, spec in ranges
        if canonicalize_name(name) in pins
        and not Requirement(f"{name}{spec}").specifier.contains(pins[canonicalize_name(name)]["version"])
    ]
    assert outside == []


def test_every_manifest_records_the_lock_and_the_installed_versions():
    import hashlib
    from importlib import metadata

    from mh.manifest import run_manifest

    environment = run_manifest("smoke")["environment"]
    assert environment["lock"] == {
        "file": "requirements/cpu.lock",
        "sha256": hashlib.sha256((ROOT / "requirements/cpu.lock").read_bytes()).hexdigest(),
    }
    assert environment["installed"]["torch"] == metadata.version("torch")
    assert environment["installed"]["numpy"] == metadata.version("numpy")
