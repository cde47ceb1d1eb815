/* SPDX-License-Identifier: MIT */
/*
 * The PC's MC146818 CMOS clock: time of day from the host clock (plus
 * whatever offset the guest sets), in BCD or binary and 12 or 24-hour form
 * as register B asks, and the rest of the 128 bytes of CMOS RAM. The update
 * cycle is instantaneous, so "update in progress" never shows. No alarm or
 * periodic interrupts: nothing hvkit boots relies on them.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pio.h"

enum {
	RTC_SECONDS = 0x00, RTC_MINUTES = 0x02, RTC_HOURS = 0x04, RTC_DAY_OF_WEEK = 0x06,
	RTC_DAY = 0x07, RTC_MONTH = 0x08, RTC_YEAR = 0x09, RTC_REG_A = 0x0a, RTC_REG_B = 0x0b,
	RTC_REG_C = 0x0c, RTC_REG_D = 0x0d, RTC_CENTURY = 0x32,
};

#define REG_B_24H 0x02
#define REG_B_BINARY 0x04
#define REG_D_VALID 0x80
#define HOUR_PM 0x80

struct rtc {
	struct rtc_config cfg;
	pthread_mutex_t lock;
	uint8_t index;
	uint8_t ram[128];
	int64_t offset; /* guest time - host time, seconds */
};

static int64_t host_now(struct rtc *r)
{
	return r->cfg.now ? r->cfg.now(r->cfg.now_ctx) : (int64_t)time(NULL);
}

struct rtc *rtc_new(const struct rtc_config *cfg)
{
	struct rtc *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (cfg)
		r->cfg = *cfg;
	pthread_mutex_init(&r->lock, NULL);
	r->ram[RTC_REG_A] = 0x26; /* 32.768 kHz time base, 1024 Hz rate */
	r->ram[RTC_REG_B] = REG_B_24H;
	r->ram[RTC_REG_D] = REG_D_VALID;
	return r;
}

void rtc_free(struct rtc *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->lock);
	free(r);
}

static uint8_t to_reg(const struct rtc *r, unsigned v)
{
	return (r->ram[RTC_REG_B] & REG_B_BINARY) ? (uint8_t)v : (uint8_t)((v / 10) << 4 | v % 10);
}

static unsigned from_reg(const struct rtc *r, uint8_t v)
{
	return (r->ram[RTC_REG_B] & REG_B_BINARY) ? v : (unsigned)(v >> 4) * 10 + (v & 0x0f);
}

static struct tm guest_time(struct rtc *r)
{
	time_t t = (time_t)(host_now(r) + r->offset);
	struct tm tm;
	gmtime_r(&t, &tm);
	return tm;
}

static uint8_t hours_reg(const struct rtc *r, int hour)
{
	if (r->ram[RTC_REG_B] & REG_B_24H)
		return to_reg(r, (unsigned)hour);
	unsigned h12 = hour % 12 ? (unsigned)hour % 12 : 12;
	return (uint8_t)(to_reg(r, h12) | (hour >= 12 ? HOUR_PM : 0));
}

static int hours_from_reg(const struct rtc *r, uint8_t v)
{
	if (r->ram[RTC_REG_B] & REG_B_24H)
		return (int)from_reg(r, v);
	int h = (int)from_reg(r, v & (uint8_t)~HOUR_PM) % 12;
	return (v & HOUR_PM) ? h + 12 : h;
}

static uint8_t read_reg(struct rtc *r, uint8_t reg)
{
	struct tm tm = guest_time(r);
	switch (reg) {
	case RTC_SECONDS:
		return to_reg(r, (unsigned)tm.tm_sec);
	case RTC_MINUTES:
		return to_reg(r, (unsigned)tm.tm_min);
	case RTC_HOURS:
		return hours_reg(r, tm.tm_hour);
	case RTC_DAY_OF_WEEK:
		return to_reg(r, (unsigned)tm.tm_wday + 1);
	case RTC_DAY:
		return to_reg(r, (unsigned)tm.tm_mday);
	case RTC_MONTH:
		return to_reg(r, (unsigned)tm.tm_mon + 1);
	case RTC_YEAR:
		return to_reg(r, (unsigned)(tm.tm_year + 1900) % 100);
	case RTC_CENTURY:
		return to_reg(r, (unsigned)(tm.tm_year + 1900) / 100);
	case RTC_REG_C: {
		uint8_t v = r->ram[RTC_REG_C];
		r->ram[RTC_REG_C] = 0; /* reading acknowledges */
		return v;
	}
	default:
		return r->ram[reg];
	}
}

/* A write to a time field moves the guest's clock: the other fields keep
 * their current values. Nonsense (month 13) is ignored, as a real part
 * would show garbage but keep counting. */
static void set_time_field(struct rtc *r, uint8_t reg, uint8_t v)
{
	struct tm tm = guest_time(r);
	switch (reg) {
	case RTC_SECONDS:
		tm.tm_sec = (int)from_reg(r, v);
		break;
	case RTC_MINUTES:
		tm.tm_min = (int)from_reg(r, v);
		break;
	case RTC_HOURS:
		tm.tm_hour = hours_from_reg(r, v);
		break;
	case RTC_DAY:
		tm.tm_mday = (int)from_reg(r, v);
		break;
	case RTC_MONTH:
		tm.tm_mon = (int)from_reg(r, v) - 1;
		break;
	case RTC_YEAR:
		tm.tm_year = (tm.tm_year + 1900) / 100 * 100 + (int)from_reg(r, v) - 1900;
		break;
	case RTC_CENTURY:
		tm.tm_year = (int)from_reg(r, v) * 100 + (tm.tm_year + 1900) % 100 - 1900;
		break;
	default:
		return;
	}
	if (tm.tm_sec > 59 || tm.tm_min > 59 || tm.tm_hour > 23 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_mon < 0 || tm.tm_mon > 11)
		return;
	time_t t = timegm(&tm);
	if (t != (time_t)-1)
		r->offset = (int64_t)t - host_now(r);
}

static void write_reg(struct rtc *r, uint8_t reg, uint8_t v)
{
	switch (reg) {
	case RTC_SECONDS:
	case RTC_MINUTES:
	case RTC_HOURS:
	case RTC_DAY:
	case RTC_MONTH:
	case RTC_YEAR:
	case RTC_CENTURY:
		set_time_field(r, reg, v);
		break;
	case RTC_DAY_OF_WEEK:
		break; /* derived from the date */
	case RTC_REG_A:
		r->ram[reg] = v & 0x7f; /* UIP is read-only */
		break;
	case RTC_REG_C:
	case RTC_REG_D:
		break; /* read-only */
	default:
		r->ram[reg] = v;
	}
}

void rtc_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	struct rtc *r = dev;
	(void)size; /* byte registers: wider accesses use their low byte */
	pthread_mutex_lock(&r->lock);
	if (offset == 0) {
		if (write)
			r->index = *value & 0x7f; /* bit 7 masks NMIs: nothing to mask */
		else
			*value = 0xff;
	} else if (write) {
		write_reg(r, r->index, (uint8_t)*value);
	} else {
		*value = read_reg(r, r->index);
	}
	pthread_mutex_unlock(&r->lock);
}

void rtc_get_state(struct rtc *r, struct rtc_state *out)
{
	pthread_mutex_lock(&r->lock);
	out->index = r->index;
	memcpy(out->ram, r->ram, sizeof(out->ram));
	out->offset = r->offset;
	pthread_mutex_unlock(&r->lock);
}

void rtc_set_state(struct rtc *r, const struct rtc_state *in)
{
	pthread_mutex_lock(&r->lock);
	r->index = in->index;
	memcpy(r->ram, in->ram, sizeof(r->ram));
	r->offset = in->offset;
	pthread_mutex_unlock(&r->lock);
}
