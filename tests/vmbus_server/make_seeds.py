#!/usr/bin/env python3
"""Writes the seed corpus of the vmbus-server fuzz target (input format in
fuzz_vmbus_server.c) into tests/fuzz/corpus/vmbus-server/."""
import os
import random
import struct

OUT = os.path.join(os.path.dirname(__file__), '..', 'fuzz', 'corpus', 'vmbus-server')

RAW, CONTACT, REQ, GPADL, OPEN, CLOSE, TEARDOWN, RELEASE, MODIFY, UNLOAD, TL, SIGNAL, \
    RAMW, SEND, RECV, RESET, ADD, REMOVE, CLOCK = (0,) + tuple(range(2, 20))


def contact(vidx, wrong=0, sint=0, vp=0):
    return bytes([CONTACT, vidx, wrong, sint, vp])


def gpadl(relid, handle, pages, first, flags=0):
    return bytes([GPADL, relid, handle, pages - 1, first, flags])


def ring_reset(page, pages):
    return bytes([RESET, page, pages - 2])


def open_(relid, handle, offset, vp):
    return bytes([OPEN, relid, handle, offset, vp, 0])


def send(page, pages, length, flags, relid, payload=b''):
    head = bytes([SEND, page, pages - 2]) + struct.pack('<H', length) + bytes([flags, relid])
    if flags & 2:
        return head
    return head + payload[:min(length, 16)].ljust(min(length, 16), b'\0')


def recv(relid, page, pages):
    return bytes([RECV, relid, page, pages - 2])


def linux_session(version_index=0):
    """What Linux does: contact, offers, a ring GPADL (4 + 4 pages),
    rings reset, open, packets both ways, sub-channels, close, teardown,
    unload and a reconnect."""
    b = contact(version_index) + bytes([REQ])
    b += gpadl(1, 1, 8, 10) + ring_reset(10, 4) + ring_reset(14, 4) + open_(1, 1, 4, 1)
    for i in range(6):
        b += send(10, 4, 24 + i * 40, 1, 1, bytes(range(i, i + 16)))
    b += recv(1, 14, 4)
    b += send(10, 4, 8, 0x23, 1) + recv(1, 14, 4)
    b += bytes([MODIFY, 1, 0])
    b += gpadl(3, 2, 4, 30) + ring_reset(30, 2) + ring_reset(32, 2) + open_(3, 2, 2, 0)
    b += send(30, 2, 100, 1, 3, b'sub-channel two!') + recv(3, 32, 2)
    b += bytes([CLOSE, 3, TEARDOWN, 3, 2, CLOSE, 1, TEARDOWN, 1, 1, UNLOAD])
    b += contact(version_index) + bytes([REQ])
    return bytes([0x01]) + b


def seeds():
    yield 'linux-5.3-session', linux_session(0)
    yield 'linux-4.0-session', linux_session(5)
    # Linux walking down from 5.3 against a host capped at 4.1 (cfg bits 7:5 = 5).
    walk = b''.join(contact(i) for i in range(8)) + bytes([REQ])
    yield 'version-walk-capped', bytes([5 << 5]) + walk
    odd = contact(0, wrong=1) + contact(6, wrong=1) + contact(0, sint=250) + \
        contact(0, vp=5) + contact(8) + contact(9) + bytes([UNLOAD, UNLOAD])
    yield 'contact-refusals', bytes([0x00]) + odd
    g = contact(0) + bytes([REQ])
    g += gpadl(1, 1, 64, 0) + gpadl(1, 2, 30, 70, 2) + gpadl(1, 3, 5, 90, 4)
    g += gpadl(2, 1, 3, 200) + gpadl(9, 4, 1, 1) + gpadl(1, 5, 64, 20, 1)
    g += open_(1, 1, 32, 0) + bytes([TEARDOWN, 1, 1, TEARDOWN, 1, 9, CLOSE, 1])
    g += bytes([TEARDOWN, 1, 5, RELEASE, 1])
    yield 'gpadl-edges', bytes([0x08]) + g
    h = contact(0) + bytes([REQ, REMOVE, 0, ADD, 2, ADD, 0])
    h += gpadl(2, 1, 4, 40) + ring_reset(40, 2) + ring_reset(42, 2) + open_(2, 1, 2, 0)
    h += bytes([REMOVE, 1, RELEASE, 2, RELEASE, 1, ADD, 1, CLOSE, 2])
    yield 'hot-add-remove', bytes([0x06]) + h
    s = contact(0) + bytes([REQ]) + gpadl(1, 1, 4, 10) + ring_reset(10, 2) + \
        ring_reset(12, 2) + open_(1, 1, 2, 0)
    s += bytes([SIGNAL, 1]) * 40 + bytes([CLOCK, 0xff, 0xff]) + bytes([SIGNAL, 1]) * 10
    s += bytes([RAMW, 10, 0, 0, 8]) + b'\xf8\xff\xff\x7f\0\0\0\0' + bytes([SIGNAL, 1])
    yield 'signal-storm', bytes([0x10]) + s
    rnd = random.Random(20240611)
    yield 'garbage', bytes(rnd.randrange(256) for _ in range(600))
    raw = contact(0)
    for t in range(26):
        for length in (0, 7, 8, 12, 20, 40, 148, 240):
            raw += bytes([RAW, 0, length]) + struct.pack('<I', t) + bytes(max(0, length - 4))
    yield 'raw-every-type', bytes([0x00]) + raw


if __name__ == '__main__':
    os.makedirs(OUT, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
