"""/preferences shows and changes a user's own settings, ephemerally; they expire 30 idle days after
the user was last active (each use refreshes them) and read older records' shape."""

from __future__ import annotations

from tests.support.clock import FakeClock
from tests.support.handler_kit import HandlerApi
from tests.support.signing import EPHEMERAL, OTHER_USER_ID, USER_ID, command
from timmybot import preferences
from timmybot.preferences import PREFS_TTL_S, TOUCH_EVERY_S, Preferences, Quality
from timmybot.store.keys import PREFS_SK, user_pk
from timmybot.store.memory import MemoryStore

DAY = 24 * 3600


def test_preferences_without_options_shows_the_defaults_to_the_user_alone(api: HandlerApi) -> None:
    data = api.post(command("preferences")).json_body["data"]

    assert data["flags"] == EPHEMERAL
    assert "Preferred platform: the bot's usual order" in data["content"]
    assert "Ping me when my track starts: off" in data["content"]
    assert "Quality: high" in data["content"]
    # AND showing writes nothing: a user who never saved has no record
    assert api.store.get_record(user_pk(USER_ID), PREFS_SK) is None


def test_each_option_changes_its_setting_and_leaves_the_others(api: HandlerApi) -> None:
    # WHEN the user sets a platform and the quality, then (later) the ping and auto-queue
    first = api.post(command("preferences", {"platform": "soundcloud", "quality": "data-saver"})).json_body["data"]
    api.post(command("preferences", {"notify": True, "auto-queue": False}))

    # THEN the answer is private and says what is saved
    assert first["flags"] == EPHEMERAL and first["content"].startswith("Saved.")
    assert "SoundCloud first" in first["content"] and "data-saver" in first["content"]
    # AND the stored preferences hold all four, for that user only
    saved = preferences.load(api.store, USER_ID)
    assert (saved.platform, saved.quality, saved.notify, saved.autoplay) == (
        "soundcloud",
        Quality.DATA_SAVER,
        True,
        False,
    )
    assert preferences.stored(api.store, OTHER_USER_ID) is None
    # AND "the bot's usual order" puts the platform back
    api.post(command("preferences", {"platform": "default"}))
    assert preferences.load(api.store, USER_ID).platform is None


def test_a_platform_the_operator_does_not_use_is_a_clear_sentence(make_api) -> None:  # type: ignore[no-untyped-def]
    api = make_api(source_chain=("youtube", "soundcloud"))

    data = api.post(command("preferences", {"platform": "ytmusic"})).json_body["data"]

    assert data["flags"] == EPHEMERAL
    assert "YouTube Music isn't one of the sources this bot uses" in data["content"]
    assert preferences.stored(api.store, USER_ID) is None


def test_preferences_expire_30_days_after_the_last_activity_and_each_use_refreshes_them() -> None:
    # GIVEN a user who saved preferences
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    preferences.save(store, USER_ID, lambda p: Preferences(notify=True, autoplay=p.autoplay), now=clock())

    # WHEN they are active again 20 days later (a use refreshes the record)
    clock.advance(20 * DAY)
    assert preferences.touch(store, USER_ID, now=clock()) is not None
    # THEN 29 days after that use they are still there
    clock.advance(29 * DAY)
    assert preferences.load(store, USER_ID).notify is True
    # AND after 30 idle days they read as absent (before any TTL sweep deleted them)
    clock.advance(DAY + 1)
    assert preferences.stored(store, USER_ID) is None
    assert preferences.load(store, USER_ID) == Preferences()


def test_a_busy_user_refreshes_their_preferences_at_most_once_a_day() -> None:
    clock = FakeClock()
    store = MemoryStore(clock=clock)
    saved = preferences.save(store, USER_ID, lambda p: p, now=clock())

    clock.advance(TOUCH_EVERY_S - 1)
    assert preferences.touch(store, USER_ID, now=clock()) == saved  # not rewritten
    clock.advance(2)
    refreshed = preferences.touch(store, USER_ID, now=clock())
    assert refreshed is not None and refreshed.active_at == clock()
    # AND touching a user with no preferences never creates a record
    assert preferences.touch(store, OTHER_USER_ID, now=clock()) is None
    assert store.get_record(user_pk(OTHER_USER_ID), PREFS_SK) is None
    assert PREFS_TTL_S == 30 * DAY


def test_a_record_of_the_older_shape_reads_with_the_defaults_for_the_rest() -> None:
    store = MemoryStore()
    store.update_record(user_pk(USER_ID), PREFS_SK, lambda _r: {"autoplay": False, "quality": "ultra"})

    prefs = preferences.load(store, USER_ID)

    assert prefs == Preferences(autoplay=False)


def test_source_order_puts_the_users_platform_first_only_where_the_chain_has_it() -> None:
    chain = ("youtube", "ytmusic", "soundcloud")

    assert preferences.source_order(chain, "soundcloud") == ("soundcloud", "youtube", "ytmusic")
    assert preferences.source_order(chain, None) == chain
    assert preferences.source_order(("youtube",), "soundcloud") == ("youtube",)
