"""GIVEN roles and channel overwrites WHEN the calculator runs THEN Discord's precedence holds."""

from __future__ import annotations

from pathlib import Path

from timmybot.discord.permissions import (
    ALL_PERMISSIONS,
    POST_REQUIREMENTS,
    VOICE_REQUIREMENTS,
    ChannelInfo,
    GuildRoles,
    Overwrite,
    OverwriteType,
    Permission,
    channel_permissions,
    missing,
)

GUILD = "100000000000000001"
BOT = "100000000000000002"
OWNER = "100000000000000003"
DJ = "100000000000000010"
MUTED = "100000000000000011"
ADMIN = "100000000000000012"

VOICE_BASICS = Permission.VIEW_CHANNEL | Permission.CONNECT | Permission.SPEAK
TEXT_BASICS = Permission.VIEW_CHANNEL | Permission.SEND_MESSAGES | Permission.EMBED_LINKS


def guild(everyone: int = VOICE_BASICS | TEXT_BASICS, **roles: int) -> GuildRoles:
    ids = {"dj": DJ, "muted": MUTED, "admin": ADMIN}
    return GuildRoles(GUILD, OWNER, {GUILD: int(everyone), **{ids[name]: int(p) for name, p in roles.items()}})


def role(role_id: str, *, allow: int = 0, deny: int = 0) -> Overwrite:
    return Overwrite(role_id, OverwriteType.ROLE, int(allow), int(deny))


def member(member_id: str, *, allow: int = 0, deny: int = 0) -> Overwrite:
    return Overwrite(member_id, OverwriteType.MEMBER, int(allow), int(deny))


def test_everyone_permissions_apply_without_overwrites() -> None:
    perms = channel_permissions(guild(), BOT, [], [])
    assert missing(perms, VOICE_REQUIREMENTS) == []
    assert missing(perms, POST_REQUIREMENTS) == []


def test_administrator_role_grants_everything_and_ignores_overwrites() -> None:
    # GIVEN @everyone has nothing, the bot has an Administrator role, and the channel denies all to it
    roles = guild(everyone=0, admin=Permission.ADMINISTRATOR)
    overwrites = [role(GUILD, deny=VOICE_BASICS), member(BOT, deny=VOICE_BASICS)]
    # THEN the bot still has every permission
    assert channel_permissions(roles, BOT, [ADMIN], overwrites) == ALL_PERMISSIONS


def test_guild_owner_has_every_permission() -> None:
    assert channel_permissions(guild(everyone=0), OWNER, [], [role(GUILD, deny=VOICE_BASICS)]) == ALL_PERMISSIONS


def test_everyone_overwrite_deny_removes_the_bit() -> None:
    perms = channel_permissions(guild(), BOT, [], [role(GUILD, deny=Permission.CONNECT)])
    assert missing(perms, VOICE_REQUIREMENTS) == ["Connect"]


def test_role_allow_beats_everyone_deny() -> None:
    # GIVEN @everyone is denied Speak in the channel but the bot's DJ role is allowed it
    overwrites = [role(GUILD, deny=Permission.SPEAK), role(DJ, allow=Permission.SPEAK)]
    # THEN the bot may speak; without the role it may not
    assert missing(channel_permissions(guild(dj=0), BOT, [DJ], overwrites), VOICE_REQUIREMENTS) == []
    assert missing(channel_permissions(guild(dj=0), BOT, [], overwrites), VOICE_REQUIREMENTS) == ["Speak"]


def test_role_overwrites_aggregate_allow_over_deny() -> None:
    # GIVEN one role denies Connect and another allows it: role allows are applied after role denies
    overwrites = [role(MUTED, deny=Permission.CONNECT), role(DJ, allow=Permission.CONNECT)]
    perms = channel_permissions(guild(dj=0, muted=0), BOT, [MUTED, DJ], overwrites)
    assert perms & Permission.CONNECT


def test_member_overwrite_takes_precedence_over_roles() -> None:
    # GIVEN a role allows View Channel but the bot's own overwrite denies it
    overwrites = [role(DJ, allow=Permission.VIEW_CHANNEL), member(BOT, deny=Permission.VIEW_CHANNEL)]
    perms = channel_permissions(guild(dj=0), BOT, [DJ], overwrites)
    assert missing(perms, VOICE_REQUIREMENTS) == ["View Channel"]
    # AND a member allow beats a role deny
    overwrites = [role(MUTED, deny=Permission.SPEAK), member(BOT, allow=Permission.SPEAK)]
    assert channel_permissions(guild(muted=0), BOT, [MUTED], overwrites) & Permission.SPEAK


def test_overwrites_for_other_members_and_roles_do_not_apply() -> None:
    overwrites = [role(MUTED, deny=VOICE_BASICS), member(OWNER, deny=VOICE_BASICS)]
    assert missing(channel_permissions(guild(), BOT, [], overwrites), VOICE_REQUIREMENTS) == []


def test_base_permissions_come_from_everyone_or_member_roles() -> None:
    # GIVEN @everyone cannot embed links, the DJ role can
    roles = guild(everyone=VOICE_BASICS | Permission.SEND_MESSAGES, dj=Permission.EMBED_LINKS)
    assert missing(channel_permissions(roles, BOT, [], []), POST_REQUIREMENTS) == ["Embed Links"]
    assert missing(channel_permissions(roles, BOT, [DJ], []), POST_REQUIREMENTS) == []


def test_each_missing_voice_permission_is_named_in_order() -> None:
    overwrites = [role(GUILD, deny=VOICE_BASICS)]
    assert missing(channel_permissions(guild(), BOT, [], overwrites), VOICE_REQUIREMENTS) == [
        "View Channel",
        "Connect",
        "Speak",
    ]


def test_channel_payload_parsing_detects_stage_and_overwrites() -> None:
    payload = {
        "id": "5",
        "type": 13,
        "name": "Stage",
        "user_limit": 0,
        "permission_overwrites": [{"id": GUILD, "type": 0, "allow": "0", "deny": str(int(Permission.SPEAK))}],
    }
    channel = ChannelInfo.from_payload(payload)
    assert channel.is_stage
    assert channel.overwrites == (Overwrite(GUILD, OverwriteType.ROLE, 0, int(Permission.SPEAK)),)


def test_guild_payload_parsing_reads_string_permission_bits() -> None:
    payload = {"id": GUILD, "owner_id": OWNER, "roles": [{"id": GUILD, "permissions": str(1 << 38 | 1 << 10)}]}
    roles = GuildRoles.from_payload(payload)
    assert roles.role_permissions[GUILD] == (1 << 38) | (1 << 10)
    assert roles.owner_id == OWNER


def test_there_is_one_permission_enum_for_interactions_and_channels() -> None:
    from timmybot.discord import types  # noqa: PLC0415

    root = Path(__file__).resolve().parents[2] / "layers" / "core" / "python" / "timmybot"
    definitions = [p for p in root.rglob("*.py") if "class Permission(" in p.read_text()]
    assert definitions == [root / "discord" / "types.py"]
    assert Permission is types.Permission
    assert Permission.MANAGE_GUILD in Permission(int(types.Permission.ADMINISTRATOR | Permission.MANAGE_GUILD))
