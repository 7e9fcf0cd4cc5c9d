#!/usr/bin/env python3
"""Send events to a Stratum daemon with Segment's own Python SDK, unchanged.

    pip install segment-analytics-python==2.4.0
    python3 examples/sdk/send_events.py --host http://127.0.0.1:8080 --write-key "$STRATUM_WEB_WRITE_KEY"

The SDK batches, adds messageId/timestamp/sentAt and posts to HOST/v1/batch
with the write key as Basic-auth user: exactly what it does against Segment.
Prints the user ids it sent, one per line.
"""
import argparse
import sys

import segment.analytics as analytics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="the daemon, e.g. http://127.0.0.1:8080")
    parser.add_argument("--write-key", required=True, help="a Source's write key")
    parser.add_argument("--users", type=int, default=3, help="how many users to simulate")
    parser.add_argument("--prefix", default="sdk-user", help="user id prefix")
    args = parser.parse_args()

    failures = []
    analytics.write_key = args.write_key
    analytics.host = args.host
    analytics.sync_mode = True
    analytics.on_error = lambda error, batch: failures.append(str(error))

    for index in range(args.users):
        user_id = f"{args.prefix}-{index}"
        anonymous_id = f"{args.prefix}-device-{index}"
        analytics.page(anonymous_id=anonymous_id, name="Home", properties={"url": "https://shop.example/"})
        analytics.identify(user_id, {"email": f"{user_id}@example.com", "plan": "free"}, anonymous_id=anonymous_id)
        analytics.track(user_id, "Purchase", {"total": 19.99, "currency": "USD"},
                        context={"consent": {"ads": True, "email": index % 2 == 0}})
        print(user_id)
    analytics.flush()
    if failures:
        print("\n".join(failures), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
