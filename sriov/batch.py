"""Batch: many frames in one contiguous byte buffer, with offsets, lengths and arrival times.

The shape every datapath kernel takes (numpy arrays, pcap reads and traffic generators all
produce it without copies). Frames are Ethernet frames as a capture shows them: destination
MAC first, no preamble, no FCS.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from sriov.errors import ConfigError


def require_arrays(*checks: tuple[str, object, type]) -> None:
    """Raise ConfigError unless each ``(name, array, dtype)`` is a C-contiguous 1-D numpy array of dtype."""
    for name, arr, dtype in checks:
        if (
            not isinstance(arr, np.ndarray)
            or arr.dtype != dtype
            or arr.ndim != 1
            or not arr.flags.c_contiguous
        ):
            raise ConfigError(f"{name} must be a C-contiguous 1-D numpy {np.dtype(dtype).name} array")


def _int_timestamps(timestamps_ns: Sequence[int] | np.ndarray | None) -> np.ndarray | None:
    """Timestamps as int64, or ConfigError: a float (1.7) would be truncated, a bool is no time."""
    if timestamps_ns is None:
        return None
    bad = ConfigError(f"timestamps_ns must be ints (nanoseconds, int64), got {timestamps_ns!r}")
    if isinstance(timestamps_ns, np.ndarray):
        if timestamps_ns.dtype.kind not in "iu":
            raise bad
        values = timestamps_ns
    else:
        try:
            values = list(timestamps_ns)
        except TypeError:
            raise bad from None
        if any(isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) for v in values):
            raise bad
    try:
        return np.array(values, dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise bad from None


class Batch:
    """Frames in one buffer: ``data`` uint8, ``offsets`` int64, ``lengths`` uint32, ``timestamps_ns`` int64.

    Frame ``i`` is ``data[offsets[i] : offsets[i] + lengths[i]]``. Slicing gives a view (with a
    step: copies of the offsets, lengths and timestamps over the same bytes); iterating yields
    zero-copy ``memoryview`` objects of the frames.
    """

    __slots__ = ("data", "lengths", "offsets", "timestamps_ns")

    def __init__(
        self,
        data: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        timestamps_ns: np.ndarray | None = None,
        *,
        validate: bool = True,
    ) -> None:
        self.data = data
        self.offsets = offsets
        self.lengths = lengths
        self.timestamps_ns = (
            timestamps_ns if timestamps_ns is not None else np.zeros(len(offsets), dtype=np.int64)
        )
        if validate:
            self._validate()

    def check_arrays(self) -> None:
        """The cheap part of the validation (no pass over the frames), for the datapath entries: the
        four attributes are still arrays of the right dtypes and shapes (a caller may have replaced
        one since the batch was made). The kernels check every frame's bounds themselves."""
        require_arrays(
            ("Batch.data", self.data, np.uint8),
            ("Batch.offsets", self.offsets, np.int64),
            ("Batch.lengths", self.lengths, np.uint32),
            ("Batch.timestamps_ns", self.timestamps_ns, np.int64),
        )
        n = len(self.offsets)
        if len(self.lengths) != n or len(self.timestamps_ns) != n:
            raise ConfigError(
                f"Batch arrays disagree: {n} offsets, {len(self.lengths)} lengths, "
                f"{len(self.timestamps_ns)} timestamps"
            )

    def _validate(self) -> None:
        self.check_arrays()
        n = len(self.offsets)
        if n:
            if int(self.offsets.min()) < 0:
                raise ConfigError("Batch.offsets must be >= 0")
            # compared as room left after the offset: offset + length could wrap round int64
            room = len(self.data) - np.minimum(self.offsets, len(self.data))
            past = (self.offsets > len(self.data)) | (self.lengths.astype(np.int64) > room)
            if past.any():
                bad = int(np.argmax(past))
                end = int(self.offsets[bad]) + int(self.lengths[bad])
                raise ConfigError(f"frame {bad} ends at byte {end}, past the {len(self.data)}-byte buffer")

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_frames(
        cls, frames: Iterable[bytes | bytearray | memoryview], timestamps_ns: Sequence[int] | None = None
    ) -> Batch:
        """Copy a sequence of frames into one buffer."""
        try:
            items = list(frames)
        except TypeError:
            raise ConfigError(f"from_frames() takes a sequence of frames (bytes), got {frames!r}") from None
        for i, f in enumerate(items):
            # bytes(7) would be seven zero bytes and bytes("ab") needs an encoding: say what is wrong
            if not isinstance(f, (bytes, bytearray, memoryview, np.ndarray)):
                raise ConfigError(f"frame {i} must be bytes, bytearray or memoryview, got {type(f).__name__}")
            if isinstance(f, np.ndarray) and (f.dtype != np.uint8 or f.ndim != 1):
                # bytes(f) of int32 data would be its memory, four bytes per element
                raise ConfigError(f"frame {i}: an array frame must be 1-D uint8, got {f.ndim}-D {f.dtype}")
        frame_list = [bytes(f) for f in items]
        lengths = np.fromiter((len(f) for f in frame_list), dtype=np.uint32, count=len(frame_list))
        offsets = np.zeros(len(frame_list), dtype=np.int64)
        if len(frame_list) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        data = np.frombuffer(b"".join(frame_list), dtype=np.uint8).copy()
        return cls(data, offsets, lengths, _int_timestamps(timestamps_ns))

    @classmethod
    def from_arrays(
        cls,
        data: np.ndarray,
        offsets: np.ndarray,
        lengths: np.ndarray,
        timestamps_ns: np.ndarray | None = None,
    ) -> Batch:
        """Wrap existing arrays without copying (they must already have the right dtypes)."""
        return cls(data, offsets, lengths, timestamps_ns)

    @classmethod
    def from_scapy(cls, packets: Iterable[Any]) -> Batch:
        """Copy scapy Ethernet packets into a Batch (the ``scapy`` extra; see sriov.traffic.scapy_interop)."""
        from sriov.traffic.scapy_interop import from_scapy

        return from_scapy(packets)

    def to_scapy(self) -> list[Any]:
        """Each frame as a scapy ``Ether`` with its timestamp (the ``scapy`` extra)."""
        from sriov.traffic.scapy_interop import to_scapy

        return to_scapy(self)

    @classmethod
    def empty(cls) -> Batch:
        """A batch of no frames."""
        return cls(
            np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.uint32), np.zeros(0, np.int64)
        )

    # -- access -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.offsets)

    def __getitem__(self, index: int | slice) -> Batch | memoryview:
        if isinstance(index, slice):
            if index.step in (None, 1):
                return Batch(
                    self.data,
                    self.offsets[index],
                    self.lengths[index],
                    self.timestamps_ns[index],
                    validate=False,
                )
            # a step: the kernels take contiguous arrays, so the offsets, lengths and timestamps
            # are copied (the frame bytes stay shared)
            return Batch(
                self.data,
                np.ascontiguousarray(self.offsets[index]),
                np.ascontiguousarray(self.lengths[index]),
                np.ascontiguousarray(self.timestamps_ns[index]),
                validate=False,
            )
        i = range(len(self))[index]
        start = int(self.offsets[i])
        return memoryview(self.data)[start : start + int(self.lengths[i])]

    def __iter__(self) -> Iterator[memoryview]:
        view = memoryview(self.data)
        for start, length in zip(self.offsets.tolist(), self.lengths.tolist(), strict=False):
            yield view[start : start + length]

    def frame(self, i: int) -> bytes:
        """A copy of frame ``i``."""
        return bytes(self[i])  # type: ignore[arg-type]

    def to_list(self) -> list[bytes]:
        """Copies of every frame."""
        return [bytes(f) for f in self]

    @property
    def total_bytes(self) -> int:
        """Sum of frame lengths."""
        return int(self.lengths.sum(dtype=np.uint64))

    def copy(self) -> Batch:
        """An independent copy: the frames packed into a fresh buffer, lengths and timestamps kept.

        What to keep of a zero-copy batch (an ``rx_poll`` result is valid only until the next
        poll). numpy gathers, no Python object per frame; only the frames' bytes are copied, not
        the buffer they sit in (a guest's whole memory, for a poll)."""
        lengths = self.lengths.astype(np.int64)
        offsets = np.zeros(len(self), np.int64)
        if len(self) > 1:
            np.cumsum(lengths[:-1], out=offsets[1:])
        total = int(lengths.sum())
        # byte k of the new buffer comes from byte (old offset - new offset of its frame) + k
        source = np.repeat(self.offsets.astype(np.int64) - offsets, lengths) + np.arange(
            total, dtype=np.int64
        )
        return Batch(self.data[source], offsets, self.lengths.copy(), self.timestamps_ns.copy())

    def compact(self) -> Batch:
        """A copy whose frames are packed back to back in a fresh buffer."""
        return Batch.from_frames(self, self.timestamps_ns.tolist())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Batch):
            return NotImplemented
        return (
            len(self) == len(other)
            and np.array_equal(self.lengths, other.lengths)
            and np.array_equal(self.timestamps_ns, other.timestamps_ns)
            and self.to_list() == other.to_list()
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Batch {len(self)} frames, {self.total_bytes} bytes>"
