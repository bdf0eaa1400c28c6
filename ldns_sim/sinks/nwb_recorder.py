"""Crash-safe NWB recording: a journal during the session, one NWB file at the end.

``NwbRecorder(path)`` appends to ``path + ".partial/"`` from a background thread
(``nwb_journal``) and, on ``close()``, converts the journal to ``path`` (``nwb_writer``) and
deletes it. A process killed mid-session leaves the journal behind; ``recover_session``
turns it into a valid NWB file holding everything up to the last sync (at most
``sync_interval_s`` plus whatever was still queued is lost).

Latency budget on the engine thread: one ``queue.put_nowait`` per call (about a
microsecond). When the queue is full (the disk stalled for ``max_queue`` items) the item
is dropped, counted in ``n_dropped`` and written to the file's notes, never waited for.
"""

from __future__ import annotations

import datetime as dt
import logging
import queue
import shutil
import threading
import time
from pathlib import Path

from ldns_sim.core import Chunk, StreamMeta, Telemetry
from ldns_sim.errors import SinkError
from ldns_sim.sinks.base import Sink
from ldns_sim.sinks.nwb_journal import JournalWriter, read_journal
from ldns_sim.sinks.nwb_writer import SessionInfo, write_nwb

log = logging.getLogger(__name__)

_STOP = object()


def journal_path(path: Path | str) -> Path:
    """The journal directory of the NWB file ``path``: ``path + ".partial"``."""
    path = Path(path)
    return path.with_name(path.name + ".partial")


class NwbRecorder(Sink):
    """Records one session to an NWB file, crash-safe.

    Parameters
    ----------
    path
        The ``.nwb`` file to write at ``close()``.
    session
        Session metadata the stream does not carry (subject, experimenter, ...).
    overwrite
        Replace an existing ``path`` (a leftover journal is never overwritten).
    sync_interval_s
        Flush and fsync the journal at least this often (seconds).
    max_queue
        Items (chunks, markers, telemetry) waiting for the writer thread before drops.
    """

    name = "nwb"

    def __init__(self, path: Path | str, session: SessionInfo | None = None,
                 overwrite: bool = False, sync_interval_s: float = 0.5,
                 max_queue: int = 10_000) -> None:
        self.path = Path(path)
        self.session = session or SessionInfo()
        self.overwrite = overwrite
        self.sync_interval_s = sync_interval_s
        self.n_dropped = 0
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._journal: JournalWriter | None = None
        self._error: BaseException | None = None

    def __repr__(self) -> str:
        state = "RECORDING" if self._thread is not None else "CLOSED"
        return f"<NwbRecorder | {state} | {self.path} | dropped {self.n_dropped}>"

    def open(self, meta: StreamMeta) -> NwbRecorder:
        if self.path.exists() and not self.overwrite:
            raise SinkError(f"{self.path} exists; choose another --record file or overwrite")
        if not self.path.parent.is_dir():
            raise SinkError(f"{self.path}: directory {self.path.parent} does not exist")
        extra = {"opened_at_utc": dt.datetime.now(dt.timezone.utc).isoformat(),
                 "opened_at_monotonic_s": time.monotonic(),
                 "nwb_path": str(self.path)}
        self._journal = JournalWriter(journal_path(self.path), meta, extra)
        self._thread = threading.Thread(target=self._run, name="nwb-journal", daemon=True)
        self._thread.start()
        log.info("recording to %s (journal %s)", self.path, journal_path(self.path))
        return self

    def _put(self, kind: str, item) -> None:
        if self._thread is None:
            return
        try:
            self._queue.put_nowait((kind, item))
        except queue.Full:
            self.n_dropped += 1
            if self.n_dropped in (1, 100) or self.n_dropped % 10_000 == 0:
                log.warning("NWB recorder %s cannot keep up: %d items dropped", self.path,
                            self.n_dropped)

    def write_chunk(self, chunk: Chunk) -> None:
        if chunk.bin_end_s is None or chunk.bin_end_monotonic_s is None:
            raise SinkError(f"chunk {chunk.seq} reached the NWB recorder without timestamps")
        self._put("chunk", chunk)

    def write_marker(self, text: str, timestamp_s: float) -> None:
        self._put("marker", (text, float(timestamp_s)))

    def write_telemetry(self, telemetry: Telemetry) -> None:
        self._put("telemetry", telemetry)

    def _run(self) -> None:
        journal = self._journal
        last_sync = time.monotonic()
        written_drops = 0
        try:
            while True:
                wait_s = max(last_sync + self.sync_interval_s - time.monotonic(), 0.0)
                try:
                    item = self._queue.get(timeout=wait_s) if wait_s else self._queue.get_nowait()
                except queue.Empty:
                    item = None
                if item is _STOP:
                    break
                if item is not None:
                    kind, payload = item
                    if kind == "chunk":
                        journal.append_chunk(payload)
                    elif kind == "marker":
                        journal.append_marker(*payload)
                    else:
                        journal.append_telemetry(payload)
                if self.n_dropped > written_drops:
                    journal.append_dropped(self.n_dropped - written_drops)
                    written_drops = self.n_dropped
                if time.monotonic() - last_sync >= self.sync_interval_s:
                    journal.sync()
                    last_sync = time.monotonic()
        except BaseException as err:  # reported by close(); the engine must not die here
            self._error = err
            log.error("NWB journal writer failed: %s", err)
        finally:
            journal.close()

    def close(self) -> None:
        """Stop the writer, convert the journal to the NWB file, delete the journal."""
        if self._thread is None:
            return
        self._queue.put(_STOP)  # blocks only if the queue is full: close may wait, not drop
        self._thread.join()
        self._thread = None
        if self._error is not None:
            raise SinkError(f"recording {self.path} failed: {self._error}; the journal "
                            f"{journal_path(self.path)} can be recovered") from self._error
        t = time.monotonic()
        recover_session(journal_path(self.path), self.path, self.session, recovered=False)
        log.info("wrote %s in %.2f s", self.path, time.monotonic() - t)


def recover_session(partial_dir: Path | str, out_path: Path | str | None = None,
                    session: SessionInfo | None = None, recovered: bool = True) -> Path:
    """Turn a session journal into an NWB file and delete the journal.

    Works on a journal left by a killed process: a torn last record, or data written
    after the last index line, is dropped.

    Parameters
    ----------
    partial_dir
        The ``FILE.nwb.partial`` directory.
    out_path
        Where to write; default: ``partial_dir`` without ``.partial``.
    session
        Session metadata for the file; default ``SessionInfo()``.
    recovered
        Marks the file's notes ``recovered_after_crash``.

    Returns
    -------
    Path
        The NWB file written.
    """
    partial_dir = Path(partial_dir)
    if out_path is None:
        if partial_dir.suffix != ".partial":
            raise SinkError(f"{partial_dir}: expected a *.partial journal directory")
        out_path = partial_dir.with_suffix("")
    contents = read_journal(partial_dir)
    if contents.truncated:
        log.warning("%s: the journal ends in a torn record (a crash); keeping %d bins",
                    partial_dir, contents.n_bins)
    written = write_nwb(contents, Path(out_path), session or SessionInfo(), recovered)
    del contents  # release the memory maps before deleting their files
    shutil.rmtree(partial_dir)
    return written
