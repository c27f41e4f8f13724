"""An independent AMQP peer (pika) for the header-type tests.

    amqp_types.py URL publish QUEUE   publishes one message whose headers
                                      have one value of each AMQP type
    amqp_types.py URL read QUEUE      takes one message off QUEUE

Each prints the message's headers as JSON: every value as [type, raw],
the field's AMQP type letter and its encoded bytes in hex (a table or an
array as [type, {...}] or [type, [...]] of such values). pika decodes
headers into Python values, which lose the type (and it reads floats as
integers), so the types are read off the wire as pika parses it. pika
cannot encode a signed 8 or 16 bit integer or a float either: those are
Raw values here, encoded with their own type letter.
"""

import datetime
import decimal
import json
import struct
import sys

import pika
import pika.data


class Raw:
    """A value pika has no Python type for: its type letter and bytes."""

    def __init__(self, kind, packed):
        self.kind = kind
        self.packed = packed


_encode_value = pika.data.encode_value


def encode_value(pieces, value):
    if isinstance(value, Raw):
        pieces.append(value.kind + value.packed)
        return 1 + len(value.packed)
    return _encode_value(pieces, value)


pika.data.encode_value = encode_value


def typed_table(encoded, offset):
    """decode_table, keeping each value's type and bytes."""
    result = {}
    size = struct.unpack_from(">I", encoded, offset)[0]
    offset += 4
    limit = offset + size
    while offset < limit:
        key, offset = pika.data.decode_short_string(encoded, offset)
        result[key], offset = typed_value(encoded, offset)
    return result, offset


def typed_value(encoded, offset):
    kind = encoded[offset:offset + 1].decode()
    if kind == "F":
        table, end = typed_table(encoded, offset + 1)
        return [kind, table], end
    if kind == "A":
        size = struct.unpack_from(">I", encoded, offset + 1)[0]
        at, end = offset + 5, offset + 5 + size
        items = []
        while at < end:
            item, at = typed_value(encoded, at)
            items.append(item)
        return [kind, items], end
    _, end = pika.data.decode_value(encoded, offset)
    return [kind, encoded[offset + 1:end].hex()], end


def headers_of(properties):
    """The typed headers of a message pika received or is about to send."""
    pieces = []
    pika.data.encode_table(pieces, properties.headers)
    encoded = b"".join(pieces)
    return typed_table(encoded, 0)[0]


# What pika received, re-encoded by pika would lose the types again: the
# reader records the headers as the wire had them, while pika parses them.
_received = {}
_decode_properties = pika.spec.BasicProperties.decode


def decode_properties(self, encoded, offset=0):
    flags = struct.unpack_from(">H", encoded, offset)[0]
    at = offset + 2
    # The properties before headers: content type and content encoding.
    for flag in (pika.spec.BasicProperties.FLAG_CONTENT_TYPE,
                 pika.spec.BasicProperties.FLAG_CONTENT_ENCODING):
        if flags & flag:
            at += 1 + encoded[at]
    if flags & pika.spec.BasicProperties.FLAG_HEADERS:
        _received["headers"] = typed_table(encoded, at)[0]
    return _decode_properties(self, encoded, offset)


pika.spec.BasicProperties.decode = decode_properties


def sent_headers():
    return {
        "text": "acme",
        "i8": Raw(b"b", struct.pack(">b", -5)),
        "i16": Raw(b"s", struct.pack(">h", -300)),
        "seq": 7,  # a 32-bit signed int ("I")
        "big": 2**40,  # a 64-bit signed int ("l")
        "urgent": True,
        "f32": Raw(b"f", struct.pack(">f", 1.5)),
        "f64": Raw(b"d", struct.pack(">d", 2.25)),
        "price": decimal.Decimal("12.34"),
        "at": datetime.datetime(2023, 11, 14, 22, 13, 20),
        "nested": {"depth": 1, "name": "inner", "deeper": {"ok": False}},
        "list": [1, "two", 2**40, True],
        "blob": b"\x00\x01\xfe\xff",
        "nothing": None,
    }


def main():
    url, what, queue = sys.argv[1:4]
    connection = pika.BlockingConnection(pika.URLParameters(url))
    channel = connection.channel()
    if what == "publish":
        channel.confirm_delivery()
        properties = pika.BasicProperties(
            headers=sent_headers(), message_id="typed-1", delivery_mode=2)
        channel.basic_publish("", queue, b'{"typed":true}', properties)
        print(json.dumps(headers_of(properties)))
    elif what == "read":
        method, properties, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            sys.exit(f"no message in {queue}")
        print(json.dumps(_received.get("headers", {})))
    connection.close()


if __name__ == "__main__":
    main()
