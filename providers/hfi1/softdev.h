/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libhfi1: the soft device's state, read from the sysfs-shaped tree that
 * hfi1-soft keeps for it (softdev.c). For the soft backend.
 */
#ifndef HFI1_SOFTDEV_H
#define HFI1_SOFTDEV_H

#include "hfi1.h"

int hfi1_soft_check_tree(struct hfi1_context *ctx);
int hfi1_soft_read_u64(struct hfi1_context *ctx, const char *file,
		       uint64_t *val);
int hfi1_soft_read_guid(struct hfi1_context *ctx, const char *file,
			__be64 *guid);
int hfi1_soft_read_gid(struct hfi1_context *ctx, const char *file,
		       uint8_t gid[16]);
int hfi1_soft_port_state(struct hfi1_context *ctx, enum ibv_port_state *state);
int hfi1_soft_query_port(struct hfi1_context *ctx, uint8_t port_num,
			 struct ibv_port_attr *attr);
int hfi1_soft_query_device(struct hfi1_context *ctx,
			   struct ibv_device_attr_ex *attr);

#endif /* HFI1_SOFTDEV_H */
