#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_vmbus_client.c (its input format is
described at the top of that file) into tests/fuzz/corpus/vmbus-client/."""
import os
import struct
import sys

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fuzz', 'corpus',
                   'vmbus-client')

RAW, SHAPED, EVENT, RING, HOSTPKT, GUEST, SWITCHES, DELIVER = range(8)
PROCESS, SEND, CLOSE, OPEN, RETARGET, UNLOAD, CONNECT, WAIT, RECV, HOSTRECV, GPA = range(11)
# Message types (include/hvkit/vmbus.h).
OFFER, RESCIND, ALLOFFERS, OPEN_RESULT, GPADL_CREATED, TORNDOWN, VERSION, UNLOAD_RESP, \
    MODIFY_RESP = 1, 2, 4, 6, 10, 12, 15, 17, 24
SCSI, NIC, OTHER = 0, 1, 2


def raw(payload):
    return bytes([RAW, len(payload)]) + payload


def shaped(msgtype, relid=0, ident=0, status=0, cls=0, inst=0, sub=0):
    return bytes([SHAPED, msgtype]) + struct.pack('<HI', relid, ident) + \
        bytes([200 if status else 0, cls, inst, sub])


def event(vp, relid):
    return bytes([EVENT, vp]) + struct.pack('<H', relid)


def ring(ch, offset, data):
    return bytes([RING, ch, len(data)]) + struct.pack('<H', offset) + data


def hostpkt(ch, data):
    return bytes([HOSTPKT, ch, len(data)]) + data


def guest(op, arg=0):
    return bytes([GUEST, op, arg])


def switches(b):
    return bytes([SWITCHES, b])


def deliver():
    return bytes([DELIVER])


SEEDS = {
    # What Hyper-V does to a running guest: a device hot-added and used, the
    # NIC's sub-channel traffic, a retarget at 5.3, the device removed, an
    # unload and a reconnect.
    'realistic-hyperv-session': bytes([0x40]) +
        shaped(OFFER, relid=9, cls=OTHER, inst=5) + deliver() + guest(PROCESS) +
        hostpkt(0, b'storvsp: protocol version') + hostpkt(1, b'netvsp: init') +
        guest(SEND, 24) + guest(HOSTRECV, 0) + guest(SEND, 40) +
        guest(RETARGET, 2) + guest(RETARGET, 3) +
        hostpkt(0, b'completion') + event(2, 1) +
        shaped(RESCIND, relid=9) + deliver() + guest(WAIT) + guest(PROCESS) +
        guest(UNLOAD) + guest(CONNECT) + hostpkt(0, b'again'),
    # Every type, one byte short, and types the guest never takes.
    'short-and-unknown-messages': bytes([0]) +
        b''.join(raw(struct.pack('<I', t) + bytes(n - 4)) for t, n in
                 [(OFFER, 195), (RESCIND, 11), (OPEN_RESULT, 19), (GPADL_CREATED, 19),
                  (TORNDOWN, 11), (VERSION, 15), (MODIFY_RESP, 15)]) +
        b''.join(raw(struct.pack('<I', t) + bytes(60)) for t in (0, 3, 5, 7, 8, 14, 21, 25)) +
        raw(b'\x01\x00') + deliver() + guest(PROCESS),
    # Offers no host may make, answers nobody asked for, rescinds of nothing.
    'impossible-offers-and-answers': bytes([0]) +
        shaped(OFFER, relid=0) + shaped(OFFER, relid=2048) + shaped(OFFER, relid=1) +
        shaped(OFFER, relid=50, cls=SCSI, inst=0) + shaped(OFFER, relid=51, inst=7, sub=2) +
        shaped(OPEN_RESULT, relid=1, ident=1) + shaped(GPADL_CREATED, relid=1) +
        shaped(TORNDOWN) + shaped(VERSION, ident=1) + shaped(MODIFY_RESP, relid=1) +
        shaped(UNLOAD_RESP) + shaped(RESCIND, relid=77) + shaped(RESCIND, relid=1) +
        shaped(RESCIND, relid=1) + deliver() + guest(PROCESS) + guest(CONNECT),
    # A host scribbling over the ring headers and packets it shares.
    'ring-corruption': bytes([0]) +
        ring(0, 0, b'\xff\xff\xff\x7f') + event(0, 1) +
        ring(0, 4096 * 2, b'\x03\x00\x00\x00') + event(1, 1) +
        hostpkt(0, b'ok') + ring(0, 4096 * 3, b'\x06\x00\x02\x00\xff\xff\x01\x00') +
        event(0, 1) + guest(RECV, 200) + guest(SEND, 8) + guest(CLOSE) + guest(OPEN, 1),
    # A host that stops answering, refuses, then answers late.
    'silent-and-refusing-host': bytes([0]) +
        switches(0x02) + guest(CLOSE) + guest(OPEN) + switches(0x04) + guest(CLOSE) +
        switches(0x08) + guest(RETARGET, 1) + switches(0x60) + guest(OPEN) +
        switches(0x00) + shaped(MODIFY_RESP, relid=1) + shaped(TORNDOWN, ident=2) +
        deliver() + switches(0x10) + guest(UNLOAD) + switches(0) + guest(CONNECT),
    # An old host: 2.4, no connection 4, interrupt page in use.
    'old-host-2-4': bytes([0x07 | 0x10 | 0x20]) +
        guest(SEND, 16) + guest(SEND, 16) + guest(HOSTRECV) + guest(SEND, 1) +
        guest(RETARGET, 1) + event(0, 1) + event(3, 2047) + guest(UNLOAD) + guest(CONNECT),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), 'wb') as f:
            f.write(data)
    return 0


if __name__ == '__main__':
    sys.exit(main())
