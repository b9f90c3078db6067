"""Speech corpora for training and evaluation: synthesized commands and real spoken digits.

``build_corpus(preset_spec("default"), folder)`` renders and caches the features once;
``open_split(folder, "train")`` reads them back, memory-mapped.
"""

from .augment import spec_augment
from .build import build_corpus
from .commands import sample_commands
from .feature_cache import CorpusError, CorpusSplit, open_split
from .spec import SPLITS, CorpusSpec, CorpusSpecError, load_spec, preset_spec
from .synthesizers import SynthesizerError, SynthesizerMissing

__all__ = [
    "SPLITS",
    "CorpusError",
    "CorpusSpec",
    "CorpusSpecError",
    "CorpusSplit",
    "SynthesizerError",
    "SynthesizerMissing",
    "build_corpus",
    "load_spec",
    "open_split",
    "preset_spec",
    "sample_commands",
    "spec_augment",
]
