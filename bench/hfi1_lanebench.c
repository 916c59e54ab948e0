// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * hfi1_lanebench: wires the soft HFI could use between two processes, with
 * the pinned-page rule kept (data lands with READ_FIXED into a registered
 * buffer, never through the mapping), without the provider: what each
 * costs at least. The numbers behind "Measured and not taken, for the
 * wire itself" in Documentation/soft-hfi-verbs.md.
 *
 * 8-byte half round trips, the receiver spinning on a count in shared
 * memory, against the raw busy-polling AF_UNIX ping-pong:
 *  - sock: write() to the socket, READ_FIXED from it (the stream today);
 *  - pipe: write() to a pipe, READ_FIXED from it;
 *  - shm_bounce: memcpy() into shared memory, no system call; the
 *    receiver writes the bytes into a pipe of its own and READ_FIXEDs
 *    them back (linked, one io_uring_enter). Not a wire: a memcpy() from
 *    the application's memory may fault;
 *  - shm_bounce_safe: the same with process_vm_readv() as the copy;
 *  - memfd: memcpy() into a memfd, READ_FIXED from the memfd.
 *
 * 1 MiB streams in 256 KiB writes, against the socket (4 MiB buffers)
 * with READ_FIXED:
 *  - pipe_write: write() into a 1 MiB pipe, READ_FIXED from it;
 *  - pipe_splice: vmsplice() into it: the pipe holds the sender's pages,
 *    one copy in all;
 *  - memfd_ring: pwrite() into a 4 MiB memfd ring, READ_FIXED from it.
 *
 * Each round forks a new pair of processes per method, methods in turn;
 * results are medians. Nothing here asserts a timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <liburing.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "bench_common.h"

#define MIB (1024ul * 1024)
#define BW_PIECE (256 * 1024)
#define BW_RING (4 * MIB)
#define LANE_PIPE MIB

enum lat_method {
	LAT_RAW_POLL,
	LAT_SOCK,
	LAT_PIPE,
	LAT_SHM_BOUNCE,
	LAT_SHM_BOUNCE_SAFE,
	LAT_MEMFD,
	LAT_NUM,
};

static const char *const lat_name[LAT_NUM] = {
	"raw_poll", "sock", "pipe", "shm_bounce", "shm_bounce_safe", "memfd",
};

enum bw_method {
	BW_SOCK,
	BW_PIPE_WRITE,
	BW_PIPE_SPLICE,
	BW_MEMFD_RING,
	BW_NUM,
};

static const char *const bw_name[BW_NUM] = {
	"sock",
	"pipe_write",
	"pipe_splice",
	"memfd_ring",
};

/* Shared by the two processes of a measurement. */
struct shared {
	_Atomic uint64_t count[2] __attribute__((aligned(64)));
	_Atomic uint64_t consumed __attribute__((aligned(64)));
	char slot[2][4096] __attribute__((aligned(4096)));
};

static void die(const char *what)
{
	perror(what);
	exit(1);
}

/* Both directions of a measurement, made before the fork. */
struct wire {
	struct shared *sh;
	int memfd; /* backs sh */
	int sock[2];
	int pipe[2][2]; /* [i]: from process i to the other */
	int ring_fd; /* BW_MEMFD_RING */
};

static void size_socket(int fd)
{
	int sz = 4 * MIB;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
}

static void wire_init(struct wire *w)
{
	int i;

	w->memfd = memfd_create("hfi1-lanebench", MFD_CLOEXEC);
	if (w->memfd < 0 || ftruncate(w->memfd, sizeof(*w->sh)))
		die("memfd");
	w->sh = mmap(NULL, sizeof(*w->sh), PROT_READ | PROT_WRITE, MAP_SHARED,
		     w->memfd, 0);
	if (w->sh == MAP_FAILED)
		die("mmap");
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, w->sock))
		die("socketpair");
	size_socket(w->sock[0]);
	size_socket(w->sock[1]);
	for (i = 0; i < 2; i++) {
		if (pipe(w->pipe[i]))
			die("pipe");
		/* The most a pipe may have without privileges, by default. */
		fcntl(w->pipe[i][1], F_SETPIPE_SZ, LANE_PIPE);
	}
	w->ring_fd = memfd_create("hfi1-lanebench-ring", MFD_CLOEXEC);
	if (w->ring_fd < 0 || ftruncate(w->ring_fd, BW_RING))
		die("memfd ring");
}

static void wire_fini(struct wire *w)
{
	int i;

	munmap(w->sh, sizeof(*w->sh));
	close(w->memfd);
	close(w->sock[0]);
	close(w->sock[1]);
	for (i = 0; i < 2; i++) {
		close(w->pipe[i][0]);
		close(w->pipe[i][1]);
	}
	close(w->ring_fd);
}

/* An io_uring whose one registered buffer is @buf, of @len bytes. */
static void ring_init(struct io_uring *ring, void *buf, size_t len)
{
	struct iovec iov = { buf, len };

	errno = -io_uring_queue_init(8, ring, 0);
	if (errno)
		die("io_uring_queue_init");
	errno = -io_uring_register_buffers(ring, &iov, 1);
	if (errno)
		die("io_uring_register_buffers");
}

/* Submit what is queued, reap @n completions; the last one's result. */
static int ring_run(struct io_uring *ring, unsigned int n)
{
	struct io_uring_cqe *cqe;
	int res = 0;

	if (io_uring_submit_and_wait(ring, n) < 0)
		die("io_uring_submit_and_wait");
	while (n--) {
		if (io_uring_wait_cqe(ring, &cqe))
			die("io_uring_wait_cqe");
		res = cqe->res;
		io_uring_cqe_seen(ring, cqe);
	}
	return res;
}

/* One message of 8 bytes from process @me, by @m. */
static void lat_send(struct wire *w, enum lat_method m, int me, const char *msg)
{
	struct iovec local = { w->sh->slot[me], 8 },
		     remote = { (void *)msg, 8 };

	switch (m) {
	case LAT_RAW_POLL:
	case LAT_SOCK:
		if (write(w->sock[me], msg, 8) != 8)
			die("write");
		break;
	case LAT_PIPE:
		if (write(w->pipe[me][1], msg, 8) != 8)
			die("write");
		break;
	case LAT_SHM_BOUNCE:
	case LAT_MEMFD:
		memcpy(w->sh->slot[me], msg, 8);
		break;
	case LAT_SHM_BOUNCE_SAFE:
		if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 8)
			die("process_vm_readv");
		break;
	default:
		break;
	}
	if (m != LAT_RAW_POLL)
		atomic_fetch_add(&w->sh->count[me], 1);
}

/* The peer's next message into @buf (registered in @ring), by @m. */
static void lat_recv(struct wire *w, enum lat_method m, int me,
		     struct io_uring *ring, char *buf, uint64_t *taken,
		     int bounce[2])
{
	int peer = !me, res;
	struct io_uring_sqe *sqe;

	if (m == LAT_RAW_POLL) {
		size_t got = 0;

		while (got < 8) {
			ssize_t n = recv(w->sock[me], buf + got, 8 - got,
					 MSG_DONTWAIT);

			if (n > 0)
				got += n;
			else if (n == 0 || errno != EAGAIN)
				die("recv");
		}
		return;
	}
	while (atomic_load(&w->sh->count[peer]) == *taken)
		;
	(*taken)++;
	switch (m) {
	case LAT_SOCK:
		io_uring_prep_read_fixed(io_uring_get_sqe(ring), w->sock[me],
					 buf, 8, -1, 0);
		res = ring_run(ring, 1);
		break;
	case LAT_PIPE:
		io_uring_prep_read_fixed(io_uring_get_sqe(ring),
					 w->pipe[peer][0], buf, 8, -1, 0);
		res = ring_run(ring, 1);
		break;
	case LAT_MEMFD:
		io_uring_prep_read_fixed(io_uring_get_sqe(ring), w->memfd, buf,
					 8, offsetof(struct shared, slot[peer]),
					 0);
		res = ring_run(ring, 1);
		break;
	default: /* the bounces */
		sqe = io_uring_get_sqe(ring);
		io_uring_prep_write(sqe, bounce[1], w->sh->slot[peer], 8, -1);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_prep_read_fixed(io_uring_get_sqe(ring), bounce[0], buf,
					 8, -1, 0);
		res = ring_run(ring, 2);
		break;
	}
	if (res != 8) {
		errno = res < 0 ? -res : EIO;
		die("READ_FIXED");
	}
}

/* One process of a ping-pong: process 0 starts and times it. */
static void lat_side(struct wire *w, enum lat_method m, int me, int iters,
		     double *half_rt_us)
{
	static char buf[4096] __attribute__((aligned(4096)));
	char msg[8] = "8 bytes";
	struct io_uring ring;
	uint64_t taken = 0, t0;
	int bounce[2], i;

	ring_init(&ring, buf, sizeof(buf));
	if (pipe(bounce))
		die("pipe");
	t0 = bench_now_ns();
	for (i = 0; i < iters; i++) {
		if (me == 0)
			lat_send(w, m, me, msg);
		lat_recv(w, m, me, &ring, buf, &taken, bounce);
		if (me == 1)
			lat_send(w, m, me, msg);
	}
	if (half_rt_us)
		*half_rt_us = (bench_now_ns() - t0) / 1e3 / iters / 2;
	close(bounce[0]);
	close(bounce[1]);
	io_uring_queue_exit(&ring);
}

/* A new wire, and the second process of a measurement on it: 0 in it. */
static pid_t pair_start(struct wire *w)
{
	pid_t pid;

	wire_init(w);
	pid = fork();
	if (pid < 0)
		die("fork");
	return pid;
}

/* The second process is done, and did not fail. */
static void pair_end(struct wire *w, pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status))
		die("the other process");
	wire_fini(w);
}

static double run_lat(enum lat_method m, int iters)
{
	struct wire w;
	double us = 0;
	pid_t pid = pair_start(&w);

	if (!pid) {
		lat_side(&w, m, 1, iters, NULL);
		_exit(0);
	}
	lat_side(&w, m, 0, iters, &us);
	pair_end(&w, pid);
	return us;
}

/* The sender of a stream: @total bytes from @src in BW_PIECE writes. */
static void bw_send(struct wire *w, enum bw_method m, const char *src,
		    size_t total)
{
	size_t sent = 0;

	while (sent < total) {
		const char *at = src + sent % MIB;
		struct iovec iov = { (void *)at, BW_PIECE };
		ssize_t n;

		switch (m) {
		case BW_SOCK:
			n = write(w->sock[0], at, BW_PIECE);
			break;
		case BW_PIPE_WRITE:
			n = write(w->pipe[0][1], at, BW_PIECE);
			break;
		case BW_PIPE_SPLICE:
			/* The pages stay as they are: nothing writes them. */
			n = vmsplice(w->pipe[0][1], &iov, 1, 0);
			break;
		default:
			while (sent + BW_PIECE - atomic_load(&w->sh->consumed) >
			       BW_RING)
				;
			n = pwrite(w->ring_fd, at, BW_PIECE, sent % BW_RING);
			if (n == BW_PIECE)
				atomic_store(&w->sh->count[0], sent + n);
			break;
		}
		if (n <= 0)
			die("stream write");
		sent += n;
	}
}

/* The receiver of a stream, into @dst (1 MiB, registered); GB/s. */
static double bw_recv(struct wire *w, enum bw_method m, char *dst, size_t total)
{
	struct io_uring ring;
	size_t got = 0;
	uint64_t t0;
	int fd = m == BW_SOCK ? w->sock[1] : w->pipe[0][0];

	ring_init(&ring, dst, MIB);
	t0 = bench_now_ns();
	while (got < total) {
		size_t want = total - got < MIB ? total - got : MIB;
		uint64_t off = 0;
		int res;

		if (m == BW_MEMFD_RING) {
			uint64_t end;

			while ((end = atomic_load(&w->sh->count[0])) == got)
				;
			off = got % BW_RING;
			want = end - got;
			if (want > BW_RING - off)
				want = BW_RING - off;
			if (want > MIB)
				want = MIB;
			fd = w->ring_fd;
		}
		io_uring_prep_read_fixed(
			io_uring_get_sqe(&ring), fd, dst, want,
			m == BW_MEMFD_RING ? off : (uint64_t)-1, 0);
		res = ring_run(&ring, 1);
		if (res <= 0) {
			errno = res < 0 ? -res : EPIPE;
			die("READ_FIXED");
		}
		got += res;
		if (m == BW_MEMFD_RING)
			atomic_store(&w->sh->consumed, got);
	}
	io_uring_queue_exit(&ring);
	return (double)total / (bench_now_ns() - t0);
}

static double run_bw(enum bw_method m, size_t total, char *buf)
{
	struct wire w;
	double gbs;
	pid_t pid = pair_start(&w);

	if (!pid) {
		bw_send(&w, m, buf, total);
		_exit(0);
	}
	gbs = bw_recv(&w, m, buf, total);
	pair_end(&w, pid);
	return gbs;
}

int main(int argc, char **argv)
{
	struct bench_args args;
	double lat[LAT_NUM][5], bw[BW_NUM][5], lat_med[LAT_NUM], bw_med[BW_NUM];
	int rounds, iters, r, m;
	size_t total;
	char *buf;

	bench_parse_args(
		argc, argv,
		"Wires between two processes that keep the pinned-page rule\n"
		"(READ_FIXED into a registered buffer), outside the provider:\n"
		"8-byte half round trips against the raw busy-polling AF_UNIX\n"
		"ping-pong, 1 MiB streams against the socket with READ_FIXED.",
		&args);
	rounds = args.quick ? 1 : 5;
	iters = args.quick ? 200 : 20000;
	total = (args.quick ? 16 : 1024) * MIB;
	buf = bench_alloc_buffer(MIB);
	if (!buf)
		die("bench_alloc_buffer");
	memset(buf, 0x5a, MIB);
	for (r = 0; r < rounds; r++) {
		for (m = 0; m < LAT_NUM; m++)
			lat[m][r] = run_lat(m, iters);
		for (m = 0; m < BW_NUM; m++)
			bw[m][r] = run_bw(m, total, buf);
	}
	for (m = 0; m < LAT_NUM; m++)
		lat_med[m] = bench_median(lat[m], rounds);
	for (m = 0; m < BW_NUM; m++)
		bw_med[m] = bench_median(bw[m], rounds);
	munmap(buf, MIB);

	if (args.json) {
		printf("{\"rounds\":%d", rounds);
		for (m = 0; m < LAT_NUM; m++)
			printf(",\"lat_%s_us\":%.3f,\"lat_%s_vs_raw_poll\":%.3f",
			       lat_name[m], lat_med[m], lat_name[m],
			       lat_med[m] / lat_med[LAT_RAW_POLL]);
		for (m = 0; m < BW_NUM; m++)
			printf(",\"bw_%s_gbs\":%.3f,\"bw_%s_vs_sock\":%.3f",
			       bw_name[m], bw_med[m], bw_name[m],
			       bw_med[m] / bw_med[BW_SOCK]);
		printf("}\n");
		return 0;
	}
	printf("hfi1_lanebench: medians of %d rounds\n", rounds);
	printf("8-byte half round trip (receiver spins on a shared count, then READ_FIXED):\n");
	for (m = 0; m < LAT_NUM; m++)
		printf("  %-16s %6.2f us  %.2fx raw busy-polling\n",
		       lat_name[m], lat_med[m],
		       lat_med[m] / lat_med[LAT_RAW_POLL]);
	printf("1 MiB stream in 256 KiB writes, READ_FIXED on the receiver:\n");
	for (m = 0; m < BW_NUM; m++)
		printf("  %-16s %6.2f GB/s  %.2fx the socket\n", bw_name[m],
		       bw_med[m], bw_med[m] / bw_med[BW_SOCK]);
	return 0;
}
