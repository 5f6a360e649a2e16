"""The gateway's index of national document ids: which of our documents a national id names.

The national axis answers a document with the DocumentId it knows (often not our canonical
id, and one id shared by a document and its update, replacement and revocation); a status
imported later finds our id here (schemas.edxml.import_status's ``index``). One JSON line per
imported document, appended and fsync'd; shared by `edxml import` and the drop-folder gateway
of one home, and read again when another process has appended since.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from schemas.document import OfficialDocument
from schemas.edxml import NationalIndex


class NationalIds:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._index: dict[str, list[tuple[str, str]]] = {}
        self._read_size = -1

    def index(self) -> NationalIndex:
        """national id -> [(our document id, its sender)], in the order imported."""
        size = self.path.stat().st_size if self.path.exists() else 0
        if size != self._read_size:
            self._index = _load(self.path)
            self._read_size = size
        return self._index

    def remember(self, document: OfficialDocument) -> None:
        """Record a document imported from edXML under the national id it came with."""
        national = document.national.document_id if document.national else None
        if not national:
            return
        pair = (document.document_id, document.sender.code)
        if pair in self.index().get(national, []):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(
            {"national": national, "ours": pair[0], "sender": pair[1]}, ensure_ascii=False
        )
        with open(self.path, "ab+") as f:
            prefix = b""
            if f.tell() > 0:  # a line torn by a crash must not swallow ours
                f.seek(-1, os.SEEK_END)
                prefix = b"" if f.read(1) == b"\n" else b"\n"
            f.write(prefix + line.encode("utf-8") + b"\n")
            f.flush()
            os.fsync(f.fileno())
        self._index.setdefault(national, []).append(pair)
        self._read_size = self.path.stat().st_size


def _load(path: Path) -> dict[str, list[tuple[str, str]]]:
    index: dict[str, list[tuple[str, str]]] = {}
    if not path.exists():
        return index
    for line in path.read_text("utf-8").splitlines():
        try:
            row = json.loads(line)
            national, pair = str(row["national"]), (str(row["ours"]), str(row["sender"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # torn by a crash: that import is recorded again when it is redone
        if pair not in index.setdefault(national, []):
            index[national].append(pair)
    return index
