/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: private structs of the hfi1 verbs provider.
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
#include "kdrv.h"
#include "mr_cache.h"

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
#define HFI1_GID_TBL_LEN 1
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

enum hfi1_backend {
	HFI1_BACKEND_KERNEL, /* a real hfi1 behind /dev/infiniband, /dev/hfi1_N */
	HFI1_BACKEND_SOFT, /* the soft HFI, served in user space */
};

struct hfi1_device {
	struct verbs_device ibv_dev;
	enum hfi1_backend backend;
	/* $SYSFS_PATH/class/infiniband/<name>: the soft device's state */
	char ibdev_path[IBV_SYSFS_PATH_MAX];
	int unit; /* N of hfi1_N */
};

/* The event thread's view of port 1, for change detection. */
struct hfi1_port_watch {
	int inotify_fd;
	int port_wd; /* ports/1 */
	enum ibv_port_state last_state;
};

/*
 * One translation of an MR: its hold on a cache entry and the registration
 * it serves, constant while the ref is taken. An MR has two, so that
 * rereg_mr can take the new translation before it lets go of the old one.
 */
struct hfi1_mr_ref {
	struct hfi1_mrc_ref mrc;
	struct hfi1_mr *mr;
	struct hfi1_pd *pd;
	uint64_t addr; /* as the application gave it */
	uint64_t length;
	uint64_t iova; /* the MR's address for work requests */
	int access; /* IBV_ACCESS_* as requested */
	uint32_t key; /* lkey == rkey */
	/* Why the cache invalidated the entry; 0 while it is valid. */
	_Atomic uint32_t reason;
	/* The event for this invalidation was posted (once only). */
	atomic_flag posted;
};

/*
 * A memory region of the soft backend. MR objects are never freed while
 * the context lives: they are kept in chunks of the context's MR table, and
 * a deregistered one goes back to the table's free list, so that
 * registration allocates nothing and a key lookup is a few loads.
 */
struct hfi1_mr {
	struct verbs_mr vmr;
	struct hfi1_mr_ref refs[2];
	/* The ref that backs the MR now: refs[0] or refs[1]. */
	struct hfi1_mr_ref *_Atomic active;
	/*
	 * The key while registered; 0 while not (free, or changing under
	 * rereg_mr), which no lookup matches.
	 */
	_Atomic uint32_t key;
	uint32_t slot; /* index in the MR table */
	uint32_t gen; /* of the last key: 1..255 */
	struct hfi1_mr *next_free; /* on the table's free list, table lock */
};

/*
 * MR keys: slot << 8 | generation (1..255, so never 0). A deregistered
 * slot goes to the tail of a FIFO and is reused only once the FIFO holds
 * HFI1_MR_KEY_REUSE_DELAY slots (or no fresh slot is left), so a key comes
 * back only after many registrations.
 */
#define HFI1_MR_KEY_GEN_BITS 8
#define HFI1_MR_CHUNK 256 /* MR objects allocated at a time */
#define HFI1_MR_CHUNKS (HFI1_MAX_MR / HFI1_MR_CHUNK)
#define HFI1_MR_KEY_REUSE_DELAY 1024

struct hfi1_mr_table {
	/* A spinlock: held for a few loads and stores, never across a call. */
	pthread_spinlock_t lock;
	/* Written under lock, read without it by hfi1_mr_lookup(). */
	struct hfi1_mr *_Atomic chunks[HFI1_MR_CHUNKS];
	/* The fields below: lock. */
	uint32_t fresh; /* slots below this one were used at least once */
	struct hfi1_mr *free_head, *free_tail; /* FIFO of free slots */
	uint32_t free_count;
};

/* The last HFI1DV_MR_EVENT_HISTORY invalidations of MRs, for hfi1dv. */
struct hfi1_mr_event_rec {
	uint32_t key; /* 0: unused */
	uint32_t reason;
	uint64_t addr;
	uint64_t length;
};

struct hfi1_mr_history {
	pthread_spinlock_t lock; /* protects the fields below */
	struct hfi1_mr_event_rec *recs; /* a ring of HFI1DV_MR_EVENT_HISTORY */
	uint32_t next; /* where the next record goes */
};

struct hfi1_context {
	struct verbs_context ibv_ctx;
	struct hfi1_device *dev;

	/*
	 * Async events: the provider owns the write end, libibverbs reads
	 * ib_uverbs_async_event_desc records from context.async_fd.
	 */
	int async_wr_fd;

	/* The event thread: watches the device and raises port events. */
	pthread_t event_thread;
	bool event_thread_running;
	int stop_fd; /* eventfd that tells the thread to stop */
	struct hfi1_port_watch port_watch;

	/* The assigned hfi1 user context (both backends). */
	struct hfi1_drv *drv;

	/* Soft backend: the MR cache over drv, its counters, the MR table. */
	struct hfi1_mrc *mrc;
	struct hfi1_mrc_ops mrc_ops;
	struct hfi1_stats *mr_stats; /* the counters, in a stats file */
	struct hfi1_mr_table mr_table;
	struct hfi1_mr_history mr_history;
	/* Set while the context is torn down: no more async events. */
	atomic_bool closing;

	pthread_mutex_t obj_lock; /* protects the fields below */
	unsigned int num_pd;
	uint32_t next_pdn;
};

struct hfi1_pd {
	struct ibv_pd ibv_pd;
	uint32_t pdn;
	atomic_int usecnt; /* objects that name this PD */
};

static inline struct hfi1_mr *to_hfi1_mr(struct ibv_mr *ibmr)
{
	return container_of(ibmr, struct hfi1_mr, vmr.ibv_mr);
}

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

/* softdev.c: the soft device's state, read from its sysfs tree */
int hfi1_soft_read_u64(const struct hfi1_device *dev, const char *file,
		       uint64_t *val);
int hfi1_soft_read_guid(const struct hfi1_device *dev, const char *file,
			__be64 *guid);
int hfi1_soft_port_state(const struct hfi1_device *dev,
			 enum ibv_port_state *state);
int hfi1_soft_query_port(struct hfi1_context *ctx, uint8_t port_num,
			 struct ibv_port_attr *attr);
int hfi1_soft_query_device(struct hfi1_context *ctx,
			   struct ibv_device_attr_ex *attr);
int hfi1_soft_drv_open(struct hfi1_context *ctx);

/* async.c: the async event queue and the event thread */
int hfi1_async_init(struct hfi1_context *ctx);
void hfi1_async_cleanup(struct hfi1_context *ctx);
int hfi1_async_post(struct hfi1_context *ctx, uint32_t event_type,
		    uint64_t element);

/* mr.c: memory regions of the soft backend, and the MR cache */
int hfi1_mr_init(struct hfi1_context *ctx);
void hfi1_mr_cleanup(struct hfi1_context *ctx);
struct ibv_mr *hfi1_soft_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
				uint64_t hca_va, int access);
int hfi1_soft_dereg_mr(struct verbs_mr *vmr);
int hfi1_soft_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
		       void *addr, size_t length, int access);
int hfi1_mr_lookup(struct hfi1_context *ctx, struct hfi1_pd *pd, uint32_t key,
		   uint64_t iova, uint64_t len, int access, bool remote,
		   struct hfi1_mr **mrp);
int hfi1_mr_find_event(struct hfi1_context *ctx, uint32_t key,
		       struct hfi1_mr_event_rec *rec);

/* hfi1.c */
bool hfi1_is_hfi1_dev(struct ibv_device *ibdev);
void hfi1_free_context(struct ibv_context *ibctx);

/* verbs.c: the ops of both backends */
extern const struct verbs_context_ops hfi1_soft_ctx_ops;
extern const struct verbs_context_ops hfi1_kernel_ctx_ops;

#endif /* HFI1_H */
