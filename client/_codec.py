"""Payload codecs: bytes pass through untouched, Python values go through a codec (JSON by default).

Never pickle: a payload crosses process and machine boundaries and is run by other people's
hosts, so only data formats are allowed. Plug in another format by passing any object with
`encode` and `decode` (see `Codec`), for example msgpack:

```python
import msgpack

class MsgpackCodec:
    def encode(self, value: object) -> bytes:
        return msgpack.packb(value)

    def decode(self, data: bytes) -> object:
        return msgpack.unpackb(data) if data else None

async with AsyncClient(codec=MsgpackCodec()) as client:
    ...
```
"""

from __future__ import annotations

import json
from typing import Any, Protocol, runtime_checkable

from swarm.client._errors import Rejected

try:  # optional (pyproject: a default dependency); the stdlib's json is the fallback
    import msgspec
except ImportError:  # pragma: no cover - exercised by tests that hide it
    msgspec = None  # type: ignore[assignment]


@runtime_checkable
class Codec(Protocol):
    """Turns Python values into payload bytes and output bytes back into values.

    `decode(b"")` should return None: a task without a payload sends empty bytes.
    """

    def encode(self, value: Any) -> bytes:
        """The bytes for `value`; raise TypeError or ValueError when it cannot be encoded."""
        ...

    def decode(self, data: bytes) -> Any:
        """The value for `data` (the output of a task whose payload was a Python value)."""
        ...


class JsonCodec:
    """The default codec: compact UTF-8 JSON; empty bytes decode to None.

    ```python
    codec = JsonCodec()
    assert codec.decode(codec.encode({"n": 1})) == {"n": 1}
    ```

    It uses msgspec's JSON encoder and decoder when msgspec is installed (10-20x faster than the
    stdlib's json on typical payloads, docs/performance.md) and the stdlib's json otherwise
    (`fast=False` forces it). Both give the same JSON for JSON-shaped values (dicts with string
    or number keys, lists, tuples, str, int of any size, float, bool, None). Where they differ,
    msgspec is the more lenient: NaN and infinities encode as null (the stdlib writes the
    non-standard `NaN`), sets and frozensets as arrays, and nested bytes as base64 text (the
    stdlib refuses both). Decoding falls back to the stdlib for text msgspec refuses, so
    outputs a host wrote with `json.dumps` (`NaN` included) still decode.
    """

    def __init__(self, *, fast: bool = True) -> None:
        self.fast = fast and msgspec is not None
        self._std_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
        self._std_decoder = json.JSONDecoder()
        if self.fast:
            self._fast_encode = msgspec.json.Encoder().encode
            self._fast_decode = msgspec.json.Decoder().decode

    def encode(self, value: Any) -> bytes:
        """Compact JSON text, UTF-8 encoded."""
        if self.fast:
            try:
                return self._fast_encode(value)
            except msgspec.EncodeError as exc:  # TypeError already for unsupported types
                raise ValueError(str(exc)) from exc
        return self._std_encoder.encode(value).encode()

    def decode(self, data: bytes) -> Any:
        """The JSON value in `data`; None for empty bytes."""
        if not data:
            return None
        if self.fast:
            try:
                return self._fast_decode(data)
            except msgspec.DecodeError:
                pass  # e.g. NaN from a stdlib encoder: the stdlib decides (and names the error)
        return self._std_decoder.decode(data.decode())


def encode_payload(codec: Codec, payload: object, field: str = "payload") -> tuple[bytes, bool]:
    """The wire bytes for `payload`, and whether the task's output should be decoded.

    Results mirror their payload: bytes in, bytes out (untouched); a Python value in (None
    included), the output decoded by the codec.
    """
    if type(payload) is bytes:
        return payload, False
    if isinstance(payload, bytes | bytearray | memoryview):
        return bytes(payload), False
    if payload is None:
        return b"", True
    try:
        return codec.encode(payload), True
    except (TypeError, ValueError) as exc:
        raise Rejected(
            f"cannot encode {type(payload).__name__} with {type(codec).__name__}: {exc}",
            field=field,
        ) from exc
