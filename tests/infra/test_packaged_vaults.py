"""Every vault backend works from the packaged zips alone, as a Lambda would run it (issue 16, Build 2).

GIVEN the app packaged as scripts/deploy.py does it, unpacked where Lambda puts it (/var/task, /opt)
AND   a loopback moto server standing in for KMS, DynamoDB and Secrets Manager
WHEN  a bare interpreter (no site-packages, nothing on sys.path but the unpacked zips and the
      standard library) builds each vault backend and stores and reads back one token set
THEN  each round trip works, and every third-party module it imported (cryptography, boto3) came
      from the zips: `chalice_app/requirements.txt` carries what the KMS vault needs.

The zips are built for Lambda on arm64 (.chalice/config.json). On another machine the test swaps
each arm64 extension module of the zips for the same file of the same release built for this
machine, taken from the test's own environment, and says so; every Python file still comes from
the zips, and a missing package is still missing.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts import deploy
from tests.support.packaged import packaged_once, remove_tree, unpack
from timmybot.accounts.vault.schema import create_token_table

pytestmark = pytest.mark.slow

REGION = "us-east-1"
TABLE = "timmybot-dev-tokens"

CHILD = r"""
import json, sys
roots = tuple(sys.argv[1:3])
backend, settings_json = sys.argv[3], sys.argv[4]
stdlib = sys.argv[5]
sys.path[:] = [roots[0], roots[1] + "/python", roots[1] + "/python/lib/python3.11/site-packages"] + [
    p for p in sys.path if p.startswith(stdlib)
]
from timmybot.config import Settings
from timmybot.accounts.vault import Platform, TokenSet, build_vault
vault = build_vault(Settings(vault_backend=backend, **json.loads(settings_json)))
vault.put("111111111111111111", Platform.SPOTIFY, TokenSet("access-zip", "refresh-zip", 4102444800.0))
got = vault.get("111111111111111111", Platform.SPOTIFY)
origins = {}
for name, module in list(sys.modules.items()):
    top = name.split(".")[0]
    origin = getattr(getattr(module, "__spec__", None), "origin", None) or ""
    if top in ("cryptography", "boto3", "botocore", "timmybot") and origin.endswith((".py", ".so", ".pyc")):
        origins.setdefault(top, set()).add(origin)
print(json.dumps({
    "access": got.access_token if got else None,
    "refresh": got.refresh_token if got else None,
    "path": sys.path,
    "origins": {k: sorted(v) for k, v in origins.items()},
}))
"""


@pytest.fixture(scope="module")
def unpacked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path]]:
    """The zips unpacked as Lambda unpacks them, once for this module; deleted when it is done."""
    tmp = tmp_path_factory.mktemp("package")
    out = packaged_once(tmp_path_factory)
    task = unpack(out, tmp / "var" / "task", ["deployment.zip"])
    opt = unpack(out, tmp / "opt", ["layer-deployment.zip", deploy.CORE_LAYER_ZIP])
    if platform.machine() not in ("aarch64", "arm64"):
        _swap_native_extensions(opt / "python" / "lib" / "python3.11" / "site-packages")
    yield task, opt
    remove_tree(tmp)


def _swap_native_extensions(site: Path) -> None:
    """Replace each arm64 ``.so`` of a packaged distribution with this machine's build of the same release."""
    for dist_info in site.glob("*.dist-info"):
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
        try:
            local = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        if local.version != version:
            continue
        for entry in local.files or []:
            name = str(entry)
            if not name.endswith(".so"):
                continue
            packaged = site / name.replace(platform.machine(), "aarch64")  # _cffi_backend.cpython-311-<arch>-…
            if packaged.is_file():
                packaged.unlink()
                shutil.copyfile(Path(str(local.locate_file(entry))), site / name)


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer  # noqa: PLC0415 - imported where it runs, not in every worker

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _aws_env(endpoint: str) -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ENDPOINT_URL": endpoint,
    }


def _round_trip(unpacked: tuple[Path, Path], backend: str, settings: dict[str, Any], endpoint: str) -> dict[str, Any]:
    task, opt = unpacked
    env = {"PATH": os.environ.get("PATH", "/usr/bin"), "PYTHONDONTWRITEBYTECODE": "1", **_aws_env(endpoint)}
    stdlib = sysconfig.get_paths()["stdlib"]
    completed = subprocess.run(
        [sys.executable, "-I", "-S", "-c", CHILD, str(task), str(opt), backend, json.dumps(settings), stdlib],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def _assert_from_the_zips(result: dict[str, Any], unpacked: tuple[Path, Path], *packages: str) -> None:
    roots = tuple(str(p) for p in unpacked)
    stdlib = sysconfig.get_paths()["stdlib"]
    assert all(p.startswith((*roots, stdlib)) for p in result["path"]), result["path"]
    for package in packages:
        origins = result["origins"].get(package)
        assert origins, f"{package} was not imported"
        assert all(o.startswith(roots) for o in origins), (package, origins[:3])


def test_the_kms_vault_works_from_the_zips_alone(unpacked: tuple[Path, Path], moto_server: str) -> None:
    # GIVEN a KMS key and the token table, in the loopback moto server
    clients = {"region_name": REGION, "endpoint_url": moto_server, "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing"}  # fmt: skip
    key_arn = boto3.client("kms", **clients).create_key(Description="tokens")["KeyMetadata"]["Arn"]
    dynamodb = boto3.client("dynamodb", **clients)
    create_token_table(dynamodb, TABLE)
    settings = {"token_table": TABLE, "token_key_arn": key_arn, "aws_region": REGION, "aws_endpoint_url": moto_server}
    # WHEN the unpacked zips store and read a token set with the KMS vault
    result = _round_trip(unpacked, "kms", settings, moto_server)
    # THEN it comes back whole, and cryptography and boto3 were the zips' own
    assert (result["access"], result["refresh"]) == ("access-zip", "refresh-zip")
    _assert_from_the_zips(result, unpacked, "cryptography", "boto3", "botocore", "timmybot")
    # AND the table holds ciphertext only
    items = dynamodb.scan(TableName=TABLE)["Items"]
    assert items and "access-zip" not in repr(items)


def test_the_secretsmanager_vault_works_from_the_zips_alone(unpacked: tuple[Path, Path], moto_server: str) -> None:
    settings = {"user_secret_prefix": "/timmybot/users/", "aws_region": REGION, "aws_endpoint_url": moto_server}
    result = _round_trip(unpacked, "secretsmanager", settings, moto_server)
    assert (result["access"], result["refresh"]) == ("access-zip", "refresh-zip")
    _assert_from_the_zips(result, unpacked, "boto3", "botocore", "timmybot")


def test_the_local_vault_works_from_the_zips_alone(
    unpacked: tuple[Path, Path], tmp_path: Path, moto_server: str
) -> None:
    settings = {
        "vault_sqlite_path": str(tmp_path / "vault.sqlite3"),
        "vault_key_file": str(tmp_path / "vault.key"),
        "data_dir": str(tmp_path),
    }
    result = _round_trip(unpacked, "local", settings, moto_server)
    assert (result["access"], result["refresh"]) == ("access-zip", "refresh-zip")
    _assert_from_the_zips(result, unpacked, "cryptography", "timmybot")
