#!/usr/bin/env python3
"""Network namespaces with a few idle sockets each, for bench/netns.sh.

    sudo bench/netns_load.py [--namespaces 200] [--sockets 50] [--prefix sockscope-bench-]
    sudo bench/netns_load.py --remove [--prefix sockscope-bench-]

Makes NAMESPACES network namespaces with `ip netns add PREFIXi` (bind-mounted
at /run/netns/PREFIXi), brings their loopback up, and in each starts one
process (forked from this one; it enters the namespace with setns) that holds
exactly SOCKETS sockets on 127.0.0.1 inside it: a TCP listener, (SOCKETS-1)/2
connections accepted from it (both ends, so two sockets each), and one UDP
socket when SOCKETS-1 is odd. 50 = 1 + 24 * 2 + 1. Nothing is sent: the
namespaces stay idle, their counters still.

SIGUSR1 to this process turns chatter on or off in every namespace: each
process then sends one byte over one of its connections every 0.2 s
(--chatter-every), so that its namespace's counters move and a collector
cannot reuse its last table. SIGUSR2 turns on or off, in the host's
namespace, a server whose connections come and go (about 200 connects a
second, between 0 and 200 of them open, reset on close): nothing changes in
the namespaces, but the machine-wide TCP figures every namespace's
/proc/net/sockstat shows (alloc, mem) move, as on a busy host.

Prints one line starting with `ready:` when every process holds its sockets,
then waits until its stdin closes (EOF) or it gets SIGTERM, SIGINT or SIGHUP,
and then stops its processes and deletes every namespace it made. Its
processes exit by themselves when this one is gone, even killed with
SIGKILL (their lifeline pipe closes); only the namespaces would be left, and
`--remove`, or the next run, deletes them. With stdin on /dev/null it waits
for a signal only.

Every TCP socket has SO_LINGER 0, so stopping resets the connections instead
of leaving TIME_WAIT sockets that keep a namespace alive for a minute.

Only namespaces whose name starts with PREFIX are ever touched; namespaces
left with it by an earlier run are deleted first (and said so). A lock
(/run/lock/sockscope-netns-load.PREFIX.lock, held while the load runs) keeps
a second run with the same prefix, or --remove, from deleting the
namespaces of one that is running: it stops with a message instead.

Python 3 standard library only; needs root and `ip` (iproute2).
"""

import argparse
import collections
import ctypes
import random
import fcntl
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"
PORT = 7000


def say(msg):
    print(f"netns_load: {msg}", file=sys.stderr, flush=True)


def ip(*args, check=True):
    return subprocess.run(["ip", *args], check=check, stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True)


def ours(prefix):
    """Names of the namespaces with our prefix that exist now."""
    out = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True,
                         text=True).stdout
    # Lines are `NAME` or `NAME (id: N)`.
    return [line.split()[0] for line in out.splitlines()
            if line.split() and line.split()[0].startswith(prefix)]


def remove(names):
    failed = []
    for name in names:
        r = ip("netns", "del", name, check=False)
        if r.returncode != 0:
            failed.append(f"{name}: {r.stderr.strip()}")
    for f in failed:
        say(f"could not delete namespace {f}")
    return not failed


def take_lock(prefix):
    """An exclusive lock for PREFIX, or None when a live run holds it. The
    forked processes inherit it, so it lasts as long as the load does."""
    path = f"/run/lock/sockscope-netns-load.{prefix}lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
        say(f"another netns_load with prefix {prefix} is running (pid {holder}, lock {path}): "
            "its namespaces are left alone; wait for it to end")
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


class Stop(Exception):
    pass


def on_signal(signum, _frame):
    raise Stop(signal.Signals(signum).name)


# ------------------------------------------------------------------ child
def hold(name, sockets, lifeline_r, ready_w, chatter_every):
    """In a forked child: enter namespace `name`, hold `sockets` sockets,
    say so on `ready_w`, and wait until `lifeline_r` reaches EOF, chatting
    while SIGUSR1 says so."""
    chatter = [False]
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGUSR1, lambda *_: chatter.__setitem__(0, not chatter[0]))
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"{NETNS_DIR}/{name}", os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    os.close(fd)

    linger0 = struct.pack("ii", 1, 0)
    held = []
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
    listener.bind(("127.0.0.1", PORT))
    listener.listen(128)
    held.append(listener)
    pairs, udp = divmod(sockets - 1, 2)
    for _ in range(pairs):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        client.connect(("127.0.0.1", PORT))
        server, _ = listener.accept()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        held += [client, server]
    if udp:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", PORT + 1))
        held.append(u)
    assert len(held) == sockets
    os.write(ready_w, b"r")
    os.close(ready_w)
    # Idle until the coordinator is gone or says so.
    while True:
        r, _, _ = select.select([lifeline_r, wake_r], [], [],
                                chatter_every if chatter[0] else None)
        if lifeline_r in r and not os.read(lifeline_r, 64):
            os._exit(0)
        if wake_r in r:
            os.read(wake_r, 64)
        if chatter[0] and not r and pairs:
            held[1].send(b"x")
            held[2].recv(1)


# ------------------------------------------------------------ coordinator
def host_churn(stop):
    """In the host's namespace, until `stop` is set: connections that come
    and go, so that the machine-wide TCP counters move."""
    linger0 = struct.pack("ii", 1, 0)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    addr = listener.getsockname()
    held = collections.deque()
    rng = random.Random(12)
    target = 100
    while not stop.is_set():
        if rng.random() < 0.05:
            target = rng.randint(0, 200)
        client = socket.create_connection(addr)
        server, _ = listener.accept()
        for sock in (client, server):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger0)
        held.append((client, server))
        while len(held) > target:
            for sock in held.popleft():
                sock.close()
        stop.wait(0.005)
    for pair in held:
        for sock in pair:
            sock.close()
    listener.close()


def stdin_is_devnull():
    try:
        a, b = os.fstat(0), os.stat("/dev/null")
    except OSError:
        return True
    return stat.S_ISCHR(a.st_mode) and a.st_rdev == b.st_rdev


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--namespaces", type=int, default=200)
    p.add_argument("--sockets", type=int, default=50, help="sockets per namespace (>= 1)")
    p.add_argument("--prefix", default="sockscope-bench-")
    p.add_argument("--chatter-every", type=float, default=0.2,
                   help="seconds between two bytes while chatter is on (SIGUSR1)")
    p.add_argument("--remove", action="store_true",
                   help="only delete the namespaces named PREFIX*, and exit")
    args = p.parse_args()
    if os.geteuid() != 0:
        say("run as root: it creates network namespaces")
        return 1
    if args.namespaces < 0 or args.sockets < 1:
        say("--namespaces must be >= 0 and --sockets >= 1")
        return 2
    if len(args.prefix) < 4 or "/" in args.prefix:
        say("--prefix must be at least 4 characters and contain no '/'")
        return 2

    if take_lock(args.prefix) is None:
        return 1
    stale = ours(args.prefix)
    if stale:
        say(f"deleting {len(stale)} namespaces named {args.prefix}* left by an earlier run")
        remove(stale)
    if args.remove:
        return 0

    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, on_signal)
    made, children = [], []
    chatting = [False]

    def toggle(_signum, _frame):
        chatting[0] = not chatting[0]
        for pid in children:
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:
                pass
        say(f"chatter {'on' if chatting[0] else 'off'} in {len(children)} namespaces")
    signal.signal(signal.SIGUSR1, toggle)
    churn = {}

    def toggle_host(_signum, _frame):
        if churn:
            churn["stop"].set()
            churn["thread"].join()
            churn.clear()
            say("host churn off")
        else:
            churn["stop"] = threading.Event()
            churn["thread"] = threading.Thread(target=host_churn, args=(churn["stop"],), daemon=True)
            churn["thread"].start()
            say("host churn on: connections coming and going in the host's namespace")
    signal.signal(signal.SIGUSR2, toggle_host)

    lifeline_r, lifeline_w = os.pipe()
    ready_r, ready_w = os.pipe()
    status = 0
    try:
        t0 = time.monotonic()
        for i in range(args.namespaces):
            name = f"{args.prefix}{i}"
            ip("netns", "add", name)
            made.append(name)
            ip("-n", name, "link", "set", "lo", "up")
        for name in made:
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                try:
                    os.close(lifeline_w)
                    os.close(ready_r)
                    hold(name, args.sockets, lifeline_r, ready_w, args.chatter_every)
                except BaseException as e:  # noqa: BLE001 - a child must never return
                    print(f"netns_load: {name}: {e}", file=sys.stderr, flush=True)
                    os._exit(1)
                os._exit(0)
            children.append(pid)
        os.close(ready_w)
        ready_w = -1
        got = 0
        deadline = time.monotonic() + 60
        while got < len(children):
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {got} of {len(children)} namespaces ready after 60 s")
            r, _, _ = select.select([ready_r], [], [], 0.5)
            if r:
                n = len(os.read(ready_r, 4096))
                if n == 0:
                    break
                got += n
            pid, st = os.waitpid(-1, os.WNOHANG)
            if pid:
                raise RuntimeError(f"process {pid} in a namespace exited (status {st}) before holding its sockets")
        if got < len(children):
            raise RuntimeError(f"only {got} of {len(children)} namespaces ready")
        print(f"ready: namespaces={len(made)} sockets_per_namespace={args.sockets} "
              f"sockets={len(made) * args.sockets} prefix={args.prefix} pid={os.getpid()} "
              f"setup_s={time.monotonic() - t0:.1f}", flush=True)

        # Wait for EOF on stdin, or a signal.
        watch = [] if stdin_is_devnull() else [0]
        while True:
            r, _, _ = select.select(watch, [], [], 3600)
            if r and not os.read(0, 4096):
                break
    except Stop as e:
        say(f"{e}: stopping")
        status = 0
    except Exception as e:  # noqa: BLE001 - report, then clean up
        say(f"failed: {e}")
        status = 1
    finally:
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(s, signal.SIG_IGN)
        if churn:
            churn["stop"].set()
            churn["thread"].join()
        os.close(lifeline_w)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if made and not remove(made):
            status = status or 1
        # Anything with our prefix that a failure left half made.
        left = [n for n in ours(args.prefix) if n not in made]
        if left:
            remove(left)
        say(f"stopped {len(children)} processes, deleted {len(made)} namespaces")
    return status


if __name__ == "__main__":
    sys.exit(main())
