/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * Helpers that every layer of libhfi1 may use: the provider, the MR cache,
 * the driver interface and the soft HFI. No layer of its own, no state.
 */
#ifndef HFI1_UTIL_H
#define HFI1_UTIL_H

#include <stddef.h>

/* The struct of @type whose @member @ptr points to. */
#ifndef container_of
/* clang-format 14 takes "(ptr) -" for a cast and eats the spaces around "-". */
/* clang-format off */
#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
/* clang-format on */
#endif

#endif /* HFI1_UTIL_H */
