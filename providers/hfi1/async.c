// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: the async event queue and the soft HFI's event thread, which
 * watches the port (port events) and the driver's event fd (MR cache
 * invalidations, HFI1DV_EVENT_MR_INVALIDATED).
 *
 * libibverbs reads struct ib_uverbs_async_event_desc records from
 * context->async_fd. The provider owns that fd: it is the read end of a
 * pipe whose write end only the provider holds. Records are 16 bytes, less
 * than PIPE_BUF, so each write lands whole and a reader never sees half of
 * one; the read end takes O_NONBLOCK and epoll as a kernel async fd does.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>

#include "async.h"
#include "mr.h"
#include "softdev.h"

/* Room for this many queued events before the application reads them. */
#define HFI1_ASYNC_QUEUE_BYTES (1 << 20)

int hfi1_async_post(struct hfi1_context *ctx, uint32_t event_type,
		    uint64_t element)
{
	struct ib_uverbs_async_event_desc desc = {
		.element = element,
		.event_type = event_type,
	};

	if (write(ctx->async_wr_fd, &desc, sizeof(desc)) == sizeof(desc))
		return 0;
	hfi1_err(ctx, "async event queue full: event %u (element %llu) lost\n",
		 event_type, (unsigned long long)element);
	return errno == EAGAIN ? ENOSPC : errno;
}

static void port_state_changed(struct hfi1_context *ctx)
{
	struct hfi1_port_watch *pw = &ctx->port_watch;
	enum ibv_port_state state;

	if (hfi1_soft_port_state(ctx->dev, &state))
		return;
	if (state == pw->last_state)
		return;
	if (state == IBV_PORT_ACTIVE)
		hfi1_async_post(ctx, IBV_EVENT_PORT_ACTIVE, 1);
	else if (pw->last_state == IBV_PORT_ACTIVE)
		hfi1_async_post(ctx, IBV_EVENT_PORT_ERR, 1);
	pw->last_state = state;
}

static void device_removed(struct hfi1_context *ctx)
{
	struct hfi1_port_watch *pw = &ctx->port_watch;

	hfi1_err(ctx, "the soft HFI was removed (hfi1-soft down)\n");
	pw->port_wd = -1;
	hfi1_async_post(ctx, IBV_EVENT_DEVICE_FATAL, 0);
}

/* Returns false once there is nothing left to watch. */
static bool handle_inotify(struct hfi1_context *ctx)
{
	struct hfi1_port_watch *pw = &ctx->port_watch;
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
			device_removed(ctx);
			return false;
		}
		if (ev->len && !strcmp(ev->name, "state"))
			port_state_changed(ctx);
	}
	return true;
}

/*
 * The driver raised an event bit: apply the cache's pending invalidations
 * now, so that an invalidated MR's event reaches the application even if
 * it makes no verbs call. Reading the eventfd re-arms it first, so a bit
 * raised during the drain wakes the thread again. What raised it is
 * logged already: no need to wait for unmappings still under way (their
 * own bit wakes the thread again), which would hold the event up until
 * the unmapping thread has been scheduled again.
 */
static void handle_drv_event(struct hfi1_context *ctx)
{
	uint64_t n;

	if (read(ctx->drv->event_fd, &n, sizeof(n)) != sizeof(n))
		return;
	hfi1_mrc_drain_returned(ctx->mr->mrc);
}

static void *hfi1_event_thread(void *arg)
{
	struct hfi1_context *ctx = arg;
	struct pollfd fds[3] = {
		{ .fd = ctx->stop_fd, .events = POLLIN },
		{ .fd = ctx->drv->event_fd, .events = POLLIN },
		{ .fd = ctx->port_watch.inotify_fd, .events = POLLIN },
	};
	nfds_t nfds = 3;

	for (;;) {
		if (poll(fds, nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			hfi1_err(ctx, "event thread: poll: %s\n",
				 strerror(errno));
			break;
		}
		if (fds[0].revents)
			break;
		/* A backend without an event fd has fds[1].fd == -1. */
		if (fds[1].revents)
			handle_drv_event(ctx);
		if (nfds > 2 && fds[2].revents && !handle_inotify(ctx))
			nfds = 2;
	}
	return NULL;
}

static int start_port_watch(struct hfi1_context *ctx)
{
	struct hfi1_port_watch *pw = &ctx->port_watch;
	char path[IBV_SYSFS_PATH_MAX + 16];
	int ret;

	pw->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (pw->inotify_fd < 0)
		return errno;
	snprintf(path, sizeof(path), "%s/ports/1", ctx->dev->ibdev_path);
	pw->port_wd = inotify_add_watch(pw->inotify_fd, path,
					IN_MOVED_TO | IN_CLOSE_WRITE |
						IN_DELETE_SELF | IN_ONLYDIR);
	if (pw->port_wd < 0) {
		ret = errno;
		hfi1_err(ctx, "cannot watch %s: %s\n", path, strerror(ret));
		return ret;
	}
	/* Read after the watch is set, so no change falls between. */
	ret = hfi1_soft_port_state(ctx->dev, &pw->last_state);
	if (ret)
		hfi1_err(ctx, "cannot read the port state under %s: %s\n", path,
			 strerror(ret));
	return ret;
}

int hfi1_async_init(struct hfi1_context *ctx)
{
	sigset_t all, old;
	int fds[2];
	int ret;

	if (pipe2(fds, O_CLOEXEC))
		return errno;
	ctx->ibv_ctx.context.async_fd = fds[0];
	ctx->async_wr_fd = fds[1];
	/* The event thread must never block on a reader that is not there. */
	if (fcntl(ctx->async_wr_fd, F_SETFL, O_NONBLOCK))
		return errno;
	/* Best effort: a bigger queue where fs.pipe-max-size allows it. */
	fcntl(ctx->async_wr_fd, F_SETPIPE_SZ, HFI1_ASYNC_QUEUE_BYTES);

	ctx->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (ctx->stop_fd < 0)
		return errno;

	ret = start_port_watch(ctx);
	if (ret)
		return ret;

	/* The thread takes no signal meant for the application. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&ctx->event_thread, NULL, hfi1_event_thread, ctx);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ret;
	ctx->event_thread_running = true;
	return 0;
}

/*
 * Undoes whatever part of hfi1_async_init() succeeded. The read end is
 * context.async_fd, which verbs_uninit_context() closes.
 */
void hfi1_async_cleanup(struct hfi1_context *ctx)
{
	uint64_t one = 1;

	if (ctx->event_thread_running) {
		if (write(ctx->stop_fd, &one, sizeof(one)) != sizeof(one))
			hfi1_err(ctx, "cannot stop the event thread: %s\n",
				 strerror(errno));
		pthread_join(ctx->event_thread, NULL);
		ctx->event_thread_running = false;
	}
	if (ctx->port_watch.inotify_fd >= 0)
		close(ctx->port_watch.inotify_fd);
	if (ctx->stop_fd >= 0)
		close(ctx->stop_fd);
	if (ctx->async_wr_fd >= 0)
		close(ctx->async_wr_fd);
	ctx->port_watch.inotify_fd = -1;
	ctx->stop_fd = -1;
	ctx->async_wr_fd = -1;
}
