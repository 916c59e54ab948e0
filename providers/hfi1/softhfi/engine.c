// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * softhfi: the engine, one thread per context that is the adapter. It
 * sends what the QPs have posted, receives what their links bring, places
 * it through the TIDs of the MRs it lands in, acks and completes, without
 * the application calling in. It sleeps in epoll on its links, its
 * listener and a kick eventfd that posters write only while it sleeps.
 *
 * Links are blocking AF_UNIX streams, and a packet is written only when
 * the link has room for all of it (slink_room()), so a write never waits
 * on the peer; a read may wait for the rest of a packet, which its writer
 * is finishing. No two engines can then wait on each other.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/sockios.h>
#include <sys/syscall.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "engine.h"

#define SENGINE_SCRATCH (64 * 1024)
/* Headroom for the socket's own accounting of a packet (skb overhead). */
#define SLINK_SLACK 16384

/* Event tags: the listener and the kick fd; links are their pointers. */
static char tag_listen, tag_kick;

uint64_t sengine_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

void sengine_kick(struct sengine *e)
{
	uint64_t one = 1;

	/* A full counter fails: the engine is awake anyway. */
	if (atomic_load(&e->sleeping))
		(void)!write(e->kick_fd, &one, sizeof(one));
}

struct softhfi_qp *sengine_find_qp(struct sengine *e, uint32_t qpn)
{
	struct softhfi_qp *qp;

	LIST_FOREACH(qp, &e->qps, entry)
	if (qp->qpn == qpn)
		return qp;
	return NULL;
}

static bool app_polling(struct sengine *e);

/*
 * The application takes @l's packets itself: it polls, or it waits on its
 * channel with the peer giving it its event. e->lock.
 */
static bool link_left_to_app(struct slink *l, bool polled)
{
	if (polled)
		return true;
	if (l->delegated && atomic_load(&l->bell->side[l->side].ev_armed))
		return true;
	/* Its event was given: it polls now, or the engine takes back. */
	l->delegated = false;
	return false;
}

/*
 * Links are watched one event at a time (EPOLLONESHOT). While the
 * application polls (and takes the packets itself, sengine_progress(),
 * told by the doorbell), the engine watches them for a hang-up only, so
 * that no packet wakes the engine thread to compete with the poller for
 * the CPUs. Re-arming reports what arrived meanwhile. e->lock.
 */
static int slink_read_exact(struct sengine *e, struct slink *l, void *buf,
			    size_t len);

/*
 * A link's lane is watched beside its stream, its epoll data the link's
 * address + 1 (a link is aligned: the stream's is the address itself).
 * Watch it for data, or not (@op: EPOLL_CTL_ADD or _MOD). e->lock.
 */
static int lane_watch(struct sengine *e, struct slink *l, int op, bool data)
{
	struct epoll_event ev = {
		.events = data ? EPOLLIN | EPOLLONESHOT : 0,
		.data.u64 = (uintptr_t)l | 1,
	};

	if (epoll_ctl(e->epfd, op, l->lane_in, &ev))
		return errno;
	l->lane_armed = data;
	return 0;
}

/* The link whose lane an epoll event is for, or NULL: not a lane's. */
static struct slink *lane_event_link(const struct epoll_event *ev)
{
	if (!(ev->data.u64 & 1))
		return NULL;
	return (struct slink *)(uintptr_t)(ev->data.u64 & ~(uint64_t)1);
}

static void link_arm(struct sengine *e, struct slink *l, bool data)
{
	struct epoll_event ev = {
		.events = EPOLLRDHUP | EPOLLONESHOT | (data ? EPOLLIN : 0) |
			  (l->want_out ? EPOLLOUT : 0),
		.data.ptr = l,
	};

	/* Skipped headers left on the stream would report it readable. */
	if (data && l->skip && slink_read_exact(e, l, NULL, 0))
		return;
	/* A packet on the lane has its payload there: it wakes us too. */
	if (l->lane_in >= 0 && data != l->lane_armed)
		lane_watch(e, l, EPOLL_CTL_MOD, data);
	if (l->armed && l->arm_events == ev.events)
		return;
	if (!epoll_ctl(e->epfd, EPOLL_CTL_MOD, l->fd, &ev)) {
		l->armed = true;
		l->arm_events = ev.events;
	}
}

bool slink_room(struct sengine *e, struct slink *l, uint64_t payload)
{
	uint64_t need = sizeof(struct spkt) + payload + SLINK_SLACK;
	int queued = 0;

	if (l->dead)
		return false;
	/*
	 * What the socket held at the last look, plus what went in since,
	 * bounds what it holds now: no system call while that fits.
	 */
	if (l->queued_bound + need <= l->sndbuf)
		return true;
	if (ioctl(l->fd, SIOCOUTQ, &queued))
		queued = 0;
	l->queued_bound = queued;
	if ((uint64_t)queued + need <= l->sndbuf)
		return true;
	if (!l->want_out) {
		l->want_out = true;
		link_arm(e, l, !link_left_to_app(l, app_polling(e)));
	}
	return false;
}

/*
 * A whole packet of @len bytes of payload is on the link: the peer's
 * poller may take it, and it is counted as sent.
 */
static void link_ring(struct slink *l, size_t len)
{
	_Atomic uint64_t *sent = &l->bell->side[l->side].sent;
	uint64_t n = atomic_load_explicit(sent, memory_order_relaxed);

	/*
	 * Only this side writes it, under e->lock: a store, as a locked
	 * increment stalls until it owns the line the polling peer spins on.
	 */
	atomic_store_explicit(sent, n + 1, memory_order_release);
	sctr_add(&l->ctr->xmit_packets, 1);
	sctr_add(&l->ctr->xmit_bytes, len);
}

/* A copy of the header of the packet we write next, for the peer. */
static void bell_put_header(struct slink *l, const struct spkt *h)
{
	uint64_t n = atomic_load_explicit(&l->bell->side[l->side].sent,
					  memory_order_relaxed);
	struct swire_bell_slot *s =
		&l->bell->side[l->side].ring[n % SWIRE_BELL_RING];

	atomic_store_explicit(&s->seq, 0, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	memcpy(s->hdr, h, sizeof(*h));
	atomic_store_explicit(&s->seq, n + 1, memory_order_release);
}

/*
 * The header of the next packet from the peer's doorbell, if the packet
 * is whole on the stream and its slot still holds it.
 */
static bool bell_take_header(struct slink *l, struct spkt *h)
{
	const struct swire_bell_slot *s =
		&l->bell->side[!l->side].ring[l->rcvd % SWIRE_BELL_RING];
	uint64_t want = l->rcvd + 1;

	if (atomic_load_explicit(&s->seq, memory_order_acquire) != want)
		return false;
	memcpy(h, s->hdr, sizeof(*h));
	atomic_thread_fence(memory_order_acquire);
	return atomic_load_explicit(&s->seq, memory_order_relaxed) == want;
}

bool slink_bell_ack(struct slink *l, uint32_t ssn)
{
	atomic_store_explicit(&l->bell->side[l->side].ack, 1ull << 32 | ssn,
			      memory_order_release);
	/* Pairs with bell_polling()'s: one of us sees the other. */
	atomic_thread_fence(memory_order_seq_cst);
	return atomic_load_explicit(&l->bell->side[!l->side].polling,
				    memory_order_relaxed);
}

void slink_take_bell_ack(struct sengine *e, struct slink *l)
{
	struct spkt h = { .op = SP_ACK, .flags = SPF_BELL };
	uint64_t v;

	if (l->kind != SWIRE_LINK_QP || !l->qp)
		return;
	/* Nothing in flight, nothing to answer: every empty poll asks. */
	if (l->qp->sq_done == l->qp->sq_next && !l->qp->sq_off)
		return;
	v = atomic_load_explicit(&l->bell->side[!l->side].ack,
				 memory_order_acquire);
	if (!v)
		return;
	h.ssn = (uint32_t)v;
	sqp_recv_packet_locked(e, l, &h);
}

void sengine_take_bell_acks(struct sengine *e, struct softhfi_qp *qp)
{
	struct slink *l;

	LIST_FOREACH(l, &e->links, entry)
	if (l->qp == qp && !l->dead)
		slink_take_bell_ack(e, l);
}

/*
 * Tell the peer whether our application polls, and so reads the ACKs it
 * leaves in the doorbell. When it stops, an ACK left there just before
 * the peer saw it stop is taken now. e->lock.
 */
static void bell_polling(struct sengine *e, struct slink *l, bool polling)
{
	_Atomic uint32_t *flag = &l->bell->side[l->side].polling;

	if (l->kind != SWIRE_LINK_QP)
		return;
	if (polling) {
		if (!atomic_load_explicit(flag, memory_order_relaxed))
			atomic_store(flag, 1);
		return;
	}
	if (!atomic_load_explicit(flag, memory_order_relaxed))
		return;
	atomic_store(flag, 0);
	atomic_thread_fence(memory_order_seq_cst);
	slink_take_bell_ack(e, l);
}

/*
 * Packets the peer has written whole that we have not taken. The engine
 * thread may take one that its writer is still counting, so the
 * difference can be negative for a moment.
 */
static bool link_pending(const struct slink *l)
{
	uint64_t sent = atomic_load_explicit(&l->bell->side[!l->side].sent,
					     memory_order_acquire);

	return (int64_t)(sent - l->rcvd) > 0;
}

/*
 * Completion events given by the peer. A blocking application sleeps on
 * its completion channel; a packet for it would wake its engine thread,
 * which then wakes the application: two wake-ups in series. Instead, the
 * application's side of the doorbell says when it waits (ev_armed), and
 * the writer of the packet writes the event into its channel itself, so
 * that the application wakes at once and takes the packet in its own
 * ibv_poll_cq(), as a polling one does, while its engine thread watches
 * the link for a hang-up only (sengine_delegate()).
 *
 * The channel's fd comes from the application's process with
 * pidfd_getfd(), which needs the rights to ptrace it: a peer that could
 * not write anything into it otherwise. Where the call is refused, the
 * peer never says it holds the channel, and nothing is delegated to it.
 */
static void take_peer_chan(struct slink *l)
{
	const typeof(l->bell->side[0]) *peer = &l->bell->side[!l->side];
	int pidfd;

	if (l->peer_chan_tried || l->kind != SWIRE_LINK_QP ||
	    !atomic_load_explicit(&peer->chan_given, memory_order_acquire))
		return;
	l->peer_chan_tried = true;
	pidfd = syscall(SYS_pidfd_open, peer->chan_pid, 0);
	if (pidfd < 0)
		return;
	l->peer_chan = syscall(SYS_pidfd_getfd, pidfd, peer->chan_fd, 0);
	close(pidfd);
	if (l->peer_chan >= 0)
		atomic_store(&l->bell->side[l->side].chan_taken, 1);
}

/* The peer's application waits for an event: take its arm, once. */
static bool take_peer_arm(struct slink *l)
{
	_Atomic uint32_t *armed = &l->bell->side[!l->side].ev_armed;

	return l->peer_chan >= 0 &&
	       atomic_load_explicit(armed, memory_order_relaxed) &&
	       atomic_exchange(armed, 0);
}

/*
 * The event, as the peer's engine would write it (comp_event_locked()).
 * One that cannot be written gives the arm back, for the peer's engine.
 */
static void give_event(struct slink *l)
{
	uint64_t handle = l->bell->side[!l->side].chan_cq_handle;

	if (send(l->peer_chan, &handle, sizeof(handle),
		 MSG_NOSIGNAL | MSG_DONTWAIT) != sizeof(handle))
		atomic_store(&l->bell->side[!l->side].ev_armed, 1);
}

void slink_give_bell_event(struct slink *l)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (take_peer_arm(l))
		give_event(l);
}

/*
 * The lane. A small payload goes into a pipe (one write(), whole or not
 * at all up to PIPE_BUF), its header into the doorbell alone: nothing on
 * the stream, whose sendmsg() costs more than a pipe's write() and whose
 * skipped headers cost the receiver a linked read. The receiver finds the
 * header in the doorbell, where a polling application looks, and its
 * engine thread is woken by the pipe, which it watches beside the stream.
 * Only while the header's ring slot cannot be reused before the peer
 * takes it, and while the pipe has room for it whole: never more unread
 * than half its pages, as a write() that does not fit the last page takes
 * a new one.
 */
#define SLINK_LANE_MAX 4096 /* PIPE_BUF: written whole or not at all */

static bool lane_room(struct slink *l, size_t len)
{
	int unread;

	if (l->lane_bound + len <= l->lane_max)
		return true;
	if (ioctl(l->lane_out, FIONREAD, &unread))
		return false;
	l->lane_bound = unread;
	return l->lane_bound + len <= l->lane_max;
}

/*
 * The next header's ring slot is free: the peer has taken the packet
 * that had it. Otherwise that packet's header may be there only, and
 * the next one goes on the stream alone.
 */
static bool bell_slot_free(struct slink *l)
{
	uint64_t sent = atomic_load_explicit(&l->bell->side[l->side].sent,
					     memory_order_relaxed);
	uint64_t taken = atomic_load_explicit(&l->bell->side[!l->side].taken,
					      memory_order_acquire);

	return sent - taken < SWIRE_BELL_RING;
}

static bool lane_fits(struct slink *l, size_t len)
{
	return l->lane_out >= 0 && len && len <= SLINK_LANE_MAX &&
	       lane_room(l, len);
}

/*
 * Put @len bytes from @iov on the lane: 0; EFAULT if the application's
 * memory faulted, with nothing written; EAGAIN if the pipe had no room
 * after all (nothing written either: the stream takes the packet).
 */
static int lane_put(struct slink *l, const struct iovec *iov, int iovcnt,
		    size_t len)
{
	ssize_t n;

	do
		n = writev(l->lane_out, iov, iovcnt);
	while (n < 0 && errno == EINTR);
	if (n == (ssize_t)len) {
		l->lane_bound += len;
		return 0;
	}
	if (n < 0 && (errno == EFAULT || errno == EAGAIN))
		return errno;
	/* Part of it: the lane has lost its way, and so has the link. */
	l->dead = true;
	return EPIPE;
}

/*
 * Write a whole packet: the header, then @len bytes from @iov. Room was
 * checked, so this does not wait. A fault in the application's memory
 * part-way (it unmapped a buffer it was sending) is made up with zeros so
 * that the stream stays whole: EFAULT, and the caller fails the WQE. With
 * SLINK_WHOLE, a fault before anything went out (a small packet is one
 * socket buffer, copied whole or not at all) is EFAULT with nothing
 * written, and the link as it was.
 */
int slink_write(struct slink *l, const struct spkt *h, const struct iovec *iov,
		int iovcnt, size_t len, unsigned int flags)
{
	struct iovec v[1 + 16];
	size_t want = sizeof(*h) + len, done = 0;
	struct msghdr msg = {};
	bool given = false, slot_free;
	struct spkt hg;
	int err = 0;
	ssize_t n;

	if (iovcnt > 16)
		return EINVAL;
	take_peer_chan(l);
	/* The peer waits: the header says that its event is given. */
	if (take_peer_arm(l)) {
		hg = *h;
		hg.flags |= SPF_EVENT_GIVEN;
		h = &hg;
		given = true;
	}
	slot_free = bell_slot_free(l);
	if (slot_free && lane_fits(l, len)) {
		err = lane_put(l, iov, iovcnt, len);
		if (!err) {
			if (!given)
				hg = *h;
			hg.flags |= SPF_LANE;
			bell_put_header(l, &hg);
			link_ring(l, len);
			goto rung;
		}
		/* Where the stream would have given EFAULT: the same. */
		if (err == EFAULT && (flags & SLINK_WHOLE)) {
			if (given)
				give_event(l); /* it wakes to nothing */
			return EFAULT;
		}
		if (err == EPIPE) {
			if (given)
				give_event(l); /* it learns the link died */
			return EPIPE;
		}
		err = 0; /* the stream makes up the fault with zeros */
	}
	v[0].iov_base = (void *)h;
	v[0].iov_len = sizeof(*h);
	if (iovcnt)
		memcpy(&v[1], iov, sizeof(*iov) * iovcnt);
	msg.msg_iov = v;
	msg.msg_iovlen = 1 + iovcnt;
	if (slot_free)
		bell_put_header(l, h);
	while (done < want) {
		n = sendmsg(l->fd, &msg, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		/* The doorbell's slot is not counted: the next one reuses it. */
		if (n < 0 && errno == EFAULT && !done &&
		    (flags & SLINK_WHOLE)) {
			if (given)
				give_event(l); /* it wakes to nothing */
			return EFAULT;
		}
		if (n < 0 && errno == EFAULT && done >= sizeof(*h)) {
			err = EFAULT;
			break;
		}
		if (n <= 0) {
			l->dead = true;
			if (given)
				give_event(l); /* it learns the link died */
			return n < 0 ? errno : EPIPE;
		}
		done += n;
		while (n && msg.msg_iovlen) {
			size_t take = (size_t)n < msg.msg_iov->iov_len ?
					      (size_t)n :
					      msg.msg_iov->iov_len;

			msg.msg_iov->iov_base =
				(char *)msg.msg_iov->iov_base + take;
			msg.msg_iov->iov_len -= take;
			n -= take;
			if (!msg.msg_iov->iov_len) {
				msg.msg_iov++;
				msg.msg_iovlen--;
			}
		}
	}
	/*
	 * Accounted more than the socket counts it (its buffers' data in
	 * whole pages, and their overhead: a generous 2 KiB per 32 KiB or
	 * less), so that the bound stays a bound however small the packets.
	 */
	l->queued_bound +=
		((want + 4095) & ~(size_t)4095) + 2048 * (1 + want / 32768);
	if (!err)
		link_ring(l, len);
	if (err) {
		static const char zeros[4096];

		while (done < want) {
			size_t z = want - done < sizeof(zeros) ? want - done :
								 sizeof(zeros);

			n = send(l->fd, zeros, z, MSG_NOSIGNAL);
			if (n <= 0) {
				l->dead = true;
				if (given)
					give_event(l);
				return EPIPE;
			}
			done += n;
		}
		link_ring(l, len);
	}
rung:
	/*
	 * Pairs with sengine_delegate()'s: it sees this packet counted, or
	 * we see it armed. Both may: an event with nothing new is harmless.
	 */
	if (!given && l->peer_chan >= 0) {
		atomic_thread_fence(memory_order_seq_cst);
		given = take_peer_arm(l);
	}
	if (given)
		give_event(l);
	return err;
}

/* Read @len bytes of the stream, after l->skip. */
static int slink_read_exact(struct sengine *e, struct slink *l, void *buf,
			    size_t len)
{
	ssize_t n;

	while (l->skip) {
		size_t k =
			l->skip < e->scratch_size ? l->skip : e->scratch_size;

		n = recv(l->fd, e->scratch, k, MSG_WAITALL);
		if (n != (ssize_t)k)
			goto dead;
		l->skip -= k;
	}
	if (!len)
		return 0;
	n = recv(l->fd, buf, len, MSG_WAITALL);
	if (n == (ssize_t)len)
		return 0;
dead:
	l->dead = true;
	return n < 0 ? errno : EPIPE;
}

/* Headers skipped past this are read at once, not with the next payload. */
#define SLINK_SKIP_MAX (32 * 1024)

int slink_read_header(struct sengine *e, struct slink *l, struct spkt *h)
{
	int ret = 0;

	if (link_pending(l) && bell_take_header(l, h)) {
		/* A header on the stream too is skipped there. */
		if (!(h->flags & SPF_LANE))
			l->skip += sizeof(*h);
		if (l->skip >= SLINK_SKIP_MAX)
			ret = slink_read_exact(e, l, NULL, 0);
	} else {
		ret = slink_read_exact(e, l, h, sizeof(*h));
	}
	if (ret)
		return ret;
	l->rx_lane = h->flags & SPF_LANE;
	if (l->rx_lane && l->lane_in < 0) {
		l->dead = true; /* a payload on a lane it never made */
		return EPROTO;
	}
	l->rcvd++;
	atomic_store_explicit(&l->bell->side[l->side].taken, l->rcvd,
			      memory_order_release);
	sctr_add(&l->ctr->rcv_packets, 1);
	sctr_add(&l->ctr->rcv_bytes, h->len);
	return 0;
}

/* Read and discard @len bytes of payload (and l->skip before them). */
void slink_drop(struct sengine *e, struct slink *l, size_t len)
{
	while (len && !l->dead) {
		size_t n = len < e->scratch_size ? len : e->scratch_size;

		/* A lane's payload is there whole before its header. */
		if (l->rx_lane) {
			if (read(l->lane_in, e->scratch, n) != (ssize_t)n)
				l->dead = true;
		} else if (slink_read_exact(e, l, e->scratch, n)) {
			return;
		}
		len -= n;
	}
}

void slink_kill(struct sengine *e, struct slink *l)
{
	l->dead = true;
}

/*
 * A link for what the wire made, @side 0 for the side that connected: it
 * owns @c from here on.
 */
static struct slink *link_add(struct sengine *e, struct swire_conn *c,
			      uint8_t side, uint8_t kind)
{
	struct epoll_event ev = {
		.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT,
	};
	struct slink *l = calloc(1, sizeof(*l));

	if (!l) {
		swire_conn_close(c);
		return NULL;
	}
	l->fd = c->fd;
	l->lane_in = c->lane_in;
	l->lane_out = c->lane_out;
	l->lane_guard = c->lane_guard;
	l->peer_chan = -1;
	l->ctr = e->v->ctr;
	l->bell = c->bell;
	l->side = side;
	l->kind = kind;
	l->sndbuf = swire_link_sndbuf(l->fd);
	/* Room for four packets: a writer never waits for a reader. */
	l->pkt_max = l->sndbuf / 4 > SLINK_SLACK + sizeof(struct spkt) ?
			     l->sndbuf / 4 - SLINK_SLACK - sizeof(struct spkt) :
			     4096;
	l->pkt_max &= ~4095u;
	if (!l->pkt_max)
		l->pkt_max = 4096;
	if (l->lane_out >= 0) {
		int size = fcntl(l->lane_out, F_GETPIPE_SZ);

		l->lane_max = size > 0 ? size / 2 : 0;
	}
	ev.data.ptr = l;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, l->fd, &ev)) {
		swire_conn_close(c);
		free(l);
		return NULL;
	}
	if (l->lane_in >= 0 && lane_watch(e, l, EPOLL_CTL_ADD, true)) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, l->fd, NULL);
		swire_conn_close(c);
		free(l);
		return NULL;
	}
	l->armed = true;
	l->arm_events = ev.events;
	LIST_INSERT_HEAD(&e->links, l, entry);
	return l;
}

static void link_free(struct sengine *e, struct slink *l)
{
	epoll_ctl(e->epfd, EPOLL_CTL_DEL, l->fd, NULL);
	close(l->fd);
	if (l->lane_in >= 0) {
		epoll_ctl(e->epfd, EPOLL_CTL_DEL, l->lane_in, NULL);
		close(l->lane_in);
		close(l->lane_out);
		close(l->lane_guard);
	}
	if (l->peer_chan >= 0)
		close(l->peer_chan);
	swire_bell_unmap(l->bell);
	LIST_REMOVE(l, entry);
	free(l);
}

/*
 * A QP's link to its peer: for the QP that is the lower (LID, QPN) of the
 * pair, connect; the other side waits for it. NULL for now otherwise.
 * Caller holds e->lock.
 */
struct slink *sengine_qp_link(struct sengine *e, struct softhfi_qp *qp,
			      int *err)
{
	struct swire_hello hello = {
		.magic = SWIRE_MAGIC,
		.kind = SWIRE_LINK_QP,
		.slid = e->v->lid,
		.sqpn = qp->qpn,
		.dqpn = qp->dest_qpn,
	};
	char name[SWIRE_NAME_MAX];
	struct swire_conn c;
	struct slink *l;

	*err = 0;
	if (qp->link)
		return qp->link;
	if (e->v->lid > qp->ah.dlid ||
	    (e->v->lid == qp->ah.dlid && qp->qpn > qp->dest_qpn))
		return NULL; /* the peer connects */
	*err = swire_lookup(&e->wire, qp->ah.dlid, qp->dest_qpn, name,
			    sizeof(name));
	if (!*err)
		*err = swire_connect(&e->wire, name, &hello, true, &c);
	if (*err)
		return NULL;
	l = link_add(e, &c, 0, SWIRE_LINK_QP);
	if (!l) {
		*err = ENOMEM;
		return NULL;
	}
	l->qp = qp;
	l->rlid = qp->ah.dlid;
	l->rqpn = qp->dest_qpn;
	qp->link = l;
	qp->peer_lost = false;
	return l;
}

/* The UD link to the context serving (@dlid, @dqpn). e->lock. */
struct slink *sengine_ud_link(struct sengine *e, uint16_t dlid, uint32_t dqpn,
			      int *err)
{
	struct swire_hello hello = {
		.magic = SWIRE_MAGIC,
		.kind = SWIRE_LINK_UD,
		.slid = e->v->lid,
	};
	char name[SWIRE_NAME_MAX];
	struct swire_conn c;
	struct slink *l;

	*err = swire_lookup(&e->wire, dlid, dqpn, name, sizeof(name));
	if (*err)
		return NULL;
	LIST_FOREACH(l, &e->links, entry)
	if (l->kind == SWIRE_LINK_UD && !l->dead && !strcmp(l->endpoint, name))
		return l;
	*err = swire_connect(&e->wire, name, &hello, false, &c);
	if (*err)
		return NULL;
	l = link_add(e, &c, 0, SWIRE_LINK_UD);
	if (!l) {
		*err = ENOMEM;
		return NULL;
	}
	snprintf(l->endpoint, sizeof(l->endpoint), "%s", name);
	return l;
}

static void accept_link(struct sengine *e)
{
	struct swire_hello hello;
	struct swire_conn c;
	struct softhfi_qp *qp;
	struct slink *l;

	if (swire_accept(&e->wire, &hello, &c))
		return;
	l = link_add(e, &c, 1, hello.kind);
	if (!l)
		return;
	l->rlid = hello.slid;
	l->rqpn = hello.sqpn;
	if (hello.kind != SWIRE_LINK_QP)
		return;
	qp = sengine_find_qp(e, hello.dqpn);
	if (!qp || qp->type == IB_UVERBS_QPT_UD) {
		l->dead = true;
		return;
	}
	/*
	 * A QP connected to itself: this is the far end of the link it
	 * made. What it sends arrives here, for it; it keeps sending on
	 * the end it made.
	 */
	if (hello.slid == e->v->lid && hello.sqpn == qp->qpn && qp->link &&
	    qp->link->rlid == e->v->lid && qp->link->rqpn == qp->qpn) {
		l->qp = qp;
		return;
	}
	/* A newer connection from the same peer replaces the old one. */
	if (qp->link && qp->link != l) {
		qp->link->qp = NULL;
		qp->link->dead = true;
	}
	qp->link = l;
	qp->peer_lost = false;
	l->qp = qp;
	atomic_store(&qp->kicked, true);
}

/*
 * Packets while the link has a whole header waiting, at most a few
 * (fairness). Never waits for a header: a verb's thread may have taken
 * the packet that woke the engine (sengine_progress()). A closed link
 * is dead.
 */
void slink_readable(struct sengine *e, struct slink *l)
{
	bool took = false;
	struct spkt h;
	int avail, n;
	char c;

	for (n = 0; n < 16 && !l->dead; n++, took = true) {
		/*
		 * The doorbell counts the packets written whole. Once those
		 * are taken, what else the event was for (a hang-up, a packet
		 * its writer has not counted yet) is worth two system calls
		 * only if the doorbell counted nothing: the link is armed
		 * again, and reports it.
		 */
		if (link_pending(l))
			goto take;
		if (took)
			break;
		/* What was skipped is no packet, and hides an end of file. */
		if (l->skip && slink_read_exact(e, l, NULL, 0))
			break;
		if (ioctl(l->fd, FIONREAD, &avail))
			avail = 0;
		if (avail < (int)sizeof(h)) {
			if (!avail &&
			    !recv(l->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT))
				l->dead = true; /* EOF: the peer is gone */
			break;
		}
	take:
		if (slink_read_header(e, l, &h))
			break;
		sqp_recv_packet_locked(e, l, &h);
	}
}

/*
 * A link that failed (the peer closed it, a write found it closed) may
 * still hold the peer's last packets, its answers among them: a NAK sent
 * just before the peer's QP went to ERR. They are taken before the QP
 * learns that the link is lost, in the order they were sent.
 */
static void take_last_packets(struct sengine *e, struct slink *l)
{
	struct spkt h;
	int avail, n;

	for (n = 0; n < 64 && l->qp; n++) {
		if (l->skip && slink_read_exact(e, l, NULL, 0))
			break;
		/* The doorbell's are first, and some are there only. */
		if (!link_pending(l) &&
		    (ioctl(l->fd, FIONREAD, &avail) || avail < (int)sizeof(h)))
			break;
		l->dead = false;
		if (slink_read_header(e, l, &h))
			break;
		sqp_recv_packet_locked(e, l, &h);
	}
	/* Its last ACK may have gone in the doorbell only. */
	slink_take_bell_ack(e, l);
	l->dead = true;
}

/* Links that died: their QPs fail, as on a lost peer. */
static void reap_links(struct sengine *e)
{
	struct slink *l, *next;

	for (l = LIST_FIRST(&e->links); l; l = next) {
		next = LIST_NEXT(l, entry);
		if (!l->dead)
			continue;
		if (l->qp) {
			struct softhfi_qp *qp;

			take_last_packets(e, l);
			qp = l->qp;
			if (qp) {
				qp->link = NULL;
				l->qp = NULL;
				sqp_link_lost_locked(e, qp);
			}
		}
		link_free(e, l);
	}
}

/* The nearest QP timer, in ns; UINT64_MAX if none. */
static uint64_t next_deadline(struct sengine *e)
{
	struct softhfi_qp *qp;
	uint64_t best = UINT64_MAX;

	LIST_FOREACH(qp, &e->qps, entry)
	{
		if (qp->wait_until && qp->wait_until < best)
			best = qp->wait_until;
		if (qp->ack_deadline && qp->ack_deadline < best)
			best = qp->ack_deadline;
	}
	return best;
}

/* The engine never sleeps longer than this while it has RC QPs in RTS. */
#define SENGINE_TIMER_BOUND_MIN_NS 1000000ull

/*
 * How long the engine may sleep with no timer due: no longer than the
 * shortest timeout a send may arm meanwhile, so that a send never has to
 * wake it to arm one (sengine_progress() kicks only for a deadline before
 * sleep_until). Else every RC send of an application that does not poll
 * woke the engine. UINT64_MAX if no QP can arm one.
 */
static uint64_t timer_bound(struct sengine *e)
{
	struct softhfi_qp *qp;
	uint64_t best = UINT64_MAX, t;

	LIST_FOREACH(qp, &e->qps, entry)
	{
		t = sqp_timer_bound_ns(qp);
		if (t < best)
			best = t;
	}
	if (best != UINT64_MAX && best < SENGINE_TIMER_BOUND_MIN_NS)
		best = SENGINE_TIMER_BOUND_MIN_NS;
	return best;
}

/*
 * Milliseconds to the nearest QP timer (rounded up) or the timer bound
 * (rounded down: a send armed right after must not find the engine
 * sleeping past its deadline), or -1.
 */
static int next_timeout(struct sengine *e)
{
	uint64_t now = sengine_now(), best = next_deadline(e);
	uint64_t bound = timer_bound(e);
	int ms = -1;

	if (best != UINT64_MAX)
		ms = best <= now ? 0 : (int)((best - now + 999999) / 1000000);
	if (bound != UINT64_MAX && (ms < 0 || bound / 1000000 < (uint64_t)ms))
		ms = (int)(bound / 1000000);
	return ms;
}

static void progress_all(struct sengine *e)
{
	struct softhfi_qp *qp;

	LIST_FOREACH(qp, &e->qps, entry)
	{
		atomic_store(&qp->kicked, false);
		sqp_progress_locked(e, qp);
	}
}

static bool work_pending(struct sengine *e)
{
	struct softhfi_qp *qp;

	LIST_FOREACH(qp, &e->qps, entry)
	if (atomic_load(&qp->kicked))
		return true;
	return false;
}

/*
 * @l's packets whose header is whole, and the ACK left in its doorbell,
 * handled now: for a verb's thread, which must not wait on a link.
 * e->lock.
 */
static void take_link_packets(struct sengine *e, struct slink *l)
{
	struct spkt h;
	int n;

	for (n = 0; n < 16 && !l->dead && link_pending(l); n++) {
		if (slink_read_header(e, l, &h))
			break;
		sqp_recv_packet_locked(e, l, &h);
	}
	if (!l->dead)
		slink_take_bell_ack(e, l);
}

/* Every link's, as take_link_packets(). e->lock. */
static void poll_links(struct sengine *e)
{
	struct slink *l;

	LIST_FOREACH(l, &e->links, entry)
	take_link_packets(e, l);
}

/*
 * The application polls when its empty polls come close together (a
 * blocking one makes one or two, then sleeps): the engine thread then
 * leaves the links to it (see link_arm()).
 */
#define SENGINE_POLL_GAP_NS 20000
#define SENGINE_POLL_STREAK 8
#define SENGINE_POLL_HOLD_NS 200000

static void note_poll(struct sengine *e)
{
	uint64_t now = sengine_now();
	uint64_t last = atomic_exchange_explicit(&e->last_poll, now,
						 memory_order_relaxed);

	if (now - last > SENGINE_POLL_GAP_NS)
		atomic_store_explicit(&e->poll_streak, 0, memory_order_relaxed);
	else if (atomic_fetch_add_explicit(&e->poll_streak, 1,
					   memory_order_relaxed) >=
		 SENGINE_POLL_STREAK)
		atomic_store_explicit(&e->polling_until,
				      now + SENGINE_POLL_HOLD_NS,
				      memory_order_relaxed);
}

static bool app_polling(struct sengine *e)
{
	return sengine_now() <
	       atomic_load_explicit(&e->polling_until, memory_order_relaxed);
}

void sengine_poll_stop(struct sengine *e)
{
	uint64_t one = 1;

	atomic_store_explicit(&e->poll_streak, 0, memory_order_relaxed);
	if (!atomic_exchange(&e->polling_until, 0))
		return;
	/* The engine left the links to the poller: it takes them back. */
	if (atomic_load(&e->sleeping))
		(void)!write(e->kick_fd, &one, sizeof(one));
}

/*
 * A timer that the verb's work set is the sleeping engine's to keep: wake
 * it only if it is due before the engine wakes anyway (an RC send arms
 * one, and a poller must not wake the engine at every send), or if a
 * link died, which only the engine thread frees. e->lock.
 */
static void wake_for_deadline(struct sengine *e, bool dead)
{
	uint64_t one = 1;

	if (atomic_load(&e->sleeping) &&
	    (dead || next_deadline(e) < atomic_load(&e->sleep_until)))
		(void)!write(e->kick_fd, &one, sizeof(one));
}

void sengine_unlock_progressed(struct sengine *e)
{
	struct slink *l;
	bool dead = false;

	/*
	 * Only the engine thread frees links (reap_links()): an event it
	 * took from epoll_wait() may name one while it waits for the lock.
	 * It learns of a link that died here by the kick below.
	 */
	LIST_FOREACH(l, &e->links, entry)
	if (l->dead)
		dead = true;
	wake_for_deadline(e, dead);
	pthread_mutex_unlock(&e->lock);
}

bool sengine_progress(struct sengine *e, struct softhfi_qp *qp)
{
	if (!qp)
		note_poll(e);
	if (pthread_mutex_trylock(&e->lock))
		return false;
	if (qp) {
		/*
		 * Taken here: a kick left set would keep the engine thread
		 * from sleeping, to contend for e->lock with the poster.
		 */
		atomic_store(&qp->kicked, false);
		sqp_progress_locked(e, qp);
	} else {
		poll_links(e);
		progress_all(e);
	}
	sengine_unlock_progressed(e);
	return true;
}

bool sengine_delegate(struct sengine *e, struct softhfi_cq *cq, int chan_fd,
		      uint64_t cq_handle)
{
	struct slink *l, *one = NULL;
	int users = 0;

	pthread_mutex_lock(&e->lock);
	LIST_FOREACH(l, &e->links, entry)
	if (l->kind == SWIRE_LINK_QP && l->qp && !l->dead &&
	    (l->qp->recv_cq == cq || l->qp->send_cq == cq)) {
		one = l;
		users++;
	}
	/*
	 * One link, one peer to give the one event of the arm, and every
	 * completion of its QP in this CQ: what the peer sends (a message,
	 * an ACK) is for no other.
	 */
	if (users != 1 || one->qp->recv_cq != cq || one->qp->send_cq != cq) {
		pthread_mutex_unlock(&e->lock);
		return false;
	}
	l = one;
	if (!atomic_load_explicit(&l->bell->side[l->side].chan_given,
				  memory_order_relaxed)) {
		l->bell->side[l->side].chan_pid = getpid();
		l->bell->side[l->side].chan_fd = chan_fd;
		l->bell->side[l->side].chan_cq_handle = cq_handle;
		atomic_store(&l->bell->side[l->side].chan_given, 1);
	}
	if (!atomic_load(&l->bell->side[!l->side].chan_taken)) {
		pthread_mutex_unlock(&e->lock);
		return false;
	}
	l->delegated = true;
	/* The peer's ACKs go in the doorbell, with the event given. */
	bell_polling(e, l, true);
	link_arm(e, l, false);
	atomic_store(&l->bell->side[l->side].ev_armed, 1);
	/* Pairs with slink_write()'s: what came before the arm is ours. */
	atomic_thread_fence(memory_order_seq_cst);
	take_link_packets(e, l);
	/* And what they call for goes out (an ACK, a READ response). */
	if (l->qp)
		sqp_progress_locked(e, l->qp);
	/*
	 * An engine asleep for longer than its tick while links are left
	 * to the application learns of it: should no event come (the peer
	 * could not write it), its tick takes the link back.
	 */
	if (atomic_load(&e->sleeping) &&
	    atomic_load(&e->sleep_until) > sengine_now() + 1000000ull) {
		uint64_t kick = 1;

		(void)!write(e->kick_fd, &kick, sizeof(kick));
	}
	sengine_unlock_progressed(e);
	return true;
}

bool sengine_take_cq_arm(struct sengine *e, struct softhfi_cq *cq)
{
	struct slink *l;

	LIST_FOREACH(l, &e->links, entry)
	if (l->delegated && l->qp && l->qp->recv_cq == cq &&
	    !atomic_exchange(&l->bell->side[l->side].ev_armed, 0))
		return false;
	return true;
}

void sengine_lock_posted(struct sengine *e)
{
	pthread_mutex_lock(&e->lock);
	progress_all(e);
	wake_for_deadline(e, false);
}

static void *engine_main(void *arg)
{
	struct sengine *e = arg;
	struct epoll_event evs[32];
	struct slink *l;
	bool polled, left;
	sigset_t all;
	int i, n, timeout;

	/* Signals are the application's threads' business. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!atomic_load(&e->stop)) {
		pthread_mutex_lock(&e->lock);
		progress_all(e);
		reap_links(e);
		timeout = next_timeout(e);
		polled = app_polling(e);
		left = polled;
		LIST_FOREACH(l, &e->links, entry)
		if (!l->dead) {
			bool app = link_left_to_app(l, polled);

			bell_polling(e, l, app);
			link_arm(e, l, !app);
			left |= app;
		}
		/* Look again when the poller may have stopped. */
		if (left && (timeout < 0 || timeout > 1))
			timeout = 1;
		atomic_store(&e->sleep_until,
			     timeout < 0 ?
				     UINT64_MAX :
				     sengine_now() + timeout * 1000000ull);
		/* Posters kick only a sleeping engine: look once more. */
		atomic_store(&e->sleeping, true);
		if (work_pending(e))
			timeout = 0;
		pthread_mutex_unlock(&e->lock);

		n = epoll_wait(e->epfd, evs, 32, timeout);
		atomic_store(&e->sleeping, false);

		pthread_mutex_lock(&e->lock);
		polled = app_polling(e);
		for (i = 0; i < n; i++) {
			void *p = evs[i].data.ptr;

			if (p == &tag_kick) {
				uint64_t v;

				(void)!read(e->kick_fd, &v, sizeof(v));
			} else if (p == &tag_listen) {
				accept_link(e);
			} else if ((l = lane_event_link(&evs[i]))) {
				/* The lane: a packet, whose header is there. */
				l->lane_armed = false;
				if (!link_left_to_app(l, polled))
					slink_readable(e, l);
			} else {
				l = p;
				l->armed = false;
				if (evs[i].events & EPOLLOUT)
					l->want_out = false;
				/* A poller takes the packets, not a hang-up. */
				if (evs[i].events &
				    (link_left_to_app(l, polled) ?
					     EPOLLRDHUP | EPOLLHUP | EPOLLERR :
					     EPOLLIN | EPOLLRDHUP | EPOLLHUP |
						     EPOLLERR))
					slink_readable(e, l);
			}
		}
		pthread_mutex_unlock(&e->lock);
	}
	return NULL;
}

int sengine_start(struct sverbs *v)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct sengine *e;
	int ret;

	e = calloc(1, sizeof(*e));
	if (!e)
		return ENOMEM;
	e->v = v;
	e->epfd = e->kick_fd = -1;
	e->byte_pipe[0] = e->byte_pipe[1] = -1;
	pthread_mutex_init(&e->lock, NULL);
	LIST_INIT(&e->qps);
	LIST_INIT(&e->links);
	e->scratch_size = SENGINE_SCRATCH;
	e->scratch = malloc(e->scratch_size);
	ret = ENOMEM;
	if (!e->scratch)
		goto err;
	ret = swire_open(&e->wire, v->fabric_dir, v->lid);
	if (ret) {
		sverbs_log(v, SV_LOG_ERR,
			   "cannot open the fabric endpoint under %s: %s",
			   v->fabric_dir, strerror(ret));
		goto err;
	}
	e->epfd = epoll_create1(EPOLL_CLOEXEC);
	e->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (e->epfd < 0 || e->kick_fd < 0 || pipe2(e->byte_pipe, O_CLOEXEC)) {
		ret = errno;
		goto err;
	}
	ev.data.ptr = &tag_kick;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->kick_fd, &ev)) {
		ret = errno;
		goto err;
	}
	ev.data.ptr = &tag_listen;
	if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wire.listen_fd, &ev)) {
		ret = errno;
		goto err;
	}
	ret = pthread_create(&e->thread, NULL, engine_main, e);
	if (ret)
		goto err;
	e->running = true;
	v->engine = e;
	return 0;
err:
	v->engine = e;
	sengine_stop(v);
	return ret;
}

void sengine_stop(struct sverbs *v)
{
	struct sengine *e = v->engine;
	struct slink *l;

	if (!e)
		return;
	if (e->running) {
		uint64_t one = 1;

		atomic_store(&e->stop, true);
		(void)!write(e->kick_fd, &one, sizeof(one));
		pthread_join(e->thread, NULL);
	}
	sqp_destroy_all(e);
	while ((l = LIST_FIRST(&e->links)))
		link_free(e, l);
	swire_close(&e->wire);
	if (e->epfd >= 0)
		close(e->epfd);
	if (e->kick_fd >= 0)
		close(e->kick_fd);
	if (e->byte_pipe[0] >= 0) {
		close(e->byte_pipe[0]);
		close(e->byte_pipe[1]);
	}
	free(e->scratch);
	pthread_mutex_destroy(&e->lock);
	free(e);
	v->engine = NULL;
}
