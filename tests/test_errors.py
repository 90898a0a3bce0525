"""Every error a user can cause shares one base, which the command line catches once."""

import pytest

from nmt_keras.behaviour.events import BehaviourDataError
from nmt_keras.config import ConfigError
from nmt_keras.data.corpus import CorpusError
from nmt_keras.decoding import DecodingError
from nmt_keras.errors import NmtKerasError
from nmt_keras.export.audit import AuditError
from nmt_keras.export.versions import VersionError
from nmt_keras.run_directory import RunError
from nmt_keras.serving.client import ServingError
from nmt_keras.serving.errors import ServerError
from nmt_keras.serving.session_bundle import SessionLoadError
from nmt_keras.serving.warmup import WarmupError
from nmt_keras.text.sentencepiece_training import VocabularyTooSmallError

VALUE_ERRORS = [
    BehaviourDataError,
    ConfigError,
    CorpusError,
    DecodingError,
    AuditError,
    VersionError,
    RunError,
    ServerError,
    SessionLoadError,
    WarmupError,
]


@pytest.mark.parametrize("error", [*VALUE_ERRORS, ServingError], ids=lambda e: e.__name__)
def test_user_errors_share_the_base(error):
    assert issubclass(error, NmtKerasError)


@pytest.mark.parametrize("error", VALUE_ERRORS, ids=lambda e: e.__name__)
def test_errors_about_a_value_are_value_errors(error):
    assert issubclass(error, ValueError)


def test_vocabulary_too_small_is_a_user_error():
    assert issubclass(VocabularyTooSmallError, NmtKerasError)
