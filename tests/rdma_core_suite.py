# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Run rdma-core's pyverbs test suite and judge its outcome.

    python3 rdma_core_suite.py --suite DIR --skips FILE [--dev hfi1_0]
        [--port 1] [--json OUT] [--exclude GLOB]... [TEST...]

DIR is an unpacked copy of rdma-core's tests/ (a package named 'tests', as
rdma-core's run_tests.py loads it); tests/rdma_core_suite.sh makes one from
Debian's copy and brings up the soft HFI. TEST names (test_cq,
test_cq.CQTest.test_create_cq, ...) narrow the run as run_tests.py's do.
--exclude leaves out the tests whose id (module.Class.test) matches GLOB:
for a test that can neither pass nor skip here, named where the run is
set up with its reason; the summary lists every test left out.

Every test's outcome comes from unittest's result API, not from its text
output. The run passes only with no failure, no error, no unexpected
success and every skip's (test id, reason) matched by an entry of FILE,
whose format is described at its top. Exit status: 0 passed, 1 not.
"""

import argparse
import fnmatch
import importlib.util
import json
import os
import re
import sys
import time
import traceback
import unittest

CATEGORIES = ('vendor', 'hardware', 'machine', 'odp')


class SkipEntry:
    def __init__(self, lineno, id_pat, reason_pat, category, why):
        self.lineno = lineno
        self.id_pat = id_pat
        self.reason_pat = reason_pat
        self.category = category
        self.why = why
        self.used = 0

    def matches(self, test_id, reason):
        return (fnmatch.fnmatchcase(test_id, self.id_pat) and
                fnmatch.fnmatchcase(reason, self.reason_pat))


def read_skips(path):
    """Entries of the allow-list; a malformed line is an error."""
    entries = []
    errors = []
    with open(path, encoding='utf-8') as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            fields = [x.strip() for x in line.split('|')]
            if len(fields) != 4 or not all(fields):
                errors.append(f'{path}:{lineno}: want 4 non-empty fields '
                              'separated by "|": ID | REASON | CATEGORY | WHY')
                continue
            if fields[2] not in CATEGORIES:
                errors.append(f'{path}:{lineno}: category "{fields[2]}" is '
                              f'not one of {", ".join(CATEGORIES)}')
                continue
            entries.append(SkipEntry(lineno, *fields))
    return entries, errors


_HOLDER = re.compile(r'^(\w+) \((.*)\)$')


def test_id(test):
    """module.Class.test, without the package name 'tests.'.

    A failure or skip outside a test (setUpClass, setUpModule, an import)
    is reported on an _ErrorHolder whose id is 'setUpClass (tests.m.C)': it
    becomes m.C.setUpClass. A subtest keeps its ' (params)' suffix.
    """
    tid = test.id()
    m = _HOLDER.match(tid)
    if m and not isinstance(test, unittest.TestCase):
        tid = f'{m.group(2)}.{m.group(1)}'
    if tid.startswith('tests.'):
        tid = tid[len('tests.'):]
    return tid


def last_line(err_text):
    """The exception line of a formatted traceback."""
    lines = [x for x in err_text.strip().splitlines() if x.strip()]
    for line in reversed(lines):
        if not line.startswith(' '):
            return line.strip()
    return lines[-1].strip() if lines else ''


class Result(unittest.TextTestResult):
    """Records every outcome as (id, outcome, detail)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = []
        self._start = {}

    def _record(self, test, outcome, detail='', full=''):
        self.outcomes.append({'id': test_id(test), 'outcome': outcome,
                              'detail': detail, 'traceback': full})

    def startTest(self, test):
        super().startTest(test)
        self._start[test.id()] = time.monotonic()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._record(test, 'pass')

    def addFailure(self, test, err):
        super().addFailure(test, err)
        text = self.failures[-1][1]
        self._record(test, 'fail', last_line(text), text)

    def addError(self, test, err):
        super().addError(test, err)
        text = self.errors[-1][1]
        self._record(test, 'error', last_line(text), text)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._record(test, 'skip', str(reason))

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._record(test, 'pass', 'expected failure')

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._record(test, 'fail', 'unexpected success')

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None:
            return
        if issubclass(err[0], test.failureException):
            text = self.failures[-1][1]
            self._record(subtest, 'fail', last_line(text), text)
        else:
            text = self.errors[-1][1]
            self._record(subtest, 'error', last_line(text), text)


def load_suite(suite_dir, dev, port, names):
    """Load the suite as rdma-core's run_tests.py does."""
    sys.path.insert(0, suite_dir)
    # args_parser reads sys.argv, keeps its options and leaves unittest's.
    sys.argv = [os.path.join(suite_dir, 'run_tests.py'), '--dev', dev,
                '--port', str(port), '-v']
    from args_parser import parser
    parser.parse_args()
    spec = importlib.util.spec_from_file_location(
        'tests', os.path.join(suite_dir, '__init__.py'),
        submodule_search_locations=[suite_dir])
    tests = importlib.util.module_from_spec(spec)
    sys.modules['tests'] = tests
    spec.loader.exec_module(tests)
    loader = unittest.TestLoader()
    if names:
        return loader.loadTestsFromNames(names, tests)
    return loader.loadTestsFromModule(tests)


def exclude_tests(suite, globs):
    """The suite without the tests whose id matches a glob; and those."""
    kept = unittest.TestSuite()
    left_out = []
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            sub, out = exclude_tests(t, globs)
            kept.addTest(sub)
            left_out += out
            continue
        tid = t.id()
        tid = tid[len('tests.'):] if tid.startswith('tests.') else tid
        if any(fnmatch.fnmatchcase(tid, g) for g in globs):
            left_out.append(tid)
        else:
            kept.addTest(t)
    return kept, left_out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--suite', required=True,
                    help="unpacked copy of rdma-core's tests/")
    ap.add_argument('--skips', required=True, help='skip allow-list')
    ap.add_argument('--dev', default='hfi1_0')
    ap.add_argument('--port', type=int, default=1)
    ap.add_argument('--json', help='write every outcome here')
    ap.add_argument('--exclude', action='append', default=[],
                    metavar='GLOB', help='leave out the tests it matches')
    ap.add_argument('names', nargs='*', help='tests to run (default: all)')
    args = ap.parse_args()

    entries, bad = read_skips(args.skips)
    if bad:
        print('\n'.join(bad), file=sys.stderr)
        return 1

    suite_dir = os.path.abspath(args.suite)
    try:
        suite = load_suite(suite_dir, args.dev, args.port, args.names)
        suite, left_out = exclude_tests(suite, args.exclude)
    except Exception:
        traceback.print_exc()
        print('FAIL: could not load the suite', file=sys.stderr)
        return 1

    # The verbose lines go to stdout with the summary, so that the
    # provider's log lines (stderr) do not split them.
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=Result)
    result = runner.run(suite)
    outcomes = result.outcomes

    allowed = []
    not_allowed = []
    for o in outcomes:
        if o['outcome'] != 'skip':
            continue
        entry = next((e for e in entries
                      if e.matches(o['id'], o['detail'])), None)
        if entry:
            entry.used += 1
            o['allowed_by'] = f'{args.skips}:{entry.lineno}'
            o['category'] = entry.category
            allowed.append(o)
        else:
            not_allowed.append(o)

    passed = [o for o in outcomes if o['outcome'] == 'pass']
    failed = [o for o in outcomes if o['outcome'] == 'fail']
    errors = [o for o in outcomes if o['outcome'] == 'error']

    if args.json:
        with open(args.json, 'w', encoding='utf-8') as f:
            json.dump(outcomes, f, indent=1)

    def listing(title, items):
        if not items:
            return
        print(f'\n== {title} ({len(items)})')
        for o in items:
            print(f"  {o['id']}: {o['detail']}")

    if left_out:
        print(f'\n== left out by --exclude ({len(left_out)})')
        for tid in left_out:
            print(f'  {tid}')
    listing('failed', failed)
    listing('errors', errors)
    listing('skipped, not on the allow-list', not_allowed)

    per_module = {}
    for o in outcomes:
        mod = o['id'].split('.')[0]
        per_module.setdefault(mod, {'pass': 0, 'total': 0})
        per_module[mod]['total'] += 1
        per_module[mod]['pass'] += o['outcome'] == 'pass'
    print('\n== passed per module (passed/run)')
    for mod in sorted(per_module):
        print(f"  {mod:32} {per_module[mod]['pass']:4}/"
              f"{per_module[mod]['total']}")

    by_cat = {}
    for o in allowed:
        by_cat[o['category']] = by_cat.get(o['category'], 0) + 1
    cats = ', '.join(f'{c} {by_cat[c]}' for c in CATEGORIES if c in by_cat)
    print('\n== summary')
    print(f'  passed:                {len(passed)}')
    print(f'  failed:                {len(failed)}')
    print(f'  errors:                {len(errors)}')
    print(f'  skipped (allowed):     {len(allowed)}' +
          (f' ({cats})' if cats else ''))
    print(f'  skipped (not allowed): {len(not_allowed)}')
    if left_out:
        print(f'  left out (--exclude):  {len(left_out)}')
    unused = [e for e in entries if not e.used]
    if unused and not args.names:
        print(f'  allow-list entries that matched nothing: ' +
              ', '.join(str(e.lineno) for e in unused))

    ok = bool(outcomes) and not failed and not errors and not not_allowed
    print('PASS' if ok else 'FAIL')
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
