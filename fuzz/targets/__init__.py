"""The fuzz targets, one module per part of the API; importing this package registers them."""

from . import (  # noqa: F401
    selftest,
)
