/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The driver interface: the one place where the provider talks to an hfi1
 * user context. It has a single ioctl-shaped entry that takes the kernel's
 * own commands (HFI1_IOCTL_* from <rdma/rdma_user_ioctl.h>) and structs
 * (<rdma/hfi/hfi1_ioctl.h>, <rdma/hfi/hfi1_user.h>), so nothing above it
 * knows whether a real /dev/hfi1_N (the kernel backend) or the soft HFI
 * serves it.
 */
#ifndef HFI1_DRV_H
#define HFI1_DRV_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <linux/types.h>
#include <rdma/rdma_user_ioctl.h>
#include <rdma/hfi/hfi1_ioctl.h>
#include <rdma/hfi/hfi1_user.h>

struct hfi1_drv;

/*
 * Which part of the pin limit refused a TID_UPDATE with ENOMEM. The hfi1
 * driver weighs them in this order (hfi1_can_pin_pages()); the first two
 * not with CAP_IPC_LOCK.
 */
enum hfi1_drv_pin_limit {
	HFI1_DRV_PIN_NONE = 0, /* nothing refused, or the driver does not say */
	/* The process's pinned pages (hfi1: pinned_vm) past RLIMIT_MEMLOCK. */
	HFI1_DRV_PIN_RLIMIT,
	/* The context's share: RLIMIT_MEMLOCK / user contexts / 4. */
	HFI1_DRV_PIN_SHARE,
	/* The context's cap, hfi1's cache_size module parameter. */
	HFI1_DRV_PIN_CACHE_SIZE,
	/*
	 * The pinning itself: the kernel's own charge to RLIMIT_MEMLOCK,
	 * counted per user over all its processes (without CAP_IPC_LOCK),
	 * or no memory to pin.
	 */
	HFI1_DRV_PIN_KERNEL,
};

/* What the pin limit weighed when it refused; figures in bytes. */
struct hfi1_drv_pin_refusal {
	enum hfi1_drv_pin_limit limit;
	bool cap_ipc_lock; /* RLIMIT_MEMLOCK did not apply */
	uint64_t asked; /* by the TID_UPDATE refused */
	uint64_t rlimit_memlock; /* the soft limit; RLIM_INFINITY: none */
	uint64_t process_pinned; /* by the process's hfi1 contexts */
	uint64_t context_pinned; /* by this context */
	unsigned int user_contexts; /* the device's */
	uint64_t share; /* RLIMIT_MEMLOCK / user_contexts / 4 */
	uint64_t cache_size; /* a context's cap */
};

struct hfi1_drv_ops {
	const char *name;
	/*
	 * Same contract as ioctl(2) on /dev/hfi1_N: returns >= 0 on success
	 * (TID_FREE and friends return a count through their struct, not
	 * here), -1 with errno set on failure.
	 */
	int (*ioctl)(struct hfi1_drv *drv, unsigned long cmd, void *arg);
	void (*close)(struct hfi1_drv *drv);
	/*
	 * Optional: bring the event word up to date before it is read. The
	 * kernel's MMU notifier runs inside munmap(), so its event bits are
	 * set by the time munmap() returns; a backend whose notifier runs in
	 * another thread (the soft HFI) applies what is pending here, so
	 * that hfi1_drv_events() sees every unmapping that took effect
	 * before it was called (whose address may be mapped again before
	 * its munmap() returns). Must be cheap when nothing is pending, and
	 * must not take a lock then.
	 */
	void (*sync_events)(struct hfi1_drv *drv);
	/*
	 * Optional, with sync_events: the same for the unmappings whose
	 * munmap() (madvise(), mremap()) has returned before the call, in
	 * this thread or in one the caller synchronized with. Enough for
	 * a caller that only owes the application the events of what it
	 * unmapped before it called (ibv_dereg_mr()), not for a lookup
	 * (another thread's mmap() may be handed an address whose munmap()
	 * has not returned). No system call and no lock when nothing is
	 * pending. Without it, sync_events serves.
	 */
	void (*sync_returned)(struct hfi1_drv *drv);
	/*
	 * Optional: the adapter's DMA into an expected receive, for a backend
	 * that is its own adapter (the soft HFI); see hfi1_drv_place(). Real
	 * hardware places what it receives by itself: NULL.
	 */
	ssize_t (*place)(struct hfi1_drv *drv, size_t skip, uint32_t tidinfo,
			 size_t offset, int fd, size_t len);
	/*
	 * Optional: what refused this context's last TID_UPDATE that failed
	 * with ENOMEM, and the figures it weighed then (hfi1's driver only
	 * says ENOMEM). limit is HFI1_DRV_PIN_NONE if none did.
	 */
	void (*pin_refusal)(struct hfi1_drv *drv,
			    struct hfi1_drv_pin_refusal *refusal);
	/*
	 * Optional: whether the calling process owns the context. A backend
	 * whose context belongs to the process that opened it (the soft
	 * HFI's: a forked child gets EIO from every command) says so here,
	 * so that the provider refuses a child's verbs before they reach
	 * state the child only has a copy of. Called at the start of every
	 * verb: must be cheap and take no lock (the soft HFI's is two loads,
	 * getpid() where the kernel lacks MADV_WIPEONFORK). NULL: any caller
	 * may use the context (the kernel backend: the kernel decides).
	 */
	bool (*owned)(const struct hfi1_drv *drv);
};

/* One assigned hfi1 user context. */
struct hfi1_drv {
	const struct hfi1_drv_ops *ops;
	struct hfi1_ctxt_info ctxt_info; /* from HFI1_IOCTL_CTXT_INFO */
	struct hfi1_base_info base_info; /* from HFI1_IOCTL_USER_INFO */
	/*
	 * This subcontext's word of the event page (HFI1_EVENT_* bits), set
	 * by the driver; read it with an atomic load.
	 */
	volatile __u64 *events;
	/*
	 * An eventfd that becomes readable whenever the driver raises a bit
	 * in *events (the caller reads it to re-arm), so that a thread can
	 * sleep in poll() until then; the bit may show a moment before the
	 * fd does. -1 if the backend has none (the kernel's, which has no
	 * such notification).
	 */
	int event_fd;
};

static inline int hfi1_drv_ioctl(struct hfi1_drv *drv, unsigned long cmd,
				 void *arg)
{
	return drv->ops->ioctl(drv, cmd, arg);
}

/*
 * The event word, up to date: every event bit for an unmapping that took
 * effect before this call is set, even if the munmap() has not returned
 * yet in its thread (see sync_events). An acquire load.
 */
static inline __u64 hfi1_drv_events(struct hfi1_drv *drv)
{
	if (drv->ops->sync_events)
		drv->ops->sync_events(drv);
	return atomic_load_explicit((_Atomic __u64 *)drv->events,
				    memory_order_acquire);
}

/*
 * The event word, up to date for every unmapping whose munmap() returned
 * before this call (see sync_returned): cheaper than hfi1_drv_events(),
 * and not enough before a lookup. An acquire load.
 */
static inline __u64 hfi1_drv_events_returned(struct hfi1_drv *drv)
{
	if (drv->ops->sync_returned)
		drv->ops->sync_returned(drv);
	else if (drv->ops->sync_events)
		drv->ops->sync_events(drv);
	return atomic_load_explicit((_Atomic __u64 *)drv->events,
				    memory_order_acquire);
}

/*
 * The placement primitive: move @len bytes read from @fd into the buffer of
 * the programmed entry @tidinfo (as TID_UPDATE returned it), starting
 * @offset bytes into it. It writes the pages pinned for the entry, never
 * the current mapping of their address, as an HFI's DMA does. Returns the
 * bytes placed (fewer only at end of file), or -1 with errno: EINVAL for a
 * bad tidinfo or a range outside the entry; EBADF for an entry that is not
 * programmed; ESTALE for one that was invalidated; read(2)'s errors on
 * @fd; EIO from a forked child; EOPNOTSUPP where the hardware places.
 */
static inline ssize_t hfi1_drv_place(struct hfi1_drv *drv, uint32_t tidinfo,
				     size_t offset, int fd, size_t len)
{
	if (!drv->ops->place) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return drv->ops->place(drv, 0, tidinfo, offset, fd, len);
}

/* The most hfi1_drv_place_after() skips. */
#define HFI1_DRV_PLACE_SKIP_MAX (64 * 1024)

/*
 * The same, after reading and discarding the next @skip bytes of @fd, a
 * stream socket, in the same submission: one system call for both where
 * the data is there. Nothing is placed unless all @skip bytes were read
 * (EPIPE at end of stream). @skip is at most HFI1_DRV_PLACE_SKIP_MAX
 * (else EINVAL).
 */
static inline ssize_t hfi1_drv_place_after(struct hfi1_drv *drv, size_t skip,
					   uint32_t tidinfo, size_t offset,
					   int fd, size_t len)
{
	if (!drv->ops->place) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return drv->ops->place(drv, skip, tidinfo, offset, fd, len);
}

/*
 * Which limit refused the context's last TID_UPDATE that failed with
 * ENOMEM, with its figures: see hfi1_drv_ops.pin_refusal. A backend that
 * does not say gives HFI1_DRV_PIN_NONE.
 */
static inline void hfi1_drv_pin_refusal(struct hfi1_drv *drv,
					struct hfi1_drv_pin_refusal *refusal)
{
	if (drv->ops->pin_refusal)
		drv->ops->pin_refusal(drv, refusal);
	else
		memset(refusal, 0, sizeof(*refusal));
}

/* Whether the caller owns @drv (see the owned op): false in a forked child. */
static inline bool hfi1_drv_owned(const struct hfi1_drv *drv)
{
	return !drv->ops->owned || drv->ops->owned(drv);
}

static inline void hfi1_drv_close(struct hfi1_drv *drv)
{
	if (drv)
		drv->ops->close(drv);
}

#endif /* HFI1_DRV_H */
