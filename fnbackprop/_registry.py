"""Name lookup shared by the activation and cost registries."""

from collections.abc import Mapping

from .errors import FnbackpropError


def lookup(registry: Mapping[str, object], kind: str, name: object, cls: type):
    """`registry[name]`, with an instance of `cls` passed through and a clear error otherwise.

    Names are matched case-insensitively, with '-' read as '_' ("leaky-relu" is "leaky_relu").
    """
    if isinstance(name, cls):
        return name
    valid = ", ".join(registry)
    if not isinstance(name, str):
        raise FnbackpropError(
            f"a {kind} must be a name or a {cls.__name__}, not {type(name).__name__}; "
            f"valid names: {valid}"
        )
    key = name.strip().lower().replace("-", "_")
    if key not in registry:
        raise FnbackpropError(f"unknown {kind} {name!r}; valid names: {valid}")
    return registry[key]
