// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: a context's verbs server (softhfi_verbs.h): its start and stop,
 * and the ways its parts tell the provider things, async events and logs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sctxt.h"
#include "engine.h"

struct sverbs *sverbs_of(struct hfi1_drv *drv)
{
	return to_sctxt(drv)->verbs;
}

void sverbs_event(struct sverbs *v, uint32_t type, uint64_t element)
{
	if (v->ops.event)
		v->ops.event(v->ops.arg, type, element);
}

void sverbs_log(struct sverbs *v, int level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!v->ops.log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	v->ops.log(v->ops.arg, level, msg);
}

int softhfi_verbs_start(struct hfi1_drv *drv, const struct softhfi_port *port,
			const struct softhfi_verbs_ops *ops)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	struct sverbs *v;
	int ret;

	if (!sctxt_owned(ctx))
		return EIO;
	if (ctx->verbs)
		return EBUSY;
	if (!port->fabric_dir || !port->lid)
		return EINVAL;
	v = calloc(1, sizeof(*v));
	if (!v)
		return ENOMEM;
	v->ctxt = ctx;
	v->drv = drv;
	v->ops = *ops;
	v->lid = port->lid;
	v->ctr = port->counters ? port->counters : &v->own_ctr;
	memcpy(v->gid, port->gid, sizeof(v->gid));
	v->fabric_dir = strdup(port->fabric_dir);
	if (!v->fabric_dir) {
		free(v);
		return ENOMEM;
	}
	pthread_mutex_init(&v->cq_lock, NULL);
	LIST_INIT(&v->cqs);
	pthread_mutex_init(&v->ah_lock, NULL);
	ret = sengine_start(v);
	if (ret) {
		pthread_mutex_destroy(&v->ah_lock);
		pthread_mutex_destroy(&v->cq_lock);
		free(v->fabric_dir);
		free(v);
		return ret;
	}
	ctx->verbs = v;
	return 0;
}

void softhfi_verbs_stop(struct hfi1_drv *drv)
{
	struct softhfi_ctxt *ctx = to_sctxt(drv);
	struct sverbs *v = ctx->verbs;

	if (!v)
		return;
	ctx->verbs = NULL;
	/*
	 * The engine first: it completes into the CQs. In a forked child
	 * the engine thread is the parent's.
	 */
	if (sctxt_owned(ctx))
		sengine_stop(v);
	scq_destroy_all(v);
	pthread_mutex_destroy(&v->cq_lock);
	pthread_mutex_destroy(&v->ah_lock);
	free(v->ahs);
	free(v->fabric_dir);
	free(v);
}
