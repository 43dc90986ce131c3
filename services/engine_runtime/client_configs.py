"""Build live client configs from JSON, including ones msgspec cannot decode as a whole.

NautilusTrader decodes an ImportableConfig with msgspec, which refuses classes whose fields have
types it does not know (Interactive Brokers' data client config carries an ibapi enum). Such a
config is built field by field instead: nested config structs are decoded on their own, plain
values are passed as they are, and the rest keeps its default.
"""

from __future__ import annotations

import typing

import msgspec
from nautilus_trader.common.config import msgspec_decoding_hook, resolve_path


def build_client_config(path: str, values: dict):
    cls = resolve_path(path)
    try:
        return msgspec.convert(values, type=cls, dec_hook=msgspec_decoding_hook)
    except TypeError as e:
        if "is not supported" not in str(e):
            raise
    hints = typing.get_type_hints(cls)
    unknown = set(values) - set(hints)
    if unknown:
        raise ValueError(f"{cls.__name__} has no field(s) {', '.join(sorted(unknown))}")
    kwargs = {}
    for name, value in values.items():
        hint = hints[name]
        if isinstance(hint, type) and issubclass(hint, msgspec.Struct) and isinstance(value, dict):
            value = msgspec.convert(value, type=hint, dec_hook=msgspec_decoding_hook)
        kwargs[name] = value
    return cls(**kwargs)
