"""The peer a user would otherwise pick: the float model in onnxruntime, int8 by
``quantize_dynamic``, decoded with the same greedy search as our own models.

``quantize_dynamic`` stores weights as int8 with one scale per tensor and quantizes
activations on the fly; its weight bytes are counted from the graphs' initializers, so the
comparison with a bundle's compressed bytes is of what each stores.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .numpy_model import DEFAULT_MAX_SYMBOLS
from .onnx_export import PARTS
from .text import BLANK, decode

__all__ = ["OnnxRecognizer", "initializer_bytes", "quantize_peer"]


def quantize_peer(onnx_dir: str | Path, out_dir: str | Path) -> dict[str, Path]:
    """``quantize_dynamic`` (int8 weights) of each exported part; returns their paths."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for part in PARTS:
        paths[part] = out_dir / f"{part}.onnx"
        quantize_dynamic(Path(onnx_dir) / f"{part}.onnx", paths[part], weight_type=QuantType.QInt8)
    return paths


def initializer_bytes(paths: dict[str, Path]) -> int:
    """Bytes of every weight and constant the graphs store (their initializers)."""
    import onnx
    from onnx import numpy_helper

    total = 0
    for path in paths.values():
        for init in onnx.load(path).graph.initializer:
            total += numpy_helper.to_array(init).nbytes
    return total


class OnnxRecognizer:
    """Greedy RNN-T decoding with onnxruntime sessions of the three parts."""

    def __init__(self, paths: dict[str, Path], max_symbols: int = DEFAULT_MAX_SYMBOLS) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        self.sessions = {part: ort.InferenceSession(str(paths[part]), options) for part in PARTS}
        self.state_inputs = [i for i in self.sessions["predictor"].get_inputs()][1:]
        self.max_symbols = max_symbols

    def _predict(self, token: int, state: list[np.ndarray]):
        feeds = {"token": np.array([[token]], dtype=np.int64)}
        feeds.update({i.name: s for i, s in zip(self.state_inputs, state, strict=True)})
        output, *new_state = self.sessions["predictor"].run(None, feeds)
        return output, new_state

    def transcribe(self, features: np.ndarray) -> str:
        """The transcript of one utterance's stacked features ``(T, input_dim)``."""
        frames = self.sessions["encoder"].run(None, {"features": features[None]})[0][0]
        state = [np.zeros([1, 1, i.shape[2]], np.float32) for i in self.state_inputs]
        prediction, state = self._predict(BLANK, state)
        tokens = []
        joint = self.sessions["joint"]
        for frame in frames:
            for _ in range(self.max_symbols):
                logits = joint.run(None, {"frame": frame[None], "prediction": prediction})[0]
                token = int(np.argmax(logits[0]))
                if token == BLANK:
                    break
                tokens.append(token)
                prediction, state = self._predict(token, state)
        return decode(tokens)

    def __call__(self, features: np.ndarray, lengths: np.ndarray) -> Sequence[str]:
        return [self.transcribe(f[:n]) for f, n in zip(features, lengths, strict=True)]
