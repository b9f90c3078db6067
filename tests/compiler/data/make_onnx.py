"""Regenerate the committed ONNX exports (see README.md); needs the ``train`` extra."""

from pathlib import Path

import torch

from edgenpu.asr_workloads.model_config import ModelConfig
from edgenpu.asr_workloads.onnx_export import export_onnx
from edgenpu.asr_workloads.rnnt.model import RNNT

HERE = Path(__file__).resolve().parent
TOPOLOGIES = {
    "three_layers": ([8, 11, 6], [1, 3, 2], [7], "tanh", "int4"),
    "reduce_first": ([12, 9], [2, 1], [8, 6], "relu", "int8"),
}


def main() -> None:
    for name, (hidden, reduce, pred, activation, precision) in TOPOLOGIES.items():
        config = ModelConfig.from_dict(
            {
                "input_dim": 5,
                "encoder": {"hidden": hidden, "reduce": reduce},
                "predictor": {"embed": 4, "hidden": pred},
                "joint": {"hidden": 9, "activation": activation},
                "vocab_size": 7,
            }
        )
        torch.manual_seed(len(name))
        model = RNNT(config)
        w = model.parameter("encoder.0.w_ih")
        model.set_mask("encoder.0.w_ih", (torch.rand(w.shape) > 0.5).float())
        model.set_precision(precision)
        export_onnx(model.eval(), HERE / name)


if __name__ == "__main__":
    main()
