#!/usr/bin/env python3
"""Noisy neighbours for the test suite: processes that are not the suite's,
holding the kinds of sockets the suite looks for, so that a test that
asserts on the machine instead of on what it created fails in CI.

    neighbours.py close-wait-leak N   N connections whose peers closed, never closed here
    neighbours.py full-accept-queue   a listener (backlog 1) that never accepts, kept full
    neighbours.py impostor NAME       a process whose comm is NAME (e.g. the suite's own
                                      test binary) holding a listener and a CLOSE_WAIT leak

Each prints "ready" on stdout once its sockets are in place, then sleeps
until killed.
"""
import ctypes
import socket
import sys
import time


def set_comm(name):
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_NAME = 15
    libc.prctl(PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def close_wait_leak(n):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    held = []
    for _ in range(n):
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        client.close()  # the peer closes; we keep ours: CLOSE_WAIT
        held.append(accepted)
    return [listener] + held


def full_accept_queue():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    clients = []
    # More than the queue holds: the rest stay in SYN_SENT/SYN_RECV and the
    # kernel counts overflows.
    for _ in range(8):
        c = socket.socket()
        c.setblocking(False)
        c.connect_ex(listener.getsockname())
        clients.append(c)
    return [listener] + clients


def main():
    role = sys.argv[1]
    if role == "close-wait-leak":
        keep = close_wait_leak(int(sys.argv[2]))
    elif role == "full-accept-queue":
        keep = full_accept_queue()
    elif role == "impostor":
        set_comm(sys.argv[2])
        keep = close_wait_leak(12)
    else:
        sys.exit(f"unknown role {role}")
    print("ready", flush=True)
    while keep:
        time.sleep(3600)


if __name__ == "__main__":
    main()
