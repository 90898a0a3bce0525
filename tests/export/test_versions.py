import os

import pytest

from nmt_keras.export import list_versions, next_version, saved_model_dir
from nmt_keras.export.versions import STAGING_PREFIX, resolve_version, staged_version


def make_base(tmp_path, names=("1", "3", "notes", ".tmp-export-x")):
    base = tmp_path / "nmt"
    for name in names:
        (base / name).mkdir(parents=True)
    (base / "7").write_text("a file, not a version")
    return str(base)


def test_versions_are_integer_directories_only(tmp_path):
    base = make_base(tmp_path)
    assert list_versions(base) == [1, 3]
    assert next_version(base) == 4
    assert list_versions(str(tmp_path / "missing")) == []
    assert next_version(str(tmp_path / "missing")) == 1


def test_resolve_version(tmp_path):
    base = make_base(tmp_path)
    assert resolve_version(base, None) == 4
    assert resolve_version(base, 2) == 2
    with pytest.raises(ValueError, match=r"Version 3 already exists: .*nmt.3\b.*\(4\)"):
        resolve_version(base, 3)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="positive integer"):
            resolve_version(base, bad)


def test_staged_version_renames_into_place(tmp_path):
    base = str(tmp_path / "new" / "nmt")
    with staged_version(base, 5) as staging:
        name = os.path.basename(staging)
        assert name.startswith(STAGING_PREFIX) and not name.isdigit()
        assert os.path.dirname(staging) == base and list_versions(base) == []
        (tmp_path / staging / "saved_model.pb").write_bytes(b"x")
    assert os.listdir(base) == ["5"]
    assert os.path.isfile(os.path.join(base, "5", "saved_model.pb"))


def test_staged_version_leaves_nothing_on_failure(tmp_path):
    base = str(tmp_path / "nmt")
    with pytest.raises(RuntimeError, match="boom"):
        with staged_version(base, 1) as staging:
            os.makedirs(os.path.join(staging, "variables"))
            raise RuntimeError("boom")
    assert os.listdir(base) == []


def test_staged_version_refuses_a_version_that_appeared(tmp_path):
    base = str(tmp_path / "nmt")
    with pytest.raises(ValueError, match="created while exporting"):
        with staged_version(base, 1):
            os.makedirs(os.path.join(base, "1", "variables"))
    assert os.listdir(base) == ["1"]


def test_saved_model_dir_takes_a_version_or_the_base_path(tmp_path):
    base = make_base(tmp_path)
    (tmp_path / "nmt" / "3" / "saved_model.pb").write_bytes(b"")
    version = os.path.join(base, "3")
    assert saved_model_dir(version) == version
    assert saved_model_dir(base) == version
    with pytest.raises(FileNotFoundError, match="integer versions"):
        saved_model_dir(str(tmp_path))
