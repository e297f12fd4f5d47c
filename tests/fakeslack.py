"""A fake Slack on loopback: the Web API, file downloads, response_url, and a Socket Mode socket.

One stdlib `ThreadingHTTPServer` on 127.0.0.1 (ephemeral port) serves:
  POST /api/<method>      the Web API methods delistbot calls, recorded with their arguments;
                          strict like Slack about Block Kit limits; 429/500 on demand
  GET  /files/<id>        a file's `url_private_download` (needs the bot token)
  POST /response/<id>     a slash command's `response_url`
  GET  /link              a WebSocket (RFC 6455, hand-written, text frames + ping/pong/close):
                          `apps.connections.open` returns its URL; `send_envelope` pushes
                          Socket Mode envelopes and `acks` records the app's answers

It models Slack as documented in ../shared/reference/slack.md; it proves our code against that
model, not Slack itself.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import queue
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

BOT_USER_ID = "UBOTDELIST"
BOT_ID = "BBOTDELIST"
TEAM_ID = "T0FAKE"
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    auth: str
    at: float = field(default_factory=time.monotonic)
    ok: bool = True  # False when the fake refused it (429, 500, an error code)


class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.responses: list[dict[str, Any]] = []  # bodies posted to response_url
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}
        self.acks: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []  # what chat.postMessage posted, for replies
        # method -> [(status, whether Slack did the work before failing, where(args))]
        self._failures: dict[str, list[tuple[int, bool, Any]]] = {}
        self._errors: dict[str, list[tuple[str, Any]]] = {}  # method -> [(error code, where)]
        self._hangs: list[tuple[str, bool, Any]] = []  # (method, posted, where(args))
        self._hung: list[threading.Event] = []  # one per call left hanging, until release_hung()
        self._down: set[str] = set()  # methods answering 500 until up()
        self._ts = itertools.count(1)
        self._lock = threading.Condition()
        self._envelopes: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
        self.ws_connections = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # ------------------------------------------------------------ lifecycle

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    def start(self) -> FakeSlack:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release_hung()
        self.server.shutdown()
        self.server.server_close()

    # ------------------------------------------------------------ test controls

    def add_email(self, file_id: str, data: bytes, subject: str = "Undelivered Mail") -> None:
        info = {
            "id": file_id, "filetype": "email", "mode": "email", "mimetype": "text/html",
            "pretty_type": "Email", "name": subject, "title": subject, "subject": subject,
            "size": len(data), "plain_text": data.decode("utf-8", "replace")[:500],
            "has_more": True,
            "url_private": f"http://127.0.0.1:{self.port}/files/{file_id}",
            "url_private_download": f"http://127.0.0.1:{self.port}/files/{file_id}?download=1",
        }
        self.files[file_id] = (info, data)

    def add_upload(self, file_id: str, name: str, data: bytes) -> None:
        """A file a user uploaded (e.g. through a form's file input), typed by its extension."""
        filetype = name.rsplit(".", 1)[-1] if "." in name else "binary"
        info = {
            "id": file_id, "name": name, "title": name, "filetype": filetype,
            "mimetype": "message/rfc822" if filetype == "eml" else "text/plain",
            "mode": "hosted", "size": len(data),
            "url_private": f"http://127.0.0.1:{self.port}/files/{file_id}",
            "url_private_download": f"http://127.0.0.1:{self.port}/files/{file_id}?download=1",
        }
        self.files[file_id] = (info, data)

    def add_email_file(self, file_id: str, path: Path) -> None:
        self.add_email(file_id, path.read_bytes(), subject=path.name)

    def fail_next(self, method: str, status: int, times: int = 1, posted: bool = False,
                  where: Any = None) -> None:
        """The next `times` calls of `method` whose arguments match `where(args)` answer `status`
        (429 carries Retry-After: 1); `where` keeps other tests' traffic on a shared fake from
        taking the failures. With `posted`, Slack did the work all the same (a 500 after the
        message was posted)."""
        with self._lock:
            self._failures.setdefault(method, []).extend([(status, posted, where)] * times)

    def down(self, method: str) -> None:
        """Every call of `method` answers 500 until `up(method)`: a Slack outage."""
        with self._lock:
            self._down.add(method)

    def up(self, method: str) -> None:
        with self._lock:
            self._down.discard(method)

    def fail_next_error(self, method: str, error: str, where: Any = None) -> None:
        """The next call of `method` whose arguments match `where(args)` answers 200 with
        ok=false and this Slack error code."""
        with self._lock:
            self._errors.setdefault(method, []).append((error, where))

    def hang_next(self, method: str, posted: bool = True, where: Any = None) -> None:
        """The next call of `method` whose arguments match `where(args)` gets no answer: the
        connection stays open until `release_hung()` (a caller dying there never learns the
        outcome). With `posted`, Slack did the work first (the message is in the channel)."""
        with self._lock:
            self._hangs.append((method, posted, where))

    def release_hung(self) -> None:
        """Let the calls left hanging so far end; a later `hang_next` hangs again."""
        with self._lock:
            hung, self._hung = self._hung, []
        for event in hung:
            event.set()

    def _wait_hung(self) -> None:
        event = threading.Event()
        with self._lock:
            self._hung.append(event)
        event.wait(60)

    def _hang(self, method: str, args: dict[str, Any]) -> bool | None:
        with self._lock:
            for i, (m, posted, where) in enumerate(self._hangs):
                if m == method and (where is None or where(args)):
                    del self._hangs[i]
                    return posted
        return None

    def send_envelope(self, envelope: dict[str, Any]) -> None:
        self._envelopes.put(envelope)

    def of(self, method: str, where: Any = None) -> list[Call]:
        with self._lock:
            return [c for c in self.calls
                    if c.method == method and (where is None or where(c))]

    def wait_for(
        self, method: str, count: int = 1, timeout: float = 10.0, where: Any = None
    ) -> list[Call]:
        """Calls of `method` matching `where(call)`, once there are `count`; else AssertionError."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                found = [c for c in self.calls
                         if c.method == method and (where is None or where(c))]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = sorted({c.method for c in self.calls})
                    raise AssertionError(
                        f"expected {count} {method} call(s), got {len(found)}; saw {seen}"
                    )
                self._lock.wait(left)

    def wait_for_ack(self, envelope_id: str, timeout: float = 10.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for ack in self.acks:
                    if ack.get("envelope_id") == envelope_id:
                        return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no ack for {envelope_id}; acks: {self.acks}")
                self._lock.wait(left)

    # ------------------------------------------------------------ the Web API

    def _record(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)
            self._lock.notify_all()

    def _failure(self, method: str, args: dict[str, Any]) -> tuple[int, bool] | None:
        with self._lock:
            if method in self._down:
                return 500, False
            pending = self._failures.get(method) or []
            for i, (status, posted, where) in enumerate(pending):
                if where is None or where(args):
                    del pending[i]
                    return status, posted
            return None

    def api(self, method: str, args: dict[str, Any], auth: str) -> tuple[int, dict[str, Any]]:
        hang = self._hang(method, args)
        if hang is False:  # the request got lost on the way: nothing done, no answer
            self._record(Call(method, args, auth, ok=False))
            self._wait_hung()
            return 500, {"ok": False, "error": "fatal_error"}
        status, answer = self._answer(method, args, auth)
        self._record(Call(method, args, auth, ok=status == 200 and bool(answer.get("ok"))))
        if hang:  # done, but the answer never reaches the caller
            self._wait_hung()
        return status, answer

    def _answer(self, method: str, args: dict[str, Any], auth: str) -> tuple[int, dict[str, Any]]:
        failure = self._failure(method, args)
        if failure:
            status, posted = failure
            if posted:
                self._work(method, args, auth)  # done, and the answer is lost in a 5xx
            return status, {"ok": False, "error": "ratelimited" if status == 429 else "fatal_error"}
        return self._work(method, args, auth)

    def _work(self, method: str, args: dict[str, Any], auth: str) -> tuple[int, dict[str, Any]]:
        error = None
        with self._lock:
            errors = self._errors.get(method) or []
            for i, (_, where) in enumerate(errors):
                if where is None or where(args):
                    error = errors.pop(i)[0]
                    break
        if error:
            return 200, {"ok": False, "error": error}
        if method == "apps.connections.open":
            if not auth.startswith("Bearer xapp-"):
                return 200, {"ok": False, "error": "invalid_auth"}
            return 200, {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket=fake"}
        if not auth.startswith("Bearer xoxb-"):
            return 200, {"ok": False, "error": "not_authed"}
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}
        return 200, handler(args)

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "url": "https://fake.slack.com/", "team": "Fake", "user": "delistbot",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        error = _blocks_error(args.get("blocks"))
        if error:
            return {"ok": False, "error": error}
        if not args.get("channel"):
            return {"ok": False, "error": "channel_not_found"}
        if len(args.get("text") or "") > 40000:
            return {"ok": False, "error": "msg_too_long"}
        ts = f"{1700000000 + next(self._ts)}.000100"
        message = {"type": "message", "text": args.get("text", ""), "user": BOT_USER_ID,
                   "bot_id": BOT_ID, "ts": ts, "blocks": args.get("blocks", [])}
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        if args.get("metadata"):
            message["metadata"] = _json_arg(args["metadata"])
        with self._lock:
            self.messages.append({"channel": args["channel"], **message})
        return {"ok": True, "channel": args["channel"], "ts": ts, "message": message}

    def _m_conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """Top-level messages of a channel, newest first, at most `limit`."""
        with self._lock:
            found = [m for m in self.messages if m["channel"] == args.get("channel")
                     and m.get("thread_ts") in (None, m["ts"])]
        found = found[::-1][: int(args.get("limit") or 100)]
        if str(args.get("include_all_metadata")).lower() not in {"true", "1"}:
            found = [{k: v for k, v in m.items() if k != "metadata"} for m in found]
        return {"ok": True, "messages": found, "has_more": False}

    def _m_conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        parent = str(args.get("ts"))
        with self._lock:
            found = [m for m in self.messages if m["channel"] == args.get("channel")
                     and (m["ts"] == parent or m.get("thread_ts") == parent)]
        if str(args.get("include_all_metadata")).lower() not in {"true", "1"}:
            found = [{k: v for k, v in m.items() if k != "metadata"} for m in found]
        return {"ok": True, "messages": found, "has_more": False}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("ts"):
            return {"ok": False, "error": "message_not_found"}
        error = _blocks_error(args.get("blocks"))
        if error:
            return {"ok": False, "error": error}
        return {"ok": True, "channel": args.get("channel"), "ts": args["ts"],
                "text": args.get("text", "")}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        error = _blocks_error(args.get("blocks"))
        if error:
            return {"ok": False, "error": error}
        return {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        return {"ok": True, "view": {"id": "V1", **_json_arg(args.get("view"))}}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _json_arg(args.get("view"))
        if len(view.get("blocks", [])) > 100:
            return {"ok": False, "error": "invalid_blocks"}
        return {"ok": True, "view": {"id": "VHOME", **view}}

    def _m_files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        found = self.files.get(str(args.get("file")))
        if not found:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": found[0]}

    def download(self, file_id: str, auth: str) -> tuple[int, bytes]:
        self._record(Call("files.download", {"file": file_id}, auth))
        if not auth.startswith("Bearer xoxb-"):
            return 403, b"not allowed"
        found = self.files.get(file_id)
        return (200, found[1]) if found else (404, b"no such file")

    def respond(self, name: str, body: dict[str, Any]) -> None:
        with self._lock:
            self.responses.append({"url": name, **body})
            self._lock.notify_all()
        self._record(Call("response_url", body, ""))

    def ack(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.acks.append(message)
            self._lock.notify_all()


def _json_arg(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return dict(json.loads(value))
    return dict(value or {})


def _blocks_error(blocks: Any) -> str | None:
    """Slack's `invalid_blocks` for the limits delistbot must respect."""
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    blocks = blocks or []
    if len(blocks) > 50:
        return "invalid_blocks"
    for block in blocks:
        text = (block.get("text") or {}).get("text", "")
        if block["type"] == "section" and len(text) > 3000:
            return "invalid_blocks"
        if block["type"] == "header" and len(text) > 150:
            return "invalid_blocks"
        if len(block.get("fields", [])) > 10 or any(
            len(f["text"]) > 2000 for f in block.get("fields", [])
        ):
            return "invalid_blocks"
        if len(block.get("block_id", "")) > 255:
            return "invalid_blocks"
        if block["type"] == "actions" and len(block["elements"]) > 25:
            return "invalid_blocks"
        for element in block.get("elements", []):
            if _element_error(element):
                return "invalid_blocks"
    return None


def _element_error(element: dict[str, Any]) -> bool:
    if element.get("type") == "button":
        return len(element["text"]["text"]) > 75 or len(element.get("value", "")) > 2000
    if element.get("type") == "static_select":
        options = element.get("options", [])
        return (not options or len(options) > 100
                or len(element["placeholder"]["text"]) > 150
                or any(len(o["text"]["text"]) > 75 or len(o["value"]) > 150 for o in options))
    return False


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
            return

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length).decode() if length else ""
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            if raw.startswith("{"):
                return {**query, **json.loads(raw)}
            return {**query, **dict(urllib.parse.parse_qsl(raw))}

        def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str]) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the caller died waiting (hang_next): there is no one to answer

        def do_POST(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            args = self._body()
            if path.startswith("/api/"):
                method = path.removeprefix("/api/")
                status, payload = fake.api(method, args, self.headers.get("Authorization", ""))
                headers = {"Retry-After": "1"} if status == 429 else {}
                self._send(status, json.dumps(payload).encode(), "application/json", headers)
            elif path.startswith("/response/"):
                fake.respond(path.removeprefix("/response/"), args)
                self._send(200, b"ok", "text/plain", {})
            else:
                self._send(404, b"not found", "text/plain", {})

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            if path.startswith("/files/"):
                status, data = fake.download(path.removeprefix("/files/"),
                                             self.headers.get("Authorization", ""))
                self._send(status, data, "text/plain", {})
            elif path == "/link" and self.headers.get("Upgrade", "").lower() == "websocket":
                self._websocket()
            else:
                self._send(404, b"not found", "text/plain", {})

        # -------------------------------------------------------- WebSocket (RFC 6455)

        def _websocket(self) -> None:
            key = self.headers["Sec-WebSocket-Key"]
            accept = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
            self.send_response(101, "Switching Protocols")
            self.send_header("Upgrade", "websocket")
            self.send_header("Connection", "Upgrade")
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            self.close_connection = True
            sock = self.connection
            with fake._lock:
                fake.ws_connections += 1
            send_lock = threading.Lock()
            send = _sender(sock, send_lock)
            send(1, json.dumps({"type": "hello", "num_connections": 1}).encode())
            stop = threading.Event()
            pusher = threading.Thread(target=_push, args=(fake, send, stop), daemon=True)
            pusher.start()
            try:
                _read_frames(self.rfile, fake, send)
            finally:
                stop.set()

    return Handler


def _sender(sock: socket.socket, lock: threading.Lock) -> Any:
    def send(opcode: int, payload: bytes) -> None:
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        with lock:
            sock.sendall(head + payload)

    return send


def _push(fake: FakeSlack, send: Any, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            envelope = fake._envelopes.get(timeout=0.05)
        except queue.Empty:
            continue
        try:
            send(1, json.dumps(envelope).encode())
        except OSError:
            fake._envelopes.put(envelope)  # the socket died; the next connection gets it
            return


def _read_frames(rfile: Any, fake: FakeSlack, send: Any) -> None:
    while True:
        head = rfile.read(2)
        if len(head) < 2:
            return
        opcode, length = head[0] & 0x0F, head[1] & 0x7F
        if length == 126:
            length = struct.unpack("!H", rfile.read(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", rfile.read(8))[0]
        mask = rfile.read(4) if head[1] & 0x80 else b"\0\0\0\0"
        data = bytes(b ^ mask[i % 4] for i, b in enumerate(rfile.read(length)))
        if opcode == 8:  # close
            send(8, data[:2])
            return
        if opcode == 9:  # ping
            send(10, data)
        elif opcode == 1:
            message = json.loads(data.decode())
            if "envelope_id" in message:
                fake.ack(message)


# ---------------------------------------------------------------- driving a real bot process

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-1-A0FAKE-1-test"


def bot_env(fake: FakeSlack, tmp: Path, **extra: str) -> dict[str, str]:
    """A clean environment for `delistbot serve`: no real SLACK_* variable can leak in."""
    import os

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "DELISTBOT_"))}
    env.update({
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_BASE_URL": fake.api_url,
        "DELISTBOT_DB": str(tmp / "delistbot.db"),
        "DELISTBOT_NAMESERVERS": "127.0.0.1:9",  # nothing answers: DNS never leaves loopback
        "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the bot exited early with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"the bot did not listen on port {port} within {timeout}s")


def sign(body: str, timestamp: int | None = None, secret: str = SIGNING_SECRET) -> dict[str, str]:
    """Slack's v0 signature: HMAC-SHA256 over 'v0:{ts}:{body}' with the signing secret."""
    import hmac

    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def post(port: int, body: str, ctype: str, headers: dict[str, str]) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/slack/events", data=body.encode(), method="POST",
        headers={"Content-Type": ctype, **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def command_body(text: str, fake: FakeSlack, channel: str = "C0OPS", user: str = "U0ALICE",
                 trigger: str = "1337.42.abcd") -> str:
    return urllib.parse.urlencode({
        "token": "legacy-unused", "team_id": TEAM_ID, "team_domain": "fake",
        "channel_id": channel, "channel_name": "ops", "user_id": user, "user_name": "alice",
        "command": "/delist", "text": text, "api_app_id": "A0FAKE",
        "response_url": fake.response_url(), "trigger_id": trigger,
    })


def event_body(event: dict[str, Any], event_id: str) -> str:
    return json.dumps({
        "token": "legacy-unused", "team_id": TEAM_ID, "api_app_id": "A0FAKE",
        "type": "event_callback", "event_id": event_id, "event_time": int(time.time()),
        "event": event, "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID,
                                            "is_bot": True}],
    })


def action_body(payload: dict[str, Any]) -> str:
    return urllib.parse.urlencode({"payload": json.dumps(payload)})
