/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the async event queue of a context whose backend has no kernel
 * to give one (the soft HFI). It carries records of any kind and knows no
 * part of the provider: the parts that raise events call
 * hfi1_async_post().
 */
#ifndef HFI1_ASYNC_H
#define HFI1_ASYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct hfi1_context;

struct hfi1_async_queue {
	/* The write end; context.async_fd is the read end. -1 if none. */
	int wr_fd;
	/* Set while the context is torn down: posts are dropped. */
	atomic_bool closed;
	/*
	 * Orders posts against hfi1_async_forget(), which takes records out
	 * and puts the others back in their order.
	 */
	pthread_mutex_t lock;
	/*
	 * A second, non-blocking open of the read end, for
	 * hfi1_async_forget() where the kernel's pipes do not take
	 * RWF_NOWAIT; -1 until needed.
	 */
	int nowait_fd;
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

/* Whether @event_type's element is a QP, CQ or SRQ (ibv_ack_async_event()). */
bool hfi1_async_is_object_event(uint32_t event_type);

/*
 * The same for an event about a QP, CQ or SRQ, whose element libibverbs
 * hands back as the object's address: *@posted counts the events queued
 * for that object, for hfi1_async_forget().
 */
int hfi1_async_post_obj(struct hfi1_context *ctx, uint32_t event_type,
			uint64_t element, uint32_t *posted);

/*
 * For the destroy of a QP, CQ or SRQ whose address is @element, once the
 * driver posts no more events for it: takes its events the application
 * has not read yet out of the queue, as the kernel's uverbs does, so that
 * nobody reads a freed object's address. Returns how many of the @posted
 * events the application has read (the kernel's events_reported): the
 * destroy must wait until it has acked as many (ibv_ack_async_event()).
 */
uint32_t hfi1_async_forget(struct hfi1_context *ctx, uint64_t element,
			   uint32_t posted);

/*
 * Waits until the application has acked @reported events of an object:
 * ibv_ack_async_event() counts them in *@completed under @mutex and
 * signals @cond. libibverbs' ibv_cmd_destroy_*() wait so for a kernel's.
 */
static inline void hfi1_async_wait_acked(pthread_mutex_t *mutex,
					 pthread_cond_t *cond,
					 uint32_t *completed, uint32_t reported)
{
	pthread_mutex_lock(mutex);
	while (*completed != reported)
		pthread_cond_wait(cond, mutex);
	pthread_mutex_unlock(mutex);
}

#endif /* HFI1_ASYNC_H */
