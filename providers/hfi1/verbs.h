/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the verbs ops that the provider's object files implement, and
 * the ops tables that name them (verbs.c).
 */
#ifndef HFI1_VERBS_H
#define HFI1_VERBS_H

#include "hfi1.h"

/* hfi1.c */
void hfi1_free_context(struct ibv_context *ibctx);

/* verbs.c: the ops of both backends */
extern const struct verbs_context_ops hfi1_soft_ctx_ops;
extern const struct verbs_context_ops hfi1_kernel_ctx_ops;

/* mr.c: MRs of the soft backend, over the MR cache */
struct ibv_mr *hfi1_soft_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
				uint64_t hca_va, int access);
int hfi1_soft_dereg_mr(struct verbs_mr *vmr);
int hfi1_soft_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
		       void *addr, size_t length, int access);

#endif /* HFI1_VERBS_H */
