/* SPDX-License-Identifier: MIT */
/*
 * A small AML (ACPI Machine Language) encoder: just what hvkit's DSDT needs
 * (names, integers, strings, packages, scopes, devices, simple methods and
 * resource templates). Encodings per ACPI 6.4 chapter 20 (AML grammar) and
 * 6.4 (resource data types).
 *
 * Objects that carry a PkgLength (scope, device, method, package, buffer)
 * are opened, filled, then closed; closing writes the length in front.
 * Errors (out of memory, unbalanced close, a bad name) stick: aml_finish
 * reports the first one.
 */
#ifndef HVKIT_AML_H
#define HVKIT_AML_H

#include <stddef.h>
#include <stdint.h>

#define AML_MAX_DEPTH 16

struct aml {
	uint8_t *buf;
	size_t len, cap;
	size_t open[AML_MAX_DEPTH]; /* where each open object's body starts */
	unsigned depth;
	int err;
};

void aml_init(struct aml *a);
/* Hands out the encoded bytes (caller frees) or returns the first error. */
int aml_finish(struct aml *a, uint8_t **out, size_t *len);
void aml_free(struct aml *a);

/* Names: "\\_SB.VMOD", "_HID", "^PARENT"; segments of 1-4 characters
 * from [A-Z0-9_], the first not a digit; short ones are padded with '_'. */
void aml_name(struct aml *a, const char *path);

void aml_integer(struct aml *a, uint64_t v);
void aml_string(struct aml *a, const char *s);
/* EISA id such as "PNP0501", compressed into a DWord. */
void aml_eisa_id(struct aml *a, const char *id);

/* Name(path, <data>): follow with one data object. */
void aml_name_decl(struct aml *a, const char *path);

void aml_scope_open(struct aml *a, const char *path);
void aml_device_open(struct aml *a, const char *path);
void aml_method_open(struct aml *a, const char *path, unsigned args, int serialized);
void aml_package_open(struct aml *a, unsigned elements);
void aml_close(struct aml *a);

/* Statements for small methods. */
void aml_return(struct aml *a);           /* follow with the value */
void aml_and_store(struct aml *a, const char *name, uint64_t mask); /* name &= mask */
void aml_or_store(struct aml *a, const char *name, uint64_t bits);  /* name |= bits */

/* A resource template: a Buffer of resource descriptors and an end tag. */
void aml_resources_open(struct aml *a);
void aml_resources_close(struct aml *a);
void aml_res_qword_memory(struct aml *a, uint64_t base, uint64_t length); /* producer window */
void aml_res_io(struct aml *a, uint16_t port, uint8_t length);
void aml_res_irq(struct aml *a, unsigned irq); /* IRQNoFlags, edge, high */

#endif /* HVKIT_AML_H */
