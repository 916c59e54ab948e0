// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * A stand-in libibverbs.so.1 whose private provider ABI is not ours
 * (IBVERBS_PRIVATE_99), to show that such a libibverbs refuses libhfi1
 * instead of loading it with layouts it does not share.
 */
struct verbs_device_ops;

void verbs_register_driver_99(const struct verbs_device_ops *ops);

void verbs_register_driver_99(const struct verbs_device_ops *ops)
{
}
