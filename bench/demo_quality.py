"""How good are the demo's synthetic LYM patches? The figures the demo's pages cannot show at a glance.

Trains the demo configuration on the bundled demo patches (the same data and config as ./scripts/demo,
or a checkpoint you name), samples LYM patches from it, and prints:
- colour: per-channel mean and standard deviation of synthetic LYM against the range of the real LYM
  patches' own per-patch values;
- classifier agreement: the share of synthetic LYM patches that a tissue classifier trained on the real
  demo patches assigns to LYM (and the share of real LYM, for scale);
- diversity: the mean pairwise distance between synthetic patches (pixel features) over that between
  real LYM patches (1 = as varied as the real ones; the issue asks at least 0.5);
- copying: nearest-training-patch distances against the real patches' own baseline, near-copies flagged;
- shortcut: the cross-validated AUC of low-level features telling synthetic from real LYM;
- the training warnings (collapse, divergence) the run would raise.

    python bench/demo_quality.py                       # train the demo config (about 5 minutes on 2 cores)
    python bench/demo_quality.py --steps 1500 --set spectral_norm=true --set label_smoothing=0.1
    python bench/demo_quality.py --checkpoint media/checkpoints/run-1/step-0000300.pt
"""

from __future__ import annotations

import json
import sys
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis import copying, shortcuts
from gan.sources import DEFAULT_CLASSES
from neural import classifier, health
from neural.config import TrainingConfig, demo_config
from neural.data import PackedPatches, batch_indices, load_batch
from neural.loop import Trainer
from neural.sampling import generate_all, load_generator

DEMO = Path(__file__).resolve().parents[1] / "demo" / "data"


def demo_patches(classes: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    index = {c: i for i, c in enumerate(classes)}
    files = sorted(p for p in DEMO.rglob("*.png") if p.parent.name in index)
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in files])
    return images, np.array([index[p.parent.name] for p in files])


def train(config: TrainingConfig, data: PackedPatches, device: torch.device) -> torch.nn.Module:
    trainer = Trainer(config, device)
    history, warnings = [], []
    reference = health.real_spreads(data.images, data.labels, config.classes)
    start = time.perf_counter()
    for step in range(config.steps):
        idx, _ = batch_indices(seed=config.seed, step=step, batch_size=config.batch_size, n=len(data))
        real, labels = load_batch(data, idx, device)
        history.append([step + 1, *trainer.step(real, labels, step).tolist()])
        if (step + 1) % config.sample_every == 0:
            spreads = health.grid_spreads(trainer.sample_grid(), config.classes)
            warnings += health.check_samples(
                step=step + 1, steps=config.steps, spreads=spreads, reference=reference
            )
    warnings += health.check_losses(history[:: config.log_every])
    print(f"trained {config.steps} steps in {time.perf_counter() - start:.0f} s")
    for warning in health.merge([], warnings):
        print(f"  warning ({warning['kind']}, first at step {warning['step']}): {warning['message']}")
    return trainer.sampler().eval()


def pairwise_mean(features: np.ndarray) -> float:
    squared = (features * features).sum(axis=1)
    d2 = np.maximum(squared[:, None] + squared[None, :] - 2 * features @ features.T, 0)
    n = len(features)
    return float(np.sqrt(d2)[~np.eye(n, dtype=bool)].mean())


def main() -> None:
    parser = ArgumentParser(description=__doc__, formatter_class=RawDescriptionHelpFormatter)
    parser.add_argument(
        "--steps", type=int, default=demo_config().steps, help="demo training steps (default: the demo's)"
    )
    parser.add_argument("--set", action="append", default=[], help="a config field, name=value (JSON value)")
    parser.add_argument("--checkpoint", help="measure this checkpoint instead of training one")
    parser.add_argument("--count", type=int, default=96, help="synthetic LYM patches to sample")
    parser.add_argument("--grid", help="also save the first 16 synthetic LYM patches, 4x4, to this PNG")
    args = parser.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    if args.checkpoint:
        generator, config, step = load_generator(Path(args.checkpoint), device)
        print(f"checkpoint {args.checkpoint} at step {step}")
    else:
        changes = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
        config = demo_config(steps=args.steps, **changes)
    images, labels = demo_patches(config.classes)
    data = PackedPatches.from_arrays(images, labels, config.classes)
    if not args.checkpoint:
        generator = train(config, data, device)
    lym = config.classes.index("LYM")
    synthetic = generate_all(generator, class_index=lym, seeds=range(args.count), device=device)
    real_lym = images[labels == lym]
    if args.grid:
        rows = [np.concatenate(list(synthetic[r * 4 : r * 4 + 4]), axis=1) for r in range(4)]
        Image.fromarray(np.concatenate(rows, axis=0)).save(args.grid)
    print(f"\n{len(synthetic)} synthetic LYM patches against the {len(real_lym)} real demo LYM patches")

    per_patch = lambda x: x.reshape(len(x), -1, 3) / 255.0  # noqa: E731
    real_means, real_stds = per_patch(real_lym).mean(axis=1), per_patch(real_lym).std(axis=1)
    syn_mean, syn_std = per_patch(synthetic).mean(axis=(0, 1)), per_patch(synthetic).std(axis=1).mean(axis=0)
    for name, k in (("R", 0), ("G", 1), ("B", 2)):
        inside = real_means[:, k].min() <= syn_mean[k] <= real_means[:, k].max()
        inside_std = real_stds[:, k].min() <= syn_std[k] <= real_stds[:, k].max()
        lo, hi, slo, shi = (
            real_means[:, k].min(),
            real_means[:, k].max(),
            real_stds[:, k].min(),
            real_stds[:, k].max(),
        )
        print(
            f"colour {name}: synthetic mean {syn_mean[k]:.3f} (real patches {lo:.3f} to {hi:.3f}: "
            f"{'inside' if inside else 'OUTSIDE'}), within-patch std {syn_std[k]:.3f} (real {slo:.3f} to "
            f"{shi:.3f}: {'inside' if inside_std else 'OUTSIDE'})"
        )

    # The tissue classifier learns every demo class, whatever the GAN was trained on.
    all_images, all_labels = demo_patches(DEFAULT_CLASSES)
    tissue = PackedPatches.from_arrays(all_images, all_labels, DEFAULT_CLASSES)
    config_c = classifier.ClassifierConfig(
        classes=DEFAULT_CLASSES, epochs=30, batch_size=16, width=16, seed=0
    )
    model = classifier.train_classifier(config=config_c, data=tissue, device=device).model(device)
    lym_class = DEFAULT_CLASSES.index("LYM")
    agree = float((classifier.predict(model, synthetic, device) == lym_class).mean())
    agree_real = float((classifier.predict(model, real_lym, device) == lym_class).mean())
    print(
        f"classifier agreement: {agree:.0%} of synthetic LYM called LYM "
        f"(real LYM: {agree_real:.0%}, seen in training)"
    )

    diversity = pairwise_mean(copying.pixel_features(synthetic)) / pairwise_mean(
        copying.pixel_features(real_lym)
    )
    print(f"diversity: mean pairwise distance, synthetic over real = {diversity:.2f} (at least 0.5 asked)")

    result = copying.check_space(
        "pixels",
        copying.pixel_features(synthetic),
        copying.pixel_features(images),
        synthetic_ids=list(range(len(synthetic))),
        training_ids=list(range(len(images))),
    )
    print(
        f"nearest training patch (pixels): synthetic median {result.synthetic_quantiles['q50']:.3f}, "
        f"real-to-real median {result.baseline_quantiles['q50']:.3f}; "
        f"{result.n_flagged} of {len(synthetic)} near-copies"
    )
    check = shortcuts.shortcut_check(real_lym, synthetic[: max(len(real_lym), 5)])
    if check.auc is not None:
        print(
            f"shortcut check: AUC {check.auc.value:.2f} "
            f"(95% CI {check.auc.low:.2f} to {check.auc.high:.2f}), strongest family {check.strongest}"
        )
    else:
        print(f"shortcut check: {check.reason}")


if __name__ == "__main__":
    main()
