// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the soft backend (backend.h). The soft HFI serves the context
 * in this process: its hfi1 user context is softhfi/'s, its device and
 * port attributes come from the tree hfi1-soft keeps (softdev.c), and a
 * port watch on that tree turns changes into port events.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>
#include <rdma/ib_user_ioctl_verbs.h>

#include "backend.h"
#include "cq.h"
#include "evloop.h"
#include "mr.h"
#include "qp.h"
#include "softdev.h"
#include "softhfi.h"
#include "softhfi_verbs.h"
#include "srq.h"
#include "stats.h"
#include "verbs.h"

/* The event thread's view of port 1, for change detection. */
struct hfi1_port_watch {
	struct hfi1_context *ctx;
	int inotify_fd;
	int port_wd; /* ports/1 */
	enum ibv_port_state last_state;
};

/* What the soft backend keeps for a context: ctx->backend_priv. */
struct hfi1_soft_ctx {
	struct hfi1_port_watch pw;
	/* The uverbs command channel behind cmd_fd; NULL without one. */
	struct softhfi_uverbs *uverbs;
	/* softhfi_verbs_start() ran: the verbs server serves ctx->drv. */
	bool verbs_started;
};

/*
 * The soft HFI never keeps the fd libibverbs opened: it is /dev/null opened
 * read-write, whose write() "succeeds" without answering, and generic
 * libibverbs code (ibv_create_comp_channel, for one) would trust the
 * response it never got. /dev/null opened read-only fails every command
 * with EBADF and every ioctl with ENOTTY, which makes libibverbs read GIDs
 * and P_Keys from the device tree. The context starts with it, and open()
 * puts the command channel in its place where FUSE can be had.
 */
static int hfi1_soft_cmd_fd(int cmd_fd)
{
	close(cmd_fd);
	return open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/*
 * Bring-up may size the soft HFI's driver (Documentation/soft-hfi.md):
 * softhfi/<param> files in the device's directory, each optional. A file
 * another user could have written is an error, not a default.
 */
static int read_soft_param(struct hfi1_context *ctx, const char *name,
			   unsigned int *val)
{
	char file[64];
	uint64_t v;
	int ret;

	snprintf(file, sizeof(file), "softhfi/%s", name);
	ret = hfi1_soft_read_u64(ctx, file, &v);
	if (!ret && v <= UINT_MAX)
		*val = v;
	return ret == EACCES ? ret : 0;
}

/* Assign the soft HFI's user context that backs this verbs context. */
static int soft_drv_open(struct hfi1_context *ctx)
{
	struct softhfi_params params;

	softhfi_default_params(&params);
	if (ctx->dev->unit >= 0)
		params.unit = ctx->dev->unit;
	if (read_soft_param(ctx, "expected_count", &params.expected_count) ||
	    read_soft_param(ctx, "user_contexts", &params.user_contexts) ||
	    read_soft_param(ctx, "cache_size_mb", &params.cache_size_mb) ||
	    read_soft_param(ctx, "contig_pages", &params.contig_pages))
		return EACCES;

	ctx->drv = softhfi_open(&params);
	if (!ctx->drv) {
		/* A long format string stays whole, as in the kernel. */
		/* clang-format off */
		hfi1_err(ctx,
			 "cannot assign a soft HFI user context (expected_count %u, contig_pages %u): %s\n",
			 params.expected_count, params.contig_pages,
			 strerror(errno));
		/* clang-format on */
		return errno;
	}
	return 0;
}

/* --- the port watch: port events from the soft device's tree --- */

static void port_state_changed(struct hfi1_port_watch *pw)
{
	struct hfi1_context *ctx = pw->ctx;
	enum ibv_port_state state;

	if (hfi1_soft_port_state(ctx, &state))
		return;
	if (state == pw->last_state)
		return;
	if (state == IBV_PORT_ACTIVE)
		hfi1_async_post(ctx, IBV_EVENT_PORT_ACTIVE, 1);
	else if (pw->last_state == IBV_PORT_ACTIVE)
		hfi1_async_post(ctx, IBV_EVENT_PORT_ERR, 1);
	pw->last_state = state;
}

static void device_removed(struct hfi1_port_watch *pw)
{
	struct hfi1_context *ctx = pw->ctx;

	hfi1_err(ctx, "the soft HFI was removed (hfi1-soft down)\n");
	pw->port_wd = -1;
	hfi1_async_post(ctx, IBV_EVENT_DEVICE_FATAL, 0);
}

/* The event thread's callback: false once there is nothing left to watch. */
static bool handle_inotify(void *arg)
{
	struct hfi1_port_watch *pw = arg;
	char buf[4096]
		__attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t len;
	char *p;

	len = read(pw->inotify_fd, buf, sizeof(buf));
	if (len <= 0)
		return true;
	for (p = buf; p < buf + len; p += sizeof(*ev) + ev->len) {
		ev = (const struct inotify_event *)p;
		if (ev->wd != pw->port_wd)
			continue;
		if (ev->mask & (IN_DELETE_SELF | IN_IGNORED)) {
			device_removed(pw);
			return false;
		}
		if (ev->len && !strcmp(ev->name, "state"))
			port_state_changed(pw);
	}
	return true;
}

static int start_port_watch(struct hfi1_port_watch *pw)
{
	struct hfi1_context *ctx = pw->ctx;
	char path[IBV_SYSFS_PATH_MAX + 16];
	int ret;

	pw->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (pw->inotify_fd < 0)
		return errno;
	snprintf(path, sizeof(path), "%s/ports/1", ctx->dev->ibdev_path);
	pw->port_wd = inotify_add_watch(pw->inotify_fd, path,
					IN_MOVED_TO | IN_CLOSE_WRITE |
						IN_DELETE_SELF | IN_ONLYDIR |
						IN_DONT_FOLLOW);
	if (pw->port_wd < 0) {
		ret = errno;
		hfi1_err(ctx, "cannot watch %s: %s\n", path, strerror(ret));
		return ret;
	}
	/* Read after the watch is set, so no change falls between. */
	ret = hfi1_soft_port_state(ctx, &pw->last_state);
	if (ret)
		hfi1_err(ctx, "cannot read the port state under %s: %s\n", path,
			 strerror(ret));
	return ret;
}

/* --- the verbs the soft device answers itself --- */

static int
hfi1_soft_query_device_ex(struct ibv_context *ibctx,
			  const struct ibv_query_device_ex_input *input,
			  struct ibv_device_attr_ex *attr, size_t attr_size)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	struct ibv_device_attr_ex full = {};
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	if (input && input->comp_mask) {
		hfi1_err(ctx, "unknown comp_mask 0x%x\n", input->comp_mask);
		return EINVAL;
	}
	if (attr_size < sizeof(attr->orig_attr)) {
		hfi1_err(ctx, "attr_size %zu is too small\n", attr_size);
		return EINVAL;
	}

	ret = hfi1_soft_query_device(ctx, &full);
	if (ret)
		return ret;
	/* Callers built against an older verbs.h pass a shorter struct. */
	memcpy(attr, &full,
	       attr_size < sizeof(full) ? attr_size : sizeof(full));
	return 0;
}

static int hfi1_soft_query_port_op(struct ibv_context *ibctx, uint8_t port,
				   struct ibv_port_attr *attr)
{
	struct hfi1_context *ctx = to_hfi1_ctx(ibctx);
	int ret;

	ret = hfi1_check_owned(ctx, __func__);
	if (ret)
		return ret;
	return hfi1_soft_query_port(ctx, port, attr);
}

static const struct verbs_context_ops hfi1_soft_ctx_ops = {
	.alloc_parent_domain = hfi1_alloc_parent_domain,
	.alloc_pd = hfi1_alloc_pd,
	.alloc_td = hfi1_alloc_td,
	.create_ah = hfi1_create_ah,
	.create_cq = hfi1_create_cq,
	.create_cq_ex = hfi1_create_cq_ex,
	.create_qp = hfi1_create_qp,
	.create_qp_ex = hfi1_create_qp_ex,
	.dealloc_pd = hfi1_dealloc_pd,
	.dealloc_td = hfi1_dealloc_td,
	.dereg_mr = hfi1_dereg_mr,
	.destroy_ah = hfi1_destroy_ah,
	.destroy_cq = hfi1_destroy_cq,
	.destroy_qp = hfi1_destroy_qp,
	.free_context = hfi1_free_context,
	.modify_qp = hfi1_modify_qp,
	.poll_cq = hfi1_poll_cq,
	.post_recv = hfi1_post_recv,
	.post_send = hfi1_post_send,
	.query_device_ex = hfi1_soft_query_device_ex,
	.query_port = hfi1_soft_query_port_op,
	.query_qp = hfi1_query_qp,
	.create_srq = hfi1_create_srq,
	.modify_srq = hfi1_modify_srq,
	.query_srq = hfi1_query_srq,
	.destroy_srq = hfi1_destroy_srq,
	.post_srq_recv = hfi1_post_srq_recv,
	.reg_mr = hfi1_reg_mr,
	.req_notify_cq = hfi1_req_notify_cq,
	.rereg_mr = hfi1_rereg_mr,
	.resize_cq = hfi1_resize_cq,
};

/* --- the verbs server (softhfi_verbs.h): its start, stop and CQs --- */

_Static_assert(HFI1_MAX_CQE == SOFTHFI_MAX_CQE && HFI1_MAX_CQ == SOFTHFI_MAX_CQ,
	       "the provider reports the soft HFI's CQ limits");

/*
 * Where the object an event names (its address, the user_handle it was
 * made with) counts the events queued for it: its destroy takes them back
 * (hfi1_async_forget()). The driver raises none after the destroy.
 */
static uint32_t *object_events(uint32_t type, uint64_t element)
{
	void *obj = (void *)(uintptr_t)element;

	switch (type) {
	case IBV_EVENT_CQ_ERR:
		return &to_hfi1_cq(obj)->async_posted;
	case IBV_EVENT_SRQ_ERR:
	case IBV_EVENT_SRQ_LIMIT_REACHED:
		return &to_hfi1_srq(obj)->async_posted;
	default:
		return &to_hfi1_qp(obj)->async_posted;
	}
}

static void soft_verbs_event(void *arg, uint32_t type, uint64_t element)
{
	if (hfi1_async_is_object_event(type))
		hfi1_async_post_obj(arg, type, element,
				    object_events(type, element));
	else
		hfi1_async_post(arg, type, element);
}

/*
 * The engine resolves memory keys through the MR table (mr.c): the soft
 * HFI's stand-in for rdmavt's lkey table. A context without the MR cache
 * has no MRs.
 */
static int soft_mr_get(void *arg, uint32_t key, uint32_t pdn, uint64_t iova,
		       uint64_t len, uint32_t access, bool remote, void **mr)
{
	struct hfi1_context *ctx = arg;

	if (!ctx->mr)
		return ENOENT;
	return hfi1_mr_get(ctx, key, pdn, iova, len, access, remote,
			   (struct hfi1_mr_ref **)mr);
}

static int soft_mr_tid(void *mr, uint64_t iova, uint32_t *tidinfo,
		       uint32_t *offset, uint32_t *left)
{
	return hfi1_mr_tid(mr, iova, tidinfo, offset, left);
}

static uint64_t soft_mr_addr(void *mr, uint64_t iova)
{
	return hfi1_mr_addr(mr, iova);
}

static void soft_mr_put(void *mr)
{
	hfi1_mr_put(mr);
}

/*
 * The port the verbs server sits on: the bring-up's fabric directory
 * (<rundir>/fabric beside <rundir>/sys/class/infiniband/<name>), the LID
 * and GID[0] from the tree.
 */
static int soft_verbs_port(struct hfi1_context *ctx, char *fabric_dir,
			   size_t len, struct softhfi_port *port)
{
	struct ibv_port_attr attr;
	char *p;
	int i, ret;

	snprintf(fabric_dir, len, "%s", ctx->dev->ibdev_path);
	for (i = 0; i < 4; i++) {
		p = strrchr(fabric_dir, '/');
		if (!p || p == fabric_dir) {
			hfi1_err(ctx, "no run directory above %s\n",
				 ctx->dev->ibdev_path);
			return EINVAL;
		}
		*p = '\0';
	}
	if (strlen(fabric_dir) + sizeof("/fabric") > len)
		return ENAMETOOLONG;
	strcat(fabric_dir, "/fabric");
	ret = hfi1_soft_query_port(ctx, 1, &attr);
	if (ret)
		return ret;
	memset(port, 0, sizeof(*port));
	port->fabric_dir = fabric_dir;
	port->lid = attr.lid;
	/* Best effort: a tree without GIDs leaves GID[0] zero. */
	hfi1_soft_read_gid(ctx, "ports/1/gids/0", port->gid);
	/* The engine counts the context's data in its stats file. */
	port->counters = ctx->stats ? hfi1_stats_data(ctx->stats) : NULL;
	return 0;
}

static int soft_verbs_start(struct hfi1_context *ctx,
			    struct hfi1_soft_ctx *sctx)
{
	const struct softhfi_verbs_ops ops = {
		.event = soft_verbs_event,
		.mr_get = soft_mr_get,
		.mr_tid = soft_mr_tid,
		.mr_addr = soft_mr_addr,
		.mr_put = soft_mr_put,
		.log = hfi1_log_line,
		.arg = ctx,
	};
	char fabric_dir[IBV_SYSFS_PATH_MAX + 16];
	struct softhfi_port port;
	int ret;

	ret = soft_verbs_port(ctx, fabric_dir, sizeof(fabric_dir), &port);
	if (ret)
		return ret;
	ret = softhfi_verbs_start(ctx->drv, &port, &ops);
	if (ret) {
		hfi1_warn(ctx, "no verbs server (CQs fail) on LID %u: %s\n",
			  port.lid, strerror(ret));
		return ret;
	}
	sctx->verbs_started = true;
	return 0;
}

static int soft_cq_create(struct hfi1_context *ctx, uint32_t cqe,
			  uint64_t user_handle,
			  struct ibv_comp_channel *channel,
			  struct hfi1_backend_cq *bcq)
{
	struct hfi1_soft_ctx *sctx = ctx->backend_priv;
	struct softhfi_cq *cq;
	int comp_fd = -1;

	if (!sctx->verbs_started) {
		hfi1_err(ctx, "the soft HFI's verbs server is not running\n");
		return ENXIO;
	}
	if (channel && sctx->uverbs)
		comp_fd = softhfi_uverbs_channel(sctx->uverbs, channel->fd);
	if (channel && comp_fd < 0) {
		hfi1_err(ctx, "fd %d is not a channel of this context\n",
			 channel->fd);
		return EINVAL;
	}
	cq = softhfi_cq_create(ctx->drv, cqe, user_handle, comp_fd);
	if (!cq)
		return errno;
	bcq->handle = cq;
	bcq->ring = softhfi_cq_ring(cq, &bcq->cqe);
	return 0;
}

static int soft_cq_resize(struct hfi1_context *ctx, struct hfi1_backend_cq *bcq,
			  uint32_t cqe)
{
	int ret;

	ret = softhfi_cq_resize(bcq->handle, cqe);
	if (!ret)
		bcq->ring = softhfi_cq_ring(bcq->handle, &bcq->cqe);
	return ret;
}

static int soft_cq_arm(struct hfi1_context *ctx, struct hfi1_backend_cq *bcq,
		       bool solicited_only)
{
	return softhfi_cq_arm(bcq->handle, solicited_only);
}

static int soft_cq_destroy(struct hfi1_context *ctx,
			   struct hfi1_backend_cq *bcq)
{
	return softhfi_cq_destroy(bcq->handle);
}

static void soft_cq_progress(struct hfi1_context *ctx,
			     struct hfi1_backend_cq *bcq)
{
	softhfi_cq_progress(bcq->handle);
}

static const struct hfi1_backend_cq_ops hfi1_soft_cq_ops = {
	.progress = soft_cq_progress,
	.create = soft_cq_create,
	.resize = soft_cq_resize,
	.arm = soft_cq_arm,
	.destroy = soft_cq_destroy,
};

/*
 * The command channel takes the place of the read-only /dev/null that
 * hfi1_soft_cmd_fd() gave the context, on the same fd number (dup3), so
 * that context->cmd_fd stays what libibverbs knows. Without it (no usable
 * FUSE, which softhfi_uverbs_open() logs) the context keeps /dev/null:
 * completion channels fail with EBADF, and nothing else needs it.
 */
static void open_cmd_channel(struct hfi1_context *ctx,
			     struct hfi1_soft_ctx *sctx)
{
	int fd;

	sctx->uverbs = softhfi_uverbs_open(hfi1_log_line, ctx);
	if (!sctx->uverbs)
		return;
	fd = softhfi_uverbs_fd(sctx->uverbs);
	if (dup3(fd, ctx->ibv_ctx.context.cmd_fd, O_CLOEXEC) < 0) {
		hfi1_warn(ctx, "cannot install the command channel: %s\n",
			  strerror(errno));
		softhfi_uverbs_close(sctx->uverbs);
		sctx->uverbs = NULL;
	}
	close(fd);
}

static void hfi1_soft_close(struct hfi1_context *ctx)
{
	struct hfi1_soft_ctx *sctx = ctx->backend_priv;

	if (!sctx)
		return;
	/* Before the caller closes ctx->drv, whose server it is. */
	if (sctx->verbs_started)
		softhfi_verbs_stop(ctx->drv);
	/* cmd_fd, still open, fails every command from now on. */
	softhfi_uverbs_close(sctx->uverbs);
	if (sctx->pw.inotify_fd >= 0)
		close(sctx->pw.inotify_fd);
	free(sctx);
	ctx->backend_priv = NULL;
}

static int hfi1_soft_open(struct hfi1_context *ctx)
{
	struct hfi1_soft_ctx *sctx;
	struct hfi1_port_watch *pw;
	int ret;

	/* One completion vector: the soft HFI's engine thread. */
	ctx->ibv_ctx.context.num_comp_vectors = 1;
	sctx = calloc(1, sizeof(*sctx));
	if (!sctx)
		return ENOMEM;
	pw = &sctx->pw;
	pw->ctx = ctx;
	pw->inotify_fd = -1;
	ctx->backend_priv = sctx;

	/* Before anything is read from it: softdev.c, "Whose tree". */
	ret = hfi1_soft_check_tree(ctx);
	if (ret)
		goto err_close;
	ret = soft_drv_open(ctx);
	if (ret)
		goto err_close;
	ret = start_port_watch(pw);
	if (ret)
		goto err_drv;
	ret = hfi1_evloop_add(ctx->evloop, pw->inotify_fd, handle_inotify, pw);
	if (ret)
		goto err_drv;
	/* Without it, the context serves all but CQs (which say why). */
	soft_verbs_start(ctx, sctx);
	open_cmd_channel(ctx, sctx);
	return 0;

err_drv:
	hfi1_drv_close(ctx->drv);
	ctx->drv = NULL;
err_close:
	hfi1_soft_close(ctx);
	return ret;
}

/*
 * --- QPs, posting and AHs: the verbs server's (softhfi_verbs.h) ---
 *
 * The objects a QP names come as the handles this backend gave them: the
 * CQs' struct softhfi_cq. The kernel's QP types and the verbs' are one.
 */
_Static_assert((int)IBV_QPT_RC == (int)IB_UVERBS_QPT_RC &&
		       (int)IBV_QPT_UC == (int)IB_UVERBS_QPT_UC &&
		       (int)IBV_QPT_UD == (int)IB_UVERBS_QPT_UD,
	       "ibv_qp_type is the kernel's");

static int soft_qp_create(struct hfi1_context *ctx,
			  const struct hfi1_backend_qp_init *init,
			  struct hfi1_backend_qp *bqp)
{
	const struct softhfi_qp_init si = {
		.qp_type = init->qp_type,
		.sq_sig_all = init->sq_sig_all,
		.pdn = init->pdn,
		.send_cq = init->send_cq,
		.recv_cq = init->recv_cq,
		.srq = init->srq,
		.max_send_wr = init->cap.max_send_wr,
		.max_recv_wr = init->cap.max_recv_wr,
		.max_send_sge = init->cap.max_send_sge,
		.max_recv_sge = init->cap.max_recv_sge,
		.max_inline_data = init->cap.max_inline_data,
		.user_handle = init->user_handle,
	};
	struct softhfi_qp_info info;
	struct softhfi_qp *qp;

	qp = softhfi_qp_create(ctx->drv, &si, &info);
	if (!qp)
		return errno;
	bqp->handle = qp;
	bqp->qpn = info.qpn;
	bqp->rq = info.rq;
	bqp->rq_size = info.rq_size;
	bqp->rq_max_sge = info.rq_max_sge;
	bqp->cap.max_send_wr = info.max_send_wr;
	bqp->cap.max_recv_wr = info.max_recv_wr;
	bqp->cap.max_send_sge = info.max_send_sge;
	bqp->cap.max_recv_sge = info.max_recv_sge;
	bqp->cap.max_inline_data = info.max_inline_data;
	return 0;
}

static int soft_qp_modify(struct hfi1_context *ctx, struct hfi1_backend_qp *bqp,
			  const struct ib_uverbs_modify_qp *cmd)
{
	return softhfi_qp_modify(bqp->handle, cmd);
}

static int soft_qp_query(struct hfi1_context *ctx, struct hfi1_backend_qp *bqp,
			 struct ib_uverbs_query_qp_resp *resp)
{
	return softhfi_qp_query(bqp->handle, resp);
}

static int soft_qp_destroy(struct hfi1_context *ctx,
			   struct hfi1_backend_qp *bqp)
{
	return softhfi_qp_destroy(bqp->handle);
}

static int soft_post_send(struct hfi1_context *ctx, struct hfi1_backend_qp *bqp,
			  const struct ib_uverbs_send_wr *wr,
			  const struct ib_uverbs_sge *sg)
{
	return softhfi_post_send(bqp->handle, wr, sg);
}

static void soft_post_recv_done(struct hfi1_context *ctx,
				struct hfi1_backend_qp *bqp)
{
	softhfi_post_recv_done(bqp->handle);
}

static const struct hfi1_backend_qp_ops hfi1_soft_qp_ops = {
	.create = soft_qp_create,
	.modify = soft_qp_modify,
	.query = soft_qp_query,
	.destroy = soft_qp_destroy,
	.post_send = soft_post_send,
	.post_recv_done = soft_post_recv_done,
};

/* softhfi_ah_*() return 0, or -1 with errno set (or else an errno). */
static int soft_ah_errno(int ret)
{
	if (ret >= 0)
		return ret;
	return errno ? errno : EINVAL;
}

static int soft_ah_create(struct hfi1_context *ctx, uint32_t pdn,
			  const struct ib_uverbs_ah_attr *attr,
			  uint32_t *handle)
{
	return soft_ah_errno(softhfi_ah_create(ctx->drv, pdn, attr, handle));
}

static int soft_ah_destroy(struct hfi1_context *ctx, uint32_t handle)
{
	return soft_ah_errno(softhfi_ah_destroy(ctx->drv, handle));
}

static const struct hfi1_backend_ah_ops hfi1_soft_ah_ops = {
	.create = soft_ah_create,
	.destroy = soft_ah_destroy,
};

/* --- the backend --- */

/* --- SRQs: the verbs server's (softhfi_verbs.h) --- */

static void srq_from_info(struct hfi1_backend_srq *bsrq,
			  const struct softhfi_srq_info *info)
{
	bsrq->rq = info->rq;
	bsrq->rq_size = info->rq_size;
	bsrq->max_wr = info->max_wr;
	bsrq->max_sge = info->max_sge;
}

static int soft_srq_create(struct hfi1_context *ctx, uint32_t pdn,
			   const struct ibv_srq_attr *attr,
			   uint64_t user_handle, struct hfi1_backend_srq *bsrq)
{
	struct softhfi_srq_info info;
	struct softhfi_srq *srq;

	srq = softhfi_srq_create(ctx->drv, pdn, attr->max_wr, attr->max_sge,
				 attr->srq_limit, user_handle, &info);
	if (!srq)
		return errno;
	bsrq->handle = srq;
	srq_from_info(bsrq, &info);
	return 0;
}

static int soft_srq_modify(struct hfi1_context *ctx,
			   struct hfi1_backend_srq *bsrq,
			   const struct ibv_srq_attr *attr, int attr_mask)
{
	struct softhfi_srq_info info;
	int ret;

	ret = softhfi_srq_modify(bsrq->handle, attr_mask & IBV_SRQ_MAX_WR,
				 attr->max_wr, attr_mask & IBV_SRQ_LIMIT,
				 attr->srq_limit, &info);
	if (!ret)
		srq_from_info(bsrq, &info);
	return ret;
}

static int soft_srq_query(struct hfi1_context *ctx,
			  struct hfi1_backend_srq *bsrq,
			  struct ibv_srq_attr *attr)
{
	return softhfi_srq_query(bsrq->handle, &attr->max_wr, &attr->max_sge,
				 &attr->srq_limit);
}

static int soft_srq_destroy(struct hfi1_context *ctx,
			    struct hfi1_backend_srq *bsrq)
{
	return softhfi_srq_destroy(bsrq->handle);
}

static const struct hfi1_backend_srq_ops hfi1_soft_srq_ops = {
	.create = soft_srq_create,
	.modify = soft_srq_modify,
	.query = soft_srq_query,
	.destroy = soft_srq_destroy,
};

const struct hfi1_backend hfi1_soft_backend = {
	.name = "soft",
	.flags = HFI1_BACKEND_ASYNC_QUEUE | HFI1_BACKEND_MR_CACHE,
	.ctx_ops = &hfi1_soft_ctx_ops,
	.cmd_fd = hfi1_soft_cmd_fd,
	.open = hfi1_soft_open,
	.close = hfi1_soft_close,
	.cq = &hfi1_soft_cq_ops,
	.qp = &hfi1_soft_qp_ops,
	.ah = &hfi1_soft_ah_ops,
	.srq = &hfi1_soft_srq_ops,
};
