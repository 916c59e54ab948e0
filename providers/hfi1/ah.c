// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: address handles over the backend's AH commands (backend.h),
 * for UD sends, whose work requests name an AH by the backend's handle.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "qp.h"
#include "verbs.h"

/* IB multicast LIDs, which need a GRH; 0xffff is the permissive LID. */
#define HFI1_MCAST_LID_BASE 0xc000
#define HFI1_PERMISSIVE_LID 0xffff

/* The checks of rdmavt's rvt_check_ah(), with a log line; 0 or EINVAL. */
static int check_ah_attr(struct hfi1_context *ctx,
			 const struct ibv_ah_attr *attr)
{
	if (attr->port_num != 1) {
		hfi1_err(ctx, "port %u: the HFI has port 1 only\n",
			 attr->port_num);
		return EINVAL;
	}
	if (!attr->is_global) {
		if (!attr->dlid) {
			hfi1_err(ctx, "DLID 0 without a GRH\n");
			return EINVAL;
		}
		if (attr->dlid >= HFI1_MCAST_LID_BASE &&
		    attr->dlid != HFI1_PERMISSIVE_LID) {
			hfi1_err(ctx, "multicast DLID 0x%x without a GRH\n",
				 attr->dlid);
			return EINVAL;
		}
	} else if (attr->grh.sgid_index >= HFI1_GID_TBL_LEN) {
		hfi1_err(ctx, "sgid_index %u is over the GID table (%u)\n",
			 attr->grh.sgid_index, HFI1_GID_TBL_LEN);
		return EINVAL;
	}
	if (attr->sl > 15) {
		hfi1_err(ctx, "SL %u is over 15\n", attr->sl);
		return EINVAL;
	}
	return 0;
}

static void ah_attr_to_uverbs(const struct ibv_ah_attr *attr,
			      struct ib_uverbs_ah_attr *u)
{
	memset(u, 0, sizeof(*u));
	memcpy(u->grh.dgid, attr->grh.dgid.raw, sizeof(u->grh.dgid));
	u->grh.flow_label = attr->grh.flow_label;
	u->grh.sgid_index = attr->grh.sgid_index;
	u->grh.hop_limit = attr->grh.hop_limit;
	u->grh.traffic_class = attr->grh.traffic_class;
	u->dlid = attr->dlid;
	u->sl = attr->sl;
	u->src_path_bits = attr->src_path_bits;
	u->static_rate = attr->static_rate;
	u->is_global = attr->is_global;
	u->port_num = attr->port_num;
}

struct ibv_ah *hfi1_create_ah(struct ibv_pd *ibpd, struct ibv_ah_attr *attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibpd->context);
	const struct hfi1_backend_ah_ops *ops = ctx->dev->backend->ah;
	struct hfi1_pd *pd = to_hfi1_pd(ibpd);
	struct ib_uverbs_ah_attr uattr;
	struct hfi1_ah *ah;
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret) {
		errno = ret;
		return NULL;
	}
	if (!ops) {
		hfi1_err(ctx, "the %s backend serves no AHs\n",
			 ctx->dev->backend->name);
		errno = EOPNOTSUPP;
		return NULL;
	}
	ret = check_ah_attr(ctx, attr);
	if (ret) {
		errno = ret;
		return NULL;
	}

	ah = calloc(1, sizeof(*ah));
	if (!ah) {
		errno = ENOMEM;
		return NULL;
	}
	ah_attr_to_uverbs(attr, &uattr);
	ret = ops->create(ctx, pd->pdn, &uattr, &ah->handle);
	if (ret) {
		hfi1_err(ctx, "cannot create an AH for DLID 0x%x: %s\n",
			 attr->dlid, strerror(ret));
		free(ah);
		errno = ret;
		return NULL;
	}
	atomic_fetch_add_explicit(&pd->usecnt, 1, memory_order_relaxed);
	/* ibv_create_ah() sets them too. */
	ah->ibv_ah.context = ibpd->context;
	ah->ibv_ah.pd = ibpd;
	ah->ibv_ah.handle = ah->handle;
	return &ah->ibv_ah;
}

int hfi1_destroy_ah(struct ibv_ah *ibah)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibah->context);
	struct hfi1_ah *ah = to_hfi1_ah(ibah);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	ret = ctx->dev->backend->ah->destroy(ctx, ah->handle);
	if (ret) {
		hfi1_err(ctx, "cannot destroy AH %u: %s\n", ah->handle,
			 strerror(ret));
		return ret;
	}
	atomic_fetch_sub_explicit(&to_hfi1_pd(ibah->pd)->usecnt, 1,
				  memory_order_relaxed);
	free(ah);
	return 0;
}
