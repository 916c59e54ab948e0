// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: the wire. A link is an AF_UNIX stream between two engines: one
 * per connected QP pair (RC, UC), and one per pair of contexts for UD
 * sends, with a doorbell in shared memory and, for a QP pair, a lane (a
 * pipe each way, for small payloads). Each context listens on an abstract
 * socket, its endpoint, and the fabric directory maps (LID, QPN) to
 * endpoints: <fabric>/<lid>/<qpn> is a symbolic link whose target is the
 * endpoint's name. Creating that link is how a QPN is taken, so QPNs are
 * unique per soft device across the processes that use it. Abstract
 * sockets vanish with their process, so an entry whose endpoint refuses
 * connections is stale and is taken over.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "sverbs.h"

/* Bytes each link's socket may hold in flight: see "The wire" in
 * Documentation/soft-hfi-verbs.md. Capped by net.core.wmem_max unless the
 * process may force it. */
#define SWIRE_SNDBUF (4 << 20)
#define SWIRE_QPN_FIRST 16
/* An entry's path: the LID's directory, a slash and a QPN. */
#define SWIRE_PATH_MAX (sizeof(((struct swire *)0)->lid_dir) + 16)

static atomic_uint swire_seq;

static int endpoint_addr(const char *name, struct sockaddr_un *sa,
			 socklen_t *len)
{
	size_t n = strlen(name);

	if (n + 1 > sizeof(sa->sun_path))
		return ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	/* Abstract: a leading NUL, no file. */
	memcpy(sa->sun_path + 1, name, n);
	*len = offsetof(struct sockaddr_un, sun_path) + 1 + n;
	return 0;
}

int swire_open(struct swire *w, const char *fabric_dir, uint16_t lid)
{
	struct sockaddr_un sa;
	struct stat st;
	socklen_t len;
	int ret;

	w->listen_fd = -1;
	if (stat(fabric_dir, &st))
		return errno;
	if (snprintf(w->lid_dir, sizeof(w->lid_dir), "%s/%u", fabric_dir,
		     lid) >= (int)sizeof(w->lid_dir))
		return ENAMETOOLONG;
	/*
	 * Every user of the device takes QPNs here, as in /tmp: hfi1-soft
	 * up made it, root's (or ours) and sticky where others may write,
	 * so that nobody can remove another's entries.
	 */
	if (lstat(w->lid_dir, &st))
		return errno;
	if (!S_ISDIR(st.st_mode) || (st.st_uid && st.st_uid != geteuid()) ||
	    ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)))
		return EACCES;
	if (stat(fabric_dir, &st))
		return errno;
	snprintf(w->name, sizeof(w->name), "hfi1-soft:%llx:%llx:%d:%u",
		 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
		 (int)getpid(), atomic_fetch_add(&swire_seq, 1));
	ret = endpoint_addr(w->name, &sa, &len);
	if (ret)
		return ret;
	w->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->listen_fd < 0)
		return errno;
	if (bind(w->listen_fd, (struct sockaddr *)&sa, len) ||
	    listen(w->listen_fd, 128)) {
		ret = errno;
		close(w->listen_fd);
		w->listen_fd = -1;
		return ret;
	}
	w->lid = lid;
	w->next_qpn = SWIRE_QPN_FIRST + (getpid() % 64) * 1024;
	return 0;
}

void swire_close(struct swire *w)
{
	if (w->listen_fd >= 0)
		close(w->listen_fd);
	w->listen_fd = -1;
}

static void entry_path(const struct swire *w, uint32_t qpn, char *path,
		       size_t len)
{
	snprintf(path, len, "%s/%u", w->lid_dir, qpn);
}

/* A connected stream to the endpoint called @name, or -1 with errno. */
static int connect_endpoint(const char *name)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, ret;

	ret = endpoint_addr(name, &sa, &len);
	if (ret) {
		errno = ret;
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, len)) {
		ret = errno;
		close(fd);
		errno = ret;
		return -1;
	}
	return fd;
}

/* The endpoint that serves (this LID, @qpn): 0, ENOENT or an errno. */
static int read_entry(const char *lid_dir, uint32_t qpn, char *name, size_t len)
{
	char path[SWIRE_PATH_MAX];
	ssize_t n;

	if (snprintf(path, sizeof(path), "%s/%u", lid_dir, qpn) >=
	    (int)sizeof(path))
		return ENAMETOOLONG;
	n = readlink(path, name, len - 1);
	if (n < 0)
		return errno;
	name[n] = '\0';
	return 0;
}

/* An entry whose endpoint is gone: its process died without cleaning. */
static bool entry_stale(const struct swire *w, uint32_t qpn)
{
	char name[SWIRE_NAME_MAX];
	int fd;

	if (read_entry(w->lid_dir, qpn, name, sizeof(name)))
		return false;
	if (!strcmp(name, w->name))
		return false;
	fd = connect_endpoint(name);
	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == ECONNREFUSED;
}

int swire_qpn_alloc(struct swire *w, uint32_t *qpn)
{
	char path[SWIRE_PATH_MAX];
	unsigned int tries;

	for (tries = 0; tries < 1 << 16; tries++) {
		uint32_t n = w->next_qpn++;

		if (n > SWIRE_QPN_MAX) {
			w->next_qpn = SWIRE_QPN_FIRST;
			continue;
		}
		entry_path(w, n, path, sizeof(path));
		if (!symlink(w->name, path)) {
			*qpn = n;
			return 0;
		}
		if (errno != EEXIST)
			return errno;
		if (entry_stale(w, n) && !unlink(path) &&
		    !symlink(w->name, path)) {
			*qpn = n;
			return 0;
		}
	}
	return ENOSPC;
}

void swire_qpn_free(struct swire *w, uint32_t qpn)
{
	char path[SWIRE_PATH_MAX], name[SWIRE_NAME_MAX];

	/* Only our own entry: a stale one may have been taken over. */
	if (read_entry(w->lid_dir, qpn, name, sizeof(name)) ||
	    strcmp(name, w->name))
		return;
	entry_path(w, qpn, path, sizeof(path));
	unlink(path);
}

static void size_link(int fd)
{
	int sz = SWIRE_SNDBUF;

	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
}

int swire_link_sndbuf(int fd)
{
	int sz = 0;
	socklen_t len = sizeof(sz);

	if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, &len))
		return 0;
	return sz;
}

int swire_lookup(struct swire *w, uint16_t dlid, uint32_t dqpn, char *name,
		 size_t len)
{
	char lid_dir[SWIRE_PATH_MAX];
	const char *slash = strrchr(w->lid_dir, '/');

	if (!slash)
		return EINVAL;
	snprintf(lid_dir, sizeof(lid_dir), "%.*s/%u", (int)(slash - w->lid_dir),
		 w->lid_dir, dlid);
	return read_entry(lid_dir, dqpn, name, len);
}

#define SWIRE_BELL_SIZE 16384
_Static_assert(sizeof(struct swire_bell) <= SWIRE_BELL_SIZE,
	       "the doorbell outgrew its memfd");
_Static_assert(offsetof(struct swire_bell, side[0].chan_given) == 64 &&
		       offsetof(struct swire_bell, side[0].ring) == 128,
	       "the doorbell's event line is a cache line of its own");
#define SWIRE_BELL_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static struct swire_bell *bell_map(int fd)
{
	void *p = mmap(NULL, SWIRE_BELL_SIZE, PROT_READ | PROT_WRITE,
		       MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void swire_bell_unmap(struct swire_bell *bell)
{
	if (bell)
		munmap(bell, SWIRE_BELL_SIZE);
}

/* A new doorbell page, zeroed: its fd (sealed) and its mapping. */
static int bell_new(int *fdp, struct swire_bell **bellp)
{
	int fd, ret;

	fd = memfd_create("hfi1-soft-bell", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return errno;
	if (ftruncate(fd, SWIRE_BELL_SIZE) ||
	    fcntl(fd, F_ADD_SEALS, SWIRE_BELL_SEALS)) {
		ret = errno;
		close(fd);
		return ret;
	}
	*bellp = bell_map(fd);
	if (!*bellp) {
		ret = errno;
		close(fd);
		return ret;
	}
	*fdp = fd;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void swire_conn_close(struct swire_conn *c)
{
	close_fd(&c->fd);
	close_fd(&c->lane_in);
	close_fd(&c->lane_out);
	close_fd(&c->lane_guard);
	swire_bell_unmap(c->bell);
	c->bell = NULL;
}

/* What the hello carries: the doorbell, then a lane's three pipe ends. */
#define SWIRE_HELLO_FDS 4

/*
 * The side that connects makes both pipes of a lane. It keeps the write
 * end of one and both read ends, and passes the peer the read end of the
 * one it writes, and both ends of the other: @fds[1..3]. False: no lane.
 */
static bool lane_new(struct swire_conn *c, int *fds)
{
	int out[2], in[2];

	if (pipe2(out, O_CLOEXEC | O_NONBLOCK))
		return false;
	if (pipe2(in, O_CLOEXEC | O_NONBLOCK)) {
		close(out[0]);
		close(out[1]);
		return false;
	}
	c->lane_out = out[1];
	c->lane_guard = dup(out[0]);
	c->lane_in = in[0];
	fds[1] = out[0]; /* the peer's lane_in */
	fds[2] = in[1]; /* its lane_out */
	fds[3] = dup(in[0]); /* its lane_guard */
	if (c->lane_guard >= 0 && fds[3] >= 0)
		return true;
	close_fd(&c->lane_out);
	close_fd(&c->lane_guard);
	close_fd(&c->lane_in);
	close_fd(&fds[1]);
	close_fd(&fds[2]);
	close_fd(&fds[3]);
	return false;
}

int swire_connect(struct swire *w, const char *endpoint,
		  const struct swire_hello *hello, bool lane,
		  struct swire_conn *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(SWIRE_HELLO_FDS * sizeof(int))];
	} ctl = {};
	struct iovec iov = { (void *)hello, sizeof(*hello) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	int fds[SWIRE_HELLO_FDS] = { -1, -1, -1, -1 }, nfds = 1, ret, i;
	struct cmsghdr *cm;

	*c = (struct swire_conn){
		.fd = -1, .lane_in = -1, .lane_out = -1, .lane_guard = -1
	};
	ret = bell_new(&fds[0], &c->bell);
	if (ret)
		return ret;
	if (lane && lane_new(c, fds))
		nfds = SWIRE_HELLO_FDS;
	c->fd = connect_endpoint(endpoint);
	if (c->fd < 0) {
		ret = errno;
		goto out;
	}
	size_link(c->fd);
	msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	if (sendmsg(c->fd, &msg, MSG_NOSIGNAL) != sizeof(*hello))
		ret = errno ? errno : EIO;
out:
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	if (ret)
		swire_conn_close(c);
	return ret;
}

/*
 * The doorbell a peer passed: a memfd of SWIRE_BELL_SIZE at least, sealed so that
 * it can never shrink under our mapping (a SIGBUS in the engine).
 */
static struct swire_bell *bell_accept(int fd)
{
	struct stat st;
	int seals;

	seals = fcntl(fd, F_GET_SEALS);
	if (seals >= 0 && (seals & F_SEAL_SHRINK) && !fstat(fd, &st) &&
	    S_ISREG(st.st_mode) && st.st_size >= SWIRE_BELL_SIZE)
		return bell_map(fd);
	return NULL;
}

/*
 * A pipe end of a lane the peer passed, open for @mode; its inode in
 * @ino. Made non-blocking whatever the peer did: the engine never waits
 * on a lane.
 */
static bool lane_accept(int fd, int mode, ino_t *ino)
{
	struct stat st;
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || (fl & O_ACCMODE) != mode || fstat(fd, &st) ||
	    !S_ISFIFO(st.st_mode) || fcntl(fd, F_SETFL, fl | O_NONBLOCK))
		return false;
	*ino = st.st_ino;
	return true;
}

/*
 * What the hello carried: the doorbell, and a lane's three pipe ends or
 * none, the guard a read end of the pipe we write. Whatever came is
 * closed unless it all is as it should be.
 */
static int hello_accept(struct msghdr *msg, struct swire_conn *c)
{
	struct cmsghdr *cm = CMSG_FIRSTHDR(msg);
	int fds[SWIRE_HELLO_FDS] = { -1, -1, -1, -1 }, nfds = 0, i;
	ino_t in, out, guard;
	bool ok;

	if (cm && cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
	    cm->cmsg_len >= CMSG_LEN(0))
		nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
	if (nfds > SWIRE_HELLO_FDS)
		nfds = 0; /* cannot be: the buffer holds no more */
	if (nfds)
		memcpy(fds, CMSG_DATA(cm), nfds * sizeof(int));
	ok = (nfds == 1 || nfds == SWIRE_HELLO_FDS) &&
	     !(msg->msg_flags & MSG_CTRUNC);
	if (ok && nfds == SWIRE_HELLO_FDS)
		ok = lane_accept(fds[1], O_RDONLY, &in) &&
		     lane_accept(fds[2], O_WRONLY, &out) &&
		     lane_accept(fds[3], O_RDONLY, &guard) && out == guard &&
		     in != out;
	if (ok)
		c->bell = bell_accept(fds[0]);
	close_fd(&fds[0]);
	if (!c->bell) {
		for (i = 1; i < SWIRE_HELLO_FDS; i++)
			close_fd(&fds[i]);
		return EPROTO;
	}
	c->lane_in = fds[1];
	c->lane_out = fds[2];
	c->lane_guard = fds[3];
	return 0;
}

int swire_accept(struct swire *w, struct swire_hello *hello,
		 struct swire_conn *c)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(SWIRE_HELLO_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = { hello, sizeof(*hello) };
	struct msghdr msg = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	struct timeval tv = { .tv_sec = 1 };
	ssize_t n;

	*c = (struct swire_conn){
		.fd = -1, .lane_in = -1, .lane_out = -1, .lane_guard = -1
	};
	c->fd = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	if (c->fd < 0)
		return errno;
	/* The hello follows the connect at once; never wait long on it. */
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recvmsg(c->fd, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
	if (n > 0 && hello_accept(&msg, c))
		n = 0;
	if (n != sizeof(*hello) || hello->magic != SWIRE_MAGIC) {
		swire_conn_close(c);
		return EPROTO;
	}
	tv.tv_sec = 0;
	setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_link(c->fd);
	return 0;
}
