# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
"""
Memory registration on libhfi1: ibv_reg_mr served from the expected-receive
registration cache, and invalidations reported through the async event
queue. The cache's counters are read from outside, as an operator would,
with hfi1_mrstat (the per-context stats file).
"""
import ctypes
import errno
import mmap
import os
import shutil
import subprocess
import tempfile
import unittest

import hfi1_base
from hfi1_base import (HFI1_MRSTAT, Hfi1TestCase, get_async_event, mrstat,
                       wait_until)

from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.pyverbs_error import PyverbsRDMAError
import pyverbs.enums as e

HERE = os.path.dirname(os.path.abspath(__file__))

# hfi1dv.h
HFI1DV_EVENT_MR_INVALIDATED = 0x48460001

PAGE = mmap.PAGESIZE
LW = e.IBV_ACCESS_LOCAL_WRITE
RW = e.IBV_ACCESS_REMOTE_WRITE
RR = e.IBV_ACCESS_REMOTE_READ

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
libc.mremap.restype = ctypes.c_void_p
libc.mremap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_size_t,
                        ctypes.c_int, ctypes.c_void_p]
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
libc.memset.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t]
libc.memset.restype = ctypes.c_void_p

MAP_FAILED = ctypes.c_void_p(-1).value
MAP_FIXED = 0x10
MREMAP_MAYMOVE = 1
MREMAP_FIXED = 2
MADV_DONTNEED = 4
MADV_FREE = 8
M_MMAP_THRESHOLD = -3

libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
# glibc raises its mmap threshold after a large free(): keep it fixed, so
# that free() of a block above it always munmaps the block.
libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)


def map_anon(length, prot=mmap.PROT_READ | mmap.PROT_WRITE, addr=None,
             fixed=False):
    """Anonymous private memory, populated (TIDs pin what is there)."""
    flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | (MAP_FIXED if fixed else 0)
    p = libc.mmap(addr, length, prot, flags, -1, 0)
    if p == MAP_FAILED:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    if prot & mmap.PROT_WRITE:
        libc.memset(p, 0x5a, length)
    return p


def unmap(addr, length):
    if libc.munmap(addr, length):
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class MRCacheTestCase(Hfi1TestCase):
    """A context with a PD, and the counters of its MR cache."""

    def setUp(self):
        super().setUp()
        if not os.access(HFI1_MRSTAT, os.X_OK):
            self.skipTest(f'{HFI1_MRSTAT} is not built')
        self.pd = PD(self.ctx)
        self.maps = []

    def tearDown(self):
        self.pd.close()
        for addr, length in self.maps:
            libc.munmap(addr, length)
        super().tearDown()

    def buf(self, length, **kwargs):
        p = map_anon(length, **kwargs)
        self.maps.append((p, length))
        return p

    def forget(self, addr):
        self.maps = [(a, l) for a, l in self.maps if a != addr]

    def soft_param(self, name):
        """A sizing file of the soft device (hfi1-soft up); skips the test
        on another device."""
        sysfs = os.environ.get('SYSFS_PATH')
        path = os.path.join(sysfs or '/sys', 'class', 'infiniband',
                            self.dev_name, 'softhfi', name)
        if not os.path.exists(path):
            self.skipTest(f'not a soft HFI: {name} is unknown')
        with open(path) as f:
            return int(f.read())

    def counters(self):
        ctxs = [c for c in mrstat() if c['device'] == self.dev_name]
        self.assertEqual(len(ctxs), 1, f'expected one live context: {ctxs}')
        return ctxs[0]['counters']

    def delta(self, before, after, *names):
        return {n: after[n] - before[n] for n in names}

    def reg(self, addr, length, access=LW):
        return MR(self.pd, length, access, address=addr)

    def assert_reg_fails(self, err, *args, **kwargs):
        with self.assertRaises(PyverbsRDMAError) as cm:
            self.reg(*args, **kwargs)
        self.assertEqual(cm.exception.error_code, err,
                         os.strerror(cm.exception.error_code))


class HitMissTest(MRCacheTestCase):
    """What counts as a hit."""

    def test_same_buffer_hits(self):
        """The same buffer registered again and again misses once."""
        p = self.buf(64 * 1024)
        before = self.counters()
        for _ in range(10):
            self.reg(p, 64 * 1024).close()
        d = self.delta(before, self.counters(), 'hits', 'misses')
        self.assertEqual(d, {'hits': 9, 'misses': 1})

    def test_keys_are_distinct(self):
        """Two MRs on one cache entry still have keys of their own."""
        p = self.buf(16 * 1024)
        a = self.reg(p, 16 * 1024, LW | RW)
        b = self.reg(p, 16 * 1024, LW | RW)
        self.assertNotEqual(a.lkey, b.lkey)
        self.assertNotEqual(a.rkey, b.rkey)
        b.close()
        a.close()

    def test_contained_overlapping_adjacent(self):
        """Contained in a cached range: a hit; overlapping or adjacent: a
        miss."""
        p = self.buf(256 * 1024)
        base = self.reg(p, 64 * 1024)
        before = self.counters()
        self.reg(p + 4096, 8192).close()
        self.reg(p + 100, 1000).close()   # unaligned, inside page 0
        d = self.delta(before, self.counters(), 'hits', 'misses')
        self.assertEqual(d, {'hits': 2, 'misses': 0})

        before = self.counters()
        self.reg(p + 32 * 1024, 64 * 1024).close()   # overlaps the end
        self.reg(p + 64 * 1024, 64 * 1024).close()   # adjacent
        d = self.delta(before, self.counters(), 'hits', 'misses')
        self.assertEqual(d, {'hits': 0, 'misses': 2})
        base.close()

    def test_access_mismatch(self):
        """An entry with less access does not serve a request for more;
        one with more serves one for less."""
        p = self.buf(32 * 1024)
        self.reg(p, 32 * 1024, LW).close()
        before = self.counters()
        self.reg(p, 32 * 1024, LW | RW | RR).close()
        d = self.delta(before, self.counters(), 'hits', 'misses')
        self.assertEqual(d, {'hits': 0, 'misses': 1})
        before = self.counters()
        self.reg(p, 32 * 1024, LW | RW).close()
        d = self.delta(before, self.counters(), 'hits', 'misses')
        self.assertEqual(d, {'hits': 1, 'misses': 0})

    def test_idle_entries_counted(self):
        """Deregistered MRs leave idle entries with their pins."""
        p = self.buf(128 * 1024)
        before = self.counters()
        mr = self.reg(p, 128 * 1024)
        mid = self.counters()
        self.assertEqual(mid['entries'], before['entries'] + 1)
        self.assertGreaterEqual(mid['pinned_bytes'],
                                before['pinned_bytes'] + 128 * 1024)
        self.assertGreater(mid['tids_used'], before['tids_used'])
        mr.close()
        after = self.counters()
        self.assertEqual(after['idle_entries'], before['idle_entries'] + 1)
        self.assertEqual(after['pinned_bytes'], mid['pinned_bytes'])


class BadInputTest(MRCacheTestCase):
    """Bad registrations fail with the kernel's errno, and change nothing."""

    def test_null_address(self):
        """NULL, length 0: EINVAL (pyverbs passes NULL when it allocates
        nothing)."""
        with self.assertRaises(PyverbsRDMAError) as cm:
            MR(self.pd, 0, LW)
        self.assertEqual(cm.exception.error_code, errno.EINVAL)

    def test_zero_length(self):
        p = self.buf(PAGE)
        self.assert_reg_fails(errno.EINVAL, p, 0)

    def test_unmapped(self):
        """Memory that is not mapped: EFAULT."""
        p = map_anon(4 * PAGE)
        unmap(p, 4 * PAGE)
        before = self.counters()
        self.assert_reg_fails(errno.EFAULT, p, 4 * PAGE)
        after = self.counters()
        self.assertEqual(after['entries'], before['entries'])
        self.assertEqual(after['tids_used'], before['tids_used'])

    def test_partly_unmapped(self):
        """A hole in the middle: EFAULT, and nothing stays pinned."""
        p = self.buf(8 * PAGE)
        libc.munmap(p + 4 * PAGE, PAGE)
        before = self.counters()
        self.assert_reg_fails(errno.EFAULT, p, 8 * PAGE)
        after = self.counters()
        self.assertEqual(after['pinned_bytes'], before['pinned_bytes'])

    def test_write_to_read_only(self):
        """Write access to a read-only mapping: EFAULT."""
        p = self.buf(4 * PAGE, prot=mmap.PROT_READ)
        self.assert_reg_fails(errno.EFAULT, p, 4 * PAGE, LW | RW)

    def test_remote_write_without_local_write(self):
        """As ib_check_mr_access(): REMOTE_WRITE needs LOCAL_WRITE."""
        p = self.buf(PAGE)
        self.assert_reg_fails(errno.EINVAL, p, PAGE, RW)

    def test_too_long(self):
        """Longer than max_mr_size: EINVAL."""
        p = self.buf(PAGE)
        size = self.ctx.query_device().max_mr_size
        self.assert_reg_fails(errno.EINVAL, p, size + PAGE)

    def test_implicit_odp_refused(self):
        with self.assertRaises(PyverbsRDMAError) as cm:
            MR(self.pd, 0, LW | e.IBV_ACCESS_ON_DEMAND, implicit=True)
        self.assertIn(cm.exception.error_code,
                      (errno.EINVAL, errno.EOPNOTSUPP))

    def test_more_than_the_tids(self):
        """More memory in use than the context's TIDs can map: ENOMEM; the
        cache recovers once MRs are deregistered."""
        mrs = []
        size = 2 * 1024 * 1024
        try:
            with self.assertRaises(PyverbsRDMAError) as cm:
                for _ in range(4096):
                    mrs.append(self.reg(self.buf(size), size))
            self.assertEqual(cm.exception.error_code, errno.ENOMEM)
            self.assertGreater(len(mrs), 0)
        finally:
            for mr in mrs:
                mr.close()
        before = self.counters()
        self.reg(self.buf(size), size).close()
        self.assertEqual(self.counters()['misses'], before['misses'] + 1)


class InvalidationTest(MRCacheTestCase):
    """The kernel's word that cached memory changed, seen in the counters
    and, for registered MRs, through the async event queue."""

    def idle_entry(self, length):
        p = self.buf(length)
        self.reg(p, length).close()
        return p

    def check_idle_invalidated(self, before):
        after = self.counters()
        self.assertEqual(after['invalidations'] - before['invalidations'], 1)
        self.assertEqual(after['entries'], before['entries'] - 1)
        self.assertEqual(after['idle_entries'], before['idle_entries'] - 1)
        self.assertLess(after['tids_used'], before['tids_used'])
        self.assertLess(after['pinned_bytes'], before['pinned_bytes'])

    def test_idle_munmap(self):
        p = self.idle_entry(64 * 1024)
        before = self.counters()
        unmap(p, 64 * 1024)
        self.forget(p)
        self.reg(self.buf(PAGE), PAGE).close()   # any call drains
        before['entries'] += 1
        before['idle_entries'] += 1
        before['tids_used'] += 1
        before['pinned_bytes'] += PAGE
        self.check_idle_invalidated(before)

    def test_idle_madvise(self):
        for advice in (MADV_DONTNEED, MADV_FREE):
            with self.subTest(advice=advice):
                p = self.idle_entry(64 * 1024)
                before = self.counters()
                self.assertEqual(libc.madvise(p, 64 * 1024, advice), 0)
                self.assertEqual(
                    self.drained_counters()['invalidations'],
                    before['invalidations'] + 1)

    def test_idle_mremap(self):
        p = self.idle_entry(64 * 1024)
        before = self.counters()
        q = libc.mremap(p, 64 * 1024, 128 * 1024, MREMAP_MAYMOVE, None)
        self.assertNotEqual(q, MAP_FAILED)
        self.forget(p)
        self.maps.append((q, 128 * 1024))
        self.assertEqual(self.drained_counters()['invalidations'],
                         before['invalidations'] + 1)

    def test_idle_free(self):
        """free() of a large malloc() block unmaps it."""
        length = 4 * 1024 * 1024   # above glibc's mmap threshold
        p = libc.malloc(length)
        libc.memset(p, 1, length)
        self.reg(p, length).close()
        before = self.counters()
        libc.free(p)
        self.assertEqual(self.drained_counters()['invalidations'],
                         before['invalidations'] + 1)

    def mr_event(self, before):
        """
        The async event of an MR invalidated since @before. pyverbs'
        get_async_event() keeps the GIL while it blocks, so it is called
        only once the counters say the event was posted.
        """
        posted = wait_until(lambda: self.counters()['invalidated_in_use'] >
                            before['invalidated_in_use'])
        self.assertTrue(posted, 'no registered MR was invalidated')
        return get_async_event(self.ctx)

    def drained_counters(self):
        """Counters after the provider has surely applied what the driver
        reported: a registration elsewhere drains first."""
        q = self.buf(PAGE)
        self.reg(q, PAGE).close()
        return self.counters()

    def registered_invalidation(self, change):
        p = self.buf(64 * 1024)
        mr = self.reg(p, 64 * 1024, LW | RW)
        before = self.counters()
        change(p, 64 * 1024)
        ev = self.mr_event(before)
        self.assertIsNotNone(ev, 'no async event')
        self.assertEqual(ev.event_type, HFI1DV_EVENT_MR_INVALIDATED)
        ev.ack()
        after = self.counters()
        self.assertEqual(after['invalidated_in_use'],
                         before['invalidated_in_use'] + 1)
        # A registered, invalidated MR keeps its TIDs until dereg.
        self.assertEqual(after['tids_used'], before['tids_used'])
        mr.close()
        self.assertLess(self.counters()['tids_used'], before['tids_used'])

    def test_registered_munmap(self):
        def change(p, length):
            unmap(p, length)
            self.forget(p)
        self.registered_invalidation(change)

    def test_registered_madvise(self):
        self.registered_invalidation(
            lambda p, length: libc.madvise(p, length, MADV_DONTNEED))

    def test_registered_mremap(self):
        def change(p, length):
            q = libc.mremap(p, length, 2 * length, MREMAP_MAYMOVE, None)
            self.assertNotEqual(q, MAP_FAILED)
            self.forget(p)
            self.maps.append((q, 2 * length))
        self.registered_invalidation(change)

    def test_registered_free(self):
        length = 4 * 1024 * 1024
        p = libc.malloc(length)
        libc.memset(p, 1, length)
        mr = self.reg(p, length)
        before = self.counters()
        libc.free(p)
        ev = self.mr_event(before)
        self.assertIsNotNone(ev, 'no async event')
        self.assertEqual(ev.event_type, HFI1DV_EVENT_MR_INVALIDATED)
        ev.ack()
        mr.close()

    def test_reuse_after_mmap_fixed(self):
        """munmap, then mmap MAP_FIXED at the same address: a miss, never
        the old entry."""
        length = 64 * 1024
        p = self.idle_entry(length)
        unmap(p, length)
        q = map_anon(length, addr=p, fixed=True)
        self.assertEqual(q, p)
        before = self.counters()
        self.reg(p, length).close()
        d = self.delta(before, self.counters(), 'hits', 'misses')
        self.assertEqual(d, {'hits': 0, 'misses': 1})

    def test_reuse_after_free_malloc(self):
        length = 4 * 1024 * 1024
        p = libc.malloc(length)
        libc.memset(p, 1, length)
        self.reg(p, length).close()
        libc.free(p)
        q = libc.malloc(length)
        try:
            libc.memset(q, 2, length)
            before = self.counters()
            self.reg(q, length).close()
            d = self.delta(before, self.counters(), 'hits', 'misses')
            self.assertEqual(d, {'hits': 0, 'misses': 1})
        finally:
            libc.free(q)


MAX_MR = r'''
import ctypes, errno, mmap, sys
sys.path.insert(0, sys.argv[1])
from pyverbs.device import Context
from pyverbs.pd import PD
from pyverbs.mr import MR
from pyverbs.pyverbs_error import PyverbsRDMAError
import pyverbs.enums as e

PAGE = mmap.PAGESIZE
ctx = Context(name=sys.argv[2])
pd = PD(ctx)


def reg_until_error(addrs, length):
    mrs = []
    err = 0
    for a in addrs:
        try:
            mrs.append(MR(pd, length, e.IBV_ACCESS_LOCAL_WRITE, address=a))
        except PyverbsRDMAError as ex:
            err = ex.error_code
            break
    for mr in mrs:
        mr.close()
    return len(mrs), err


# 64-byte buffers in one page share one cache entry and one TID.
max_mr = ctx.query_device().max_mr
page = mmap.mmap(-1, PAGE)
base = ctypes.addressof(ctypes.c_char.from_buffer(page))
n, err = reg_until_error(
    (base + i % (PAGE // 64) * 64 for i in range(max_mr + 1)), 64)
print(max_mr, n, err, flush=True)

# A page each: an entry, a TID each.
tids = int(sys.argv[3])
pages = mmap.mmap(-1, (tids + 1) * PAGE)
base = ctypes.addressof(ctypes.c_char.from_buffer(pages))
n, err = reg_until_error((base + i * PAGE for i in range(tids + 1)), PAGE)
print(tids, n, err, flush=True)
'''


class MaxMRTest(MRCacheTestCase):
    """max_mr, and the TIDs that bound MRs over distinct memory."""

    def test_max_mr_and_tids(self):
        """max_mr MRs sharing one cache entry register and one more is
        ENOMEM; MRs of a page each stop at expected_count with ENOMEM; each
        limit logs one line that names it."""
        tids = self.soft_param('expected_count')
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, 'verbs.log')
            env = dict(os.environ, VERBS_LOG_LEVEL='3', VERBS_LOG_FILE=log,
                       HFI1_STATS_DIR=tmp)
            res = subprocess.run(['/usr/bin/python3', '-c', MAX_MR, HERE,
                                  self.dev_name, str(tids)],
                                 capture_output=True, text=True, env=env,
                                 timeout=300)
            with open(log) as f:
                logged = f.read()
        self.assertEqual(res.returncode, 0, res.stderr)
        lines = res.stdout.split('\n')
        max_mr, n, err = map(int, lines[0].split())
        self.assertEqual(max_mr, self.ctx.query_device().max_mr)
        self.assertEqual((n, err), (max_mr, errno.ENOMEM))
        self.assertEqual(logged.count('out of MRs'), 1, logged)
        self.assertIn(f'all {max_mr} MR keys', logged)
        self.assertEqual(list(map(int, lines[1].split())),
                         [tids, tids, errno.ENOMEM])
        self.assertEqual(logged.count('out of expected-receive TIDs'), 1,
                         logged)
        self.assertIn(f"out of expected-receive TIDs: {tids} of this "
                      f"context's {tids} are held by cached registrations, "
                      f"0 by this one", logged)


NOBODY_MEMLOCK = r'''
import ctypes, errno, mmap, os, resource, sys
sys.path.insert(0, sys.argv[1])
from pyverbs.device import Context
from pyverbs.pd import PD
from pyverbs.mr import MR
from pyverbs.pyverbs_error import PyverbsRDMAError
import pyverbs.enums as e

ctx = Context(name="hfi1_0")
pd = PD(ctx)
size = 256 * 1024
bufs = [mmap.mmap(-1, size) for _ in range(64)]
for b in bufs:
    b.write(b'x' * size)
addrs = [ctypes.addressof(ctypes.c_char.from_buffer(b)) for b in bufs]
mrs = []
err = None
for a in addrs:
    try:
        mrs.append(MR(pd, size, e.IBV_ACCESS_LOCAL_WRITE, address=a))
    except PyverbsRDMAError as ex:
        err = ex.error_code
        break
print(len(mrs), err, flush=True)
for mr in mrs:
    mr.close()
# The pins of idle entries are evicted to make room: it works again.
mr = MR(pd, size, e.IBV_ACCESS_LOCAL_WRITE, address=addrs[-1])
mr.close()
print("recovered", flush=True)
'''


class MemlockTest(MRCacheTestCase):
    """RLIMIT_MEMLOCK as a user without CAP_IPC_LOCK."""

    def test_nobody_memlock(self):
        """A context may pin its share of RLIMIT_MEMLOCK: one more MR is
        ENOMEM, with one log line that names the share and its figures."""
        if os.geteuid() != 0 or not shutil.which('setpriv'):
            self.skipTest('needs root and setpriv to switch to nobody')
        user_contexts = self.soft_param('user_contexts')
        limit = 2 * 1024 * 1024
        share = limit // PAGE // user_contexts // 4 * PAGE
        cmd = ['prlimit', f'--memlock={limit}:{limit}', 'setpriv',
               '--reuid=nobody', '--regid=nogroup', '--clear-groups',
               '/usr/bin/python3', '-c', NOBODY_MEMLOCK, HERE]
        with tempfile.TemporaryDirectory() as tmp:
            os.chmod(tmp, 0o777)
            # Where nobody may write the provider's log lines.
            log = os.path.join(tmp, 'verbs.log')
            env = dict(os.environ, VERBS_LOG_LEVEL='3', VERBS_LOG_FILE=log,
                       HFI1_STATS_DIR=tmp)
            res = subprocess.run(cmd, capture_output=True, text=True,
                                 cwd='/', env=env, timeout=120)
            logged = ''
            if os.path.exists(log):
                with open(log) as f:
                    logged = f.read()
        self.assertEqual(res.returncode, 0, res.stderr)
        count, err = res.stdout.split('\n')[0].split()
        self.assertEqual(int(err), errno.ENOMEM, res.stdout + res.stderr)
        self.assertGreater(int(count), 0)
        self.assertLess(int(count) * 256 * 1024, limit)
        self.assertEqual(logged.count('out of pinnable memory'), 1, logged)
        self.assertIn(f"this context's share of RLIMIT_MEMLOCK is {share} "
                      f"bytes (RLIMIT_MEMLOCK {limit} / {user_contexts} user "
                      f"contexts / 4)", logged)
        self.assertIn('recovered', res.stdout)


if __name__ == '__main__':
    unittest.main()
