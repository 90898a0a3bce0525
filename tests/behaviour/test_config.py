import pytest

from nmt_keras.behaviour.config import BehaviourConfig
from nmt_keras.config import ConfigError


def test_the_recipe_loads():
    config = BehaviourConfig.from_yaml("training/configs/retail.yaml")
    assert (config.model.family, config.model.repeat) == ("gru-luong", True)
    assert config.data.cutoff == "2011-11-01" and config.data.end is None


@pytest.mark.parametrize(
    "values, message",
    [
        ({"model": {"famly": "gru"}}, "Unknown config key 'model.famly'"),
        ({"model": {"family": "lstm"}}, "Expected model.family to be one of popularity"),
        ({"model": {"units": 30, "num_heads": 4}}, "Expected model.num_heads to divide"),
        ({"data": {"cutoff": "2011-13-01"}}, "data.cutoff: Expected a date"),
        ({"data": {"history_length": 0}}, "Expected data.history_length to be positive"),
        ({"data": {"end": "2011-10-01"}}, "Expected data.end after data.cutoff"),
        ({"data": {"validation_days": 0}}, "Expected data.validation_days to be positive"),
        ({"model": {"sequence_length": 0}}, "Expected model.sequence_length to be positive"),
        ({"model": {"repeat": "yes"}}, "Expected model.repeat to be of type bool"),
        ({"training": {"max_basket": 0}}, "Expected training.max_basket to be positive"),
        ({"training": {"top_k": "ten"}}, "Expected training.top_k to be of type int"),
    ],
)
def test_bad_values_name_their_key(values, message):
    with pytest.raises(ConfigError, match=message):
        BehaviourConfig.from_dict(values)


def test_round_trip_through_yaml(tmp_path):
    config = BehaviourConfig.from_dict({"model": {"family": "gru-bahdanau"}})
    config.to_yaml(str(tmp_path / "config.yaml"))
    assert BehaviourConfig.from_yaml(str(tmp_path / "config.yaml")) == config


def test_an_unquoted_yaml_date_is_read_as_its_text(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data: {cutoff: 2011-06-01}\n")
    assert BehaviourConfig.from_yaml(str(path)).data.cutoff == "2011-06-01"
