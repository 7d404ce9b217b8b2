"""The README's numbers are generated from the results they cite: a committed README that disagrees fails."""

import shutil

import pytest

from mh.io import PROJECT_ROOT
from mh.repro.outputs import manifest_path, output_folder, presented_profile, profiles_present
from mh.repro.readme import BEGIN, END, ReadmeDrift, check_readme, results_block, update_readme


def test_the_committed_readme_states_the_committed_results():
    check_readme(PROJECT_ROOT)


def copy_of_the_repository(tmp_path):
    profile = presented_profile(PROJECT_ROOT)
    manifests = [
        manifest_path(PROJECT_ROOT, other).relative_to(PROJECT_ROOT) for other in profiles_present(PROJECT_ROOT)
    ]
    for relative in (output_folder("tables", profile), *manifests):  # every manifest: the block names the others
        source, target = PROJECT_ROOT / relative, tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy2)(source, target)
    shutil.copy2(PROJECT_ROOT / "README.md", tmp_path / "README.md")
    return tmp_path, profile


def test_a_readme_number_that_differs_from_its_result_fails_the_check(tmp_path):
    root, profile = copy_of_the_repository(tmp_path)
    check_readme(root)
    table = root / output_folder("tables", profile) / "03_training.csv"
    lines = table.read_text().splitlines()
    first = lines[1].split(",")
    first[1] = f"{float(first[1]) + 0.1:.6f}"  # the mean mAP of the first bit length moves
    table.write_text("\n".join([lines[0], ",".join(first), *lines[2:]]) + "\n")
    with pytest.raises(ReadmeDrift, match="differ from the committed results"):
        check_readme(root)
    assert update_readme(root) and f"{float(first[1]):.3f}" in results_block(root)
    check_readme(root)


def test_the_block_names_its_profile_and_its_markers_are_required(tmp_path):
    root, profile = copy_of_the_repository(tmp_path)
    assert f"come from the `{profile}` profile" in results_block(root)
    readme = root / "README.md"
    readme.write_text(readme.read_text().replace(BEGIN, "").replace(END, ""))
    with pytest.raises(ReadmeDrift, match="lacks the generated block"):
        check_readme(root)
