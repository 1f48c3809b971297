"""The Sparkplug B payload (``org.eclipse.tahu.protobuf.Payload``) as Protobuf classes.

How this was made: the message layout of the Eclipse Sparkplug specification's
``sparkplug_b.proto`` (eclipse/tahu, ``sparkplug_b/sparkplug_b.proto``, proto2) is
written below as a descriptor, field by field with the specification's names,
numbers, types and ``oneof`` groups, and the ``protobuf`` package makes the classes
from it at import (``message_factory.GetMessageClass``): no generated file to keep
in step with a ``protoc`` version, no ``grpcio-tools`` at run time. Not yet checked
byte for byte against classes ``protoc`` compiles from the ``.proto`` (to do: compile
it with ``python -m grpc_tools.protoc --python_out=. sparkplug_b.proto`` and compare
encodings of every value type). The extension ranges of the
specification are left out: tsfleet reads no third-party extension, and their
bytes are kept as unknown fields all the same.

>>> p = Payload(timestamp=1780000000000, seq=3)
>>> m = p.metrics.add(name="Zone 1/Temperature", alias=7, datatype=DataType.Float, float_value=21.5)
>>> Payload.FromString(p.SerializeToString()).metrics[0].float_value
21.5
"""

from __future__ import annotations

from enum import IntEnum

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
_T = {"uint32": _F.TYPE_UINT32, "uint64": _F.TYPE_UINT64, "float": _F.TYPE_FLOAT,
      "double": _F.TYPE_DOUBLE, "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING,
      "bytes": _F.TYPE_BYTES}
_PKG = "org.eclipse.tahu.protobuf"


class DataType(IntEnum):
    """Sparkplug B data types (the specification's table; the ``datatype`` of a metric)."""

    Unknown = 0
    Int8 = 1
    Int16 = 2
    Int32 = 3
    Int64 = 4
    UInt8 = 5
    UInt16 = 6
    UInt32 = 7
    UInt64 = 8
    Float = 9
    Double = 10
    Boolean = 11
    String = 12
    DateTime = 13
    Text = 14
    UUID = 15
    DataSet = 16
    Bytes = 17
    File = 18
    Template = 19
    PropertySet = 20
    PropertySetList = 21


def _msg(name: str, fields: list[tuple], nested: list | None = None,
         oneof: str | None = None) -> descriptor_pb2.DescriptorProto:
    """A message: fields are (name, number, type or .Message, repeated?, in the oneof?)."""
    m = descriptor_pb2.DescriptorProto(name=name)
    if oneof:
        m.oneof_decl.add(name=oneof)
    for fname, number, ftype, repeated, in_oneof in fields:
        f = m.field.add(name=fname, number=number, label=_REP if repeated else _OPT)
        if ftype in _T:
            f.type = _T[ftype]
        else:
            f.type, f.type_name = _F.TYPE_MESSAGE, f".{_PKG}.Payload.{ftype}"
        if in_oneof:
            f.oneof_index = 0
    m.nested_type.extend(nested or [])
    return m


def _scalars(first: int, ext: str | None = None, *, bytes_value: bool = False) -> list[tuple]:
    """The value oneof shared by the specification's value messages."""
    names = [("int_value", "uint32"), ("long_value", "uint64"), ("float_value", "float"),
             ("double_value", "double"), ("boolean_value", "bool"),
             ("string_value", "string")]
    if bytes_value:
        names.append(("bytes_value", "bytes"))
    out = [(n, first + i, t, False, True) for i, (n, t) in enumerate(names)]
    if ext:
        out.append(("extension_value", first + len(names), ext, False, True))
    return out


def _file() -> descriptor_pb2.FileDescriptorProto:
    ext = [_msg(n, []) for n in ("ParameterValueExtension",)]
    parameter = _msg("Parameter", [("name", 1, "string", False, False),
                                   ("type", 2, "uint32", False, False),
                                   *_scalars(3, "Template.Parameter.ParameterValueExtension")],
                     ext, "value")
    template = _msg("Template", [("version", 1, "string", False, False),
                                 ("metrics", 2, "Metric", True, False),
                                 ("parameters", 3, "Template.Parameter", True, False),
                                 ("template_ref", 4, "string", False, False),
                                 ("is_definition", 5, "bool", False, False)], [parameter])
    ds_value = _msg("DataSetValue", _scalars(1, "DataSet.DataSetValue.DataSetValueExtension"),
                    [_msg("DataSetValueExtension", [])], "value")
    row = _msg("Row", [("elements", 1, "DataSet.DataSetValue", True, False)])
    dataset = _msg("DataSet", [("num_of_columns", 1, "uint64", False, False),
                               ("columns", 2, "string", True, False),
                               ("types", 3, "uint32", True, False),
                               ("rows", 4, "DataSet.Row", True, False)], [ds_value, row])
    prop_value = _msg("PropertyValue", [
        ("type", 1, "uint32", False, False), ("is_null", 2, "bool", False, False),
        *_scalars(3),
        ("propertyset_value", 9, "PropertySet", False, True),
        ("propertysets_value", 10, "PropertySetList", False, True),
        ("extension_value", 11, "PropertyValue.PropertyValueExtension", False, True)],
        [_msg("PropertyValueExtension", [])], "value")
    prop_set = _msg("PropertySet", [("keys", 1, "string", True, False),
                                    ("values", 2, "PropertyValue", True, False)])
    prop_list = _msg("PropertySetList", [("propertyset", 1, "PropertySet", True, False)])
    metadata = _msg("MetaData", [
        ("is_multi_part", 1, "bool", False, False), ("content_type", 2, "string", False, False),
        ("size", 3, "uint64", False, False), ("seq", 4, "uint64", False, False),
        ("file_name", 5, "string", False, False), ("file_type", 6, "string", False, False),
        ("md5", 7, "string", False, False), ("description", 8, "string", False, False)])
    metric = _msg("Metric", [
        ("name", 1, "string", False, False), ("alias", 2, "uint64", False, False),
        ("timestamp", 3, "uint64", False, False), ("datatype", 4, "uint32", False, False),
        ("is_historical", 5, "bool", False, False), ("is_transient", 6, "bool", False, False),
        ("is_null", 7, "bool", False, False), ("metadata", 8, "MetaData", False, False),
        ("properties", 9, "PropertySet", False, False),
        *_scalars(10, bytes_value=True),
        ("dataset_value", 17, "DataSet", False, True),
        ("template_value", 18, "Template", False, True),
        ("extension_value", 19, "Metric.MetricValueExtension", False, True)],
        [_msg("MetricValueExtension", [])], "value")
    payload = _msg("Payload", [
        ("timestamp", 1, "uint64", False, False), ("metrics", 2, "Metric", True, False),
        ("seq", 3, "uint64", False, False), ("uuid", 4, "string", False, False),
        ("body", 5, "bytes", False, False)],
        [template, dataset, prop_value, prop_set, prop_list, metadata, metric])
    return descriptor_pb2.FileDescriptorProto(
        name="tsfleet/sparkplug_b.proto", package=_PKG, syntax="proto2",
        message_type=[payload])


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())
#: ``org.eclipse.tahu.protobuf.Payload`` and its nested messages (``Payload.Metric``, ...).
Payload = message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PKG}.Payload"))

__all__ = ["DataType", "Payload"]
