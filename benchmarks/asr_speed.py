"""Speed of the speech models: training steps, and decoding against real time.

Run ``python benchmarks/asr_speed.py [--recipe default] [--seconds 3] [--threads 1]``. With
random weights of the recipe's model (the sizes are what matter) it times, each as the best
of ``--repeats`` runs:

* the prediction network's forward and backward over a batch of transcripts: through the
  hand-written recurrence (which decoding steps through), and through the fused kernel in
  float32 and in bfloat16 (as training runs it);
* one training step (forward, RNN-T + CTC loss, backward) on a batch of the recipe's size,
  utterances of ``--seconds`` seconds with 34-character transcripts, in PyTorch; and the
  same step's parts (encoder, joint, loss) as fractions of it; the same step with the
  pruned RNN-T loss (``--prune-window`` label positions per frame, the recipe's if it sets
  one) and its ratio to the full step, and that step again under bfloat16 autocast (recipe
  key ``train.bfloat16``); a CTC-only step (the recipe's first phase), and the recipe's
  training time estimated from the steps it uses, at the precision it trains in;
* greedy decoding of that batch in PyTorch (batched), and of one utterance with the numpy
  model of the bundle (the host runtime's path) at float and int4: real-time factor
  (audio seconds per compute second; above 1 is faster than real time).

Decoding speed depends on how many symbols the model emits; random weights emit few, so the
decode numbers are a lower bound on the work of a trained model.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F
from timing import best_time

from edgenpu.asr_workloads.bundle import bundle_from_weights
from edgenpu.asr_workloads.frontend import FrontEndConfig
from edgenpu.asr_workloads.numpy_model import greedy_decode as numpy_decode
from edgenpu.asr_workloads.recipe import load_recipe, with_input_dim
from edgenpu.asr_workloads.rnnt.decode import greedy_decode
from edgenpu.asr_workloads.rnnt.loss import rnnt_loss
from edgenpu.asr_workloads.rnnt.model import RNNT
from edgenpu.asr_workloads.rnnt.pruned_loss import pruned_rnnt_loss
from edgenpu.asr_workloads.text import BLANK
from edgenpu.asr_workloads.training.mixed_precision import network_autocast

N_MELS = 40
HOP_S = 0.01
TRANSCRIPT = 34


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prune-window", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    recipe = load_recipe(args.recipe)
    config = with_input_dim(recipe, N_MELS)
    model = RNNT(config)
    batch = recipe.train.batch_size
    frames = int(args.seconds / HOP_S) // recipe.subsample
    features = torch.randn(batch, frames, config.input_dim)
    lengths = torch.full((batch,), frames)
    targets = torch.randint(1, config.vocab_size, (batch, TRANSCRIPT))
    target_lengths = torch.full((batch,), TRANSCRIPT)
    tokens = F.pad(targets, (1, 0), value=BLANK)
    params = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("ctc."))
    print(
        f"recipe {recipe.name}: {params:,} parameters, batch {batch} x {args.seconds:g} s, "
        f"{args.threads} thread(s)"
    )

    parts: dict[str, float] = {}

    def ctc_loss(ctc_logits: torch.Tensor, frame_lengths: torch.Tensor) -> torch.Tensor:
        log_probs = F.log_softmax(ctc_logits.float(), -1).transpose(0, 1)
        return F.ctc_loss(log_probs, targets, frame_lengths, target_lengths, reduction="sum")

    def ctc_step(bfloat16: bool = False) -> None:
        with network_autocast(bfloat16):
            encoded = model.encode(features, lengths)
            ctc_logits = model.ctc_logits(encoded.frames)
        ctc_loss(ctc_logits, encoded.lengths).backward()
        model.zero_grad(set_to_none=True)

    def step() -> None:
        start = time.perf_counter()
        encoded = model.encode(features, lengths)
        predicted, _ = model.predict(tokens, final_state=False)
        parts["encoder"] = time.perf_counter() - start
        start = time.perf_counter()
        logits = model.joint(encoded.frames, predicted)
        parts["joint"] = time.perf_counter() - start
        start = time.perf_counter()
        loss = rnnt_loss(logits, targets, encoded.lengths, target_lengths, reduction="sum")
        ctc = ctc_loss(model.ctc_logits(encoded.frames), encoded.lengths)
        parts["losses"] = time.perf_counter() - start
        start = time.perf_counter()
        (loss + ctc).backward()
        parts["backward"] = time.perf_counter() - start
        model.zero_grad(set_to_none=True)

    window = recipe.train.prune_window or args.prune_window
    simple_lm = torch.nn.Linear(config.predictor.hidden[-1], config.vocab_size)

    def pruned_step(bfloat16: bool = False) -> None:
        # As the trainer runs it: the networks optionally under bfloat16 autocast, the
        # losses in float32.
        def joint_at(positions: torch.Tensor) -> torch.Tensor:
            with network_autocast(bfloat16):
                return model.joint_at(encoded.frames, predicted, positions).float()

        with network_autocast(bfloat16):
            encoded = model.encode(features, lengths)
            ctc_logits = model.ctc_logits(encoded.frames).float()
            predicted = model.predict(tokens, final_state=False)[0].float()
        pruned, simple = pruned_rnnt_loss(
            ctc_logits,
            simple_lm(predicted),
            joint_at,
            targets,
            encoded.lengths,
            target_lengths,
            window,
        )
        ctc = ctc_loss(ctc_logits, encoded.lengths)
        (pruned.sum() + 0.5 * simple.sum() + ctc).backward()
        model.zero_grad(set_to_none=True)
        simple_lm.zero_grad(set_to_none=True)

    def predictor_step(final_state: bool, bfloat16: bool = False) -> None:
        with network_autocast(bfloat16):
            predicted, _ = model.predict(tokens, final_state=final_state)
        predicted.float().sum().backward()
        model.zero_grad(set_to_none=True)

    loop_seconds = best_time(lambda: predictor_step(True), args.repeats)
    fused_seconds = best_time(lambda: predictor_step(False), args.repeats)
    fused_bf16_seconds = best_time(lambda: predictor_step(False, True), args.repeats)
    print(
        f"prediction network forward + backward: {loop_seconds * 1000:.1f} ms recurrence, "
        f"{fused_seconds * 1000:.1f} ms fused "
        f"({loop_seconds / fused_seconds:.2f}x), {fused_bf16_seconds * 1000:.1f} ms fused "
        f"in bfloat16 ({loop_seconds / fused_bf16_seconds:.2f}x; training runs this one)"
    )
    seconds = best_time(step, args.repeats)
    shares = ", ".join(f"{k} {v / seconds:.0%}" for k, v in parts.items())
    print(f"transducer training step: {seconds:.3f} s ({shares})")
    pruned_seconds = best_time(pruned_step, args.repeats)
    print(
        f"pruned transducer step (window {window}): {pruned_seconds:.3f} s, "
        f"{seconds / pruned_seconds:.2f}x faster than the full lattice"
    )
    bfloat16_seconds = best_time(lambda: pruned_step(bfloat16=True), args.repeats)
    print(
        f"the same under bfloat16 autocast: {bfloat16_seconds:.3f} s, "
        f"{pruned_seconds / bfloat16_seconds:.2f}x faster than float32"
    )
    ctc_seconds = best_time(lambda: ctc_step(recipe.train.bfloat16), args.repeats)
    ctc_steps = min(recipe.train.ctc_only_steps, recipe.train.steps)
    transducer_steps = recipe.train.steps - ctc_steps
    used = pruned_seconds if recipe.train.prune_window else seconds
    if recipe.train.bfloat16:
        used *= bfloat16_seconds / pruned_seconds
    precision = " (bfloat16)" if recipe.train.bfloat16 else ""
    print(
        f"CTC-only step{precision}: {ctc_seconds:.3f} s; the recipe's {ctc_steps} CTC-only + "
        f"{transducer_steps} transducer steps = "
        f"{(ctc_steps * ctc_seconds + transducer_steps * used) / 60:.1f} min"
    )

    model.eval()
    audio = batch * args.seconds
    seconds = best_time(lambda: greedy_decode(model, features, lengths), args.repeats)
    print(
        f"PyTorch greedy decoding, batch {batch}: {seconds:.3f} s, "
        f"real-time factor {audio / seconds:.0f}"
    )
    frontend = FrontEndConfig(
        sample_rate=8000, n_mels=N_MELS, stack=recipe.stack, subsample=recipe.subsample
    )
    weights = {n: w.numpy() for n, w in model.effective_parameters().items()}
    one = features[0].numpy()
    for precision in (None, "int4"):
        bundle = bundle_from_weights(config, frontend, weights, precision)
        seconds = best_time(lambda b=bundle: numpy_decode(b, one), args.repeats)
        print(
            f"numpy bundle decoding ({precision or 'float'}), one utterance: "
            f"{seconds * 1000:.1f} ms, real-time factor {args.seconds / seconds:.0f}"
        )


if __name__ == "__main__":
    main()
