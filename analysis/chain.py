"""The hash chain of a study's record, with no Django: the rule an archive is checked by offline.

An entry's hash is SHA-256 of the hash before it (64 zeros for a chain's first entry), a newline and
its content as canonical JSON (keys sorted, no spaces, ASCII). A chain's head is its last hash; the
record's head is SHA-256 of the canonical JSON of every chain's [name, length, head], sorted by name.
Anyone can recompute both from an archive's `record.jsonl` with this module or twenty lines elsewhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64


def canonical(content: Any) -> str:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def entry_hash(prev: str, content: Any) -> str:
    return hashlib.sha256(f"{prev}\n{canonical(content)}".encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    chain: str
    seq: int
    kind: str
    content: Mapping[str, Any]
    prev: str
    hash: str


def chain_problems(entries: Iterable[Entry]) -> tuple[list[str], dict[str, tuple[int, str]]]:
    """Every break in the chains (a hash that is not its content's, a link to the wrong entry, a gap),
    and each chain's (length, head) as the entries give them."""
    problems: list[str] = []
    heads: dict[str, tuple[int, str]] = {}
    for entry in sorted(entries, key=lambda e: (e.chain, e.seq)):
        length, head = heads.get(entry.chain, (0, GENESIS))
        where = f"record entry {entry.seq} of chain {entry.chain!r}"
        if entry.seq != length:
            problems.append(f"{where}: entries {length} to {entry.seq - 1} are missing")
        if entry.prev != head:
            problems.append(f"{where} does not follow the entry before it")
        if entry_hash(entry.prev, entry.content) != entry.hash:
            problems.append(f"{where}: its content no longer matches its hash")
        heads[entry.chain] = (entry.seq + 1, entry.hash)
    return problems, heads


def record_head(heads: Mapping[str, tuple[int, str]]) -> str:
    """The record's head: one hash over every chain's length and head (empty record: the genesis)."""
    if not heads:
        return GENESIS
    rows = [[name, length, head] for name, (length, head) in sorted(heads.items())]
    return hashlib.sha256(canonical(rows).encode()).hexdigest()


def _identity(entry: Entry) -> tuple[str, str]:
    """What an entry is the state of: an event, an answer, or a reader's profile."""
    if entry.kind == "event":
        return "event", str(entry.content.get("event"))
    if entry.kind == "answer":
        return "answer", str(entry.content.get("answer"))
    return entry.kind, entry.chain


def latest_states(entries: Iterable[Entry]) -> dict[tuple[str, str], Mapping[str, Any]]:
    """Each recorded thing's last recorded state (a later entry of an answer supersedes the earlier)."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for entry in sorted(entries, key=lambda e: (e.chain, e.seq)):
        latest[_identity(entry)] = entry.content
    return latest


def _name(key: tuple[str, str], state: Mapping[str, Any]) -> str:
    kind, ident = key
    if kind == "answer":
        return f"answer {ident} (patch {int(state.get('position', -1)) + 1}, read {state.get('read')})"
    if kind == "event":
        return f"event {ident} ({state.get('kind')})"
    return f"the {kind} of {ident}"


def state_differences(
    latest: Mapping[tuple[str, str], Mapping[str, Any]], current: Mapping[tuple[str, str], Mapping[str, Any]]
) -> list[str]:
    """Each difference between the record's last states and the rows as they are, field by field."""
    out = []
    for key in sorted(set(latest) | set(current), key=lambda k: (k[0], k[1].zfill(12))):
        then, now = latest.get(key), current.get(key)
        if now is None and then is not None:
            out.append(f"{_name(key, then)} is in the record but was deleted")
        elif then is None and now is not None:
            out.append(
                f"{_name(key, now)} is not in the record: it was written behind the application's back"
            )
        elif then is not None and now is not None:
            for field in sorted(set(then) | set(now)):
                if then.get(field) != now.get(field):
                    was, now_is = then.get(field), now.get(field)
                    out.append(f"{_name(key, then)}'s {field}: {was!r} in the record, {now_is!r} now")
    return out
