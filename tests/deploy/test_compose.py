"""docker-compose.yml's one-host shape: api replicas behind haproxy, a worker per profile.
(`docker-compose config` validates the file; these check that its parts fit each other.)"""

from __future__ import annotations

import re

from tests.deploy.conftest import load_yaml
from tests.helpers import ROOT

COMPOSE = ROOT / "docker-compose.yml"


def test_haproxy_spreads_over_the_api_replicas_on_the_port_they_listen_on() -> None:
    services = load_yaml(COMPOSE)[0]["services"]
    api, lb = services["api"], services["lb"]
    assert "ports" not in api  # replicas publish nothing; the balancer does
    assert api["deploy"]["replicas"] >= 2
    assert lb["ports"] == ["8000:8000"]
    (mount,) = lb["volumes"]
    source, target, mode = mount.split(":")
    assert target == "/usr/local/etc/haproxy/haproxy.cfg"
    assert mode == "ro"
    config = (ROOT / source).read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    # the api image's command: `hanmo api --host 0.0.0.0 --port 8000`
    port = re.search(r'CMD \["hanmo", "api", "--host", "0.0.0.0", "--port", "(\d+)"\]', dockerfile)
    assert port is not None
    assert re.search(rf"^\s*server-template api \d+ api:{port[1]}$", config, re.M)
    assert re.search(r"^\s*bind :8000$", config, re.M)
    assert re.search(r"^\s*option httpchk GET /livez$", config, re.M)


def test_one_worker_per_profile_and_migrate_in_both() -> None:
    services = load_yaml(COMPOSE)[0]["services"]
    assert services["worker"]["profiles"] == ["gpu"]
    assert services["worker"]["environment"]["HANMO_DEVICE"] == "cuda:0"
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert services["worker-cpu"]["environment"]["HANMO_DEVICE"] == "cpu"
    assert services["worker-cpu"]["build"]["target"] == "worker-cpu"
    assert "deploy" not in services["worker-cpu"]  # no GPU reservation
    # everything else starts in either profile; migrate needs no GPU image
    unprofiled = {name for name, s in services.items() if "profiles" not in s}
    assert unprofiled == {"postgres", "redis", "migrate", "api", "lb"}
    assert services["migrate"]["image"].startswith("hanmo-worker-cpu:")
    targets = set(re.findall(r"^FROM \S+ AS (\S+)$", (ROOT / "Dockerfile").read_text(), re.M))
    built = {s["build"]["target"] for s in services.values() if "build" in s}
    assert built <= targets
