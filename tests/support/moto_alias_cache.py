"""moto's response serializer, with each member's candidate attribute names worked out once.

moto (5.2.5) serializes a response by walking the operation's botocore output shape. For every
member of every structure it asks six alias providers, each a new object, under which names the
Python value may hold that member, and adds each name's snake_case form. DynamoDB's AttributeValue
has ten members, so one item of twenty attributes asks hundreds of such questions: in the moto
DynamoDB tests that was more CPU than everything else the request did together.

The answer depends only on the value's class, the member's name, its shape and that shape's parent
structure, so it is remembered for those (the entry holds both shapes, so their ids are not reused
while it lives). A value with a ``Meta`` (moto's per-class explicit aliases) is asked as before.
The candidate names, their order, and so every serialized body, are what moto computes.
"""

from __future__ import annotations

import functools
from typing import Any

from moto.core import serialize

_Key = tuple[type, str, int, int]
_KNOWN: dict[_Key, tuple[list[str], object, object]] = {}
COMPUTED = serialize.XFormedAttributePicker.get_possible_keys  # moto's own, asked on every miss


@functools.cache  # once per process
def install() -> None:
    picker = serialize.XFormedAttributePicker

    def get_possible_keys(self: Any, context: serialize.AttributePickerContext) -> Any:
        obj = context.obj
        if type(self) is not picker or self.alias_providers is not serialize.DEFAULT_ALIAS_PROVIDERS \
                or hasattr(obj, "Meta"):  # fmt: skip
            return COMPUTED(self, context)
        shape = context.shape
        parent = getattr(shape, "parent", None)
        key = (type(obj), context.key, id(shape), id(parent))
        known = _KNOWN.get(key)
        if known is None or known[1] is not shape or known[2] is not parent:
            known = (list(COMPUTED(self, context)), shape, parent)
            _KNOWN[key] = known
        return known[0]

    picker.get_possible_keys = get_possible_keys  # type: ignore[method-assign]
