import pytest

from nmt_keras.behaviour.run import BehaviourRunPaths
from nmt_keras.run import RunPaths
from nmt_keras.run_directory import RunDirectory, RunError


def test_both_applications_share_one_run_directory(tmp_path):
    for paths in (RunPaths(str(tmp_path)), BehaviourRunPaths(str(tmp_path))):
        assert isinstance(paths, RunDirectory)
        assert paths.config == str(tmp_path / "config.yaml")
    assert BehaviourRunPaths(str(tmp_path)).weights == str(tmp_path / "model.weights.h5")


def test_require_names_the_missing_directory_or_file(tmp_path):
    with pytest.raises(RunError, match="Run directory not found: .*/nowhere"):
        RunDirectory(str(tmp_path / "nowhere")).require()
    run = RunDirectory(str(tmp_path))
    (tmp_path / "config.yaml").write_text("name: x\n")
    run.require(run.config)
    with pytest.raises(RunError, match="missing .*/vocabulary.txt"):
        run.require(run.config, run.file("vocabulary.txt"))
