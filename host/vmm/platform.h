/* SPDX-License-Identifier: MIT */
/*
 * The fixed parts of an hvkit KVM machine that the firmware tables describe
 * and the device models implement: interrupt controllers, the ACPI PM
 * register block, the reset register, legacy ports and IRQs.
 */
#ifndef HVKIT_PLATFORM_H
#define HVKIT_PLATFORM_H

#define PLATFORM_LAPIC_BASE 0xfee00000u
#define PLATFORM_IOAPIC_BASE 0xfec00000u
#define PLATFORM_IOAPIC_PINS 24

/* ACPI fixed hardware, in I/O space (ACPI 6.4 section 4.8). */
#define PLATFORM_PM_BASE 0x400
#define PLATFORM_PM1_EVT (PLATFORM_PM_BASE + 0) /* status word, enable word */
#define PLATFORM_PM1_CNT (PLATFORM_PM_BASE + 4)
#define PLATFORM_PM_TMR (PLATFORM_PM_BASE + 8)
#define PLATFORM_SCI_IRQ 9
#define PLATFORM_RESET_PORT 0xcf9
#define PLATFORM_RESET_VALUE 0x06

/* SLP_TYP values \_S4 and \_S5 hand to the guest; PM1_CNT writes with
 * SLP_EN and one of these power the machine off or hibernate it. */
#define PLATFORM_SLP_TYP_S4 4
#define PLATFORM_SLP_TYP_S5 5

#define PLATFORM_COM1_PORT 0x3f8
#define PLATFORM_COM1_IRQ 4
#define PLATFORM_RTC_PORT 0x70
#define PLATFORM_RTC_IRQ 8

#endif /* HVKIT_PLATFORM_H */
