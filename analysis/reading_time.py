"""Time per item: how long readers looked at patches, and whether quick answers were worse. No Django.

The time is what the reading page measured (visible, focused, not idle: `analysis.timing`). Answers
quicker than the study's threshold are flagged "too fast" and counted here; they stay in every analysis
(a flag is a fact for the reader of the report, not a rule that drops data after the fact).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from analysis.stats import Proportion, Record, proportion_summary


@dataclass(frozen=True)
class ReaderTime:
    reader: str
    timed: int  # answers with a measured time
    median_s: float | None
    too_fast: int


@dataclass
class ReadingTime:
    too_fast_ms: int
    readers: list[ReaderTime]
    untimed: int  # answers without a measured time
    # Accuracy by quarter of the visible time (pooled over readers): (from s, to s, accuracy)
    by_quarter: list[tuple[float, float, Proportion]] = field(default_factory=list)

    @property
    def too_fast(self) -> int:
        return sum(r.too_fast for r in self.readers)


def reading_time(records: Sequence[Record], too_fast_ms: int) -> ReadingTime:
    by_reader: dict[str, list[int]] = defaultdict(list)
    for r in records:
        by_reader.setdefault(r.reader, [])
        if r.visible_ms is not None:
            by_reader[r.reader].append(r.visible_ms)
    readers = [
        ReaderTime(
            reader,
            len(times),
            float(np.median(times)) / 1000 if times else None,
            sum(t < too_fast_ms for t in times),
        )
        for reader, times in sorted(by_reader.items())
    ]
    timed = [r for r in records if r.visible_ms is not None]
    result = ReadingTime(too_fast_ms, readers, len(records) - len(timed))
    if len(timed) >= 8:
        edges = np.quantile([r.visible_ms for r in timed], [0, 0.25, 0.5, 0.75, 1.0])
        for k in range(4):
            low, high = edges[k], edges[k + 1]
            inside = [r for r in timed if low <= r.visible_ms <= high and (k == 3 or r.visible_ms < high)]
            result.by_quarter.append(
                (
                    float(low) / 1000,
                    float(high) / 1000,
                    proportion_summary(sum(r.correct for r in inside), len(inside)),
                )
            )
    return result
