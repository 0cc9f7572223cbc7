"""A process that holds one loopback listener, in the shapes the owner scan
gets wrong, for tests/integration/owner_scan.rs.

    owner_child.py [leaderless] [nondumpable]

    leaderless   the main thread exits (SYS_exit, not exit_group) while a
                 second thread keeps the listener: /proc/PID/fd is empty,
                 /proc/PID/task/TID/fd still lists it.
    nondumpable  prctl(PR_SET_DUMPABLE, 0): /proc/PID belongs to root.

Prints "@@ ok PORT" once listening. Commands on stdin, "@@ ok" each:
    comm NAME    renames the process (writes /proc/self/comm)
Exits when stdin closes. Run as `python3 -c "$(cat owner_child.py)" ...`
by tests, so that another user need not read this file.
"""

import ctypes
import os
import platform
import socket
import sys
import threading

libc = ctypes.CDLL(None, use_errno=True)
modes = sys.argv[1:]
if "nondumpable" in modes:
    PR_SET_DUMPABLE = 4
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE)")

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()


def reply(line):
    sys.stdout.write("@@ ok " + line + "\n")
    sys.stdout.flush()


def serve():
    for line in sys.stdin:
        words = line.split()
        if words[:1] == ["comm"]:
            with open("/proc/self/comm", "w") as f:
                f.write(words[1])
            reply("")
    os._exit(0)


reply(str(listener.getsockname()[1]))
if "leaderless" in modes:
    threading.Thread(target=serve).start()
    # The main thread alone exits; the process lives on in the other thread.
    SYS_exit = {"x86_64": 60, "aarch64": 93}[platform.machine()]
    libc.syscall(SYS_exit, 0)
else:
    serve()
