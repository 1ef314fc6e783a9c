"""Signals the gan app sends for the apps above it, which it never imports."""

from __future__ import annotations

from django.dispatch import Signal

# Sent by the sampling task once every image of a sampling run is stored; keyword argument: run.
sampling_finished = Signal()
# Sent once a dataset's import has stored its patches (a synthetic set's too); keyword argument: dataset.
dataset_imported = Signal()
