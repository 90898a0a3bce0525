"""Export for TensorFlow Serving: versioned SavedModels, warmup records and an op audit.

Example:
    >>> from nmt_keras.export import export_run, assert_servable
    >>> from nmt_keras.run import load_run
    >>> version_dir = export_run(load_run("runs/demo"), "saved_models/demo")
    >>> print(assert_servable(version_dir).summary())
"""

from nmt_keras.export.audit import (
    AuditError,
    AuditReport,
    Violation,
    assert_servable,
    audit_saved_model,
)
from nmt_keras.export.exporter import export_run, export_translator
from nmt_keras.export.module import ServingModule
from nmt_keras.export.versions import (
    VersionError,
    list_versions,
    next_version,
    saved_model_dir,
)
from nmt_keras.serving.warmup import WarmupError, read_warmup_requests, warmup_path

__all__ = [
    "AuditError",
    "AuditReport",
    "ServingModule",
    "VersionError",
    "Violation",
    "WarmupError",
    "assert_servable",
    "audit_saved_model",
    "export_run",
    "export_translator",
    "list_versions",
    "next_version",
    "read_warmup_requests",
    "saved_model_dir",
    "warmup_path",
]
