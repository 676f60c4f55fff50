"""Search structured logs for secret values, in every encoding a careless log line might use.

Shared by the in-process test (tests/integration/test_log_secrets.py, which records every
nonce the protocols draw) and the real-process one (tests/cluster/test_log_secrets_cluster.py,
which reads the secrets back from the nodes' stores).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from mpcnode.logs import LINE_KEYS

MIN_INT = 2**64
"""Smaller integers (party indices, counts) are not secrets worth searching for: their decimal
digits are everywhere."""
MIN_BYTES = 12
PREFIX_HEX = 16
"""Hex prefixes this long are searched too, to catch truncated prints."""


def _b64(data: bytes) -> list[str]:
    return [
        base64.b64encode(data).decode().rstrip("="),
        base64.urlsafe_b64encode(data).decode().rstrip("="),
    ]


def _repr_needle(data: bytes) -> set[str]:
    """The start of repr(data) when it is mostly escapes (bytes logged with %s or %r)."""
    body = repr(data)[2:-1]
    return {body[:24]} if body.count("\\x") >= 4 else set()


def int_encodings(value: int) -> tuple[list[str], list[str]]:
    """(case-insensitive needles, case-sensitive needles) for one secret integer."""
    size = max(32, (value.bit_length() + 7) // 8)
    minimal = (value.bit_length() + 7) // 8
    be = value.to_bytes(size, "big")
    le = value.to_bytes(size, "little")
    be_min = value.to_bytes(minimal, "big")
    le_min = value.to_bytes(minimal, "little")
    decimal = str(value)
    hexes = {format(value, "x"), be.hex(), le.hex(), le_min.hex()}
    folded = {decimal, decimal[:20], *hexes, *(h[:PREFIX_HEX] for h in hexes)}
    exact = {s for b in {be, le, be_min, le_min} for s in _b64(b)}
    exact |= _repr_needle(be) | _repr_needle(le)
    return sorted(folded), sorted(exact)


def bytes_encodings(data: bytes) -> tuple[list[str], list[str]]:
    """(case-insensitive needles, case-sensitive needles) for one secret byte string."""
    folded = {data.hex(), data.hex()[:PREFIX_HEX]}
    if len(data) <= 64:
        for order in ("big", "little"):
            number = int.from_bytes(data, order)
            if number >= MIN_INT:
                folded.add(str(number))
    exact = set(_b64(data)) | _repr_needle(data)
    return sorted(folded), sorted(exact)


@dataclass
class Secrets:
    """Named secret values and the needles that would betray them."""

    folded: dict[str, str] = field(default_factory=dict)
    """lower-case needle -> what it is"""
    exact: dict[str, str] = field(default_factory=dict)
    values: dict[str, list[Any]] = field(default_factory=dict)
    """what -> the values themselves (for the tests' sanity checks)"""

    def add_int(self, value: int, what: str) -> None:
        if value < MIN_INT:
            return
        self.values.setdefault(what, []).append(value)
        folded, exact = int_encodings(value)
        for needle in folded:
            self.folded.setdefault(needle.lower(), what)
        for needle in exact:
            self.exact.setdefault(needle, what)

    def add_bytes(self, value: bytes, what: str) -> None:
        if len(value) < MIN_BYTES:
            return
        self.values.setdefault(what, []).append(value)
        folded, exact = bytes_encodings(bytes(value))
        for needle in folded:
            self.folded.setdefault(needle.lower(), what)
        for needle in exact:
            self.exact.setdefault(needle, what)

    def add(self, value: Any, what: str) -> None:
        if isinstance(value, bool):
            return
        if isinstance(value, int):
            self.add_int(value, what)
        elif isinstance(value, (bytes, bytearray)):
            self.add_bytes(bytes(value), what)

    def __len__(self) -> int:
        return len(self.folded) + len(self.exact)

    def find(self, lines: Sequence[str]) -> list[tuple[str, str]]:
        """(what, needle) for every needle found in the lines (raw JSON and decoded values)."""
        texts = list(lines)
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if isinstance(doc, dict):  # the decoded strings too: JSON escapes hide repr bytes
                texts.extend(str(v) for v in doc.values() if isinstance(v, str))
        text = "\n".join(texts)
        lowered = text.lower()
        hits = [(what, n) for n, what in self.folded.items() if n in lowered]
        hits += [(what, n) for n, what in self.exact.items() if n in text]
        return hits


def parse_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Every line as its JSON object; fails on a line that is not one with every key."""
    docs = []
    for line in lines:
        doc = json.loads(line)
        assert isinstance(doc, dict), line
        missing = [k for k in LINE_KEYS if k not in doc]
        assert not missing, f"line without {missing}: {line}"
        docs.append(doc)
    return docs
