// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: a context's life and its commands, as the hfi1 driver's
 * file_ops.c has them: open and close, the ioctl dispatch (GET_VERS,
 * ASSIGN_CTXT, CTXT_INFO, USER_INFO, ACK_EVENT here; the TID commands are
 * user_exp_rcv.c's), what is copied back and when, and the event hooks
 * of the driver interface (sync_events, sync_returned).
 *
 * A context belongs to the process that opened it. After fork() the child
 * sees EIO from every call; the parent's entries stay valid, because pages
 * pinned for DMA are copied for the child at fork and never shared. The
 * child is told apart without a system call: see sctxt_owned() (sctxt.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/eventfd.h>

#include "sctxt.h"

#ifndef HFI1_USER_SWVERSION
#define HFI1_USER_SWVERSION \
	((HFI1_USER_SWMAJOR << HFI1_SWMAJOR_SHIFT) | HFI1_USER_SWMINOR)
#endif
/* hfi1's KDETH QP prefix, which USER_INFO reports as bthqp. */
#define SOFTHFI_KDETH_QP 0x80
#define SOFTHFI_DEFAULT_CACHE_MB 256 /* hfi1's cache_size default */

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

/*
 * A forked child has pinned nothing, as a new mm starts with no
 * pinned_vm: the parent's pins stay the parent's (and are not released
 * by the child, see sctxt_close()).
 */
static void atfork_child(void)
{
	atomic_store(&process_pinned_pages, 0);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

/* Sets up owner_mark; without MADV_WIPEONFORK it stays NULL. */
static void owner_mark_init(struct softhfi_ctxt *ctx)
{
	void *page = mmap(NULL, ctx->page_size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (page == MAP_FAILED)
		return;
	if (madvise(page, ctx->page_size, MADV_WIPEONFORK)) {
		munmap(page, ctx->page_size);
		return;
	}
	ctx->owner_mark = page;
	atomic_store(ctx->owner_mark, 1);
}

static void owner_mark_fini(struct softhfi_ctxt *ctx)
{
	if (ctx->owner_mark)
		munmap(ctx->owner_mark, ctx->page_size);
}

static int ack_event(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	unsigned long events;
	__u64 clear = 0;
	int err, bit;

	err = copy_from_user(ctx, &events, uarg, sizeof(events));
	if (err)
		return err;
	for (bit = 0; bit <= _HFI1_MAX_EVENT_BIT; bit++)
		if (events & (1UL << bit))
			clear |= 1UL << bit;

	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	/* Acknowledging never loses an invalidation still queued. */
	if (ctx->invalid_tid_idx)
		clear &= ~(__u64)HFI1_EVENT_TID_MMU_NOTIFY;
	atomic_fetch_and((_Atomic __u64 *)ctx->drv.events, ~clear);
	ctxt_unlock(ctx);
	return 0;
}

/* ASSIGN_CTXT: what hfi1 allocates for a context, we set up here. */
static int assign_ctxt(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_user_info uinfo;
	int err;

	err = copy_from_user(ctx, &uinfo, uarg, sizeof(uinfo));
	if (err)
		return err;
	if (ctx->assigned)
		return EINVAL;
	if (uinfo.userversion >> HFI1_SWMAJOR_SHIFT != HFI1_USER_SWMAJOR)
		return ENODEV;
	/* Contexts shared between processes are not emulated. */
	if (uinfo.subctxt_cnt)
		return EINVAL;

	err = alloc_tables(ctx);
	if (err)
		return err;
	err = -io_uring_queue_init(8, &ctx->ring, 0);
	if (err)
		goto err_free_tables;
	ctx->ring_ready = true;
	err = -io_uring_register_buffers_sparse(&ctx->ring,
						ctx->params.expected_count);
	if (err)
		goto err_exit_ring;
	ctx->watch.lock = &ctx->lock;
	ctx->watch.invalidate = invalidate_range_locked;
	ctx->watch.programmed = sctxt_programmed;
	ctx->watch.unlock = sctxt_watch_unlock;
	ctx->watch.after_drain = sctxt_after_drain;
	err = softhfi_notifier_attach(&ctx->watch);
	if (err)
		goto err_exit_ring;
	ctx->watching = true;
	ctx->assigned = true;
	return 0;

err_exit_ring:
	io_uring_queue_exit(&ctx->ring);
	ctx->ring_ready = false;
err_free_tables:
	free_tables(ctx);
	return err;
}

static int ctxt_info(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_ctxt_info info = {
		.num_active = 1,
		.unit = ctx->params.unit,
		.ctxt = ctx->params.ctxt,
		.subctxt = 0,
		.rcvtids = ctx->params.expected_count,
		.numa_node = 0,
		.rec_cpu = 0xffff,
	};

	return copy_to_user(ctx, uarg, &info, sizeof(info));
}

static int user_info(struct softhfi_ctxt *ctx, uint64_t uarg)
{
	struct hfi1_base_info info = {
		.hw_version = 0,
		.sw_version = HFI1_USER_SWVERSION,
		.bthqp = SOFTHFI_KDETH_QP,
		/* In-process: the token is the word's address itself. */
		.events_bufbase = (uintptr_t)ctx->drv.events,
	};

	return copy_to_user(ctx, uarg, &info, sizeof(info));
}

static int sctxt_ioctl(struct hfi1_drv *drv, unsigned long cmd, void *arg)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	uint64_t uarg = (uintptr_t)arg;
	int vers = HFI1_USER_SWVERSION;
	int err;

	if (!sctxt_owned(ctx)) {
		err = EIO;
		goto out;
	}
	if (cmd == HFI1_IOCTL_GET_VERS) {
		err = copy_to_user(ctx, uarg, &vers, sizeof(vers));
		goto out;
	}
	if (cmd == HFI1_IOCTL_ASSIGN_CTXT) {
		err = assign_ctxt(ctx, uarg);
		goto out;
	}
	if (!ctx->assigned) {
		err = EINVAL;
		goto out;
	}

	switch (cmd) {
	case HFI1_IOCTL_CTXT_INFO:
		err = ctxt_info(ctx, uarg);
		break;
	case HFI1_IOCTL_USER_INFO:
		err = user_info(ctx, uarg);
		break;
	case HFI1_IOCTL_TID_UPDATE:
		err = tid_update(ctx, uarg);
		break;
	case HFI1_IOCTL_TID_FREE:
		err = tid_free(ctx, uarg);
		break;
	case HFI1_IOCTL_TID_INVAL_READ:
		err = tid_inval_read(ctx, uarg);
		break;
	case HFI1_IOCTL_ACK_EVENT:
		err = ack_event(ctx, uarg);
		break;
	default:
		/* No send contexts, eager buffers or pkeys to manage. */
		err = ENOTTY;
		break;
	}
out:
	if (err) {
		errno = err;
		return -1;
	}
	return 0;
}

static void sctxt_close(struct hfi1_drv *drv)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	bool owner = sctxt_owned(ctx);

	if (ctx->watching && owner)
		softhfi_notifier_detach(&ctx->watch);
	if (ctx->ring_ready) {
		/* The ring's pins go with its last file reference. */
		if (owner)
			atomic_fetch_sub(&process_pinned_pages,
					 ctx->tid_n_pinned);
		io_uring_queue_exit(&ctx->ring);
	}
	if (ctx->assigned)
		free_tables(ctx);
	munmap(ctx->event_page, ctx->page_size);
	if (ctx->drv.event_fd >= 0)
		close(ctx->drv.event_fd);
	owner_mark_fini(ctx);
	uaccess_out_fini(ctx);
	close(ctx->uaccess_pipe[0]);
	close(ctx->uaccess_pipe[1]);
	pthread_mutex_destroy(&ctx->uaccess_lock);
	pthread_cond_destroy(&ctx->unpinned);
	pthread_mutex_destroy(&ctx->place_lock);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx->skip_buf);
	free(ctx);
}

/*
 * hfi1's MMU notifier runs inside munmap(); ours runs in the notifier's
 * threads, and the event bit may not be raised yet when munmap() returns.
 * Apply what the notifier has logged, so that the caller's next look at
 * the event word sees it. Nothing pending (the usual case): one system
 * call (see unmap_in_flight() in notifier.c) and a few atomic loads, no
 * lock.
 */
static void sctxt_sync_events(struct hfi1_drv *drv)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);

	if (!ctx->watching || !softhfi_notifier_pending(&ctx->watch) ||
	    !sctxt_owned(ctx))
		return;
	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_locked(&ctx->watch);
	ctxt_unlock(ctx);
}

/*
 * sctxt_sync_events() for the unmappings whose munmap() has returned (see
 * softhfi_notifier_pending_returned()): a few atomic loads and no system
 * call, and a drain that does not wait for the kernel either.
 */
static void sctxt_sync_returned(struct hfi1_drv *drv)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);

	if (!ctx->watching || !softhfi_notifier_pending_returned(&ctx->watch) ||
	    !sctxt_owned(ctx))
		return;
	pthread_mutex_lock(&ctx->lock);
	softhfi_notifier_drain_returned_locked(&ctx->watch);
	ctxt_unlock(ctx);
}

static bool sctxt_owned_op(const struct hfi1_drv *drv)
{
	return sctxt_owned(container_of(drv, const struct softhfi_ctxt, drv));
}

static const struct hfi1_drv_ops sctxt_ops = {
	.name = "soft",
	.ioctl = sctxt_ioctl,
	.close = sctxt_close,
	.sync_events = sctxt_sync_events,
	.sync_returned = sctxt_sync_returned,
	.place = sctxt_place,
	.pin_refusal = sctxt_pin_refusal,
	.owned = sctxt_owned_op,
};

void softhfi_default_params(struct softhfi_params *params)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	memset(params, 0, sizeof(*params));
	params->expected_count = SOFTHFI_MAX_EXPECTED;
	/* hfi1 gives one user context per CPU unless told otherwise. */
	params->user_contexts = cpus > 0 ? cpus : 1;
	params->cache_size_mb = SOFTHFI_DEFAULT_CACHE_MB;
	params->contig_pages = SOFTHFI_MAX_RUN_PAGES;
	params->ctxt = 1;
}

static bool params_valid(const struct softhfi_params *p)
{
	return p->expected_count && p->expected_count <= SOFTHFI_MAX_EXPECTED &&
	       !(p->expected_count % SOFTHFI_GROUP_SIZE) && p->user_contexts &&
	       p->contig_pages && p->contig_pages <= SOFTHFI_MAX_RUN_PAGES;
}

struct hfi1_drv *softhfi_open(const struct softhfi_params *params)
{
	struct hfi1_user_info uinfo = {
		.userversion = HFI1_USER_SWVERSION,
	};
	struct softhfi_ctxt *ctx;
	size_t word;
	int vers = 0;
	int err, sz;

	if (!params_valid(params)) {
		errno = EINVAL;
		return NULL;
	}
	pthread_once(&atfork_once, register_atfork);
	ctx = calloc(1, sizeof(*ctx));
	if (!ctx)
		return NULL;
	ctx->params = *params;
	ctx->owner = getpid();
	ctx->page_size = sysconf(_SC_PAGESIZE);
	owner_mark_init(ctx);
	ctx->drv.ops = &sctxt_ops;
	ctx->drv.event_fd = -1;
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_mutex_init(&ctx->place_lock, NULL);
	pthread_mutex_init(&ctx->uaccess_lock, NULL);
	pthread_cond_init(&ctx->unpinned, NULL);

	if (pipe2(ctx->uaccess_pipe, O_CLOEXEC | O_NONBLOCK)) {
		err = errno;
		goto err_free;
	}
	/* The pipe's capacity: a write that fits never comes back short. */
	sz = fcntl(ctx->uaccess_pipe[1], F_GETPIPE_SZ);
	ctx->uaccess_chunk = sz > 0 ? (size_t)sz : ctx->page_size;
	uaccess_out_init(ctx);

	ctx->event_page = mmap(NULL, ctx->page_size, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (ctx->event_page == MAP_FAILED) {
		err = errno;
		ctx->event_page = NULL;
		goto err_close_pipe;
	}
	/* Readable when an event bit is raised: see raise_event_locked(). */
	ctx->drv.event_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ctx->drv.event_fd < 0) {
		err = errno;
		munmap(ctx->event_page, ctx->page_size);
		goto err_close_pipe;
	}
	/* hfi1's place for the word: by context, 8 subcontexts each. */
	word = (params->ctxt * HFI1_MAX_SHARED_CTXTS) * sizeof(unsigned long);
	ctx->drv.events = (volatile __u64 *)((char *)ctx->event_page +
					     word % ctx->page_size);

	/* The same sequence that the kernel backend sends to /dev/hfi1_N. */
	if (sctxt_ioctl(&ctx->drv, HFI1_IOCTL_GET_VERS, &vers) ||
	    sctxt_ioctl(&ctx->drv, HFI1_IOCTL_ASSIGN_CTXT, &uinfo) ||
	    sctxt_ioctl(&ctx->drv, HFI1_IOCTL_CTXT_INFO, &ctx->drv.ctxt_info) ||
	    sctxt_ioctl(&ctx->drv, HFI1_IOCTL_USER_INFO, &ctx->drv.base_info)) {
		err = errno;
		sctxt_close(&ctx->drv);
		errno = err;
		return NULL;
	}
	return &ctx->drv;

err_close_pipe:
	uaccess_out_fini(ctx);
	close(ctx->uaccess_pipe[0]);
	close(ctx->uaccess_pipe[1]);
err_free:
	owner_mark_fini(ctx);
	pthread_mutex_destroy(&ctx->uaccess_lock);
	pthread_cond_destroy(&ctx->unpinned);
	pthread_mutex_destroy(&ctx->place_lock);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx);
	errno = err;
	return NULL;
}
