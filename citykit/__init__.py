"""citykit: a data academy in a box for city staff.

Notebooks import the kit; the command line (`citykit`) is a thin layer over it.
Nothing heavy is imported here: `citykit.load` is resolved on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "load":
        from citykit.data.load import load

        return load
    raise AttributeError(f"module 'citykit' has no attribute {name!r}")
