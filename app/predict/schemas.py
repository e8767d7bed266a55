"""The JSON shapes of prediction (shared/API.md's Predict section) and of the
/predict page's data."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class PredictionItem(BaseModel):
    rank: int
    index: int  # the class index in the model's label list
    label: str
    probability: float  # softmax output in [0, 1]


class Timing(BaseModel):
    preprocess: float  # ms: decode + the model's own transforms
    inference: float  # ms: the forward pass of the batch this image ran in
    total: float  # ms: from the request's arrival to the answer


class PredictResponse(BaseModel):
    model: str
    device: str
    predictions: list[PredictionItem]
    timing_ms: Timing
    # Extensions beyond API.md.
    batch_size: int = Field(description="How many images shared this forward pass")
    input_size: list[int] = Field(description="[C, H, W] the model was fed")
    runtime: Literal["onnxruntime", "torch"] = Field(description="What ran the forward pass")
    prepare_ms: float = Field(0.0, description="ms this request waited for the model to be loaded (a first use: "
                              "weights, and on ONNX Runtime the export and its check; inside timing_ms.total); "
                              "0 when it was ready")
    notes: list[str] = Field(default_factory=list, description=(
        "Why the predictions say little about this image, when they do: one flat colour (blank), "
        "or a side under 8 pixels stretched to the model's input. Empty for an ordinary picture."))


class PreprocessingInfo(BaseModel):
    kind: Literal["image", "digit"] = Field(
        description="image: resize, centre crop, normalise; digit: find the ink, crop, centre, scale (LeNet-5)")
    input_size: list[int] = Field(description="[C, H, W] the model is fed")
    crop: int
    resize: int | None = None
    interpolation: str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    description: str | None = None


class PredictModel(BaseModel):
    id: str
    name: str
    family: str
    year: int | None  # None for a timm architecture whose configs name no paper
    top1: float | None
    weights: Literal["available", "downloadable", "none"]
    available: bool
    reason: str
    preprocessing: PreprocessingInfo | None  # None where the model has no published weights
    runtime: Literal["onnxruntime", "torch"] | None = Field(
        None, description="What it predicts on once loaded; null until it has been loaded (see runtime_reason)")
    runtime_reason: str = Field("", description="Why that runtime: the ONNX verification passed, or why it "
                                "failed or was not tried")
    state: Literal["ready", "preparing", "not_loaded", "unavailable"] = Field(
        "not_loaded", description="ready: loaded, predictions take milliseconds; preparing: being loaded now "
        "(see preparing_stage); not_loaded: its first prediction loads it (see runtime_reason); unavailable: "
        "no weights here")
    preparing_stage: str | None = Field(None, description="While preparing: what is being done now")
    preparing_s: float | None = Field(None, description="While preparing: seconds so far")
    export_cached: bool | None = Field(None, description="ONNX Runtime wanted and not loaded: whether a verified "
                                       "export is on disk already (loading then takes seconds, not a minute)")


class Example(BaseModel):
    name: str
    title: str
    source: str  # the installed package and file it comes from
    url: str


class PredictPage(BaseModel):
    default_model: str
    device: str
    runtime_setting: Literal["auto", "onnxruntime", "torch"] = "auto"
    max_upload_bytes: int
    max_image_pixels: int
    default_topk: int
    max_topk: int
    models: list[PredictModel]  # the catalog, or with ?available= only those that can (not) predict here
    examples: list[Example]
    counts: dict[str, int] = Field({}, description="The whole catalog's models by weights status: available "
                                   "(can predict now), downloadable (published, not here), none")


class PreparingModel(BaseModel):
    model: str
    stage: str  # what is being done now ("exporting it to ONNX ...")
    seconds: float  # since it started (or was queued, while waiting for another model)


class WorkerStatus(BaseModel):
    running: bool
    device: str
    queued: int
    preprocessing: int = 0  # admitted requests being decoded and preprocessed; with queued, at most max_queue
    max_queue: int
    max_batch_size: int
    max_batch_wait_ms: float
    batches: int
    images: int
    batch_sizes: dict[int, int]  # batch size -> how many batches of that size ran
    inference_threads: int = 1  # batches that may run at once (CONVZOO_INFERENCE_THREADS)
    # loaded model id -> the most forwards of it that ran at once: up to inference_threads on ONNX
    # Runtime on the CPU, 1 where forwards run one at a time (eager PyTorch, a GPU)
    peak_concurrent_forwards: dict[str, int] = {}
    loaded_models: list[str]  # the LRU, least recently used first
    predictor: Literal["embedded", "ray"] = "embedded"  # the worker thread here, or the Ray Serve deployment
    replicas: dict[str, int] = {}  # Ray mode: replica id -> images it answered for this web worker
    preparing: list[PreparingModel] = []  # models being loaded now (a first ONNX export takes a minute)
    waiting_for_load: int = 0  # requests waiting for one of those loads (at most max_queue; the rest get 503)
