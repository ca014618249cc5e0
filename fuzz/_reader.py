"""Turns fuzz input bytes into decisions (shared by the atheris scripts and the hypothesis tests).

Independent of atheris (whose FuzzedDataProvider is not available where only the test extra is
installed): every read consumes bytes from the front and returns zeros once the input is used up,
so any byte string decodes to a valid plan and a longer input only adds to it.
"""

from __future__ import annotations


class Reader:
    """Sequential little-endian reads over fuzz input; zeros past the end."""

    def __init__(self, data: bytes) -> None:
        self.data = bytes(data)
        self.pos = 0

    @property
    def left(self) -> int:
        return max(0, len(self.data) - self.pos)

    def take(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk + bytes(n - len(chunk))

    def u8(self) -> int:
        return self.take(1)[0]

    def u16(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def u32(self) -> int:
        return int.from_bytes(self.take(4), "little")

    def u64(self) -> int:
        return int.from_bytes(self.take(8), "little")

    def below(self, n: int) -> int:
        """An int in [0, n) (n <= 65536)."""
        return (self.u16() if n > 256 else self.u8()) % n

    def pick(self, options):
        return options[self.below(len(options))]

    def flag(self) -> bool:
        return bool(self.u8() & 1)

    def rest(self) -> bytes:
        out = self.data[self.pos :]
        self.pos = len(self.data)
        return out
