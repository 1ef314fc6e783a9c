"""The timing channel of image serving, measured the way an outside audit did.

An expert with a script fetches every item of their own order many times from a real gunicorn and
keeps the fastest time of each item; if those times tell real from synthetic (AUC against the truth,
with a permutation test), blinding fails. The worst case is built on purpose: textured "real" patches
that compress badly beside near-flat "synthetic" ones (a collapsed model's output, a few hundred bytes
stored). When the server decoded and re-encoded each image per request, this measured AUC 0.99.
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.conf import settings as django_settings
from django.db import connection
from scipy.stats import mannwhitneyu

from gan.models import Source
from tests.servers import free_port, site_env, start_gunicorn, wait_for_port
from tests.sessions import session_key_for
from tests.turing.fixtures import create_study, patches_from_arrays
from turing.models import Study, StudyItem
from turing.services import ArmSpec

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]  # gunicorn reads what we write
REPO = Path(__file__).resolve().parents[2]
ITEMS_PER_KIND = 24
ROUNDS = 25  # within the default per-item fetch limit, as an attacker would have to stay
PERMUTATIONS = 20_000


def _textured(rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
    for _ in range(n):
        yield rng.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)  # incompressible


def _flat(rng: np.random.Generator, n: int) -> Iterator[np.ndarray]:
    for _ in range(n):
        colour = rng.integers(100, 220, size=3, dtype=np.uint8)
        pixels = np.broadcast_to(colour, (128, 128, 3)).copy()
        pixels[rng.integers(0, 128), :, 0] ^= 1  # near-flat: a faint line keeps the patches distinct
        yield pixels


@pytest.fixture
def worst_case_study(expert: Any, media_root: Path) -> Study:
    """Textured real patches against two synthetic arms, one near-flat and one textured: the truth and
    the arm each split the items into patches that compress very differently."""
    rng = np.random.default_rng(7)
    real = patches_from_arrays("textured", _textured(rng, ITEMS_PER_KIND), source=Source.REAL)
    half = ITEMS_PER_KIND // 2
    flat = patches_from_arrays("flat", _flat(rng, half), source=Source.SYNTHETIC)
    textured = patches_from_arrays("textured synthetic", _textured(rng, half), source=Source.SYNTHETIC)
    return create_study(
        name="timing",
        real_datasets=[real],
        arms=[ArmSpec("flat", [flat], 1), ArmSpec("textured", [textured], 1)],
        real_parts=2,
        items_per_reader=2 * ITEMS_PER_KIND,
        readers=[expert],
        seed=3,
    )


def _fetch(port: int, path: str, cookie: str) -> tuple[float, int, int]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    start = time.perf_counter()
    conn.request("GET", path, headers={"Cookie": cookie})
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed, response.status, len(body)


def timing_auc(
    times: np.ndarray, is_synthetic: np.ndarray, permutations: int, seed: int = 0
) -> tuple[float, float]:
    """AUC of the per-item times for telling synthetic from real, and its two-sided permutation p."""

    def auc(labels: np.ndarray) -> float:
        u = mannwhitneyu(times[labels], times[~labels]).statistic
        return float(u) / (labels.sum() * (~labels).sum())

    observed = auc(is_synthetic)
    rng = np.random.default_rng(seed)
    ranks = np.argsort(np.argsort(times)) + 1.0  # no ties among timings in practice
    n_pos = int(is_synthetic.sum())
    n_neg = len(times) - n_pos
    shuffled = np.array([rng.permutation(is_synthetic) for _ in range(permutations)])  # [P, n]
    u = (shuffled * ranks).sum(axis=1) - n_pos * (n_pos + 1) / 2
    null = u / (n_pos * n_neg)
    p = (1 + np.sum(np.abs(null - 0.5) >= abs(observed - 0.5) - 1e-12)) / (permutations + 1)
    return observed, float(p)


def test_how_long_an_image_takes_does_not_tell_its_truth(
    worst_case_study: Study, expert: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    study = worst_case_study
    order = study.assignments.get().order
    truth = dict(StudyItem.objects.filter(study=study).values_list("token", "truth"))
    arm = dict(StudyItem.objects.filter(study=study, arm__isnull=False).values_list("token", "arm__name"))
    port = free_port()
    env = site_env(DEBUG="0", SECRET_KEY=django_settings.SECRET_KEY, SECURE_SSL_REDIRECT="0")
    cookie = f"{django_settings.SESSION_COOKIE_NAME}={session_key_for(expert)}"
    server = start_gunicorn(env, port=port, log_path=tmp_path / "gunicorn.log", cwd=REPO, workers=1)
    best = {token: float("inf") for token in order}
    try:
        wait_for_port(port, process=server)
        _fetch(port, "/healthz", cookie)  # the worker's first request loads everything else
        rng = np.random.default_rng(11)
        lengths = set()
        for _ in range(ROUNDS):
            for token in rng.permutation(order):
                elapsed, status, length = _fetch(port, f"/i/{token}", cookie)
                assert status == 200, (status, (tmp_path / "gunicorn.log").read_text()[-2000:])
                lengths.add(length)
                best[token] = min(best[token], elapsed)
    finally:
        server.terminate()
        server.wait(timeout=20)
    assert len(lengths) == 1  # every image the same length
    times = np.array([best[t] for t in order])
    synthetic = np.array([truth[t] == Source.SYNTHETIC for t in order])
    auc, p = timing_auc(times, synthetic, PERMUTATIONS)
    real_ms, synthetic_ms = np.median(times[~synthetic]) * 1e3, np.median(times[synthetic]) * 1e3
    figure = (
        f"timing channel on {connection.vendor}: {len(order)} items x {ROUNDS} fetches, min per item; "
        f"median real {real_ms:.3f} ms, synthetic {synthetic_ms:.3f} ms; AUC {auc:.3f}, permutation p {p:.3f}"
    )
    # The arms: can the time tell one generator's patches from the other's?
    in_arms = [t for t in order if t in arm]
    arm_times = np.array([best[t] for t in in_arms])
    arm_auc, arm_p = timing_auc(arm_times, np.array([arm[t] == "flat" for t in in_arms]), PERMUTATIONS)
    figure += f"; arm flat vs arm textured: AUC {arm_auc:.3f}, permutation p {arm_p:.3f}"
    with capsys.disabled():
        print(f"\n{figure}")
    # Two-sided, at 1 in 1,000: a real channel (AUC 0.99 before the fix) gives p near 1/20,001.
    assert p > 0.001, figure
    assert arm_p > 0.001, figure
