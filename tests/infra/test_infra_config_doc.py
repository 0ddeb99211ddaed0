"""docs/CONFIGURATION.md lists every setting, with its default, and cannot drift from the code.

GIVEN ``timmybot.config.Settings`` (one field = one ``TIMMYBOT_*`` variable) and the environment the
stack sets (infra/template.yaml)
THEN the document has a row per field with the field's real default, and a row per variable the
stack sets that no field reads yet.

The tables are generated; after adding a setting run:

    .venv/bin/python -m tests.infra.test_infra_config_doc --write

The "read by" column is regenerated too but not compared (code moves; names and defaults must not).
"""

from __future__ import annotations

import ast
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "layers" / "core" / "python") not in sys.path:  # run as a module to --write
    sys.path.insert(0, str(ROOT / "layers" / "core" / "python"))

from timmybot.config import PREFIX, Settings  # noqa: E402

DOC = ROOT / "docs" / "CONFIGURATION.md"
CONFIG_SOURCE = ROOT / "layers" / "core" / "python" / "timmybot" / "config.py"
TEMPLATE = ROOT / "infra" / "template.yaml"
CODE_DIRS = ("layers/core/python/timmybot", "chalice_app", "voice_task", "scripts")
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
STACK_BEGIN, STACK_END = "<!-- stack-only:begin -->", "<!-- stack-only:end -->"

# Variables read outside Settings, by name.
OTHER_VARIABLES = {
    "TIMMYBOT_GUILD_ID": ("voice task", "the guild to play for; the launcher's container override (or `--guild`)"),
    "TIMMYBOT_LEASE_GENERATION": ("voice task", "the lease generation the launcher acquired; container override"),
    "POWERTOOLS_METRICS_NAMESPACE": ("Lambdas, voice task", "`TimmyBot`: the metrics namespace (docs/ARCHITECTURE.md)"),
    "XDG_CACHE_HOME": ("voice task (yt-dlp)", "`/tmp/cache`: the root filesystem is read-only"),
    "HOME": ("voice task", "`/tmp`, for the same reason"),
}


def default_text(field: dataclasses.Field[Any]) -> str:
    if field.name == "voice_task_command":
        return "<this python> -m voice_task"
    value = field.default if field.default is not dataclasses.MISSING else field.default_factory()  # type: ignore[misc]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ",".join(str(v) for v in value)
    return str(value)


def field_comments() -> dict[str, str]:
    """The comment at the end of each field's line in config.py: its description."""
    comments: dict[str, str] = {}
    for line in CONFIG_SOURCE.read_text().splitlines():
        match = re.match(r"\s{4}([a-z0-9_]+): [^=]+=.*?\s{2}#\s*(.+)$", line)
        if match:
            comments[match.group(1)] = match.group(2).strip()
    return comments


def secret_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(Settings) if f.repr is False}


def readers(name: str) -> str:
    """Modules that mention ``.name`` (settings.name, self._settings.name...)."""
    found: list[str] = []
    pattern = re.compile(r"\." + re.escape(name) + r"\b")
    for directory in CODE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if path.name == "config.py" and "timmybot" in path.parts:
                continue
            if pattern.search(path.read_text(errors="replace")):
                found.append(path.relative_to(ROOT).as_posix())
    return ", ".join(f"`{p}`" for p in found) if found else "config.py only (validation)"


def stack_variables() -> set[str]:
    text = TEMPLATE.read_text()
    names = set(re.findall(r"^\s+(TIMMYBOT_[A-Z0-9_]+|POWERTOOLS_[A-Z_]+):", text, re.MULTILINE))
    names |= set(re.findall(r"Name: ([A-Z][A-Z0-9_]+)[,}]", text))
    return names


def settings_rows() -> list[str]:
    comments, secrets = field_comments(), secret_fields()
    rows = ["| variable | default | secret | what | read by |", "|---|---|---|---|---|"]
    for field in dataclasses.fields(Settings):
        variable = PREFIX + field.name.upper()
        default = default_text(field).replace("|", "\\|")
        what = comments.get(field.name, "").replace("|", "\\|")
        secret = "**yes**" if field.name in secrets else ""
        rows.append(f"| `{variable}` | `{default}` | {secret} | {what} | {readers(field.name)} |")
    return rows


def stack_only_rows() -> list[str]:
    known = {PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}
    rows = ["| variable | set by | meaning |", "|---|---|---|"]
    for name in sorted(stack_variables() - known - set(OTHER_VARIABLES)):
        rows.append(f"| `{name}` | infra/template.yaml | not read by any setting yet: see infra/README.md |")
    for name, (where, meaning) in OTHER_VARIABLES.items():
        rows.append(f"| `{name}` | {where} | {meaning} |")
    return rows


def _between(text: str, begin: str, end: str) -> list[str]:
    start, stop = text.index(begin), text.index(end)
    return text[start + len(begin) : stop].strip().splitlines()


def _replace(text: str, begin: str, end: str, rows: list[str]) -> str:
    start, stop = text.index(begin), text.index(end)
    return text[: start + len(begin)] + "\n" + "\n".join(rows) + "\n" + text[stop:]


def _key(row: str) -> tuple[str, ...]:
    cells = [c.strip() for c in row.strip("|").split("|")]
    return tuple(cells[:2])


def test_every_setting_is_documented_with_its_default() -> None:
    documented = {_key(r) for r in _between(DOC.read_text(), BEGIN, END)[2:]}
    wanted = {_key(r) for r in settings_rows()[2:]}
    missing, stale = wanted - documented, documented - wanted
    assert not missing and not stale, (
        f"docs/CONFIGURATION.md is out of date (missing {sorted(missing)}, stale {sorted(stale)}): "
        "run .venv/bin/python -m tests.infra.test_infra_config_doc --write"
    )


def test_every_variable_the_stack_sets_is_documented() -> None:
    text = DOC.read_text()
    for name in stack_variables():
        assert f"`{name}`" in text, f"{name} is set by infra/template.yaml but not in docs/CONFIGURATION.md"
    documented = {_key(r)[0] for r in _between(text, STACK_BEGIN, STACK_END)[2:]}
    assert documented == {_key(r)[0] for r in stack_only_rows()[2:]}


def test_secret_settings_have_empty_defaults() -> None:
    for field in dataclasses.fields(Settings):
        if field.name in secret_fields():
            assert field.default == "", field.name


def write() -> None:
    text = DOC.read_text()
    text = _replace(text, BEGIN, END, settings_rows())
    text = _replace(text, STACK_BEGIN, STACK_END, stack_only_rows())
    DOC.write_text(text)


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        ast.parse(CONFIG_SOURCE.read_text())
        sys.stdout.write("\n".join([*settings_rows(), "", *stack_only_rows()]) + "\n")
