#!/usr/bin/env python3
"""Writes the seed corpora of fuzz-rndis and fuzz-netvsp: real messages as
Linux 6.1 sends them (see test_rndis.c and test_netvsp.c)."""
import os
import struct
import sys

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fuzz', 'corpus')


def msg(t, words, extra=b''):
    body = b''.join(struct.pack('<I', w) for w in words) + extra
    return struct.pack('<II', t, 8 + len(body)) + body


def packet(frame, ppis=True):
    ppi = b''
    if ppis:
        for t, v in ((8, 0x12345678), (6, 0x641), (0, 0x220005)):
            ppi += struct.pack('<IIII', 16, t, 12, v)
    hdr = struct.pack('<9I', 36 + len(ppi), len(frame), 0, 0, 0, 36 if ppi else 0, len(ppi), 0, 0)
    return struct.pack('<II', 1, 8 + len(hdr) + len(ppi) + len(frame)) + hdr + ppi + frame


def write(target, name, data):
    d = os.path.join(root, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(data)


frame = bytes(range(60)) + bytes(40)
write('rndis', 'init', b'\x00' + msg(2, [1, 1, 0, 0x4000]))
write('rndis', 'query-mac', b'\x01' + msg(4, [2, 0x01010101, 0, 20, 0]))
write('rndis', 'set-filter', b'\x01' + msg(5, [3, 0x0001010E, 4, 20, 0, 9]))
write('rndis', 'packet-ppi', b'\x01' + packet(frame))
write('rndis', 'batch', b'\x01' + packet(frame, False) + packet(frame[:64], True)
      + msg(8, [4]))
# The same read in place (bit 1) with a 4 KiB scratch buffer (32 << 2).
write('rndis', 'batch-in-place', bytes([1 | 2 | (32 << 2)]) + packet(frame, False)
      + packet(frame[:64], True) + msg(8, [4]))

# fuzz-netvsp (fuzz_netvsp.c): byte 0 the setup (bit 0 Linux's bring-up,
# bits 1-3 the version index, bit 4 a sink backend, bit 5 a scattered send
# buffer), then records: u8 kind, u16 length, bytes.
def nvsp(t, words):
    b = struct.pack('<I', t) + b''.join(struct.pack('<I', w) for w in words)
    return b + bytes(40 - len(b))


def rec(kind, data):
    return struct.pack('<BH', kind, len(data)) + data


init = rec(0, nvsp(1, [0x60001, 0x60001]))
cfg = rec(0, nvsp(125, [1514, 0, 0x29, 0]))
ndis = rec(0, nvsp(100, [6, 30]))
write('netvsp', 'raw-bringup', b'\x00' + init + cfg + ndis + rec(0, nvsp(101, [0x1000, 0xcafe]))
      + rec(0, nvsp(104, [0x2000, 0])) + rec(2, msg(2, [1, 1, 0, 0x4000]) + b'\0') + rec(6, b''))
write('netvsp', 'up-v61-frames', bytes([1 | (5 << 1)]) + rec(2, packet(frame)) + rec(5, b'\x3b\x00')
      + rec(6, b'') + rec(1, b''))
write('netvsp', 'up-v1-sections', bytes([1]) + rec(4, struct.pack('<II', 2, 104) + packet(frame))
      + rec(4, struct.pack('<II', 999, 50)))
write('netvsp', 'up-v61-sections-gathered', bytes([1 | (5 << 1) | 0x20])
      + rec(4, struct.pack('<II', 2, 104) + packet(frame)) + rec(6, b''))
write('netvsp', 'up-v5-subchannels', bytes([1 | (3 << 1)]) + rec(0, nvsp(133, [1, 3]))
      + rec(7, b'\x00') + rec(6, b''))
write('netvsp', 'sink-fill', bytes([1 | (5 << 1) | 0x10]) + rec(5, b'\x40\x00') * 40
      + rec(1, struct.pack('<Q', 0xdeadbeef)) + rec(3, nvsp(107, [0, 0xffffffff, 0])
      + struct.pack('<IIQ', 5000, 4000, 2)))
# A burst of 40 frames (two transfer-page packets, 32 and 8 ranges), then
# one of 64 with lengths cut short, on a sink; completions by draining.
write('netvsp', 'sink-burst', bytes([1 | (5 << 1) | 0x10]) + rec(5, b'\xdb\x05' + bytes([39]))
      + rec(1, b'') + rec(5, b'\x3b\x00' + bytes([63]) + bytes(range(0, 240, 4)))
      + rec(6, b'') + rec(1, b'') + rec(5, b'\xdb\x05\x1f'))
# A streak: bursts saying more follow, a frame sent and the guest's
# completions between them while its ring is masked, then the last burst.
more = bytes([0x40 | 31])
write('netvsp', 'sink-streak', bytes([1 | (5 << 1) | 0x10]) + rec(5, b'\xdb\x05' + more) * 2
      + rec(4, struct.pack('<II', 2, 104) + packet(frame)) + rec(6, b'')
      + rec(5, b'\xdb\x05' + more) + rec(1, b'') + rec(5, b'\xdb\x05\x1f'))
# fuzz-netvsc-rx (fuzz_netvsc_rx.c): u16 extension length, u16 payload
# length, the transfer-page extension (page set 0xcafe, ranges), the NVSP
# SEND_RNDIS_PKT, then the receive buffer as netvsp fills it.
def xfer(ranges, channel_type, rbuf, pageset=0xcafe):
    ext = struct.pack('<HBBI', pageset, 0, 0, len(ranges))
    ext += b''.join(struct.pack('<II', n, o) for n, o in ranges)
    ext += bytes(-len(ext) % 8)
    payload = nvsp(107, [channel_type, 0xffffffff, 0])
    return struct.pack('<HH', len(ext), len(payload)) + ext + payload + rbuf


def section(m, size=1728):
    return m + bytes(size - len(m))


pkt = packet(frame, False)
write('netvsc-rx', 'frame', xfer([(len(pkt), 0)], 0, section(pkt)))
write('netvsc-rx', 'frame-ppi', xfer([(len(packet(frame)), 1728)], 0,
                                     section(pkt) + section(packet(frame))))
write('netvsc-rx', 'two-ranges', xfer([(len(pkt), 0), (len(pkt), 1728)], 0,
                                      section(pkt) * 2))
write('netvsc-rx', 'query-answer', xfer([(30, 0)], 1,
                                        section(msg(0x80000004, [2, 0, 6, 16]) + bytes(6))))
write('netvsc-rx', 'link-down', xfer([(20, 0)], 1, section(msg(7, [0x4001000C, 0, 0]))))
write('netvsc-rx', 'range-outside', xfer([(len(pkt), 4000)], 0, section(pkt)))
sys.exit(0)
