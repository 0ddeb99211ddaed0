"""The compiled zips' cache (scripts/lambda_runtime.py): a re-deploy reuses the bytecode it compiled.

GIVEN a small zip of modules, compiled by the real interpreter with ``compileall``
WHEN  it is compiled again from the same bytes with the same cache
THEN  the cached zip is what comes out (no second compile), with the files a compile without
      the cache makes; a zip with other bytes, or unpacked elsewhere, is compiled afresh; and only
      the newest entries are kept.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from scripts import lambda_runtime


def _zip(path: Path, name: str, modules: dict[str, str]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    out = path / name
    with zipfile.ZipFile(out, "w") as archive:
        for module, source in modules.items():
            # A fixed time: writestr stamps the current one, so two zips of the same modules made in
            # different 2-second steps would differ in their bytes (and miss the cache)
            archive.writestr(zipfile.ZipInfo(module, date_time=(2026, 1, 1, 0, 0, 0)), source)
    return out


def _names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return sorted(archive.namelist())


def test_a_zip_compiled_before_comes_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    modules = {"pkg/__init__.py": "", "pkg/mod.py": "VALUE = 1\n"}
    # GIVEN the zip compiled once without the cache, and once with it
    plain = _zip(tmp_path / "plain", "layer-deployment.zip", modules)
    assert lambda_runtime.compile_zip(plain, cache=None) == 2
    first = _zip(tmp_path / "first", "layer-deployment.zip", modules)
    assert lambda_runtime.compile_zip(first, cache=cache) == 2
    (entry,) = cache.glob("*.zip")
    # (the same files as without the cache; a .pyc's bytes may differ between two compiles, as
    # marshal's back-references depend on what the compiling process interned before)
    assert _names(first) == _names(plain) and first.read_bytes() == entry.read_bytes()
    assert "pkg/__pycache__/mod.cpython-311.pyc" in _names(first)

    # WHEN the same bytes are compiled again: the entry is what comes out (marked here, to see it used)
    with zipfile.ZipFile(entry, "a") as archive:
        archive.writestr("pkg/__pycache__/marker.cpython-311.pyc", b"")
    again = _zip(tmp_path / "again", "layer-deployment.zip", modules)
    assert lambda_runtime.compile_zip(again, cache=cache) == 3
    assert again.read_bytes() == entry.read_bytes()

    # AND other bytes, or the same bytes unpacked elsewhere (/var/task, not /opt), are compiled afresh
    changed = _zip(tmp_path / "changed", "layer-deployment.zip", {**modules, "pkg/mod.py": "VALUE = 2\n"})
    assert lambda_runtime.compile_zip(changed, cache=cache) == 2
    elsewhere = _zip(tmp_path / "elsewhere", "deployment.zip", modules)
    assert lambda_runtime.compile_zip(elsewhere, cache=cache) == 2
    assert len(list(cache.glob("*.zip"))) == 3
    assert "pkg/__pycache__/marker.cpython-311.pyc" not in _names(changed) + _names(elsewhere)


def test_only_the_newest_entries_are_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    for n in range(lambda_runtime.CACHE_KEEP + 2):
        built = _zip(tmp_path / str(n), "layer-deployment.zip", {"m.py": f"N = {n}\n"})
        lambda_runtime.compile_zip(built, cache=cache)
    assert len(list(cache.glob("*.zip"))) == lambda_runtime.CACHE_KEEP
    assert not list(cache.glob("*.tmp"))
    # AND the newest is still served: compiling the last zip's bytes again finds it
    last = lambda_runtime.CACHE_KEEP + 1
    entries = {p.read_bytes() for p in cache.glob("*.zip")}
    rebuilt = _zip(tmp_path / "rebuilt", "layer-deployment.zip", {"m.py": f"N = {last}\n"})
    lambda_runtime.compile_zip(rebuilt, cache=cache)
    assert rebuilt.read_bytes() in entries
