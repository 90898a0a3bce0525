import os
import stat

import pytest

from nmt_keras.atomic import atomic_write, new_file_mode


def test_the_file_appears_whole_with_the_mode_of_a_new_file(tmp_path):
    path = tmp_path / "sub" / "file.txt"
    old_umask = os.umask(0o022)
    try:
        with atomic_write(path, "w", encoding="utf-8") as file:
            file.write("ü")
            assert not path.exists()
    finally:
        os.umask(old_umask)
    assert path.read_text(encoding="utf-8") == "ü"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert os.listdir(path.parent) == ["file.txt"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "file.bin"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_write(path) as file:
        file.write(b"half")
        raise RuntimeError("interrupted")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["file.bin"]


def test_new_file_mode_follows_the_umask():
    old_umask = os.umask(0o027)
    try:
        assert new_file_mode() == 0o640
    finally:
        os.umask(old_umask)
