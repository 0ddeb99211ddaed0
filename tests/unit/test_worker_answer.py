"""How every worker job answers (timmybot.worker.answer): the real REST client against the loopback
Discord emulator, and the in-memory Store's claim records.

GIVEN a job whose interaction was deferred
WHEN  its work returns a body, raises a domain error, or fails unexpectedly
THEN  the original response shows the body, the error's sentence, or the apology (and the failure is
      re-raised, its claim released so the retry runs); an apology that cannot be sent never hides
      the first error
AND   claimed on its marker, a redelivery after it finished repeats the saved reply without running,
      one while it still runs leaves the reply alone, and a run that sent its own last edit is not
      edited over.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from tests.support.emulator import DiscordEmulator
from timmybot.discord.rest import DiscordRest
from timmybot.errors import TrackNotFoundError
from timmybot.store.memory import MemoryStore
from timmybot.worker.answer import Body, Once, answer, sentence
from timmybot.worker.jobs import PlayJob

APPLICATION_ID = "123456789012345678"
APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."


@pytest.fixture(scope="module")
def emulator() -> Iterator[DiscordEmulator]:
    with DiscordEmulator(application_id=int(APPLICATION_ID)) as running:
        yield running


@pytest.fixture
def rest(emulator: DiscordEmulator, monkeypatch: pytest.MonkeyPatch) -> DiscordRest:
    monkeypatch.setenv("SSL_CERT_FILE", str(emulator.ca_file))
    return DiscordRest(token=emulator.bot_token, api_base=emulator.api_base, max_attempts=1)


_ids = iter(range(900000000000000000, 999999999999999999))


def _job() -> PlayJob:
    interaction = str(next(_ids))
    return PlayJob.from_dict(
        {
            "interaction_id": interaction,
            "application_id": APPLICATION_ID,
            "token": f"token-{interaction}",
            "guild_id": "222222222222222222",
            "user_id": "333333333333333333",
            "query": "anything",
        }
    )


def _once(store: MemoryStore, job: PlayJob) -> Once:
    return Once(store, job.marker, claim_ttl_s=60, ttl_s=600)


class Runs:
    """The work a job does: counts its runs, returns ``body`` or raises ``error``."""

    def __init__(self, body: Body | None = None, error: Exception | None = None) -> None:
        self.body, self.error, self.count = body, error, 0

    def __call__(self) -> Body:
        self.count += 1
        if self.error is not None:
            raise self.error
        assert self.body is not None
        return self.body


def test_the_body_the_work_returns_is_the_reply(rest: DiscordRest, emulator: DiscordEmulator) -> None:
    job = _job()
    body = {"content": "Added **Song**", "embeds": [{"title": "Song"}]}
    assert answer(job, rest, Runs(body), what="play job", apology=APOLOGY) == body
    shown = emulator.original_message(job.token)
    assert shown is not None
    assert (shown["content"], shown["embeds"][0]["title"]) == ("Added **Song**", "Song")


def test_a_domain_error_becomes_its_sentence_and_the_job_ends(rest: DiscordRest, emulator: DiscordEmulator) -> None:
    job = _job()
    assert emulator.original_message(job.token) is None
    work = Runs(error=TrackNotFoundError("Nothing matched **that**."))
    assert answer(job, rest, work, what="play job", apology=APOLOGY, once=_once(MemoryStore(), job)) is None
    shown = emulator.original_message(job.token)
    assert shown is not None
    assert (shown["content"], shown["embeds"], shown["components"]) == ("Nothing matched **that**.", [], [])


def test_an_unexpected_failure_apologises_re_raises_and_releases_its_claim(
    rest: DiscordRest, emulator: DiscordEmulator
) -> None:
    job, store = _job(), MemoryStore()
    work = Runs(error=RuntimeError("the disk fell off"))
    with pytest.raises(RuntimeError, match="the disk fell off"):
        answer(job, rest, work, what="play job", apology=APOLOGY, once=_once(store, job))
    shown = emulator.original_message(job.token)
    assert shown is not None and shown["content"] == APOLOGY
    # AND the retry runs the work again (the claim was released), and its reply replaces the apology
    work.error, work.body = None, sentence("Added it after all.")
    assert answer(job, rest, work, what="play job", apology=APOLOGY, once=_once(store, job)) is not None
    assert work.count == 2
    shown = emulator.original_message(job.token)
    assert shown is not None and shown["content"] == "Added it after all."


def test_an_apology_that_cannot_be_sent_never_hides_the_first_error() -> None:
    with socket.socket() as probe:  # a port nothing listens on: every edit is refused
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    unreachable = DiscordRest(token="t", api_base=f"http://127.0.0.1:{closed}/api/v10", max_attempts=1)
    with pytest.raises(RuntimeError, match="the first error"):
        answer(_job(), unreachable, Runs(error=RuntimeError("the first error")), what="play job", apology=APOLOGY)


def test_a_redelivery_after_the_job_finished_repeats_its_reply_and_runs_nothing(
    rest: DiscordRest, emulator: DiscordEmulator
) -> None:
    job, store = _job(), MemoryStore()
    work = Runs(sentence("Added 3 tracks."))
    answer(job, rest, work, what="personal job", apology=APOLOGY, once=_once(store, job))
    # GIVEN something else edited the reply since (a later button press, a moderator's client)
    rest.edit_original(job.application_id, job.token, sentence("changed"))
    # WHEN the job is delivered again
    assert answer(job, rest, work, what="personal job", apology=APOLOGY, once=_once(store, job)) is None
    # THEN it ran once, and the reply is the one it saved
    assert work.count == 1
    shown = emulator.original_message(job.token)
    assert shown is not None and shown["content"] == "Added 3 tracks."


def test_a_redelivery_while_the_job_still_runs_leaves_the_reply_to_it(
    rest: DiscordRest, emulator: DiscordEmulator
) -> None:
    job, store = _job(), MemoryStore()
    # GIVEN the first delivery holds the claim and has shown progress
    assert store.claim_interaction(job.marker, ttl_s=60)
    rest.edit_original(job.application_id, job.token, sentence("Adding… Added 25/50"))
    # WHEN a second delivery arrives, THEN it runs nothing and edits nothing
    work = Runs(sentence("never"))
    assert answer(job, rest, work, what="personal job", apology=APOLOGY, once=_once(store, job)) is None
    assert work.count == 0
    assert len(emulator.webhook_calls(job.token)) == 1
    shown = emulator.original_message(job.token)
    assert shown is not None and shown["content"] == "Adding… Added 25/50"


def test_a_run_that_sent_its_own_last_edit_is_not_edited_over(rest: DiscordRest, emulator: DiscordEmulator) -> None:
    job, store = _job(), MemoryStore()
    final = sentence("Road trip: 12 tracks.")

    def export() -> Body:  # sends its reply itself (the export's carries a file), then returns it to be saved
        rest.edit_original(job.application_id, job.token, final)
        return final

    assert answer(job, rest, export, what="playlist job", apology=APOLOGY, once=_once(store, job), send=False) == final
    assert len(emulator.webhook_calls(job.token)) == 1
    # AND a redelivery repeats what it saved
    again = Runs(sentence("never"))
    assert answer(job, rest, again, what="playlist job", apology=APOLOGY, once=_once(store, job)) is None
    assert again.count == 0
    assert len(emulator.webhook_calls(job.token)) == 2
    shown = emulator.original_message(job.token)
    assert shown is not None and shown["content"] == "Road trip: 12 tracks."
