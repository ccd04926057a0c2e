"""Demo webhook receiver: verifies Standard Webhooks signatures and prints what arrives.

Usage: receiver.py PORT OUT.jsonl PATH=SECRET_FILE [PATH=SECRET_FILE ...]
Each accepted notification is appended to OUT.jsonl; a bad signature gets 401.
"""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import standardwebhooks

PORT, OUT = int(sys.argv[1]), sys.argv[2]
SECRETS = {}
for arg in sys.argv[3:]:
    path, secret_file = arg.split("=", 1)
    with open(secret_file) as f:
        SECRETS[path] = standardwebhooks.Webhook(f.read().strip())


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        hook = SECRETS.get(self.path)
        try:
            if hook is None:
                raise standardwebhooks.WebhookVerificationError(f"no secret for {self.path}")
            payload = hook.verify(body, dict(self.headers))
        except Exception as error:  # noqa: BLE001 - any failure is a rejection
            self.send_response(401)
            self.end_headers()
            print(f"  webhook REJECTED on {self.path}: {error}", flush=True)
            return
        with open(OUT, "a") as f:
            f.write(json.dumps({"path": self.path, "webhook-id": self.headers["webhook-id"], "payload": payload}) + "\n")
        print(
            f"  webhook {payload['notification']:<8} {payload['rule']:<14} {payload['group']:<14} "
            f"value={payload['value']:.2f} (signature verified)",
            flush=True,
        )
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
