"""l3-data: the Llama 3 pre-training data pipeline, from raw documents to token shards.

A pipeline is an input and a list of steps (readers, HTML extraction, URL/exact/MinHash/line
dedup, heuristic and model-based filters, language ID, the data mix, tokenisation into
l3-core shards), declared in TOML and run locally or on Ray, resumably. The base install runs
the readers, dedup and heuristic filters; the other steps need the extra they name.
"""

from l3_core.versions import package_version
from l3_data.classifier import load_classifier, train_classifier
from l3_data.document import BadRecord, Document
from l3_data.errors import (
    InputChangedError,
    InputFormatError,
    L3DataError,
    MissingExtraError,
    ModelFileError,
    PipelineConfigError,
    WorkdirMismatchError,
)
from l3_data.executors import EXECUTORS, Engine, Executor, LocalExecutor, run_pipeline
from l3_data.pipeline import Pipeline, Settings
from l3_data.steps import STEPS, ChunkContext, Filter, GlobalStep, Step, register
from l3_data.steps.langid import LanguageIdentifier
from l3_data.steps.minhash import MinHasher, cluster
from l3_data.steps.readers import InputSpec

__version__ = package_version("l3-data")

__all__ = [
    "EXECUTORS",
    "STEPS",
    "BadRecord",
    "ChunkContext",
    "Document",
    "Engine",
    "Executor",
    "Filter",
    "GlobalStep",
    "InputChangedError",
    "InputFormatError",
    "InputSpec",
    "L3DataError",
    "LanguageIdentifier",
    "LocalExecutor",
    "MinHasher",
    "MissingExtraError",
    "ModelFileError",
    "Pipeline",
    "PipelineConfigError",
    "Settings",
    "Step",
    "WorkdirMismatchError",
    "cluster",
    "load_classifier",
    "register",
    "run_pipeline",
    "train_classifier",
]
