"""Worker side of the two-pools example: a word index that the threads of one worker share."""

from __future__ import annotations

import threading

from snakepit_trio.worker import Adapter, tool


class Index(Adapter):
    """Documents by word. Its tools run in several threads of one worker at once, so a lock
    guards the index."""

    async def initialize(self) -> None:
        self._lock = threading.Lock()
        self.words: dict[str, set[str]] = {}

    @tool(description="Index a document's words; returns how many words are indexed")
    def add(self, doc_id: str, text: str) -> int:
        words = {w.strip(".,!?").lower() for w in text.split()}
        with self._lock:
            for word in words:
                self.words.setdefault(word, set()).add(doc_id)
            return len(self.words)

    @tool(description="The documents that contain a word")
    def search(self, word: str) -> list[str]:
        with self._lock:
            return sorted(self.words.get(word.lower(), ()))
