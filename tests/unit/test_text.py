"""Quoting user-supplied text: escaped, mention-proof, shortened on a safe boundary, fitted to a limit."""

from __future__ import annotations

import re

import pytest

from timmybot import text

HOSTILE = "@everyone <@&1> [Free Nitro](https://evil.example) **x** ||y|| `code` ```block```"
#: A masked link as Discord parses it: ``[text](target)`` with neither bracket escaped.
MASKED_LINK = re.compile(r"(?<!\\)\[[^\]]*(?<!\\)\]\((?!\\)")


def _unescaped_backticks(quoted: str) -> list[int]:
    """Where a backtick follows an even run of backslashes (none, or escaped backslashes): live markdown."""
    return [m.start() for m in re.finditer("`", quoted)
            if (len(quoted[: m.start()]) - len(quoted[: m.start()].rstrip("\\"))) % 2 == 0]  # fmt: skip


def test_markdown_masked_links_and_mentions_cannot_form() -> None:
    quoted = text.escape(HOSTILE)

    assert not MASKED_LINK.search(quoted)
    assert "**x**" not in quoted and "||y||" not in quoted
    assert not _unescaped_backticks(quoted)  # no code span nor code block can form
    assert "@everyone" not in quoted and "<@&1>" not in quoted
    assert quoted.replace("\\", "").replace("\u200b", "") == HOSTILE  # it reads the same


@pytest.mark.parametrize("limit", [1, 2, 3, 10, 37, 100])
def test_quote_never_exceeds_its_limit_nor_ends_on_half_an_escape(limit: int) -> None:
    quoted = text.quote(HOSTILE * 40, limit)

    assert len(quoted) <= limit
    body = quoted.removesuffix(text.ELLIPSIS)
    assert (len(body) - len(body.rstrip("\\"))) % 2 == 0
    assert not _unescaped_backticks(quoted)


def test_newlines_in_a_title_do_not_break_the_line_it_is_quoted_in() -> None:
    assert text.quote("a\nb\r\n\tc", 50) == "a b c"


def test_fit_keeps_the_whole_line_within_its_limit_and_gives_short_parts_room_to_the_long() -> None:
    line = text.fit("Skipped **{title}**: {why}", 2000, title=HOSTILE * 60, why="the source stopped serving it")

    assert len(line) <= 2000
    assert line.endswith("**: the source stopped serving it")
    assert len(line) > 1900  # the title took what the short reason left


def test_cap_bounds_stored_text_without_escaping() -> None:
    assert text.cap("x" * 300) == "x" * 255 + text.ELLIPSIS
    assert text.cap("[a](b)") == "[a](b)"
    assert text.cap(None) == ""
