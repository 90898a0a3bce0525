"""A translator or a trained run to a new, audited, warmed-up TF Serving version."""

from __future__ import annotations

import os
from collections.abc import Sequence

from tensorflow_serving.apis import prediction_log_pb2

from nmt_keras.decoding import GREEDY, DecodingOptions
from nmt_keras.export import audit, versions
from nmt_keras.export.module import ServingModule
from nmt_keras.export.session_loadable import SessionLoadableModule
from nmt_keras.run import TrainedRun
from nmt_keras.serving import warmup
from nmt_keras.translator import Translator


def export_translator(
    translator: Translator,
    model_base_path: str | os.PathLike,
    version: int | None = None,
    *,
    asset_files: Sequence[str | os.PathLike] = (),
    warmup_batches: Sequence[Sequence[str]] = warmup.DEFAULT_WARMUP_BATCHES,
) -> str:
    """Exports a translator as `model_base_path/<version>/` for TensorFlow Serving.

    The version directory holds `saved_model.pb` (signatures `serving_default` and
    `align`, and `nbest` when the translator decodes with a beam; see `ServingModule`),
    `variables/`, `assets/` (`asset_files`) and `assets.extra/tf_serving_warmup_requests`.

    Everything is written to a hidden staging directory inside `model_base_path` and
    audited (`audit.assert_servable`: the op walk, then a load through TensorFlow's C++
    session loader, as TF Serving loads it, with every warmup record replayed), and only
    then published under the version number, readable by other users (a TF Serving
    container rarely runs as the exporting user). On any failure the staging directory is
    removed, so TF Serving never sees a partial or unservable version.

    Args:
        translator: The model, tokenizers and search to serve.
        model_base_path: The model's directory, as passed to TF Serving's
            `--model_base_path`; created if missing.
        version: The version number; defaults to one more than the highest existing one
            (1 for a new model).
        asset_files: Files copied into the version's `assets/` (the tokenizer models, a
            config), for the record: the graph holds the tokenizers it runs.
        warmup_batches: Sentence batches written as warmup requests, each for every
            signature.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: If `version` is not positive or already exists.
        audit.AuditError: If the SavedModel uses an op stock TF Serving cannot run, or
            the session loader cannot load it or run a warmup request.

    Example:
        >>> translator = Translator(model, source_tokenizer, target_tokenizer)
        >>> version_dir = export_translator(translator, "saved_models/mine")  # .../mine/1
    """
    module = ServingModule(translator, asset_files=[os.fspath(path) for path in asset_files])
    requests = warmup.make_warmup_requests(warmup_batches, module.signature_names)
    return publish_version(module, model_base_path, version, requests)


def publish_version(
    module: SessionLoadableModule,
    model_base_path: str | os.PathLike,
    version: int | None,
    requests: Sequence[prediction_log_pb2.PredictionLog],
) -> str:
    """Saves, warms up, audits and publishes a serving module as a new version.

    The steps every export takes, whatever the model: the module's `save(path)` writes
    the SavedModel into a hidden staging directory, the warmup `requests` go to
    `assets.extra/`, `audit.assert_servable` loads it through the C++ session loader and
    replays them, and only then is the directory renamed to its version number.

    Args:
        module: A module with a `save(path)` method writing its SavedModel.
        model_base_path: The model's directory; created if missing.
        version: The version number; None for one more than the highest existing one.
        requests: The warmup records.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: If `version` is not positive or already exists.
        audit.AuditError: If the SavedModel is not servable.
    """
    model_base_path = os.fspath(model_base_path)
    version = versions.resolve_version(model_base_path, version)
    with versions.staged_version(model_base_path, version) as staging:
        module.save(staging)
        warmup.write_warmup_requests(staging, requests)
        audit.assert_servable(staging)
    return os.path.join(model_base_path, str(version))


def export_run(
    run: TrainedRun,
    model_base_path: str | os.PathLike,
    version: int | None = None,
    *,
    max_decode_length: int | None = None,
    decoding: DecodingOptions = GREEDY,
    warmup_batches: Sequence[Sequence[str]] = warmup.DEFAULT_WARMUP_BATCHES,
) -> str:
    """Exports a trained run as `model_base_path/<version>/` for TensorFlow Serving.

    `export_translator` on the run's translator, with the run's `config.yaml`,
    `source.spm` and `target.spm` as assets.

    Args:
        run: A run loaded by `nmt_keras.run.load_run`.
        model_base_path: The model's directory, as passed to TF Serving's
            `--model_base_path`; created if missing.
        version: The version number; defaults to one more than the highest existing one
            (1 for a new model).
        max_decode_length: Upper bound on generated tokens; defaults to the run's
            `training.max_decode_length`.
        decoding: The search every signature runs (default: greedy).
        warmup_batches: Sentence batches written as warmup requests, each for every
            signature.

    Returns:
        The path of the new version directory.

    Raises:
        ValueError: If `version` is not positive or already exists.
        audit.AuditError: If the export is not servable (see `export_translator`).
    """
    paths = run.paths
    return export_translator(
        run.translator(max_decode_length, decoding),
        model_base_path,
        version,
        asset_files=[paths.config, paths.source_tokenizer, paths.target_tokenizer],
        warmup_batches=warmup_batches,
    )
