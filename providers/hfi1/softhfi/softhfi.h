/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * The soft HFI: an hfi1 user context emulated in user space. It serves the
 * driver interface (hfi1_drv.h) with the semantics of the hfi1 driver's
 * user_exp_rcv.c, and is the adapter too: its "DMA" into expected-receive
 * buffers is the interface's placement op, hfi1_drv_place().
 */
#ifndef SOFTHFI_H
#define SOFTHFI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hfi1_drv.h"
#include "hfi1_tid.h"

/* hfi1's RcvArray limits for expected receive. */
#define SOFTHFI_GROUP_SIZE 8 /* entries are handed out by 8 */
#define SOFTHFI_MAX_EXPECTED 2048 /* IDX has 10 bits, 2 entries a pair */
#define SOFTHFI_MAX_RUN_PAGES 512 /* one entry maps at most 2 MiB */

/* What bring-up decides about the (emulated) device and driver. */
struct softhfi_params {
	unsigned int unit; /* hfi1 unit number */
	unsigned int ctxt; /* the receive context handed out */
	/* RcvArray entries for expected receive: a multiple of 8, <= 2048. */
	unsigned int expected_count;
	/*
	 * User contexts of the device: a context may pin at most
	 * RLIMIT_MEMLOCK / user_contexts / 4 (hfi1_can_pin_pages()).
	 */
	unsigned int user_contexts;
	/* hfi1's cache_size module parameter: pin cap per context, MiB. */
	unsigned int cache_size_mb;
	/*
	 * How many pages in a row the adapter sees as physically contiguous,
	 * 1..512. hfi1 splits a buffer at every physical discontinuity; the
	 * soft HFI cannot see physical addresses and assumes runs of this
	 * many pages (512: virtually contiguous is contiguous, as behind an
	 * IOMMU; 1: every page its own entry, as with fragmented memory).
	 */
	unsigned int contig_pages;
};

void softhfi_default_params(struct softhfi_params *params);

/*
 * Open a soft context: the same sequence as on /dev/hfi1_N (GET_VERS,
 * ASSIGN_CTXT, CTXT_INFO, USER_INFO), served in-process. Returns NULL with
 * errno set: EINVAL for bad params; ENOSYS/EPERM when this process may not
 * use userfaultfd or io_uring; ENOMEM.
 */
struct hfi1_drv *softhfi_open(const struct softhfi_params *params);

/* What a context holds; for tests and the benchmark. */
struct softhfi_stats {
	unsigned int tids_used; /* entries programmed or invalidated */
	unsigned int tids_invalid; /* invalidated, awaiting TID_FREE */
	unsigned int inval_queued; /* awaiting TID_INVAL_READ */
	uint64_t pinned_pages; /* by this context */
	uint64_t invalidations; /* entries invalidated, ever */
	/*
	 * Times the notifier's log wrapped before this context read it, so
	 * that it had to assume all its memory gone and invalidate every
	 * programmed entry (see Documentation/softhfi-tid.md).
	 */
	uint64_t overflows;
	/* Ranges registered with the userfaultfd (a range known registered
	 * is not registered again). */
	uint64_t uffd_registrations;
	/* Events of the process's notifier this context has read: every
	 * watched range's, its own or not. */
	uint64_t events;
	/* Ranges the process's notifier stopped watching: nothing was
	 * programmed over them when an event of theirs came. */
	uint64_t uffd_unregistrations;
};

void softhfi_get_stats(struct hfi1_drv *drv, struct softhfi_stats *stats);

/* Pages pinned by all soft contexts of this process (hfi1's pinned_vm). */
uint64_t softhfi_process_pinned_pages(void);

/*
 * The uverbs command channel (uverbs_main.c): a file on a FUSE mount,
 * served by a thread of this process, that answers the uverbs commands
 * generic libibverbs code writes to a context's cmd_fd (first of all
 * CREATE_COMP_CHANNEL), as the kernel's uverbs device would. NULL with
 * errno set when no FUSE mount can be had; @log (VERBS_LOG_* levels, may
 * be NULL) then gets one line saying why.
 */
struct softhfi_uverbs;
struct softhfi_uverbs *softhfi_uverbs_open(void (*log)(void *arg, int level,
						       const char *msg),
					   void *arg);
/* The open command file; the caller owns it (it becomes the cmd_fd). */
int softhfi_uverbs_fd(const struct softhfi_uverbs *u);
/*
 * The write end of a completion channel of this context, for a CQ's
 * events: given the application's @channel_fd (the read end that
 * CREATE_COMP_CHANNEL handed out, in this process), a close-on-exec dup
 * of the write end that the caller owns. -1 with errno EINVAL if
 * @channel_fd is not an open channel of this context (the socket's
 * identity is compared, not the fd number, which may have been reused).
 * Any thread.
 */
int softhfi_uverbs_channel(struct softhfi_uverbs *u, int channel_fd);
/*
 * Stops the server and ends the connection: the command file, if still
 * open, fails every command from then on. The caller closes it. In a
 * forked child it frees the child's copy only: the server is the
 * parent's, and goes on serving it.
 */
void softhfi_uverbs_close(struct softhfi_uverbs *u);

#endif /* SOFTHFI_H */
