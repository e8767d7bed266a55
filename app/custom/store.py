"""Users' own networks on disk, under their content hash only, bounded in
bytes with the least recently used evicted first; so an upload analysed once
costs nothing the next time and its address can be shared.

An ONNX upload is kept as its graph without the weights' values (the shapes
are what the analysis needs: kilobytes for a 300 MB file), a Sequential as its
text. Files are written whole to a temporary name and renamed (a reader never
sees half a file); the last-used time is the file's mtime, touched on each use.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import onnx

from models.catalog import ModelEntry
from models.custom import ONNX_PREFIX, SEQUENTIAL_PREFIX, onnx_entry_from_bytes, sequential_entry
from models.onnx_graph import OnnxError
from models.registry import register_resolver
from models.sequential import SequentialError

log = logging.getLogger("convzoo.custom")
_ID_CHARS = set("0123456789abcdef")


def _valid_id(model_id: str) -> bool:
    prefix = ONNX_PREFIX if model_id.startswith(ONNX_PREFIX) else SEQUENTIAL_PREFIX
    digest = model_id.removeprefix(prefix)
    return model_id.startswith(prefix) and len(digest) == 16 and set(digest) <= _ID_CHARS


class CustomStore:
    """``put_*`` keeps an entry, ``entry(id)`` finds it again (None when absent or evicted)."""

    def __init__(self, directory: Path, max_bytes: int, on_evict: Callable[[str], None] | None = None,
                 memory_items: int = 32, memory_bytes: int = 32 * 1024 * 1024) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.on_evict = on_evict
        self._lock = threading.Lock()
        # Entries in memory, least recently used first, with the bytes their graph or text holds: bounded
        # in count and in bytes (a graph of 100,000 nodes is megabytes even without its weights).
        self._entries: OrderedDict[str, tuple[ModelEntry, int]] = OrderedDict()
        self._memory_items = memory_items
        self._memory_bytes = memory_bytes
        self._last_use_ns = 0

    def _touch(self, path: Path) -> None:
        """Mark ``path`` used now. Times are set explicitly and strictly increase: the file
        system's own clock ticks in milliseconds, too coarse to order uses close together."""
        self._last_use_ns = max(time.time_ns(), self._last_use_ns + 1)
        os.utime(path, ns=(self._last_use_ns, self._last_use_ns))

    def _files(self, model_id: str) -> list[Path]:
        return [self.directory / f"{model_id}.json", self.directory / f"{model_id}.onnx"]

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_suffix(f".{threading.get_ident()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def _remember(self, entry: ModelEntry, size: int) -> ModelEntry:
        """Keep ``entry`` (whose builder holds ``size`` bytes of graph or text) in memory, evicting the least
        recently used past ``memory_items`` or ``memory_bytes`` (the newest always stays); the disk has all."""
        self._entries[entry.id] = (entry, size)
        self._entries.move_to_end(entry.id)
        while len(self._entries) > 1 and (len(self._entries) > self._memory_items
                                          or self.memory_bytes_held() > self._memory_bytes):
            self._entries.popitem(last=False)
        return entry

    def memory_bytes_held(self) -> int:
        """Bytes of graphs and texts the in-memory entries hold (their serialised size)."""
        return sum(size for _, size in self._entries.values())

    def put_onnx(self, entry: ModelEntry, model: onnx.ModelProto, resolution: int | None,
                 filename: str | None = None) -> None:
        """``model``: the graph stripped of its weights' values (models.onnx_graph.strip_weights);
        ``resolution``: the one its id was made with (models.custom.onnx_id), None for a fixed graph."""
        with self._lock:
            graph = model.SerializeToString()
            self._write(self.directory / f"{entry.id}.onnx", graph)
            self._write(self.directory / f"{entry.id}.json",
                        json.dumps({"kind": "onnx", "resolution": resolution, "filename": filename}).encode())
            self._touch(self.directory / f"{entry.id}.json")
            self._remember(entry, len(graph))
            self._evict(keep=entry.id)

    def put_sequential(self, entry: ModelEntry, code: str) -> None:
        with self._lock:
            self._write(self.directory / f"{entry.id}.json",
                        json.dumps({"kind": "sequential", "code": code, "input": list(entry.input_size)}).encode())
            self._touch(self.directory / f"{entry.id}.json")
            self._remember(entry, len(code.encode()))
            self._evict(keep=entry.id)

    def entry(self, model_id: str) -> ModelEntry | None:
        if not _valid_id(model_id):
            return None
        with self._lock:
            meta_path = self.directory / f"{model_id}.json"
            try:
                self._touch(meta_path)  # used now: last in line for eviction
                if model_id in self._entries:
                    self._entries.move_to_end(model_id)
                    return self._entries[model_id][0]
                meta = json.loads(meta_path.read_text())
                if meta["kind"] == "onnx":
                    data = (self.directory / f"{model_id}.onnx").read_bytes()
                    entry = onnx_entry_from_bytes(model_id, data, meta.get("resolution"), meta.get("filename"))
                    size = len(data)
                else:
                    entry = sequential_entry(model_id, meta["code"], tuple(meta["input"]))
                    size = len(meta["code"].encode())
            except FileNotFoundError:
                return None
            except (OnnxError, SequentialError, ValueError, KeyError, TypeError):
                log.warning("Ignoring unreadable stored model %s", model_id)
                return None
            return self._remember(entry, size)

    def stored_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.directory.iterdir() if p.suffix in (".json", ".onnx"))

    def _evict(self, keep: str) -> None:
        """Least recently used first, until the store fits ``max_bytes`` (the newest always stays)."""
        metas = sorted(self.directory.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
        total = self.stored_bytes()
        for meta in metas:
            if total <= self.max_bytes:
                break
            model_id = meta.stem
            if model_id == keep:
                continue
            for path in self._files(model_id):
                if path.exists():
                    total -= path.stat().st_size
                    path.unlink()
            self._entries.pop(model_id, None)
            if self.on_evict is not None:
                self.on_evict(model_id)
            log.info("Evicted %s from the store of own networks", model_id)

    def install(self) -> None:
        """Make stored ids resolvable wherever a zoo id is (models.registry)."""
        register_resolver(ONNX_PREFIX, self.entry)
        register_resolver(SEQUENTIAL_PREFIX, self.entry)
