"""``bentofile.yaml``: the bento has the project's dependencies, code and package data."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def bentofile() -> dict:
    return yaml.safe_load((ROOT / "bentofile.yaml").read_text())


def test_the_bento_installs_exactly_the_projects_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert bentofile()["python"]["packages"] == project["dependencies"]


def test_the_bento_serves_the_service_class():
    from serving.service import SpmMlService

    module, name = bentofile()["service"].split(":")
    assert module == SpmMlService.inner.__module__ == "serving.service"
    assert name == SpmMlService.inner.__name__


@pytest.mark.slow
def test_bentoml_build_packs_code_and_package_data(tmp_path):
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "BENTOML_DO_NOT_TRACK": "True"}
    build = subprocess.run(
        [sys.executable, "-m", "bentoml", "build", str(ROOT)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (bento,) = (tmp_path / "bentos" / "spm-ml").glob("*/bento.yaml")
    src = bento.parent / "src"
    assert (src / "serving" / "service.py").is_file()
    assert (src / "spm_ml" / "tokens.py").is_file()
    assert (src / "spm_ml" / "nlp" / "sentiment.cfg").is_file()
    assert list((src / "spm_ml" / "nlp" / "data").glob("*.txt"))
    assert (src / "spm_ml" / "coaching" / "catalogue.toml").is_file()
    assert not list(src.rglob("__pycache__")) and not (src / "tests").exists()
