"""The crash-safe session journal behind the NWB recorder: raw appends + a JSON-lines index.

Layout of ``SESSION.nwb.partial/``::

    meta.json        StreamMeta, recorder options, wall-clock and monotonic time at open
    counts.bin       int16   (n_bins, n_neurons)  C-order little-endian rows, appended
    rates.bin        float32 (n_bins, n_neurons)
    latents.bin      float32 (n_bins, n_latents)
    condition.bin    float32 (n_bins, n_condition)
    bin_end.bin      float64 (n_bins, 2)          bin end on the LSL clock, on time.monotonic()
    index.jsonl      one JSON object per record: {"kind": "chunk", "seq", "first_bin",
                     "n_bins"} | {"kind": "marker", "text", "t"} | {"kind": "telemetry", ...}
                     | {"kind": "dropped", "n"}

Writes go data first, index second, and both are flushed and fsync'd every
``sync_interval_s``. A reader trusts only index lines that parse and whose rows are all
present in every ``.bin`` file, so a journal cut anywhere (``kill -9``, power loss) reads
back as a clean prefix of the session.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ldns_sim.core import Chunk, StreamMeta, Telemetry
from ldns_sim.errors import SinkError
from ldns_sim.sinks.wire import meta_dict, meta_from_dict

log = logging.getLogger(__name__)

JOURNAL_VERSION = 1
ARRAYS = ("counts", "rates", "latents", "condition", "bin_end")
_DTYPES = {"counts": "<i2", "rates": "<f4", "latents": "<f4", "condition": "<f4",
           "bin_end": "<f8"}


def _widths(meta: StreamMeta) -> dict[str, int]:
    return {"counts": meta.n_neurons, "rates": meta.n_neurons, "latents": meta.n_latents,
            "condition": len(meta.condition_names), "bin_end": 2}


class JournalWriter:
    """Appends one session to a journal directory; used from one thread only.

    Parameters
    ----------
    directory
        The journal directory; must not exist yet.
    meta
        The stream's metadata, written to ``meta.json`` at once.
    extra
        JSON-ready recorder options and clock anchors stored next to the metadata.
    """

    def __init__(self, directory: Path, meta: StreamMeta, extra: dict) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=False, exist_ok=False)
        except FileExistsError as err:
            raise SinkError(f"{self.directory} exists: a journal from an earlier session; "
                            "recover it with `recover_session` or remove it") from err
        except OSError as err:
            raise SinkError(f"cannot create journal {self.directory}: {err}") from err
        self.meta = meta
        doc = {"journal_version": JOURNAL_VERSION, "meta": meta_dict(meta), **extra}
        with open(self.directory / "meta.json", "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        self._files = {name: open(self.directory / f"{name}.bin", "ab") for name in ARRAYS}
        self._index = open(self.directory / "index.jsonl", "a")
        self._fsync_dir()

    def _fsync_dir(self) -> None:
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def append_chunk(self, chunk: Chunk) -> None:
        stamps = np.stack([chunk.bin_end_s, chunk.bin_end_monotonic_s], axis=1)
        arrays = {"counts": chunk.counts, "rates": chunk.rates_hz, "latents": chunk.latents,
                  "condition": chunk.condition, "bin_end": stamps}
        for name, data in arrays.items():
            self._files[name].write(np.ascontiguousarray(data, dtype=_DTYPES[name]).tobytes())
        self._line({"kind": "chunk", "seq": chunk.seq, "first_bin": chunk.first_bin,
                    "n_bins": chunk.n_bins})

    def append_marker(self, text: str, timestamp_s: float) -> None:
        self._line({"kind": "marker", "text": text, "t": timestamp_s})

    def append_telemetry(self, t: Telemetry) -> None:
        self._line({"kind": "telemetry", "seq": t.seq,
                    "generation_latency_s": t.generation_latency_s,
                    "queue_depth": t.queue_depth, "n_late_total": t.n_late_total,
                    "late": t.late, "emitted_at_s": t.emitted_at_s,
                    "condition_age_s": t.condition_age_s})

    def append_dropped(self, n: int) -> None:
        """Record that ``n`` items never reached the journal (the recorder's queue was full)."""
        self._line({"kind": "dropped", "n": n})

    def _line(self, record: dict) -> None:
        # NaN is not JSON: json.dumps writes it as NaN, which json.loads reads back.
        self._index.write(json.dumps(record) + "\n")

    def sync(self) -> None:
        """Flush and fsync: data files first, then the index that points into them."""
        for f in self._files.values():
            f.flush()
        self._index.flush()
        for f in self._files.values():
            os.fsync(f.fileno())
        os.fsync(self._index.fileno())

    def close(self) -> None:
        if self._index.closed:
            return
        self.sync()
        for f in self._files.values():
            f.close()
        self._index.close()


@dataclass(frozen=True)
class JournalContents:
    """A journal read back: the complete prefix of the session it holds.

    Arrays are read-only memory maps over the ``.bin`` files (nothing is loaded at once).
    """

    meta: StreamMeta
    extra: dict
    chunks: list[dict]
    """Index records of the chunks, in order (``seq``, ``first_bin``, ``n_bins``)."""
    counts: np.ndarray  # (n_bins, n_neurons) int16
    rates_hz: np.ndarray  # (n_bins, n_neurons) float32
    latents: np.ndarray  # (n_bins, n_latents) float32
    condition: np.ndarray  # (n_bins, n_condition) float32
    bin_end: np.ndarray  # (n_bins, 2) float64: LSL clock, monotonic clock
    markers: list[tuple[str, float]]
    telemetry: list[dict]
    n_dropped: int
    truncated: bool
    """True if a torn record or unindexed data was found at the end (a crash)."""

    @property
    def n_bins(self) -> int:
        return self.counts.shape[0]

    @property
    def bin_index(self) -> np.ndarray:
        """``(n_bins,)`` index of each recorded bin since the stream started."""
        if not self.chunks:
            return np.zeros(0, np.int64)
        return np.concatenate([c["first_bin"] + np.arange(c["n_bins"]) for c in self.chunks])


def _read_index(path: Path) -> tuple[list[dict], bool]:
    records, torn = [], False
    with open(path, "rb") as f:
        for raw in f:
            try:
                if not raw.endswith(b"\n"):
                    raise ValueError("line cut short")
                records.append(json.loads(raw))
            except ValueError:
                torn = True
                break  # nothing after a torn line is trusted
    return records, torn


def read_journal(directory: Path) -> JournalContents:
    """Read a journal written by :class:`JournalWriter`, finished or cut short by a crash.

    Raises
    ------
    SinkError
        If ``directory`` has no readable ``meta.json``, or is from another journal version.
    """
    directory = Path(directory)
    try:
        doc = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError) as err:
        raise SinkError(f"{directory}: not a readable ldns-sim journal ({err})") from err
    if doc.get("journal_version") != JOURNAL_VERSION:
        raise SinkError(f"{directory}/meta.json: journal_version "
                        f"{doc.get('journal_version')!r}, expected {JOURNAL_VERSION}")
    meta = meta_from_dict(doc.pop("meta"))
    widths = _widths(meta)
    records, torn = _read_index(directory / "index.jsonl")
    rows_on_disk = {}
    for name in ARRAYS:
        size = (directory / f"{name}.bin").stat().st_size
        row_bytes = np.dtype(_DTYPES[name]).itemsize * widths[name]
        rows_on_disk[name] = size // row_bytes if row_bytes else None
    available = min(n for n in rows_on_disk.values() if n is not None)
    chunks, markers, telemetry, n_dropped, n_bins = [], [], [], 0, 0
    for rec in records:
        kind = rec.get("kind")
        if kind == "chunk":
            if n_bins + rec["n_bins"] > available:
                torn = True
                break
            chunks.append(rec)
            n_bins += rec["n_bins"]
        elif kind == "marker":
            markers.append((rec["text"], float(rec["t"])))
        elif kind == "telemetry":
            telemetry.append(rec)
        elif kind == "dropped":
            n_dropped += int(rec["n"])
    torn = torn or any(n is not None and n > n_bins for n in rows_on_disk.values())
    arrays = {name: _map(directory / f"{name}.bin", _DTYPES[name], n_bins, widths[name])
              for name in ARRAYS}
    return JournalContents(meta=meta, extra=doc, chunks=chunks, counts=arrays["counts"],
                           rates_hz=arrays["rates"], latents=arrays["latents"],
                           condition=arrays["condition"], bin_end=arrays["bin_end"],
                           markers=markers, telemetry=telemetry, n_dropped=n_dropped,
                           truncated=torn)


def _map(path: Path, dtype: str, n_rows: int, width: int) -> np.ndarray:
    if n_rows == 0 or width == 0:
        return np.zeros((n_rows, width), dtype=dtype)
    return np.memmap(path, dtype=dtype, mode="r", shape=(n_rows, width))
