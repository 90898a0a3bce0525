"""TensorFlow's native start-up lines stay out of a command's stderr; real lines do not."""

import os
import subprocess
import sys

from nmt_keras.native_logs import filter_native_logs, is_native_chatter

CHATTER = [
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"I0000 00:00:1796700989.373173    8755 cudart_stub.cc:31] Could not find cuda drivers",
    b"W0000 00:00:1796700989.373173    8755 some_file.cc:12] something to know",
    b"E0000 00:00:1796700996.811204    8755 cuda_platform.cc:52] failed call to cuInit: INTERNAL",
]
KEPT = [
    b"E0000 00:00:1796700996.811204    8755 op_kernel.cc:1830] OP_REQUIRES failed",
    b"F0000 00:00:1796700996.811204    8755 check.cc:3] Check failed",
    b"nmt-keras: error: Run directory not found: runs/x",
    b"I0000 is how a user's own line might start",
]


def test_chatter_is_recognised_and_everything_else_kept():
    assert all(is_native_chatter(line) for line in CHATTER)
    assert not any(is_native_chatter(line) for line in KEPT)


def test_the_filter_passes_kept_lines_in_order_and_progress_redraws(capfd):
    with filter_native_logs():
        for line in CHATTER[:2] + KEPT[:1] + CHATTER[2:] + KEPT[1:]:
            os.write(2, line + b"\n")
        os.write(2, b"step 1\rstep 2\rno newline at the end")
    err = capfd.readouterr().err
    expected = b"\n".join(KEPT).decode() + "\nstep 1\rstep 2\rno newline at the end"
    assert err == expected


def test_a_command_that_loads_tensorflow_prints_only_its_own_line(tmp_path):
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    command = [sys.executable, "-m", "nmt_keras.cli", "translate", "--run", str(tmp_path / "x")]
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"nmt-keras: error: Run directory not found: {tmp_path}/x"
    ]
    verbose = subprocess.run(
        [*command[:3], "--verbose", *command[3:]], capture_output=True, text=True, env=environment
    )
    assert verbose.returncode == 2 and verbose.stderr.splitlines()[-1] == (
        f"nmt-keras: error: Run directory not found: {tmp_path}/x"
    )
