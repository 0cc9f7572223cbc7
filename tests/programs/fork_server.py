"""A server with the bugs sockscope is for, for the holder tests.

    fork_server.py fork       one process accepts and keeps every
                              connection (a CLOSE_WAIT leak once clients
                              close); on "fork" it forks a child that
                              inherits the listener and every connection
                              and never closes them.
    fork_server.py prefork N  a master listens and forks N workers that
                              each accept and keep their connections.
    fork_server.py stall      listens and never accepts.

Prints "port P" first. Commands on stdin, one reply line each:
    accept N   accept N connections and keep them (fork mode)
    fork       fork the child; replies "child PID"
    workers    replies "workers PID PID ..." (prefork mode)
Every process exits when the test closes stdin (children notice their
parent is gone).
"""

import os
import socket
import sys
import time


def reply(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def hold_until_orphaned(parent):
    while os.getppid() == parent:
        time.sleep(0.1)
    os._exit(0)


def worker(listener, parent):
    # Accept and keep: the leak. A timeout lets it notice its master is gone.
    listener.settimeout(0.1)
    kept = []
    while os.getppid() == parent:
        try:
            conn, _ = listener.accept()
            kept.append(conn)
        except socket.timeout:
            pass
    os._exit(0)


def main():
    mode = sys.argv[1]
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    reply("port %d" % listener.getsockname()[1])
    kept = []
    me = os.getpid()
    if mode == "prefork":
        pids = []
        for _ in range(int(sys.argv[2])):
            pid = os.fork()
            if pid == 0:
                worker(listener, me)
            pids.append(pid)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "accept":
            for _ in range(int(words[1])):
                conn, _ = listener.accept()
                kept.append(conn)
            reply("ok")
        elif words[0] == "fork":
            pid = os.fork()
            if pid == 0:
                hold_until_orphaned(me)
            reply("child %d" % pid)
        elif words[0] == "workers":
            reply("workers " + " ".join(str(p) for p in pids))
        else:
            reply("err " + line.strip())


main()
