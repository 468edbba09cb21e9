"""{{name}}: a pix-host {{kind}} policy, built against pix:policy@0.2.0 (wit/policy.wit, where
every field is documented) with componentize-py.

How the WIT looks in Python: records are dataclasses with snake_case fields; enums are Enum
classes (``Operation.CASH_OUT``); a variant case is its own class (``CashinDecision_Deny(value)``);
``option<T>`` is ``T`` or ``None``. Money (s64 centavos) is an ``int``. Raising
``Err(PolicyError(code, message))`` means "I cannot decide this": the host applies the kind's
fail-safe. Every call runs in a fresh instance with no filesystem, network, clock, randomness or
stdout (``print`` traps): everything a rule needs is in its input.
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports.types import *  # noqa: F403 (the contract's types)


def param_int(params: list[Param], name: str, default: int) -> int:
    """The integer parameter ``name``, else ``default``."""
    for p in params:
        if p.name == name and isinstance(p.value, ParamValue_Int):
            return p.value.value
    return default


def param_text(params: list[Param], name: str, default: str) -> str:
    """The text parameter ``name``, else ``default``."""
    for p in params:
        if p.name == name and isinstance(p.value, ParamValue_Text):
            return p.value.value
    return default
{{rules}}
