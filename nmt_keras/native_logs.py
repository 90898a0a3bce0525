"""TensorFlow's native start-up chatter, kept out of a command's terminal.

TensorFlow's C++ runtime writes to file descriptor 2 directly, and some of it ignores
`TF_CPP_MIN_LOG_LEVEL`: lines logged before absl's logging is initialised (`I0000 ...
cudart_stub.cc:31] Could not find cuda drivers on your machine`) and the GPU probe's
error on a machine without one (`E0000 ... cuda_platform.cc:52] failed call to cuInit`),
which reads as a failure although nothing failed. `filter_native_logs` runs a command with
its stderr passed through a filter that drops TensorFlow's native INFO and WARNING lines
and the GPU probe's errors; every other line, real native errors and Python's own output
included, goes through unchanged.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Iterator

#: A native log line: severity letter, MMDD, time, thread id, `file:line]`.
_NATIVE_LINE = re.compile(rb"^([IWEF])\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ ([\w.]+):\d+\] ")
#: The note absl prints once before its logging is initialised.
_ABSL_NOTE = b"WARNING: All log messages before absl::InitializeLog() is called"
#: Source files whose errors only report the absence of a GPU.
_GPU_PROBE_FILES = frozenset({b"cuda_platform.cc", b"cuda_executor.cc", b"cuda_diagnostics.cc"})


def is_native_chatter(line: bytes) -> bool:
    """Whether a stderr line is TensorFlow's native INFO or WARNING, or a GPU-probe error.

    Example:
        >>> from nmt_keras.native_logs import is_native_chatter
        >>> is_native_chatter(b"I0000 00:00:1796.5    8755 cudart_stub.cc:31] Could not find")
        True
        >>> is_native_chatter(b"E0000 00:00:1796.5    8755 op_kernel.cc:1830] OP_REQUIRES failed")
        False
        >>> is_native_chatter(b"nmt-keras: error: no such file")
        False
    """
    if line.startswith(_ABSL_NOTE):
        return True
    match = _NATIVE_LINE.match(line)
    if match is None:
        return False
    severity, source = match.groups()
    return severity in (b"I", b"W") or (severity == b"E" and source in _GPU_PROBE_FILES)


@contextlib.contextmanager
def filter_native_logs() -> Iterator[None]:
    """Drops `is_native_chatter` lines from everything written to file descriptor 2.

    Descriptor 2 is pointed at a pipe for the duration; a thread forwards the lines that
    pass to the original stderr as they arrive, and the rest when the block ends.
    """
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    forwarder = threading.Thread(target=_forward, args=(read_end, original), daemon=True)
    forwarder.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the forwarder sees its end
        forwarder.join()
        os.close(original)


def _forward(read_end: int, destination: int) -> None:
    """Copies the lines of `read_end` that are not native chatter to `destination`.

    A line ends at a newline or a carriage return (a progress bar redrawing itself), so
    both reach the terminal as soon as they are complete.
    """
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            lines = (pending + chunk).splitlines(keepends=True)
            pending = lines.pop() if not lines[-1].endswith((b"\n", b"\r")) else b""
            kept = b"".join(line for line in lines if not is_native_chatter(line))
            if kept:
                os.write(destination, kept)
        if pending and not is_native_chatter(pending):
            os.write(destination, pending)
