#!/usr/bin/env python3
"""Writes seed packets for the IC fuzz targets: a service byte, then a
pipe header, an IC header and a message, as Hyper-V and Linux build them."""
import os
import struct
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fuzz', 'corpus')


def packet(msgtype, body, flags=2 | 1, status=0):
    hdr = struct.pack('<HHHHHHIBB2x', 3, 0, msgtype, 3, 0, len(body), status, 0, flags)
    return struct.pack('<II', 1, len(hdr) + len(body)) + hdr + body


def utf16(s, size):
    b = (s + '\0').encode('utf-16-le')
    return b + bytes(size - len(b))


def kvp(op, pool, key, value, flags=3):
    k, v = (key + '\0').encode('utf-16-le'), (value + '\0').encode('utf-16-le')
    body = struct.pack('<BBH', op, pool, 0) + struct.pack('<III', 1, len(k), len(v))
    body += utf16(key, 512) + utf16(value, 2048)
    return packet(2, body, flags)


negotiate = packet(0, struct.pack('<HHI', 2, 2, 0) + struct.pack('<HHHHHHHH', 3, 0, 1, 0, 3, 0, 1, 0))
seeds = {
    'ic-guest': {
        'negotiate': b'\x00' + negotiate,
        'heartbeat': b'\x00' + packet(1, struct.pack('<Q', 7) + bytes(32)),
        'shutdown': b'\x01' + packet(3, struct.pack('<III', 0, 30, 4) + bytes(2048)),
        'timesync': b'\x02' + packet(4, struct.pack('<QQBbb3x', 132000000000000000, 5000, 1, 0, 0)),
        'kvp-set': b'\x03' + kvp(1, 0, 'key', 'value', 3),
        'kvp-enum': b'\x03' + packet(2, struct.pack('<BBHI', 3, 2, 0, 0) + bytes(2572)),
        'vss-freeze': b'\x04' + packet(5, struct.pack('<B7xI', 5, 0)),
        'fcopy-start': b'\x05' + packet(7, struct.pack('<I32x', 0) + utf16('f.bin', 520) +
                                         utf16('/dir', 520) + struct.pack('<IQ', 2, 10)),
        'fcopy-write': b'\x05' + packet(7, struct.pack('<I32xIQI', 1, 0, 0, 4) + b'data' + bytes(6140)),
    },
    'ic-host': {
        'negotiate-answer': b'\x00' + packet(0, struct.pack('<HHI', 1, 1, 0) + struct.pack('<HHHH', 3, 0, 3, 0), 5),
        'heartbeat-answer': b'\x00' + packet(1, struct.pack('<Q', 42) + bytes(32), 5),
        'shutdown-answer': b'\x01' + packet(3, struct.pack('<III', 0, 30, 4) + bytes(2048), 5),
        'kvp-get-answer': b'\x03' + kvp(0, 0, 'key', 'value', 5),
        'vss-answer': b'\x04' + packet(5, struct.pack('<B7xI', 2, 5), 5),
        'fcopy-answer': b'\x05' + packet(7, struct.pack('<I32x', 2), 5, 0x80070050),
        'kvp-enum-answer': b'\x03' + packet(2, struct.pack('<BBHI', 3, 2, 0, 0) + struct.pack('<III', 1, 8, 8) + utf16('abc', 512) + utf16('def', 2048), 5),
    },
}
for target, files in seeds.items():
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
sys.exit(0)
