// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The soft HFI's uverbs command channel through libibverbs: completion
 * channels are real fds (non-blocking, epoll), nothing leaks over many
 * channels and contexts, a forked child's command fails with EIO, bad
 * commands get the kernel's errnos, and where no FUSE mount can be had
 * (`test_hfi1_comp_channel nofuse`, which turns itself into nobody under
 * no_new_privs) the channel fails cleanly with one log line and the rest
 * keeps working.
 *
 * Run by tests/with_soft_hfi.sh, which brings up hfi1_0 and hfi1_1.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <cmocka.h>
#include <infiniband/verbs.h>
#include <rdma/ib_user_verbs.h>

/* NULL if the device is not there or cannot be opened. */
static struct ibv_context *try_open_hfi1(const char *name)
{
	struct ibv_device **list;
	struct ibv_context *ctx = NULL;
	int i, n;

	list = ibv_get_device_list(&n);
	if (!list)
		return NULL;
	for (i = 0; i < n; i++)
		if (!strcmp(ibv_get_device_name(list[i]), name))
			ctx = ibv_open_device(list[i]);
	ibv_free_device_list(list);
	return ctx;
}

static struct ibv_context *open_hfi1(const char *name)
{
	struct ibv_context *ctx = try_open_hfi1(name);

	assert_non_null(ctx);
	return ctx;
}

static int count_dir(const char *path)
{
	struct dirent *d;
	DIR *dir;
	int n = 0;

	dir = opendir(path);
	assert_non_null(dir);
	while ((d = readdir(dir)))
		n += d->d_name[0] != '.';
	closedir(dir);
	return n;
}

/* Fifty channels: real fds, and none left over once the context closes. */
static void test_channels(void **state)
{
	int fds = count_dir("/proc/self/fd");
	struct epoll_event ev = { .events = EPOLLIN };
	struct ibv_comp_channel *ch;
	struct ibv_context *ctx;
	char buf[8];
	int i, ep;

	(void)state;
	ep = epoll_create1(EPOLL_CLOEXEC);
	assert_true(ep >= 0);
	ctx = open_hfi1("hfi1_0");
	for (i = 0; i < 50; i++) {
		ch = ibv_create_comp_channel(ctx);
		assert_non_null(ch);
		assert_true(ch->fd > 2);
		/* As UCX does: non-blocking, in an epoll set. */
		assert_int_equal(fcntl(ch->fd, F_SETFL,
				       fcntl(ch->fd, F_GETFL) | O_NONBLOCK),
				 0);
		assert_int_equal(read(ch->fd, buf, sizeof(buf)), -1);
		assert_int_equal(errno, EAGAIN);
		assert_int_equal(epoll_ctl(ep, EPOLL_CTL_ADD, ch->fd, &ev), 0);
		assert_int_equal(epoll_wait(ep, &ev, 1, 0), 0);
		assert_int_equal(epoll_ctl(ep, EPOLL_CTL_DEL, ch->fd, NULL), 0);
		assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	}
	assert_int_equal(ibv_close_device(ctx), 0);
	close(ep);
	assert_int_equal(count_dir("/proc/self/fd"), fds);
}

/* Contexts opened and closed: no fd and no thread outlives its context. */
static void test_open_close(void **state)
{
	int fds = count_dir("/proc/self/fd");
	int tasks = count_dir("/proc/self/task");
	struct ibv_comp_channel *ch;
	struct ibv_context *ctx;
	int i;

	(void)state;
	for (i = 0; i < 20; i++) {
		ctx = open_hfi1(i % 2 ? "hfi1_1" : "hfi1_0");
		ch = ibv_create_comp_channel(ctx);
		assert_non_null(ch);
		assert_int_equal(ibv_destroy_comp_channel(ch), 0);
		assert_int_equal(ibv_close_device(ctx), 0);
	}
	assert_int_equal(count_dir("/proc/self/fd"), fds);
	assert_int_equal(count_dir("/proc/self/task"), tasks);
}

/*
 * A forked child's command would be answered into the parent's memory: it
 * gets EIO, and the parent's channel keeps working.
 */
static void test_fork(void **state)
{
	struct ibv_comp_channel *ch;
	struct ibv_context *ctx;
	int status;
	pid_t pid;

	(void)state;
	ctx = open_hfi1("hfi1_0");
	ch = ibv_create_comp_channel(ctx);
	assert_non_null(ch);
	pid = fork();
	assert_true(pid >= 0);
	if (!pid) {
		struct ibv_comp_channel *c = ibv_create_comp_channel(ctx);

		_exit(c == NULL && errno == EIO ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	ch = ibv_create_comp_channel(ctx);
	assert_non_null(ch);
	assert_int_equal(ibv_destroy_comp_channel(ch), 0);
	assert_int_equal(ibv_close_device(ctx), 0);
}

struct comp_channel_cmd {
	struct ib_uverbs_cmd_hdr hdr;
	struct ib_uverbs_create_comp_channel cmd;
};

/* What the command file answers to commands libibverbs would not send. */
static void test_bad_commands(void **state)
{
	struct ib_uverbs_create_comp_channel_resp resp;
	struct comp_channel_cmd c = {
		.hdr = {
			.command = IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL,
			.in_words = sizeof(c) / 4,
			.out_words = sizeof(resp) / 4,
		},
	};
	struct ibv_context *ctx;
	void *gone;

	(void)state;
	ctx = open_hfi1("hfi1_0");

	/*
	 * A response address that cannot be written: EFAULT, no crash. It
	 * stays reserved (PROT_NONE) so that no other mapping lands there.
	 */
	gone = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_ptr_not_equal(gone, MAP_FAILED);
	c.cmd.response = (uintptr_t)gone;
	assert_int_equal(write(ctx->cmd_fd, &c, sizeof(c)), -1);
	assert_int_equal(errno, EFAULT);
	munmap(gone, 4096);

	/* A length that is not the header's. */
	c.cmd.response = (uintptr_t)&resp;
	assert_int_equal(write(ctx->cmd_fd, &c, sizeof(c) - 4), -1);
	assert_int_equal(errno, EINVAL);

	/* A command the soft HFI does not serve, as the kernel answers it. */
	c.hdr.command = IB_USER_VERBS_CMD_QUERY_DEVICE;
	assert_int_equal(write(ctx->cmd_fd, &c, sizeof(c)), -1);
	assert_int_equal(errno, EOPNOTSUPP);

	/* The right one answers. */
	c.hdr.command = IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL;
	resp.fd = (uint32_t)-1;
	assert_int_equal(write(ctx->cmd_fd, &c, sizeof(c)), sizeof(c));
	assert_true(fcntl(resp.fd, F_GETFD) >= 0);
	close(resp.fd);

	/* No ioctl, so libibverbs uses write() and sysfs. */
	assert_int_equal(ioctl(ctx->cmd_fd, _IO(0x1b, 1), 0), -1);
	assert_int_equal(errno, ENOTTY);
	assert_int_equal(ibv_close_device(ctx), 0);
}

/* As user nobody, unable to gain privileges: no FUSE mount at all. */
static int drop_to_nobody(void)
{
	struct passwd *pw = getpwnam("nobody");

	if (!pw || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    setgroups(0, NULL) || setgid(pw->pw_gid) || setuid(pw->pw_uid)) {
		perror("drop_to_nobody");
		return -1;
	}
	return 0;
}

/*
 * Without a usable FUSE: the channel fails cleanly, one log line says why,
 * and the rest works.
 */
static int run_nofuse(void)
{
	char log[] = "/tmp/test_hfi1_comp_channel.XXXXXX", text[4096];
	struct ibv_context *ctx;
	struct ibv_pd *pd;
	struct ibv_mr *mr;
	static char buf[4096] __attribute__((aligned(4096)));
	ssize_t len;
	int fd, ok;

	if (drop_to_nobody())
		return 1;
	fd = mkstemp(log);
	if (fd < 0)
		return 1;
	/* Before libibverbs reads them. */
	setenv("VERBS_LOG_FILE", log, 1);
	setenv("VERBS_LOG_LEVEL", "2", 1);

	ctx = try_open_hfi1("hfi1_0");
	if (!ctx) {
		fprintf(stderr, "nobody cannot open hfi1_0: %s\n",
			strerror(errno));
		return 1;
	}
	ok = !ibv_create_comp_channel(ctx) && errno == EBADF;
	if (!ok)
		fprintf(stderr,
			"the completion channel did not fail cleanly\n");
	pd = ibv_alloc_pd(ctx);
	mr = pd ? ibv_reg_mr(pd, buf, sizeof(buf), IBV_ACCESS_LOCAL_WRITE) :
		  NULL;
	if (!mr) {
		fprintf(stderr, "no MR without the command channel: %s\n",
			strerror(errno));
		ok = 0;
	}
	if (mr)
		ibv_dereg_mr(mr);
	if (pd)
		ibv_dealloc_pd(pd);
	ibv_close_device(ctx);

	/* libibverbs writes its log through stdio. */
	fflush(NULL);
	len = pread(fd, text, sizeof(text) - 1, 0);
	text[len > 0 ? len : 0] = 0;
	close(fd);
	unlink(log);
	if (!strstr(text, "no uverbs command channel")) {
		fprintf(stderr, "no log line says why; the log:\n%s\n", text);
		ok = 0;
	}
	return ok ? 0 : 1;
}

/* test_hfi1_comp_channel [nofuse] */
int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_channels),
		cmocka_unit_test(test_open_close),
		cmocka_unit_test(test_fork),
		cmocka_unit_test(test_bad_commands),
	};

	if (argc > 1 && !strcmp(argv[1], "nofuse"))
		return run_nofuse();
	/* libibverbs keeps what it opens at first use (its log file). */
	ibv_free_device_list(ibv_get_device_list(NULL));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
