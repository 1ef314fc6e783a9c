"""The PyTorch computations, with no Django: the GAN (model, configuration, data packs, training loop,
checkpoints, sampling, health), the tissue classifier, FID and the augmentation experiment. Every app
may import it; it imports no app (checked in CI)."""
