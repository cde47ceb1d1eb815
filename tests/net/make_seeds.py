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

# fuzz-netvsp: a sequence of guest packets, each: u8 kind, u16 len, bytes.
# kind 0: in-band NVSP message; 1: completion of a receive (u64 trans id
# taken from the bytes); 2: GPA-direct RNDIS from a scratch page.
def nvsp(t, words):
    b = struct.pack('<I', t) + b''.join(struct.pack('<I', w) for w in words)
    return b + bytes(40 - len(b))


def rec(kind, data):
    return struct.pack('<BH', kind, len(data)) + data


init = rec(0, nvsp(1, [0x60001, 0x60001]))
cfg = rec(0, nvsp(125, [1514, 0, 0x29, 0]))
ndis = rec(0, nvsp(100, [6, 30]))
write('netvsp', 'init-v61', init + cfg + ndis)
write('netvsp', 'init-v1', rec(0, nvsp(1, [2, 2])) + ndis)
write('netvsp', 'buffers', init + cfg + ndis + rec(0, nvsp(101, [0x100, 0xcafe]))
      + rec(0, nvsp(104, [0x200, 0])))
write('netvsp', 'rndis-init', init + cfg + ndis + rec(0, nvsp(101, [0x100, 0xcafe]))
      + rec(2, msg(2, [1, 1, 0, 0x4000])) + rec(1, struct.pack('<Q', 1)))
write('netvsp', 'subchannels', init + cfg + ndis + rec(0, nvsp(133, [1, 3])))
sys.exit(0)
