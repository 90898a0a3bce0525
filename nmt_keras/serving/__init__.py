"""TensorFlow-Serving-compatible serving: a local server (gRPC + REST) and a client.

The server speaks the real `tensorflow_model_server`'s gRPC and REST APIs, status codes
and messages, so the same client and SavedModel work against both:

    from nmt_keras.serving import Client, ServerOptions, serve

    serve(ServerOptions(model_name="nmt", model_base_path="saved_models/nmt"))
    with Client("127.0.0.1:8500", "nmt") as client:
        print(client.translate(["Tengo hambre."])[0].text)

A recommender (`nmt_keras.serving.signatures`'s recommendation contract) is served the same
way; `Client.recommend` takes `History`s and returns `Recommendation`s.

Importing this package imports TensorFlow (the serving protos depend on it).
"""

from nmt_keras.serving.client import (
    Client,
    History,
    Recommendation,
    ServingError,
    Translation,
)
from nmt_keras.serving.errors import RequestError, ServerError
from nmt_keras.serving.model_manager import ModelManager
from nmt_keras.serving.predict import RequestLimits
from nmt_keras.serving.server import AUTO_PORT, RunningServer, ServerOptions, serve, start_server

__all__ = [
    "AUTO_PORT",
    "Client",
    "History",
    "ModelManager",
    "Recommendation",
    "RequestError",
    "RequestLimits",
    "RunningServer",
    "ServerError",
    "ServerOptions",
    "ServingError",
    "Translation",
    "serve",
    "start_server",
]
