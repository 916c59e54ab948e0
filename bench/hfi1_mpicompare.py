#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""hfi1_mpicompare: MPI over the soft HFI against UCX over TCP, in one run.

Runs hfi1_mpibench under Open MPI's UCX PML three ways, round after round
on the same host: over the soft HFI (UCX_TLS=rc_v,self, rank N on hfi1_N),
over TCP (UCX_TLS=tcp,self) and over UCX's shared memory (UCX_TLS=sm,self,
the ceiling). The order rotates every round, so that a drift of the
machine falls on each in turn. It prints each round's 8-byte half round
trip and 1 MiB streaming bandwidth, the soft HFI's and shared memory's
ratios to TCP in that round, and the medians of those ratios against the
targets: latency at most 0.7x TCP, bandwidth at least 1.5x TCP.

The soft HFI must be up (hfi1-soft up-all, or tests/with_soft_hfi.sh).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

LAT_SIZE = 8
BW_SIZE = 1 << 20
LAT_TARGET = 0.7
BW_TARGET = 1.5

# Debian's openmpi-mca-params.conf turns the UCX PML off, and Open MPI
# gives it only to Mellanox devices unless pml_ucx_devices says any.
MPIRUN = ['mpirun', '--allow-run-as-root', '-np', '2', '--mca', 'pml', 'ucx',
          '--mca', 'pml_ucx_devices', 'any']
# Each rank on its own device: rank N on hfi1_N.
RANK_DEVICE = ['sh', '-c',
               'UCX_NET_DEVICES=hfi1_${OMPI_COMM_WORLD_LOCAL_RANK}:1 '
               'exec "$0" "$@"']

TRANSPORTS = {
    'hfi1': (['-x', 'UCX_TLS=rc_v,self'], RANK_DEVICE),
    'tcp': (['--mca', 'pml_ucx_tls', 'any', '-x', 'UCX_TLS=tcp,self'], []),
    'sm': (['--mca', 'pml_ucx_tls', 'any', '-x', 'UCX_TLS=sm,self'], []),
}
NAMES = {'hfi1': 'soft HFI', 'tcp': 'TCP', 'sm': 'shared memory'}


def parse_args():
    p = argparse.ArgumentParser(
        description='MPI 8 B latency and 1 MiB bandwidth over the soft '
        'HFI, UCX over TCP and UCX shared memory, in one run.')
    p.add_argument('--rounds', type=int, default=5,
                   help='rounds of the three (default 5)')
    p.add_argument('--quick', action='store_true',
                   help='hfi1_mpibench --quick (a smoke run)')
    p.add_argument('--json', action='store_true', help='print JSON')
    p.add_argument('--mpibench', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'hfi1_mpibench'),
        help='hfi1_mpibench (default: beside this program)')
    p.add_argument('--timeout', type=int, default=300,
                   help='seconds for each mpirun (default 300)')
    a = p.parse_args()
    if a.rounds < 1:
        p.error('--rounds must be at least 1')
    return a


def run_one(args, transport):
    """{bytes: (latency_us, bandwidth_mbs)} of one hfi1_mpibench run."""
    opts, wrapper = TRANSPORTS[transport]
    cmd = (MPIRUN + opts + wrapper +
           [args.mpibench, '--json', '--max', str(BW_SIZE)] +
           (['--quick'] if args.quick else []))
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True,
                           timeout=args.timeout, check=False)
    except subprocess.TimeoutExpired:
        sys.exit('hfi1_mpicompare: %s: mpirun took over %d s' %
                 (NAMES[transport], args.timeout))
    doc = None
    for line in p.stdout.splitlines():
        if line.startswith('{'):
            doc = json.loads(line)
    if p.returncode or doc is None:
        sys.stderr.write(p.stdout + p.stderr)
        sys.exit('hfi1_mpicompare: %s: mpirun exited %d' %
                 (NAMES[transport], p.returncode))
    if doc['corrupt_messages']:
        sys.exit('hfi1_mpicompare: %s: %d corrupt messages' %
                 (NAMES[transport], doc['corrupt_messages']))
    return {s['bytes']: (s['latency_us'], s['bandwidth_mbs'])
            for s in doc['sizes']}


def main():
    args = parse_args()
    if not shutil.which('mpirun'):
        sys.exit('hfi1_mpicompare: mpirun is not installed '
                 '(Debian: openmpi-bin)')
    if not os.access(args.mpibench, os.X_OK):
        sys.exit('hfi1_mpicompare: no %s' % args.mpibench)
    order = list(TRANSPORTS)
    rounds = []
    for r in range(args.rounds):
        res = {}
        for t in order[r % 3:] + order[:r % 3]:
            res[t] = run_one(args, t)
        lat = {t: res[t][LAT_SIZE][0] for t in order}
        bw = {t: res[t][BW_SIZE][1] for t in order}
        rounds.append({
            'latency_us': lat,
            'bandwidth_mbs': bw,
            'latency_ratio': lat['hfi1'] / lat['tcp'],
            'bandwidth_ratio': bw['hfi1'] / bw['tcp'],
            'sm_bandwidth_ratio': bw['sm'] / bw['tcp'],
        })
        if not args.json:
            rr = rounds[-1]
            if r == 0:
                print('hfi1_mpicompare: hfi1_mpibench, 2 ranks; soft HFI '
                      '(rc_v, hfi1_0 and hfi1_1), TCP, shared memory')
                print('%5s  %-28s  %-34s' %
                      ('round', '8 B half round trip (us)',
                       '1 MiB bandwidth (MB/s)'))
                print('%5s  %6s %6s %6s %7s  %7s %7s %7s %7s %7s' %
                      ('', 'HFI', 'TCP', 'sm', 'HFI/TCP', 'HFI', 'TCP',
                       'sm', 'HFI/TCP', 'sm/TCP'))
            print('%5d  %6.2f %6.2f %6.2f %6.2fx  %7.0f %7.0f %7.0f '
                  '%6.2fx %6.2fx' %
                  (r + 1, lat['hfi1'], lat['tcp'], lat['sm'],
                   rr['latency_ratio'], bw['hfi1'], bw['tcp'], bw['sm'],
                   rr['bandwidth_ratio'], rr['sm_bandwidth_ratio']))
            sys.stdout.flush()

    def med(key):
        return statistics.median(x[key] for x in rounds)

    summary = {
        'latency_ratio': med('latency_ratio'),
        'bandwidth_ratio': med('bandwidth_ratio'),
        'sm_bandwidth_ratio': med('sm_bandwidth_ratio'),
        'latency_rounds_met': sum(x['latency_ratio'] <= LAT_TARGET
                                  for x in rounds),
        'bandwidth_rounds_met': sum(x['bandwidth_ratio'] >= BW_TARGET
                                    for x in rounds),
        'sm_bandwidth_rounds_at_target': sum(
            x['sm_bandwidth_ratio'] >= BW_TARGET for x in rounds),
    }
    if args.json:
        json.dump({'rounds': rounds, 'median': summary,
                   'targets': {'latency_ratio_max': LAT_TARGET,
                               'bandwidth_ratio_min': BW_TARGET}},
                  sys.stdout)
        print()
        return
    n = len(rounds)
    print('medians over %d rounds:' % n)
    print('  8 B latency: soft HFI %.2fx TCP (target <= %.1fx; met in %d '
          'of %d rounds)' % (summary['latency_ratio'], LAT_TARGET,
                             summary['latency_rounds_met'], n))
    print('  1 MiB bandwidth: soft HFI %.2fx TCP (target >= %.1fx; met in '
          '%d of %d rounds)' % (summary['bandwidth_ratio'], BW_TARGET,
                                summary['bandwidth_rounds_met'], n))
    print('  ceiling: shared memory %.2fx TCP (>= %.1fx in %d of %d rounds)'
          % (summary['sm_bandwidth_ratio'], BW_TARGET,
             summary['sm_bandwidth_rounds_at_target'], n))


if __name__ == '__main__':
    main()
