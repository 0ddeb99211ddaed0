"""The lock on Chalice's cache (scripts/deploy.py ``chalice_cache_lock``).

Chalice writes the zips it caches under .chalice/deployments in place and reuses any file with the
expected name, so two packaging runs at once (two deploys from one checkout, or the test checkouts
that share its cache) could package a half-written zip.

GIVEN a cache directory, and another process holding the lock on it
WHEN  this process asks for the lock
THEN  it waits until the other process lets go, then gets it
AND   a zip in the cache that cannot be read (an interrupted run) is removed on entry and a whole
      one is kept, so the run builds the broken one again instead of failing on it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from scripts import deploy

ROOT = Path(__file__).resolve().parents[2]

HOLDER = """
import sys
from pathlib import Path
from scripts import deploy
with deploy.chalice_cache_lock(Path(sys.argv[1]), deploy.Runner(dry_run=False)):
    print("held", flush=True)
    sys.stdin.readline()
"""


def test_a_second_run_waits_for_the_first_to_let_go(tmp_path: Path) -> None:
    cache = tmp_path / "deployments"
    # GIVEN another process holding the lock
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(cache)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdin is not None
        assert holder.stdout.readline() == "held\n"
        # WHEN this process asks for it
        got = threading.Event()

        def take() -> None:
            with deploy.chalice_cache_lock(cache, deploy.Runner(dry_run=False)):
                got.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        # THEN it does not have it while the other holds it
        assert not got.wait(0.5)
        # AND has it once the other lets go
        holder.stdin.write("done\n")
        holder.stdin.flush()
        assert holder.wait(timeout=30) == 0
        assert got.wait(30)
        taker.join(30)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_an_unreadable_cached_zip_is_removed_and_a_whole_one_kept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "deployments"
    cache.mkdir()
    whole = cache / "managed-layer-0123-python3.12.zip"
    with zipfile.ZipFile(whole, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("python/lib/python3.12/site-packages/mod.py", "VALUE = 1\n" * 200)
    # GIVEN a zip cut off part way, as a run killed while Chalice wrote it leaves it
    broken = cache / "appcode-4567-python3.12.zip"
    broken.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(zipfile.BadZipFile):
        zipfile.ZipFile(broken)
    # WHEN the lock is taken
    with deploy.chalice_cache_lock(cache, deploy.Runner(dry_run=False)):
        inside = sorted(path.name for path in cache.glob("*.zip"))
    # THEN only the whole zip is left, and the run said what it removed
    assert inside == [whole.name]
    with zipfile.ZipFile(whole) as archive:
        assert archive.read("python/lib/python3.12/site-packages/mod.py") == b"VALUE = 1\n" * 200
    assert f"removed {broken.name} from Chalice's cache" in capsys.readouterr().out
