"""nginx as a plain reverse proxy (no auth) in front of one upstream: the reference for the gateway."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from collections_hub.processes import ManagedProcess, free_port, port_open

# One worker, like the one gateway process it is compared with; keep-alive to the upstream, as the
# gateway's pooled client session does; no access log (the gateway writes none per request either).
NGINX_CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  upstream service {{
    server {upstream};
    keepalive 64;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://service;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering on;
    }}
  }}
}}
"""


def nginx_binary() -> str:
    """Where Debian's nginx is (it lives in sbin, often outside a user's PATH)."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise FileNotFoundError("nginx is not installed: apt-get install -y nginx")
    return found


def nginx_version() -> str:
    """`nginx/1.22.1`."""
    done = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return (done.stderr or done.stdout).strip().removeprefix("nginx version: ")


def start_nginx(root: Path, upstream_host_port: str) -> tuple[ManagedProcess, str]:
    """Run nginx in the foreground with a config under `root`; return it and its base URL."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = root / "nginx.conf"
    # Run as root, nginx would hand its workers to `nobody`, who cannot enter a private temp dir.
    user = "user root;\n" if os.geteuid() == 0 else ""
    config.write_text(NGINX_CONFIG.format(user=user, root=root, upstream=upstream_host_port, port=port))
    proc = ManagedProcess("nginx", [nginx_binary(), "-c", str(config), "-p", str(root)], root / "nginx.log")
    proc.start().wait_until(lambda: port_open("127.0.0.1", port), timeout=15)
    return proc, f"http://127.0.0.1:{port}"
