"""The deployable stack: `chalice package --merge-template infra/template.yaml`, checked statically.

GIVEN the Chalice app packaged with the infra template (exactly as scripts/deploy.py does it)
THEN cfn-lint finds no error, the tables equal what the store and the vault create, and the IAM
policies grant what docs/ARCHITECTURE.md says and nothing more: the voice task can never reach user
tokens, RunTask and PassRole are pinned to the voice task, and no secret sits in plain sight.

Packaging downloads the Lambda (manylinux, arm64) wheels for Chalice's automatic layer from the
package index the first time; later runs reuse Chalice's cache in chalice_app/.chalice/deployments.
"""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts import deploy, infra_tools
from tests.support import iam
from tests.support.packaged import packaged_once
from timmybot.config import Settings
from timmybot.store import keys, schema

ROOT = Path(__file__).resolve().parents[2]
TOKEN_TABLE_CONTRACT = ROOT / "infra" / "token-table.json"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = packaged_once(tmp_path_factory)
    assert (out / "sam.yaml").is_file()
    assert (out / deploy.CORE_LAYER_ZIP).is_file()
    return out


@pytest.fixture(scope="module")
def template(packaged: Path) -> dict[str, Any]:
    loaded = yaml.safe_load((packaged / "sam.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def _resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r.get("Type") == kind}


# ---------------------------------------------------------------------------------------------
# Packaging and lint
# ---------------------------------------------------------------------------------------------


def test_chalice_package_merges_every_override_into_a_real_resource(template: dict[str, Any]) -> None:
    untyped = [name for name, r in template["Resources"].items() if "Type" not in r]
    assert untyped == [], f"infra/template.yaml overrides resources Chalice did not generate: {untyped}"
    functions = _resources(template, "AWS::Serverless::Function")
    assert set(functions) == {"APIHandler", "Worker", "Reaper"}


def test_core_layer_zip_holds_the_package_under_python(packaged: Path) -> None:
    names = zipfile.ZipFile(packaged / deploy.CORE_LAYER_ZIP).namelist()
    assert "python/timmybot/__init__.py" in names
    assert "python/timmybot/store/schema.py" in names
    # the only compiled files are deploy.py's unchecked-hash .pyc (tests/infra/test_packaged_bytecode.py)
    assert not [n for n in names if n.endswith(".pyc") and not n.endswith(".cpython-311.pyc")]


def test_cfn_lint_finds_no_error_in_the_packaged_template(packaged: Path) -> None:
    cfn_lint = infra_tools.tool("cfn-lint")
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", str(packaged / "sam.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if re.search(r":E\d{4}:", line)]
    assert errors == [], result.stdout + result.stderr
    assert result.returncode in (0, 4, 8, 12), result.stdout + result.stderr  # warnings/info only


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------


def _key_schema(items: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k["AttributeName"], k["KeyType"]) for k in items]


def _attributes(items: list[dict[str, str]]) -> set[tuple[str, str]]:
    return {(a["AttributeName"], a["AttributeType"]) for a in items}


def _indexes(items: list[dict[str, Any]]) -> dict[str, tuple[list[tuple[str, str]], str]]:
    return {i["IndexName"]: (_key_schema(i["KeySchema"]), i["Projection"]["ProjectionType"]) for i in items}


def test_state_table_equals_the_store_schema(template: dict[str, Any]) -> None:
    table = template["Resources"]["StateTable"]["Properties"]
    wanted = schema.table_definition("ignored")
    assert _key_schema(table["KeySchema"]) == _key_schema(wanted["KeySchema"])
    assert _attributes(table["AttributeDefinitions"]) == _attributes(wanted["AttributeDefinitions"])
    assert _indexes(table.get("GlobalSecondaryIndexes", [])) == _indexes(wanted.get("GlobalSecondaryIndexes", []))
    assert table["BillingMode"] == wanted["BillingMode"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": schema.ttl_attribute(), "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def _vault_definition() -> dict[str, Any] | None:
    """The vault's own token table definition, once the vault code exposes one."""
    for module_name, attribute in (
        ("timmybot.accounts.vault.schema", "token_table_definition"),
        ("timmybot.accounts.vault", "token_table_definition"),
    ):
        try:
            module = __import__(module_name, fromlist=[attribute])
        except ImportError:
            continue
        function = getattr(module, attribute, None)
        if callable(function):
            result = function("ignored")
            assert isinstance(result, dict)
            return result
    return None


def test_token_table_equals_the_vault_contract(template: dict[str, Any]) -> None:
    table = template["Resources"]["TokenTable"]["Properties"]
    contract = json.loads(TOKEN_TABLE_CONTRACT.read_text())
    definitions = [contract]
    vault = _vault_definition()
    if vault is not None:
        definitions.append(vault)
    for wanted in definitions:
        assert _key_schema(table["KeySchema"]) == _key_schema(wanted["KeySchema"])
        assert _attributes(table["AttributeDefinitions"]) == _attributes(wanted["AttributeDefinitions"])
        assert _indexes(table.get("GlobalSecondaryIndexes", [])) == _indexes(wanted.get("GlobalSecondaryIndexes", []))
        assert table["BillingMode"] == wanted["BillingMode"]
    assert "TimeToLiveSpecification" not in table and contract["TimeToLiveAttribute"] is None
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_tokens_key_rotates(template: dict[str, Any]) -> None:
    key = template["Resources"]["TokensKey"]["Properties"]
    assert key["EnableKeyRotation"] is True


# ---------------------------------------------------------------------------------------------
# IAM
# ---------------------------------------------------------------------------------------------


def _statements_of_role(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """Every Allow/Deny statement reaching ``role``: inline policies and attached managed policies."""
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    for arn in properties.get("ManagedPolicyArns", []):
        assert isinstance(arn, dict) and "Ref" in arn, f"{role} attaches a policy not in the stack: {arn}"
        documents.append(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    statements: list[dict[str, Any]] = []
    for document in documents:
        found = document["Statement"]
        statements.extend(found if isinstance(found, list) else [found])
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _resource_text(resource: Any) -> str:
    """A resource as a comparable string: intrinsics become their JSON (names of what they point at)."""
    return resource if isinstance(resource, str) else json.dumps(resource, sort_keys=True)


def _grants(statements: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if s["Effect"] == "Allow" and any(fnmatch.fnmatchcase(action, a) for a in _as_list(s["Action"]))
    ]


def _function_role(template: dict[str, Any], function: str) -> str:
    role = template["Resources"][function]["Properties"]["Role"]
    assert isinstance(role, dict) and "Fn::GetAtt" in role, f"{function} does not use a role from the stack"
    name = role["Fn::GetAtt"][0]
    assert isinstance(name, str)
    return name


def _task_roles(template: dict[str, Any]) -> tuple[str, str]:
    task = template["Resources"]["VoiceTaskDefinition"]["Properties"]
    return task["TaskRoleArn"]["Fn::GetAtt"][0], task["ExecutionRoleArn"]["Fn::GetAtt"][0]


def test_each_function_has_its_own_role(template: dict[str, Any]) -> None:
    roles = {f: _function_role(template, f) for f in ("APIHandler", "Worker", "Reaper")}
    assert len(set(roles.values())) == 3, roles


def test_no_statement_anywhere_allows_every_action(template: dict[str, Any]) -> None:
    for role in _resources(template, "AWS::IAM::Role"):
        for statement in _statements_of_role(template, role):
            actions = _as_list(statement["Action"])
            assert "*" not in actions and not [a for a in actions if a.endswith(":*")], (role, statement)


USER_TOKEN_MARKERS = ("/timmybot/users/", "TokenTable", "TokensKey")


def test_voice_task_roles_cannot_reach_user_tokens(template: dict[str, Any]) -> None:
    for role in _task_roles(template):
        for statement in _statements_of_role(template, role):
            for resource in _as_list(statement["Resource"]):
                text = _resource_text(resource)
                assert not [m for m in USER_TOKEN_MARKERS if m in text], (role, statement)
                if text == "*":
                    # Wildcards only for actions that have no resource-level permissions, and never
                    # for anything that reads secrets, tables or keys.
                    for action in _as_list(statement["Action"]):
                        assert action in ("ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"), (role, action)
        secrets_actions = [
            s
            for s in _statements_of_role(template, role)
            for a in _as_list(s["Action"])
            if a.startswith(("secretsmanager:", "kms:", "dynamodb:", "ssm:"))
        ]
        for statement in secrets_actions:
            for resource in _as_list(statement["Resource"]):
                assert _resource_text(resource) != "*", (role, statement)


def test_task_role_reaches_the_state_table_and_the_operator_source_secret(template: dict[str, Any]) -> None:
    task_role, _ = _task_roles(template)
    statements = _statements_of_role(template, task_role)
    table = [_resource_text(r) for s in _grants(statements, "dynamodb:GetItem") for r in _as_list(s["Resource"])]
    assert table and all("StateTable" in r for r in table)
    secrets = [
        _resource_text(r) for s in _grants(statements, "secretsmanager:GetSecretValue") for r in _as_list(s["Resource"])
    ]
    assert secrets == [json.dumps({"Ref": "SourceCredentialsSecret"})]


@pytest.mark.parametrize("function", ["Worker", "Reaper"])
def test_run_task_and_pass_role_are_pinned_to_the_voice_task(template: dict[str, Any], function: str) -> None:
    statements = _statements_of_role(template, _function_role(template, function))
    run_task = _grants(statements, "ecs:RunTask")
    assert run_task, f"{function} cannot launch voice tasks"
    family = "task-definition/timmybot-${Stage}-voice:*"
    for statement in run_task:
        for resource in _as_list(statement["Resource"]):
            assert _resource_text(resource).endswith(family + '"}') or family in _resource_text(resource)
            assert "*" not in _resource_text(resource).replace(family, "")
        assert statement["Condition"] == {"ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["VoiceCluster", "Arn"]}}}
    family_in_template = template["Resources"]["VoiceTaskDefinition"]["Properties"]["Family"]
    assert family_in_template == {"Fn::Sub": "timmybot-${Stage}-voice"}

    pass_role = _grants(statements, "iam:PassRole")
    passed = sorted(_resource_text(r) for s in pass_role for r in _as_list(s["Resource"]))
    task_role, execution_role = _task_roles(template)
    assert passed == sorted(json.dumps({"Fn::GetAtt": [r, "Arn"]}) for r in (task_role, execution_role))
    for statement in pass_role:
        assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}


def test_vault_permissions_are_scoped_to_user_secrets_the_token_table_and_key(template: dict[str, Any]) -> None:
    for role in _resources(template, "AWS::IAM::Role"):
        statements = _statements_of_role(template, role)
        for statement in statements:
            actions = _as_list(statement["Action"])
            vault_secret_actions = [
                a for a in actions if a.startswith("secretsmanager:") and a != "secretsmanager:GetSecretValue"
            ]
            if vault_secret_actions:
                for resource in _as_list(statement["Resource"]):
                    assert _resource_text(resource).endswith(':secret:/timmybot/users/*"}'), (role, statement)
            if any(a.startswith("kms:") for a in actions):
                # the key exists only with VaultBackend=kms; otherwise the grant names a key that cannot exist
                assert _as_list(statement["Resource"]) == [
                    {
                        "Fn::If": [
                            "UseKmsVault",
                            {"Fn::GetAtt": ["TokensKey", "Arn"]},
                            {"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/no-kms-vault"},
                        ]
                    }
                ], (role, statement)
                assert statement["Condition"] == {"Null": {"kms:EncryptionContext:user_id": "false"}}
        for statement in _grants(statements, "secretsmanager:GetSecretValue"):
            for resource in _as_list(statement["Resource"]):
                text = _resource_text(resource)
                assert "/timmybot/users/*" in text or text == json.dumps({"Ref": "SourceCredentialsSecret"})
    reaper_role = _function_role(template, "Reaper")
    assert not _grants(_statements_of_role(template, reaper_role), "kms:Decrypt")


def test_lambda_trust_and_task_trust(template: dict[str, Any]) -> None:
    for function in ("APIHandler", "Worker", "Reaper"):
        trust = template["Resources"][_function_role(template, function)]["Properties"]["AssumeRolePolicyDocument"]
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "lambda.amazonaws.com"}]
    for role in _task_roles(template):
        trust = template["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "ecs-tasks.amazonaws.com"}]


# ---------------------------------------------------------------------------------------------
# Secrets stay secret
# ---------------------------------------------------------------------------------------------

SECRET_NAME = re.compile(r"token|secret|password|credential|cookie|private", re.IGNORECASE)
# A parameter *named* like a secret (ends with the noun): "BotToken", not "TokenKeyRotationDays".
SECRET_PARAMETER = re.compile(r"(token|secret|password|credentials?|cookies?|privatekey)$", re.IGNORECASE)
SECRET_VALUE = re.compile(
    r"[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"  # a Discord bot token
    r"|AKIA[0-9A-Z]{16}"  # an AWS access key id
    r"|-----BEGIN"  # a PEM key
    r"|^[A-Za-z0-9+/=_-]{32,}$"  # any long opaque string
)


def test_task_definition_gets_secrets_only_through_the_secrets_field(template: dict[str, Any]) -> None:
    (container,) = template["Resources"]["VoiceTaskDefinition"]["Properties"]["ContainerDefinitions"]
    assert container["Name"] == "voice"
    for variable in container["Environment"]:
        name, value = variable["Name"], variable["Value"]
        if SECRET_NAME.search(name):
            assert name.endswith(("_SECRET_ID", "_PARAMETER", "_ARN")), f"{name} looks like a secret in plain env"
        if isinstance(value, str):
            assert not SECRET_VALUE.search(value), name
    secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert "TIMMYBOT_DISCORD_BOT_TOKEN" in secrets
    assert "discord-bot-token" in json.dumps(secrets["TIMMYBOT_DISCORD_BOT_TOKEN"])
    assert not {"TIMMYBOT_GUILD_ID", "TIMMYBOT_LEASE_GENERATION"} & {v["Name"] for v in container["Environment"]}


def test_lambda_environments_hold_no_secret_values(template: dict[str, Any]) -> None:
    for name, function in _resources(template, "AWS::Serverless::Function").items():
        for variable, value in function["Properties"]["Environment"]["Variables"].items():
            assert variable != "TIMMYBOT_DISCORD_BOT_TOKEN", name
            if isinstance(value, str):
                assert not SECRET_VALUE.search(value), (name, variable)


def test_no_parameter_default_looks_secret(template: dict[str, Any]) -> None:
    for name, parameter in template["Parameters"].items():
        default = str(parameter.get("Default", ""))
        assert not SECRET_VALUE.search(default), name
        if SECRET_PARAMETER.search(name):
            assert default == "", f"parameter {name} sounds secret and has a default"
            assert parameter.get("NoEcho") is True, f"parameter {name} sounds secret: NoEcho it (better: SSM)"
        if parameter.get("NoEcho"):
            assert "Default" not in parameter, name


# ---------------------------------------------------------------------------------------------
# Shape: the network, the task, the functions
# ---------------------------------------------------------------------------------------------


def test_network_is_two_public_subnets_without_nat(template: dict[str, Any]) -> None:
    assert not _resources(template, "AWS::EC2::NatGateway")
    assert not _resources(template, "AWS::EC2::EIP")
    assert len(_resources(template, "AWS::EC2::Subnet")) == 2
    (group,) = _resources(template, "AWS::EC2::SecurityGroup").values()
    assert "SecurityGroupIngress" not in group["Properties"]
    assert not _resources(template, "AWS::EC2::SecurityGroupIngress")


def test_voice_task_definition_defaults(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["VoiceCpu"]["Default"] == "256" and parameters["VoiceMemory"]["Default"] == "512"
    assert set(parameters["VoiceCapacity"]["AllowedValues"]) == {"x86-spot", "x86", "arm64"}
    task = template["Resources"]["VoiceTaskDefinition"]["Properties"]
    assert task["RuntimePlatform"]["CpuArchitecture"] == {"Fn::If": ["IsArm", "ARM64", "X86_64"]}
    cluster = template["Resources"]["VoiceCluster"]["Properties"]
    assert set(cluster["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    (container,) = task["ContainerDefinitions"]
    environment = {v["Name"]: v["Value"] for v in container["Environment"]}
    assert environment["TIMMYBOT_STORE_BACKEND"] == "dynamodb"
    assert environment["TIMMYBOT_LOG_FORMAT"] == "json"
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_lambdas_know_how_to_launch_the_task(template: dict[str, Any]) -> None:
    for name in ("APIHandler", "Worker", "Reaper"):
        variables = template["Resources"][name]["Properties"]["Environment"]["Variables"]
        assert variables["TIMMYBOT_ECS_CONTAINER_NAME"] == "voice"
        assert variables["TIMMYBOT_LAUNCHER"] == "ecs"
        assert variables["TIMMYBOT_ECS_TASK_DEFINITION"] == {"Ref": "VoiceTaskDefinition"}


def test_function_timeouts_and_worker_retries(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["APIHandler"]["Properties"]["Timeout"] == 10
    assert resources["Worker"]["Properties"]["Timeout"] == 120
    assert resources["Reaper"]["Properties"]["Timeout"] == 60
    assert resources["Worker"]["Properties"]["EventInvokeConfig"] == {
        "MaximumRetryAttempts": 2,
        "MaximumEventAgeInSeconds": 900,
    }
    schedule = resources["Reaper"]["Properties"]["Events"]
    assert [e["Properties"]["Schedule"] for e in schedule.values()] in (["rate(1 minute)"], ["cron(* * * * ? *)"])


def test_every_log_group_has_a_retention(template: dict[str, Any]) -> None:
    groups = _resources(template, "AWS::Logs::LogGroup")
    assert len(groups) == 4
    for name, group in groups.items():
        assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name


def test_alarms_watch_the_documented_metrics(template: dict[str, Any]) -> None:
    alarms = _resources(template, "AWS::CloudWatch::Alarm").values()
    custom = {
        (a["Properties"]["MetricName"], json.dumps(a["Properties"].get("Dimensions", []), sort_keys=True))
        for a in alarms
        if a["Properties"]["Namespace"] == "TimmyBot"
    }
    assert custom == {
        ("IdentifyBudgetRemaining", "[]"),
        ("SourceFailures", json.dumps([{"Name": "reason", "Value": "bot_check"}], sort_keys=True)),
        ("VoiceCloseCode", json.dumps([{"Name": "code", "Value": "4017"}], sort_keys=True)),
    }
    lambda_errors = [a for a in alarms if a["Properties"]["Namespace"] == "AWS/Lambda"]
    assert len(lambda_errors) == 3
    architecture = (ROOT / "docs" / "ARCHITECTURE.md").read_text()
    for metric in ("IdentifyBudgetRemaining", "SourceFailures", "VoiceCloseCode", "reason=bot_check", "code=4017"):
        assert metric in architecture


WAKE_QUEUES = "arn:${AWS::Partition}:sqs:${AWS::Region}:${AWS::AccountId}:timmybot-${Stage}-wake-*"


def test_wake_hints_reach_only_the_stages_own_task_queues(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    task_role, execution_role = _task_roles(template)
    sqs_roles: dict[str, set[str]] = {}
    for role in _resources(template, "AWS::IAM::Role"):
        for statement in _statements_of_role(template, role):
            actions = [a for a in _as_list(statement["Action"]) if a.startswith("sqs:")]
            if actions:
                assert [_resource_text(r) for r in _as_list(statement["Resource"])] == [
                    json.dumps({"Fn::Sub": WAKE_QUEUES})
                ], (role, statement)
                sqs_roles.setdefault(role, set()).update(actions)

    # the task owns its queue (create, poll, delete); the api and the worker may only send to one
    assert sqs_roles == {
        task_role: {"sqs:CreateQueue", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:DeleteQueue"},
        _function_role(template, "APIHandler"): {"sqs:SendMessage"},
        _function_role(template, "Worker"): {"sqs:SendMessage"},
    }
    assert execution_role not in sqs_roles
    # and all three are told to use SQS hints with that prefix
    task_env = {e["Name"]: e["Value"] for e in
                resources["VoiceTaskDefinition"]["Properties"]["ContainerDefinitions"][0]["Environment"]}  # fmt: skip
    for function in ("APIHandler", "Worker"):
        env = resources[function]["Properties"]["Environment"]["Variables"]
        assert env["TIMMYBOT_WAKE_HINTS"] == "sqs"
        assert env["TIMMYBOT_WAKE_QUEUE_PREFIX"] == {"Fn::Sub": "timmybot-${Stage}-wake-"}
    assert task_env["TIMMYBOT_WAKE_HINTS"] == "sqs"
    assert task_env["TIMMYBOT_WAKE_QUEUE_PREFIX"] == {"Fn::Sub": "timmybot-${Stage}-wake-"}


# ---------------------------------------------------------------------------------------------
# Least privilege, decided by tests/support/iam.py (moto does not evaluate IAM at all)
# ---------------------------------------------------------------------------------------------
ITEM_ACTIONS = ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem", "BatchWriteItem",
                "ConditionCheckItem", "Query")  # fmt: skip
# Every record kind the registry (timmybot.store.keys) keeps away from the voice task: users, links
# in progress, interaction replies, rate windows..., each with a real-looking partition key.
PRIVATE_KEYS = {k.name: k.example_pk() for k in keys.RECORD_KINDS if keys.Role.VOICE not in k.roles}
VOICE_KEYS = {k.name: k.example_pk() for k in keys.kinds_for(keys.Role.VOICE)}


def _state_table_arn(template: dict[str, Any]) -> str:
    arn = iam.resolve({"Fn::GetAtt": ["StateTable", "Arn"]}, template["Resources"])
    assert isinstance(arn, str)
    return arn


def test_the_voice_task_role_is_denied_every_user_oauth_and_personal_record(template: dict[str, Any]) -> None:
    # GIVEN the task role's statements, intrinsics resolved
    task_role, execution_role = _task_roles(template)
    table = _state_table_arn(template)
    for role in (task_role, execution_role):
        statements = iam.role_statements(template, role)

        # THEN no item action reaches any private record kind, alone or inside a batch of guild keys
        for kind, key in PRIVATE_KEYS.items():
            for action in ITEM_ACTIONS:
                for batch in ([key], ["G#1", key]):
                    request = iam.dynamodb_request(action, table, batch)
                    assert not iam.allows(statements, request), f"{role} may {action} {kind} ({batch})"
        # AND no call without a leading key (a Scan, a PartiQL statement) reads the table at all
        for action in ("Scan", "ExecuteStatement", "BatchExecuteStatement", "Query"):
            assert not iam.allows(statements, iam.dynamodb_request(action, table, [])), (role, action)


def test_the_voice_task_role_reaches_exactly_the_kinds_the_registry_gives_it(template: dict[str, Any]) -> None:
    # GIVEN the task role's statements and the registry's voice-task kinds
    task_role, _ = _task_roles(template)
    statements = iam.role_statements(template, task_role)
    table = _state_table_arn(template)
    assert {"guild record", "identify budget"} <= set(VOICE_KEYS) and "play history" in PRIVATE_KEYS

    # THEN the policy's leading-key patterns are the registry's
    leading = [
        s["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
        for s in statements
        if "ForAllValues:StringLike" in s.get("Condition", {})
    ]
    assert leading == [keys.leading_key_patterns(keys.Role.VOICE)]
    # AND every kind the task touches is allowed by key, alone and in a batch with a guild key
    for kind, key in VOICE_KEYS.items():
        for action in ("GetItem", "PutItem", "BatchGetItem", "BatchWriteItem"):
            assert iam.allows(statements, iam.dynamodb_request(action, table, [key])), (action, kind)
            assert iam.allows(statements, iam.dynamodb_request(action, table, ["G#1", key])), (action, kind)
    # AND every call recorded from a real task is to one of those kinds
    rows = json.loads(VOICE_CALLS.read_text())["calls"]
    for row in rows:
        voice_kinds = keys.kinds_for(keys.Role.VOICE)
        assert any(row["example"].startswith(k.pk_prefix) for k in voice_kinds), row


def test_the_api_role_launches_nothing(template: dict[str, Any]) -> None:
    # The api answers interactions and the OAuth callback; launching is the worker's and the reaper's
    statements = iam.role_statements(template, _function_role(template, "APIHandler"))
    arn = f"arn:{iam.PARTITION}:ecs:{iam.REGION}:{iam.ACCOUNT}"
    cluster = {"ecs:cluster": iam.resolve({"Fn::GetAtt": ["VoiceCluster", "Arn"]}, template["Resources"])}
    passed = {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    for action, resource, context in [
        ("ecs:RunTask", f"{arn}:task-definition/timmybot-{iam.STAGE}-voice:7", cluster),
        ("ecs:StopTask", f"{arn}:task/VoiceCluster/0123456789abcdef", cluster),
        ("ecs:DescribeTasks", f"{arn}:task/VoiceCluster/0123456789abcdef", cluster),
        ("iam:PassRole", iam.resolve({"Fn::GetAtt": ["VoiceTaskRole", "Arn"]}, template["Resources"]), passed),
    ]:
        assert not iam.allows(statements, iam.Request(action, resource, context)), action


VOICE_CALLS = ROOT / "tests" / "support" / "golden" / "voice_task_store_calls.json"


def test_the_voice_task_role_allows_every_call_the_task_really_makes(template: dict[str, Any]) -> None:
    # GIVEN the calls recorded on the wire from a real voice task (tests/e2e/test_voice_task_store_calls.py)
    rows = json.loads(VOICE_CALLS.read_text())["calls"]
    assert {r["action"] for r in rows} >= {"GetItem", "PutItem", "BatchGetItem", "BatchWriteItem"}
    task_role, _ = _task_roles(template)
    statements = iam.role_statements(template, task_role)
    table = _state_table_arn(template)

    def request(action: str, key: str, index: str = "") -> iam.Request:
        return iam.dynamodb_request(action, table, [key], index=index or None)

    # THEN the role allows each of them...
    refused = [r for r in rows if not iam.allows(statements, request(r["action"], r["example"], r["index"]))]
    assert refused == [], refused
    # ...and the Spotify mirror cache the task keeps at play time (timmybot.sources.mirroring), on purpose:
    # docs/SECURITY.md says why a task may write T# at all
    for action in ("GetItem", "PutItem"):
        assert iam.allows(statements, request(action, "T#spotify#4uLU6hMCjMI75M1A2tKUQC")), action
    # AND this check can fail: a deny-everything role would refuse every recorded call
    deny_all = [{"Effect": "Deny", "Action": "*", "Resource": "*"}, *statements]
    assert not [r for r in rows if iam.allows(deny_all, request(r["action"], r["example"], r["index"]))]


def test_the_link_key_is_readable_by_the_api_alone(template: dict[str, Any]) -> None:
    parameter = f"arn:{iam.PARTITION}:ssm:{iam.REGION}:{iam.ACCOUNT}:parameter/timmybot/{iam.STAGE}/link-key"
    readers = {
        role
        for role in _resources(template, "AWS::IAM::Role")
        for action in ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath")
        if iam.allows(iam.role_statements(template, role), iam.Request(action, parameter))
    }
    assert readers == {_function_role(template, "APIHandler")}
    env = template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["TIMMYBOT_LINK_KEY_PARAMETER"] == {"Fn::Sub": "/timmybot/${Stage}/link-key"}
    for function in ("Worker", "Reaper"):
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert "TIMMYBOT_LINK_KEY_PARAMETER" not in variables, function


def test_securing_links_adds_no_idle_cost(template: dict[str, Any]) -> None:
    # One KMS key (the tokens key, $1/month, only with the KMS vault) and one Secrets Manager secret
    # (the operator's source credentials): the link key is a free SSM standard parameter that
    # deploy.py writes, not a key or a secret per link
    assert set(_resources(template, "AWS::KMS::Key")) == {"TokensKey"}
    assert set(_resources(template, "AWS::SecretsManager::Secret")) == {"SourceCredentialsSecret"}
    assert "link-key" in deploy.GENERATED_SECRETS and "link-key" not in deploy.SECRET_PARAMETERS


# ---------------------------------------------------------------------------------------------
# Issue 16: the alarm e-mail path and the OAuth settings
# ---------------------------------------------------------------------------------------------


def test_alarms_reach_the_topic_and_the_topic_reaches_the_email_subscription(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    # GIVEN the one alarm topic
    (topic_name,) = _resources(template, "AWS::SNS::Topic")
    topic = resources[topic_name]["Properties"]
    # THEN it is unencrypted (CloudWatch cannot publish to an alias/aws/sns topic), with the reason
    assert "KmsMasterKeyId" not in topic
    assert re.search(r"checkov:skip=CKV_AWS_26:.*CloudWatch alarms cannot publish", MERGE_TEMPLATE_TEXT())
    # AND every alarm notifies that topic
    alarms = _resources(template, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 6
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_name}], name
    # AND the topic has an e-mail subscription to the AlarmEmail parameter, made whenever it is set
    (subscription,) = _resources(template, "AWS::SNS::Subscription").values()
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": topic_name},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    condition = template["Conditions"][subscription["Condition"]]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    # AND deploy.py can pass the address
    assert "AlarmEmail=ops@example.org" in _plan(alarm_email="ops@example.org").overrides()
    # AND no topic policy stands in the way (CloudWatch in the same account publishes by default)
    assert not _resources(template, "AWS::SNS::TopicPolicy")


OAUTH_VARIABLES = {
    "TIMMYBOT_GOOGLE_CLIENT_ID": {"Ref": "GoogleClientId"},
    "TIMMYBOT_SPOTIFY_CLIENT_ID": {"Ref": "SpotifyClientId"},
    "TIMMYBOT_SPOTIFY_REDIRECT_URI": {"Ref": "SpotifyRedirectUri"},
    "TIMMYBOT_OAUTH_PARAMETER_PREFIX": {"Fn::Sub": "/timmybot/${Stage}/oauth/"},
}


def test_oauth_parameters_reach_the_api_and_the_worker_and_nothing_else(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    # GIVEN the OAuth parameters: ids and the redirect URI plain, the secrets only by SSM name
    for name in ("GoogleClientId", "SpotifyClientId", "SpotifyRedirectUri"):
        assert parameters[name]["Type"] == "String" and parameters[name]["Default"] == "", name
        assert "NoEcho" not in parameters[name], name
    assert not [name for name in parameters if re.search(r"secret$", name, re.IGNORECASE)]
    referenced = {"GoogleClientId", "SpotifyClientId", "SpotifyRedirectUri"}
    # THEN the api and the worker get exactly these variables
    resources = template["Resources"]
    for function in ("APIHandler", "Worker"):
        variables = resources[function]["Properties"]["Environment"]["Variables"]
        assert {k: variables[k] for k in OAUTH_VARIABLES} == OAUTH_VARIABLES, function
        assert not [k for k in variables if k.endswith("_CLIENT_SECRET")], function
    # AND no other resource refers to any of the parameters
    users: dict[str, set[str]] = {}
    for name, resource in resources.items():
        text = json.dumps(resource)
        for parameter in referenced:
            if f'"{parameter}"' in text or "${" + parameter + "}" in text:
                users.setdefault(parameter, set()).add(name)
    assert users == {
        "GoogleClientId": {"APIHandler", "Worker"},
        "SpotifyClientId": {"APIHandler", "Worker"},
        "SpotifyRedirectUri": {"APIHandler", "Worker"},
    }
    # AND the reaper and the voice task get none of them
    reaper = resources["Reaper"]["Properties"]["Environment"]["Variables"]
    assert not set(OAUTH_VARIABLES) & set(reaper)
    (container,) = resources["VoiceTaskDefinition"]["Properties"]["ContainerDefinitions"]
    names = {v["Name"] for v in container["Environment"]} | {s["Name"] for s in container.get("Secrets", [])}
    assert not set(OAUTH_VARIABLES) & names
    # AND the secrets behind the prefix are readable by the api and the worker, and by no other role
    secret = f"arn:aws:ssm:{iam.REGION}:{iam.ACCOUNT}:parameter/timmybot/dev/oauth/spotify-client-secret"
    request = iam.Request("ssm:GetParameter", secret)
    roles = _resources(template, "AWS::IAM::Role")
    readers = {r for r in roles if iam.allows(iam.role_statements(template, r), request)}
    assert readers == {"ApiRole", "WorkerRole"}
    # AND deploy.py passes the ids and the redirect URI as parameter overrides
    overrides = _plan(google_client_id="123-abc.apps.googleusercontent.com", spotify_client_id="ab12").overrides()
    assert "GoogleClientId=123-abc.apps.googleusercontent.com" in overrides
    assert "SpotifyClientId=ab12" in overrides


def MERGE_TEMPLATE_TEXT() -> str:
    return (ROOT / "infra" / "template.yaml").read_text()


def _plan(**overrides: Any) -> deploy.Plan:
    values: dict[str, Any] = {
        "stage": "dev",
        "region": "us-east-1",
        "capacity": "x86-spot",
        "image_tag": "abc123def456",
        "application_id": "1234567890123456789",
        "public_key": "a" * 64,
        "workdir": ROOT,
    }
    values.update(overrides)
    return deploy.Plan(**values)


def test_the_new_parameters_parse_as_settings_in_every_function(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    for function in ("APIHandler", "Worker", "Reaper"):
        variables = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert variables["TIMMYBOT_ALLOWLIST_EXTRA"] == {"Ref": "AllowedGuilds"}, function
        assert variables["TIMMYBOT_ALLOW_ALL_GUILDS"] == {"Ref": "AllowAllGuilds"}, function
        for values in ({}, {"AllowedGuilds": "123456789012345678,223456789012345678", "AllowAllGuilds": "true",
                            "SpotifyClientId": "ab12", "SpotifyRedirectUri": "https://x.example/api/oauth/spotify/callback",
                            "GoogleClientId": "1-a.apps.googleusercontent.com"}):  # fmt: skip
            env = {
                name: str(values.get(value["Ref"], parameters[value["Ref"]].get("Default", "")))
                for name, value in variables.items()
                if isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in parameters
            }
            settings = Settings.from_env(env)  # validates: a cold start with these values starts
            assert settings.allow_all_guilds is (values.get("AllowAllGuilds") == "true")
            assert len(settings.allowlist_extra) == (2 if values else 0)
