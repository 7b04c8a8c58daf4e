"""snakepit_trio.hardware: what this machine has, for sizing and placing worker pools.

``detect()`` reads the CPU (model, features, cores, this process's affinity and cgroup CPU
quota), NVIDIA devices (NVML through ``nvidia-ml-py``, else ``nvidia-smi``), AMD devices
(the KFD topology in sysfs) and whether Apple's MPS is likely. It never imports torch and
never initialises a device. ``open_pool(devices=..., threads_per_worker=...)`` uses it to
pin workers to devices and to size their thread pools.

Map: ``_model.py`` (the values), ``_parse.py`` (the formats, pure), ``_probe.py`` (reading
files, NVML, ``nvidia-smi``), ``_select.py`` (capabilities, choice, identity, pure),
``_plan.py`` (which slot gets which device, pure), ``_report.py`` (the CLI's text),
``_detect.py`` (the public functions).
"""

from __future__ import annotations

from .._shared._metadata import fixup_module_metadata
from ._detect import capabilities as capabilities
from ._detect import detect as detect
from ._detect import identity as identity
from ._detect import select_with_fallback as select_with_fallback
from ._model import CpuInfo as CpuInfo
from ._model import Device as Device
from ._model import HardwareInfo as HardwareInfo

__all__ = [
    "CpuInfo",
    "Device",
    "HardwareInfo",
    "capabilities",
    "detect",
    "identity",
    "select_with_fallback",
]

for _name in __all__:  # reprs and tracebacks read snakepit_trio.hardware.Device
    fixup_module_metadata(globals()[_name], __name__)
del _name
