"""`python -m brightpearl.sandbox --host 127.0.0.1 --port 8900 [--seed-demo ACCOUNT]`."""

from __future__ import annotations

import argparse
import json
import secrets
import sys

from .control_api import seed_account
from .demo import DEMO_DATA
from .server import SandboxServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brightpearl.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8900)
    parser.add_argument("--seed-demo", metavar="ACCOUNT", help="create ACCOUNT with demo data")
    parser.add_argument("--account-token", help="fixed account token for the demo account")
    parser.add_argument("--staff-token", help="fixed staff token for the demo account")
    parser.add_argument(
        "--credentials-json", metavar="PATH", help="also write the demo credentials to PATH as JSON"
    )
    args = parser.parse_args(argv)

    server = SandboxServer(host=args.host, port=args.port)
    print(f"Brightpearl sandbox listening on {server.url}", flush=True)
    print(f"API base template: {server.api_url_template}", flush=True)
    if args.seed_demo:
        code = args.seed_demo
        credentials = {
            "account": code,
            "appRef": f"{code}_app",
            "accountToken": args.account_token or secrets.token_urlsafe(16),
            "staffTokens": [args.staff_token or secrets.token_urlsafe(16)],
            "installedIntegrationInstanceId": 34,
            "oauth": {
                "devRef": f"{code}-dev",
                "clientSecret": secrets.token_urlsafe(12),
                "accessToken": secrets.token_urlsafe(24),
                "refreshToken": secrets.token_urlsafe(24),
                "expiresIn": 3600,
            },
        }
        account = server.state.create_account(credentials)
        with server.state.lock:
            seed_account(account, DEMO_DATA)
        oauth = credentials["oauth"]
        print(f"Demo account: {code}  API base: {server.api_url_template.format(account=code)}")
        print(f"  brightpearl-app-ref: {credentials['appRef']}")
        print(f"  brightpearl-account-token: {credentials['accountToken']}")
        print(f"  brightpearl-staff-token: {credentials['staffTokens'][0]}")
        print(f"  installedIntegrationInstanceId: {credentials['installedIntegrationInstanceId']}")
        print(
            f"  OAuth: dev-ref {oauth['devRef']}  access token {oauth['accessToken']}  "
            f"refresh token {oauth['refreshToken']}  client secret {oauth['clientSecret']}  "
            f"token URL {server.url}/oauth/token/{code}"
        )
        if args.credentials_json:
            details = dict(
                credentials,
                url=server.url,
                apiUrl=server.api_url_template.format(account=code),
                tokenUrl=f"{server.url}/oauth/token/{code}",
            )
            with open(args.credentials_json, "w", encoding="utf-8") as handle:
                json.dump(details, handle, indent=2)
        sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
