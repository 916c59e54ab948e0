// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: the uverbs command channel, the soft HFI's stand-in for the
 * uverbs character device (the kernel's drivers/infiniband/core/
 * uverbs_main.c).
 *
 * Generic libibverbs code writes uverbs commands to context->cmd_fd and
 * reads the answer at the `response` address inside the command, trusting
 * it: ibv_create_comp_channel() writes CREATE_COMP_CHANNEL and uses the fd
 * it finds there. With no kernel to answer, the soft HFI serves a file on
 * a FUSE mount from a thread of this process, and that file becomes the
 * context's cmd_fd:
 * - FUSE writes are synchronous (the file is opened direct_io): write()
 *   returns only after the server thread has parsed the command, stored
 *   the response at `response` in this same address space, and replied.
 * - ioctl() is ENOTTY, so libibverbs writes its commands and reads GIDs
 *   and P_Keys from the device tree, as with any write-only uverbs device.
 * - Only control commands come this way, never the data path.
 *
 * The mount: with CAP_SYS_ADMIN, fsopen("fuse") and fsmount() make a
 * detached mount that is never visible anywhere; otherwise libfuse mounts
 * on a private directory through the setuid fusermount3, the file is
 * opened, and the mount is lazily unmounted at once. Where neither works
 * (no_new_privs, a container without /dev/fuse) softhfi_uverbs_open()
 * fails and says why.
 *
 * Traps, and what avoids them: the kernel's FLUSH on close() would wait
 * for a server that may be gone, so the open reply sets noflush and there
 * is no flush handler; a forked child's command would be answered into
 * the parent's memory, so a caller that is not a thread of this process
 * gets EIO, and a child closes its copy of /dev/fuse (atfork); the server
 * thread takes no signal; every fd is close-on-exec.
 */
#define FUSE_USE_VERSION 34
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fuse_lowlevel.h>
#include <rdma/ib_user_verbs.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "softhfi.h"

/* Log levels, VERBS_LOG_*'s values. */
#define UV_LOG_ERR 1
#define UV_LOG_WARN 2

#define UVERBS_FILE "uverbs"
#define UVERBS_FILE_INO 2
/* Completion channels whose write ends a context keeps at once. */
#define UVERBS_MAX_CHANNELS 256

struct uverbs_channel {
	int wr_fd;
	dev_t rd_dev; /* the read end's st_dev and st_ino */
	ino_t rd_ino;
};

struct softhfi_uverbs {
	struct fuse_session *se;
	pthread_t thread;
	bool thread_running;
	int stop_fd; /* eventfd: tells the server thread to return */
	int mnt_fd; /* the detached mount (CAP_SYS_ADMIN), or -1 */
	char *mnt_dir; /* the private mount point (fusermount3), or NULL */
	int cmd_fd; /* the open file: the context's cmd_fd */
	uid_t uid;
	gid_t gid;
	pid_t pid; /* the opener, whose thread serves: see softhfi_uverbs_close() */

	/*
	 * The completion channels handed out, for the CQs to come: each
	 * write end, and the identity of its read end, the application's fd
	 * (softhfi_uverbs_channel()). The provider is not told when the
	 * application destroys a channel: a write end whose reader is gone
	 * is closed at the next CREATE_COMP_CHANNEL, lookup and close. The
	 * server thread adds, a verb's thread looks up: under chan_lock.
	 */
	pthread_mutex_t chan_lock;
	struct uverbs_channel channels[UVERBS_MAX_CHANNELS];
	unsigned int nchannels;

	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
};

/* /dev/fuse fds of this process's channels, for the atfork child handler. */
static pthread_mutex_t devfds_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static int devfds[64];
static unsigned int ndevfds;

/*
 * A forked child must not keep the parent's FUSE connection: it would
 * hold it open after the parent's server is gone. Its cmd_fd stays, and
 * its commands reach the parent's server, which answers EIO.
 */
static void atfork_child(void)
{
	unsigned int i;

	for (i = 0; i < ndevfds; i++)
		close(devfds[i]);
	ndevfds = 0;
	pthread_mutex_init(&devfds_lock, NULL);
}

static void register_atfork(void)
{
	pthread_atfork(NULL, NULL, atfork_child);
}

static void devfd_add(int fd)
{
	pthread_once(&atfork_once, register_atfork);
	pthread_mutex_lock(&devfds_lock);
	if (ndevfds < sizeof(devfds) / sizeof(devfds[0]))
		devfds[ndevfds++] = fd;
	pthread_mutex_unlock(&devfds_lock);
}

static void devfd_del(int fd)
{
	unsigned int i;

	pthread_mutex_lock(&devfds_lock);
	for (i = 0; i < ndevfds; i++) {
		if (devfds[i] == fd) {
			devfds[i] = devfds[--ndevfds];
			break;
		}
	}
	pthread_mutex_unlock(&devfds_lock);
}

static void uv_log(struct softhfi_uverbs *u, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void uv_log(struct softhfi_uverbs *u, int level, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (!u->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	u->log(u->log_arg, level, msg);
}

/* --- the file system: a root directory with one file --- */

static void fill_attr(struct softhfi_uverbs *u, fuse_ino_t ino, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = ino;
	st->st_uid = u->uid;
	st->st_gid = u->gid;
	st->st_nlink = 1;
	st->st_mode = ino == FUSE_ROOT_ID ? S_IFDIR | 0500 : S_IFREG | 0600;
}

static void uv_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct softhfi_uverbs *u = fuse_req_userdata(req);
	struct fuse_entry_param e = {
		.ino = UVERBS_FILE_INO,
		.attr_timeout = 3600,
		.entry_timeout = 3600,
	};

	if (parent != FUSE_ROOT_ID || strcmp(name, UVERBS_FILE)) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(u, UVERBS_FILE_INO, &e.attr);
	fuse_reply_entry(req, &e);
}

static void uv_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct softhfi_uverbs *u = fuse_req_userdata(req);
	struct stat st;

	if (ino != FUSE_ROOT_ID && ino != UVERBS_FILE_INO) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(u, ino, &st);
	fuse_reply_attr(req, &st, 3600);
}

static void uv_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != UVERBS_FILE_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	/* Every write reaches us, as it is; close() sends no FLUSH. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	fi->noflush = 1;
	fuse_reply_open(req, fi);
}

static void uv_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	fuse_reply_err(req, 0);
}

/* As a uverbs device without ioctl support: libibverbs then writes. */
static void uv_ioctl(fuse_req_t req, fuse_ino_t ino, int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned int flags,
		     const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	fuse_reply_err(req, ENOTTY);
}

/* Whether @tid is a thread of this process (the server's). */
static bool caller_is_ours(pid_t tid)
{
	char path[32];

	snprintf(path, sizeof(path), "/proc/self/task/%d", (int)tid);
	return tid > 0 && !access(path, F_OK);
}

/*
 * The kernel's copy_to_user(): a bad address is EFAULT, never a crash of
 * the server thread.
 */
static int copy_to_caller(uint64_t dst, const void *src, size_t len)
{
	struct iovec local = { .iov_base = (void *)src, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)dst,
				.iov_len = len };
	ssize_t n;

	n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	return n < 0 && errno != EFAULT ? errno : EFAULT;
}

/*
 * Close the write ends whose read end the application has closed: the
 * peer of a stream socket is gone when it polls POLLHUP. Needs chan_lock.
 */
static void sweep_channels_locked(struct softhfi_uverbs *u)
{
	struct pollfd pfd = { .events = 0 };
	unsigned int i = 0;

	while (i < u->nchannels) {
		pfd.fd = u->channels[i].wr_fd;
		if (poll(&pfd, 1, 0) == 1 &&
		    (pfd.revents & (POLLHUP | POLLERR))) {
			close(u->channels[i].wr_fd);
			u->channels[i] = u->channels[--u->nchannels];
			continue;
		}
		i++;
	}
}

/*
 * CREATE_COMP_CHANNEL: a stream socket pair whose first end is the
 * channel's fd. Not a pipe: an event sent to a channel whose reader is
 * gone fails with EPIPE (MSG_NOSIGNAL) where a pipe's write would raise
 * SIGPIPE in the application.
 */
static int create_comp_channel(struct softhfi_uverbs *u, const void *buf,
			       size_t size)
{
	struct ib_uverbs_create_comp_channel cmd;
	struct ib_uverbs_create_comp_channel_resp resp = {};
	const struct ib_uverbs_cmd_hdr *hdr = buf;
	struct uverbs_channel *ch;
	struct stat st;
	int fds[2];
	int ret;

	if (size < sizeof(*hdr) + sizeof(cmd) ||
	    hdr->out_words * 4 < sizeof(resp))
		return EINVAL;
	memcpy(&cmd, (const char *)buf + sizeof(*hdr), sizeof(cmd));

	pthread_mutex_lock(&u->chan_lock);
	sweep_channels_locked(u);
	if (u->nchannels == UVERBS_MAX_CHANNELS) {
		pthread_mutex_unlock(&u->chan_lock);
		uv_log(u, UV_LOG_ERR, "out of completion channels (%u open)\n",
		       UVERBS_MAX_CHANNELS);
		return EMFILE;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)) {
		ret = errno;
		goto out;
	}
	if (fstat(fds[0], &st)) {
		ret = errno;
		goto err_close;
	}
	resp.fd = fds[0];
	ret = copy_to_caller(cmd.response, &resp, sizeof(resp));
	if (ret)
		goto err_close;
	ch = &u->channels[u->nchannels++];
	ch->wr_fd = fds[1];
	ch->rd_dev = st.st_dev;
	ch->rd_ino = st.st_ino;
	goto out;

err_close:
	close(fds[0]);
	close(fds[1]);
out:
	pthread_mutex_unlock(&u->chan_lock);
	return ret;
}

int softhfi_uverbs_channel(struct softhfi_uverbs *u, int channel_fd)
{
	bool found = false;
	struct stat st;
	unsigned int i;
	int fd = -1;

	if (channel_fd < 0 || fstat(channel_fd, &st) || !S_ISSOCK(st.st_mode)) {
		errno = EINVAL;
		return -1;
	}
	pthread_mutex_lock(&u->chan_lock);
	/*
	 * First: a channel whose read end is closed goes, so that a socket
	 * that took its inode number after it cannot pass for it.
	 */
	sweep_channels_locked(u);
	for (i = 0; i < u->nchannels; i++) {
		if (u->channels[i].rd_dev == st.st_dev &&
		    u->channels[i].rd_ino == st.st_ino) {
			found = true;
			fd = fcntl(u->channels[i].wr_fd, F_DUPFD_CLOEXEC, 0);
			break;
		}
	}
	pthread_mutex_unlock(&u->chan_lock);
	if (!found)
		errno = EINVAL;
	return fd;
}

static void uv_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct softhfi_uverbs *u = fuse_req_userdata(req);
	const struct ib_uverbs_cmd_hdr *hdr = (const void *)buf;
	int ret;

	/* A forked child's command: its response address is not ours. */
	if (!caller_is_ours(fuse_req_ctx(req)->pid)) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (size < sizeof(*hdr) || hdr->in_words * 4 != size) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	switch (hdr->command) {
	case IB_USER_VERBS_CMD_CREATE_COMP_CHANNEL:
		ret = create_comp_channel(u, buf, size);
		break;
	default:
		/* The kernel's answer to a command it does not serve. */
		ret = EOPNOTSUPP;
		break;
	}
	if (ret)
		fuse_reply_err(req, ret);
	else
		fuse_reply_write(req, size);
}

static const struct fuse_lowlevel_ops uverbs_ops = {
	.lookup = uv_lookup,
	.getattr = uv_getattr,
	.open = uv_open,
	.release = uv_release,
	.write = uv_write,
	.ioctl = uv_ioctl,
};

/* --- the server thread --- */

static void *uverbs_thread(void *arg)
{
	struct softhfi_uverbs *u = arg;
	struct fuse_buf fbuf = {};
	struct pollfd pfd[2] = {
		{ .fd = fuse_session_fd(u->se), .events = POLLIN },
		{ .fd = u->stop_fd, .events = POLLIN },
	};
	int ret;

	for (;;) {
		if (poll(pfd, 2, -1) < 0)
			continue;
		if (pfd[1].revents)
			break;
		ret = fuse_session_receive_buf(u->se, &fbuf);
		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret <= 0)
			break; /* the connection is gone */
		fuse_session_process_buf(u->se, &fbuf);
	}
	free(fbuf.mem);
	return NULL;
}

static int start_thread(struct softhfi_uverbs *u)
{
	sigset_t all, old;
	int ret;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ret = pthread_create(&u->thread, NULL, uverbs_thread, u);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ret)
		u->thread_running = true;
	return ret;
}

/* --- mounting --- */

/*
 * A detached FUSE mount, visible nowhere (needs CAP_SYS_ADMIN); the
 * session adopts the /dev/fuse fd. 0 or an errno.
 */
static int mount_detached(struct softhfi_uverbs *u, const char **why)
{
	char opt[32], devpath[32];
	int dev_fd, fs_fd, ret;

	fs_fd = fsopen("fuse", FSOPEN_CLOEXEC);
	if (fs_fd < 0) {
		*why = "fsopen(\"fuse\")";
		return errno;
	}
	dev_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (dev_fd < 0) {
		ret = errno;
		*why = "open(/dev/fuse)";
		close(fs_fd);
		return ret;
	}
	snprintf(devpath, sizeof(devpath), "/dev/fd/%d", dev_fd);
	/* libfuse takes a /dev/fd/N mount point as an fd to adopt. */
	if (fuse_session_mount(u->se, devpath)) {
		*why = "fuse_session_mount(/dev/fd/N)";
		close(dev_fd);
		close(fs_fd);
		return EIO;
	}
	snprintf(opt, sizeof(opt), "%d", dev_fd);
	ret = fsconfig(fs_fd, FSCONFIG_SET_STRING, "fd", opt, 0);
	if (!ret)
		ret = fsconfig(fs_fd, FSCONFIG_SET_STRING, "rootmode", "40000",
			       0);
	snprintf(opt, sizeof(opt), "%u", (unsigned int)u->uid);
	if (!ret)
		ret = fsconfig(fs_fd, FSCONFIG_SET_STRING, "user_id", opt, 0);
	snprintf(opt, sizeof(opt), "%u", (unsigned int)u->gid);
	if (!ret)
		ret = fsconfig(fs_fd, FSCONFIG_SET_STRING, "group_id", opt, 0);
	if (!ret)
		ret = fsconfig(fs_fd, FSCONFIG_CMD_CREATE, NULL, NULL, 0);
	if (!ret) {
		u->mnt_fd = fsmount(fs_fd, FSMOUNT_CLOEXEC, 0);
		ret = u->mnt_fd < 0 ? -1 : 0;
	}
	if (ret) {
		ret = errno;
		*why = "fsconfig/fsmount";
	}
	close(fs_fd);
	return ret;
}

/* Lazily unmount the private mount point, as its owner may. */
static void unmount_dir(struct softhfi_uverbs *u)
{
	char *argv[] = { "fusermount3", "-u", "-z", "-q", u->mnt_dir, NULL };
	pid_t pid;
	int status;

	if (umount2(u->mnt_dir, MNT_DETACH) &&
	    !posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ))
		waitpid(pid, &status, 0);
	rmdir(u->mnt_dir);
	free(u->mnt_dir);
	u->mnt_dir = NULL;
}

/* A mount on a private directory through fusermount3. 0 or an errno. */
static int mount_private_dir(struct softhfi_uverbs *u, const char **why)
{
	const char *base = getenv("XDG_RUNTIME_DIR");
	char path[256];

	if (!base || access(base, W_OK))
		base = "/tmp";
	snprintf(path, sizeof(path), "%s/libhfi1-uverbs.XXXXXX", base);
	if (!mkdtemp(path)) {
		*why = "mkdtemp";
		return errno;
	}
	u->mnt_dir = strdup(path);
	if (!u->mnt_dir) {
		rmdir(path);
		return ENOMEM;
	}
	if (fuse_session_mount(u->se, u->mnt_dir)) {
		*why = "fusermount3 (package fuse3; not under no_new_privs)";
		rmdir(u->mnt_dir);
		free(u->mnt_dir);
		u->mnt_dir = NULL;
		return EPERM;
	}
	return 0;
}

static int open_file(struct softhfi_uverbs *u)
{
	char path[300];

	if (u->mnt_fd >= 0)
		return openat(u->mnt_fd, UVERBS_FILE, O_RDWR | O_CLOEXEC);
	snprintf(path, sizeof(path), "%s/" UVERBS_FILE, u->mnt_dir);
	return open(path, O_RDWR | O_CLOEXEC);
}

struct softhfi_uverbs *softhfi_uverbs_open(void (*log)(void *arg, int level,
						       const char *msg),
					   void *arg)
{
	char *argv[] = { "libhfi1", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	const char *why = NULL, *why_detached = NULL;
	struct softhfi_uverbs *u;
	int ret, ret_detached;

	u = calloc(1, sizeof(*u));
	if (!u) {
		errno = ENOMEM;
		return NULL;
	}
	u->log = log;
	u->log_arg = arg;
	u->mnt_fd = -1;
	u->cmd_fd = -1;
	u->uid = geteuid();
	u->gid = getegid();
	u->pid = getpid();
	pthread_mutex_init(&u->chan_lock, NULL);
	u->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (u->stop_fd < 0) {
		ret = errno;
		goto err_free;
	}
	u->se = fuse_session_new(&args, &uverbs_ops, sizeof(uverbs_ops), u);
	/* It may have copied the arguments to add its own. */
	fuse_opt_free_args(&args);
	if (!u->se) {
		ret = ENOMEM;
		why = "fuse_session_new";
		goto err_stop;
	}

	ret_detached = mount_detached(u, &why_detached);
	if (ret_detached) {
		/* Without CAP_SYS_ADMIN, or no fsopen: fusermount3's way. */
		if (fuse_session_fd(u->se) >= 0) {
			/* It adopted /dev/fuse before it failed: start anew. */
			fuse_session_destroy(u->se);
			args = (struct fuse_args)FUSE_ARGS_INIT(1, argv);
			u->se = fuse_session_new(&args, &uverbs_ops,
						 sizeof(uverbs_ops), u);
			fuse_opt_free_args(&args);
			if (!u->se) {
				ret = ENOMEM;
				why = "fuse_session_new";
				goto err_stop;
			}
		}
		ret = mount_private_dir(u, &why);
		if (ret)
			goto err_session;
	}
	devfd_add(fuse_session_fd(u->se));

	ret = start_thread(u);
	if (ret) {
		why = "pthread_create";
		goto err_unmount;
	}
	u->cmd_fd = open_file(u);
	if (u->cmd_fd < 0) {
		ret = errno;
		why = "open of the command file";
		goto err_unmount;
	}
	if (u->mnt_dir)
		unmount_dir(u);
	return u;

err_unmount:
	uv_log(u, UV_LOG_WARN,
	       "no uverbs command channel (completion channels fail): %s: %s\n",
	       why, strerror(ret));
	softhfi_uverbs_close(u);
	errno = ret;
	return NULL;
err_session:
	uv_log(u, UV_LOG_WARN,
	       "no uverbs command channel (completion channels fail): %s: %s; %s: %s\n",
	       why_detached, strerror(ret_detached), why, strerror(ret));
	fuse_session_destroy(u->se);
err_stop:
	close(u->stop_fd);
err_free:
	free(u);
	errno = ret;
	return NULL;
}

int softhfi_uverbs_fd(const struct softhfi_uverbs *u)
{
	return u->cmd_fd;
}

void softhfi_uverbs_close(struct softhfi_uverbs *u)
{
	uint64_t one = 1;
	unsigned int i;

	if (!u)
		return;
	/*
	 * A forked child's copy: the server thread, the connection and the
	 * mount are the parent's, and stop_fd is the eventfd the parent's
	 * thread polls, so that writing it would stop the parent's server.
	 * The child closes its copies of the fds it may close (its /dev/fuse
	 * fd went at fork, see atfork_child(), so the session, which would
	 * close that number again, is left) and frees the rest.
	 */
	if (getpid() != u->pid) {
		if (u->mnt_fd >= 0)
			close(u->mnt_fd);
		for (i = 0; i < u->nchannels; i++)
			close(u->channels[i].wr_fd);
		close(u->stop_fd);
		free(u->mnt_dir);
		free(u);
		return;
	}
	if (u->thread_running) {
		if (write(u->stop_fd, &one, sizeof(one)) != sizeof(one))
			uv_log(u, UV_LOG_ERR,
			       "cannot stop the uverbs server thread\n");
		pthread_join(u->thread, NULL);
	}
	/* Aborts the connection: a cmd_fd still open then fails (ENOTCONN). */
	devfd_del(fuse_session_fd(u->se));
	if (u->mnt_dir)
		unmount_dir(u);
	fuse_session_destroy(u->se);
	if (u->mnt_fd >= 0)
		close(u->mnt_fd);
	for (i = 0; i < u->nchannels; i++)
		close(u->channels[i].wr_fd);
	pthread_mutex_destroy(&u->chan_lock);
	close(u->stop_fd);
	free(u);
}
