/* SPDX-License-Identifier: MIT */
/*
 * A loopback self-test for a NIC, shared by the guests that bind netvsc
 * (hvkit-guest, hvkit-os): frames addressed to the NIC's own MAC with the
 * local experimental EtherType (IEEE 802 0x88b5, never forwarded anywhere
 * it means something), each carrying its sequence number and length and a
 * pattern derived from them, so that what a loopback backend hands back can
 * be checked intact. Pure: no driver state.
 */
#ifndef HVKIT_NETVSC_SELFTEST_H
#define HVKIT_NETVSC_SELFTEST_H

#include <stddef.h>
#include <stdint.h>

#define NETVSC_SELFTEST_ETHERTYPE 0x88b5u
#define NETVSC_SELFTEST_MIN 60u /* the Ethernet minimum, without FCS */
#define NETVSC_SELFTEST_FRAMES 8u

/* The length of self-test frame seq (of NETVSC_SELFTEST_FRAMES), spread
 * from the minimum up to the largest the MTU allows. */
uint32_t netvsc_selftest_len(uint32_t seq, uint32_t mtu);

/* Builds frame seq of len bytes (at least NETVSC_SELFTEST_MIN) into out. */
void netvsc_selftest_frame(const uint8_t mac[6], uint32_t seq, uint32_t len, uint8_t *out);

/* 1: an intact self-test frame to mac, *seq set; 0: some other frame;
 * -1: a self-test frame that came back damaged (length or content). */
int netvsc_selftest_check(const uint8_t mac[6], const void *frame, size_t len, uint32_t *seq);

#endif /* HVKIT_NETVSC_SELFTEST_H */
