from typing import overload

@overload
def filter_spans(data: bytes, key: bytes, /) -> tuple[int, bytes]: ...
@overload
def filter_spans(
    data: bytes, key: bytes, unless_key: bytes, unless_values: tuple[bytes, ...], /
) -> tuple[int, bytes]: ...
@overload
def filter_spans(
    data: bytes, key: bytes, unless_key: bytes | None, unless_values: tuple[bytes, ...], sample_below: int, /
) -> tuple[int, bytes]: ...
