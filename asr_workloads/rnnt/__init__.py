"""RNN-T models in PyTorch (the optional ``train`` extra): layers, loss, compression, decoding."""
