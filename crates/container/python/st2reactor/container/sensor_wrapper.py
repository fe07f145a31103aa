"""StackStorm's import path for ``SensorService``.

Some packs and their tests do ``from st2reactor.container.sensor_wrapper
import SensorService``; the implementation lives in ``sensor_service``.
The process entry point is the top-level ``sensor_wrapper.py`` script.
"""

from st2reactor.container.sensor_service import SensorService  # noqa: F401

__all__ = ["SensorService"]
