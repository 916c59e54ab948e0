// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: device matching, device and context life cycle.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "async.h"
#include "kdrv.h"
#include "mr.h"
#include "softdev.h"
#include "verbs.h"

#define HFI1_MATCH_PCI(_device, _backend)                           \
	{                                                           \
		.driver_data = (void *)(uintptr_t)(_backend),       \
		.vendor = PCI_VENDOR_ID_INTEL, .device = (_device), \
		.kind = VERBS_MATCH_PCI,                            \
	}

static const struct verbs_match_ent hfi1_match_table[] = {
	{
		.driver_data = (void *)(uintptr_t)HFI1_BACKEND_KERNEL,
		.u.driver_id = RDMA_DRIVER_HFI1,
		.kind = VERBS_MATCH_DRIVER_ID,
	},
	HFI1_MATCH_PCI(PCI_DEVICE_ID_INTEL_HFI1_0, HFI1_BACKEND_KERNEL),
	HFI1_MATCH_PCI(PCI_DEVICE_ID_INTEL_HFI1_1, HFI1_BACKEND_KERNEL),
	{
		.driver_data = (void *)(uintptr_t)HFI1_BACKEND_SOFT,
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

	dev->backend = (uintptr_t)sysfs->match->driver_data;
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

/*
 * The soft HFI never keeps the fd libibverbs opened: it is /dev/null opened
 * read-write, whose write() "succeeds" without answering, and generic
 * libibverbs code (ibv_create_comp_channel, for one) would trust the
 * response it never got. /dev/null opened read-only fails every command
 * with EBADF and every ioctl with ENOTTY, which makes libibverbs read GIDs
 * and P_Keys from the device tree.
 */
static int hfi1_soft_cmd_fd(int cmd_fd)
{
	close(cmd_fd);
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int hfi1_kernel_init(struct hfi1_context *ctx)
{
	struct ib_uverbs_get_context_resp resp;
	struct ibv_get_context cmd;
	char path[32];

	if (ibv_cmd_get_context(&ctx->ibv_ctx, &cmd, sizeof(cmd), &resp,
				sizeof(resp)))
		return errno;

	if (ctx->dev->unit < 0)
		return ENODEV;
	snprintf(path, sizeof(path), "/dev/hfi1_%d", ctx->dev->unit);
	ctx->drv = hfi1_kdrv_open(path, NULL);
	if (!ctx->drv) {
		hfi1_err(ctx, "cannot assign an hfi1 user context on %s: %s\n",
			 path, strerror(errno));
		return errno;
	}
	return 0;
}

static struct verbs_context *hfi1_alloc_context(struct ibv_device *ibdev,
						int cmd_fd, void *private_data)
{
	struct hfi1_device *dev = to_hfi1_dev(ibdev);
	struct hfi1_context *ctx;
	int ret;

	if (dev->backend == HFI1_BACKEND_SOFT) {
		cmd_fd = hfi1_soft_cmd_fd(cmd_fd);
		if (cmd_fd < 0)
			return NULL;
	}

	/* cmd_fd is the context's from here on, or closed on failure. */
	ctx = verbs_init_and_alloc_context(ibdev, cmd_fd, ctx, ibv_ctx,
					   RDMA_DRIVER_HFI1);
	if (!ctx)
		return NULL;

	ctx->dev = dev;
	ctx->async_wr_fd = -1;
	ctx->stop_fd = -1;
	ctx->port_watch.inotify_fd = -1;
	pthread_mutex_init(&ctx->obj_lock, NULL);

	if (dev->backend == HFI1_BACKEND_SOFT) {
		/* One completion vector: the soft HFI's engine thread. */
		ctx->ibv_ctx.context.num_comp_vectors = 1;
		verbs_set_ops(&ctx->ibv_ctx, &hfi1_soft_ctx_ops);
		ret = hfi1_soft_drv_open(ctx);
		if (ret)
			goto err_uninit;
		ret = hfi1_mr_init(ctx);
		if (ret)
			goto err_drv;
		/* Last: the event thread drains the cache. */
		ret = hfi1_async_init(ctx);
		if (ret)
			goto err_async;
	} else {
		verbs_set_ops(&ctx->ibv_ctx, &hfi1_kernel_ctx_ops);
		ret = hfi1_kernel_init(ctx);
		if (ret)
			goto err_uninit;
	}
	return &ctx->ibv_ctx;

err_async:
	hfi1_async_cleanup(ctx);
	hfi1_mr_cleanup(ctx);
err_drv:
	hfi1_drv_close(ctx->drv);
err_uninit:
	pthread_mutex_destroy(&ctx->obj_lock);
	verbs_uninit_context(&ctx->ibv_ctx);
	free(ctx);
	errno = ret;
	return NULL;
}

void hfi1_free_context(struct ibv_context *ibctx)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);

	if (ctx->dev->backend == HFI1_BACKEND_SOFT) {
		atomic_store(&ctx->closing, true);
		/* The event thread stops first: it drains the cache. */
		hfi1_async_cleanup(ctx);
		hfi1_mr_cleanup(ctx);
	}
	hfi1_drv_close(ctx->drv);
	pthread_mutex_destroy(&ctx->obj_lock);
	verbs_uninit_context(&ctx->ibv_ctx);
	free(ctx);
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
