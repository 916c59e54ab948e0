/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the device and the context, the objects every verbs call starts
 * from, and what all of the provider shares (logging, the limits it
 * reports). Each part of the provider has its own header for the rest:
 * verbs.h (the verbs ops), backend.h (the seam between the soft HFI and
 * the kernel), async.h, evloop.h, mr.h, softdev.h.
 */
#ifndef HFI1_H
#define HFI1_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#include "util.h"
#include "verbs_provider.h"
#include "hfi1_drv.h"
#include "async.h"

struct hfi1_backend;
struct hfi1_evloop;
struct hfi1_mr_state;
struct hfi1_stats;

/*
 * The library is built with hidden visibility; what libhfi1.map exports
 * (the hfi1dv_* calls) is marked with this.
 */
#define HFI1_EXPORT __attribute__((visibility("default")))

#define hfi1_log(ctx, level, fmt, ...)                                     \
	do {                                                               \
		int saved_errno__ = errno;                                 \
		__verbs_log(&(ctx)->ibv_ctx, level, "%s: %s: " fmt,        \
			    (ctx)->ibv_ctx.context.device->name, __func__, \
			    ##__VA_ARGS__);                                \
		errno = saved_errno__;                                     \
	} while (0)
#define hfi1_err(ctx, fmt, ...) hfi1_log(ctx, VERBS_LOG_ERR, fmt, ##__VA_ARGS__)
#define hfi1_warn(ctx, fmt, ...) \
	hfi1_log(ctx, VERBS_LOG_WARN, fmt, ##__VA_ARGS__)
#define hfi1_dbg(ctx, fmt, ...) \
	hfi1_log(ctx, VERBS_LOG_DEBUG, fmt, ##__VA_ARGS__)

/* PCI ids of the hfi1 ASIC (Intel Omni-Path HFI 100 series). */
#define PCI_VENDOR_ID_INTEL 0x8086
#define PCI_DEVICE_ID_INTEL_HFI1_0 0x24f0
#define PCI_DEVICE_ID_INTEL_HFI1_1 0x24f1
/* hfi1 reports the QLogic/Intel OUI as its IB vendor id. */
#define HFI1_IB_VENDOR_ID 0x1175

#define HFI1_SOFT_MODALIAS_PREFIX "softhfi:"
#define HFI1_NUM_PORTS 1
/*
 * hfi1's GID table (HFI1_GUIDS_PER_PORT): GID 0 is the port GUID's, 1-4
 * are for alias GUIDs a subnet manager may assign. None does on the soft
 * HFI: they are empty, as the kernel shows an empty entry (a zero GID in
 * sysfs, ENODATA from ibv_query_gid_ex(), EINVAL for an AH or a QP's AV).
 */
#define HFI1_GID_TBL_LEN 5
#define HFI1_PKEY_TBL_LEN 16
/* rdmavt's uverbs ABI (RVT_UVERBS_ABI_VERSION), which hfi1 reports. */
#define HFI1_UVERBS_ABI_VERSION 2

/*
 * The limits the provider reports and enforces. They are those of one hfi1
 * user context as the soft HFI serves it; each object checks its own.
 *
 * HFI1_MAX_MR (max_mr) is the size of a context's MR table: the MR objects,
 * and so the keys, it can hold at once, as many as hfi1's default lkey
 * table. It is exact, and it is reached when MRs share cache entries (the
 * same or contained memory with no more access). Memory is a second bound:
 * every distinct cache entry holds at least one of the context's
 * expected_count TIDs (<= 2048), so MRs over distinct memory run out of
 * TIDs first. Both failures are ENOMEM with a log line.
 */
enum {
	HFI1_MAX_PD = 4096,
	HFI1_MAX_MR = 65536,
	HFI1_MAX_QP = 4096,
	HFI1_MAX_QP_WR = 16384,
	HFI1_MAX_SGE = 32,
	HFI1_MAX_CQ = 4096,
	HFI1_MAX_CQE = 65536,
	HFI1_MAX_SRQ = 1024,
	HFI1_MAX_SRQ_WR = 16384,
	HFI1_MAX_SRQ_SGE = 32,
	HFI1_MAX_AH = 65536,
	HFI1_MAX_QP_RD_ATOM = 16,
	HFI1_MAX_INLINE = 256,
};
#define HFI1_MAX_MR_SIZE (1ULL << 40)
#define HFI1_MAX_MSG_SZ 0x80000000U /* hfi1's max_msg_sz: 2 GiB */

struct hfi1_device {
	struct verbs_device ibv_dev;
	/* Chosen once, by the match table: see backend.h. */
	const struct hfi1_backend *backend;
	/* $SYSFS_PATH/class/infiniband/<name>: the soft device's state */
	char ibdev_path[IBV_SYSFS_PATH_MAX];
	int unit; /* N of hfi1_N */
};

struct hfi1_context {
	struct verbs_context ibv_ctx;
	struct hfi1_device *dev;

	/* The assigned hfi1 user context (both backends). */
	struct hfi1_drv *drv;
	/* The backend's own state (the soft HFI's port watch); backend.h. */
	void *backend_priv;

	/* The async event queue, where the backend has one: async.h. */
	struct hfi1_async_queue async;
	/* The event thread, for the fds the parts below register. */
	struct hfi1_evloop *evloop;
	/* MRs over the MR cache, where the backend has it (else NULL). */
	struct hfi1_mr_state *mr;
	/*
	 * The context's counters, in the stats file hfi1_mrstat(1) reads
	 * (stats.h): there where the MR cache is (else NULL). Opened before
	 * the backend, closed after it, so that all of them may write there.
	 */
	struct hfi1_stats *stats;

	pthread_mutex_t obj_lock; /* protects the fields below */
	unsigned int num_pd;
	uint32_t next_pdn;
};

/*
 * A PD, or a parent domain (pd.c): a PD's stand-in that carries a thread
 * domain and allocators. A parent domain has its protection domain's pdn
 * and handle, so whatever names it is in that PD; it holds the PD (one
 * usecnt) as long as it lives, and is held by what names it.
 */
struct hfi1_pd {
	struct ibv_pd ibv_pd;
	uint32_t pdn;
	atomic_int usecnt; /* objects that name this PD */
	/* A parent domain's, else NULL and unused. */
	struct hfi1_pd *protection;
	struct hfi1_td *td;
	void *(*alloc)(struct ibv_pd *pd, void *pd_context, size_t size,
		       size_t alignment, uint64_t resource_type);
	void (*free)(struct ibv_pd *pd, void *pd_context, void *ptr,
		     uint64_t resource_type);
	void *pd_context;
};

/* A thread domain: a promise of one thread at a time, held by parents. */
struct hfi1_td {
	struct ibv_td ibv_td;
	atomic_int usecnt; /* parent domains that hold it */
};

static inline struct hfi1_device *to_hfi1_dev(struct ibv_device *ibdev)
{
	return container_of(ibdev, struct hfi1_device, ibv_dev.device);
}

static inline struct hfi1_context *to_hfi1_ctx(struct ibv_context *ibctx)
{
	return container_of(ibctx, struct hfi1_context, ibv_ctx.context);
}

static inline struct hfi1_pd *to_hfi1_pd(struct ibv_pd *ibpd)
{
	return container_of(ibpd, struct hfi1_pd, ibv_pd);
}

/*
 * A log callback for the parts below the provider, which know no context
 * (the MR cache, the stats file, the environment, the soft HFI): @arg is
 * the context, @level a VERBS_LOG_* level, @msg one line. context.c.
 */
void hfi1_log_line(void *arg, int level, const char *msg);

/*
 * A context belongs to the process that opened it: the pages its MRs and
 * TIDs pin are that process's. A forked child can only close it (FORK in
 * libhfi1(7)): every verb on a context begins with this check, 0 in the
 * owner, and in a child EIO with a log line naming @verb (its __func__).
 * A few loads: the driver's owned op.
 */
int hfi1_refuse_child(struct hfi1_context *ctx, const char *verb);

static inline int hfi1_check_owned(struct hfi1_context *ctx, const char *verb)
{
	if (__builtin_expect(hfi1_drv_owned(ctx->drv), 1))
		return 0;
	return hfi1_refuse_child(ctx, verb);
}

/* Is this device ours (as mlx5dv's is_mlx5_dev())? For hfi1dv. */
bool hfi1_is_hfi1_dev(struct ibv_device *ibdev);

#endif /* HFI1_H */
