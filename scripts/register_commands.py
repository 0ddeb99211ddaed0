"""Register TimmyBot's slash commands with Discord (one bulk PUT of the schema defined in code).

    python scripts/register_commands.py --dry-run          # print the JSON, call nothing
    python scripts/register_commands.py --guild 1234…     # one guild: updates instantly
    python scripts/register_commands.py                   # global

Reads TIMMYBOT_DISCORD_APPLICATION_ID, TIMMYBOT_DISCORD_BOT_TOKEN and TIMMYBOT_DISCORD_API_BASE.
Exit codes: 0 done, 1 Discord refused, 2 bad arguments or settings.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for extra in (ROOT / "chalice_app", ROOT / "layers" / "core" / "python"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from chalicelib import commands  # noqa: E402
from timmybot.config import Settings, SettingsError, is_snowflake  # noqa: E402
from timmybot.discord.rest import DiscordHTTPError, DiscordRest  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bulk-overwrite TimmyBot's slash commands on Discord.")
    parser.add_argument("--guild", metavar="ID", help="register to this guild only (instant) instead of globally")
    parser.add_argument("--dry-run", action="store_true", help="print the command JSON and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    schema = commands.schema()
    if args.dry_run:
        print(json.dumps(schema, indent=2, ensure_ascii=False))
        return 0
    if args.guild is not None and not is_snowflake(args.guild):
        print(
            f"error: --guild {args.guild!r} is not a Discord guild id (a snowflake: 17 to 20 digits)", file=sys.stderr
        )
        return 2
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    missing = [
        name
        for name, value in (
            ("TIMMYBOT_DISCORD_APPLICATION_ID", settings.discord_application_id),
            ("TIMMYBOT_DISCORD_BOT_TOKEN", settings.discord_bot_token),
        )
        if not value
    ]
    if missing:
        print(f"error: set {' and '.join(missing)} (or use --dry-run)", file=sys.stderr)
        return 2

    scope = f"to guild {args.guild}" if args.guild else "globally"
    try:
        registered = DiscordRest.from_settings(settings).bulk_overwrite_commands(
            settings.discord_application_id, schema, guild_id=args.guild
        )
    except DiscordHTTPError as error:
        print(f"error: Discord refused the commands: {error}", file=sys.stderr)
        return 1
    names = ", ".join(f"/{c.get('name')}" for c in registered) or "(none returned)"
    print(f"Registered {len(schema)} commands {scope}: {names}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
