/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * hfi1dv: libhfi1's direct verbs, installed as <infiniband/hfi1dv.h>;
 * link with -lhfi1. Every call takes objects of an hfi1 device; for any
 * other device it fails with EOPNOTSUPP. Calls return 0 or a positive
 * errno. Structs carry comp_mask and are passed with their size (inlen /
 * outlen) so that they can grow: a caller built against an older header
 * passes a shorter struct; unknown comp_mask bits are EINVAL. See hfi1dv(7).
 */
#ifndef HFI1DV_H
#define HFI1DV_H

#include <stddef.h>
#include <stdint.h>
#include <infiniband/verbs.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The async event for a registered MR whose memory the driver invalidated
 * (munmap, free, madvise(DONTNEED/FREE), mremap): ibv_get_async_event()
 * returns event_type HFI1DV_EVENT_MR_INVALIDATED with the MR's lkey in
 * event.element.port_num. The MR stays registered but invalid: remote
 * access to it completes with IBV_WC_REM_ACCESS_ERR, local use with
 * IBV_WC_LOC_PROT_ERR; deregister it (or rereg it) when convenient.
 */
#define HFI1DV_EVENT_MR_INVALIDATED 0x48460001 /* "HF" 0001 */

enum hfi1dv_mr_inval_reason {
	HFI1DV_MR_INVAL_UNMAPPED = 1, /* the driver's MMU notifier */
	HFI1DV_MR_INVAL_FLUSHED = 2, /* the cache was torn down */
};

struct hfi1dv_mr_event {
	uint64_t comp_mask; /* none yet: 0 */
	uint32_t lkey;
	uint32_t rkey;
	uint64_t addr; /* as registered */
	uint64_t length;
	uint32_t reason; /* enum hfi1dv_mr_inval_reason */
	uint32_t reserved;
};

/*
 * The identity of the MR an HFI1DV_EVENT_MR_INVALIDATED event names. Works
 * after the MR was deregistered too, for the last HFI1DV_MR_EVENT_HISTORY
 * invalidations of the context. ENOENT if unknown or too old, EINVAL for
 * an event of another type.
 */
#define HFI1DV_MR_EVENT_HISTORY 4096
int hfi1dv_get_mr_event(struct ibv_context *context,
			const struct ibv_async_event *event,
			struct hfi1dv_mr_event *out, size_t outlen);

/* An MR's state, at any time. */
struct hfi1dv_mr_attr {
	uint64_t comp_mask;
	uint32_t valid; /* 1 until invalidated */
	uint32_t reason; /* 0 while valid */
	uint64_t cache_start; /* the cache entry's page range that backs it */
	uint64_t cache_end;
};
int hfi1dv_query_mr(struct ibv_mr *mr, struct hfi1dv_mr_attr *attr,
		    size_t outlen);

/* The cache counters of one context. */
struct hfi1dv_mr_cache_stats {
	uint64_t comp_mask;
	uint64_t hits;
	uint64_t misses;
	uint64_t evictions;
	uint64_t invalidations;
	uint64_t invalidated_in_use;
	uint64_t failures;
	uint64_t entries;
	uint64_t idle_entries;
	uint64_t pinned_bytes;
	uint64_t tids_used;
};
int hfi1dv_query_mr_cache(struct ibv_context *context,
			  struct hfi1dv_mr_cache_stats *stats, size_t outlen);

/* Per-context cache limits; comp_mask says which fields to apply. */
enum hfi1dv_mr_cache_limits_mask {
	HFI1DV_MR_CACHE_LIMIT_ENABLED = 1 << 0,
	HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES = 1 << 1,
	HFI1DV_MR_CACHE_LIMIT_MAX_BYTES = 1 << 2,
};
struct hfi1dv_mr_cache_limits {
	uint64_t comp_mask;
	uint32_t enabled;
	uint32_t reserved;
	uint64_t max_entries; /* 0: no limit */
	uint64_t max_bytes; /* 0: no limit */
};
int hfi1dv_set_mr_cache_limits(struct ibv_context *context,
			       const struct hfi1dv_mr_cache_limits *limits,
			       size_t inlen);
int hfi1dv_get_mr_cache_limits(struct ibv_context *context,
			       struct hfi1dv_mr_cache_limits *limits,
			       size_t outlen);

#ifdef __cplusplus
}
#endif
#endif /* HFI1DV_H */
