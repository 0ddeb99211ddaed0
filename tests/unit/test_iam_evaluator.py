"""The IAM evaluator (tests/support/iam.py), table-tested on the cases AWS documents.

Sources of the cases: the IAM User Guide's "Condition operators" (a missing key makes a condition
false, a negated one true, except ...IfExists and Null), "Conditions with multiple context keys or
values" (AND across operators and keys, OR across values, NOR for negated operators; ForAllValues is
true for an empty or missing set, ForAnyValue false), and the DynamoDB Developer Guide's
fine-grained access control (``dynamodb:LeadingKeys`` holds every partition key a call touches).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.iam import Decision, Request, dynamodb_request, evaluate, resolve

TABLE = "arn:aws:dynamodb:eu-west-1:123456789012:table/state"
ACTIONS = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:Scan"]


def _allow(condition: dict[str, Any] | None = None, *, action: Any = ACTIONS, resource: Any = TABLE) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


GUILD_ONLY = {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["G#*", "S#breaker#*", "B#identify"]}}
ANY_GUILD = {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["G#*"]}}
GUILD_ONLY_PRESENT = {**GUILD_ONLY, "Null": {"dynamodb:LeadingKeys": "false"}}


@pytest.mark.parametrize(
    ("condition", "action", "keys", "expected"),
    [
        # the documented user-id case: ForAllValues:StringEquals on the caller's own key
        ({"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["U#42"]}}, "GetItem", ["U#42"], Decision.ALLOW),
        ({"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["U#42"]}}, "GetItem", ["U#7"], Decision.IMPLICIT_DENY),
        # StringLike wildcards: * any run, ? one character, case-sensitive, whole-string
        (GUILD_ONLY, "PutItem", ["G#1577531046939852808"], Decision.ALLOW),
        (GUILD_ONLY, "PutItem", ["S#breaker#youtube"], Decision.ALLOW),
        (GUILD_ONLY, "PutItem", ["B#identify"], Decision.ALLOW),
        (GUILD_ONLY, "PutItem", ["B#identifyX"], Decision.IMPLICIT_DENY),
        (GUILD_ONLY, "PutItem", ["g#1"], Decision.IMPLICIT_DENY),
        (GUILD_ONLY, "PutItem", ["U#1"], Decision.IMPLICIT_DENY),
        (GUILD_ONLY, "PutItem", ["O#state#abc"], Decision.IMPLICIT_DENY),
        (GUILD_ONLY, "PutItem", ["xG#1"], Decision.IMPLICIT_DENY),
        ({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["G#?"]}}, "GetItem", ["G#1"], Decision.ALLOW),
        ({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["G#?"]}}, "GetItem", ["G#12"], Decision.IMPLICIT_DENY),
        # a batch: every partition key must match under ForAllValues, one is enough under ForAnyValue
        (GUILD_ONLY, "BatchWriteItem", ["G#1", "G#2"], Decision.ALLOW),
        (GUILD_ONLY, "BatchWriteItem", ["G#1", "U#2"], Decision.IMPLICIT_DENY),
        (ANY_GUILD, "BatchWriteItem", ["G#1", "U#2"], Decision.ALLOW),
        # the pitfall: ForAllValues is TRUE for an empty set (a Scan carries no leading key)...
        (GUILD_ONLY, "Scan", [], Decision.ALLOW),
        # ...so a Null check must require the key; ForAnyValue is false for an empty set
        (GUILD_ONLY_PRESENT, "Scan", [], Decision.IMPLICIT_DENY),
        (GUILD_ONLY_PRESENT, "GetItem", ["G#1"], Decision.ALLOW),
        (ANY_GUILD, "Scan", [], Decision.IMPLICIT_DENY),
    ],
)
def test_leading_keys_cases(condition: dict[str, Any], action: str, keys: list[str], expected: Decision) -> None:
    assert evaluate([_allow(condition)], dynamodb_request(action, TABLE, keys)) is expected


@pytest.mark.parametrize(
    ("operator", "context", "expected"),
    [
        ("StringEquals", {}, False),  # a missing key: the values do not match
        ("StringNotEquals", {}, True),  # ...but a negated operator is then true
        ("StringLike", {}, False),
        ("StringNotLike", {}, True),
        ("StringEqualsIfExists", {}, True),  # IfExists: true when the key is missing
        ("StringEqualsIfExists", {"k": "no"}, False),
        ("StringEquals", {"k": "yes"}, True),
        ("StringNotEquals", {"k": "yes"}, False),
        ("StringEqualsIgnoreCase", {"k": "YES"}, True),
        ("StringEquals", {"k": "YES"}, False),
    ],
)
def test_missing_and_negated_keys(operator: str, context: dict[str, str], expected: bool) -> None:
    request = Request("s3:GetObject", "arn:aws:s3:::b/k", context)
    decision = evaluate([_allow({operator: {"k": "yes"}}, action="s3:GetObject", resource="*")], request)
    assert (decision is Decision.ALLOW) is expected


def test_values_are_or_keys_and_operators_are_and_and_negation_is_nor() -> None:
    statement = _allow({"StringEquals": {"a": ["1", "2"], "b": "x"}, "StringNotEquals": {"c": ["p", "q"]}},
                       action="s3:GetObject", resource="*")  # fmt: skip
    base = {"a": "2", "b": "x", "c": "r"}

    assert evaluate([statement], Request("s3:GetObject", "r", base)) is Decision.ALLOW
    assert evaluate([statement], Request("s3:GetObject", "r", {**base, "b": "y"})) is Decision.IMPLICIT_DENY
    assert evaluate([statement], Request("s3:GetObject", "r", {**base, "c": "q"})) is Decision.IMPLICIT_DENY
    assert evaluate([statement], Request("s3:GetObject", "r", {**base, "a": "3"})) is Decision.IMPLICIT_DENY


def test_null_checks_presence() -> None:
    must_have = _allow({"Null": {"kms:EncryptionContext:user_id": "false"}}, action="kms:Decrypt", resource="*")
    assert evaluate([must_have], Request("kms:Decrypt", "k", {"kms:EncryptionContext:user_id": "1"})) is Decision.ALLOW
    assert evaluate([must_have], Request("kms:Decrypt", "k", {})) is Decision.IMPLICIT_DENY


def test_explicit_deny_wins_and_not_action_excludes() -> None:
    allow_all_dynamodb = _allow(action="dynamodb:*", resource="*")
    deny_users = {"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*",
                  "Condition": {"ForAnyValue:StringLike": {"dynamodb:LeadingKeys": ["U#*"]}}}  # fmt: skip
    not_delete = {"Effect": "Allow", "NotAction": "dynamodb:Delete*", "Resource": TABLE}

    assert evaluate([allow_all_dynamodb, deny_users], dynamodb_request("GetItem", TABLE, ["U#1"])) is (
        Decision.EXPLICIT_DENY
    )
    assert evaluate([allow_all_dynamodb, deny_users], dynamodb_request("GetItem", TABLE, ["G#1"])) is Decision.ALLOW
    assert evaluate([not_delete], dynamodb_request("GetItem", TABLE, ["G#1"])) is Decision.ALLOW
    assert evaluate([not_delete], dynamodb_request("DeleteItem", TABLE, ["G#1"])) is Decision.IMPLICIT_DENY
    assert evaluate([], dynamodb_request("GetItem", TABLE, ["G#1"])) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_resources_case_sensitively() -> None:
    statement = _allow(action="DynamoDB:getitem", resource=TABLE)
    assert evaluate([statement], dynamodb_request("GetItem", TABLE, ["G#1"])) is Decision.ALLOW
    assert evaluate([statement], dynamodb_request("GetItem", TABLE.upper(), ["G#1"])) is Decision.IMPLICIT_DENY
    assert evaluate([statement], dynamodb_request("GetItem", TABLE, ["G#1"], index="active-index")) is (
        Decision.IMPLICIT_DENY
    )


# The voice task's state-table statement as it stood before issue 14 (infra/template.yaml at the
# release that issue was filed against): every item action on the whole table, no condition.
PREVIOUS_VOICE_STATEMENT: dict[str, Any] = {
    "Sid": "StateTable",
    "Effect": "Allow",
    "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
               "dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:ConditionCheckItem", "dynamodb:Query"],
    "Resource": [{"Fn::GetAtt": ["StateTable", "Arn"]}, {"Fn::Sub": "${StateTable.Arn}/index/*"}],
}  # fmt: skip


def test_the_previous_voice_policy_let_the_task_rewrite_account_links() -> None:
    resources = {"StateTable": {"Type": "AWS::DynamoDB::Table"}}
    statement = resolve(PREVIOUS_VOICE_STATEMENT, resources)
    table = resolve({"Fn::GetAtt": ["StateTable", "Arn"]}, resources)

    # re-point a pending Spotify state, add the pointer, copy a device record, write a user's prefs
    for action, key in [("PutItem", "O#state#0123abcd"), ("PutItem", "O#spotify#666"),
                        ("GetItem", "O#device#42"), ("PutItem", "O#device#666"), ("PutItem", "U#42")]:  # fmt: skip
        assert evaluate([statement], dynamodb_request(action, table, [key])) is Decision.ALLOW, (action, key)
