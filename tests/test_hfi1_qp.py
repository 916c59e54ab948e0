# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
"""
QPs and AHs on libhfi1 without traffic: creation with caps, the state
machine's transitions, query, the provider's checks of what it is given,
and the checks of the extended send API that the provider makes before
anything is posted.
"""
import ctypes
import errno
import unittest

import hfi1_base  # noqa: F401 (brings a soft HFI up)
from hfi1_base import Hfi1TestCase, INIT_MASK, RTR_MASK, RTS_MASK

from pyverbs.addr import AH, AHAttr
from pyverbs.cq import CQ
from pyverbs.pd import PD
from pyverbs.pyverbs_error import PyverbsRDMAError
from pyverbs.qp import QP, QPAttr, QPCap, QPEx, QPInitAttr, QPInitAttrEx
from pyverbs.wr import RecvWR, SendWR, SGE
import pyverbs.enums as e

# hfi1.h's limits.
HFI1_MAX_QP_WR = 16384
HFI1_MAX_SGE = 32
HFI1_MAX_INLINE = 256

# hfi1_base brings up hfi1_0 at LID 1 and hfi1_1 at LID 2.
PEER_LID = 2

QP_TYPES = (e.IBV_QPT_RC, e.IBV_QPT_UC, e.IBV_QPT_UD)


def empty_recv_wr(wr_id):
    """A receive WR without SGEs. pyverbs refuses to build one, but
    ibv_post_recv() takes num_sge 0: build it with one and drop it."""
    wr = RecvWR(wr_id=wr_id, num_sge=1, sg=[SGE(0, 0, 0)])
    wr.num_sge = 0
    return wr


def empty_send_wr(wr_id, opcode=e.IBV_WR_SEND):
    """A send WR without SGEs, as empty_recv_wr()."""
    wr = SendWR(wr_id=wr_id, opcode=opcode, num_sge=1, sg=[SGE(0, 0, 0)])
    wr.num_sge = 0
    return wr


class QPTestCase(Hfi1TestCase):
    """A PD and a CQ on hfi1_0."""

    def setUp(self):
        super().setUp()
        self.pd = PD(self.ctx)
        self.cq = CQ(self.ctx, 256)

    def caps(self, **kw):
        args = dict(max_send_wr=16, max_recv_wr=32, max_send_sge=2,
                    max_recv_sge=3, max_inline_data=64)
        args.update(kw)
        return QPCap(**args)

    def init_attr(self, qp_type, cap=None, sq_sig_all=1):
        return QPInitAttr(qp_type=qp_type, scq=self.cq, rcq=self.cq,
                          cap=cap or self.caps(), sq_sig_all=sq_sig_all)

    def create_qp(self, qp_type, **kw):
        return QP(self.pd, self.init_attr(qp_type, **kw))

    def assert_errno(self, err, fn, *args, **kwargs):
        with self.assertRaises(PyverbsRDMAError) as cm:
            fn(*args, **kwargs)
        self.assertEqual(cm.exception.error_code, err,
                         f'{fn.__name__}: {cm.exception}')

    def state(self, qp):
        attr, _ = qp.query(e.IBV_QP_STATE)
        return attr.qp_state

    def attrs(self, qp_type, dest_qpn=0):
        """What each transition of @qp_type needs, with known values."""
        a = QPAttr(port_num=1, path_mtu=e.IBV_MTU_2048)
        a.pkey_index = 0
        a.qkey = 0x11111111
        a.qp_access_flags = e.IBV_ACCESS_REMOTE_WRITE | \
            e.IBV_ACCESS_REMOTE_READ
        a.ah_attr = AHAttr(dlid=PEER_LID, sl=0, port_num=1)
        a.dest_qp_num = dest_qpn
        a.rq_psn = 0x123
        a.sq_psn = 0x456
        a.max_dest_rd_atomic = 4
        a.max_rd_atomic = 4
        a.min_rnr_timer = 12
        a.timeout = 14
        a.retry_cnt = 7
        a.rnr_retry = 7
        return a

    def to_rts(self, qp, qp_type, dest_qpn=0x42):
        a = self.attrs(qp_type, dest_qpn)
        for state, masks in ((e.IBV_QPS_INIT, INIT_MASK),
                             (e.IBV_QPS_RTR, RTR_MASK),
                             (e.IBV_QPS_RTS, RTS_MASK)):
            a.qp_state = state
            qp.modify(a, masks[qp_type])
            self.assertEqual(qp.qp_state, state)
            self.assertEqual(self.state(qp), state)


class CreateTest(QPTestCase):
    def test_create_each_type(self):
        """RC, UC and UD QPs: a QPN, RESET, and at least the caps asked."""
        qpns = set()
        for qp_type in QP_TYPES:
            with self.subTest(qp_type=qp_type):
                init = self.init_attr(qp_type)
                qp = QP(self.pd, init)
                self.assertNotIn(qp.qp_num, qpns)
                self.assertNotIn(qp.qp_num, (0, 1))
                qpns.add(qp.qp_num)
                self.assertEqual(qp.qp_state, e.IBV_QPS_RESET)
                # ibv_create_qp() writes the granted caps back.
                self.assertGreaterEqual(init.max_send_wr, 16)
                self.assertGreaterEqual(init.max_recv_wr, 32)
                self.assertGreaterEqual(init.max_send_sge, 2)
                self.assertGreaterEqual(init.max_recv_sge, 3)
                self.assertGreaterEqual(init.max_inline_data, 64)
                qp.close()

    def test_create_ex(self):
        """ibv_create_qp_ex with a PD and no create flags."""
        for qp_type in QP_TYPES:
            with self.subTest(qp_type=qp_type):
                attr = QPInitAttrEx(qp_type=qp_type, scq=self.cq,
                                    rcq=self.cq, cap=self.caps(),
                                    pd=self.pd,
                                    comp_mask=e.IBV_QP_INIT_ATTR_PD |
                                    e.IBV_QP_INIT_ATTR_CREATE_FLAGS)
                qp = QP(self.ctx, attr)
                self.assertEqual(qp.qp_state, e.IBV_QPS_RESET)
                qp.close()

    def test_zero_caps(self):
        """Empty queues are allowed."""
        qp = self.create_qp(e.IBV_QPT_RC,
                            cap=QPCap(0, 0, 0, 0, 0))
        qp.close()

    def test_max_caps(self):
        """The limits the provider reports are granted."""
        qp = self.create_qp(e.IBV_QPT_RC, cap=self.caps(
            max_send_wr=HFI1_MAX_QP_WR, max_recv_wr=HFI1_MAX_QP_WR,
            max_send_sge=HFI1_MAX_SGE, max_recv_sge=HFI1_MAX_SGE,
            max_inline_data=HFI1_MAX_INLINE))
        qp.close()

    def test_caps_over_limits(self):
        """Each cap over hfi1.h's limit is EINVAL."""
        for cap in (dict(max_send_wr=HFI1_MAX_QP_WR + 1),
                    dict(max_recv_wr=HFI1_MAX_QP_WR + 1),
                    dict(max_send_sge=HFI1_MAX_SGE + 1),
                    dict(max_recv_sge=HFI1_MAX_SGE + 1),
                    dict(max_inline_data=HFI1_MAX_INLINE + 1)):
            with self.subTest(**cap):
                self.assert_errno(errno.EINVAL, self.create_qp,
                                  e.IBV_QPT_RC, cap=self.caps(**cap))

    def test_unsupported_types(self):
        """Only RC, UC and UD QPs are served."""
        for qp_type in (e.IBV_QPT_RAW_PACKET, e.IBV_QPT_XRC_SEND):
            with self.subTest(qp_type=qp_type):
                self.assert_errno(errno.EOPNOTSUPP, self.create_qp,
                                  qp_type)

    def test_create_flags(self):
        """No create flag is served."""
        attr = QPInitAttrEx(qp_type=e.IBV_QPT_UD, scq=self.cq, rcq=self.cq,
                            cap=self.caps(), pd=self.pd,
                            comp_mask=e.IBV_QP_INIT_ATTR_PD |
                            e.IBV_QP_INIT_ATTR_CREATE_FLAGS,
                            create_flags=e.IBV_QP_CREATE_SCATTER_FCS)
        self.assert_errno(errno.EOPNOTSUPP, QP, self.ctx, attr)

    def test_no_pd(self):
        """ibv_create_qp_ex without IBV_QP_INIT_ATTR_PD is EINVAL."""
        attr = QPInitAttrEx(qp_type=e.IBV_QPT_RC, scq=self.cq, rcq=self.cq,
                            cap=self.caps(),
                            comp_mask=e.IBV_QP_INIT_ATTR_CREATE_FLAGS)
        self.assert_errno(errno.EINVAL, QP, self.ctx, attr)

    def test_unsupported_send_ops(self):
        """send_ops_flags a QP type cannot post are EOPNOTSUPP."""
        for qp_type, ops in ((e.IBV_QPT_UD, e.IBV_QP_EX_WITH_RDMA_WRITE),
                             (e.IBV_QPT_UC, e.IBV_QP_EX_WITH_RDMA_READ),
                             (e.IBV_QPT_RC, e.IBV_QP_EX_WITH_LOCAL_INV)):
            with self.subTest(qp_type=qp_type):
                attr = QPInitAttrEx(
                    qp_type=qp_type, scq=self.cq, rcq=self.cq,
                    cap=self.caps(), pd=self.pd, send_ops_flags=ops,
                    comp_mask=e.IBV_QP_INIT_ATTR_PD |
                    e.IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)
                self.assert_errno(errno.EOPNOTSUPP, QPEx, self.ctx, attr)

    def test_destroy_then_pd(self):
        """A destroyed QP no longer holds its PD."""
        qp = self.create_qp(e.IBV_QPT_RC)
        qp.close()
        self.pd.close()


class StateTest(QPTestCase):
    def test_reset_to_rts(self):
        """RESET -> INIT -> RTR -> RTS for each type."""
        for qp_type in QP_TYPES:
            with self.subTest(qp_type=qp_type):
                qp = self.create_qp(qp_type)
                self.to_rts(qp, qp_type)
                qp.close()

    def test_query_after_rts(self):
        """query_qp gives back what modify_qp set, and the caps twice."""
        qp = self.create_qp(e.IBV_QPT_RC, sq_sig_all=0)
        self.to_rts(qp, e.IBV_QPT_RC, dest_qpn=0x77)
        attr, init = qp.query(e.IBV_QP_STATE | e.IBV_QP_CAP | e.IBV_QP_AV |
                              e.IBV_QP_DEST_QPN)
        self.assertEqual(attr.qp_state, e.IBV_QPS_RTS)
        self.assertEqual(attr.dest_qp_num, 0x77)
        self.assertEqual(attr.rq_psn, 0x123)
        self.assertEqual(attr.sq_psn, 0x456)
        self.assertEqual(attr.path_mtu, e.IBV_MTU_2048)
        self.assertEqual(attr.port_num, 1)
        self.assertEqual(attr.timeout, 14)
        self.assertEqual(attr.retry_cnt, 7)
        self.assertEqual(attr.rnr_retry, 7)
        self.assertEqual(attr.min_rnr_timer, 12)
        self.assertEqual(attr.max_rd_atomic, 4)
        self.assertEqual(attr.max_dest_rd_atomic, 4)
        self.assertEqual(attr.ah_attr.dlid, PEER_LID)
        self.assertEqual(attr.ah_attr.port_num, 1)
        for cap in (attr.cap, init.cap):
            self.assertGreaterEqual(cap.max_send_wr, 16)
            self.assertGreaterEqual(cap.max_recv_wr, 32)
            self.assertGreaterEqual(cap.max_send_sge, 2)
            self.assertGreaterEqual(cap.max_recv_sge, 3)
            self.assertGreaterEqual(cap.max_inline_data, 64)
        self.assertEqual(init.qp_type, e.IBV_QPT_RC)
        self.assertEqual(init.sq_sig_all, 0)
        qp.close()

    def test_ud_qkey(self):
        qp = self.create_qp(e.IBV_QPT_UD)
        self.to_rts(qp, e.IBV_QPT_UD)
        a, _ = qp.query(e.IBV_QP_QKEY)
        self.assertEqual(a.qkey, 0x11111111)
        qp.close()

    def test_back_to_reset(self):
        """Any state -> RESET, and up again."""
        qp = self.create_qp(e.IBV_QPT_RC)
        self.to_rts(qp, e.IBV_QPT_RC)
        qp.modify(QPAttr(qp_state=e.IBV_QPS_RESET), e.IBV_QP_STATE)
        self.assertEqual(self.state(qp), e.IBV_QPS_RESET)
        self.to_rts(qp, e.IBV_QPT_RC)
        qp.modify(QPAttr(qp_state=e.IBV_QPS_ERR), e.IBV_QP_STATE)
        self.assertEqual(self.state(qp), e.IBV_QPS_ERR)
        qp.close()

    def test_missing_attributes(self):
        """A transition without an attribute it needs is EINVAL, and the
        QP stays where it was."""
        qp = self.create_qp(e.IBV_QPT_RC)
        a = self.attrs(e.IBV_QPT_RC)
        a.qp_state = e.IBV_QPS_INIT
        self.assert_errno(errno.EINVAL, qp.modify, a,
                          INIT_MASK[e.IBV_QPT_RC] & ~e.IBV_QP_PORT)
        self.assertEqual(self.state(qp), e.IBV_QPS_RESET)
        self.assertEqual(qp.qp_state, e.IBV_QPS_RESET)
        qp.modify(a, INIT_MASK[e.IBV_QPT_RC])
        a.qp_state = e.IBV_QPS_RTR
        self.assert_errno(errno.EINVAL, qp.modify, a,
                          RTR_MASK[e.IBV_QPT_RC] & ~e.IBV_QP_DEST_QPN)
        self.assertEqual(self.state(qp), e.IBV_QPS_INIT)
        qp.close()

    def test_skipped_state(self):
        """RESET -> RTR and RESET -> RTS are EINVAL."""
        qp = self.create_qp(e.IBV_QPT_RC)
        a = self.attrs(e.IBV_QPT_RC)
        for state, mask in ((e.IBV_QPS_RTR, RTR_MASK),
                            (e.IBV_QPS_RTS, RTS_MASK)):
            a.qp_state = state
            self.assert_errno(errno.EINVAL, qp.modify, a,
                              mask[e.IBV_QPT_RC])
        self.assertEqual(self.state(qp), e.IBV_QPS_RESET)
        qp.close()

    def test_attribute_not_allowed(self):
        """An attribute the transition does not allow is EINVAL (QKEY on
        an RC QP's RESET -> INIT)."""
        qp = self.create_qp(e.IBV_QPT_RC)
        a = self.attrs(e.IBV_QPT_RC)
        a.qp_state = e.IBV_QPS_INIT
        self.assert_errno(errno.EINVAL, qp.modify, a,
                          INIT_MASK[e.IBV_QPT_RC] | e.IBV_QP_QKEY)
        qp.close()

    def test_unknown_mask_bits(self):
        """Bits past the standard ones: EOPNOTSUPP (known, the rate limit)
        or EINVAL."""
        qp = self.create_qp(e.IBV_QPT_RC)
        a = self.attrs(e.IBV_QPT_RC)
        a.qp_state = e.IBV_QPS_INIT
        self.assert_errno(errno.EOPNOTSUPP, qp.modify, a,
                          INIT_MASK[e.IBV_QPT_RC] | e.IBV_QP_RATE_LIMIT)
        self.assert_errno(errno.EINVAL, qp.modify, a,
                          INIT_MASK[e.IBV_QPT_RC] | 1 << 30)
        self.assertEqual(self.state(qp), e.IBV_QPS_RESET)
        qp.close()


class PostCheckTest(QPTestCase):
    """What the provider refuses before the backend sees it."""

    def test_post_recv_in_reset(self):
        qp = self.create_qp(e.IBV_QPT_RC)
        self.assert_errno(errno.EINVAL, qp.post_recv, empty_recv_wr(1))
        qp.close()

    def test_post_recv_too_many_sges(self):
        qp = self.create_qp(e.IBV_QPT_RC, cap=self.caps(max_recv_sge=1))
        a = self.attrs(e.IBV_QPT_RC)
        a.qp_state = e.IBV_QPS_INIT
        qp.modify(a, INIT_MASK[e.IBV_QPT_RC])
        _, init = qp.query(e.IBV_QP_CAP)
        n = init.cap.max_recv_sge + 1
        sges = [SGE(0x1000 * (i + 1), 8, 0) for i in range(n)]
        self.assert_errno(errno.EINVAL, qp.post_recv,
                          RecvWR(wr_id=1, num_sge=n, sg=sges))
        qp.close()

    def test_post_recv_full(self):
        """max_recv_wr receives fit (nothing consumes them in INIT); one
        more is ENOMEM."""
        qp = self.create_qp(e.IBV_QPT_RC, cap=self.caps(max_recv_wr=8))
        a = self.attrs(e.IBV_QPT_RC)
        a.qp_state = e.IBV_QPS_INIT
        qp.modify(a, INIT_MASK[e.IBV_QPT_RC])
        _, init = qp.query(e.IBV_QP_CAP)
        for i in range(init.cap.max_recv_wr):
            qp.post_recv(empty_recv_wr(i))
        self.assert_errno(errno.ENOMEM, qp.post_recv,
                          empty_recv_wr(99))
        qp.close()

    def test_post_send_bad_opcode(self):
        """An opcode the QP type cannot post, or one not served, is
        EINVAL."""
        for qp_type, op in ((e.IBV_QPT_UC, e.IBV_WR_RDMA_READ),
                            (e.IBV_QPT_RC, e.IBV_WR_LOCAL_INV),
                            (e.IBV_QPT_RC, e.IBV_WR_SEND_WITH_INV)):
            with self.subTest(qp_type=qp_type, op=op):
                qp = self.create_qp(qp_type)
                self.to_rts(qp, qp_type)
                self.assert_errno(errno.EINVAL, qp.post_send,
                                  empty_send_wr(1, op))
                qp.close()

    def test_post_send_too_many_sges(self):
        qp = self.create_qp(e.IBV_QPT_RC, cap=self.caps(max_send_sge=1))
        self.to_rts(qp, e.IBV_QPT_RC)
        _, init = qp.query(e.IBV_QP_CAP)
        n = init.cap.max_send_sge + 1
        sges = [SGE(0x1000 * (i + 1), 8, 0) for i in range(n)]
        self.assert_errno(errno.EINVAL, qp.post_send,
                          SendWR(wr_id=1, num_sge=n, sg=sges))
        qp.close()

    def test_post_send_ud_without_ah(self):
        qp = self.create_qp(e.IBV_QPT_UD)
        self.to_rts(qp, e.IBV_QPT_UD)
        self.assert_errno(errno.EINVAL, qp.post_send, empty_send_wr(1))
        qp.close()


class WrApiTest(QPTestCase):
    """The extended send API's checks, made before anything is posted."""

    def create_qpex(self, qp_type, ops, **kw):
        attr = QPInitAttrEx(qp_type=qp_type, scq=self.cq, rcq=self.cq,
                            cap=self.caps(**kw), pd=self.pd,
                            send_ops_flags=ops,
                            comp_mask=e.IBV_QP_INIT_ATTR_PD |
                            e.IBV_QP_INIT_ATTR_SEND_OPS_FLAGS)
        qp = QPEx(self.ctx, attr)
        self.to_rts(qp, qp_type)
        return qp

    def test_abort_posts_nothing(self):
        qp = self.create_qpex(e.IBV_QPT_RC, e.IBV_QP_EX_WITH_SEND)
        qp.wr_start()
        qp.wr_id = 1
        qp.wr_send()
        qp.wr_set_sge(SGE(0x1000, 8, 0))
        qp.wr_abort()
        # The critical section is left: another one can begin.
        qp.wr_start()
        qp.wr_complete()
        qp.close()

    def test_op_not_asked_for(self):
        qp = self.create_qpex(e.IBV_QPT_RC, e.IBV_QP_EX_WITH_SEND)
        qp.wr_start()
        qp.wr_rdma_write(0x1234, 0x1000)
        self.assert_errno(errno.EINVAL, qp.wr_complete)
        qp.close()

    def test_ud_without_addr(self):
        qp = self.create_qpex(e.IBV_QPT_UD, e.IBV_QP_EX_WITH_SEND)
        qp.wr_start()
        qp.wr_send()
        qp.wr_set_sge(SGE(0x1000, 8, 0))
        self.assert_errno(errno.EINVAL, qp.wr_complete)
        qp.close()

    def test_too_much_inline(self):
        qp = self.create_qpex(e.IBV_QPT_RC, e.IBV_QP_EX_WITH_SEND,
                              max_inline_data=16)
        _, init = qp.query(e.IBV_QP_CAP)
        buf = ctypes.create_string_buffer(init.cap.max_inline_data + 1)
        qp.wr_start()
        qp.wr_send()
        qp.wr_set_inline_data(ctypes.addressof(buf), len(buf))
        self.assert_errno(errno.EINVAL, qp.wr_complete)
        qp.close()

    def test_setter_without_builder(self):
        qp = self.create_qpex(e.IBV_QPT_RC, e.IBV_QP_EX_WITH_SEND)
        qp.wr_start()
        qp.wr_set_sge(SGE(0x1000, 8, 0))
        self.assert_errno(errno.EINVAL, qp.wr_complete)
        qp.close()

    def test_more_than_the_queue(self):
        qp = self.create_qpex(e.IBV_QPT_RC, e.IBV_QP_EX_WITH_SEND,
                              max_send_wr=4)
        _, init = qp.query(e.IBV_QP_CAP)
        qp.wr_start()
        for i in range(init.cap.max_send_wr + 1):
            qp.wr_id = i
            qp.wr_send()
        self.assert_errno(errno.ENOMEM, qp.wr_complete)
        qp.close()


class AHTest(QPTestCase):
    def test_create_destroy(self):
        ah = AH(self.pd, attr=AHAttr(dlid=PEER_LID, port_num=1))
        ah.close()

    def test_bad_attrs(self):
        for kw in (dict(dlid=PEER_LID, port_num=2),
                   dict(dlid=0, port_num=1),
                   dict(dlid=0xc001, port_num=1),
                   dict(dlid=PEER_LID, port_num=1, sl=16)):
            with self.subTest(**kw):
                self.assert_errno(errno.EINVAL, AH, self.pd,
                                  attr=AHAttr(**kw))


if __name__ == '__main__':
    unittest.main()
