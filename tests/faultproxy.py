"""Network faults for the tests (CPython side): a TCP proxy whose behaviour can be
switched while a client talks through it, and a server that never answers.

FaultProxy(target_port).start() listens on 127.0.0.1:<port> and forwards each
connection to 127.0.0.1:<target_port>. It runs its own asyncio loop in a thread.
Commands, from pytest (proxy.command("...")) or from a client script (one line to
127.0.0.1:<control_port>, answered "ok" once the command has taken effect):

  pass            forward as received
  chunk <delay>   forward one byte per write, sleeping <delay> s after each byte
  blackhole [up|down]
                  stop forwarding (both ways, or only client->server "up" or
                  server->client "down"), keep every socket open (a half-open link);
                  what was held back (data, and a FIN from either side) flows
                  again after "pass" or "chunk", or dies with "kill"
  kill            close both sides of every open connection (FIN)
  reset           abort both sides of every open connection (RST: SO_LINGER 0)

kill and reset act on the connections open at that moment; the mode stays as it
was, so a client can connect again through the proxy.
"""
import asyncio
import socket
import struct
import threading


class FaultProxy:
    def __init__(self, target_port, host="127.0.0.1"):
        self.target = (host, target_port)
        self.host = host
        self.mode = "pass"
        self.delay = 0.0
        self.closing = False
        self.port = self.control_port = None
        self.conns = set()  # (client writer, upstream writer) of each open connection
        self.bytes = {"up": 0, "down": 0}  # forwarded, client->server and server->client
        self.writes = {"up": 0, "down": 0}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def start(self):
        self.thread.start()
        self._call(self._start())
        return self

    def stop(self):
        if self.thread.is_alive():
            self._call(self._stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
        self.loop.close()

    def command(self, line):
        """Apply a command (see the module doc) and return once it took effect."""
        return self._call(self._command(line))

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    async def _start(self):
        self.flowing = {"up": asyncio.Event(), "down": asyncio.Event()}
        for e in self.flowing.values():
            e.set()
        self.server = await asyncio.start_server(self._accept, self.host, 0)
        self.ctl = await asyncio.start_server(self._control, self.host, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        self.control_port = self.ctl.sockets[0].getsockname()[1]

    async def _stop(self):
        self.closing = True
        self.server.close()
        self.ctl.close()
        me = asyncio.current_task()
        for e in self.flowing.values():  # wakes the pumps held by a blackhole:
            e.set()  # they find closed sockets
        for _ in range(5):  # a connection accepted meanwhile ends at once (closing)
            await self._close_all(rst=False)
            tasks = asyncio.all_tasks() - {me}
            if not tasks:
                break
            _, pending = await asyncio.wait(tasks, timeout=0.5)
            for t in pending:  # e.g. a control connection that sent nothing
                t.cancel()

    async def _command(self, line):
        line = line.strip()
        word, _, arg = line.partition(" ")
        if word in ("pass", "chunk"):
            self.mode = word
            self.delay = float(arg or 0)
            for e in self.flowing.values():
                e.set()
        elif word == "blackhole" and arg in ("", "up", "down"):
            self.mode = word
            for way, e in self.flowing.items():
                if arg in ("", way):
                    e.clear()
        elif word in ("kill", "reset"):
            await self._close_all(rst=word == "reset")
        else:
            raise ValueError("unknown proxy command %r" % line)
        return "ok"

    async def _control(self, reader, writer):
        try:
            line = (await reader.readline()).decode()
            try:
                answer = await self._command(line)
            except ValueError as e:
                answer = "error %s" % e
            writer.write(answer.encode() + b"\n")
            await writer.drain()
        finally:
            writer.close()

    async def _accept(self, creader, cwriter):
        try:
            sreader, swriter = await asyncio.open_connection(*self.target)
        except OSError:
            cwriter.close()
            return
        conn = (cwriter, swriter)
        self.conns.add(conn)
        if self.closing:  # accepted while stop() was closing everything
            self._close(conn, rst=False)
        try:
            await asyncio.gather(self._pump(creader, swriter, "up"),
                                 self._pump(sreader, cwriter, "down"))
        finally:
            self._close(conn, rst=False)

    async def _pump(self, reader, writer, way):
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                while data:
                    await self.flowing[way].wait()  # blackhole: hold the data, keep the sockets
                    if writer.is_closing():
                        return
                    n = 1 if self.mode == "chunk" else len(data)
                    writer.write(data[:n])
                    await writer.drain()
                    data = data[n:]
                    self.bytes[way] += n
                    self.writes[way] += 1
                    if self.mode == "chunk":
                        await asyncio.sleep(self.delay)
            # one side ended (EOF): end the other side too (no half-close here), but
            # not through a blackhole, where the FIN is held back like the data
            await self.flowing[way].wait()
        except ConnectionError:
            pass
        writer.close()

    async def _close_all(self, rst):
        conns = list(self.conns)
        for conn in conns:
            self._close(conn, rst)
        # the sockets are closed (FIN or RST sent) only once the transports are done
        await asyncio.gather(*(w.wait_closed() for c in conns for w in c), return_exceptions=True)

    def _close(self, conn, rst):
        self.conns.discard(conn)
        for w in conn:
            if rst:
                sock = w.get_extra_info("socket")
                if sock is not None and sock.fileno() >= 0:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                w.transport.abort()
            else:
                w.close()


class SilentServer:
    """Listens on 127.0.0.1:<port> and never accepts: the kernel completes each TCP
    handshake into the backlog, and nothing is ever read or written (no CONNACK, no
    TLS ServerHello). stop() closes the listener; pending connections get RST."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def stop(self):
        self.sock.close()


# The client-script side of the control channel (runs on MicroPython and CPython):
# prepended to a script body, it defines proxy("command"). PROXY_CTL is in the env.
SCRIPT_CONTROL = '''
import socket as _socket
def proxy(cmd):
    s = _socket.socket()
    try:
        s.settimeout(5)
        s.connect(_socket.getaddrinfo("127.0.0.1", int(env("PROXY_CTL")))[0][-1])
        s.send(cmd.encode() + b"\\n")
        r = s.recv(64)
    finally:
        s.close()
    check(r == b"ok\\n", "proxy command", cmd, "answered", r)
'''
