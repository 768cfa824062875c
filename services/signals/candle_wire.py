"""A wire-compatible mirror of StreamCandlesResponse for reading it fast.

Reading `candle.open_time` of a google.protobuf.Timestamp costs ~3 us in
Python (the well-known type's wrapper), which at an hour boundary (tens of
thousands of updates) was most of the time from a closed candle to its
signal event. The mirror declares the same field numbers and wire types with
a plain {seconds, nanos} message in place of Timestamp and int32 in place of
the Interval enum, so the bytes pricing sends parse into it unchanged and its
fields read like the real ones. Only the follower uses it; everything else
sees the generated classes.
"""

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _message(name: str, *fields: tuple[str, int, int, str]) -> descriptor_pb2.DescriptorProto:
    out = descriptor_pb2.DescriptorProto(name=name)
    for field_name, number, kind, type_name in fields:
        label = _F.LABEL_REPEATED if field_name == "updates" else _F.LABEL_OPTIONAL
        field = out.field.add(name=field_name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = type_name
    return out


def _build() -> type:
    package = "marketmesh.signals.mirror"
    file = descriptor_pb2.FileDescriptorProto(
        name="marketmesh/signals/candle_mirror.proto", package=package, syntax="proto3"
    )
    file.message_type.extend(
        [
            _message("Time", ("seconds", 1, _F.TYPE_INT64, ""), ("nanos", 2, _F.TYPE_INT32, "")),
            _message(
                "Candle",
                ("open_time", 1, _F.TYPE_MESSAGE, f".{package}.Time"),
                ("open", 2, _F.TYPE_DOUBLE, ""),
                ("high", 3, _F.TYPE_DOUBLE, ""),
                ("low", 4, _F.TYPE_DOUBLE, ""),
                ("close", 5, _F.TYPE_DOUBLE, ""),
                ("volume", 6, _F.TYPE_DOUBLE, ""),
                ("trades", 7, _F.TYPE_UINT64, ""),
                ("closed", 8, _F.TYPE_BOOL, ""),
                ("quote_volume", 9, _F.TYPE_DOUBLE, ""),
            ),
            _message(
                "CandleUpdate",
                ("symbol", 1, _F.TYPE_STRING, ""),
                ("interval", 2, _F.TYPE_INT32, ""),
                ("candle", 3, _F.TYPE_MESSAGE, f".{package}.Candle"),
            ),
            _message(
                "StreamCandlesResponse",
                ("sequence", 1, _F.TYPE_UINT64, ""),
                ("snapshot", 2, _F.TYPE_BOOL, ""),
                ("heartbeat", 3, _F.TYPE_BOOL, ""),
                ("updates", 4, _F.TYPE_MESSAGE, f".{package}.CandleUpdate"),
                ("more", 5, _F.TYPE_BOOL, ""),
            ),
        ]
    )
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    classes = message_factory.GetMessages([file], pool=pool)
    return classes[f"{package}.StreamCandlesResponse"]


StreamCandlesMirror = _build()
