"""CITATION.cff is valid CFF 1.2 YAML that cites the paper this companion reproduces, and a licence is present."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_citation_file_cites_the_paper_and_the_companion():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert {"message", "title", "authors", "license"} <= set(citation)
    paper = citation["preferred-citation"]
    assert paper["type"] == "conference-paper" and paper["year"] == 2025
    assert paper["title"].startswith("MambaHash: Visual State Space Deep Hashing Model")
    assert [author["family-names"] for author in paper["authors"]] == ["He", "Wei"]
    assert any(identifier["value"] == "arXiv:2506.16353" for identifier in paper["identifiers"])


def test_the_licence_file_is_the_one_the_citation_names():
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert (ROOT / "LICENSE").read_text().startswith(f"{citation['license']} License")
