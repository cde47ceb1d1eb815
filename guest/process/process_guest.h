/* Helpers shared by the programs that run as process-partition guests
 * (cmd/hvkit-guest and the test guests): bringing the enlightenments up on
 * every VP, and the payload pattern the echo exchanges use. */
#ifndef HVKIT_PROCESS_GUEST_H
#define HVKIT_PROCESS_GUEST_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "hv_guest.h"
#include "posix.h"

/* Runs hv_guest_vp_init for every VP of the partition, each on a thread
 * bound to that VP (a SynIC is per VP, and so are its MSR writes).
 * Returns 0 or the first VP's error. */
int process_guest_init_vps(struct hv_posix *px, struct hv_guest *guest);

/* Detects Hyper-V on VP 0, then hv_guest_init and process_guest_init_vps.
 * cfg->vp_count is filled in from the partition. */
int process_guest_enlighten(struct hv_posix *px, struct hv_guest *guest,
			    struct hv_guest_config *cfg, struct hv_guest_features *features);

/* A condition variable whose timed waits run on CLOCK_MONOTONIC (a wall
 * clock that jumps must not cut or stretch a wait), and the deadline ns
 * from now on that clock. */
int process_guest_cond_init(pthread_cond_t *cond);
struct timespec process_guest_deadline(int64_t ns);

/* Echo packet i: 8 to 507 bytes, its index first, then bytes derived from
 * it, so a completion can be checked without remembering what was sent. */
#define PROCESS_ECHO_PAYLOAD_MAX 512
uint32_t process_echo_payload(uint64_t i, uint8_t out[PROCESS_ECHO_PAYLOAD_MAX]);

#endif /* HVKIT_PROCESS_GUEST_H */
