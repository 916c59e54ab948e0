/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * softhfi: the verbs server's insides (softhfi_verbs.h is its face), shared
 * by its files, which are named after rdmavt's and the hfi1 driver's:
 * - verbs.c: a context's verbs server, its start and stop, events, logs;
 * - cq.c: completion queues, their rings, arming and channel events;
 * - qp.c: queue pairs, the state machine and its checks, posting;
 * - ah.c: address handles;
 * - engine.c: the engine thread, the adapter: it sends what is posted,
 *   receives, places, acks and completes; rc.c, uc.c, ud.c its protocols;
 * - wire.c: the link, an AF_UNIX stream between two engines, and the
 *   node-local directory of (LID, QPN) endpoints.
 */
#ifndef SOFTHFI_SVERBS_H
#define SOFTHFI_SVERBS_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "softhfi_verbs.h"

struct softhfi_ctxt;
struct sengine;

/* A context's verbs server: to_sctxt(drv)->verbs. */
struct sverbs {
	struct softhfi_ctxt *ctxt;
	struct hfi1_drv *drv;
	struct softhfi_verbs_ops ops;
	char *fabric_dir;
	uint16_t lid;
	uint8_t gid[16];
	struct sengine *engine;
};

/* The verbs server of a soft context; NULL before softhfi_verbs_start(). */
struct sverbs *sverbs_of(struct hfi1_drv *drv);

/* verbs.c */
void sverbs_event(struct sverbs *v, uint32_t type, uint64_t element);
void sverbs_log(struct sverbs *v, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
#define SV_LOG_ERR 3 /* VERBS_LOG_ERR */
#define SV_LOG_WARN 4 /* VERBS_LOG_WARN */
#define SV_LOG_DEBUG 7 /* VERBS_LOG_DEBUG */

/* cq.c, for the engine and the QPs */
/*
 * Add @wc to @cq and raise its channel event if it is armed for it
 * (@solicited: the completion of a receive of a solicited message). On
 * overrun the completion is lost, the CQ is in error from then on and
 * IB_EVENT_CQ_ERR goes to the application, once: false. Any thread.
 */
bool scq_push(struct softhfi_cq *cq, const struct ib_uverbs_wc *wc,
	      bool solicited);
/* A QP or SRQ starts or stops using @cq (destroy refuses while used). */
void scq_get(struct softhfi_cq *cq);
void scq_put(struct softhfi_cq *cq);

#endif /* SOFTHFI_SVERBS_H */
