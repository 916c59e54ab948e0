// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: device matching and the device's life cycle. The match table
 * picks the backend that serves a device (backend.h); libibverbs finds
 * the provider through the registration at the bottom.
 */
#include <stdio.h>
#include <stdlib.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "backend.h"
#include "verbs.h"

/* driver_data: the backend that serves the device (backend.h). */
#define HFI1_MATCH_PCI(_device, _backend)                           \
	{                                                           \
		.driver_data = (void *)(_backend),                  \
		.vendor = PCI_VENDOR_ID_INTEL, .device = (_device), \
		.kind = VERBS_MATCH_PCI,                            \
	}

static const struct verbs_match_ent hfi1_match_table[] = {
	{
		.driver_data = (void *)&hfi1_kernel_backend,
		.u.driver_id = RDMA_DRIVER_HFI1,
		.kind = VERBS_MATCH_DRIVER_ID,
	},
	HFI1_MATCH_PCI(PCI_DEVICE_ID_INTEL_HFI1_0, &hfi1_kernel_backend),
	HFI1_MATCH_PCI(PCI_DEVICE_ID_INTEL_HFI1_1, &hfi1_kernel_backend),
	{
		.driver_data = (void *)&hfi1_soft_backend,
		.u.modalias = HFI1_SOFT_MODALIAS_PREFIX "*",
		.kind = VERBS_MATCH_MODALIAS,
	},
	{}
};

static struct verbs_device *hfi1_alloc_device(struct verbs_sysfs_dev *sysfs)
{
	struct hfi1_device *dev;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;

	dev->backend = sysfs->match->driver_data;
	snprintf(dev->ibdev_path, sizeof(dev->ibdev_path), "%s",
		 sysfs->ibdev_path);
	if (sscanf(sysfs->ibdev_name, "hfi1_%d", &dev->unit) != 1)
		dev->unit = -1;
	return &dev->ibv_dev;
}

static void hfi1_uninit_device(struct verbs_device *vdev)
{
	free(container_of(vdev, struct hfi1_device, ibv_dev));
}

static const struct verbs_device_ops hfi1_dev_ops = {
	.name = "hfi1",
	.match_min_abi_version = HFI1_UVERBS_ABI_VERSION,
	.match_max_abi_version = HFI1_UVERBS_ABI_VERSION,
	.match_table = hfi1_match_table,
	.alloc_device = hfi1_alloc_device,
	.uninit_device = hfi1_uninit_device,
	.alloc_context = hfi1_alloc_context,
};

bool hfi1_is_hfi1_dev(struct ibv_device *ibdev)
{
	struct verbs_device *vdev =
		container_of(ibdev, struct verbs_device, device);

	return vdev->ops == &hfi1_dev_ops;
}

/*
 * Registering through the versioned verbs_register_driver_34 ties the
 * provider to IBVERBS_PRIVATE_34: another libibverbs fails the dlopen.
 */
static void __attribute__((constructor)) hfi1_register_driver(void)
{
	verbs_register_driver_34(&hfi1_dev_ops);
}
