/* SPDX-License-Identifier: MIT */
#ifndef HVKIT_OS_FORMAT_H
#define HVKIT_OS_FORMAT_H

#include <stdarg.h>
#include <stddef.h>

/* vsnprintf's contract: returns the length the whole text would have,
 * writes at most size bytes including the terminating NUL. */
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);

#endif
