#!/usr/bin/env python3
"""Writes examples/demo/: deterministic shop traffic (Segment JSONL) and a CRM
export (CSV) for the bundled definitions. Re-running gives the same files."""
import csv
import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

random.seed(7)
out = Path(__file__).resolve().parent.parent / "examples" / "demo"
out.mkdir(parents=True, exist_ok=True)
start = datetime(2026, 9, 1, tzinfo=timezone.utc)
countries = ["US", "CA", "UK", "DE", "FR", "US", "US"]
categories = ["shoes", "bags", "jackets", "hats"]
events = []
customers = []
for visitor in range(60):
    anon = f"demo-anon-{visitor:03d}"
    user = f"customer-{visitor:03d}" if visitor % 3 != 2 else None
    email = f"customer{visitor:03d}@example.com"
    when = start + timedelta(days=random.randint(0, 80), minutes=random.randint(0, 600))
    context = {"ip": f"198.51.100.{visitor}", "userAgent": "Mozilla/5.0 (demo)", "locale": "en-US",
               "library": {"name": "analytics.js", "version": "5.0.0"},
               "consent": {"analytics": True, "ads": visitor % 4 != 0, "email": visitor % 2 == 0}}
    def emit(kind, **fields):
        global when
        when += timedelta(minutes=random.randint(1, 20))
        message = {"type": kind, "anonymousId": anon, "messageId": f"demo-{len(events):05d}",
                   "timestamp": when.isoformat().replace("+00:00", "Z"), "context": context}
        if user and kind != "page":
            message["userId"] = user
        message.update(fields)
        events.append(message)
    emit("page", name="Home", properties={"url": "https://shop.example/"})
    for _ in range(random.randint(1, 6)):
        category = random.choice(categories)
        emit("track", event="ProductView", properties={"product_id": f"p-{random.randint(1, 40)}", "category": category, "price": random.choice([19.99, 49.5, 89.0, 120.0])})
    if user:
        emit("identify", traits={"email": email, "country": random.choice(countries), "first_name": f"Demo{visitor}"})
        for order in range(random.randint(0, 5)):
            emit("track", event="AddToCart", properties={"product_id": f"p-{random.randint(1, 40)}", "quantity": 1})
            emit("track", event="BeginCheckout", properties={"cart_size": 1})
            total = round(random.uniform(15, 400), 2)
            emit("track", event="Purchase", properties={"order_id": f"o-{visitor:03d}-{order}", "total": total, "currency": "USD", "category": random.choice(categories)})
        customers.append({"customer_id": user, "email": email, "phone": f"+1415555{visitor:04d}", "first_name": f"Demo{visitor}",
                          "last_name": "Customer", "country": random.choice(countries), "loyalty_tier": random.choice(["bronze", "silver", "gold"]),
                          "updated_at": (start + timedelta(days=85)).isoformat().replace("+00:00", "Z")})
with open(out / "events.jsonl", "w") as handle:
    for message in events:
        handle.write(json.dumps(message, separators=(",", ":")) + "\n")
with open(out / "customers.csv", "w", newline="") as handle:
    writer = csv.DictWriter(handle, fieldnames=list(customers[0].keys()))
    writer.writeheader()
    writer.writerows(customers)
print(f"{len(events)} events, {len(customers)} customers")
