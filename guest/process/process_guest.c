#include "process_guest.h"

#include <pthread.h>
#include <string.h>

struct vp_start {
	struct hv_posix *px;
	struct hv_guest *guest;
	uint32_t vp;
	int err;
};

static void *vp_main(void *arg)
{
	struct vp_start *s = arg;
	hv_posix_bind_vp(s->px, s->vp);
	s->err = hv_guest_vp_init(s->guest);
	return NULL;
}

int process_guest_init_vps(struct hv_posix *px, struct hv_guest *guest)
{
	uint32_t vps = hv_posix_vp_count(px);
	for (uint32_t vp = 0; vp < vps; vp++) {
		struct vp_start s = {px, guest, vp, 0};
		pthread_t t;
		int err = pthread_create(&t, NULL, vp_main, &s);
		if (err)
			return -err;
		pthread_join(t, NULL);
		if (s.err)
			return s.err;
	}
	return 0;
}

int process_guest_enlighten(struct hv_posix *px, struct hv_guest *guest,
			    struct hv_guest_config *cfg, struct hv_guest_features *features)
{
	const struct hv_port *port = hv_posix_port(px);
	hv_posix_bind_vp(px, 0);
	int err = hv_guest_detect(port, features);
	if (err)
		return err;
	cfg->vp_count = hv_posix_vp_count(px);
	err = hv_guest_init(guest, port, cfg);
	if (err)
		return err;
	return process_guest_init_vps(px, guest);
}

uint32_t process_echo_payload(uint64_t i, uint8_t out[PROCESS_ECHO_PAYLOAD_MAX])
{
	uint32_t len = 8 + (uint32_t)(i * 37 % 500);
	memcpy(out, &i, 8);
	for (uint32_t k = 8; k < len; k++)
		out[k] = (uint8_t)(i * 31 + k);
	return len;
}

int process_guest_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int err = pthread_condattr_init(&attr);
	if (!err)
		err = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	if (!err)
		err = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return -err;
}

struct timespec process_guest_deadline(int64_t ns)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	int64_t total = t.tv_nsec + ns % 1000000000LL;
	t.tv_sec += (time_t)(ns / 1000000000LL + total / 1000000000LL);
	t.tv_nsec = (long)(total % 1000000000LL);
	return t;
}
