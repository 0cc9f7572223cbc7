"""Holds loopback sockets inside a network namespace, on command.

Started by the namespace tests as `ip netns exec NAME python3 netns_holder.py`
(see tests/common/netns.rs). Says `@@ ok ready PID`, then answers each
command read on stdin with one `@@ ok ...` or `@@ err ...` line, and exits
when its stdin closes, so it dies with the test that owns the pipe.

Commands (ID is a socket's number in this process, PORT a loopback port):
  listen PORT              -> ID PORT   (PORT 0: any free port)
  connect PORT [FROM]      -> ID LOCAL_PORT   (FROM: bind the client end first)
  accept ID                -> ID PEER_PORT
  leak ID PORT N           -> ''   N connections accepted on listener ID and
                                   kept, their clients closed: N CLOSE_WAIT
  time-wait ID PORT        -> CLIENT_PORT   one connection its client closes
                                   first: the client end stays in TIME_WAIT
  recv ID MS               -> data | eof | reset | aborted | timeout | error NAME
  close ID                 -> ''
"""

import errno
import os
import socket
import sys

socks = {}
next_id = 0


def add(s):
    global next_id
    next_id += 1
    socks[next_id] = s
    return next_id


def command(words):
    op = words[0]
    if op == "listen":
        listener = socket.socket()
        listener.bind(("127.0.0.1", int(words[1])))
        listener.listen(128)
        return "%d %d" % (add(listener), listener.getsockname()[1])
    if op == "connect":
        client = socket.socket()
        if len(words) > 2:
            client.bind(("127.0.0.1", int(words[2])))
        client.connect(("127.0.0.1", int(words[1])))
        return "%d %d" % (add(client), client.getsockname()[1])
    if op == "accept":
        conn, peer = socks[int(words[1])].accept()
        return "%d %d" % (add(conn), peer[1])
    if op == "leak":
        listener, port, n = socks[int(words[1])], int(words[2]), int(words[3])
        for _ in range(n):
            client = socket.create_connection(("127.0.0.1", port))
            conn, _ = listener.accept()
            add(conn)
            client.close()
        return ""
    if op == "time-wait":
        listener, port = socks[int(words[1])], int(words[2])
        client = socket.create_connection(("127.0.0.1", port))
        conn, _ = listener.accept()
        client_port = client.getsockname()[1]
        client.close()
        # Read the client's FIN, then close: the server end goes through
        # LAST_ACK and is gone; the client end keeps TIME_WAIT for 60 s.
        conn.settimeout(10)
        conn.recv(1)
        conn.close()
        return "%d" % client_port
    if op == "recv":
        s = socks[int(words[1])]
        s.settimeout(int(words[2]) / 1000)
        try:
            data = s.recv(1)
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            return "reset"
        except ConnectionAbortedError:
            return "aborted"
        except OSError as e:
            return "error " + errno.errorcode.get(e.errno, str(e.errno))
        return "data" if data else "eof"
    if op == "close":
        socks.pop(int(words[1])).close()
        return ""
    raise ValueError("unknown command %r" % op)


def say(line):
    sys.stdout.write("@@ " + line + "\n")
    sys.stdout.flush()


say("ok ready %d" % os.getpid())
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    try:
        say(("ok " + command(words)).rstrip())
    except Exception as e:  # the test prints it
        say("err %s: %r" % (line.strip(), e))
