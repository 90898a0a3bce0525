"""What a benchmark ran on: platform, CPUs, load and library versions."""

from __future__ import annotations

import os
import platform


def machine_info() -> dict:
    """Platform, CPU model and count, load average and library versions."""
    import keras
    import tensorflow as tf

    cpu_model = platform.processor()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as file:
            for line in file:
                if line.startswith("model name"):
                    cpu_model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
    }
    try:
        import tensorflow_text

        info["tensorflow_text"] = tensorflow_text.__version__
    except ImportError:
        pass
    if hasattr(os, "sched_getaffinity"):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    if hasattr(os, "getloadavg"):
        info["loadavg_start"] = list(os.getloadavg())
    return info
