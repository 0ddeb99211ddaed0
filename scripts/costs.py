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

    @property
    def total(self) -> float:
        return self.compute + self.ipv4


class Costs:
    def __init__(self, prices: dict[str, Any]) -> None:
        self.p = prices
        self.a = prices["assumptions"]
        self.hours = float(prices["hours_per_month"])

    # -- voice tasks ---------------------------------------------------------------------------
    def task_hour(self, vcpu_price: float, gb_price: float, discount: float = 0.0) -> float:
        f = self.p["fargate"]
        return (f["task_vcpu"] * vcpu_price + f["task_gb"] * gb_price) * (1 - discount)

    def listening_hours(self) -> list[Hourly]:
        f, ip = self.p["fargate"], self.p["public_ipv4_hour"]
        return [
            Hourly("x86 on-demand", self.task_hour(f["x86_vcpu_hour"], f["x86_gb_hour"]), ip),
            Hourly("ARM (Graviton) on-demand", self.task_hour(f["arm_vcpu_hour"], f["arm_gb_hour"]), ip),
            Hourly(
                f"x86 Spot (best case, {f['spot_discount_up_to']:.0%} off)",
                self.task_hour(f["x86_vcpu_hour"], f["x86_gb_hour"], f["spot_discount_up_to"]),
                ip,
            ),
        ]

    # -- fixed monthly -------------------------------------------------------------------------
    def kms_key_month(self, rotations_done: int) -> float:
        k = self.p["kms"]
        return k["key_month"] + k["rotation_extra_month_each"] * min(rotations_done, k["rotations_that_add_cost"])

    def fixed_items(self, rotations_done: int) -> list[tuple[str, float]]:
        a = self.a
        return [
            (
                f"KMS tokens key ({rotations_done} rotation{'s' if rotations_done != 1 else ''} so far)",
                self.kms_key_month(rotations_done),
            ),
            (f"{a['alarms']} CloudWatch alarms", a["alarms"] * self.p["cloudwatch"]["alarm_month"]),
            (
                "operator source-credentials secret (Secrets Manager)",
                a["bot_level_secrets_manager_secrets"] * self.p["secrets_manager"]["secret_month"],
            ),
            (f"voice image in ECR ({a['voice_image_gb']} GB)", a["voice_image_gb"] * self.p["ecr"]["gb_month"]),
            ("bot token, OAuth client secrets and the link key (SSM standard SecureString)", 0.0),
            ("Lambda, API Gateway, DynamoDB on-demand, VPC, ECS cluster while idle", 0.0),
        ]

    def idle(self, rotations_done: int) -> float:
        return sum(value for _, value in self.fixed_items(rotations_done))

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
    add(f"List prices, {prices['region']}, USD; a month is {prices['hours_per_month']} hours. Free tiers are")
    add("left out (they only lower the figures), except KMS's 20,000 free requests a month.")
    add("")
    add("## Idle: nobody listening")
    add("")
    add("No compute runs: no voice task, and Lambda, API Gateway and DynamoDB on-demand bill per request.")
    add("What remains is billed by the month:")
    add("")
    add("| item | first year | second year | from the third year |")
    add("|---|---|---|---|")
    for (label, year1), (_, year2), (_, year3) in zip(
        c.fixed_items(0), c.fixed_items(1), c.fixed_items(2), strict=True
    ):
        shown = label.split(" (")[0] if label.startswith("KMS") else label
        add(f"| {shown} | {money(year1)} | {money(year2)} | {money(year3)} |")
    add(f"| **total** | **{money(c.idle(0))}** | **{money(c.idle(1))}** | **{money(c.idle(2))}** |")
    add("")
    add(
        f"KMS rotation: the key costs {money(prices['kms']['key_month'])} a month and each of its first "
        f"{prices['kms']['rotations_that_add_cost']} automatic rotations adds "
        f"{money(prices['kms']['rotation_extra_month_each'])} "
        "a month (older key material is kept to decrypt old data). With the default yearly rotation"
    )
    add(
        f"(`TokenKeyRotationDays` = 365) the idle total reaches {money(c.idle(2))} in the third year; "
        "2560 days (the maximum) keeps it at the first-year figure for seven years. The design target is a "
        f"fixed cost of at most $3 a month: met in the first year ({money(c.idle(0))}), not from the third "
        f"({money(c.idle(2))}) unless the rotation period is lengthened."
    )
    add("")
    add("## A listening hour")
    add("")
    add(
        f"One voice task per listening guild, {f['task_vcpu']} vCPU / {f['task_gb']} GB (the default), plus the "
        f"task's public IPv4 address ({money(prices['public_ipv4_hour'])} an hour):"
    )
    add("")
    add("| capacity (`VoiceCapacity`) | Fargate | public IPv4 | per listening hour | IPv4 adds |")
    add("|---|---|---|---|---|")
    for h in hourly:
        add(f"| {h.name} | {money(h.compute)} | {money(h.ipv4)} | **{money(h.total)}** | +{h.ipv4 / h.compute:.0%} |")
    add("")
    add("Spot prices move; the Spot row is the best case. The launcher falls back to on-demand when Spot")
    add("has no capacity, and ARM has no Spot. Lambda invocations per command cost fractions of a cent.")
    add("")
    add("## The token vault: Secrets Manager or KMS")
    add("")
    add(
        f"Assuming each linked user's tokens are read {a['token_reads_per_user_month']} and refreshed "
        f"{a['token_writes_per_user_month']} times a month. The KMS vault's key is already in the idle cost; "
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
