"""The packaged zips carry their bytecode, and the runtime is the pinned one (issue 16, Build 8).

GIVEN the app packaged as scripts/deploy.py does it (`chalice package`, the core layer, then
      scripts/lambda_runtime.compile_zips)
WHEN  the zips are unpacked where Lambda puts them (/var/task, and /opt for each layer), made read-only, and a bare
      interpreter (no site-packages, no bytecode writing) imports the api handler and the modules a
      /queue reaches
THEN  not one module from the zips is compiled from source: each loads from its unchecked-hash .pyc
AND   every function in the packaged template runs on the pinned runtime, which every layer accepts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import deploy, lambda_runtime
from tests.support.packaged import make_read_only, packaged_once, remove_tree, unpack

pytestmark = pytest.mark.slow

SITE = "python/lib/python3.11/site-packages"

# Runs in the bare interpreter: records every module compiled from source, then reports what was
# imported from the unpacked zips. Arguments: /var/task, then each layer's /opt (Lambda unpacks every
# layer into one /opt; the layers share no file, so separate roots import the same modules).
CHILD = r"""
import importlib, importlib.machinery, json, sys
roots = tuple(sys.argv[1:])
task, layers = roots[0], roots[1:]
sys.path[:0] = [task, *(o + "/python" for o in layers), *(o + "/python/lib/python3.11/site-packages" for o in layers)]
compiled = []
_source_to_code = importlib.machinery.SourceFileLoader.source_to_code
def _record(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return _source_to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = _record
import app
for name in (
    "chalicelib.bootstrap",
    "timmybot.store.dynamodb",
    "timmybot.accounts.vault.kms",
    "timmybot.accounts.vault.secretsmanager",
):
    importlib.import_module(name)
import boto3
boto3.client("dynamodb", region_name="us-east-1")
specs = [getattr(m, "__spec__", None) for m in list(sys.modules.values())]
ours = [s.origin for s in specs if s is not None and s.origin and s.origin.startswith(roots)]
print(json.dumps({"compiled": compiled, "modules": ours}))
"""


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return packaged_once(tmp_path_factory)


@pytest.fixture(scope="module")
def read_only(packaged: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """The function's code, the core layer and the deps layer, unpacked once for this module where
    Lambda puts them and made read-only; deleted when the module is done."""
    into = tmp_path_factory.mktemp("ro")
    task = unpack(packaged, into / "var" / "task", ["deployment.zip"])
    core = unpack(packaged, into / "opt-core", [deploy.CORE_LAYER_ZIP])
    deps = unpack(packaged, into / "opt-deps", ["layer-deployment.zip"])
    make_read_only(into)
    yield task, core, deps
    remove_tree(into)


def _import_from(task: Path, *layers: Path) -> dict[str, Any]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin"),
        "PYTHONDONTWRITEBYTECODE": "1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, str(task), *map(str, layers)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _listing(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


def test_every_module_imported_from_a_read_only_copy_loads_from_its_pyc(read_only: tuple[Path, Path, Path]) -> None:
    root = read_only[0].parents[1]
    before = _listing(root)
    result = _import_from(*read_only)
    assert result["compiled"] == []
    modules = result["modules"]
    assert any(m.endswith("/app.py") for m in modules)
    assert any("/timmybot/store/dynamodb.py" in m for m in modules)
    assert any("/botocore/" in m for m in modules)
    assert len(modules) > 150
    assert _listing(root) == before  # nothing was written next to the sources


def test_the_check_sees_a_module_compiled_from_source(
    packaged: Path, read_only: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    """The control: with the core layer's bytecode taken away, its modules show up as compiled (the
    deps layer is the read-only one above, so botocore still loads from its .pyc)."""
    task = unpack(packaged, tmp_path / "var" / "task", ["deployment.zip"])
    core = unpack(packaged, tmp_path / "opt", [deploy.CORE_LAYER_ZIP])
    for cache in (core / "python" / "timmybot").rglob("__pycache__"):
        shutil.rmtree(cache)
    compiled = _import_from(task, core, read_only[2])["compiled"]
    assert any(path.endswith("/timmybot/store/dynamodb.py") for path in compiled)
    assert not any("/botocore/" in path for path in compiled)


def test_the_pyc_files_are_unchecked_hash_for_the_pinned_python(packaged: Path) -> None:
    tag = f"cpython-{lambda_runtime.PINNED[0]}{lambda_runtime.PINNED[1]}"
    for name in ("deployment.zip", deploy.CORE_LAYER_ZIP, "layer-deployment.zip"):
        with zipfile.ZipFile(packaged / name) as archive:
            names = set(archive.namelist())
            sources = [n for n in names if n.endswith(".py")]
            assert sources, name
            for source in sources:
                folder, _, file = source.rpartition("/")
                cached = (
                    f"{folder}/__pycache__/{file[:-3]}.{tag}.pyc" if folder else f"__pycache__/{file[:-3]}.{tag}.pyc"
                )
                assert cached in names, f"{name}: {source} has no {cached}"
            sample = archive.read(next(n for n in sorted(names) if n.endswith(f".{tag}.pyc")))
            flags = int.from_bytes(sample[4:8], "little")
            assert flags == 0b01, f"{name}: .pyc flags {flags:#b} (want hash-based, unchecked)"
    unzipped = sum(
        info.file_size
        for name in ("layer-deployment.zip", deploy.CORE_LAYER_ZIP, "deployment.zip")
        for info in zipfile.ZipFile(packaged / name).infolist()
    )
    assert unzipped < 250 * 1024 * 1024, f"{unzipped / 2**20:.1f} MB unzipped: over Lambda's 250 MB"


def test_every_function_runs_on_the_pinned_runtime(packaged: Path) -> None:
    template = yaml.safe_load((packaged / "sam.yaml").read_text())
    resources: dict[str, dict[str, Any]] = template["Resources"]
    functions = {
        n: r for n, r in resources.items() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    }
    assert {"APIHandler", "Worker", "Reaper"} <= set(functions) or len(functions) >= 3, sorted(functions)
    global_runtime = template.get("Globals", {}).get("Function", {}).get("Runtime")
    for name, resource in functions.items():
        assert resource["Properties"].get("Runtime", global_runtime) == lambda_runtime.RUNTIME, name
    layers = {
        n: r
        for n, r in resources.items()
        if r["Type"] in ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
    }
    assert layers
    for name, resource in layers.items():
        assert lambda_runtime.RUNTIME in resource["Properties"]["CompatibleRuntimes"], name


def test_deploy_refuses_another_python_without_one_to_re_run_in(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")  # no python3.11 to re-run in
    lambda_runtime.require_pinned_python([], script=Path(deploy.__file__), version=(3, 11))  # returns
    with pytest.raises(lambda_runtime.RuntimeRefused, match=r"Lambda runtime comes from the Python that packages"):
        lambda_runtime.require_pinned_python([], script=Path(deploy.__file__), version=(3, 13))
    assert lambda_runtime.on_pinned_python((3, 11)) is True
    assert lambda_runtime.on_pinned_python((3, 13)) is False
