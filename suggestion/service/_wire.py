"""A request's trials read column by column from their wire bytes, without a Python object
per nested message.

Reading ``trial.spec.parameter_assignments.assignments[j].value`` from a parsed message
makes Python wrappers for every message on the way (protobuf's upb backend: about 2 µs
each, 14 per trial of 6 parameters, most of a 1000-trial request's decoding). Here each
level of nesting is read for every trial at once by protobuf's C parser instead:

- the items of one level (every trial's bytes, or every trial's ``spec`` bytes...) are
  joined into one message of a *shadow* type that declares the fields to read as
  ``repeated bytes`` (``repeated uint64`` for an enum), which is what their wire encoding
  is. Parsing concatenated messages merges them, so the shadow's repeated fields collect
  every item's fields in item order, in one C call and with no wrapper per item.
- before each item, a *marker* occurrence of each field is joined in (bytes ``0xff``, which
  is neither valid UTF-8 nor a valid message, so never a real value of these fields; an
  enum marker 2**63, which no int32 encodes to). The markers split each field's values
  back into items, whatever fields an item omits, repeats or orders differently.

`explode` returns, per field, each item's values; the caller checks the shapes it expects
(one name per trial...) and takes another path for anything else.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

MARK = b"\xff"
"""A bytes field's marker: invalid UTF-8 and an invalid message, so no real value."""
ENUM_MARK = 1 << 63
"""An enum field's marker: int32 values encode to below 2**31 or from 2**64 - 2**31 up."""

_LENGTH_DELIMITED = 2
_VARINT = 0


def _shadow_types() -> dict[str, type[Message]]:
    """The shadow message types, by name: their fields' numbers are Katib's."""
    layouts: dict[str, list[tuple[str, int, int | str]]] = {
        # name: [(field, number, type or the name of a shadow message type)]
        "Request": [("trials", 2, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES)],
        "Trial": [
            ("name", 1, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
            ("spec", 2, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
            ("status", 3, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
        ],
        "Spec": [
            ("parameter_assignments", 3, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
            ("labels", 4, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
        ],
        "Repeated": [("items", 1, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES)],
        "Value": [("value", 2, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES)],
        # ``items`` singular: a parse merges every occurrence into one ``Value`` whose
        # repeated ``value`` collects the values of all of them, in order.
        "Merged": [("items", 1, "Value")],
        "Pair": [
            ("name", 1, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
            ("value", 2, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
        ],
        "Status": [
            ("start_time", 1, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
            ("completion_time", 2, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
            ("condition", 3, descriptor_pb2.FieldDescriptorProto.TYPE_UINT64),
            ("observation", 4, descriptor_pb2.FieldDescriptorProto.TYPE_BYTES),
        ],
    }
    file = descriptor_pb2.FileDescriptorProto(
        name="tuner_suggestion_shadow.proto", package="tuner.shadow", syntax="proto3"
    )
    for name, fields in layouts.items():
        message = file.message_type.add(name=name)
        for field, number, kind in fields:
            if isinstance(kind, str):  # a singular message field of that shadow type
                message.field.add(
                    name=field,
                    number=number,
                    type=descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
                    type_name=f".tuner.shadow.{kind}",
                    label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
                )
                continue
            message.field.add(
                name=field,
                number=number,
                type=kind,
                label=descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
                options=descriptor_pb2.FieldOptions(packed=False),
            )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tuner.shadow.{name}"))
        for name in layouts
    }


_TYPES = _shadow_types()
REQUEST, TRIAL, SPEC, REPEATED, PAIR, STATUS, VALUE, MERGED = (
    _TYPES[n] for n in ("Request", "Trial", "Spec", "Repeated", "Pair", "Status", "Value", "Merged")
)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _markers(shadow: type[Message]) -> bytes:
    """One marker occurrence of each field of ``shadow``."""
    out = b""
    for field in shadow.DESCRIPTOR.fields:
        if field.type == field.TYPE_UINT64:
            out += _varint(field.number << 3 | _VARINT) + _varint(ENUM_MARK)
        else:
            out += _varint(field.number << 3 | _LENGTH_DELIMITED) + _varint(len(MARK)) + MARK
    return out


_MARKERS = {shadow: _markers(shadow) for shadow in _TYPES.values() if shadow is not MERGED}


def trial_bytes(request: Message) -> list[bytes]:
    """The serialised trials of a `GetSuggestionsRequest` (field 2), in order."""
    return trials_of(request.SerializeToString())


def trials_of(data: bytes) -> list[bytes]:
    """The trials (field 2) of a serialised `GetSuggestionsRequest`, in order."""
    return list(REQUEST.FromString(data).trials)


def explode(items: Sequence[bytes], shadow: type[Message]) -> dict[str, list[Any]]:
    """Every field of ``shadow`` in all ``items`` (serialised messages), markers included:
    per field, the values in item order, each item's preceded by the field's marker."""
    if not items:
        return {f.name: [] for f in shadow.DESCRIPTOR.fields}
    markers = _MARKERS[shadow]
    message = shadow.FromString(markers + markers.join(items))
    return {f.name: list(getattr(message, f.name)) for f in shadow.DESCRIPTOR.fields}


def assigned_values(groups: list[bytes], names: Sequence[bytes]) -> list[bytes] | None:
    """The values of ``groups``, each a serialised ``ParameterAssignments`` (one per trial),
    when each group is exactly one `ParameterAssignment` per name of ``names``, in that
    order, each exactly ``name`` then ``value`` (every assignment under 128 bytes); else
    None. Flat, trial by trial: the j-th name's values are ``values[j::len(names)]``.
    (An ``Observation``'s ``Metric``s have the same layout: name 1, value 2, in field 1.)

    The values are read without markers in one C parse (`MERGED`: the items of all groups
    merged into one message, their values collected in order), then the claim is checked whole:
    the groups joined by NUL bytes must equal, byte for byte, the encoding that this shape
    gives those values, joined likewise. A NUL byte occurs nowhere else in it (the joined
    groups hold exactly the separators'), so each group equals its own encoding.
    """
    k, n = len(names), len(groups)
    if not k or any(len(name) >= 128 for name in names):
        return None
    values = list(MERGED.FromString(b"".join(groups)).items.value)
    if len(values) != n * k:
        return None
    whole = b"\x00".join([*groups, b""])  # each group followed by a NUL
    if whole.count(0) != n:
        return None
    parts: list[bytes] = [b"\x00"] * (n * (2 * k + 1))
    try:
        for j, name in enumerate(names):
            heads = _AssignmentHeads(name)
            column = values[j::k]
            parts[2 * j + 1 :: 2 * k + 1] = column
            parts[2 * j :: 2 * k + 1] = map(heads.__getitem__, map(len, column))
    except IndexError:  # an assignment of 128 bytes or more
        return None
    if b"".join(parts) != whole:
        return None
    return values


class _AssignmentHeads(dict[int, bytes]):
    """What precedes a value of each size (the key) in the one-byte-length encoding of
    ``ParameterAssignment(name, value)`` as an item of a repeated field (field 1); made
    for the sizes met. A size that needs a longer length raises IndexError."""

    def __init__(self, name: bytes) -> None:
        super().__init__()
        self.field = b"\x0a" + bytes([len(name)]) + name + b"\x12"

    def __missing__(self, size: int) -> bytes:
        if len(self.field) + 1 + size >= 128:
            raise IndexError(size)
        head = self[size] = (
            b"\x0a" + bytes([len(self.field) + 1 + size]) + self.field + bytes([size])
        )
        return head


def exactly_one(values: list[Any], n: int, mark: Any = MARK) -> list[Any] | None:
    """Each of the ``n`` items' one value of an exploded field, or None unless every item
    has exactly one."""
    if len(values) != 2 * n:
        return None
    rest = values[1::2]
    if values[0::2] != [mark] * n or mark in rest:
        return None
    return rest


def groups(values: list[Any], n: int, mark: Any = MARK) -> tuple[np.ndarray, np.ndarray] | None:
    """For an exploded field: the position of each item's marker and of the next item's
    (or the end), or None unless there are ``n`` markers."""
    is_mark = np.fromiter(map(mark.__eq__, values), dtype=bool, count=len(values))
    starts = np.flatnonzero(is_mark)
    if len(starts) != n:
        return None
    ends = np.empty_like(starts)
    ends[:-1] = starts[1:]
    if n:
        ends[-1] = len(values)
    return starts, ends


def at_most_one(values: list[Any], n: int, default: Any, mark: Any = MARK) -> list[Any] | None:
    """Each item's value of an exploded message field, ``default`` where it has none; None
    unless there are ``n`` markers and no item has two (protobuf would merge them)."""
    one = exactly_one(values, n, mark)
    if one is not None:
        return one
    found = groups(values, n, mark)
    if found is None or bool(np.any(found[1] - found[0] > 2)):
        return None
    return last(values, n, default, mark)


def last(values: list[Any], n: int, default: Any, mark: Any = MARK) -> list[Any] | None:
    """Each item's last value of an exploded singular field (protobuf: the last one counts),
    ``default`` where it has none; None unless there are ``n`` markers."""
    one = exactly_one(values, n, mark)
    if one is not None:
        return one
    if len(values) == n and values.count(mark) == n:
        return [default] * n  # no item has one
    found = groups(values, n, mark)
    if found is None:
        return None
    starts, ends = found
    table = np.empty(len(values) + 1, dtype=object)
    table[:-1] = values
    table[-1] = default
    index = ends - 1
    index[index == starts] = len(values)  # no value: the default
    return table[index].tolist()
