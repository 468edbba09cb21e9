"""Helpers shared by the Python policy guests: tenant parameters and local time."""

from wit_world.imports import types


def param_int(params: list[types.Param], name: str, default: int) -> int:
    """The integer parameter `name`, else `default` (like the Rust SDK's `Params::int`)."""
    for p in params:
        if p.name == name and isinstance(p.value, types.ParamValue_Int):
            return p.value.value
    return default


def param_text(params: list[types.Param], name: str, default: str) -> str:
    """The text parameter `name`, else `default`."""
    for p in params:
        if p.name == name and isinstance(p.value, types.ParamValue_Text):
            return p.value.value
    return default


def within(t: types.LocalTime, start: int, end: int) -> bool:
    """True when `t` falls in [start, end) minutes of the day; the range may wrap midnight."""
    m = t.minute_of_day
    return start <= m < end if start <= end else m >= start or m < end
