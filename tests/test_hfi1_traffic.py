# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
"""
Traffic on libhfi1 over the soft HFI, in the manner of rdma-core's
tests/test_qp.py, test_atomic.py, test_qpex.py, test_cqex.py and
test_cq_events.py: RC, UC and UD between hfi1_0 and hfi1_1 (two "hosts")
and in loopback on hfi1_0, every opcode hfi1 serves, through ibv_post_send
and the extended send API (ibv_wr_*), polled with ibv_poll_cq and the
extended poll API, with completion events; the errors an HCA reports:
bad keys, RNR, flush, a peer that dies, a CQ overrun; and the data
counters of each context (hfi1_mrstat), which move by what was sent,
received and placed.

Every payload is checked byte for byte, and every completion's status,
opcode, wr_id, byte_len, immediate, QP numbers and flags.
"""
import ctypes
import errno
import json
import mmap
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

import hfi1_base
from hfi1_base import (HFI1_MRSTAT, Hfi1TestCase, INIT_MASK, RTR_MASK,
                       RTS_MASK, get_async_event, is_hfi1_dev, mrstat,
                       wait_until)

from pyverbs.addr import AH, AHAttr, GlobalRoute
from pyverbs.cq import CQ, CQEX, CompChannel, CqInitAttrEx, PollCqAttr
from pyverbs.device import Context
from pyverbs.mr import MR
from pyverbs.pd import PD
from pyverbs.pyverbs_error import PyverbsRDMAError
from pyverbs.qp import QP, QPAttr, QPCap, QPEx, QPInitAttr, QPInitAttrEx
from pyverbs.wr import RecvWR, SendWR, SGE
import pyverbs.enums as e

HERE = os.path.dirname(os.path.abspath(__file__))
POLL_TIMEOUT = 5.0
MR_SIZE = 4 << 20
GRH_SIZE = 40
QKEY = 0x11111111
IMM = 0x12345678
MAX_INLINE = 64
ACCESS = e.IBV_ACCESS_LOCAL_WRITE | e.IBV_ACCESS_REMOTE_WRITE | \
    e.IBV_ACCESS_REMOTE_READ | e.IBV_ACCESS_REMOTE_ATOMIC

SEND_OPS = {
    e.IBV_QPT_RC: e.IBV_QP_EX_WITH_SEND | e.IBV_QP_EX_WITH_SEND_WITH_IMM |
    e.IBV_QP_EX_WITH_RDMA_WRITE | e.IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
    e.IBV_QP_EX_WITH_RDMA_READ | e.IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
    e.IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD,
    e.IBV_QPT_UC: e.IBV_QP_EX_WITH_SEND | e.IBV_QP_EX_WITH_SEND_WITH_IMM |
    e.IBV_QP_EX_WITH_RDMA_WRITE | e.IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM,
    e.IBV_QPT_UD: e.IBV_QP_EX_WITH_SEND | e.IBV_QP_EX_WITH_SEND_WITH_IMM,
}
CQEX_FLAGS = e.IBV_WC_EX_WITH_BYTE_LEN | e.IBV_WC_EX_WITH_IMM | \
    e.IBV_WC_EX_WITH_QP_NUM | e.IBV_WC_EX_WITH_SRC_QP | \
    e.IBV_WC_EX_WITH_SLID | e.IBV_WC_EX_WITH_SL | \
    e.IBV_WC_EX_WITH_DLID_PATH_BITS


def timeout_secs(timeout, retry_cnt):
    """How long IB's requester may take to give up: retry_cnt + 1 waits of
    4.096 us * 2^timeout."""
    return 4.096e-6 * (1 << timeout) * (retry_cnt + 1)


def gid_bytes(gid):
    """The 16 bytes of a pyverbs GID."""
    return bytes.fromhex(gid.gid.replace(':', ''))


def sockets():
    """The sockets this process has open: 'socket:[inode]' strings."""
    found = set()
    for fd in open_fds():
        try:
            target = os.readlink(f'/proc/self/fd/{fd}')
        except OSError:
            continue
        if target.startswith('socket:'):
            found.add(target)
    return found


def open_fds():
    """The fds open in this process (not the one listdir opens)."""
    return {int(fd) for fd in os.listdir('/proc/self/fd')
            if os.path.exists(f'/proc/self/fd/{fd}')}


class Side:
    """
    One end of a connection, in the manner of rdma-core's TrafficResources:
    a PD, a CQ (a CQEX when asked, with a completion channel when asked), an
    MR of MR_SIZE bytes open to every access, and a QP (a QPEx when
    send_ops are given) on @ctx.
    """

    def __init__(self, ctx, qp_type, sq_sig_all=1, send_ops=None,
                 cqex=False, channel=False, cqe=256, max_send_wr=64,
                 max_recv_wr=64):
        self.ctx = ctx
        self.qp_type = qp_type
        self.lid = ctx.query_port(1).lid
        self.gid = ctx.query_gid(1, 0)
        self.pd = PD(ctx)
        self.channel = None
        if channel:
            before = open_fds()
            self.channel = CompChannel(ctx)
            # pyverbs does not give the channel's fd: it is the socket
            # that CompChannel opened.
            self.channel_fds = [
                fd for fd in open_fds() - before
                if os.readlink(f'/proc/self/fd/{fd}').startswith('socket:')]
        if cqex:
            self.cq = CQEX(ctx, CqInitAttrEx(
                cqe=cqe, wc_flags=CQEX_FLAGS,
                comp_mask=e.IBV_CQ_INIT_ATTR_MASK_FLAGS))
        else:
            self.cq = CQ(ctx, cqe, None, self.channel, 0)
        self.mr = MR(self.pd, MR_SIZE, ACCESS)
        cap = QPCap(max_send_wr=max_send_wr, max_recv_wr=max_recv_wr,
                    max_send_sge=4, max_recv_sge=4,
                    max_inline_data=MAX_INLINE)
        if send_ops is None:
            self.qp = QP(self.pd, QPInitAttr(
                qp_type=qp_type, scq=self.cq, rcq=self.cq, cap=cap,
                sq_sig_all=sq_sig_all))
        else:
            self.qp = QPEx(ctx, QPInitAttrEx(
                qp_type=qp_type, scq=self.cq, rcq=self.cq, cap=cap,
                pd=self.pd, sq_sig_all=sq_sig_all, send_ops_flags=send_ops,
                comp_mask=e.IBV_QP_INIT_ATTR_PD |
                e.IBV_QP_INIT_ATTR_SEND_OPS_FLAGS))

    @property
    def qpn(self):
        return self.qp.qp_num

    @property
    def addr(self):
        return self.mr.buf

    def sge(self, offset, length):
        """An SGE for [offset, offset + length) of the MR."""
        return SGE(self.mr.buf + offset, length, self.mr.lkey)

    def write(self, data, offset=0):
        self.mr.write(data, len(data), offset)

    def read(self, length, offset=0):
        return self.mr.read(length, offset)

    def to_rts(self, peer_lid, peer_qpn, rnr_retry=7, retry_cnt=7,
               timeout=14, min_rnr_timer=1):
        """RESET -> INIT -> RTR -> RTS towards (peer_lid, peer_qpn)."""
        qpt = self.qp_type
        a = QPAttr(port_num=1)
        a.pkey_index = 0
        a.qkey = QKEY
        a.qp_access_flags = e.IBV_ACCESS_REMOTE_WRITE if \
            qpt == e.IBV_QPT_UC else ACCESS & ~e.IBV_ACCESS_LOCAL_WRITE
        a.path_mtu = e.IBV_MTU_4096
        a.ah_attr = AHAttr(dlid=peer_lid, port_num=1)
        a.dest_qp_num = peer_qpn
        a.rq_psn = 0
        a.sq_psn = 0
        a.max_dest_rd_atomic = 4
        a.max_rd_atomic = 4
        a.min_rnr_timer = min_rnr_timer
        a.timeout = timeout
        a.retry_cnt = retry_cnt
        a.rnr_retry = rnr_retry
        for state, masks in ((e.IBV_QPS_INIT, INIT_MASK),
                             (e.IBV_QPS_RTR, RTR_MASK),
                             (e.IBV_QPS_RTS, RTS_MASK)):
            a.qp_state = state
            self.qp.modify(a, masks[qpt])

    def post_recv(self, wr_id, *sges):
        """A receive WR of @sges (one SGE over the whole MR if none)."""
        sges = sges or (self.sge(0, MR_SIZE),)
        self.qp.post_recv(RecvWR(wr_id=wr_id, num_sge=len(sges),
                                 sg=list(sges)))

    def state(self):
        attr, _ = self.qp.query(e.IBV_QP_STATE)
        return attr.qp_state


def send_wr(wr_id, opcode, sges, flags=e.IBV_SEND_SIGNALED, imm=None,
            rdma=None, atomic=None, ud=None):
    """
    A SendWR. @rdma: (rkey, addr); @atomic: (rkey, addr, compare_add,
    swap); @ud: (ah, qpn); @sges may be empty (num_sge 0).
    """
    wr = SendWR(wr_id=wr_id, opcode=opcode, send_flags=flags,
                num_sge=max(len(sges), 1),
                sg=list(sges) or [SGE(0, 0, 0)])
    if not sges:
        wr.num_sge = 0
    if imm is not None:
        wr.imm_data = socket.htonl(imm)
    if rdma:
        wr.set_wr_rdma(*rdma)
    if atomic:
        wr.set_wr_atomic(*atomic)
    if ud:
        wr.set_wr_ud(ud[0], ud[1], QKEY)
    return wr


def poll(cq, count=1, timeout=POLL_TIMEOUT):
    """@count completions from @cq, within @timeout seconds."""
    wcs = []
    end = time.monotonic() + timeout
    while len(wcs) < count:
        n, got = cq.poll(count - len(wcs))
        wcs.extend(got[:n])
        if not n:
            if time.monotonic() > end:
                raise AssertionError(
                    f'{len(wcs)} of {count} completions within {timeout} s')
            time.sleep(0.0002)
    return wcs


def assert_cq_empty(test, cq, wait=0.1):
    """Nothing more comes to @cq within @wait seconds."""
    time.sleep(wait)
    n, wcs = cq.poll(1)
    test.assertEqual(n, 0, f'unexpected completion: wr_id '
                     f'{wcs[0].wr_id if n else None} status '
                     f'{wcs[0].status if n else None}')


def poll_ex(cq, count=1, timeout=POLL_TIMEOUT):
    """
    @count completions from the CQEX @cq through start_poll, next_poll and
    end_poll, each as a dict of what the read_* accessors give. A poll
    that next_poll finds empty is ended, and a new one started.
    """
    out = []
    end = time.monotonic() + timeout
    while len(out) < count:
        ret = cq.start_poll(PollCqAttr())
        if ret == errno.ENOENT:
            if time.monotonic() > end:
                raise AssertionError(f'{len(out)} of {count} completions '
                                     f'within {timeout} s')
            time.sleep(0.0002)
            continue
        if ret:
            raise PyverbsRDMAError('start_poll failed', ret)
        try:
            while ret == 0:
                wc = dict(wr_id=cq.wr_id, status=cq.status,
                          opcode=cq.read_opcode(),
                          byte_len=cq.read_byte_len(),
                          qp_num=cq.read_qp_num(), src_qp=cq.read_src_qp(),
                          slid=cq.read_slid(), flags=cq.read_wc_flags())
                if wc['flags'] & e.IBV_WC_WITH_IMM:
                    wc['imm'] = socket.ntohl(cq.read_imm_data())
                out.append(wc)
                if len(out) == count:
                    break
                ret = cq.poll_next()
            if ret not in (0, errno.ENOENT):
                raise PyverbsRDMAError('poll_next failed', ret)
        finally:
            cq.end_poll()
    return out


class TrafficTestCase(Hfi1TestCase):
    """
    A second context: on hfi1_1 (two "hosts"), or hfi1_0 again in loopback
    (self.loopback), where both ends share one context.
    """
    loopback = False

    def setUp(self):
        super().setUp()
        if self.loopback:
            self.ctx1 = self.ctx
        else:
            if not is_hfi1_dev('hfi1_1'):
                self.skipTest('hfi1_1 is not up')
            self.ctx1 = Context(name='hfi1_1')

    def tearDown(self):
        if not self.loopback and getattr(self, 'ctx1', None):
            self.ctx1.close()
        super().tearDown()

    def pair(self, qp_type, a_kw=None, b_kw=None, **rts):
        """Side a on hfi1_0 and side b on the other context, in RTS."""
        a = Side(self.ctx, qp_type, **(a_kw or {}))
        b = Side(self.ctx1, qp_type, **(b_kw or {}))
        a.to_rts(b.lid, b.qpn, **rts)
        b.to_rts(a.lid, a.qpn, **rts)
        return a, b

    def ud_ah(self, src, dst, is_global=False):
        """An AH on @src's PD towards @dst, global (GRH) if asked."""
        if is_global:
            gr = GlobalRoute(dgid=dst.gid, sgid_index=0)
            return AH(src.pd, attr=AHAttr(dlid=dst.lid, port_num=1,
                                          is_global=1, gr=gr))
        return AH(src.pd, attr=AHAttr(dlid=dst.lid, port_num=1))

    def check_wc(self, wc, wr_id, opcode, status=e.IBV_WC_SUCCESS,
                 byte_len=None, qp_num=None, imm=None, src_qp=None,
                 slid=None, flags=None):
        """One work completion's fields, as IB defines them."""
        what = f'wr_id {wc.wr_id} status {wc.status}'
        self.assertEqual(wc.status, status, what)
        self.assertEqual(wc.wr_id, wr_id, what)
        if status != e.IBV_WC_SUCCESS:
            if qp_num is not None:
                self.assertEqual(wc.qp_num, qp_num, what)
            return
        self.assertEqual(wc.opcode, opcode, what)
        if byte_len is not None:
            self.assertEqual(wc.byte_len, byte_len, what)
        if qp_num is not None:
            self.assertEqual(wc.qp_num, qp_num, what)
        if imm is None:
            self.assertFalse(wc.wc_flags & e.IBV_WC_WITH_IMM, what)
        else:
            self.assertTrue(wc.wc_flags & e.IBV_WC_WITH_IMM, what)
            self.assertEqual(socket.ntohl(wc.imm_data), imm, what)
        if src_qp is not None:
            self.assertEqual(wc.src_qp, src_qp, what)
        if slid is not None:
            self.assertEqual(wc.slid, slid, what)
        if flags is not None:
            self.assertEqual(wc.wc_flags & ~e.IBV_WC_WITH_IMM, flags, what)


class TrafficTests:
    """The data moving tests, run between two devices and in loopback."""

    def _send(self, qp_type, length):
        a, b = self.pair(qp_type)
        ah = self.ud_ah(a, b) if qp_type == e.IBV_QPT_UD else None
        ud = (ah, b.qpn) if ah else None
        off = GRH_SIZE if qp_type == e.IBV_QPT_UD else 0
        for i, imm in enumerate((None, IMM)):
            data = os.urandom(length)
            a.write(data)
            b.write(b'\0' * (length + off))
            b.post_recv(100 + i, b.sge(0, length + off))
            op = e.IBV_WR_SEND if imm is None else e.IBV_WR_SEND_WITH_IMM
            a.qp.post_send(send_wr(i, op, [a.sge(0, length)], imm=imm,
                                   ud=ud))
            self.check_wc(poll(a.cq)[0], i, e.IBV_WC_SEND, qp_num=a.qpn)
            wc = poll(b.cq)[0]
            self.check_wc(wc, 100 + i, e.IBV_WC_RECV,
                          byte_len=length + off, qp_num=b.qpn, imm=imm,
                          src_qp=a.qpn if ud else None,
                          slid=a.lid if ud else None,
                          flags=0 if ud else None)
            self.assertEqual(b.read(length, off), data)
        assert_cq_empty(self, a.cq, 0)
        assert_cq_empty(self, b.cq, 0)

    def test_rc_send(self):
        """RC SEND and SEND_WITH_IMM of 3 MiB (several packets)."""
        self._send(e.IBV_QPT_RC, 3 << 20)

    def test_uc_send(self):
        """UC SEND and SEND_WITH_IMM of 3 MiB (several packets)."""
        self._send(e.IBV_QPT_UC, 3 << 20)

    def test_ud_send(self):
        """UD SEND and SEND_WITH_IMM of 4096 bytes: the receive counts the
        40 bytes of GRH room, the data lands after it, src_qp and slid
        name the sender, and no GRH flag without a global AH."""
        self._send(e.IBV_QPT_UD, 4096)

    def _write(self, qp_type):
        a, b = self.pair(qp_type)
        length = 3 << 20
        data = os.urandom(length)
        a.write(data)
        a.qp.post_send(send_wr(1, e.IBV_WR_RDMA_WRITE, [a.sge(0, length)],
                               rdma=(b.mr.rkey, b.addr + 4096)))
        self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_RDMA_WRITE, qp_num=a.qpn)
        # With immediate: a receive completes, and since messages land
        # in order, the WRITE before it has landed too (UC has no ACK).
        imm_data = os.urandom(8192)
        a.write(imm_data, length)
        b.post_recv(7, b.sge(0, 0))
        a.qp.post_send(send_wr(2, e.IBV_WR_RDMA_WRITE_WITH_IMM,
                               [a.sge(length, 8192)], imm=IMM,
                               rdma=(b.mr.rkey, b.addr + 3 * 4096 + length)))
        self.check_wc(poll(a.cq)[0], 2, e.IBV_WC_RDMA_WRITE, qp_num=a.qpn)
        self.check_wc(poll(b.cq)[0], 7, e.IBV_WC_RECV_RDMA_WITH_IMM,
                      byte_len=8192, qp_num=b.qpn, imm=IMM)
        self.assertEqual(b.read(4096), b'\0' * 4096)
        self.assertEqual(b.read(length, 4096), data)
        self.assertEqual(b.read(8192, 3 * 4096 + length), imm_data)

    def test_rc_write(self):
        """RC RDMA_WRITE of 3 MiB and RDMA_WRITE_WITH_IMM."""
        self._write(e.IBV_QPT_RC)

    def test_uc_write(self):
        """UC RDMA_WRITE of 3 MiB and RDMA_WRITE_WITH_IMM."""
        self._write(e.IBV_QPT_UC)

    def test_rc_read(self):
        """RC RDMA_READ of 1 MiB + 1005 bytes scattered into three SGEs:
        the local SGE list gives the length."""
        a, b = self.pair(e.IBV_QPT_RC)
        length = (1 << 20) + 1005
        data = os.urandom(length)
        b.write(data, 100)
        a.write(b'\xff' * ((2 << 20) + 4096))
        sges = [a.sge(0, 1000), a.sge(4096, 1 << 20), a.sge(2 << 20, 5)]
        a.qp.post_send(send_wr(3, e.IBV_WR_RDMA_READ, sges,
                               rdma=(b.mr.rkey, b.addr + 100)))
        self.check_wc(poll(a.cq)[0], 3, e.IBV_WC_RDMA_READ,
                      byte_len=length, qp_num=a.qpn)
        self.assertEqual(a.read(1000), data[:1000])
        self.assertEqual(a.read(1 << 20, 4096), data[1000:1000 + (1 << 20)])
        self.assertEqual(a.read(5, 2 << 20), data[1000 + (1 << 20):])
        self.assertEqual(a.read(1, (2 << 20) + 5), b'\xff')
        assert_cq_empty(self, b.cq, 0)

    def test_rc_atomics(self):
        """ATOMIC_CMP_AND_SWP (matching and not) and ATOMIC_FETCH_AND_ADD:
        the original value comes back, the new one is in place."""
        a, b = self.pair(e.IBV_QPT_RC)
        q = struct.Struct('<Q')
        b.write(q.pack(0x1122334455667788), 64)
        steps = (
            # opcode, compare_add, swap, original, value after
            (e.IBV_WR_ATOMIC_CMP_AND_SWP, 0x1122334455667788, 0xabcdef,
             0x1122334455667788, 0xabcdef),
            (e.IBV_WR_ATOMIC_CMP_AND_SWP, 5, 6, 0xabcdef, 0xabcdef),
            (e.IBV_WR_ATOMIC_FETCH_AND_ADD, 0x10, 0, 0xabcdef, 0xabcdff),
            (e.IBV_WR_ATOMIC_FETCH_AND_ADD, (1 << 64) - 0xabcdff, 0,
             0xabcdff, 0),
        )
        for i, (op, cmp_add, swap, orig, after) in enumerate(steps):
            a.write(b'\xee' * 16, 8)
            a.qp.post_send(send_wr(i, op, [a.sge(8, 8)],
                                   atomic=(b.mr.rkey, b.addr + 64,
                                           cmp_add, swap)))
            wc_op = e.IBV_WC_COMP_SWAP if \
                op == e.IBV_WR_ATOMIC_CMP_AND_SWP else e.IBV_WC_FETCH_ADD
            self.check_wc(poll(a.cq)[0], i, wc_op, byte_len=8,
                          qp_num=a.qpn)
            self.assertEqual(q.unpack(a.read(8, 8))[0], orig, f'step {i}')
            self.assertEqual(a.read(8, 16), b'\xee' * 8)
            self.assertEqual(q.unpack(b.read(8, 64))[0], after, f'step {i}')

    def _inline(self, qp_type):
        a, b = self.pair(qp_type)
        ah = self.ud_ah(a, b) if qp_type == e.IBV_QPT_UD else None
        off = GRH_SIZE if ah else 0
        data = os.urandom(MAX_INLINE)
        a.write(data)
        b.post_recv(1, b.sge(0, 4096))
        # Two SGEs, copied at post time: the buffer may change at once.
        a.qp.post_send(send_wr(1, e.IBV_WR_SEND, [a.sge(0, 10),
                                                  a.sge(10, MAX_INLINE - 10)],
                               flags=e.IBV_SEND_SIGNALED |
                               e.IBV_SEND_INLINE,
                               ud=(ah, b.qpn) if ah else None))
        a.write(b'\0' * MAX_INLINE)
        self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 1, e.IBV_WC_RECV,
                      byte_len=MAX_INLINE + off)
        self.assertEqual(b.read(MAX_INLINE, off), data)
        if qp_type == e.IBV_QPT_UD:
            return
        a.write(data)
        b.post_recv(2, b.sge(0, 0))
        a.qp.post_send(send_wr(2, e.IBV_WR_RDMA_WRITE_WITH_IMM,
                               [a.sge(0, MAX_INLINE)], imm=IMM,
                               flags=e.IBV_SEND_SIGNALED |
                               e.IBV_SEND_INLINE,
                               rdma=(b.mr.rkey, b.addr + 8192)))
        a.write(b'\0' * MAX_INLINE)
        self.check_wc(poll(a.cq)[0], 2, e.IBV_WC_RDMA_WRITE)
        self.check_wc(poll(b.cq)[0], 2, e.IBV_WC_RECV_RDMA_WITH_IMM,
                      byte_len=MAX_INLINE, imm=IMM)
        self.assertEqual(b.read(MAX_INLINE, 8192), data)

    def test_inline(self):
        """IBV_SEND_INLINE on RC, UC and UD: SEND from two SGEs and RDMA
        WRITE with immediate; the data is taken when posted."""
        for qp_type in (e.IBV_QPT_RC, e.IBV_QPT_UC, e.IBV_QPT_UD):
            with self.subTest(qp_type=qp_type):
                self._inline(qp_type)

    def test_inline_sent_again(self):
        """Inline data that went out at once, from where it was posted, is
        the posted data when an RNR NAK has it sent again, though the
        buffer changed after the post."""
        a, b = self.pair(e.IBV_QPT_RC, rnr_retry=7)
        data = os.urandom(MAX_INLINE)
        a.write(data)
        a.qp.post_send(send_wr(1, e.IBV_WR_SEND, [a.sge(0, MAX_INLINE)],
                               flags=e.IBV_SEND_SIGNALED |
                               e.IBV_SEND_INLINE))
        a.write(b'\0' * MAX_INLINE)
        time.sleep(0.3)  # RNR NAKed, and sent again, more than once
        assert_cq_empty(self, a.cq, 0)
        b.post_recv(2, b.sge(0, 4096))
        self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 2, e.IBV_WC_RECV, byte_len=MAX_INLINE)
        self.assertEqual(b.read(MAX_INLINE), data)

    def _inline_fault(self, qp_type, hole):
        a, b = self.pair(qp_type)
        ah = self.ud_ah(a, b) if qp_type == e.IBV_QPT_UD else None
        ud = (ah, b.qpn) if ah else None
        flags = e.IBV_SEND_SIGNALED | e.IBV_SEND_INLINE
        for wr_id in range(1, 4):
            with self.assertRaises(PyverbsRDMAError) as cm:
                a.qp.post_send(send_wr(wr_id, e.IBV_WR_SEND,
                                       [a.sge(0, 8), SGE(hole, 8, 0)],
                                       flags=flags, ud=ud))
            self.assertEqual(cm.exception.error_code, errno.EFAULT)
        self.assertEqual(a.state(), e.IBV_QPS_RTS)
        a.write(b'inline-8')
        b.post_recv(5, b.sge(0, 4096))
        a.qp.post_send(send_wr(4, e.IBV_WR_SEND, [a.sge(0, 8)], flags=flags,
                               ud=ud))
        off = GRH_SIZE if ah else 0
        self.check_wc(poll(a.cq)[0], 4, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 5, e.IBV_WC_RECV, byte_len=8 + off)
        self.assertEqual(b.read(8, off), b'inline-8')
        assert_cq_empty(self, a.cq, 0)
        assert_cq_empty(self, b.cq, 0)

    def test_inline_fault(self):
        """An inline SGE that cannot be read is EFAULT from the post, on RC,
        UC and UD, and nothing of it goes out: the QP goes on."""
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mmap.restype = ctypes.c_void_p
        libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                              ctypes.c_int, ctypes.c_int, ctypes.c_long]
        libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
        # Kept mapped, unreadable: an unmapped page could be mapped again.
        hole = libc.mmap(None, mmap.PAGESIZE, 0,
                         mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS, -1, 0)
        self.assertNotEqual(hole, ctypes.c_void_p(-1).value)
        self.addCleanup(libc.munmap, hole, mmap.PAGESIZE)
        for qp_type in (e.IBV_QPT_RC, e.IBV_QPT_UC, e.IBV_QPT_UD):
            with self.subTest(qp_type=qp_type):
                self._inline_fault(qp_type, hole)

    def _sgl(self, qp_type):
        a, b = self.pair(qp_type)
        ah = self.ud_ah(a, b) if qp_type == e.IBV_QPT_UD else None
        off = GRH_SIZE if ah else 0
        lens = (100, 3000, 1, 900) if ah else (100, 70000, 1, 5000)
        length = sum(lens)
        data = os.urandom(length)
        sges, pos = [], 0
        for i, n in enumerate(lens):
            a.write(data[pos:pos + n], i * 131072)
            sges.append(a.sge(i * 131072, n))
            pos += n
        b.write(b'\0' * (1 << 20))
        # Three receive SGEs: [0, off + 50) [4096, +2000) [65536, +rest)
        first = off + 50
        rest = length - 50 - 2000
        b.post_recv(9, b.sge(0, first), b.sge(4096, 2000),
                    b.sge(65536, rest + 10))
        a.qp.post_send(send_wr(9, e.IBV_WR_SEND, sges,
                               ud=(ah, b.qpn) if ah else None))
        self.check_wc(poll(a.cq)[0], 9, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 9, e.IBV_WC_RECV,
                      byte_len=length + off)
        got = b.read(50, off) + b.read(2000, 4096) + b.read(rest, 65536)
        self.assertEqual(got, data)
        self.assertEqual(b.read(10, 65536 + rest), b'\0' * 10)
        if ah:
            return
        # RDMA WRITE gathers the same list.
        a.qp.post_send(send_wr(10, e.IBV_WR_RDMA_WRITE, sges,
                               rdma=(b.mr.rkey, b.addr + (2 << 20))))
        self.check_wc(poll(a.cq)[0], 10, e.IBV_WC_RDMA_WRITE)
        # A SEND after it: once it is received, the WRITE has landed.
        b.post_recv(11, b.sge(0, 16))
        a.qp.post_send(send_wr(11, e.IBV_WR_SEND, []))
        self.check_wc(poll(a.cq)[0], 11, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 11, e.IBV_WC_RECV, byte_len=0)
        self.assertEqual(b.read(length, 2 << 20), data)

    def test_sgl(self):
        """Several SGEs gathered by SEND and RDMA WRITE and scattered over
        several receive SGEs, on RC, UC and UD."""
        for qp_type in (e.IBV_QPT_RC, e.IBV_QPT_UC, e.IBV_QPT_UD):
            with self.subTest(qp_type=qp_type):
                self._sgl(qp_type)

    def test_unsignaled(self):
        """With sq_sig_all 0 only WRs with IBV_SEND_SIGNALED complete; with
        sq_sig_all 1 every WR completes, flag or not. RC, UC and UD."""
        for qp_type in (e.IBV_QPT_RC, e.IBV_QPT_UC, e.IBV_QPT_UD):
            for sig_all in (0, 1):
                with self.subTest(qp_type=qp_type, sq_sig_all=sig_all):
                    a, b = self.pair(qp_type, a_kw=dict(sq_sig_all=sig_all))
                    ah = self.ud_ah(a, b) if qp_type == e.IBV_QPT_UD \
                        else None
                    for i in range(6):
                        b.post_recv(i, b.sge(i * 4096, 4096))
                    for i in range(6):
                        a.write(bytes([i + 1]) * 100, i * 4096)
                        flags = e.IBV_SEND_SIGNALED if i in (2, 5) else 0
                        a.qp.post_send(send_wr(
                            i, e.IBV_WR_SEND, [a.sge(i * 4096, 100)],
                            flags=flags, ud=(ah, b.qpn) if ah else None))
                    for i, wc in enumerate(poll(b.cq, 6)):
                        self.check_wc(wc, i, e.IBV_WC_RECV)
                    want = range(6) if sig_all else (2, 5)
                    wcs = poll(a.cq, len(want))
                    self.assertEqual([wc.wr_id for wc in wcs], list(want))
                    for i, wc in zip(want, wcs):
                        self.check_wc(wc, i, e.IBV_WC_SEND)
                    assert_cq_empty(self, a.cq)
                    off = GRH_SIZE if ah else 0
                    for i in range(6):
                        self.assertEqual(b.read(100, i * 4096 + off),
                                         bytes([i + 1]) * 100)

    def _solicited(self, qp_type):
        # pyverbs' get_cq_event() blocks holding the GIL: wait for the
        # channel's fd with select() before calling it.
        a, b = self.pair(qp_type, b_kw=dict(channel=True))
        self.assertTrue(b.channel_fds)

        def event_ready(wait):
            ready, _, _ = select.select(b.channel_fds, [], [], wait)
            return bool(ready)

        ah = self.ud_ah(a, b) if qp_type == e.IBV_QPT_UD else None
        ud = (ah, b.qpn) if ah else None
        for i in range(4):
            b.post_recv(i, b.sge(i * 4096, 4096))
        b.cq.req_notify(solicited_only=True)
        # Not solicited: completes without an event.
        a.qp.post_send(send_wr(0, e.IBV_WR_SEND, [a.sge(0, 8)], ud=ud))
        a.qp.post_send(send_wr(1, e.IBV_WR_SEND_WITH_IMM, [a.sge(0, 8)],
                               imm=1, ud=ud))
        poll(a.cq, 2)
        wcs = poll(b.cq, 2)
        self.assertFalse(event_ready(0.2), 'an event for an unsolicited '
                         'completion')
        # Solicited: an event.
        a.qp.post_send(send_wr(2, e.IBV_WR_SEND_WITH_IMM, [a.sge(0, 8)],
                               imm=2, ud=ud, flags=e.IBV_SEND_SIGNALED |
                               e.IBV_SEND_SOLICITED))
        self.assertTrue(event_ready(POLL_TIMEOUT), 'no event for a '
                        'solicited completion')
        b.channel.get_cq_event(b.cq)
        b.cq.ack_events(1)
        wcs += poll(b.cq)
        for i, wc in enumerate(wcs):
            self.check_wc(wc, i, e.IBV_WC_RECV, imm=i if i else None)
        self.assertFalse(event_ready(0), 'a second event')
        # Armed for any completion, a plain SEND raises the next event.
        b.cq.req_notify()
        a.qp.post_send(send_wr(3, e.IBV_WR_SEND, [a.sge(0, 8)], ud=ud))
        self.assertTrue(event_ready(POLL_TIMEOUT), 'no event')
        b.channel.get_cq_event(b.cq)
        b.cq.ack_events(1)
        self.check_wc(poll(b.cq)[0], 3, e.IBV_WC_RECV)
        poll(a.cq, 2)

    def test_solicited(self):
        """A CQ armed with req_notify(solicited_only) and a completion
        channel: events for IBV_SEND_SOLICITED messages only (RC, UC and
        UD); get_cq_event and ack_cq_events."""
        for qp_type in (e.IBV_QPT_RC, e.IBV_QPT_UC, e.IBV_QPT_UD):
            with self.subTest(qp_type=qp_type):
                self._solicited(qp_type)

    def test_rc_fence(self):
        """IBV_SEND_FENCE after RDMA READ and atomics: the READ sees the
        memory before the fenced WRITE, the fenced READ sees the WRITE and
        the atomic's result, and all complete in order."""
        a, b = self.pair(e.IBV_QPT_RC)
        old, new = os.urandom(4096), os.urandom(4096)
        b.write(old)
        a.write(new, 65536)
        a.write(b'\0' * 16384)
        fence = e.IBV_SEND_SIGNALED | e.IBV_SEND_FENCE
        rdma = (b.mr.rkey, b.addr)
        a.qp.post_send(send_wr(0, e.IBV_WR_RDMA_READ, [a.sge(0, 4096)],
                               rdma=rdma))
        a.qp.post_send(send_wr(1, e.IBV_WR_RDMA_WRITE,
                               [a.sge(65536, 4096)], flags=fence,
                               rdma=rdma))
        a.qp.post_send(send_wr(2, e.IBV_WR_ATOMIC_FETCH_AND_ADD,
                               [a.sge(8192, 8)],
                               atomic=(b.mr.rkey, b.addr, 1, 0)))
        a.qp.post_send(send_wr(3, e.IBV_WR_RDMA_READ, [a.sge(12288, 8)],
                               flags=fence, rdma=rdma))
        ops = (e.IBV_WC_RDMA_READ, e.IBV_WC_RDMA_WRITE, e.IBV_WC_FETCH_ADD,
               e.IBV_WC_RDMA_READ)
        for i, wc in enumerate(poll(a.cq, 4)):
            self.check_wc(wc, i, ops[i])
        self.assertEqual(a.read(4096), old)
        self.assertEqual(a.read(8, 8192), new[:8])
        added = (struct.unpack('<Q', new[:8])[0] + 1) & ((1 << 64) - 1)
        self.assertEqual(a.read(8, 12288), struct.pack('<Q', added))
        self.assertEqual(b.read(4088, 8), new[8:])

    def test_zero_length_write(self):
        """A zero-length RDMA WRITE with no SGE, rkey 0 and address 0
        completes (RC and UC); with immediate it consumes a receive and
        reports byte_len 0."""
        for qp_type in (e.IBV_QPT_RC, e.IBV_QPT_UC):
            with self.subTest(qp_type=qp_type):
                a, b = self.pair(qp_type)
                a.qp.post_send(send_wr(1, e.IBV_WR_RDMA_WRITE, [],
                                       rdma=(0, 0)))
                self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_RDMA_WRITE)
                b.post_recv(5, b.sge(0, 64))
                a.qp.post_send(send_wr(2, e.IBV_WR_RDMA_WRITE_WITH_IMM, [],
                                       imm=IMM, rdma=(0, 0)))
                self.check_wc(poll(a.cq)[0], 2, e.IBV_WC_RDMA_WRITE)
                self.check_wc(poll(b.cq)[0], 5, e.IBV_WC_RECV_RDMA_WITH_IMM,
                              byte_len=0, imm=IMM, qp_num=b.qpn)
                self.assertEqual(b.state(), e.IBV_QPS_RTS)
                self.assertEqual(a.state(), e.IBV_QPS_RTS)

    def test_ud_grh_and_ah_from_wc(self):
        """UD through a global AH: the receive has IBV_WC_GRH and a GRH
        (version 6, next header 0x1b, the GIDs) in its first 40 bytes,
        counted in byte_len. The receiver answers through an AH made from
        the completion and the GRH (ibv_create_ah_from_wc, which calls
        ibv_init_ah_from_wc), global or not as the request was."""
        for is_global in (True, False):
            with self.subTest(is_global=is_global):
                a, b = self.pair(e.IBV_QPT_UD)
                ah = self.ud_ah(a, b, is_global)
                data = os.urandom(1000)
                a.write(data)
                b.write(b'\xaa' * 2048)
                b.post_recv(1, b.sge(0, 2048))
                a.qp.post_send(send_wr(1, e.IBV_WR_SEND, [a.sge(0, 1000)],
                                       ud=(ah, b.qpn)))
                self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_SEND)
                wc = poll(b.cq)[0]
                self.check_wc(wc, 1, e.IBV_WC_RECV, byte_len=1040,
                              src_qp=a.qpn, slid=a.lid,
                              flags=e.IBV_WC_GRH if is_global else 0)
                self.assertEqual(b.read(1000, GRH_SIZE), data)
                self.assertEqual(b.read(1, 1040), b'\xaa')
                if is_global:
                    grh = b.read(GRH_SIZE)
                    self.assertEqual(grh[0] >> 4, 6)
                    self.assertEqual(grh[6], 0x1b)
                    self.assertEqual(grh[8:24], gid_bytes(a.gid))
                    self.assertEqual(grh[24:40], gid_bytes(b.gid))
                reply = AH(b.pd, wc=wc, grh=b.addr, port_num=1)
                echo = os.urandom(500)
                b.write(echo, 4096)
                a.post_recv(2, a.sge(8192, 1024))
                b.qp.post_send(send_wr(2, e.IBV_WR_SEND_WITH_IMM,
                                       [b.sge(4096, 500)], imm=IMM,
                                       ud=(reply, wc.src_qp)))
                self.check_wc(poll(b.cq)[0], 2, e.IBV_WC_SEND)
                self.check_wc(poll(a.cq)[0], 2, e.IBV_WC_RECV,
                              byte_len=540, imm=IMM, src_qp=b.qpn,
                              slid=b.lid, qp_num=a.qpn,
                              flags=e.IBV_WC_GRH if is_global else 0)
                self.assertEqual(a.read(500, 8192 + GRH_SIZE), echo)
                if is_global:
                    grh = a.read(GRH_SIZE, 8192)
                    self.assertEqual(grh[8:24], gid_bytes(b.gid))
                    self.assertEqual(grh[24:40], gid_bytes(a.gid))

    def _qpex(self, qp_type):
        a, b = self.pair(qp_type, a_kw=dict(send_ops=SEND_OPS[qp_type],
                                            cqex=True),
                         b_kw=dict(cqex=True))
        ud = qp_type == e.IBV_QPT_UD
        off = GRH_SIZE if ud else 0
        ah = self.ud_ah(a, b) if ud else None
        data = os.urandom(64 << 10)
        a.write(data)
        b.write(b'\0' * (1 << 20))
        for i in range(3):
            b.post_recv(i, b.sge(i * 131072, 131072))
        q = a.qp
        # One batch: SEND from an SGE list, SEND_WITH_IMM inline, RDMA
        # WRITE and RDMA WRITE with immediate (not UD).
        n_send = 1000 if ud else 20000
        q.wr_start()
        q.wr_id, q.wr_flags = 0, e.IBV_SEND_SIGNALED
        q.wr_send()
        if ud:
            q.wr_set_ud_addr(ah, b.qpn, QKEY)
        q.wr_set_sge_list(2, [a.sge(0, 10), a.sge(10, n_send - 10)])
        q.wr_id, q.wr_flags = 1, e.IBV_SEND_SIGNALED
        q.wr_send_imm(IMM)
        if ud:
            q.wr_set_ud_addr(ah, b.qpn, QKEY)
        q.wr_set_inline_data(a.addr + 50000, 48)
        if not ud:
            q.wr_id, q.wr_flags = 2, e.IBV_SEND_SIGNALED
            q.wr_rdma_write(b.mr.rkey, b.addr + (2 << 20))
            q.wr_set_sge(a.sge(0, 30000))
            q.wr_id, q.wr_flags = 3, e.IBV_SEND_SIGNALED
            q.wr_rdma_write_imm(b.mr.rkey, b.addr + (3 << 20), IMM + 1)
            q.wr_set_sge(a.sge(30000, 777))
        a.write(b'\0' * 48, 50000)  # inline: taken when posted
        q.wr_complete()
        n = 2 if ud else 4
        ops = (e.IBV_WC_SEND, e.IBV_WC_SEND, e.IBV_WC_RDMA_WRITE,
               e.IBV_WC_RDMA_WRITE)
        for i, wc in enumerate(poll_ex(a.cq, n)):
            self.assertEqual((wc['wr_id'], wc['status'], wc['opcode'],
                              wc['qp_num']),
                             (i, e.IBV_WC_SUCCESS, ops[i], a.qpn))
        want = [(0, e.IBV_WC_RECV, n_send + off, None),
                (1, e.IBV_WC_RECV, 48 + off, IMM)]
        if not ud:
            want.append((2, e.IBV_WC_RECV_RDMA_WITH_IMM, 777, IMM + 1))
        for (wr_id, op, length, imm), wc in zip(want,
                                               poll_ex(b.cq, len(want))):
            self.assertEqual(
                (wc['wr_id'], wc['status'], wc['opcode'], wc['byte_len'],
                 wc['qp_num'], wc.get('imm'),
                 bool(wc['flags'] & e.IBV_WC_WITH_IMM)),
                (wr_id, e.IBV_WC_SUCCESS, op, length, b.qpn, imm,
                 imm is not None))
            if ud:
                self.assertEqual((wc['src_qp'], wc['slid']), (a.qpn, a.lid))
        self.assertEqual(b.read(n_send, off), data[:n_send])
        self.assertEqual(b.read(48, 131072 + off), data[50000:50048])
        if ud:
            return
        self.assertEqual(b.read(30000, 2 << 20), data[:30000])
        self.assertEqual(b.read(777, 3 << 20), data[30000:30777])
        if qp_type != e.IBV_QPT_RC:
            return
        # RDMA READ into an SGE list, and both atomics.
        remote = os.urandom(9000)
        b.write(remote, 4 << 10)
        b.write(struct.pack('<Q', 1000), 64)
        a.write(b'\0' * 16384, 65536)
        q.wr_start()
        q.wr_id, q.wr_flags = 10, e.IBV_SEND_SIGNALED
        q.wr_rdma_read(b.mr.rkey, b.addr + 4096)
        q.wr_set_sge_list(2, [a.sge(65536, 4000), a.sge(73728, 5000)])
        q.wr_id, q.wr_flags = 11, e.IBV_SEND_SIGNALED
        q.wr_atomic_cmp_swp(b.mr.rkey, b.addr + 64, 1000, 2000)
        q.wr_set_sge(a.sge(80000, 8))
        q.wr_id, q.wr_flags = 12, e.IBV_SEND_SIGNALED
        q.wr_atomic_fetch_add(b.mr.rkey, b.addr + 64, 22)
        q.wr_set_sge(a.sge(80008, 8))
        q.wr_complete()
        got = poll_ex(a.cq, 3)
        self.assertEqual([(w['wr_id'], w['status'], w['opcode'],
                           w['byte_len']) for w in got],
                         [(10, e.IBV_WC_SUCCESS, e.IBV_WC_RDMA_READ, 9000),
                          (11, e.IBV_WC_SUCCESS, e.IBV_WC_COMP_SWAP, 8),
                          (12, e.IBV_WC_SUCCESS, e.IBV_WC_FETCH_ADD, 8)])
        self.assertEqual(a.read(4000, 65536) + a.read(5000, 73728), remote)
        self.assertEqual(struct.unpack('<QQ', a.read(16, 80000)),
                         (1000, 2000))
        self.assertEqual(struct.unpack('<Q', b.read(8, 64))[0], 2022)

    def test_qpex(self):
        """The extended send API (ibv_wr_send, _send_imm, _rdma_write,
        _rdma_write_imm, _rdma_read, _atomic_cmp_swp, _atomic_fetch_add
        with wr_set_sge, _sge_list, _inline_data, _ud_addr), several WRs a
        batch, on RC, UC and UD, polled with the extended poll API."""
        for qp_type in (e.IBV_QPT_RC, e.IBV_QPT_UC, e.IBV_QPT_UD):
            with self.subTest(qp_type=qp_type):
                self._qpex(qp_type)


class TwoDeviceTrafficTest(TrafficTests, TrafficTestCase):
    """Traffic between hfi1_0 and hfi1_1."""
    loopback = False


class LoopbackTrafficTest(TrafficTests, TrafficTestCase):
    """Traffic between two QPs of one hfi1_0 context."""
    loopback = True

    def test_qp_to_itself(self):
        """
        An RC QP connected to itself (UCX makes one for a process's own
        endpoint): SENDs, RDMA WRITEs and READs within it, many times,
        all complete over the one link it made: its far end once replaced
        it, the link closed, and the QP made it again at every message.
        """
        a = Side(self.ctx, e.IBV_QPT_RC)
        a.to_rts(a.lid, a.qpn)
        links = None
        for i in range(100):
            if i == 1:
                links = sockets()
            elif i > 1:
                self.assertEqual(sockets(), links, 'the link was made again')
            data = os.urandom(64)
            a.write(data)
            a.post_recv(1000 + i, a.sge(4096, 64))
            a.qp.post_send(send_wr(i, e.IBV_WR_SEND, [a.sge(0, 64)]))
            wcs = sorted(poll(a.cq, 2), key=lambda wc: wc.wr_id)
            self.check_wc(wcs[0], i, e.IBV_WC_SEND, qp_num=a.qpn)
            self.check_wc(wcs[1], 1000 + i, e.IBV_WC_RECV, byte_len=64,
                          qp_num=a.qpn)
            self.assertEqual(a.read(64, 4096), data)
            a.qp.post_send(send_wr(2000 + i, e.IBV_WR_RDMA_WRITE,
                                   [a.sge(0, 64)],
                                   rdma=(a.mr.rkey, a.addr + 8192)))
            self.check_wc(poll(a.cq)[0], 2000 + i, e.IBV_WC_RDMA_WRITE)
            self.assertEqual(a.read(64, 8192), data)
            a.qp.post_send(send_wr(3000 + i, e.IBV_WR_RDMA_READ,
                                   [a.sge(12288, 64)],
                                   rdma=(a.mr.rkey, a.addr + 8192)))
            self.check_wc(poll(a.cq)[0], 3000 + i, e.IBV_WC_RDMA_READ,
                          byte_len=64)
            self.assertEqual(a.read(64, 12288), data)
        self.assertEqual(a.state(), e.IBV_QPS_RTS)
        self.assertEqual(sockets(), links, 'the link was made again')


def peer_child():
    """
    The peer of test_peer_killed, in a process of its own: an RC QP on
    hfi1_1 that says {"lid", "qpn", "addr", "rkey"} on stdout, reads the
    other end's {"lid", "qpn"} from stdin, goes to RTS, posts one receive,
    says "ready" and waits to be killed.
    """
    ctx = Context(name='hfi1_1')
    side = Side(ctx, e.IBV_QPT_RC)
    print(json.dumps(dict(lid=side.lid, qpn=side.qpn, addr=side.addr,
                          rkey=side.mr.rkey)), flush=True)
    peer = json.loads(sys.stdin.readline())
    side.to_rts(peer['lid'], peer['qpn'])
    side.post_recv(1, side.sge(0, 4096))
    print('ready', flush=True)
    time.sleep(600)


class ErrorTest(TrafficTestCase):
    """The errors an HCA reports, between hfi1_0 and hfi1_1."""

    def expect_event(self, ctx, event_type):
        ev = get_async_event(ctx)
        self.assertIsNotNone(ev, f'no async event {event_type}')
        ev.ack()
        self.assertEqual(ev.event_type, event_type)

    def test_bad_rkey(self):
        """A bad rkey in RDMA WRITE, RDMA READ or an atomic: the requester
        completes it with REM_ACCESS_ERR and flushes what follows, the
        responder's owner gets IBV_EVENT_QP_ACCESS_ERR, both QPs go to
        ERR."""
        for op in (e.IBV_WR_RDMA_WRITE, e.IBV_WR_RDMA_READ,
                   e.IBV_WR_ATOMIC_FETCH_AND_ADD):
            with self.subTest(opcode=op):
                a, b = self.pair(e.IBV_QPT_RC)
                b.write(b'\0' * 4096)
                a.write(b'\x55' * 4096)
                bad = b.mr.rkey + 256
                kw = dict(atomic=(bad, b.addr, 1, 0)) if \
                    op == e.IBV_WR_ATOMIC_FETCH_AND_ADD else \
                    dict(rdma=(bad, b.addr))
                length = 8 if 'atomic' in kw else 4096
                a.qp.post_send(send_wr(1, op, [a.sge(0, length)], **kw))
                a.qp.post_send(send_wr(2, e.IBV_WR_SEND, [a.sge(0, 8)]))
                wcs = poll(a.cq, 2)
                self.check_wc(wcs[0], 1, None, e.IBV_WC_REM_ACCESS_ERR,
                              qp_num=a.qpn)
                self.check_wc(wcs[1], 2, None, e.IBV_WC_WR_FLUSH_ERR,
                              qp_num=a.qpn)
                self.expect_event(self.ctx1, e.IBV_EVENT_QP_ACCESS_ERR)
                self.assertEqual(b.read(4096), b'\0' * 4096)
                self.assertEqual(a.state(), e.IBV_QPS_ERR)
                self.assertEqual(b.state(), e.IBV_QPS_ERR)
                assert_cq_empty(self, b.cq, 0)

    def test_bad_lkey(self):
        """A bad lkey: in a SEND's gather list, LOC_PROT_ERR on the
        requester; in an RDMA READ's scatter list, LOC_PROT_ERR; in a
        receive, LOC_PROT_ERR on the responder and REM_OP_ERR on the
        requester."""
        bad_lkey = 0xdead00
        for where in ('send', 'read', 'recv'):
            with self.subTest(where=where):
                a, b = self.pair(e.IBV_QPT_RC)
                bad = SGE(a.addr, 64, bad_lkey)
                if where == 'send':
                    a.qp.post_send(send_wr(1, e.IBV_WR_SEND, [bad]))
                    status = e.IBV_WC_LOC_PROT_ERR
                elif where == 'read':
                    a.qp.post_send(send_wr(1, e.IBV_WR_RDMA_READ, [bad],
                                           rdma=(b.mr.rkey, b.addr)))
                    status = e.IBV_WC_LOC_PROT_ERR
                else:
                    b.post_recv(7, SGE(b.addr, 64, bad_lkey))
                    a.qp.post_send(send_wr(1, e.IBV_WR_SEND,
                                           [a.sge(0, 64)]))
                    status = e.IBV_WC_REM_OP_ERR
                self.check_wc(poll(a.cq)[0], 1, None, status, qp_num=a.qpn)
                if where == 'recv':
                    self.check_wc(poll(b.cq)[0], 7, None,
                                  e.IBV_WC_LOC_PROT_ERR, qp_num=b.qpn)
                    self.expect_event(self.ctx1, e.IBV_EVENT_QP_FATAL)
                self.assertEqual(a.state(), e.IBV_QPS_ERR)

    def test_rnr(self):
        """rnr_retry 0: a SEND without a receive fails at the first RNR NAK
        with RNR_RETRY_EXC_ERR. rnr_retry 7: it waits for ever, and a
        receive posted late still gets it."""
        a, b = self.pair(e.IBV_QPT_RC, rnr_retry=0)
        a.qp.post_send(send_wr(1, e.IBV_WR_SEND, [a.sge(0, 100)]))
        self.check_wc(poll(a.cq)[0], 1, None, e.IBV_WC_RNR_RETRY_EXC_ERR,
                      qp_num=a.qpn)
        self.assertEqual(a.state(), e.IBV_QPS_ERR)
        assert_cq_empty(self, b.cq, 0)

        a, b = self.pair(e.IBV_QPT_RC, rnr_retry=7)
        data = os.urandom(100)
        a.write(data)
        a.qp.post_send(send_wr(2, e.IBV_WR_SEND, [a.sge(0, 100)]))
        time.sleep(0.3)
        assert_cq_empty(self, a.cq, 0)
        b.post_recv(3, b.sge(0, 4096))
        self.check_wc(poll(a.cq)[0], 2, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 3, e.IBV_WC_RECV, byte_len=100)
        self.assertEqual(b.read(100), data)

    def test_flush(self):
        """A QP moved to ERR flushes its receives and the sends it has not
        finished with WR_FLUSH_ERR, in order; WRs posted in ERR are
        flushed too."""
        a, b = self.pair(e.IBV_QPT_RC)
        for i in range(3):
            b.post_recv(10 + i, b.sge(i * 64, 64))
        b.qp.modify(QPAttr(qp_state=e.IBV_QPS_ERR), e.IBV_QP_STATE)
        for i, wc in enumerate(poll(b.cq, 3)):
            self.check_wc(wc, 10 + i, None, e.IBV_WC_WR_FLUSH_ERR,
                          qp_num=b.qpn)
        b.post_recv(13, b.sge(0, 64))
        self.check_wc(poll(b.cq)[0], 13, None, e.IBV_WC_WR_FLUSH_ERR,
                      qp_num=b.qpn)
        assert_cq_empty(self, b.cq)

        # Sends waiting on RNR, and behind it: all flushed.
        a, b = self.pair(e.IBV_QPT_RC)
        for i in range(4):
            a.qp.post_send(send_wr(i, e.IBV_WR_SEND, [a.sge(0, 64)]))
        time.sleep(0.1)
        assert_cq_empty(self, a.cq, 0)
        a.qp.modify(QPAttr(qp_state=e.IBV_QPS_ERR), e.IBV_QP_STATE)
        for i, wc in enumerate(poll(a.cq, 4)):
            self.check_wc(wc, i, None, e.IBV_WC_WR_FLUSH_ERR, qp_num=a.qpn)
        a.qp.post_send(send_wr(4, e.IBV_WR_SEND, [a.sge(0, 64)]))
        self.check_wc(poll(a.cq)[0], 4, None, e.IBV_WC_WR_FLUSH_ERR,
                      qp_num=a.qpn)
        assert_cq_empty(self, a.cq)

    def test_peer_killed(self):
        """
        The peer's process is SIGKILLed with RDMA WRITEs in flight to it and
        a SEND waiting on RNR behind them: what was not done completes with
        RETRY_EXC_ERR (the first) and WR_FLUSH_ERR (the rest), within the
        time timeout and retry_cnt give.
        """
        timeout, retry_cnt = 12, 3
        child = subprocess.Popen(
            [sys.executable, '-c',
             'import test_hfi1_traffic as t; t.peer_child()'],
            cwd=HERE, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True)
        self.addCleanup(child.wait)
        self.addCleanup(child.kill)
        peer = json.loads(child.stdout.readline())
        a = Side(self.ctx, e.IBV_QPT_RC, max_send_wr=64)
        a.to_rts(peer['lid'], peer['qpn'], timeout=timeout,
                 retry_cnt=retry_cnt)
        child.stdin.write(json.dumps(dict(lid=a.lid, qpn=a.qpn)) + '\n')
        child.stdin.flush()
        self.assertEqual(child.stdout.readline().strip(), 'ready')
        # One SEND that the peer's receive takes: the link works.
        a.qp.post_send(send_wr(0, e.IBV_WR_SEND, [a.sge(0, 64)]))
        self.check_wc(poll(a.cq)[0], 0, e.IBV_WC_SEND)
        n = 16
        for i in range(1, n):
            a.qp.post_send(send_wr(i, e.IBV_WR_RDMA_WRITE,
                                   [a.sge(0, 1 << 20)],
                                   rdma=(peer['rkey'], peer['addr'])))
        a.qp.post_send(send_wr(n, e.IBV_WR_SEND, [a.sge(0, 64)]))
        child.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        child.wait()
        limit = timeout_secs(timeout, retry_cnt) + 2
        wcs = poll(a.cq, n, timeout=limit)
        took = time.monotonic() - killed
        statuses = [wc.status for wc in wcs]
        self.assertEqual([wc.wr_id for wc in wcs], list(range(1, n + 1)))
        done = statuses.count(e.IBV_WC_SUCCESS)
        self.assertEqual(statuses, [e.IBV_WC_SUCCESS] * done +
                         [e.IBV_WC_RETRY_EXC_ERR] +
                         [e.IBV_WC_WR_FLUSH_ERR] * (n - done - 1))
        self.assertLess(took, limit)
        self.assertEqual(a.state(), e.IBV_QPS_ERR)

    def test_cq_overrun(self):
        """More completions than a CQ holds: IBV_EVENT_CQ_ERR."""
        a = Side(self.ctx, e.IBV_QPT_UD, cqe=8, max_send_wr=128)
        a.to_rts(0, 0)
        cqe = a.cq.cqe
        self.assertGreaterEqual(cqe, 8)
        self.assertLess(cqe, 127, 'the CQ is deeper than the test expects')
        ah = self.ud_ah(a, a)
        # To our own QP, which has no receive: every datagram is dropped
        # and its send completes at once.
        for i in range(cqe + 1):
            a.qp.post_send(send_wr(i, e.IBV_WR_SEND, [a.sge(0, 8)],
                                   ud=(ah, a.qpn)))
        self.expect_event(self.ctx, e.IBV_EVENT_CQ_ERR)


DATA_COUNTERS = ('xmit_packets', 'xmit_bytes', 'rcv_packets', 'rcv_bytes',
                 'placed_bytes')


class DataCountersTest(TrafficTestCase):
    """
    The data counters of each context (hfi1_mrstat --json, "data") move by
    what a known transfer between hfi1_0 and hfi1_1 moved: the sender's
    xmit_bytes and the receiver's rcv_bytes by the payload, the placed
    bytes only where data landed through TIDs.
    """

    def setUp(self):
        super().setUp()
        if not os.access(HFI1_MRSTAT, os.X_OK):
            self.skipTest(f'{HFI1_MRSTAT} is not built')

    def counters(self):
        """{device: data counters} of this process's two contexts."""
        ctxs = {}
        for c in mrstat():
            self.assertNotIn(c['device'], ctxs, f'two contexts: {c}')
            ctxs[c['device']] = c['data']
        self.assertEqual(set(ctxs), {'hfi1_0', 'hfi1_1'})
        return ctxs

    def settled(self, before, want):
        """
        The counters' growth since @before, {device: {counter: growth}},
        once it has the values of @want (the same shape, some counters)
        and every packet one context sent the other received, or what it
        is after 5 s: the engine counts a packet just after it rang the
        peer's doorbell, so a completion may come a moment before the
        count of the packet that made it.
        """
        def delta():
            now = self.counters()
            return {dev: {n: now[dev][n] - before[dev][n]
                          for n in DATA_COUNTERS} for dev in now}

        def done():
            d = delta()
            a, b = d['hfi1_0'], d['hfi1_1']
            ok = a['xmit_packets'] == b['rcv_packets'] and \
                b['xmit_packets'] == a['rcv_packets'] and \
                all(d[dev][n] == v for dev, kv in want.items()
                    for n, v in kv.items())
            return d if ok else None

        return wait_until(done) or delta()

    def assert_counters(self, d, want):
        """@d as settled() gave it has @want's values, and both contexts
        received what the other sent."""
        for dev, kv in want.items():
            for name, v in kv.items():
                self.assertEqual(d[dev][name], v, f'{dev} {name}: {d}')
        self.assertEqual(d['hfi1_1']['rcv_packets'],
                         d['hfi1_0']['xmit_packets'], d)
        self.assertEqual(d['hfi1_0']['rcv_packets'],
                         d['hfi1_1']['xmit_packets'], d)

    def pair_quiet(self):
        """An RC pair with a long answer timeout (4 s): nothing is sent
        twice on a slow machine."""
        return self.pair(e.IBV_QPT_RC, timeout=20)

    def test_rc_write(self):
        """One RDMA WRITE of N bytes from hfi1_0 to hfi1_1: N more bytes
        sent by hfi1_0, received and placed by hfi1_1; nothing back but
        the ACK, of no payload (on the stream, or in the doorbell for a
        polling requester, where it is no packet)."""
        a, b = self.pair_quiet()
        n = (1 << 20) + 3
        a.write(os.urandom(n))
        before = self.counters()
        a.qp.post_send(send_wr(1, e.IBV_WR_RDMA_WRITE, [a.sge(0, n)],
                               rdma=(b.mr.rkey, b.addr + 5)))
        self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_RDMA_WRITE)
        want = {'hfi1_0': dict(xmit_bytes=n, rcv_bytes=0, placed_bytes=0),
                'hfi1_1': dict(xmit_bytes=0, rcv_bytes=n, placed_bytes=n)}
        d = self.settled(before, want)
        self.assert_counters(d, want)
        self.assertGreaterEqual(d['hfi1_0']['xmit_packets'], 1, d)

    def test_rc_send_and_read(self):
        """A SEND of M bytes into a posted receive: M placed at the
        receiver. An RDMA READ of K bytes: the request has no payload, the
        K bytes of the response are sent by the responder and placed at
        the requester."""
        a, b = self.pair_quiet()
        m, k = 300000, 70001
        a.write(os.urandom(m))
        b.write(os.urandom(k), 1 << 20)
        before = self.counters()
        b.post_recv(2, b.sge(0, m))
        a.qp.post_send(send_wr(1, e.IBV_WR_SEND, [a.sge(0, m)]))
        self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 2, e.IBV_WC_RECV, byte_len=m)
        a.qp.post_send(send_wr(3, e.IBV_WR_RDMA_READ, [a.sge(2 << 20, k)],
                               rdma=(b.mr.rkey, b.addr + (1 << 20))))
        self.check_wc(poll(a.cq)[0], 3, e.IBV_WC_RDMA_READ, byte_len=k)
        want = {'hfi1_0': dict(xmit_bytes=m, rcv_bytes=k, placed_bytes=k),
                'hfi1_1': dict(xmit_bytes=k, rcv_bytes=m, placed_bytes=m)}
        self.assert_counters(self.settled(before, want), want)

    def test_dropped_not_placed(self):
        """A SEND that finds no receive is received and dropped (RNR):
        counted in rcv_bytes, not in placed_bytes; sent again once a
        receive is posted, it is placed once."""
        a, b = self.pair_quiet()
        m = 5000
        a.write(os.urandom(m))
        before = self.counters()
        a.qp.post_send(send_wr(1, e.IBV_WR_SEND, [a.sge(0, m)]))
        got = wait_until(lambda: self.counters()['hfi1_1']['rcv_bytes'] -
                         before['hfi1_1']['rcv_bytes'] >= m)
        self.assertTrue(got, 'the SEND did not arrive')
        b.post_recv(2, b.sge(0, m))
        self.check_wc(poll(a.cq)[0], 1, e.IBV_WC_SEND)
        self.check_wc(poll(b.cq)[0], 2, e.IBV_WC_RECV, byte_len=m)
        d = self.settled(before, {'hfi1_1': dict(placed_bytes=m)})
        self.assertEqual(d['hfi1_1']['placed_bytes'], m, d)
        self.assertGreaterEqual(d['hfi1_1']['rcv_bytes'], 2 * m, d)
        self.assertEqual(d['hfi1_0']['xmit_bytes'],
                         d['hfi1_1']['rcv_bytes'], d)
        self.assertEqual(d['hfi1_0']['placed_bytes'], 0, d)

if __name__ == '__main__':
    unittest.main()
