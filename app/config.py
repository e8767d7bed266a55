"""Settings from CONVZOO_* environment variables (pydantic-settings)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_cache_dir() -> Path:
    return Path.home() / ".cache" / "convzoo"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONVZOO_")

    cache_dir: Path = Field(default_factory=_default_cache_dir)
    # "auto": CUDA when torch sees a GPU, else CPU. Or "cpu", "cuda", "cuda:1" ...
    device: str = "auto"
    # Analyse the whole catalog in the background at start-up.
    warm_cache: bool = True
    default_model: str = "efficientnet_lite0"

    # Uploads
    max_upload_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    # An upload whose body stops arriving for this long is answered 408 (a stalled client)
    upload_idle_timeout_s: float = Field(30.0, gt=0)
    # Own networks (app/custom): an ONNX upload's size (ViT-B/16 with its weights is 346 MB), and the
    # store of uploaded graphs (kept without weight values) and typed Sequentials, least recently used out.
    max_onnx_bytes: int = 400 * 1024 * 1024
    custom_store_bytes: int = 64 * 1024 * 1024

    # Inference worker
    max_batch_size: int = 8
    max_batch_wait_ms: float = 10.0
    max_queue: int = 64
    loaded_models: int = 4  # LRU of models with weights in memory
    torch_threads: int = 0  # intra-op threads for inference (PyTorch and ONNX Runtime); 0: one per core
    # Batches that may run at once (ONNX Runtime on the CPU; eager PyTorch runs one at a time)
    inference_threads: int = Field(2, ge=1)
    # "auto": ONNX Runtime on the CPU, PyTorch on CUDA; "onnxruntime"; "torch" (models/predictor.py)
    runtime: Literal["auto", "onnxruntime", "torch"] = "auto"
    # An ONNX export is used only when its logits are within this of eager PyTorch's on a probe batch.
    onnx_tolerance: float = Field(1e-4, ge=0)

    # Inside a network: eager models kept for filters, feature maps and explanations;
    # requests waiting behind the one running (more get 503 busy)
    inside_loaded_models: int = 2
    inside_max_waiting: int = 4

    # "embedded": the inference worker thread in each web worker; "ray": the Ray Serve
    # deployment that `convzoo serve --ray` starts (app/predict/ray_serve.py)
    predictor: Literal["embedded", "ray"] = "embedded"
    ray_address: str | None = None  # a Ray cluster to join ("auto", "ray://host:10001"); None: start one here
    ray_replicas: int = Field(2, ge=1)
    ray_replica_cpus: float = Field(1.0, gt=0)

    # Cold analyses and the warm-up run in this many processes; 0: one per core
    analysis_processes: int = Field(0, ge=0)

    # Speed benchmarks
    speed_time_budget_s: float = 20.0
