/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the verbs ops that the provider's object files implement, which
 * the backends' ops tables (backend_soft.c, backend_kernel.c) and the
 * device's (device.c) name.
 */
#ifndef HFI1_VERBS_H
#define HFI1_VERBS_H

#include "hfi1.h"

/* context.c */
struct verbs_context *hfi1_alloc_context(struct ibv_device *ibdev, int cmd_fd,
					 void *private_data);
void hfi1_free_context(struct ibv_context *ibctx);

/* pd.c: PDs the provider serves itself */
struct ibv_pd *hfi1_alloc_pd(struct ibv_context *ibctx);
int hfi1_dealloc_pd(struct ibv_pd *ibpd);

/* mr.c: MRs over the MR cache */
struct ibv_mr *hfi1_reg_mr(struct ibv_pd *pd, void *addr, size_t length,
			   uint64_t hca_va, int access);
int hfi1_dereg_mr(struct verbs_mr *vmr);
int hfi1_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
		  void *addr, size_t length, int access);

#endif /* HFI1_VERBS_H */
