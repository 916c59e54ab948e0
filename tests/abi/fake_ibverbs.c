// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A stand-in libibverbs.so.1 whose private provider ABI is not ours
 * (IBVERBS_PRIVATE_99), to show that such a libibverbs refuses libhfi1
 * instead of loading it with layouts it does not share. The public
 * symbols libhfi1 takes are there, as in any libibverbs.
 */
#include <stddef.h>

struct verbs_device_ops;

int ibv_dontfork_range(void *base, size_t size);
int ibv_dofork_range(void *base, size_t size);
void verbs_register_driver_99(const struct verbs_device_ops *ops);

int ibv_dontfork_range(void *base, size_t size)
{
	return 0;
}

int ibv_dofork_range(void *base, size_t size)
{
	return 0;
}

void verbs_register_driver_99(const struct verbs_device_ops *ops)
{
}
