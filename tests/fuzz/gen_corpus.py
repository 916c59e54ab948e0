#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause
"""Write the hand-made seeds of fuzz_softhfi_ioctl into corpus/.

Each seed is a header and a list of operations in the input format that
fuzz_softhfi_ioctl.c describes at its top; the helpers below mirror its
pick_*() functions. The repro-* seeds are the bugs the fuzzer found.

    tests/fuzz/gen_corpus.py [DIR]
"""
import os
import struct
import sys

# Header byte 0.
EXP = {64: 0, 8: 1, 16: 2, 1024: 3}
CACHE = {256: 0, 1: 1, 2: 2, 4: 3}
NOCAP = 0x40
LOW_MEMLOCK = 0x80
# Header byte 1: contig_pages from the table, or 0x80 | n for 1 + 4 * n.
CONTIG = {512: 0, 1: 1, 2: 2, 4: 3, 8: 4, 16: 5, 3: 6, 5: 7, 7: 8}

RW_PAGES = 1100
GUARD = 16

# Pointer selectors (pick_ptr).
BUF, NULL = b"\x00", b"\x06"


def wild(raw=0):
    return b"\x07" + struct.pack("<Q", raw)


def rw_ptr(off):
    return b"\x03" + struct.pack("<H", off)


def rw_end_ptr(before_end):
    return b"\x43" + struct.pack("<H", before_end)


def ro_ptr(off):
    return b"\x04" + struct.pack("<H", off)


def header(exp=64, cache=256, contexts=1, contig=512, flags=0):
    b0 = EXP[exp] | CACHE[cache] << 2 | (contexts - 1) << 4 | flags
    return bytes([b0, CONTIG[contig], 0])


def vaddr_rw(page, misalign=0):
    """A page of the read-write arena (pick_vaddr)."""
    sel = 0x40 if misalign else 0
    out = bytes([sel]) + struct.pack("<H", page + GUARD)
    if misalign:
        out += struct.pack("<H", misalign - 1)
    return out


def vaddr_arena(k, page):
    """Page of arena k: 1 read-only, 2 PROT_NONE, 3 memfd."""
    return bytes([5 | (k - 1) << 3]) + struct.pack("<H", page + GUARD)


def vaddr_text(page):
    """A page of the fuzzer's own text, which userfaultfd refuses."""
    return b"\x1d" + bytes([page])


def pages(n):
    """A length of n pages, 1 <= n <= 1100 (pick_length)."""
    return b"\x03" + struct.pack("<H", n - 1)


def update(vaddr, length, tidlist=BUF, arg=BUF):
    return b"\x00" + vaddr + length + tidlist + b"\x01" + arg


def free(nth_held, tidlist=BUF, arg=BUF):
    """TID_FREE of the n-th entries held (at most 32 of them)."""
    words = b"".join(bytes([n << 3]) for n in nth_held)
    return b"\x01" + bytes([len(nth_held)]) + words + b"\x01" + tidlist + arg


def inval_read(tidlist=BUF, arg=BUF):
    return b"\x02" + tidlist + struct.pack("<I", 0) + arg


def ack(arg=BUF):
    return b"\x03" + b"\x02" + arg


MUNMAP, DONTNEED, FREE, MREMAP, DONTUNMAP, MAP_FIXED, MPROTECT = range(7)


def mem(kind, page, npages, k=None):
    """A memory operation on pages of the read-write arena (or arena k)."""
    sel = kind << 3 | (4 if k is None else k)
    size = RW_PAGES if k is None else 32
    return (b"\x05" + bytes([sel]) + struct.pack("<H", page) +
            struct.pack("<H", (npages - 1) % (size - page)))


def place(nth_held, data, offset, length):
    return (b"\x06" + bytes([nth_held << 3]) + b"\x00" + bytes([len(data)]) +
            data + struct.pack("<H", offset // 7) + bytes([length]))


def raw(cmd_index, payload=b"", arg=BUF):
    """A command of the fuzzer's table (its index) with a payload."""
    return b"\x04" + bytes([cmd_index]) + payload.ljust(64, b"\0") + arg


def raw_cmd(cmd, payload=b"", arg=BUF):
    """Any command number."""
    return (b"\x04\x80" + struct.pack("<Q", cmd) + payload.ljust(64, b"\0") +
            arg)


SEEDS = {
    # Program, free; the basic path.
    "update-free": header() + update(vaddr_rw(0), pages(8)) + free([0]),
    # One entry per page; unmap some of them; read the invalidations.
    "munmap-inval": header(contig=1) + update(vaddr_rw(8), pages(8)) +
    mem(MUNMAP, 10, 3) + inval_read() + ack() + free(list(range(8))),
    # The other memory operations, each under its own entries.
    "mem-ops": header(contig=4) + update(vaddr_rw(0), pages(32)) +
    mem(DONTNEED, 2, 1) + mem(FREE, 6, 2) + mem(MREMAP, 12, 2) +
    mem(DONTUNMAP, 18, 1) + mem(MAP_FIXED, 22, 1) + mem(MPROTECT, 27, 2) +
    inval_read() + free(list(range(8))),
    # Place bytes into an entry, then into a stale one.
    "place": header(contig=1) + update(vaddr_rw(4), pages(2)) +
    place(0, b"0123456789abcdef", 14, 16) + mem(MUNMAP, 4, 1) +
    place(0, b"xyz", 0, 3) + inval_read() + free([0, 1]),
    # Entries run out: partial success, then ENOSPC.
    "enospc": header(exp=8, contig=1) + update(vaddr_rw(0), pages(6)) +
    update(vaddr_rw(40), pages(4)) + update(vaddr_rw(80), pages(1)) +
    free([0, 1, 2]),
    # Runs of 512 pages in a context of 1024 entries.
    "big": header(exp=1024) + update(vaddr_rw(0), pages(1024)) +
    mem(DONTNEED, 700, 1) + inval_read() + free([0, 1]),
    # The pin limit: a 1 MiB cache, and RLIMIT_MEMLOCK without
    # CAP_IPC_LOCK.
    "pin-limits": header(exp=1024, cache=1, contig=16) +
    update(vaddr_rw(0), pages(200)) +
    update(vaddr_rw(300), pages(200)) + free([0]),
    "nocap": header(flags=NOCAP | LOW_MEMLOCK, contexts=2, contig=8) +
    update(vaddr_rw(0), pages(16)) + update(vaddr_rw(100), pages(64)) +
    free([0, 1]),
    # Memory that cannot be pinned, a misaligned address, a run into the
    # guard, memory userfaultfd refuses, the memfd arena.
    "bad-memory": header(contig=2) + update(vaddr_arena(1, 0), pages(4)) +
    update(vaddr_arena(2, 0), pages(4)) + update(vaddr_rw(0, 5), pages(1)) +
    update(vaddr_rw(RW_PAGES - 2), pages(6)) +
    update(vaddr_text(3), pages(2)) + update(vaddr_arena(3, 4), pages(8)) + mem(DONTNEED, 5, 2, k=3) +
    inval_read() + free([0, 1, 2]),
    # Pointers that fault: NULL, wild, read-only, PROT_NONE.
    "bad-pointers": header(contig=1) +
    update(vaddr_rw(0), pages(2), tidlist=NULL) +
    update(vaddr_rw(0), pages(2), tidlist=wild(1)) +
    update(vaddr_rw(0), pages(2), arg=ro_ptr(0)) +
    update(vaddr_rw(0), pages(2), tidlist=rw_end_ptr(6)) +
    update(vaddr_rw(0), pages(2), tidlist=rw_ptr(4090)) +
    update(vaddr_rw(0), pages(2)) + mem(MUNMAP, 0, 1) +
    inval_read(tidlist=NULL) + inval_read(arg=b"\x05\x10") +
    free([0], tidlist=wild(2)) + free([0, 1], arg=NULL) + ack(arg=wild(3)) +
    inval_read() + free([0, 1]),
    # Every known command with a zeroed struct, an unknown one, one that
    # faults.
    "raw-cmds": header() + b"".join(raw(i) for i in (0, 1, 2, 3, 6, 7, 8, 9,
                                                     10, 11)) +
    raw_cmd(0xc0181bff) + raw(2, arg=NULL),
    # Close while the notifier's worker applies events: it used to drain
    # a watch whose notifier detach had already cleared (a NULL
    # dereference in a few runs in a hundred).
    "repro-detach-race": header(contig=1) + update(vaddr_rw(0), pages(16)) +
    b"".join(mem(DONTNEED, 0, 16) for _ in range(60)),
    # A zero-length placement with a malformed tidinfo returned 0, not
    # EINVAL (as the fuzzer found it).
    "repro-place-len0": bytes.fromhex("0000c53e0001eaffffff00"),
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
