/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the seam between the provider and what serves its device. Two
 * backends serve a context, chosen once by the match table when libibverbs
 * allocates the device:
 * - the soft HFI (backend_soft.c): the device and its driver emulated in
 *   this process, its state read from the tree hfi1-soft lays out;
 * - the kernel (backend_kernel.c): a real hfi1 behind the uverbs device
 *   and /dev/hfi1_N.
 * Each gives the context its hfi1 user context (ctx->drv, the driver
 * interface of drv/hfi1_drv.h) and its verbs ops. What the rest of the
 * provider does differently follows from the flags below, never from
 * which backend it is.
 */
#ifndef HFI1_BACKEND_H
#define HFI1_BACKEND_H

#include <rdma/rvt-abi.h>

#include "hfi1.h"

enum hfi1_backend_flags {
	/*
	 * The provider makes the context's async event queue (async.h):
	 * there is no kernel to give one.
	 */
	HFI1_BACKEND_ASYNC_QUEUE = 1 << 0,
	/* MRs are served by the MR cache over ctx->drv (mr.h). */
	HFI1_BACKEND_MR_CACHE = 1 << 1,
};

/*
 * A CQ as its backend serves it: rdmavt's ring, which the provider polls
 * (cq.c), and the backend's own handle for it.
 */
struct hfi1_backend_cq {
	struct rvt_cq_wc *ring;
	uint32_t cqe; /* entries usable: the ring has cqe + 1 slots */
	void *handle; /* the soft HFI's struct softhfi_cq */
};

/*
 * The CQ commands, rdmavt's CREATE_CQ, RESIZE_CQ, REQ_NOTIFY_CQ and
 * DESTROY_CQ. Each returns 0 or an errno, with a log line for what it
 * refuses. The verb (cq.c) has checked its input and holds the CQ's poll
 * lock across resize.
 */
struct hfi1_backend_cq_ops {
	/*
	 * A CQ of @cqe entries whose events carry @user_handle; its
	 * completion events go to @channel (NULL: none), one of @ctx's.
	 * Fills @cq.
	 */
	int (*create)(struct hfi1_context *ctx, uint32_t cqe,
		      uint64_t user_handle, struct ibv_comp_channel *channel,
		      struct hfi1_backend_cq *cq);
	/* A new ring of @cqe entries holding the old one's; updates @cq. */
	int (*resize)(struct hfi1_context *ctx, struct hfi1_backend_cq *cq,
		      uint32_t cqe);
	/* One completion event for the next (solicited) completion. */
	int (*arm)(struct hfi1_context *ctx, struct hfi1_backend_cq *cq,
		   bool solicited_only);
	/* EBUSY while a QP or SRQ uses it. */
	int (*destroy)(struct hfi1_context *ctx, struct hfi1_backend_cq *cq);
};

struct hfi1_backend {
	const char *name;
	unsigned int flags; /* enum hfi1_backend_flags */
	const struct verbs_context_ops *ctx_ops;
	/*
	 * Optional: given the fd libibverbs opened for the device, return the
	 * fd the context keeps as its cmd_fd (this one or another), or -1
	 * with errno set; @cmd_fd is then closed. Before the context exists.
	 */
	int (*cmd_fd)(int cmd_fd);
	/*
	 * Open the device for @ctx: assign its hfi1 user context (ctx->drv),
	 * register what the backend watches with ctx->evloop. 0 or an errno,
	 * with a log line; on failure nothing is left open.
	 */
	int (*open)(struct hfi1_context *ctx);
	/* Optional: undo open(), but for ctx->drv, which the caller closes. */
	void (*close)(struct hfi1_context *ctx);
	/* CQs (cq.c); NULL where the backend serves none yet. */
	const struct hfi1_backend_cq_ops *cq;
};

extern const struct hfi1_backend hfi1_soft_backend;
extern const struct hfi1_backend hfi1_kernel_backend;

#endif /* HFI1_BACKEND_H */
