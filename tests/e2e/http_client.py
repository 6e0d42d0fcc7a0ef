"""A tiny HTTP client that can choose its source address, for the canary test."""

from __future__ import annotations

import http.client
import re
import urllib.parse
from dataclasses import dataclass, field


@dataclass
class Browserish:
    base_url: str
    source_ip: str
    headers: dict[str, str]
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
    ) -> tuple[int, str, str]:
        parsed = urllib.parse.urlsplit(self.base_url)
        conn = http.client.HTTPConnection(
            parsed.hostname or "", parsed.port, source_address=(self.source_ip, 0), timeout=30
        )
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = self.base_url
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name] = rest.split(";", 1)[0]
        text = response.read().decode()
        location = response.headers.get("Location", "")
        conn.close()
        return response.status, text, location

    def csrf_token(self, path: str) -> str:
        _status, html, _ = self.request("GET", path)
        match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
        assert match, f"no form on {path}"
        return match.group(1)
