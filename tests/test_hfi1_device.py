# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
"""
Device, context, query and PD tests of libhfi1 on the soft HFI (or a real
hfi1 where one is present).
"""
import errno
import os
import re
import shutil
import subprocess
import unittest

import hfi1_base
from hfi1_base import Hfi1TestCase, hfi1_soft, get_async_event, \
    skip_unless_hfi1, soft_managed

from pyverbs.device import Context, get_device_list
from pyverbs.pd import PD
from pyverbs.cq import CQ, CQEX, CompChannel, CqInitAttrEx, PollCqAttr
from pyverbs.pyverbs_error import PyverbsRDMAError
import pyverbs.enums as e

HFI1_IB_VENDOR_ID = 0x1175
HFI1_PART_ID = 0x24f0


def attr_guid(guid):
    """DeviceAttr GUIDs are the raw big-endian __be64, read on this host."""
    return int.from_bytes(guid.to_bytes(8, 'little'), 'big')


def fd_count():
    return len(os.listdir('/proc/self/fd'))


def thread_count():
    return len(os.listdir('/proc/self/task'))


class DeviceListTest(unittest.TestCase):
    """The soft HFIs as libibverbs discovers them."""

    def setUp(self):
        skip_unless_hfi1(self)

    def test_devices_listed(self):
        """Both soft HFIs are listed, as IB CAs with distinct GUIDs."""
        devs = {d.name.decode(): d for d in get_device_list()}
        if not soft_managed():
            self.skipTest('the soft HFIs were not brought up by the tests')
        for name in hfi1_base.DEV_NAMES:
            self.assertIn(name, devs)
            self.assertEqual(devs[name].node_type, e.IBV_NODE_CA)
            self.assertEqual(devs[name].transport_type,
                             e.IBV_TRANSPORT_IB)
        self.assertNotEqual(devs['hfi1_0'].guid, devs['hfi1_1'].guid)

    def test_ibv_devices_tool(self):
        """The stock ibv_devices and ibv_devinfo see the soft HFI."""
        if not shutil.which('ibv_devinfo'):
            self.skipTest('ibverbs-utils is not installed')
        out = subprocess.run(['ibv_devices'], capture_output=True,
                             text=True, check=True).stdout
        self.assertRegex(out, r'\bhfi1_0\b')
        out = subprocess.run(['ibv_devinfo', '-v', '-d', 'hfi1_0'],
                             capture_output=True, text=True,
                             check=True).stdout
        self.assertRegex(out, r'state:\s+PORT_ACTIVE')
        self.assertRegex(out, r'link_layer:\s+InfiniBand')
        lid = int(re.search(r'port_lid:\s+(\d+)', out).group(1))
        self.assertNotEqual(lid, 0)


class ContextTest(Hfi1TestCase):
    """Opening and closing contexts."""

    def test_open_close_no_leak(self):
        """Opening and closing a context leaks no fd and no thread."""
        self.ctx.close()
        self.ctx = None
        fds, threads = fd_count(), thread_count()
        for _ in range(20):
            Context(name=self.dev_name).close()
        self.assertEqual(fd_count(), fds)
        self.assertEqual(thread_count(), threads)

    def test_two_contexts(self):
        """Two contexts on one device are independent."""
        with Context(name=self.dev_name) as other:
            self.assertEqual(other.query_port(1).lid,
                             self.ctx.query_port(1).lid)

    def test_comp_channels(self):
        """
        ibv_create_comp_channel returns a real channel, answered by the
        soft HFI's uverbs command channel; fifty of them leave no fd and no
        thread behind once the context is closed.
        """
        self.ctx.close()
        self.ctx = None
        fds, threads = fd_count(), thread_count()
        with Context(name=self.dev_name) as ctx:
            for _ in range(50):
                CompChannel(ctx).close()
        self.assertEqual(fd_count(), fds)
        self.assertEqual(thread_count(), threads)


class QueryDeviceTest(Hfi1TestCase):
    """ibv_query_device and ibv_query_device_ex."""

    def test_query_device(self):
        """The attributes an hfi1 reports, and honest limits."""
        attr = self.ctx.query_device()
        self.assertEqual(attr.vendor_id, HFI1_IB_VENDOR_ID)
        self.assertEqual(attr.vendor_part_id, HFI1_PART_ID)
        self.assertEqual(attr.phys_port_cnt, 1)
        self.assertNotEqual(attr_guid(attr.node_guid), 0)
        self.assertTrue(attr.fw_version)
        self.assertGreater(attr.max_pd, 0)
        # An exact bound on MR objects: test_hfi1_mr.MaxMRTest reaches it.
        self.assertGreater(attr.max_mr, 0)
        self.assertGreaterEqual(attr.max_sge, 6)
        self.assertGreaterEqual(attr.max_cqe, 4096)
        self.assertGreaterEqual(attr.max_srq_wr, 4095)
        self.assertGreaterEqual(attr.max_qp_rd_atom, 1)
        # Atomics are real, and atomic with respect to the device's only.
        self.assertEqual(attr.atomic_caps, e.IBV_ATOMIC_HCA)
        self.assertEqual(attr.max_qp_init_rd_atom, attr.max_qp_rd_atom)
        self.assertEqual(attr.max_res_rd_atom,
                         attr.max_qp * attr.max_qp_rd_atom)
        self.assertEqual(attr.max_pkeys, 16)

    def test_node_guid_matches_device_list(self):
        """query_device's node GUID is the one ibv_get_device_guid reads."""
        attr = self.ctx.query_device()
        dev = [d for d in get_device_list()
               if d.name.decode() == self.dev_name][0]
        self.assertEqual(attr_guid(attr.node_guid), dev.guid)

    def test_query_device_ex(self):
        """query_device_ex agrees with query_device; no ODP is claimed."""
        attr = self.ctx.query_device()
        attr_ex = self.ctx.query_device_ex()
        self.assertEqual(attr_ex.orig_attr.max_pd, attr.max_pd)
        self.assertEqual(attr_ex.orig_attr.max_mr, attr.max_mr)
        self.assertEqual(attr_ex.orig_attr.node_guid, attr.node_guid)
        self.assertEqual(attr_ex.phys_port_cnt_ex, 1)
        self.assertEqual(attr_ex.odp_caps.general_caps, 0)


class QueryPortTest(Hfi1TestCase):
    """ibv_query_port, GIDs and P_Keys."""

    def test_query_port(self):
        """Port 1 is an active 4X EDR InfiniBand port with MTU 4096."""
        port = self.ctx.query_port(1)
        self.assertEqual(port.state, e.IBV_PORT_ACTIVE)
        self.assertEqual(port.link_layer, e.IBV_LINK_LAYER_INFINIBAND)
        self.assertEqual(port.active_mtu, e.IBV_MTU_4096)
        self.assertEqual(port.max_mtu, e.IBV_MTU_4096)
        self.assertNotEqual(port.lid, 0)
        if soft_managed():
            self.assertEqual(port.lid, hfi1_base.DEV_LIDS[self.dev_name])
        self.assertEqual(port.active_width, 2)
        self.assertEqual(port.active_speed, 32)
        self.assertGreaterEqual(port.max_msg_sz, 8 << 20)
        self.assertGreaterEqual(port.gid_tbl_len, 1)

    def test_unknown_port(self):
        """Ports other than 1 are EINVAL."""
        for port in (0, 2, 255):
            with self.assertRaises(PyverbsRDMAError) as cm:
                self.ctx.query_port(port)
            self.assertEqual(cm.exception.error_code, errno.EINVAL)

    def test_query_gid(self):
        """GID 0 is the link-local prefix and the port GUID."""
        gid = self.ctx.query_gid(1, 0)
        words = [int(w, 16) for w in str(gid).split(':')]
        self.assertEqual(words[:4], [0xfe80, 0, 0, 0])
        guid = attr_guid(self.ctx.query_device().node_guid)
        interface_id = 0
        for w in words[4:]:
            interface_id = interface_id << 16 | w
        self.assertEqual(interface_id, guid)

    def test_every_gid_queryable(self):
        """
        Every index below gid_tbl_len answers; the next one fails
        (libibverbs reads the soft HFI's GIDs from its device tree:
        ibv_query_gid_ex says EINVAL, ibv_query_gid ENOENT). hfi1's table
        has 5 entries: GID 0, and four empty ones for alias GUIDs, which
        read as the zero GID and are ENODATA to ibv_query_gid_ex, as the
        kernel's empty entries; the GID table lists GID 0 only.
        """
        tbl_len = self.ctx.query_port(1).gid_tbl_len
        self.assertEqual(tbl_len, 5)
        self.ctx.query_gid_ex(1, 0)
        for i in range(tbl_len):
            gid = self.ctx.query_gid(1, i)
            if i:
                self.assertEqual(str(gid), '0000:0000:0000:0000:'
                                 '0000:0000:0000:0000')
                with self.assertRaises(PyverbsRDMAError) as cm:
                    self.ctx.query_gid_ex(1, i)
                self.assertEqual(cm.exception.error_code, errno.ENODATA)
        entries = self.ctx.query_gid_table(tbl_len)
        self.assertEqual([(g.port_num, g.gid_index) for g in entries],
                         [(1, 0)])
        with self.assertRaises(PyverbsRDMAError):
            self.ctx.query_gid(1, tbl_len)
        with self.assertRaises(PyverbsRDMAError) as cm:
            self.ctx.query_gid_ex(1, tbl_len)
        self.assertEqual(cm.exception.error_code, errno.EINVAL)

    def test_query_pkey(self):
        """P_Key 0 is the default full-member key."""
        self.assertEqual(self.ctx.query_pkey(1, 0), 0xffff)


class SecondDeviceTest(Hfi1TestCase):
    """The second soft HFI emulates another host."""
    dev_name = 'hfi1_1'

    def test_distinct_lid_and_guid(self):
        """hfi1_1 has its own LID and GUID."""
        with Context(name='hfi1_0') as ctx0:
            self.assertNotEqual(ctx0.query_port(1).lid,
                                self.ctx.query_port(1).lid)
            self.assertNotEqual(ctx0.query_device().node_guid,
                                self.ctx.query_device().node_guid)


class PDTest(Hfi1TestCase):
    """Protection domains."""

    def test_alloc_dealloc(self):
        """PDs allocate and free; closing one twice is harmless."""
        pd = PD(self.ctx)
        pd2 = PD(self.ctx)
        pd.close()
        pd.close()
        pd2.close()

    def test_max_pd_enforced(self):
        """max_pd is what the provider enforces: one more is ENOMEM."""
        max_pd = self.ctx.query_device().max_pd
        pds = [PD(self.ctx) for _ in range(max_pd)]
        with self.assertRaises(PyverbsRDMAError) as cm:
            PD(self.ctx)
        self.assertEqual(cm.exception.error_code, errno.ENOMEM)
        pds.pop().close()
        pds.append(PD(self.ctx))
        for pd in pds:
            pd.close()


class CQTest(Hfi1TestCase):
    """Completion queues, through pyverbs' CQ and CQEX."""

    def test_create_resize_destroy(self):
        """A CQ with a channel is created, resized, armed and destroyed."""
        max_cqe = self.ctx.query_device().max_cqe
        with CompChannel(self.ctx) as ch:
            cq = CQ(self.ctx, 16, None, ch, 0)
            self.assertGreaterEqual(cq.cqe, 16)
            cq.req_notify()
            cq.resize(max_cqe)
            self.assertGreaterEqual(cq.cqe, max_cqe)
            self.assertEqual(cq.poll(4), (0, []))
            cq.close()

    def test_bad_cqe(self):
        """cqe 0 and past max_cqe are EINVAL."""
        max_cqe = self.ctx.query_device().max_cqe
        for cqe in (0, max_cqe + 1):
            with self.assertRaises(PyverbsRDMAError) as cm:
                CQ(self.ctx, cqe)
            self.assertEqual(cm.exception.error_code, errno.EINVAL)

    def test_cq_ex(self):
        """An extended CQ polls empty; completion timestamps are refused."""
        cq = CQEX(self.ctx, CqInitAttrEx(cqe=8,
                                         wc_flags=e.IBV_WC_STANDARD_FLAGS))
        self.assertEqual(cq.start_poll(PollCqAttr()), errno.ENOENT)
        cq.close()
        attr = CqInitAttrEx(cqe=8, wc_flags=e.IBV_WC_STANDARD_FLAGS |
                            e.IBV_WC_EX_WITH_COMPLETION_TIMESTAMP)
        with self.assertRaises(PyverbsRDMAError) as cm:
            CQEX(self.ctx, attr)
        self.assertEqual(cm.exception.error_code, errno.EOPNOTSUPP)


class AsyncEventTest(Hfi1TestCase):
    """Events the provider delivers through ibv_get_async_event."""

    def setUp(self):
        super().setUp()
        if not soft_managed():
            self.skipTest('changes device state: needs the test-managed '
                          'soft HFI')

    def tearDown(self):
        hfi1_soft('port', '--name', self.dev_name, 'up', check=False)
        super().tearDown()

    def test_port_err_and_active(self):
        """Link down raises PORT_ERR, link up PORT_ACTIVE."""
        hfi1_soft('port', '--name', self.dev_name, 'down')
        ev = get_async_event(self.ctx)
        self.assertIsNotNone(ev, 'no event after link down')
        self.assertEqual(ev.event_type, e.IBV_EVENT_PORT_ERR)
        ev.ack()
        self.assertEqual(self.ctx.query_port(1).state, e.IBV_PORT_DOWN)

        hfi1_soft('port', '--name', self.dev_name, 'up')
        ev = get_async_event(self.ctx)
        self.assertIsNotNone(ev, 'no event after link up')
        self.assertEqual(ev.event_type, e.IBV_EVENT_PORT_ACTIVE)
        ev.ack()
        self.assertEqual(self.ctx.query_port(1).state, e.IBV_PORT_ACTIVE)

    def test_device_fatal_on_removal(self):
        """hfi1-soft down of an open device raises DEVICE_FATAL."""
        hfi1_soft('up', '--name', 'hfi1_7', '--lid', '77')
        try:
            ctx = Context(name='hfi1_7')
        except Exception:
            hfi1_soft('down', '--name', 'hfi1_7', check=False)
            raise
        try:
            hfi1_soft('down', '--name', 'hfi1_7')
            ev = get_async_event(ctx)
            self.assertIsNotNone(ev, 'no event after the device went away')
            self.assertEqual(ev.event_type, e.IBV_EVENT_DEVICE_FATAL)
            ev.ack()
            with self.assertRaises(PyverbsRDMAError) as cm:
                ctx.query_port(1)
            self.assertEqual(cm.exception.error_code, errno.ENODEV)
        finally:
            ctx.close()


class StateTrustTest(unittest.TestCase):
    """
    The provider takes the soft HFI's state only from files no other user
    can write: checked when a context opens, and each file again as it is
    read (softdev.c, "Whose tree").
    """

    def setUp(self):
        skip_unless_hfi1(self)
        if not soft_managed():
            self.skipTest('changes the device tree: needs the test-managed '
                          'soft HFI')
        hfi1_soft('up', '--name', 'hfi1_6', '--lid', '66')
        self.addCleanup(hfi1_soft, 'down', '--name', 'hfi1_6')
        self.lid = os.path.join(os.environ['SYSFS_PATH'], 'class',
                                'infiniband', 'hfi1_6', 'ports', '1', 'lid')

    def writable_lid(self):
        """Make ports/1/lid writable by others until the test ends."""
        os.chmod(self.lid, 0o666)
        self.addCleanup(os.chmod, self.lid, 0o644)

    def test_file_made_writable_after_open(self):
        """A file that became writable by others is refused as it is read."""
        with Context(name='hfi1_6') as ctx:
            self.assertEqual(ctx.query_port(1).lid, 66)
            self.writable_lid()
            with self.assertRaises(PyverbsRDMAError) as cm:
                ctx.query_port(1)
            self.assertEqual(cm.exception.error_code, errno.EACCES)
            os.chmod(self.lid, 0o644)
            self.assertEqual(ctx.query_port(1).lid, 66)

    def test_open_refused(self):
        """A context does not open on a tree others can write."""
        self.writable_lid()
        with self.assertRaises(PyverbsRDMAError) as cm:
            Context(name='hfi1_6')
        self.assertEqual(cm.exception.error_code, errno.EACCES)


class NonRootTest(Hfi1TestCase):
    """Once root has brought the soft HFI up, any user can open it."""

    def test_open_as_nobody(self):
        """User nobody opens hfi1_0, queries port 1 and allocates a PD."""
        if os.geteuid() != 0 or not shutil.which('setpriv'):
            self.skipTest('needs root and setpriv to switch to nobody')
        drivers = os.environ.get('RDMAV_DRIVERS', '')
        as_nobody = ['setpriv', '--reuid=nobody', '--regid=nogroup',
                     '--clear-groups']
        provider = drivers + '-rdmav34.so'
        if drivers and subprocess.run(as_nobody + ['test', '-r', provider]
                                      ).returncode:
            self.skipTest(f'{provider} is not readable by nobody')
        code = ('from pyverbs.device import Context\n'
                'from pyverbs.pd import PD\n'
                'ctx = Context(name="hfi1_0")\n'
                'print(ctx.query_port(1).lid)\n'
                'PD(ctx).close()\n'
                'ctx.close()\n')
        res = subprocess.run(as_nobody + ['/usr/bin/python3', '-c', code],
                             capture_output=True, text=True, cwd='/')
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertEqual(int(res.stdout), self.ctx.query_port(1).lid)


if __name__ == '__main__':
    unittest.main()
