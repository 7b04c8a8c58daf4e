"""Worker side of the two-pools example: a word index that the threads of one worker share."""

from __future__ import annotations

import threading

from snakepit_trio.worker import Adapter, tool


class Index(Adapter):
    """Documents by word. Its tools run in several threads of one worker at once, so a lock
    guards the index, and the class says so."""

    thread_safe = True

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

    @tool(exclusive=True, description="Drop words found in one document only")
    def prune(self) -> int:
        # exclusive: never two prunes at once (other tools still run beside it).
        with self._lock:
            rare = [word for word, docs in self.words.items() if len(docs) < 2]
            for word in rare:
                del self.words[word]
            return len(rare)
