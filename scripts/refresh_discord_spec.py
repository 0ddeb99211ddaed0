#!/usr/bin/env python3
"""Refresh the part of Discord's OpenAPI spec the emulator holds request bodies to.

Discord publishes its API as an OpenAPI 3.1 document (github ``discord/discord-api-spec``,
``specs/openapi.json``, MIT). The emulator needs only the request bodies of the routes the bot
writes to, and the schemas they reference; this script cuts them out and writes
``tests/support/discord_spec/openapi.json`` with the source commit in ``SOURCE.md``.

    python3 scripts/refresh_discord_spec.py --spec path/to/openapi.json --commit <sha>
    python3 scripts/refresh_discord_spec.py --commit <sha>     # downloads that commit's file

Stdlib only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "tests" / "support" / "discord_spec"
RAW_URL = "https://raw.githubusercontent.com/discord/discord-api-spec/{commit}/specs/openapi.json"

#: (method, path) of every route whose request body the emulator checks.
ROUTES: tuple[tuple[str, str], ...] = (
    ("post", "/channels/{channel_id}/messages"),
    ("patch", "/channels/{channel_id}/messages/{message_id}"),
    ("patch", "/webhooks/{webhook_id}/{webhook_token}/messages/@original"),
    ("post", "/webhooks/{webhook_id}/{webhook_token}"),
    ("patch", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}"),
    ("post", "/interactions/{interaction_id}/{interaction_token}/callback"),
    ("put", "/applications/{application_id}/commands"),
    ("put", "/applications/{application_id}/guilds/{guild_id}/commands"),
)


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            found.add(ref.rsplit("/", 1)[1])
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def subset(spec: dict[str, Any]) -> dict[str, Any]:
    """The routes' request bodies and, transitively, every component schema they reference."""
    paths: dict[str, Any] = {}
    for method, path in ROUTES:
        operation = spec["paths"][path][method]
        paths.setdefault(path, {})[method] = {
            "operationId": operation.get("operationId"),
            "requestBody": operation["requestBody"],
        }
    schemas = spec["components"]["schemas"]
    wanted: set[str] = set()
    _refs(paths, wanted)
    todo = list(wanted)
    while todo:
        name = todo.pop()
        more: set[str] = set()
        _refs(schemas[name], more)
        for extra in more - wanted:
            wanted.add(extra)
            todo.append(extra)
    return {
        "openapi": spec["openapi"],
        "info": spec["info"],
        "paths": paths,
        "components": {"schemas": {name: schemas[name] for name in sorted(wanted)}},
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, help="a local copy of specs/openapi.json (else it is downloaded)")
    parser.add_argument("--commit", required=True, help="the discord-api-spec commit the file comes from")
    args = parser.parse_args(argv)
    if args.spec is not None:
        spec = json.loads(args.spec.read_text())
    else:
        with urllib.request.urlopen(RAW_URL.format(commit=args.commit), timeout=60) as response:
            spec = json.loads(response.read())
    cut = subset(spec)
    TARGET.mkdir(parents=True, exist_ok=True)
    (TARGET / "openapi.json").write_text(json.dumps(cut, indent=1, sort_keys=True) + "\n")
    (TARGET / "SOURCE.md").write_text(
        "# Discord's OpenAPI spec (the part the emulator checks)\n\n"
        f"- source: github `discord/discord-api-spec`, `specs/openapi.json`, commit `{args.commit}`\n"
        f"- API version {cut['info'].get('version')}; cut on {dt.date.today().isoformat()} by "
        "`scripts/refresh_discord_spec.py` (the routes it lists, and every schema they reference)\n"
        "- licence: MIT, Copyright 2023 Discord (LICENSE, next to this file)\n"
    )
    print(f"wrote {len(cut['paths'])} paths and {len(cut['components']['schemas'])} schemas to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
