// SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
/*
 * The soft HFI's completion queues (softhfi/cq.c): the rvt_cq_wc ring as
 * a poller sees it, overrun (one CQ_ERR event, nothing after), resize,
 * arming for the next or the next solicited completion (one event per
 * arm on the channel), destroy refused while a QP uses the CQ, and a
 * producer thread against a poller.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "softhfi.h"
#include "sverbs.h"

struct fixture {
	struct hfi1_drv *drv;
	char fabric[64]; /* the verbs server's fabric directory */
	/* The async events the server raised. */
	pthread_mutex_t lock;
	unsigned int nevents;
	uint32_t event_type;
	uint64_t event_element;
};

static void on_event(void *arg, uint32_t type, uint64_t element)
{
	struct fixture *f = arg;

	pthread_mutex_lock(&f->lock);
	f->nevents++;
	f->event_type = type;
	f->event_element = element;
	pthread_mutex_unlock(&f->lock);
}

static void on_log(void *arg, int level, const char *msg)
{
	(void)arg;
	(void)level;
	(void)msg;
}

static int setup(void **state)
{
	struct softhfi_port port = { .lid = 1 };
	struct softhfi_params params;
	struct softhfi_verbs_ops ops = { .event = on_event, .log = on_log };
	struct fixture *f = calloc(1, sizeof(*f));
	char lid_dir[80];

	if (!f)
		return -1;
	pthread_mutex_init(&f->lock, NULL);
	softhfi_default_params(&params);
	f->drv = softhfi_open(&params);
	if (!f->drv)
		return -1;
	ops.arg = f;
	snprintf(f->fabric, sizeof(f->fabric), "/tmp/softhfi-cq.XXXXXX");
	if (!mkdtemp(f->fabric))
		return -1;
	port.fabric_dir = f->fabric;
	snprintf(lid_dir, sizeof(lid_dir), "%s/1", f->fabric);
	if (mkdir(lid_dir, 0700))
		return -1;
	if (softhfi_verbs_start(f->drv, &port, &ops))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	char lid_dir[80];

	softhfi_verbs_stop(f->drv);
	hfi1_drv_close(f->drv);
	snprintf(lid_dir, sizeof(lid_dir), "%s/1", f->fabric);
	rmdir(lid_dir);
	rmdir(f->fabric);
	pthread_mutex_destroy(&f->lock);
	free(f);
	return 0;
}

static struct ib_uverbs_wc make_wc(uint64_t wr_id)
{
	struct ib_uverbs_wc wc = {
		.wr_id = wr_id,
		.opcode = IB_UVERBS_WC_RDMA_WRITE,
		.byte_len = (uint32_t)wr_id * 8,
		.qp_num = 7,
	};

	return wc;
}

/* The provider's side of the ring: one entry, or false if empty. */
static bool poll_one(struct softhfi_cq *cq, struct ib_uverbs_wc *wc)
{
	uint32_t cqe;
	struct rvt_cq_wc *ring = softhfi_cq_ring(cq, &cqe);
	uint32_t tail = atomic_load_explicit(
		(_Atomic uint32_t *)&ring->tail.val, memory_order_relaxed);

	if (atomic_load_explicit((_Atomic uint32_t *)&ring->head.val,
				 memory_order_acquire) == tail)
		return false;
	*wc = ring->uqueue[tail];
	atomic_store_explicit((_Atomic uint32_t *)&ring->tail.val,
			      tail >= cqe ? 0 : tail + 1, memory_order_release);
	return true;
}

static void test_bad_input(void **state)
{
	struct fixture *f = *state;
	struct softhfi_params params;
	struct hfi1_drv *drv;
	int sv[2];

	errno = 0;
	assert_null(softhfi_cq_create(f->drv, 0, 1, -1));
	assert_int_equal(errno, EINVAL);
	assert_null(softhfi_cq_create(f->drv, SOFTHFI_MAX_CQE + 1, 1, -1));
	assert_int_equal(errno, EINVAL);
	/* The channel's fd is the CQ's, also on failure. */
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	assert_null(softhfi_cq_create(f->drv, 0, 1, sv[1]));
	assert_int_equal(fcntl(sv[1], F_GETFD), -1);
	close(sv[0]);

	/* No verbs server yet. */
	softhfi_default_params(&params);
	drv = softhfi_open(&params);
	assert_non_null(drv);
	assert_null(softhfi_cq_create(drv, 4, 1, -1));
	assert_int_equal(errno, ENXIO);
	hfi1_drv_close(drv);
}

static void test_push_poll(void **state)
{
	struct fixture *f = *state;
	struct ib_uverbs_wc wc, in;
	struct softhfi_cq *cq;
	uint32_t cqe, i, round;

	cq = softhfi_cq_create(f->drv, 4, 0x1234, -1);
	assert_non_null(cq);
	assert_non_null(softhfi_cq_ring(cq, &cqe));
	assert_int_equal(cqe, 4);
	assert_false(poll_one(cq, &wc));
	/* Around the ring a few times: the slots wrap, order holds. */
	for (round = 0; round < 5; round++) {
		for (i = 0; i < 4; i++) {
			in = make_wc(round * 10 + i);
			assert_true(scq_push(cq, &in, false));
		}
		for (i = 0; i < 4; i++) {
			assert_true(poll_one(cq, &wc));
			assert_int_equal(wc.wr_id, round * 10 + i);
			assert_int_equal(wc.byte_len, (round * 10 + i) * 8);
			assert_int_equal(wc.qp_num, 7);
		}
		assert_false(poll_one(cq, &wc));
	}
	assert_int_equal(f->nevents, 0);
	assert_int_equal(softhfi_cq_destroy(cq), 0);
}

static void test_overrun(void **state)
{
	struct fixture *f = *state;
	struct ib_uverbs_wc wc = make_wc(1);
	struct softhfi_cq *cq;
	int i;

	cq = softhfi_cq_create(f->drv, 3, 0xc0ffee, -1);
	assert_non_null(cq);
	for (i = 0; i < 3; i++)
		assert_true(scq_push(cq, &wc, false));
	/* Full: the fourth is lost, the CQ is in error, one event says so. */
	assert_false(scq_push(cq, &wc, false));
	assert_int_equal(f->nevents, 1);
	assert_int_equal(f->event_type, SOFTHFI_EVENT_CQ_ERR);
	assert_int_equal(f->event_element, 0xc0ffee);
	/* From now on nothing is added, and no further event. */
	for (i = 0; i < 3; i++)
		assert_true(poll_one(cq, &wc));
	assert_false(scq_push(cq, &wc, false));
	assert_false(poll_one(cq, &wc));
	assert_int_equal(f->nevents, 1);
	assert_int_equal(softhfi_cq_destroy(cq), 0);
}

static void test_resize(void **state)
{
	struct fixture *f = *state;
	struct ib_uverbs_wc wc;
	struct softhfi_cq *cq;
	uint32_t cqe, i;

	cq = softhfi_cq_create(f->drv, 4, 1, -1);
	assert_non_null(cq);
	/* Entries across the wrap point: tail 3, head 1. */
	for (i = 0; i < 3; i++) {
		wc = make_wc(100 + i);
		assert_true(scq_push(cq, &wc, false));
		assert_true(poll_one(cq, &wc));
	}
	for (i = 0; i < 3; i++) {
		wc = make_wc(i);
		assert_true(scq_push(cq, &wc, false));
	}
	/* Not below what it holds. */
	assert_int_equal(softhfi_cq_resize(cq, 2), EINVAL);
	assert_int_equal(softhfi_cq_resize(cq, 0), EINVAL);
	assert_int_equal(softhfi_cq_resize(cq, SOFTHFI_MAX_CQE + 1), EINVAL);
	assert_int_equal(softhfi_cq_resize(cq, 3), 0);
	softhfi_cq_ring(cq, &cqe);
	assert_int_equal(cqe, 3);
	assert_int_equal(softhfi_cq_resize(cq, 100), 0);
	softhfi_cq_ring(cq, &cqe);
	assert_int_equal(cqe, 100);
	for (i = 3; i < 50; i++) {
		wc = make_wc(i);
		assert_true(scq_push(cq, &wc, false));
	}
	for (i = 0; i < 50; i++) {
		assert_true(poll_one(cq, &wc));
		assert_int_equal(wc.wr_id, i);
	}
	assert_false(poll_one(cq, &wc));
	assert_int_equal(f->nevents, 0);
	assert_int_equal(softhfi_cq_destroy(cq), 0);
}

/* How many event descriptors wait on @fd, each naming @handle. */
static int count_events(int fd, uint64_t handle)
{
	struct ib_uverbs_comp_event_desc desc;
	int n = 0;

	while (recv(fd, &desc, sizeof(desc), MSG_DONTWAIT) == sizeof(desc)) {
		assert_int_equal(desc.cq_handle, handle);
		n++;
	}
	return n;
}

static void test_arm(void **state)
{
	struct fixture *f = *state;
	struct ib_uverbs_wc wc = make_wc(1);
	struct softhfi_cq *cq;
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	cq = softhfi_cq_create(f->drv, 64, 0xabc, sv[1]);
	assert_non_null(cq);

	/* Not armed: no event. */
	assert_true(scq_push(cq, &wc, false));
	assert_int_equal(count_events(sv[0], 0xabc), 0);

	/* Armed for the next: one event, however many completions. */
	assert_int_equal(softhfi_cq_arm(cq, false), 0);
	assert_int_equal(softhfi_cq_arm(cq, false), 0);
	assert_true(scq_push(cq, &wc, false));
	assert_true(scq_push(cq, &wc, true));
	assert_int_equal(count_events(sv[0], 0xabc), 1);

	/* Solicited only: an unsolicited completion does not fire it. */
	assert_int_equal(softhfi_cq_arm(cq, true), 0);
	assert_true(scq_push(cq, &wc, false));
	assert_int_equal(count_events(sv[0], 0xabc), 0);
	assert_true(scq_push(cq, &wc, true));
	assert_true(scq_push(cq, &wc, true));
	assert_int_equal(count_events(sv[0], 0xabc), 1);

	/* A solicited-only arm does not narrow a pending "next" one. */
	assert_int_equal(softhfi_cq_arm(cq, false), 0);
	assert_int_equal(softhfi_cq_arm(cq, true), 0);
	assert_true(scq_push(cq, &wc, false));
	assert_int_equal(count_events(sv[0], 0xabc), 1);

	/* The reader gone: the event is lost, no SIGPIPE, the CQ goes on. */
	close(sv[0]);
	assert_int_equal(softhfi_cq_arm(cq, false), 0);
	assert_true(scq_push(cq, &wc, false));
	assert_int_equal(softhfi_cq_destroy(cq), 0);
}

static void test_destroy_busy(void **state)
{
	struct fixture *f = *state;
	struct softhfi_cq *cq;

	cq = softhfi_cq_create(f->drv, 8, 1, -1);
	assert_non_null(cq);
	scq_get(cq);
	scq_get(cq);
	assert_int_equal(softhfi_cq_destroy(cq), EBUSY);
	scq_put(cq);
	assert_int_equal(softhfi_cq_destroy(cq), EBUSY);
	scq_put(cq);
	assert_int_equal(softhfi_cq_destroy(cq), 0);
	/* One left to the server's stop (teardown), with its channel. */
	assert_non_null(softhfi_cq_create(f->drv, 8, 2, -1));
}

#define PRODUCED 200000

/* The producer's push failed: the poller fails the test (cmocka's asserts
 * belong to the test's thread). */
static atomic_bool push_failed;

static void *producer(void *arg)
{
	struct softhfi_cq *cq = arg;
	struct ib_uverbs_wc wc;
	uint64_t i = 0;

	uint32_t cqe, head, tail;
	struct rvt_cq_wc *ring = softhfi_cq_ring(cq, &cqe);

	while (i < PRODUCED) {
		/*
		 * Never overruns: wait while the ring is full, as slow as
		 * the poller may be (under ThreadSanitizer, on a busy host).
		 * A failed push here could not fail the test from this
		 * thread: the poller would miss an entry and fail it.
		 */
		head = __atomic_load_n(&ring->head.val, __ATOMIC_ACQUIRE);
		tail = __atomic_load_n(&ring->tail.val, __ATOMIC_ACQUIRE);
		if ((head + cqe + 1 - tail) % (cqe + 1) >= cqe) {
			usleep(50);
			continue;
		}
		wc = make_wc(i);
		if (!scq_push(cq, &wc, false)) {
			atomic_store(&push_failed, true);
			break;
		}
		i++;
	}
	return NULL;
}

/* A producer thread and a poller: every entry, in order, whole. */
static void test_threads(void **state)
{
	struct fixture *f = *state;
	struct ib_uverbs_wc wc;
	struct softhfi_cq *cq;
	pthread_t t;
	uint64_t next = 0;

	cq = softhfi_cq_create(f->drv, SOFTHFI_MAX_CQE, 1, -1);
	assert_non_null(cq);
	assert_int_equal(pthread_create(&t, NULL, producer, cq), 0);
	while (next < PRODUCED) {
		if (atomic_load(&push_failed))
			fail_msg("push %llu failed", (unsigned long long)next);
		if (!poll_one(cq, &wc))
			continue;
		assert_int_equal(wc.wr_id, next);
		assert_int_equal(wc.byte_len, (uint32_t)next * 8);
		next++;
	}
	pthread_join(t, NULL);
	assert_int_equal(f->nevents, 0);
	assert_int_equal(softhfi_cq_destroy(cq), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bad_input, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_push_poll, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_overrun, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resize, setup, teardown),
		cmocka_unit_test_setup_teardown(test_arm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_destroy_busy, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
