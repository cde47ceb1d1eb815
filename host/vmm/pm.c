/* SPDX-License-Identifier: MIT */
/*
 * ACPI fixed hardware in I/O space (ACPI 6.4 section 4.8): the PM1a event
 * block (status, enable), the PM1a control block (SCI_EN, SLP_TYP, SLP_EN)
 * and the 32-bit PM timer, plus the reset register of the FADT. Sleep
 * requests become events: SLP_TYP 5 powers off, 4 hibernates
 * (platform.h), anything else is ignored; a reset register write with bit
 * 2 resets. The machine is always in ACPI mode, so SCI_EN reads as set.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "hvkit/acpi.h"
#include "pio.h"
#include "platform.h"

#define PM1_STS_MASK 0x8731 /* TMR, BM, GBL, PWRBTN, SLPBTN, RTC, WAK */
#define PM1_EN_MASK 0x0721
#define RESET_CPU 0x04

struct pm {
	struct pm_config cfg;
	pthread_mutex_t lock;
	uint16_t status, enable, control;
	uint8_t reset;
	bool sci;
	uint32_t last_timer; /* to see bit 31 toggle */
};

static uint64_t now_ns(struct pm *p)
{
	if (p->cfg.now_ns)
		return p->cfg.now_ns(p->cfg.now_ctx);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t timer(struct pm *p)
{
	return (uint32_t)((unsigned __int128)now_ns(p) * PM_TIMER_HZ / 1000000000u);
}

struct pm *pm_new(const struct pm_config *cfg)
{
	struct pm *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->cfg = *cfg;
	pthread_mutex_init(&p->lock, NULL);
	p->control = ACPI_PM1_CNT_SCI_EN;
	p->last_timer = timer(p);
	return p;
}

void pm_free(struct pm *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p);
}

/* TMR_STS is set each time the counter's top bit toggles (every 10 min). */
static void timer_status(struct pm *p, uint32_t tmr)
{
	if ((tmr ^ p->last_timer) & 0x80000000u)
		p->status |= 1; /* TMR_STS */
	p->last_timer = tmr;
}

static void update_sci(struct pm *p)
{
	bool level = (p->status & p->enable) != 0;
	if (level != p->sci) {
		p->sci = level;
		if (p->cfg.line.set)
			p->cfg.line.set(p->cfg.line.ctx, PLATFORM_SCI_IRQ, level);
	}
}

static uint8_t read_byte(struct pm *p, uint16_t off, uint32_t tmr)
{
	switch (off) {
	case 0: case 1:
		return (uint8_t)(p->status >> (8 * off));
	case 2: case 3:
		return (uint8_t)(p->enable >> (8 * (off - 2)));
	case 4: case 5:
		return (uint8_t)((p->control & ~ACPI_PM1_CNT_SLP_EN) >> (8 * (off - 4)));
	case 8: case 9: case 10: case 11:
		return (uint8_t)(tmr >> (8 * (off - 8)));
	default:
		return 0xff;
	}
}

static void write_byte(struct pm *p, uint16_t off, uint8_t v)
{
	switch (off) {
	case 0: case 1: /* write one to clear */
		p->status &= (uint16_t)~((v << (8 * off)) & PM1_STS_MASK);
		break;
	case 2: case 3: {
		unsigned shift = 8 * (off - 2u);
		p->enable = (uint16_t)((p->enable & ~(0xffu << shift)) | ((unsigned)v << shift));
		p->enable &= PM1_EN_MASK;
		break;
	}
	case 4: case 5: {
		unsigned shift = 8 * (off - 4u);
		p->control = (uint16_t)((p->control & ~(0xffu << shift)) | ((unsigned)v << shift));
		p->control |= ACPI_PM1_CNT_SCI_EN;
		break;
	}
	default:
		break; /* the timer is read-only */
	}
}

static void sleep_request(struct pm *p)
{
	if (!(p->control & ACPI_PM1_CNT_SLP_EN))
		return;
	p->control &= (uint16_t)~ACPI_PM1_CNT_SLP_EN; /* write-only bit */
	unsigned typ = (p->control & ACPI_PM1_CNT_SLP_TYP_MASK) >> ACPI_PM1_CNT_SLP_TYP_SHIFT;
	if (!p->cfg.event)
		return;
	if (typ == PLATFORM_SLP_TYP_S5)
		p->cfg.event(p->cfg.event_ctx, PM_POWER_OFF);
	else if (typ == PLATFORM_SLP_TYP_S4)
		p->cfg.event(p->cfg.event_ctx, PM_HIBERNATE);
}

void pm_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	struct pm *p = dev;
	pthread_mutex_lock(&p->lock);
	uint32_t tmr = timer(p), out = 0; /* one timer sample per access */
	timer_status(p, tmr);
	for (uint8_t i = 0; i < size; i++) {
		if (write)
			write_byte(p, (uint16_t)(offset + i), (uint8_t)(*value >> (8 * i)));
		else
			out |= (uint32_t)read_byte(p, (uint16_t)(offset + i), tmr) << (8 * i);
	}
	if (write)
		sleep_request(p);
	else
		*value = out;
	update_sci(p);
	pthread_mutex_unlock(&p->lock);
}

void pm_reset_pio(void *dev, uint16_t offset, uint8_t size, bool write, uint32_t *value)
{
	struct pm *p = dev;
	(void)offset;
	(void)size;
	pthread_mutex_lock(&p->lock);
	if (!write) {
		*value = p->reset;
	} else {
		p->reset = (uint8_t)(*value & 0x0a); /* keeps SYS_RST and FULL_RST */
		if ((*value & RESET_CPU) && p->cfg.event)
			p->cfg.event(p->cfg.event_ctx, PM_RESET);
	}
	pthread_mutex_unlock(&p->lock);
}

void pm_get_state(struct pm *p, struct pm_state *out)
{
	pthread_mutex_lock(&p->lock);
	*out = (struct pm_state){p->status, p->enable, p->control, p->reset, p->sci};
	pthread_mutex_unlock(&p->lock);
}

void pm_set_state(struct pm *p, const struct pm_state *in)
{
	pthread_mutex_lock(&p->lock);
	p->status = in->status;
	p->enable = in->enable;
	p->control = in->control;
	p->reset = in->reset;
	p->sci = in->sci;
	pthread_mutex_unlock(&p->lock);
}
