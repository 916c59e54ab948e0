/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the async event queue of a context whose backend has no kernel
 * to give one (the soft HFI). It carries records of any kind and knows no
 * part of the provider: the parts that raise events call
 * hfi1_async_post().
 */
#ifndef HFI1_ASYNC_H
#define HFI1_ASYNC_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct hfi1_context;

struct hfi1_async_queue {
	/* The write end; context.async_fd is the read end. -1 if none. */
	int wr_fd;
	/* Set while the context is torn down: posts are dropped. */
	atomic_bool closed;
};

/* Make the queue and hand its read end to libibverbs; 0 or an errno. */
int hfi1_async_init(struct hfi1_context *ctx);
/* From now on nobody reads the queue: hfi1_async_post() drops events. */
void hfi1_async_close(struct hfi1_context *ctx);
/* Undoes whatever part of hfi1_async_init() succeeded. */
void hfi1_async_cleanup(struct hfi1_context *ctx);

/*
 * Queue one event (ib_uverbs_async_event_desc: type and element); never
 * blocks. 0, or ENOSPC with a log line when the application has let the
 * queue fill up.
 */
int hfi1_async_post(struct hfi1_context *ctx, uint32_t event_type,
		    uint64_t element);

#endif /* HFI1_ASYNC_H */
