/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the async event queue and the soft HFI's event thread (async.c).
 */
#ifndef HFI1_ASYNC_H
#define HFI1_ASYNC_H

#include <stdint.h>

struct hfi1_context;

int hfi1_async_init(struct hfi1_context *ctx);
void hfi1_async_cleanup(struct hfi1_context *ctx);
int hfi1_async_post(struct hfi1_context *ctx, uint32_t event_type,
		    uint64_t element);

#endif /* HFI1_ASYNC_H */
