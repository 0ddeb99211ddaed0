#!/usr/bin/env python3
"""Compute every figure in docs/COSTS.md from the list prices in infra/prices.json.

    python scripts/costs.py            # print the document
    python scripts/costs.py --write    # regenerate docs/COSTS.md
    python scripts/costs.py --check    # exit 1 if docs/COSTS.md differs from what the prices give

The document is generated whole, so no figure in it is ever typed by hand. Stdlib only.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "infra" / "prices.json"
DOC = ROOT / "docs" / "COSTS.md"


def money(value: float) -> str:
    """Dollars with enough precision to be useful: $0.0173, $1.60, $4,000."""
    if value == 0:
        return "$0"
    if abs(value) < 0.1:
        return f"${value:.4f}"
    if abs(value) < 1000:
        return f"${value:,.2f}"
    return f"${value:,.0f}"


@dataclass(frozen=True)
class Hourly:
    name: str
    compute: float
    ipv4: float
    metered: float = 0.0  # data out, DynamoDB, SQS and log ingestion: the same on every capacity

    @property
    def total(self) -> float:
        return self.compute + self.ipv4 + self.metered


class Costs:
    def __init__(self, prices: dict[str, Any]) -> None:
        self.p = prices
        self.a = prices["assumptions"]
        self.hours = float(prices["hours_per_month"])

    # -- voice tasks ---------------------------------------------------------------------------
    def task_hour(self, vcpu_price: float, gb_price: float, discount: float = 0.0) -> float:
        f = self.p["fargate"]
        return (f["task_vcpu"] * vcpu_price + f["task_gb"] * gb_price) * (1 - discount)

    def metered_items(self) -> list[tuple[str, str, float]]:
        """Per listening hour, beside the task itself: (item, how it is counted, dollars)."""
        a, d, q = self.a, self.p["dynamodb"], self.p["sqs"]
        strong, eventual = self.reads_per_hour()
        read_units = (strong + eventual * d["eventually_consistent_read_units"]) * a["poll_read_units"]
        write_calls = a["measured_writes_per_hour"] + a["tracks_per_listening_hour"] * a["store_writes_per_track"]
        writes = write_calls * a["heartbeat_write_units"] + self.history_write_units_per_hour()
        wake_polls = 3600 / a["wake_long_poll_s"]
        log_gb = a["voice_log_kb_per_listening_hour"] / 1024 / 1024
        return [
            (
                "data out to Discord",
                f"{a['audio_gb_per_listening_hour']} GB at {money(self.p['data_out']['gb'])}/GB",
                a["audio_gb_per_listening_hour"] * self.p["data_out"]["gb"],
            ),
            (
                "DynamoDB reads (the task's guild-record poll, its heartbeat's read)",
                f"{eventual:,.0f} eventually consistent reads ({a['measured_eventual_reads_per_hour']:,} measured "
                f"mid-track, one every {a['playing_poll_s']:g} s, + {a['tracks_per_listening_hour']} tracks × "
                f"{self.near_end_extra_polls():g} more at one every {a['near_end_poll_s']:g} s in a track's last "
                f"{a['near_end_s']:g} s) at {d['eventually_consistent_read_units']:g} unit + {strong:,.0f} strongly "
                f"consistent of {a['poll_read_units']} unit ({a['measured_strong_reads_per_hour']:,} measured: "
                f"the heartbeat's; + {a['tracks_per_listening_hour']} tracks × {a['store_writes_per_track']} "
                "before each track write)",
                read_units / 1e6 * d["read_per_million"],
            ),
            (
                "DynamoDB writes (heartbeat, track changes and the guild history)",
                f"{a['measured_writes_per_hour']:,} measured (one per {a['heartbeat_s']} s heartbeat) + "
                f"{a['tracks_per_listening_hour']} tracks × {a['store_writes_per_track']} writes, "
                f"{a['heartbeat_write_units']} units each (a {a['measured_guild_record_bytes']:,}-byte record); "
                f"+ {a['tracks_per_listening_hour']} tracks × {a['history_writes_per_track']} guild-history write "
                f"of {a['history_write_units']} unit (one slot of the ring, an item of its own of at most "
                f"{a['history_slot_max_bytes']:,} bytes, put without a read)",
                writes / 1e6 * d["write_per_million"],
            ),
            (
                "SQS wake-hint long polls",
                f"{wake_polls:,.0f} receives ({a['wake_long_poll_s']} s each)",
                wake_polls / 1e6 * q["per_million"],
            ),
            (
                "CloudWatch Logs ingestion (the task's log)",
                f"~{a['voice_log_kb_per_listening_hour']} KB at {money(self.p['cloudwatch']['logs_ingest_gb'])}/GB",
                log_gb * self.p["cloudwatch"]["logs_ingest_gb"],
            ),
        ]

    def history_write_units_per_hour(self) -> float:
        """The guild history's write units: each track start puts one slot of the ring (no read)."""
        a = self.a
        return a["tracks_per_listening_hour"] * a["history_writes_per_track"] * a["history_write_units"]

    def near_end_extra_polls(self) -> float:
        """The polls a track's last ``near_end_s`` adds by polling every ``near_end_poll_s`` instead
        of every ``playing_poll_s`` (the measured window is mid-track)."""
        a = self.a
        return a["near_end_s"] / a["near_end_poll_s"] - a["near_end_s"] / a["playing_poll_s"]

    def reads_per_hour(self) -> tuple[float, float]:
        """(strongly consistent, eventually consistent) guild-record reads per listening hour."""
        a = self.a
        tracks = a["tracks_per_listening_hour"]
        strong = a["measured_strong_reads_per_hour"] + tracks * a["store_writes_per_track"]
        eventual = a["measured_eventual_reads_per_hour"] + tracks * self.near_end_extra_polls()
        return strong, eventual

    def metered_hour(self) -> float:
        return sum(value for _, _, value in self.metered_items())

    def listening_hours(self) -> list[Hourly]:
        f, ip, m = self.p["fargate"], self.p["public_ipv4_hour"], self.metered_hour()
        return [
            Hourly("x86 on-demand", self.task_hour(f["x86_vcpu_hour"], f["x86_gb_hour"]), ip, m),
            Hourly("ARM (Graviton) on-demand", self.task_hour(f["arm_vcpu_hour"], f["arm_gb_hour"]), ip, m),
            Hourly(
                f"x86 Spot (best case, {f['spot_discount_up_to']:.0%} off)",
                self.task_hour(f["x86_vcpu_hour"], f["x86_gb_hour"], f["spot_discount_up_to"]),
                ip,
                m,
            ),
        ]

    def metric_hour(self) -> float:
        """One custom metric (a metric × dimension-values combination) sent in one clock hour."""
        return self.p["cloudwatch"]["metric_month"] / self.hours

    def active_hour_metrics(self) -> float:
        return self.a["metrics_per_active_hour_count"] * self.metric_hour()

    def free_listening_hours(self) -> float:
        return self.p["data_out"]["free_gb_month"] / self.a["audio_gb_per_listening_hour"]

    # -- fixed monthly -------------------------------------------------------------------------
    def kms_key_month(self, rotations_done: int) -> float:
        k = self.p["kms"]
        return k["key_month"] + k["rotation_extra_month_each"] * min(rotations_done, k["rotations_that_add_cost"])

    def reaper_items(self) -> list[tuple[str, float]]:
        """The reaper runs every minute, listening or not: requests, duration, its reads and its log lines."""
        a, lam = self.a, self.p["lambda"]
        runs = a["reaper_per_minute"] * 60 * self.hours
        return [
            (f"reaper: {runs:,.0f} Lambda requests", runs / 1e6 * lam["per_million_requests"]),
            (
                f"reaper: {runs * a['reaper_ms'] / 1000 * a['reaper_memory_gb']:,.0f} GB-seconds "
                f"({a['reaper_ms']} ms at {a['reaper_memory_gb']:g} GB)",
                runs * a["reaper_ms"] / 1000 * a["reaper_memory_gb"] * lam["arm_gb_second"],
            ),
            (
                f"reaper: DynamoDB reads ({a['reaper_read_units']} unit a run)",
                runs * a["reaper_read_units"] / 1e6 * self.p["dynamodb"]["read_per_million"],
            ),
            (
                f"reaper: CloudWatch Logs ingestion (~{a['reaper_log_bytes']} bytes a run)",
                runs * a["reaper_log_bytes"] / 1024**3 * self.p["cloudwatch"]["logs_ingest_gb"],
            ),
        ]

    def fixed_items(self, rotations_done: int, *, kms_vault: bool = False) -> list[tuple[str, float]]:
        a = self.a
        key: list[tuple[str, float]] = (
            [
                (
                    f"KMS tokens key ({rotations_done} rotation{'s' if rotations_done != 1 else ''} so far)",
                    self.kms_key_month(rotations_done),
                )
            ]
            if kms_vault
            else []
        )
        return [
            *key,
            (f"{a['alarms']} CloudWatch alarms", a["alarms"] * self.p["cloudwatch"]["alarm_month"]),
            (
                "operator source-credentials secret (Secrets Manager)",
                a["bot_level_secrets_manager_secrets"] * self.p["secrets_manager"]["secret_month"],
            ),
            (f"voice image in ECR ({a['voice_image_gb']} GB)", a["voice_image_gb"] * self.p["ecr"]["gb_month"]),
            *self.reaper_items(),
            ("custom metrics (sent only while something happens)", 0.0),
            ("bot token, OAuth client secrets and the link key (SSM standard SecureString)", 0.0),
            ("API Gateway, the api and worker Lambdas, DynamoDB storage, VPC, ECS cluster while idle", 0.0),
        ]

    def idle(self, rotations_done: int, *, kms_vault: bool = False) -> float:
        return sum(value for _, value in self.fixed_items(rotations_done, kms_vault=kms_vault))

    # -- vaults --------------------------------------------------------------------------------
    def secrets_manager_vault(self, users: int) -> float:
        sm, a = self.p["secrets_manager"], self.a
        calls = users * (a["token_reads_per_user_month"] + a["token_writes_per_user_month"])
        return users * sm["secret_month"] + calls / 10_000 * sm["per_10k_calls"]

    def kms_vault(self, users: int) -> float:
        """The KMS vault's own cost: requests and table I/O (the key is paid for in the idle cost)."""
        k, d, a = self.p["kms"], self.p["dynamodb"], self.a
        reads, writes = users * a["token_reads_per_user_month"], users * a["token_writes_per_user_month"]
        kms_requests = reads + writes  # Decrypt per read, GenerateDataKey per write
        billable = max(0, kms_requests - k["free_requests_month"])
        return (
            billable / 10_000 * k["per_10k_requests"]
            + reads / 1e6 * d["read_per_million"]
            + (writes / 1e6 * d["write_per_million"])
        )

    # -- NAT trap ------------------------------------------------------------------------------
    def nat_month_idle(self) -> float:
        return self.a["nat_gateways"] * self.p["nat_gateway"]["hour"] * self.hours

    def nat_per_listening_hour(self) -> float:
        return self.a["audio_gb_per_listening_hour"] * self.p["nat_gateway"]["gb"]

    # -- identify budget -----------------------------------------------------------------------
    def sessions_per_day(self) -> float:
        d = self.p["discord"]
        return d["identifies_per_day"] * (1 - d["identify_reserve_fraction"]) / self.a["identifies_per_session"]

    def ceiling_month(self, hourly: Hourly) -> float:
        return self.sessions_per_day() * self.a["session_hours"] * self.a["days_per_month"] * hourly.total

    # -- seed ----------------------------------------------------------------------------------
    def seed_always_on(self) -> float:
        s, f = self.p["seed"], self.p["fargate"]
        hourly = s["task_vcpu"] * f["x86_vcpu_hour"] + s["task_gb"] * f["x86_gb_hour"] + self.p["public_ipv4_hour"]
        return hourly * self.hours


def render(prices: dict[str, Any]) -> str:
    c = Costs(prices)
    a, f = c.a, prices["fargate"]
    hourly = c.listening_hours()
    x86, _arm, spot = hourly
    lines: list[str] = []
    add = lines.append
    add("# Costs")
    add("")
    add("<!-- Generated by scripts/costs.py from infra/prices.json: edit those, then run")
    add("     `python scripts/costs.py --write`. A test fails when this file and the prices disagree. -->")
    add("")
    add(f"List prices, {prices['region']}, USD; a month is {prices['hours_per_month']} hours. Each price's")
    add("source is in the table at the end. Free tiers are stated beside each item but not subtracted")
    add("(they only lower the figures), except KMS's 20,000 free requests a month in the vault table.")
    add("")
    add("## Idle: nobody listening")
    add("")
    add("No voice task runs; API Gateway, the api and worker Lambdas and DynamoDB on-demand bill per request.")
    add("What remains, with the default vault (`VaultBackend` = secretsmanager):")
    add("")
    add("| item | first year | second year | from the third year |")
    add("|---|---|---|---|")
    for (label, year1), (_, year2), (_, year3) in zip(
        c.fixed_items(0), c.fixed_items(1), c.fixed_items(2), strict=True
    ):
        add(f"| {label} | {money(year1)} | {money(year2)} | {money(year3)} |")
    add(f"| **total** | **{money(c.idle(0))}** | **{money(c.idle(1))}** | **{money(c.idle(2))}** |")
    add("")
    cw, lam = prices["cloudwatch"], prices["lambda"]
    add(
        f"Free tiers, not subtracted: {cw['free_alarms']} alarms, {cw['free_metrics']} custom metrics and "
        f"{cw['free_logs_gb_month']} GB of logs a month (CloudWatch); {lam['free_requests_month']:,} requests and "
        f"{lam['free_gb_seconds_month']:,} GB-seconds a month (Lambda), which cover the reaper entirely; "
        "ECR's 500 MB for a new account's first year."
    )
    add("")
    add("**With the KMS vault** (`VaultBackend` = kms) the stack also has the tokens key:")
    add("")
    add("| KMS vault's key | first year | second year | from the third year |")
    add("|---|---|---|---|")
    add(
        f"| the key and its rotations | {money(c.kms_key_month(0))} | {money(c.kms_key_month(1))} | "
        f"{money(c.kms_key_month(2))} |"
    )
    add(
        f"| idle total with the KMS vault | {money(c.idle(0, kms_vault=True))} | "
        f"{money(c.idle(1, kms_vault=True))} | {money(c.idle(2, kms_vault=True))} |"
    )
    add("")
    add(
        f"The key costs {money(prices['kms']['key_month'])} a month and each of its first "
        f"{prices['kms']['rotations_that_add_cost']} automatic rotations adds "
        f"{money(prices['kms']['rotation_extra_month_each'])} a month (older key material is kept to decrypt "
        "old data); `TokenKeyRotationDays` = 2560 (the maximum) keeps it at the first-year figure for seven "
        "years. The key exists only with the KMS vault: its requests and table I/O are in the vault table below."
    )
    add("")
    add(
        f"Target: idle at most $2 a month in years 1-3 with the default vault: "
        f"{money(c.idle(0))} / {money(c.idle(1))} / {money(c.idle(2))}, "
        f"{'met' if max(c.idle(0), c.idle(1), c.idle(2)) <= 2 else 'NOT met'}."
    )
    add("")
    add("### Existing stacks: the key left behind")
    add("")
    add("Stacks deployed before the key became conditional had a tokens key whatever the vault. On the")
    add("next deploy with the Secrets Manager vault CloudFormation drops it from the stack but keeps it")
    add("(`DeletionPolicy: Retain`), and it is still billed. If the stack never ran with `VaultBackend` = kms,")
    add("nothing was encrypted with it: note the `TokensKeyArn` output before that deploy, then")
    add("`aws kms schedule-key-deletion --key-id <TokensKeyArn> --pending-window-in-days 7`. If it ever ran")
    add("with the KMS vault, keep the key as long as the token table holds items.")
    add("")
    add("## A listening hour")
    add("")
    add(
        f"One voice task per listening guild, {f['task_vcpu']} vCPU / {f['task_gb']} GB (the default), its "
        f"public IPv4 address ({money(prices['public_ipv4_hour'])} an hour), and what the task meters while "
        "it plays:"
    )
    add("")
    add("| metered item | counted as | per listening hour |")
    add("|---|---|---|")
    for label, basis, value in c.metered_items():
        add(f"| {label} | {basis} | {money(value)} |")
    add(f"| **metered, all capacities** | | **{money(c.metered_hour())}** |")
    add("")
    add(
        f"Data out: {prices['data_out']['free_gb_month']} GB a month are free, about "
        f"{c.free_listening_hours():,.0f} listening hours; the figures charge every hour at list price. "
        "DynamoDB on-demand has no free request tier. The poll's rate comes from the wake hints: a control "
        "wakes the task at once, so while playing it polls only every "
        f"{a['playing_poll_s']:g} s mid-track and every {a['near_end_poll_s']:g} s in a track's last "
        f"{a['near_end_s']:g} s (the next track opens a few seconds before the end), backs off to `poll_max_s` "
        "while nothing changes, and does not poll every 250 ms (which would be 14,400 strongly consistent "
        "reads an hour)."
    )
    add("")
    add("| capacity (`VoiceCapacity`) | Fargate | public IPv4 | metered | per listening hour | target |")
    add("|---|---|---|---|---|---|")
    targets = prices["targets"]
    for h, key in zip(hourly, ("x86", "arm", "spot"), strict=True):
        target = targets.get(f"listening_hour_{key}")
        shown = f"≤ {money(target)}: {'met' if h.total <= target else 'NOT met'} (${h.total:.5f})" if target else "-"
        add(
            f"| {h.name} | {money(h.compute)} | {money(h.ipv4)} | {money(h.metered)} | **{money(h.total)}** | {shown} |"
        )
    add("")
    add("Spot prices move; the Spot row is the best case. The launcher falls back to on-demand when Spot")
    add("has no capacity, and ARM has no Spot. Lambda invocations per command cost fractions of a cent.")
    arm_left = targets["listening_hour_arm"] - hourly[1].compute - hourly[1].ipv4 - c.metered_items()[0][2]
    add(
        "The DynamoDB lines are measured (`scripts/bench/store_rates.py`, which counts each read's consistency "
        "as sent; a track's guild-history write is counted at its largest slot's size, tests/infra/test_costs.py). "
        "Fargate, the IPv4 address and data out leave "
        f"{money(arm_left)} an hour on ARM for all the rest, so DynamoDB decides the targets. The levers taken:"
    )
    add("")
    add(
        "- the task does not rewrite its state when nothing a reader sees changed (after its own heartbeat "
        "it did, which doubled its writes), and a record changed only by that heartbeat is nothing to do;"
    )
    add(
        "- a timer tick reads eventually consistently (half a read unit); a tick a wake hint starts reads "
        "strongly, so controls stay instant. An eventually consistent read can be older than a version the "
        "task has seen or written: the task ignores any read older than the newest it knows, and reads "
        "strongly on the next tick;"
    )
    add(
        f"- the poll is every {a['playing_poll_s']:g} s mid-track and every {a['near_end_poll_s']:g} s only "
        "near warm-ahead's point and after a change;"
    )
    legacy_history = a["tracks_per_listening_hour"] * 25 / 1e6 * prices["dynamodb"]["write_per_million"]
    add(
        f"- the guild history (/history, /back) is a ring of 50 small items: a track start puts one slot of at "
        f"most {a['history_slot_max_bytes']:,} bytes ({a['history_write_units']} write unit, no read). It was "
        "one item holding the last 50 tracks, 10-25 KB, read strongly and rewritten whole at every track "
        f"(10-25 write units each, up to {money(legacy_history)} an hour in writes alone), which these figures "
        "did not count."
    )
    add("")
    add(
        "Not taken: a heartbeat item under 1 KB. The heartbeat renews the lease inside the guild record, and a "
        "write is billed on the whole item's size, so it needs an item of its own; with these two levers "
        "the targets are met without it."
    )
    add("")
    add("### Custom metrics")
    add("")
    add(
        f"Each metric × dimension-values combination is {money(prices['cloudwatch']['metric_month'])} a month, "
        f"prorated by the hour it is sent in ({money(c.metric_hour())} a metric-hour). No dimension has a "
        "high cardinality (no guild, user or channel id): the voice task's are `reason`, `code` and `source`, "
        "the api's `service` and `command`, the worker's `result`. A metric costs the same whether one guild "
        "or fifty sent it in that hour, so "
        "it is a cost of the active clock hour, shared by every guild listening in it, not of each listening "
        f"hour. A typical active hour sends {a['metrics_per_active_hour_count']}:"
    )
    add("")
    for item in a["metrics_per_active_hour"]:
        add(f"- {item}")
    add("")
    count, free = a["metrics_per_active_hour_count"], prices["cloudwatch"]["free_metrics"]
    month = prices["cloudwatch"]["metric_month"]
    covered = (
        "which covers this set"
        if count <= free
        else f"so {count - free} of this set are paid ({money((count - free) * month)} a month at most)"
    )
    add(
        f"That is {money(c.active_hour_metrics())} for the clock hour; a lone guild listening alone pays it "
        f"all ({money(hourly[1].total + c.active_hour_metrics())} an hour on ARM). Sent every hour of a month it "
        f"would be {money(count * month)}; the first {free} metrics a month are free, {covered}. Idle sends none."
    )
    add("")
    add("## The token vault: Secrets Manager or KMS")
    add("")
    add(
        f"Assuming each linked user's tokens are read {a['token_reads_per_user_month']} and refreshed "
        f"{a['token_writes_per_user_month']} times a month. The KMS vault's key is stated apart in the idle section; "
        "its own cost is requests (Decrypt per read, GenerateDataKey per write) and token-table I/O."
    )
    add("")
    add("| linked users | Secrets Manager vault (one secret per user) | KMS vault | ratio |")
    add("|---|---|---|---|")
    for users in a["linked_users"]:
        sm, kms = c.secrets_manager_vault(users), c.kms_vault(users)
        ratio = f"{sm / kms:,.0f}×" if kms > 0 else "KMS vault within the free tier"
        add(f"| {users:,} | {money(sm)} | {money(kms)} | {ratio} |")
    add("")
    add("## How the seed's estimate compares")
    add("")
    s = prices["seed"]
    add(
        f"The seed design budgeted {money(s['total_month_low'])}–{money(s['total_month_high'])} a month "
        f"({money(s['fargate_month_low'])}–{money(s['fargate_month_high'])} of it Fargate for a "
        f"{s['task_vcpu']} vCPU / {s['task_gb']} GB service scaling 0–5), quoted an always-on service at "
        f"about {money(s['always_on_month'])}, and {money(s['secrets_for_10000_users_month'])} a month for "
        "10,000 users' tokens in Secrets Manager."
    )
    add("")
    add(
        f"- Idle, this design costs {money(c.idle(0))} a month (first year) against the seed's floor of "
        f"{money(s['total_month_low'])}."
    )
    add(
        f"- At list prices the seed's always-on task would be {money(c.seed_always_on())} a month "
        "(x86, with its public IPv4)."
    )
    low, high = s["total_month_low"] - c.idle(0), s["total_month_high"] - c.idle(0)
    add(
        f"- The seed's {money(s['total_month_low'])}–{money(s['total_month_high'])} buys "
        f"{low / x86.total:,.0f}–{high / x86.total:,.0f} "
        "listening hours a month here on x86 on-demand, or "
        f"{low / spot.total:,.0f}–{high / spot.total:,.0f} "
        "on Spot."
    )
    add(
        f"- The seed's own listening hour, its always-on task divided by the hours of a month, was "
        f"{money(s['always_on_month'] / c.hours)}; this design's is {money(x86.total)} on x86, "
        f"{money(_arm.total)} on ARM and {money(spot.total)} on Spot, each counting data out, DynamoDB, SQS and "
        "logs, which the seed left out."
    )
    add(
        f"- 10,000 linked users: {money(c.secrets_manager_vault(10000))} a month with the Secrets Manager vault "
        f"(the seed's choice), {money(c.kms_vault(10000))} with the KMS vault."
    )
    add("")
    add("## The NAT trap it avoids")
    add("")
    add("Tasks in private subnets would need a NAT gateway to reach Discord and the media sources. The")
    add("stack has public subnets only, a public IP per task, and a free DynamoDB gateway endpoint.")
    add("")
    add(
        f"- A NAT gateway costs {money(prices['nat_gateway']['hour'])} an hour whether or not anyone listens: "
        f"{money(c.nat_month_idle())} a month, {c.nat_month_idle() / c.idle(0):,.0f}× this stack's whole idle cost "
        "(one per availability zone doubles it)."
    )
    add(
        f"- Its data charge adds {money(c.nat_per_listening_hour())} per listening hour "
        f"(~{a['audio_gb_per_listening_hour']} GB of audio in), while the public IPv4 that replaces it costs "
        f"{money(prices['public_ipv4_hour'])} an hour and only while a task runs."
    )
    add("")
    add("## The ceiling: Discord's identify budget")
    add("")
    d = prices["discord"]
    add(
        f"Every voice task start is one gateway IDENTIFY; Discord allows about {d['identifies_per_day']:,} a day "
        f"and launches stop at a {d['identify_reserve_fraction']:.0%} reserve. That caps the per-guild design at "
        f"**{c.sessions_per_day():,.0f} listening sessions a day** (at {a['identifies_per_session']} identify per "
        "session; resumes after a Spot interruption or a crash cost one more each)."
    )
    add("")
    add(
        f"At that ceiling, with {a['session_hours']}-hour sessions, the voice tasks cost "
        + ", ".join(f"{money(c.ceiling_month(h))} a month on {h.name.split(' (')[0]}" for h in hourly)
        + ". Beyond it, the planned evolution is a pool of multi-guild workers (one identify for many guilds)."
    )
    add("")
    add("## Where each price comes from")
    add("")
    add("| prices.json key | source |")
    add("|---|---|")
    for key, source in prices["sources"].items():
        add(f"| `{key}` | {source} |")
    add("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="regenerate docs/COSTS.md")
    mode.add_argument("--check", action="store_true", help="fail if docs/COSTS.md is stale")
    args = parser.parse_args(argv)
    text = render(json.loads(PRICES.read_text()))
    if args.write:
        DOC.write_text(text)
        print(f"wrote {DOC.relative_to(ROOT)}")
        return 0
    if args.check:
        current = DOC.read_text() if DOC.exists() else ""
        if current == text:
            print(f"{DOC.relative_to(ROOT)} agrees with {PRICES.relative_to(ROOT)}")
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(), "docs/COSTS.md", "computed", lineterm="")
        print("\n".join(diff))
        print("\ndocs/COSTS.md is stale: run `python scripts/costs.py --write`", file=sys.stderr)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
