"""``make airflow``: ``airflow standalone`` (UI on http://localhost:8080) wired to the sandbox.

The provider sandbox and a mail catcher run in this process on 127.0.0.1; their connections reach
Airflow through ``AIRFLOW_CONN_*`` variables. The invoice database is ``$AIRFLOW_HOME/invoices.db``.
Stop with Ctrl-C. The admin password is printed by Airflow (and kept in ``$AIRFLOW_HOME``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from include.sandbox import SandboxServer
from include.sandbox.demo_data import ensure_demo_data
from include.sandbox.mail import MailCatcher


def main() -> int:
    home = Path(os.environ.get("AIRFLOW_HOME", ".airflow")).resolve()
    with SandboxServer(ensure_demo_data()) as sandbox, MailCatcher(home / "mail") as mail:
        env = {
            **os.environ,
            **sandbox.env(),
            "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(mail.connection()),
            "AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS": os.environ.get(
                "AIRFLOW_VAR_INVOICE_NOTIFICATION_RECIPIENTS", json.dumps(["billing@reseller.example"])
            ),
        }
        print(f"Provider sandbox on {sandbox.url}; mails land in {home / 'mail'}", flush=True)
        try:
            return subprocess.run([sys.executable, "-m", "airflow", "standalone"], env=env).returncode
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main())
