"""The suite's DAVE checks must be able to fail: bad logs and bad reports give problems, good ones none."""

from __future__ import annotations

from dataclasses import dataclass, field

from tests.support.dave_checks import bot_transitions, privacy_code_problems, report_problems
from tests.support.emulator.dave import DaveEvent
from tests.support.emulator.listener import PrivacyCode
from tests.support.emulator.server import EmulatorReport

GUILD = 10
CHANNEL = 20
BOT = 1
LISTENER = 2
CODE_1 = "1" * 30
CODE_2 = "2" * 30


@dataclass
class FakeEmulator:
    """Two transitions in one channel: 1 (epoch 1, the bot and a listener), 2 (epoch 2, the same)."""

    events: list[DaveEvent] = field(default_factory=list)
    codes: list[PrivacyCode] = field(default_factory=list)
    bot_user_id: int = BOT

    def privacy_codes(self, guild_id: int, user_id: int | None = None) -> list[PrivacyCode]:
        return [c for c in self.codes if user_id in (None, c.user_id)]

    def dave_events(self, guild_id: int, kind: str | None = None) -> list[DaveEvent]:
        return [e for e in self.events if kind in (None, e.kind)]

    def executed(self, transition_id: int, epoch: int, members: list[int], code: str | None) -> None:
        data = {"transition_id": transition_id, "epoch": epoch, "timed_out": False, "members": members}
        self.events.append(DaveEvent(float(transition_id), GUILD, CHANNEL, "transition_executed", None, data))
        if code is not None:
            self.codes.append(PrivacyCode(float(transition_id), LISTENER, code, CHANNEL, transition_id, epoch))


def two_transitions() -> FakeEmulator:
    emulator = FakeEmulator()
    emulator.executed(1, 1, [BOT, LISTENER], CODE_1)
    emulator.executed(2, 2, [BOT, LISTENER], CODE_2)
    return emulator


def line(transition_id: int, code: str | None) -> str:
    return f"INFO voice_task.voice_client: DAVE transition {transition_id} executed; privacy code {code}\n"


def test_a_bot_that_logged_each_transitions_listener_code_has_no_problem() -> None:
    assert privacy_code_problems(two_transitions(), GUILD, [line(1, CODE_1) + line(2, CODE_2)]) == []


def test_a_transition_the_bot_did_not_log_is_a_problem() -> None:
    problems = privacy_code_problems(two_transitions(), GUILD, [line(1, CODE_1)])
    assert len(problems) == 1
    assert "transition 2" in problems[0] and "logged no privacy code" in problems[0]


def test_a_stale_code_after_a_later_transition_is_a_problem() -> None:
    problems = privacy_code_problems(two_transitions(), GUILD, [line(1, CODE_1) + line(2, CODE_1)])
    assert len(problems) == 1
    assert "transition 2" in problems[0] and f"not the listeners' {CODE_2}" in problems[0]


def test_no_code_while_a_listener_shared_the_transition_is_a_problem() -> None:
    problems = privacy_code_problems(two_transitions(), GUILD, [line(1, CODE_1) + line(2, None)])
    assert len(problems) == 1
    assert "privacy code None" in problems[0]


def test_a_code_some_listener_had_for_another_transition_is_not_enough() -> None:
    problems = privacy_code_problems(two_transitions(), GUILD, [line(1, CODE_2) + line(2, CODE_1)])
    assert len(problems) == 2


def test_transitions_without_the_bot_or_without_a_listener_need_no_line() -> None:
    emulator = FakeEmulator()
    emulator.executed(1, 1, [LISTENER, 3], CODE_1)  # two listeners, the bot not in the group
    emulator.executed(2, 2, [BOT], None)  # the listener left before it executed
    assert privacy_code_problems(emulator, GUILD, [line(2, None)]) == []


def test_a_transition_no_listener_computed_a_code_for_is_a_problem() -> None:
    emulator = FakeEmulator()
    emulator.executed(1, 1, [BOT, LISTENER], None)
    assert privacy_code_problems(emulator, GUILD, [line(1, CODE_1)]) == [
        f"transition 1 (epoch 1, channel {CHANNEL}): no listener computed a privacy code"
    ]


def test_the_bots_transition_lines_are_read_with_none() -> None:
    assert bot_transitions([line(3, CODE_1) + "noise\n" + line(0, None)]) == [(3, CODE_1), (0, None)]


def test_report_problems_flags_one_plaintext_frame() -> None:
    report = EmulatorReport(seed=1, plaintext_frames=1, listener_failures=[])
    assert report_problems(report) == ["1 Opus frames went out in plain text while DAVE was in force"]
    assert report_problems(report, plaintext_ok=True) == []


def test_report_problems_flags_listener_failures_and_frames_that_are_not_audio() -> None:
    report = EmulatorReport(seed=1, plaintext_frames=0, listener_failures=["op 29: boom"], not_audio_frames=2)
    assert len(report_problems(report)) == 2
    assert report_problems(EmulatorReport(seed=1, plaintext_frames=0, listener_failures=[])) == []
