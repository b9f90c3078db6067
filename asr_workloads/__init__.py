"""RNN-T speech workloads: features, models, training recipes and bundled checkpoints."""
