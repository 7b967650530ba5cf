"""Login rate limits: per client address (the real client's behind TRUSTED_PROXY_HOPS
proxies), per account name from any address, and shared by every instance of the app
(through the store without Redis, through Redis under CACHE_PREFIX with it)."""
from __future__ import annotations

import re
import uuid

import pytest
import redis

from dashboard import create_app
from dashboard.accounts import hash_password
from dashboard.services import EXTENSION
from datasource import users
from tests.conftest import REDIS_URL

PASSWORD = "correct horse battery"
SECRET = "limits-test-" + "l" * 24


@pytest.fixture
def make(store_url):
    made = []

    def _make(**overrides):
        settings = {"DATABASE_URL": store_url, "AUTH_ENABLED": True, "SECRET_KEY": SECRET, "POLLER_ENABLED": False,
                    "AUTH_CACHE_SECONDS": 0, "DASHBOARD_ENV": "demo", "REDIS_URL": "",
                    "LOGIN_RATE_LIMIT": "100 per minute", "LOGIN_ACCOUNT_RATE_LIMIT": "100 per minute", **overrides}
        app = create_app(settings)
        if not made:
            engine = app.server.extensions[EXTENSION].engine
            users.create_user(engine, "admin", hash_password(PASSWORD), "admin")
            users.create_user(engine, "leader", hash_password(PASSWORD), "city_leader")
        made.append(app)
        return app

    yield _make
    for app in made:
        app.server.extensions[EXTENSION].engine.dispose()


def _attempt(app, username="admin", password="wrong password", addr="127.0.0.1", forwarded=None):
    """One login from a new browser at `addr`, through a proxy that says `forwarded`."""
    client = app.server.test_client()
    client.environ_base["REMOTE_ADDR"] = addr
    headers = {"X-Forwarded-For": forwarded} if forwarded else {}
    page = client.get("/login", headers=headers).data.decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    return client.post("/login", headers=headers, data={"username": username, "password": password,
                                                        "csrf_token": csrf}).status_code


def test_behind_a_trusted_proxy_each_client_has_its_own_limit(make):
    app = make(TRUSTED_PROXY_HOPS=1, LOGIN_RATE_LIMIT="3 per minute")
    proxy = "10.0.0.2"  # every request comes from the TLS proxy's socket
    assert [_attempt(app, addr=proxy, forwarded="203.0.113.7") for _ in range(4)] == [401, 401, 401, 429]
    assert _attempt(app, addr=proxy, forwarded="203.0.113.8") == 401  # another client is not locked out
    assert _attempt(app, "leader", PASSWORD, addr=proxy, forwarded="198.51.100.1") == 302


def test_without_trusted_hops_a_forged_forwarded_for_changes_nothing(make):
    app = make(LOGIN_RATE_LIMIT="3 per minute")  # TRUSTED_PROXY_HOPS=0: the socket's address counts
    codes = [_attempt(app, addr="192.0.2.10", forwarded=f"203.0.113.{i}") for i in range(4)]
    assert codes == [401, 401, 401, 429]
    assert _attempt(app, addr="192.0.2.11") == 401


def test_the_account_limit_holds_whatever_the_address(make):
    app = make(LOGIN_ACCOUNT_RATE_LIMIT="3 per 15 minutes")
    codes = [_attempt(app, "admin", addr=f"192.0.2.{i}") for i in range(1, 5)]
    assert codes == [401, 401, 401, 429]
    assert _attempt(app, "admin", PASSWORD, addr="192.0.2.99") == 429  # even the right password waits
    assert _attempt(app, " ADMIN ", addr="192.0.2.98") == 429  # same name, other spelling
    assert _attempt(app, "leader", PASSWORD, addr="192.0.2.1") == 302  # other accounts are not touched
    assert _attempt(app, "nobody", addr="192.0.2.1") == 401


def test_successful_logins_do_not_use_up_the_account_limit(make):
    app = make(LOGIN_ACCOUNT_RATE_LIMIT="2 per 15 minutes")
    assert [_attempt(app, "leader", PASSWORD, addr=f"192.0.2.{i}") for i in range(1, 5)] == [302] * 4


def test_the_limit_holds_across_instances_sharing_the_store_without_redis(make):
    host_a = make(LOGIN_RATE_LIMIT="4 per minute")
    host_b = make(LOGIN_RATE_LIMIT="4 per minute")
    codes = [_attempt(host, addr="192.0.2.50") for host in (host_a, host_b, host_a, host_b, host_a, host_b)]
    assert codes == [401, 401, 401, 401, 429, 429]
    account_a = make(LOGIN_ACCOUNT_RATE_LIMIT="2 per 15 minutes")
    account_b = make(LOGIN_ACCOUNT_RATE_LIMIT="2 per 15 minutes")
    codes = [_attempt(h, "leader", addr=f"192.0.2.{60 + i}") for i, h in enumerate((account_a, account_b, account_b))]
    assert codes == [401, 401, 429]


@pytest.fixture
def redis_prefix():
    prefix = f"cc-test-{uuid.uuid4().hex[:10]}"
    client = redis.Redis.from_url(REDIS_URL)
    yield prefix, client
    for key in client.scan_iter(match=f"*{prefix}*"):
        client.delete(key)
    client.close()


def test_with_redis_the_limits_live_under_the_cache_prefix_and_hold_across_instances(make, redis_prefix):
    prefix, client = redis_prefix
    hosts = [make(REDIS_URL=REDIS_URL, CACHE_PREFIX=prefix, LOGIN_RATE_LIMIT="3 per minute") for _ in range(2)]
    codes = [_attempt(hosts[i % 2], addr="192.0.2.70") for i in range(4)]
    assert codes == [401, 401, 401, 429]
    keys = [k.decode() for k in client.scan_iter(match=f"*{prefix}*")]
    assert keys and all(k.startswith(f"{prefix}:limits:") for k in keys), keys
