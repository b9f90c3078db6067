"""Training RNN-T recipes: batches from a feature cache, the training loop, checkpoints."""
