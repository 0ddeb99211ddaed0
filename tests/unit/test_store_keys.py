"""The key registry (timmybot.store.keys) is the one map of the state table."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from timmybot.accounts import linked as accounts
from timmybot.store import keys

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = [ROOT / "layers" / "core" / "python", ROOT / "chalice_app", ROOT / "voice_task", ROOT / "scripts"]
REGISTRY = ROOT / "layers" / "core" / "python" / "timmybot" / "store" / "keys.py"
# A string that starts like a key: one or two capitals, then '#' (G#, GL#, T#, E#, S#breaker#...)
KEY_LIKE = re.compile(r"^[A-Z]{1,2}#")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (they may describe keys in prose)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def key_literals(path: Path) -> list[str]:
    """Every string constant in ``path``'s code (f-string parts included) that looks like a key."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _docstrings(tree)
    hits: list[str] = []
    for node in ast.walk(tree):
        is_text = isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        if is_text and KEY_LIKE.match(node.value):  # type: ignore[attr-defined]
            hits.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value[:30]!r}")
    return hits


def test_key_prefixes_are_spelled_only_in_the_registry() -> None:
    # GIVEN every production module (the core package, the Chalice app, the voice task, scripts)
    files = [f for base in PRODUCTION for f in base.rglob("*.py") if ".venv" not in f.parts and f != REGISTRY]
    assert len(files) > 50

    # THEN none of them spells a key prefix: they build keys with timmybot.store.keys
    hits = [hit for f in files for hit in key_literals(f)]
    assert hits == []
    # AND the scan can fail: the registry itself is full of them
    assert len(key_literals(REGISTRY)) >= len({k.pk_prefix for k in keys.RECORD_KINDS})


def test_every_kind_is_told_apart_by_its_key() -> None:
    # Two kinds sharing a pk and an sk would be one record with two meanings
    pairs = [(k.pk, k.sk) for k in keys.RECORD_KINDS]
    assert len(pairs) == len(set(pairs))
    for kind in keys.RECORD_KINDS:
        sk = kind.sk.replace("{entry}", "0b8c1f2e")
        assert keys.kind_of(kind.example_pk(), sk) == kind, kind.name
        assert "{" not in kind.example_pk(), kind.name
    # AND a key the registry does not know is not taken for one it does
    assert keys.kind_of("Z#1", "GUILD") is None
    assert keys.kind_of(keys.guild_pk("1"), "NOPE") is None


def test_the_builders_produce_their_kinds_keys() -> None:
    assert keys.kind_of(keys.guild_pk("1"), keys.GUILD_SK) is not None
    assert keys.guild_id_of(keys.guild_pk("1234")) == "1234"
    assert keys.guild_id_of(keys.guild_last_pk("1234")) is None  # GL# is not a guild partition
    assert keys.guild_id_of(keys.user_pk("1234")) is None
    built = {
        "queue entry": (keys.guild_pk("1"), keys.entry_sk("e1")),
        "guild's last personal list": (keys.guild_last_pk("1"), keys.GUILD_LAST_SK),
        "interaction dedupe": (keys.dedupe_pk("1"), keys.DEDUPE_SK),
        "track cache": (keys.track_pk("youtube", "x"), keys.TRACK_SK),
        "Spotify mirror": (keys.track_pk("spotify", "x"), keys.MIRROR_SK),
        "Google device code": (keys.device_pk("1"), keys.GOOGLE_DEVICE_SK),
        "Spotify state": (keys.state_pk("s"), keys.SPOTIFY_STATE_SK),
        "Spotify latest state": (keys.spotify_pointer_pk("1"), keys.SPOTIFY_POINTER_SK),
        "source breaker": (keys.breaker_pk("youtube"), keys.BREAKER_SK),
        "identify budget": (keys.IDENTIFY_PK, keys.IDENTIFY_SK),
        "rate window": (keys.rate_pk("play", "user", "1"), keys.RATE_SK),
        "guild history slot": (keys.guild_pk("1"), keys.history_slot_sk(49)),
        "guild history (legacy)": (keys.guild_pk("1"), keys.GUILD_HISTORY_SK),
    }
    for name, (pk, sk) in built.items():
        kind = keys.kind_of(pk, sk)
        assert kind is not None and kind.name == name, (name, pk, sk)
    assert "s" not in keys.state_pk("s")[len("O#state#") :]  # the state itself is never a key
    # the history ring: 50 slots, H#00 … H#49, and nothing outside it
    assert keys.history_slot_sks()[::49] == ["H#00", "H#49"] and len(set(keys.history_slot_sks())) == 50
    with pytest.raises(ValueError, match="outside the ring"):
        keys.history_slot_sk(50)


def test_forget_me_deletes_exactly_the_registered_per_user_kinds() -> None:
    kinds = keys.forget_me_kinds()
    assert {k.name for k in kinds} >= {"play history", "playlist menu", "history list", "servers a user queued in"}
    assert all(k.pk == "U#{user}" for k in kinds)
    assert {k.sk: k.forget_me for k in kinds} == accounts.USER_RECORDS
    # AND every per-user kind is one forget-me deletes (or, for links in progress, cancels)
    per_user = [k for k in keys.RECORD_KINDS if k.pk.startswith(keys.USER_PREFIX)]
    assert per_user == list(kinds)


def test_the_core_keys_are_kept_from_the_generic_record_calls() -> None:
    assert keys.is_core_key(keys.guild_pk("1")) and keys.is_core_key(keys.dedupe_pk("1"))
    assert not keys.is_core_key(keys.guild_last_pk("1"))
    assert not keys.is_core_key(keys.user_pk("1"))


def test_the_architecture_doc_shows_the_registry() -> None:
    doc = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    # regenerate with: python -c 'from timmybot.store import keys; print(keys.markdown_table())'
    assert keys.markdown_table() in doc


def test_the_voice_task_patterns_cover_its_kinds_only() -> None:
    patterns = keys.leading_key_patterns(keys.Role.VOICE)
    assert patterns == ["G#*", "T#*", "S#breaker#*", "B#identify", "L#*", "P#load#*", "P#dead#*"]
    assert "U#*" in keys.leading_key_patterns(keys.Role.API)
