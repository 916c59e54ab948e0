// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * libhfi1: a context's event thread (evloop.h). One thread per context,
 * which sleeps in poll() on a stop eventfd and on the fds the provider's
 * parts registered, and calls their callbacks. It takes no signal meant
 * for the application.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/eventfd.h>

#include "hfi1.h"
#include "evloop.h"

/* The stop fd, the MR cache's driver events and the port watch. */
#define HFI1_EVLOOP_MAX_FDS 4

struct hfi1_evloop {
	struct hfi1_context *ctx; /* for its log */
	pthread_t thread;
	bool running;
	/* fds[0] is the stop eventfd; the others are the watched fds. */
	struct pollfd fds[HFI1_EVLOOP_MAX_FDS];
	hfi1_evloop_fn fn[HFI1_EVLOOP_MAX_FDS];
	void *arg[HFI1_EVLOOP_MAX_FDS];
	nfds_t nfds;
};

struct hfi1_evloop *hfi1_evloop_create(struct hfi1_context *ctx)
{
	struct hfi1_evloop *loop;

	loop = calloc(1, sizeof(*loop));
	if (!loop) {
		errno = ENOMEM;
		return NULL;
	}
	loop->ctx = ctx;
	loop->fds[0].fd = -1;
	loop->nfds = 1;
	return loop;
}

int hfi1_evloop_add(struct hfi1_evloop *loop, int fd, hfi1_evloop_fn fn,
		    void *arg)
{
	if (loop->running || loop->nfds == HFI1_EVLOOP_MAX_FDS)
		return ENOSPC;
	loop->fds[loop->nfds].fd = fd;
	loop->fds[loop->nfds].events = POLLIN;
	loop->fn[loop->nfds] = fn;
	loop->arg[loop->nfds] = arg;
	loop->nfds++;
	return 0;
}

static void *evloop_thread(void *arg)
{
	struct hfi1_evloop *loop = arg;
	nfds_t i;

	for (;;) {
		if (poll(loop->fds, loop->nfds, -1) < 0) {
			if (errno == EINTR)
				continue;
			hfi1_err(loop->ctx, "event thread: poll: %s\n",
				 strerror(errno));
			break;
		}
		if (loop->fds[0].revents)
			break;
		for (i = 1; i < loop->nfds; i++) {
			/* A negative fd is not polled: done with, or none. */
			if (loop->fds[i].fd < 0 || !loop->fds[i].revents)
				continue;
			if (!loop->fn[i](loop->arg[i]))
				loop->fds[i].fd = -1;
		}
	}
	return NULL;
}

int hfi1_evloop_start(struct hfi1_evloop *loop)
{
	sigset_t all, old;
	int ret;

	if (loop->nfds == 1)
		return 0;
	loop->fds[0].fd = eventfd(0, EFD_CLOEXEC);
	if (loop->fds[0].fd < 0)
		return errno;
	loop->fds[0].events = POLLIN;

	/* The thread takes no signal meant for the application. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&loop->thread, NULL, evloop_thread, loop);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (ret)
		return ret;
	loop->running = true;
	return 0;
}

void hfi1_evloop_drop(struct hfi1_evloop *loop)
{
	if (!loop)
		return;
	if (loop->fds[0].fd >= 0)
		close(loop->fds[0].fd);
	free(loop);
}

void hfi1_evloop_destroy(struct hfi1_evloop *loop)
{
	uint64_t one = 1;

	if (loop && loop->running) {
		if (write(loop->fds[0].fd, &one, sizeof(one)) != sizeof(one))
			hfi1_err(loop->ctx,
				 "cannot stop the event thread: %s\n",
				 strerror(errno));
		pthread_join(loop->thread, NULL);
	}
	hfi1_evloop_drop(loop);
}
