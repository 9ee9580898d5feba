"""Failure alerts: a JSON POST to a webhook the team points at its channel (Slack, Teams, a pager)."""

import json
import urllib.request

import dagster as dg


class AlertWebhook(dg.ConfigurableResource):
    """Empty `url` disables alerts. Delivery problems are logged, never raised: an alert must not
    turn into a second failure."""

    url: str = ""
    timeout_seconds: float = 5.0

    def send(self, payload: dict, log=None) -> bool:
        if not self.url:
            return False
        request = urllib.request.Request(
            self.url, data=json.dumps(payload, default=str).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                return 200 <= response.status < 300
        except OSError as e:
            if log is not None:
                log.warning(f"alert to {self.url} failed: {e}")
            return False
