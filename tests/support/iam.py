"""A small IAM policy evaluator for the statements of the packaged CloudFormation template.

moto accepts any call whatever the policy says, so it cannot tell a least-privilege policy from an
allow-everything one, nor from a deny-everything one. This module decides one request against a
role's statements the way AWS documents it, for the parts our template uses:

- an explicit Deny wins, then any Allow, else the request is implicitly denied;
- ``Action``/``NotAction`` match case-insensitively with ``*`` and ``?``; ``Resource``/``NotResource``
  match case-sensitively with the same wildcards;
- conditions: every operator in a block must hold (AND), every key under an operator must hold
  (AND), any one of a key's policy values may match (OR; NOR for the negated operators);
- a key missing from the request context makes a condition false, a negated one (``StringNotLike``…)
  true, except ``…IfExists`` (true when missing) and ``Null`` (tests the absence itself);
- ``ForAllValues:`` holds when every request value matches some policy value, which includes an empty
  or missing set; ``ForAnyValue:`` needs at least one request value to match.

Intrinsic functions (``Fn::Sub``, ``Fn::GetAtt``, ``Ref``) are resolved against a fixed stand-in
account, region and stage, so that the statements become the concrete strings AWS would see.
"""

from __future__ import annotations

import enum
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PARTITION = "aws"
REGION = "eu-west-1"
ACCOUNT = "123456789012"
STAGE = "dev"


class Decision(enum.Enum):
    ALLOW = "allow"
    EXPLICIT_DENY = "explicit deny"
    IMPLICIT_DENY = "implicit deny"


@dataclass(frozen=True)
class Request:
    """One API call: its action, the resource ARN and the condition keys AWS puts in its context.

    A multivalued key (``dynamodb:LeadingKeys`` of a batch) is a tuple; a key that is absent from the
    request is absent from ``context``.
    """

    action: str
    resource: str
    context: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)


# ------------------------------------------------------------------------------- intrinsics
def resolve(value: Any, resources: Mapping[str, Any], parameters: Mapping[str, str] | None = None) -> Any:
    """``value`` with every intrinsic replaced by the concrete string it stands for."""
    if isinstance(value, list):
        return [resolve(v, resources, parameters) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        return _ref(value["Ref"], resources, parameters or {})
    if set(value) == {"Fn::GetAtt"}:
        target = value["Fn::GetAtt"]
        name, attribute = target if isinstance(target, list) else target.split(".", 1)
        return _get_att(name, attribute, resources, parameters or {})
    if set(value) == {"Fn::If"}:  # the stack with the condition true (for the vault key: the KMS vault's grant)
        _condition, then, _otherwise = value["Fn::If"]
        return resolve(then, resources, parameters)
    if set(value) == {"Fn::Sub"}:
        template = value["Fn::Sub"]
        extra: Mapping[str, Any] = {}
        if isinstance(template, list):
            template, extra = template
        return _sub(template, resources, parameters or {}, extra)
    return {k: resolve(v, resources, parameters) for k, v in value.items()}


def _pseudo(name: str, parameters: Mapping[str, str]) -> str | None:
    return {
        "AWS::Partition": PARTITION,
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::StackName": f"timmybot-{STAGE}",
        "Stage": parameters.get("Stage", STAGE),
        **parameters,
    }.get(name)


def _physical_name(name: str, resource: Mapping[str, Any]) -> str:
    kind = resource.get("Type", "")
    if kind == "AWS::DynamoDB::Table":
        return f"timmybot-{STAGE}-{name}"
    return name


def _arn(name: str, resource: Mapping[str, Any]) -> str:
    kind = str(resource.get("Type", ""))
    physical = _physical_name(name, resource)
    prefix = f"arn:{PARTITION}"
    arns = {
        "AWS::DynamoDB::Table": f"{prefix}:dynamodb:{REGION}:{ACCOUNT}:table/{physical}",
        "AWS::KMS::Key": f"{prefix}:kms:{REGION}:{ACCOUNT}:key/{name}",
        "AWS::IAM::Role": f"{prefix}:iam::{ACCOUNT}:role/{name}",
        "AWS::ECS::Cluster": f"{prefix}:ecs:{REGION}:{ACCOUNT}:cluster/{name}",
        "AWS::Logs::LogGroup": f"{prefix}:logs:{REGION}:{ACCOUNT}:log-group:{name}:*",
        "AWS::ECR::Repository": f"{prefix}:ecr:{REGION}:{ACCOUNT}:repository/{name}",
        "AWS::SecretsManager::Secret": f"{prefix}:secretsmanager:{REGION}:{ACCOUNT}:secret:{name}-AbCdEf",
    }
    if kind not in arns:
        raise KeyError(f"no stand-in ARN for {name} ({kind})")
    return arns[kind]


def _ref(name: str, resources: Mapping[str, Any], parameters: Mapping[str, str]) -> str:
    pseudo = _pseudo(name, parameters)
    if pseudo is not None:
        return pseudo
    resource = resources[name]
    kind = resource.get("Type", "")
    if kind in ("AWS::SecretsManager::Secret", "AWS::IAM::ManagedPolicy"):
        return _arn(name, resource) if kind == "AWS::SecretsManager::Secret" else name
    return _physical_name(name, resource)


def _get_att(name: str, attribute: str, resources: Mapping[str, Any], parameters: Mapping[str, str]) -> str:
    if attribute == "Arn":
        return _arn(name, resources[name])
    raise KeyError(f"no stand-in for {name}.{attribute}")


def _sub(template: str, resources: Mapping[str, Any], parameters: Mapping[str, str], extra: Mapping[str, Any]) -> str:
    def one(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in extra:
            return str(resolve(extra[name], resources, parameters))
        if "." in name and not name.startswith("AWS::"):
            resource, attribute = name.split(".", 1)
            return _get_att(resource, attribute, resources, parameters)
        return _ref(name, resources, parameters)

    return re.sub(r"\$\{([^}!]+)\}", one, template)


def role_statements(template: Mapping[str, Any], role: str) -> list[dict[str, Any]]:
    """Every statement reaching ``role`` (inline and attached managed policies), intrinsics resolved."""
    resources = template["Resources"]
    properties = resources[role]["Properties"]
    documents = [p["PolicyDocument"] for p in properties.get("Policies", [])]
    for arn in properties.get("ManagedPolicyArns", []):
        if not (isinstance(arn, dict) and "Ref" in arn):
            raise ValueError(f"{role} attaches a policy that is not in the stack: {arn}")
        documents.append(resources[arn["Ref"]]["Properties"]["PolicyDocument"])
    statements: list[dict[str, Any]] = []
    for document in documents:
        found = document["Statement"]
        statements.extend(found if isinstance(found, list) else [found])
    resolved = resolve(statements, resources)
    assert isinstance(resolved, list)
    return resolved


# ------------------------------------------------------------------------------- evaluation
def evaluate(statements: Iterable[Mapping[str, Any]], request: Request) -> Decision:
    allowed = False
    for statement in statements:
        if not _applies(statement, request):
            continue
        if statement["Effect"] == "Deny":
            return Decision.EXPLICIT_DENY
        allowed = True
    return Decision.ALLOW if allowed else Decision.IMPLICIT_DENY


def allows(statements: Iterable[Mapping[str, Any]], request: Request) -> bool:
    return evaluate(statements, request) is Decision.ALLOW


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    if ignore_case:
        pattern, value = pattern.lower(), value.lower()
    # fnmatch's [] classes mean nothing to IAM: escape them, keep * and ?
    escaped = pattern.replace("[", "[[]")
    return fnmatch.fnmatchcase(value, escaped)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["NotAction"])):
        return False
    if "Resource" in statement:
        if not any(_glob(r, request.resource) for r in _as_list(statement["Resource"])):
            return False
    elif any(_glob(r, request.resource) for r in _as_list(statement["NotResource"])):
        return False
    return conditions_hold(statement.get("Condition", {}), request.context)


_BASE_OPERATORS: dict[str, tuple[Callable[[str, str], bool], bool]] = {
    "StringEquals": (lambda policy, value: policy == value, False),
    "StringNotEquals": (lambda policy, value: policy == value, True),
    "StringEqualsIgnoreCase": (lambda policy, value: policy.lower() == value.lower(), False),
    "StringNotEqualsIgnoreCase": (lambda policy, value: policy.lower() == value.lower(), True),
    "StringLike": (_glob, False),
    "StringNotLike": (_glob, True),
    "ArnEquals": (lambda policy, value: policy == value, False),
    "ArnNotEquals": (lambda policy, value: policy == value, True),
    "ArnLike": (_glob, False),
    "ArnNotLike": (_glob, True),
    "Bool": (lambda policy, value: policy.lower() == value.lower(), False),
}


def conditions_hold(block: Mapping[str, Mapping[str, Any]], context: Mapping[str, str | tuple[str, ...]]) -> bool:
    return all(
        _operator_holds(operator, key, [str(v) for v in _as_list(values)], context)
        for operator, keys in block.items()
        for key, values in keys.items()
    )


def _operator_holds(
    operator: str, key: str, policy_values: Sequence[str], context: Mapping[str, str | tuple[str, ...]]
) -> bool:
    present = key in context
    raw = context.get(key)
    request_values: tuple[str, ...] = () if raw is None else (raw,) if isinstance(raw, str) else tuple(raw)
    if operator == "Null":
        # "true": the key must be absent; "false": it must be present (an empty set counts as absent)
        wants_absent = policy_values[0].lower() == "true"
        return (not request_values) == wants_absent
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    if base not in _BASE_OPERATORS:
        raise ValueError(f"condition operator {operator} is not supported by this evaluator")
    match, negated = _BASE_OPERATORS[base]

    def one(value: str) -> bool:
        hit = any(match(policy, value) for policy in policy_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in request_values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in request_values)
    if qualifier:
        raise ValueError(f"unknown set qualifier in {operator}")
    if not present:
        return if_exists or negated
    return all(one(v) for v in request_values)


# ------------------------------------------------------------------------------- DynamoDB
def dynamodb_request(
    action: str, table_arn: str, partition_keys: Sequence[str], *, index: str | None = None
) -> Request:
    """A DynamoDB call as AWS evaluates it: the table (or index) ARN and ``dynamodb:LeadingKeys``,
    the partition key values the call touches (all of them, for a batch)."""
    resource = f"{table_arn}/index/{index}" if index else table_arn
    context: dict[str, str | tuple[str, ...]] = {}
    if partition_keys:
        context["dynamodb:LeadingKeys"] = tuple(dict.fromkeys(partition_keys))
    return Request(f"dynamodb:{action}", resource, context)


# ------------------------------------------------------------------------------- templates
def load_template(path: Path) -> dict[str, Any]:
    """A CloudFormation YAML template with its short-form tags (``!Sub``…) in their long form."""
    import yaml  # noqa: PLC0415

    class Loader(yaml.SafeLoader):
        pass

    def construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            assert isinstance(node, yaml.MappingNode)
            value = loader.construct_mapping(node, deep=True)
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}

    Loader.add_multi_constructor("!", construct)
    loaded = yaml.load(path.read_text(), Loader=Loader)  # a SafeLoader, plus the CFN tags
    assert isinstance(loaded, dict)
    return loaded


def key_kind(partition_key: str) -> str:
    """A partition key's record kind, ids dropped: ``G#123`` → ``G#``, ``T#local#x`` → ``T#local#``;
    keys that hold no id (``B#identify``, ``S#breaker#youtube``) are their own kind."""
    if partition_key.startswith("G#"):
        return "G#"
    if partition_key.startswith("T#"):
        source = partition_key.split("#")[1]
        return f"T#{source}#"
    return partition_key
