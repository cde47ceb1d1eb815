/* SPDX-License-Identifier: MIT */
/* What the end-to-end tests' host and guest agree on. */
#ifndef HVKIT_TEST_SCENARIO_IDS_H
#define HVKIT_TEST_SCENARIO_IDS_H

#define ECHO_CONNECTION 0x10001u    /* messages come back on SINT 2 */
#define ECHO_MESSAGE_TYPE 0x42u
#define REFLECT_CONNECTION 0x10002u /* a signal sets REFLECT_FLAG on SINT 2 */
#define REFLECT_FLAG 7u
#define UNKNOWN_CONNECTION 0x10009u
#define CRASH_P0 0x1234abcdull
#define CRASH_TEXT "test guest panic: all is well"

#endif
