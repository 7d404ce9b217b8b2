"""One output tree per profile: where ``make reproduce PROFILE=<profile>`` writes, and which profile is shown.

Each profile's committed outputs live in folders of their own, so that running one profile never overwrites
another's figures, tables, executed notebooks or manifest::

    figures/<profile>/NN_*.{png,pdf}
    results/tables/<profile>/NN_*.{csv,md}
    results/timings/<profile>/NN_*.{csv,json}     measured timings (a cache kept with the outputs)
    notebooks/executed/<profile>/NN_*.ipynb
    results/manifests/<profile>.json              commit, environment, device, times, SHA-256 of every output

The README and the course site present the most trained profile whose manifest is present
(``PRESENTATION_ORDER``: paper, then gpu, cpu, smoke) and say which one it is: ``presented_profile``.
"""

from __future__ import annotations

from pathlib import Path

# most trained first: the README and the site show the first one present
PRESENTATION_ORDER = ("paper", "gpu", "cpu", "smoke")
# what each profile's tree holds, by role → folder relative to the repository root (the profile is appended)
OUTPUT_ROLES = {
    "figures": "figures",
    "tables": "results/tables",
    "timings": "results/timings",
    "executed": "notebooks/executed",
}
MANIFESTS = "results/manifests"


def output_folder(role: str, profile: str) -> Path:
    """The folder (relative to the repository root) of ``role`` (a key of ``OUTPUT_ROLES``) for ``profile``."""
    if role not in OUTPUT_ROLES:
        raise ValueError(f"unknown output role {role!r}; expected one of {', '.join(OUTPUT_ROLES)}")
    return Path(OUTPUT_ROLES[role]) / profile


def output_folders(profile: str) -> tuple[Path, ...]:
    """Every folder of ``profile``'s output tree, relative to the repository root."""
    return tuple(output_folder(role, profile) for role in OUTPUT_ROLES)


def manifest_path(root: Path, profile: str) -> Path:
    """results/manifests/<profile>.json under ``root``."""
    return Path(root) / MANIFESTS / f"{profile}.json"


def profiles_present(root: Path) -> list[str]:
    """The profiles of ``PRESENTATION_ORDER`` whose manifest is under ``root``, most trained first."""
    return [profile for profile in PRESENTATION_ORDER if manifest_path(root, profile).exists()]


def presented_profile(root: Path) -> str:
    """The most trained profile with a manifest under ``root``: what the README and the site show."""
    present = profiles_present(root)
    if not present:
        raise FileNotFoundError(
            f"no profile's outputs under {Path(root) / MANIFESTS}: run make reproduce (PROFILE=smoke, cpu or gpu)"
        )
    return present[0]
