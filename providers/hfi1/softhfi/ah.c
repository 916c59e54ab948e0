// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: address handles, the destinations of UD sends. A handle is an
 * index into the context's table, as a kernel AH's uverbs handle is.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sctxt.h"
#include "sverbs.h"

int softhfi_ah_create(struct hfi1_drv *drv, uint32_t pdn,
		      const struct ib_uverbs_ah_attr *attr, uint32_t *handle)
{
	struct sverbs *v = sverbs_of(drv);
	struct sah *ah;
	uint32_t i;
	int ret = 0;

	if (!v)
		return ENODEV;
	if (!sctxt_owned(v->ctxt))
		return EIO;
	if (attr->port_num != 1 || (!attr->dlid && !attr->is_global) ||
	    (attr->is_global && attr->grh.sgid_index)) {
		/* GID 0 is the only entry that is not empty. */
		sverbs_log(v, SV_LOG_ERR,
			   "bad AH: port %u, DLID %u, global %u, sgid_index %u",
			   attr->port_num, attr->dlid, attr->is_global,
			   attr->grh.sgid_index);
		return EINVAL;
	}
	pthread_mutex_lock(&v->ah_lock);
	for (i = 0; i < v->ah_cap && v->ahs[i].used; i++)
		;
	if (i == v->ah_cap) {
		uint32_t cap = v->ah_cap ? v->ah_cap * 2 : 64;
		struct sah *n;

		if (cap > SOFTHFI_MAX_AH) {
			ret = ENOMEM;
			goto out;
		}
		n = realloc(v->ahs, cap * sizeof(*n));
		if (!n) {
			ret = ENOMEM;
			goto out;
		}
		memset(n + v->ah_cap, 0, (cap - v->ah_cap) * sizeof(*n));
		v->ahs = n;
		v->ah_cap = cap;
	}
	ah = &v->ahs[i];
	ah->used = true;
	ah->pdn = pdn;
	ah->dlid = attr->dlid;
	ah->grh = attr->is_global;
	memcpy(ah->dgid, attr->grh.dgid, sizeof(ah->dgid));
	*handle = i;
out:
	pthread_mutex_unlock(&v->ah_lock);
	return ret;
}

int softhfi_ah_destroy(struct hfi1_drv *drv, uint32_t handle)
{
	struct sverbs *v = sverbs_of(drv);
	int ret = 0;

	if (!v)
		return ENODEV;
	pthread_mutex_lock(&v->ah_lock);
	if (handle >= v->ah_cap || !v->ahs[handle].used)
		ret = EINVAL;
	else
		v->ahs[handle].used = false;
	pthread_mutex_unlock(&v->ah_lock);
	return ret;
}

int softhfi_ah_resolve(struct sverbs *v, uint32_t pdn, uint32_t handle,
		       uint16_t *dlid, bool *grh, uint8_t *dgid)
{
	int ret = 0;

	pthread_mutex_lock(&v->ah_lock);
	if (handle >= v->ah_cap || !v->ahs[handle].used ||
	    v->ahs[handle].pdn != pdn) {
		ret = EINVAL;
	} else {
		*dlid = v->ahs[handle].dlid;
		*grh = v->ahs[handle].grh;
		memcpy(dgid, v->ahs[handle].dgid, 16);
	}
	pthread_mutex_unlock(&v->ah_lock);
	return ret;
}
