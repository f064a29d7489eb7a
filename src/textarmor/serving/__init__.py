"""REST serving: a FastAPI app factory over one :class:`~textarmor.classifier.Classifier`, with dynamic
micro-batching, request limits, optional bearer auth and Prometheus metrics.

    textarmor serve runs/sst2 --port 8080
    curl -s localhost:8080/ -H 'Content-Type: application/json' -d '{"inputs": "a gripping, funny film"}'

Python: ``uvicorn.run(create_app("runs/sst2"), host="127.0.0.1", port=8080)``.
"""
from textarmor.model_dir import check_model_dir
from textarmor.serving.app import create_app
from textarmor.serving.batcher import MicroBatcher, QueueFull
from textarmor.serving.protocol import LimitError, Limits, PredictRequest, predict
from textarmor.serving.server import serve

__all__ = [
           "LimitError",
           "Limits",
           "MicroBatcher",
           "PredictRequest",
           "QueueFull",
           "check_model_dir",
           "create_app",
           "predict",
           "serve",
]
