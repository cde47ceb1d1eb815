#!/usr/bin/env python3
"""Writes the seed corpus of fuzz-mini-ip: the frames libslirp sends the
stack in test_mini_ip_slirp.c (ARP, DHCP, ICMP, TCP), in the fuzz target's
input format: a mode byte, then frames each behind a 16-bit length."""
import os
import struct

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'fuzz', 'corpus', 'mini-ip')
US = bytes([0x00, 0x15, 0x5d, 0, 0, 1])
GW = bytes([0x52, 0x55, 0x0a, 0, 2, 2])
IP_US, IP_GW = bytes([10, 0, 2, 15]), bytes([10, 0, 2, 2])


def csum(b):
    if len(b) % 2:
        b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def eth(t, payload, dst=US):
    return dst + GW + struct.pack('!H', t) + payload


def ipv4(proto, payload, src=IP_GW, dst=IP_US):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 1, 0x4000, 64, proto, 0, src, dst)
    h = h[:10] + struct.pack('!H', csum(h)) + h[12:]
    return eth(0x0800, h + payload)


def tcp(sport, dport, seq, ack, flags, data=b''):
    t = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    s = csum(IP_GW + IP_US + struct.pack('!BBH', 0, 6, len(t)) + t)
    return ipv4(6, t[:16] + struct.pack('!H', s) + t[18:])


def arp(op, tip=IP_US):
    return eth(0x0806, struct.pack('!HHBBH6s4s6s4s', 1, 0x0800, 6, 4, op, GW, IP_GW,
                                   US if op == 2 else b'\0' * 6, tip))


def icmp(typ, seq):
    m = struct.pack('!BBHHH', typ, 0, 0, 0x4856, seq) + bytes(range(32))
    return ipv4(1, m[:2] + struct.pack('!H', csum(m)) + m[4:])


def dhcp(typ, yiaddr=IP_US):
    xid = 0x5d000001 ^ 0x5a5a1234
    d = struct.pack('!BBBBIHH4s4s4s4s16s64s128sI', 2, 1, 6, 0, xid, 0, 0x8000, b'\0' * 4, yiaddr,
                    IP_GW, b'\0' * 4, US, b'', b'', 0x63825363)
    d += bytes([53, 1, typ, 54, 4]) + IP_GW + bytes([1, 4, 255, 255, 255, 0, 3, 4]) + IP_GW
    d += bytes([6, 4, 10, 0, 2, 3, 255])
    u = struct.pack('!HHHH', 67, 68, 8 + len(d), 0) + d
    return ipv4(17, u, dst=b'\xff' * 4)


def seed(name, mode, frames):
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, name), 'wb') as f:
        f.write(bytes([mode]) + b''.join(struct.pack('!H', len(x)) + x for x in frames))


ISS_LISTEN = 0x1000 * 7000
ISS_CONNECT = 0x1000 * 40000
seed('dhcp', 1, [dhcp(2), dhcp(5)])
seed('passive-tcp', 0x30, [arp(1), tcp(5555, 7000, 100, 0, 0x02), tcp(5555, 7000, 101, ISS_LISTEN + 1, 0x10),
                           tcp(5555, 7000, 101, ISS_LISTEN + 1, 0x18, b'hello'),
                           tcp(5555, 7000, 106, ISS_LISTEN + 1, 0x11)])
seed('active-tcp', 2, [arp(2), tcp(80, 40000, 5000, ISS_CONNECT + 1, 0x12),
                       tcp(80, 40000, 5001, ISS_CONNECT + 1, 0x18, b'x' * 100),
                       tcp(80, 40000, 5101, ISS_CONNECT + 1, 0x04)])
seed('icmp', 4, [arp(2), icmp(0, 1), icmp(8, 9), tcp(1, 2, 3, 4, 0x02)])
