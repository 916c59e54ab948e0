// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the hfi1dv direct verbs (hfi1dv.h): the identity of an
 * invalidated MR, an MR's state, the MR cache's counters and limits.
 *
 * Structs grow at their end: a caller built against an older hfi1dv.h
 * passes a shorter one (outlen/inlen), which gets the fields it has; it
 * must hold comp_mask at least. Unknown comp_mask bits are EINVAL.
 */
#include <errno.h>
#include <string.h>

#include "hfi1dv.h"
#include "mr.h"
#include "stats.h"

/* The smallest struct a caller may pass: up to and with the comp_mask. */
#define HFI1DV_MIN_LEN sizeof(uint64_t)

/*
 * A context of an hfi1 device whose backend has the MR cache, of this
 * process: in a forked child EIO (@verb names the call in the log).
 */
static int dv_context(struct ibv_context *ibctx, struct hfi1_context **ctxp,
		      const char *verb)
{
	struct hfi1_context *ctx;
	int ret;

	if (!ibctx || !hfi1_is_hfi1_dev(ibctx->device))
		return EOPNOTSUPP;
	ctx = to_hfi1_ctx(ibctx);
	/* The kernel backend has no MR cache (yet). */
	if (!ctx->mr)
		return EOPNOTSUPP;
	ret = hfi1_check_owned(ctx, verb);
	if (ret)
		return ret;
	*ctxp = ctx;
	return 0;
}

/* A comp_mask may have only the @known bits. */
static int check_mask(struct hfi1_context *ctx, uint64_t comp_mask,
		      uint64_t known)
{
	if (!(comp_mask & ~known))
		return 0;
	hfi1_err(ctx, "unknown comp_mask bits 0x%llx\n",
		 (unsigned long long)(comp_mask & ~known));
	return EINVAL;
}

/* Out structs: the caller's comp_mask asks for fields; none is known yet. */
static int check_out_mask(struct hfi1_context *ctx, uint64_t comp_mask)
{
	return check_mask(ctx, comp_mask, 0);
}

static void copy_out(void *out, size_t outlen, const void *full, size_t len)
{
	memcpy(out, full, outlen < len ? outlen : len);
}

HFI1_EXPORT int hfi1dv_get_mr_event(struct ibv_context *context,
				    const struct ibv_async_event *event,
				    struct hfi1dv_mr_event *out, size_t outlen)
{
	struct hfi1dv_mr_event full = {};
	struct hfi1_mr_event_rec rec;
	struct hfi1_context *ctx;
	int ret;

	ret = dv_context(context, &ctx, __func__);
	if (ret)
		return ret;
	if (!event || !out || outlen < HFI1DV_MIN_LEN) {
		hfi1_err(ctx, "no event, no out or outlen %zu too small\n",
			 outlen);
		return EINVAL;
	}
	ret = check_out_mask(ctx, out->comp_mask);
	if (ret)
		return ret;
	if ((uint32_t)event->event_type != HFI1DV_EVENT_MR_INVALIDATED) {
		hfi1_err(ctx,
			 "event type %d is not HFI1DV_EVENT_MR_INVALIDATED\n",
			 event->event_type);
		return EINVAL;
	}
	ret = hfi1_mr_find_event(ctx, (uint32_t)event->element.port_num, &rec);
	if (ret)
		return ret;
	full.lkey = rec.key;
	full.rkey = rec.key;
	full.addr = rec.addr;
	full.length = rec.length;
	full.reason = rec.reason;
	copy_out(out, outlen, &full, sizeof(full));
	return 0;
}

HFI1_EXPORT int hfi1dv_query_mr(struct ibv_mr *ibmr,
				struct hfi1dv_mr_attr *attr, size_t outlen)
{
	struct hfi1dv_mr_attr full = {};
	struct hfi1_context *ctx;
	struct hfi1_mr_ref *r;
	struct hfi1_mr *mr;
	int ret;

	if (!ibmr)
		return EINVAL;
	ret = dv_context(ibmr->context, &ctx, __func__);
	if (ret)
		return ret;
	if (!attr || outlen < HFI1DV_MIN_LEN) {
		hfi1_err(ctx, "no attr or outlen %zu too small\n", outlen);
		return EINVAL;
	}
	ret = check_out_mask(ctx, attr->comp_mask);
	if (ret)
		return ret;
	mr = to_hfi1_mr(ibmr);
	ret = hfi1_mr_check_registered(ctx, mr, __func__);
	if (ret)
		return ret;
	r = atomic_load(&mr->active);
	full.reason = atomic_load(&r->reason);
	full.valid = !full.reason && hfi1_mrc_entry_valid(r->mrc.entry);
	full.cache_start = hfi1_mrc_entry_start(r->mrc.entry);
	full.cache_end = hfi1_mrc_entry_end(r->mrc.entry);
	copy_out(attr, outlen, &full, sizeof(full));
	return 0;
}

HFI1_EXPORT int hfi1dv_query_mr_cache(struct ibv_context *context,
				      struct hfi1dv_mr_cache_stats *stats,
				      size_t outlen)
{
	struct hfi1dv_mr_cache_stats full = {};
	const struct hfi1_mrc_counters *c;
	struct hfi1_context *ctx;
	int ret;

	ret = dv_context(context, &ctx, __func__);
	if (ret)
		return ret;
	if (!stats || outlen < HFI1DV_MIN_LEN) {
		hfi1_err(ctx, "no stats or outlen %zu too small\n", outlen);
		return EINVAL;
	}
	ret = check_out_mask(ctx, stats->comp_mask);
	if (ret)
		return ret;
	c = hfi1_stats_counters(ctx->stats);
#define LOAD(f) atomic_load_explicit(&c->f, memory_order_relaxed)
	full.hits = LOAD(hits);
	full.misses = LOAD(misses);
	full.evictions = LOAD(evictions);
	full.invalidations = LOAD(invalidations);
	full.invalidated_in_use = LOAD(invalidated_in_use);
	full.failures = LOAD(failures);
	full.entries = LOAD(entries);
	full.idle_entries = LOAD(idle_entries);
	full.pinned_bytes = LOAD(pinned_bytes);
	full.tids_used = LOAD(tids_used);
#undef LOAD
	copy_out(stats, outlen, &full, sizeof(full));
	return 0;
}

#define HFI1DV_MR_CACHE_LIMITS_ALL                                           \
	(HFI1DV_MR_CACHE_LIMIT_ENABLED | HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES | \
	 HFI1DV_MR_CACHE_LIMIT_MAX_BYTES)

HFI1_EXPORT int
hfi1dv_set_mr_cache_limits(struct ibv_context *context,
			   const struct hfi1dv_mr_cache_limits *limits,
			   size_t inlen)
{
	struct hfi1dv_mr_cache_limits in = {};
	struct hfi1_mrc_limits l;
	struct hfi1_context *ctx;
	int ret;

	ret = dv_context(context, &ctx, __func__);
	if (ret)
		return ret;
	if (!limits || inlen < HFI1DV_MIN_LEN) {
		hfi1_err(ctx, "no limits or inlen %zu too small\n", inlen);
		return EINVAL;
	}
	memcpy(&in, limits, inlen < sizeof(in) ? inlen : sizeof(in));
	ret = check_mask(ctx, in.comp_mask, HFI1DV_MR_CACHE_LIMITS_ALL);
	if (ret)
		return ret;
	/* A field the caller's struct does not have cannot be applied. */
	if (((in.comp_mask & HFI1DV_MR_CACHE_LIMIT_ENABLED) &&
	     inlen < offsetof(struct hfi1dv_mr_cache_limits, reserved)) ||
	    ((in.comp_mask & HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES) &&
	     inlen < offsetof(struct hfi1dv_mr_cache_limits, max_bytes)) ||
	    ((in.comp_mask & HFI1DV_MR_CACHE_LIMIT_MAX_BYTES) &&
	     inlen < sizeof(in))) {
		hfi1_err(ctx, "inlen %zu is too short for comp_mask 0x%llx\n",
			 inlen, (unsigned long long)in.comp_mask);
		return EINVAL;
	}
	if ((in.comp_mask & HFI1DV_MR_CACHE_LIMIT_ENABLED) && in.enabled > 1) {
		hfi1_err(ctx, "enabled %u is neither 0 nor 1\n", in.enabled);
		return EINVAL;
	}

	hfi1_mrc_get_limits(ctx->mr->mrc, &l);
	if (in.comp_mask & HFI1DV_MR_CACHE_LIMIT_ENABLED)
		l.enabled = in.enabled;
	if (in.comp_mask & HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES)
		l.max_entries = in.max_entries;
	if (in.comp_mask & HFI1DV_MR_CACHE_LIMIT_MAX_BYTES)
		l.max_bytes = in.max_bytes;
	ret = hfi1_mrc_set_limits(ctx->mr->mrc, &l);
	if (ret) {
		hfi1_err(ctx, "the cache refused the limits: %s\n",
			 strerror(ret));
		return ret;
	}
	hfi1_stats_set_limits(ctx->stats, &l);
	return 0;
}

HFI1_EXPORT int
hfi1dv_get_mr_cache_limits(struct ibv_context *context,
			   struct hfi1dv_mr_cache_limits *limits, size_t outlen)
{
	struct hfi1dv_mr_cache_limits full = {};
	struct hfi1_mrc_limits l;
	struct hfi1_context *ctx;
	int ret;

	ret = dv_context(context, &ctx, __func__);
	if (ret)
		return ret;
	if (!limits || outlen < HFI1DV_MIN_LEN) {
		hfi1_err(ctx, "no limits or outlen %zu too small\n", outlen);
		return EINVAL;
	}
	ret = check_mask(ctx, limits->comp_mask, HFI1DV_MR_CACHE_LIMITS_ALL);
	if (ret)
		return ret;
	hfi1_mrc_get_limits(ctx->mr->mrc, &l);
	/* comp_mask says which fields the caller's struct got. */
	if (outlen >= offsetof(struct hfi1dv_mr_cache_limits, reserved))
		full.comp_mask |= HFI1DV_MR_CACHE_LIMIT_ENABLED;
	if (outlen >= offsetof(struct hfi1dv_mr_cache_limits, max_bytes))
		full.comp_mask |= HFI1DV_MR_CACHE_LIMIT_MAX_ENTRIES;
	if (outlen >= sizeof(full))
		full.comp_mask |= HFI1DV_MR_CACHE_LIMIT_MAX_BYTES;
	full.enabled = l.enabled;
	full.max_entries = l.max_entries;
	full.max_bytes = l.max_bytes;
	copy_out(limits, outlen, &full, sizeof(full));
	return 0;
}
