"""Every handler names the ports it uses, and only ports the bootstrap provides are accepted.

``chalicelib.commands.base.bind`` reads a handler's parameters once, at import; the router passes
exactly those ports (``chalicelib.services.PORTS``), each built on first use. So what a command
touches is in its signature, and a command that does not name a port never builds it (nor reads
the secrets that port needs).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from app import app
from chalice.test import Client

from chalicelib import commands
from chalicelib.bootstrap import app_services, bootstrap
from chalicelib.commands.base import Command, CommandContext, UnknownPortError, bind
from chalicelib.dispatch import InlineDispatcher
from chalicelib.replies import Reply
from chalicelib.services import PORTS, Services
from tests.support.signing import Signer, command, make_settings, post_checked
from timmybot.discord.custom_ids import NowPlayingAction, NowPlayingId
from timmybot.store.base import Store

CHALICELIB = Path(__file__).resolve().parents[2] / "chalice_app" / "chalicelib"
SECRET_PARAMETER = "/timmybot/test/discord-bot-token"  # nothing serves it: reading it would fail the test


def _registered() -> list[tuple[str, commands.BoundHandler]]:
    return [(c.name, c.bound) for c in commands.COMMANDS] + sorted(commands.COMPONENTS.items())


def _provided_type(port: str) -> str:
    """The type the bootstrap's ``Services`` gives for ``port`` (its property's return annotation)."""
    prop = getattr(Services, port)
    assert isinstance(prop, property) and prop.fget is not None, f"Services.{port} is a lazily built property"
    return str(inspect.signature(prop.fget).return_annotation)


def test_every_registered_handler_names_only_ports_the_bootstrap_provides_with_their_types() -> None:
    registered = _registered()
    assert len(registered) > 30  # every command and every component route

    for route, bound in registered:
        parameters = list(inspect.signature(bound.function).parameters.values())
        assert parameters[0].name == "ctx", route
        assert str(parameters[0].annotation) == "CommandContext", route
        for parameter in parameters[1:]:
            assert parameter.name in PORTS, f"{route}: {parameter.name} is not provided"
            assert str(parameter.annotation) == _provided_type(parameter.name), f"{route}: {parameter.name}"
        assert bound.ports == tuple(p.name for p in parameters[1:]), route


def test_the_handlers_that_hand_work_to_the_worker_name_the_dispatcher_and_the_account_ones_the_accounts() -> None:
    ports = dict(_registered())

    for route in ("play", "search", "my-playlists", "liked-songs", "play-history", "recommendations"):
        assert "dispatcher" in ports[route].ports, route
    for route in ("search.pick", "ghist.pick", "mypl.pick", "history.replay"):
        assert "dispatcher" in ports[route].ports, route
    for route in ("link", "check-auth", "unlink", "auth.check", "forget.confirm"):
        assert ports[route].ports == ("accounts",), route
    assert set(commands.COMPONENT_RATES) <= set(commands.COMPONENTS)
    for action in NowPlayingAction:
        assert commands.component_route(NowPlayingId(action))[1] is commands.COMPONENTS[f"np.{action.value}"]
    assert ports["forget-me"].ports == ()  # it only asks; the button does the deleting
    assert ports["queue"].ports == ("store",)
    users_of_accounts = {route for route, bound in ports.items() if "accounts" in bound.ports}
    assert users_of_accounts == {"link", "check-auth", "unlink", "auth.check", "forget.confirm"}


def test_a_handler_naming_a_port_the_bootstrap_does_not_provide_fails_at_registration() -> None:
    def wants_a_vault(ctx: CommandContext, store: Store, vault: object) -> Reply:
        raise AssertionError("never called")

    with pytest.raises(UnknownPortError, match=r"wants_a_vault asks for `vault`.*provides: accounts, .*store"):
        Command("vaulted", "Needs a vault", wants_a_vault)


@pytest.mark.parametrize(
    ("signature", "problem"),
    [
        ("def h(context, store): ...", "must take `ctx`"),
        ("def h(ctx, *ports): ...", "is not a port"),
        ("def h(ctx, **ports): ...", "is not a port"),
        ("def h(ctx, store=None): ...", "must not have a default"),
    ],
)
def test_a_handler_signature_that_hides_what_it_uses_is_refused(signature: str, problem: str) -> None:
    namespace: dict[str, Any] = {}
    exec(signature, namespace)  # a throwaway handler with exactly this signature

    with pytest.raises(UnknownPortError, match=problem):
        bind(namespace["h"])


def _services(tmp_path: Path, signer: Signer, jobs: list[dict[str, Any]]) -> Services:
    settings = make_settings(
        tmp_path, signer, discord_bot_token="", discord_bot_token_parameter=SECRET_PARAMETER, link_key_parameter="/x"
    )
    return bootstrap(settings, dispatcher=InlineDispatcher(jobs.append), in_lambda=False)


def test_a_command_builds_only_the_ports_it_names_and_reads_no_secret(tmp_path: Path) -> None:
    # GIVEN the api, with secrets that would have to be read from SSM
    signer = Signer()
    jobs: list[dict[str, Any]] = []
    services = _services(tmp_path, signer, jobs)

    with app_services.override(services), Client(app) as client:
        # WHEN /queue (it names the store) and /forget-me (it names nothing) are answered
        assert post_checked(client, signer, command("queue")).status_code == 200
        assert post_checked(client, signer, command("forget-me")).status_code == 200
        # THEN only the store was built (the dedupe record needs it too), and no secret was read
        assert services.built_ports() == {"store"}
        assert not services.secrets_loaded and not services.accounts_built

        # WHEN /my-playlists (it names the dispatcher) is answered
        response = post_checked(client, signer, command("my-playlists"))

    # THEN its job went to the dispatcher; neither the accounts, Discord nor the launcher was built
    assert response.json_body["type"] == 5
    assert [job["kind"] for job in jobs] == ["my_playlists"]
    assert services.built_ports() == {"store", "dispatcher"}
    assert not services.secrets_loaded


def test_no_module_of_chalicelib_looks_its_services_up_but_the_bootstrap_that_defines_the_holder() -> None:
    lookups = re.compile(r"\bapp_services\b")
    offenders = [
        path.relative_to(CHALICELIB).as_posix()
        for path in sorted(CHALICELIB.rglob("*.py"))
        if path.name != "bootstrap.py" and lookups.search(path.read_text(encoding="utf-8"))
    ]

    assert len(list(CHALICELIB.rglob("*.py"))) > 15  # the walk found the package
    assert offenders == []  # app.py's routes hand the services over; handlers name their ports
