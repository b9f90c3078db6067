"""The LSTM stack against torch.nn.LSTM, time reduction, and per-utterance lengths."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from edgenpu.asr_workloads.rnnt.lstm import (
    LSTMLayer,
    LSTMStack,
    lstm_layer,
    select_state,
    time_reduce,
)


def reference_lstm(layer: LSTMLayer) -> torch.nn.LSTM:
    """A torch.nn.LSTM holding ``layer``'s weights (its single bias as b_ih, b_hh = 0)."""
    ref = torch.nn.LSTM(layer.reduce * layer.input_size, layer.hidden, batch_first=True)
    with torch.no_grad():
        ref.weight_ih_l0.copy_(layer.w_ih)
        ref.weight_hh_l0.copy_(layer.w_hh)
        ref.bias_ih_l0.copy_(layer.bias)
        ref.bias_hh_l0.zero_()
    return ref


def test_parameter_names_and_shapes():
    stack = LSTMStack(5, [7, 3], [2, 1])
    shapes = {name: tuple(p.shape) for name, p in stack.named_parameters()}
    assert shapes == {
        "0.w_ih": (28, 10),
        "0.w_hh": (28, 7),
        "0.bias": (28,),
        "1.w_ih": (12, 7),
        "1.w_hh": (12, 3),
        "1.bias": (12,),
    }


def test_matches_torch_lstm_with_lengths():
    torch.manual_seed(0)
    stack = LSTMStack(6, [8, 5])
    x = torch.randn(4, 9, 6)
    lengths = torch.tensor([9, 4, 7, 1])
    y, out_lengths, state = stack(x, lengths)
    assert torch.equal(out_lengths, lengths)
    ref_in = x
    for index in range(2):
        ref = reference_lstm(stack.layer(index))
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            ref_in, lengths, batch_first=True, enforce_sorted=False
        )
        out, (h, c) = ref(packed)
        ref_in, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=9)
        torch.testing.assert_close(state[index][0], h[0], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(state[index][1], c[0], atol=1e-6, rtol=1e-5)
    # Past each length the outputs are exactly zero, as pad_packed_sequence pads them.
    torch.testing.assert_close(y, ref_in, atol=1e-6, rtol=1e-5)
    assert torch.all(y[1, 4:] == 0) and torch.all(y[3, 1:] == 0)


def test_matches_torch_lstm_gradients():
    torch.manual_seed(1)
    layer = LSTMLayer(4, 6)
    ref = reference_lstm(layer)
    x = torch.randn(3, 5, 4)
    y, _ = lstm_layer(x, layer.w_ih, layer.w_hh, layer.bias)
    y.square().sum().backward()
    ref_y, _ = ref(x)
    ref_y.square().sum().backward()
    torch.testing.assert_close(y, ref_y, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(layer.w_hh.grad, ref.weight_hh_l0.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(layer.w_ih.grad, ref.weight_ih_l0.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(layer.bias.grad, ref.bias_hh_l0.grad, atol=1e-5, rtol=1e-4)


def test_fused_training_path_equals_the_loop():
    # Without a final state the stack runs PyTorch's fused kernel while gradients are
    # recorded; outputs (zero past each length) and every gradient, through a weight hook
    # and a time reduction, must equal the loop's.
    torch.manual_seed(2)
    stack = LSTMStack(6, [8, 5], [1, 2])
    x = torch.randn(4, 9, 6)
    lengths = torch.tensor([9, 4, 7, 1])
    weights = {name: (2 * p).detach().requires_grad_() for name, p in stack.named_parameters()}
    results = []
    for final_state in (True, False):
        y, out_lengths, state = stack(x, lengths, weights.__getitem__, final_state=final_state)
        grads = torch.autograd.grad(y.square().sum(), list(weights.values()))
        results.append((y, out_lengths, grads))
        assert len(state) == (2 if final_state else 0)
    (loop_y, loop_lengths, loop_grads), (fused_y, fused_lengths, fused_grads) = results
    assert torch.equal(loop_lengths, fused_lengths)
    assert torch.all(fused_y[1, 2:] == 0) and torch.all(fused_y[3, 1:] == 0)
    torch.testing.assert_close(fused_y, loop_y, atol=1e-6, rtol=1e-5)
    for fused, loop in zip(fused_grads, loop_grads, strict=True):
        torch.testing.assert_close(fused, loop, atol=1e-5, rtol=1e-4)
    # Inference keeps the loop, which streaming reproduces bit for bit.
    with torch.no_grad():
        inference, _, state = stack(x, lengths, final_state=False)
        assert len(state) == 2 and torch.equal(inference, stack(x, lengths)[0])


def test_time_reduction_concatenates_and_zero_pads():
    x = torch.arange(1.0, 11.0).reshape(1, 5, 2).repeat(2, 1, 1)
    x[1, 3:] = 99.0  # batch padding past the second utterance's length 3
    y, lengths = time_reduce(x, torch.tensor([5, 3]), 2)
    assert y.shape == (2, 3, 4) and lengths.tolist() == [3, 2]
    assert y[0].tolist() == [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 0, 0]]
    # The second utterance's last group is [x[2], zeros]: its padding never leaks in.
    assert y[1, :2].tolist() == [[1, 2, 3, 4], [5, 6, 0, 0]]


def test_padding_does_not_change_shorter_sequences():
    torch.manual_seed(2)
    stack = LSTMStack(3, [6, 4, 5], [1, 2, 3])
    x = torch.randn(1, 7, 3)
    alone, alone_len, alone_state = stack(x, torch.tensor([7]))
    padded = torch.cat([x, torch.randn(1, 6, 3) * 50], dim=1)
    other = torch.randn(1, 13, 3)
    y, lengths, state = stack(torch.cat([padded, other]), torch.tensor([7, 13]))
    assert lengths.tolist() == [2, 3]
    torch.testing.assert_close(y[0, :2], alone[0], atol=1e-6, rtol=1e-5)
    assert torch.all(y[0, 2:] == 0)
    for (h, c), (h1, c1) in zip(state, alone_state, strict=True):
        torch.testing.assert_close(h[:1], h1, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(c[:1], c1, atol=1e-6, rtol=1e-5)


def test_hard_update_holds_state_exactly():
    torch.manual_seed(3)
    layer = LSTMLayer(2, 3)
    x = torch.randn(1, 4, 2)
    update = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    y, (h, c) = lstm_layer(x, layer.w_ih, layer.w_hh, layer.bias, update=update)
    # Skipped frames neither output nor change the state: the same as running frames 0, 3.
    ref, (h_ref, c_ref) = lstm_layer(x[:, [0, 3]], layer.w_ih, layer.w_hh, layer.bias)
    assert torch.equal(y[:, [0, 3]], ref) and torch.all(y[:, 1:3] == 0)
    assert torch.equal(h, h_ref) and torch.equal(c, c_ref)


def test_weight_hook_is_used():
    stack = LSTMStack(2, [3])
    x = torch.randn(2, 4, 2)
    zeros = {name: torch.zeros_like(p) for name, p in stack.named_parameters()}
    y, _, _ = stack(x, weight=zeros.__getitem__)
    assert torch.all(y == 0)


def test_select_state():
    new = ((torch.ones(2, 3), torch.ones(2, 3)),)
    old = ((torch.zeros(2, 3), torch.zeros(2, 3)),)
    ((h, c),) = select_state(torch.tensor([True, False]), new, old)
    assert h[:, 0].tolist() == [1, 0] and c[:, 0].tolist() == [1, 0]


def test_bad_sizes_are_named():
    with pytest.raises(ValueError, match="LSTM hidden must be a positive integer, not 0"):
        LSTMLayer(3, 0)
    with pytest.raises(ValueError, match="one reduce per layer"):
        LSTMStack(3, [4, 4], [1])
    with pytest.raises(ValueError, match=r"gated LSTM layer cannot reduce time \(layer 0\)"):
        LSTMStack(3, [4], [2])(torch.zeros(1, 4, 3), update=torch.ones(1, 2))
