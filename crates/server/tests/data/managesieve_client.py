# A small ManageSieve (RFC 5804) client for the tests in managesieve.rs: raw socket,
# responses read line by line with literals taken whole. Environment: PORT, CERT,
# USER, PASS (and OTHER for a second mailbox).
import base64, os, re, socket, ssl, sys

PORT = int(os.environ["PORT"])
USER = os.environ["USER"]
PASS = os.environ["PASS"]


class Sieve:
    def __init__(self):
        self.sock = socket.create_connection(("127.0.0.1", PORT), timeout=30)
        self.f = self.sock.makefile("rb")
        self.greeting = self.response()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def line(self):
        raw = self.f.readline()
        if not raw:
            raise EOFError("the server closed the connection")
        return raw.decode().rstrip("\r\n")

    def response(self):
        """Every line up to the final OK/NO/BYE; a literal {N} is one item of N bytes."""
        items = []
        while True:
            line = self.line()
            m = re.fullmatch(r"\{(\d+)\}", line)
            if m:
                items.append(self.f.read(int(m.group(1))).decode())
                continue
            items.append(line)
            if re.match(r"(OK|NO|BYE)\b", line):
                return items

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.response()

    def last(self, text):
        return self.cmd(text)[-1]

    def starttls(self):
        assert self.last("STARTTLS").startswith("OK"), "STARTTLS refused"
        ctx = ssl.create_default_context(cafile=os.environ["CERT"])
        self.sock = ctx.wrap_socket(self.sock, server_hostname="localhost")
        self.f = self.sock.makefile("rb")
        # RFC 5804 §2.2: the capabilities again, unasked.
        return self.response()

    def login(self, user=USER, password=PASS):
        plain = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
        return self.last(f'AUTHENTICATE "PLAIN" "{plain}"')

    def put(self, name, script):
        data = script.encode()
        return self.last(f'PUTSCRIPT "{name}" {{{len(data)}+}}\r\n{script}')

    def closed(self):
        """Whether the server has closed the connection (reads until it does)."""
        try:
            while self.f.readline():
                pass
            return True
        except (ConnectionError, ssl.SSLError):
            return True
        except socket.timeout:
            return False


def capabilities(lines):
    caps = {}
    for line in lines[:-1]:
        m = re.fullmatch(r'"([^"]+)"(?: "(.*)")?', line)
        assert m, f"not a capability line: {line!r}"
        caps[m.group(1)] = m.group(2)
    return caps


def logged_in(tls=True):
    s = Sieve()
    if tls:
        s.starttls()
    ok = s.login()
    assert ok.startswith("OK"), ok
    return s
