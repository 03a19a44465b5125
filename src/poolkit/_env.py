"""On/off settings read from the environment, all parsed alike."""

from __future__ import annotations

import os

_OFF = ("0", "false", "no", "off")


def env_flag(name: str, default: bool = True) -> bool:
    """The setting ``name``: off for 0, false, no or off (any case), else on; ``default`` if
    unset."""
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() not in _OFF
