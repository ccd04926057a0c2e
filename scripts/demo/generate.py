"""Demo data: replays a realistic week of a B2B product through the Segment HTTP API, the way
analytics-node does (basic auth, gzip, /v1/batch with sentAt).

Usage: generate.py INGEST_URL WRITE_KEY ACCOUNTS SEED
Prints progress to stderr and, on stdout, one JSON line with what was sent and which
accounts the big-spenders rule should alert on (computed independently of CustomerSignal).
"""
import base64
import gzip
import json
import random
import sys
import time
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone

URL, KEY, ACCOUNTS, SEED = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(SEED)
now = datetime.now(timezone.utc)
AUTH = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()


def iso(t):
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def send(batch):
    body = gzip.compress(json.dumps({"batch": batch, "sentAt": iso(datetime.now(timezone.utc))}).encode())
    request = urllib.request.Request(
        f"{URL}/v1/batch",
        data=body,
        headers={"Authorization": AUTH, "Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    for attempt in range(5):
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.load(response)["accepted"]
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503):
                raise
            time.sleep(float(error.headers.get("Retry-After", 1)))
    raise SystemExit("ingest kept refusing the batch")


messages = []
weekly = {}
qualifies = {}
for a in range(ACCOUNTS):
    account = f"acct-{a:04d}"
    team, cost = rng.choice([3, 8, 12, 25, 60]), rng.choice([200, 900, 1000, 2500, 8000])
    qualifies[account] = team > 10 and cost >= 1000
    users = [f"{account}-user-{u}" for u in range(rng.randint(1, 4))]
    for user in users:
        start = now - timedelta(days=7, hours=rng.random())
        messages.append({"type": "identify", "userId": user, "messageId": str(uuid.uuid4()), "timestamp": iso(start),
                         "traits": {"email": f"{user}@example.com", "plan": rng.choice(["team", "enterprise"])}})
        messages.append({"type": "group", "userId": user, "groupId": account, "messageId": str(uuid.uuid4()),
                         "timestamp": iso(start), "traits": {"name": account, "teamSize": team, "monthlyCost": cost}})
    spend = rng.choice([0.2, 0.5, 1.0, 1.6, 2.5])  # some accounts buy a lot
    for _ in range(rng.randint(3, 14)):
        at = now - timedelta(seconds=rng.uniform(120, 7 * 86400 - 3600))
        value = round(rng.uniform(50, 900) * spend, 2)
        messages.append({"type": "track", "userId": rng.choice(users), "event": "checkout_completed",
                         "messageId": str(uuid.uuid4()), "timestamp": iso(at),
                         "properties": {"value": value, "currency": "USD", "items": [1]}})
        weekly[account] = weekly.get(account, 0) + value
        messages.append({"type": "page", "userId": rng.choice(users), "name": "Pricing",
                         "messageId": str(uuid.uuid4()), "timestamp": iso(at - timedelta(minutes=2))})

accepted = 0
for i in range(0, len(messages), 250):
    accepted += send(messages[i:i + 250])
    print(f"  sent {accepted}/{len(messages)} events", file=sys.stderr, flush=True)
expected = sorted(a for a, ok in qualifies.items() if ok and weekly.get(a, 0) > 5000)
print(json.dumps({"accepted": accepted, "expected_alerts": expected}))
