import pytest

from nmt_keras.text.sentencepiece_training import train_sentencepiece

SENTENCES = [
    "a dog runs in the park",
    "the cat sleeps on the sofa",
    "two men play football in the street",
    "a woman reads a book in the garden",
    "children are swimming in the lake",
    "an old man sells fruit at the market",
] * 4


@pytest.fixture(scope="session")
def model_proto() -> bytes:
    return train_sentencepiece(SENTENCES, vocab_size=60, seed=0)
