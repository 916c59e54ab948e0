# SPDX-License-Identifier: (GPL-2.0 OR Linux-OpenIB)
"""
Base module of the libhfi1 pyverbs tests, in the manner of rdma-core's
tests/base.py and tests/efa_base.py.

Importing it makes sure a soft HFI is there to test: when SYSFS_PATH does
not already name a device tree, it brings up two soft HFIs (hfi1_0, LID 1
and hfi1_1, LID 2) in a private HFI1_SOFT_RUNDIR with the hfi1-soft named
by $HFI1_SOFT (default: build/bin/hfi1-soft), exports what hfi1-soft
prints, and takes them down again at exit. That must happen before
libibverbs first scans for devices, which is why it happens at import.
"""
import atexit
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
import queue
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
HFI1_SOFT = os.environ.get(
    'HFI1_SOFT', os.path.join(HERE, '..', 'build', 'bin', 'hfi1-soft'))
HFI1_MRSTAT = os.environ.get(
    'HFI1_MRSTAT', os.path.join(HERE, '..', 'build', 'bin', 'hfi1_mrstat'))
DEV_NAMES = ('hfi1_0', 'hfi1_1')
DEV_LIDS = {'hfi1_0': 1, 'hfi1_1': 2}

_bringup_error = None
_rundir = None


def hfi1_soft(*args, check=True):
    """Run hfi1-soft with our private rundir; return its CompletedProcess."""
    return subprocess.run([HFI1_SOFT, *args], capture_output=True, text=True,
                          check=check)


def _export(lines):
    for line in lines.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == 'export' and '=' in words[1]:
            key, value = words[1].split('=', 1)
            os.environ[key] = value


def _take_down():
    hfi1_soft('down', check=False)
    shutil.rmtree(_rundir, ignore_errors=True)


def _bring_up():
    global _rundir
    if os.environ.get('SYSFS_PATH'):
        return None
    if not os.access(HFI1_SOFT, os.X_OK):
        return f'{HFI1_SOFT} is not built (cmake --build build)'
    if os.geteuid() != 0:
        return 'bringing up a soft HFI needs root (or export SYSFS_PATH ' \
               'and RDMAV_DRIVERS from "hfi1-soft up" first)'
    _rundir = tempfile.mkdtemp(prefix='hfi1-soft-test.')
    os.chmod(_rundir, 0o755)
    os.environ['HFI1_SOFT_RUNDIR'] = _rundir
    atexit.register(_take_down)
    for name in DEV_NAMES:
        res = hfi1_soft('up', '--name', name, '--lid', str(DEV_LIDS[name]),
                        check=False)
        if res.returncode:
            return f'hfi1-soft up --name {name} failed: {res.stderr.strip()}'
        _export(res.stdout)
    return None


_bringup_error = _bring_up()

# pyverbs must be imported after the environment is set.
from pyverbs.device import Context, get_device_list  # noqa: E402
from pyverbs.pyverbs_error import PyverbsRDMAError  # noqa: E402
import pyverbs.enums as e  # noqa: E402


# The attr_mask of each move to INIT, RTR and RTS, per QP type: what the
# IB spec requires, as pyverbs' to_init/to_rtr/to_rts send it.
INIT_MASK = {
    e.IBV_QPT_RC: e.IBV_QP_STATE | e.IBV_QP_PKEY_INDEX | e.IBV_QP_PORT |
    e.IBV_QP_ACCESS_FLAGS,
    e.IBV_QPT_UC: e.IBV_QP_STATE | e.IBV_QP_PKEY_INDEX | e.IBV_QP_PORT |
    e.IBV_QP_ACCESS_FLAGS,
    e.IBV_QPT_UD: e.IBV_QP_STATE | e.IBV_QP_PKEY_INDEX | e.IBV_QP_PORT |
    e.IBV_QP_QKEY,
}
RTR_MASK = {
    e.IBV_QPT_RC: e.IBV_QP_STATE | e.IBV_QP_AV | e.IBV_QP_PATH_MTU |
    e.IBV_QP_DEST_QPN | e.IBV_QP_RQ_PSN | e.IBV_QP_MAX_DEST_RD_ATOMIC |
    e.IBV_QP_MIN_RNR_TIMER,
    e.IBV_QPT_UC: e.IBV_QP_STATE | e.IBV_QP_AV | e.IBV_QP_PATH_MTU |
    e.IBV_QP_DEST_QPN | e.IBV_QP_RQ_PSN,
    e.IBV_QPT_UD: e.IBV_QP_STATE,
}
RTS_MASK = {
    e.IBV_QPT_RC: e.IBV_QP_STATE | e.IBV_QP_TIMEOUT | e.IBV_QP_RETRY_CNT |
    e.IBV_QP_RNR_RETRY | e.IBV_QP_SQ_PSN | e.IBV_QP_MAX_QP_RD_ATOMIC,
    e.IBV_QPT_UC: e.IBV_QP_STATE | e.IBV_QP_SQ_PSN,
    e.IBV_QPT_UD: e.IBV_QP_STATE | e.IBV_QP_SQ_PSN,
}


def hfi1_devices():
    """Names of the hfi1 devices libibverbs lists."""
    return [d.name.decode() for d in get_device_list()
            if d.name.decode().startswith('hfi1_')]


def is_hfi1_dev(name):
    """True if libhfi1 serves this device (the soft HFI or a real hfi1)."""
    return name in hfi1_devices()


def skip_unless_hfi1(test):
    """Skip a TestCase unless an hfi1 device is available."""
    if _bringup_error:
        raise unittest.SkipTest(_bringup_error)
    if not hfi1_devices():
        raise unittest.SkipTest('no hfi1 device (hfi1-soft up)')


def soft_managed():
    """True if this module brought the soft HFIs up (so tests may change
    their state with hfi1-soft)."""
    return _rundir is not None


class Hfi1TestCase(unittest.TestCase):
    """Base of the libhfi1 tests: opens self.ctx on self.dev_name."""
    dev_name = 'hfi1_0'

    def setUp(self):
        skip_unless_hfi1(self)
        if not is_hfi1_dev(self.dev_name):
            self.skipTest(f'{self.dev_name} is not up')
        self.ctx = Context(name=self.dev_name)

    def tearDown(self):
        if getattr(self, 'ctx', None):
            self.ctx.close()


def get_async_event(ctx, timeout=5.0):
    """
    ibv_get_async_event() blocks and pyverbs does not expose the async fd,
    so wait for it from a daemon thread; returns the AsyncEvent or None.
    """
    result = queue.Queue()

    def reader():
        try:
            result.put(ctx.get_async_event())
        except PyverbsRDMAError as err:
            result.put(err)

    threading.Thread(target=reader, daemon=True).start()
    try:
        ev = result.get(timeout=timeout)
    except queue.Empty:
        return None
    if isinstance(ev, Exception):
        raise ev
    return ev


def mrstat(pid=None):
    """The live contexts of this process, as hfi1_mrstat --json has them."""
    res = subprocess.run([HFI1_MRSTAT, '-p', str(pid or os.getpid()),
                          '--json'], capture_output=True, text=True)
    if res.returncode:
        raise AssertionError(f'hfi1_mrstat failed: {res.stderr}')
    return json.loads(res.stdout)['contexts']


def wait_until(predicate, timeout=5.0):
    """Poll @predicate until it holds; its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.01)
