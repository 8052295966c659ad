"""The foundation through the gateway: authentication, the admin API, routing and bad input."""

from __future__ import annotations

import asyncio
import base64
import io

import pytest
from aiohttp import ClientResponse
from yarl import URL

from collections_hub.stack import EmbeddedStack
from tests.support import Hub, hs256_token, unique_email


def assert_clean(response: ClientResponse, body: bytes) -> None:
    """No stack trace and no version banner, whatever the status."""
    assert b"Traceback" not in body
    assert "aiohttp" not in response.headers.get("Server", "")
    assert "Python" not in response.headers.get("Server", "")


async def test_every_kind_of_answer_names_the_server_and_nothing_more(hub: Hub) -> None:
    """Its own route, a proxied answer, a proxied error, no route, a refused path, no credentials, a 405:
    `Server: collections-hub`, never aiohttp's or Python's version."""
    answers = [
        ("GET", "/v1/me", hub.admin()),
        ("GET", "/v1/collections?pageSize=1", hub.admin()),
        ("GET", "/v1/collections/nope", hub.admin()),
        ("GET", "/nowhere", hub.admin()),
        ("GET", "/v1/collections/%2e%2e", hub.admin()),
        ("GET", "/v1/collections", {}),
        ("DELETE", "/v1/me", hub.admin()),
        ("GET", "/healthz", {}),
    ]
    statuses = []
    for method, path, headers in answers:
        url = URL(f"{hub.url}{path}", encoded=True)  # the path as written, `%2e%2e` included
        async with hub.http.request(method, url, headers=headers) as response:
            statuses.append(response.status)
            assert response.headers.get("Server") == "collections-hub", (path, response.headers)
    assert statuses == [200, 200, 404, 404, 400, 401, 405, 200]


async def test_gateway_is_ready_when_every_service_is(hub: Hub) -> None:
    """`/readyz` answers 200 with no failed dependency while all services run."""
    response = await hub.http.get(f"{hub.url}/readyz")
    assert response.status == 200
    assert (await response.json())["failed"] == {}


async def test_admin_key_shows_the_bootstrap_admin(hub: Hub) -> None:
    """`GET /v1/me` with `HUB_ADMIN_API_KEY` shows admin@localhost with the admin role."""
    response = await hub.call("GET", "/v1/me")
    assert response.status == 200
    me = await response.json()
    assert (me["email"], me["role"], me["auth"]) == ("admin@localhost", "admin", "api_key")


async def test_one_key_works_in_all_three_forms(hub: Hub) -> None:
    """The issued key works as X-API-KEY and Bearer, and Basic key_id:secret is the same user."""
    user = await hub.create_user()
    issued = await hub.create_key(user["id"])
    basic = base64.b64encode(f"{issued['key_id']}:{issued['secret']}".encode()).decode()
    for headers in (
        {"X-API-KEY": issued["key"]},
        {"Authorization": f"Bearer {issued['key']}"},
        {"Authorization": f"Basic {basic}"},
    ):
        response = await hub.call("GET", "/v1/me", headers=headers)
        assert response.status == 200, headers
        assert (await response.json())["user_id"] == user["id"]


async def test_created_user_has_integer_id_and_normalised_unique_email(hub: Hub) -> None:
    """Users get increasing integer ids; the same e-mail in another case is a 409."""
    email = unique_email("Case")
    first = await hub.create_user(email=email)
    second = await hub.create_user()
    assert isinstance(first["id"], int)
    assert second["id"] > first["id"]
    response = await hub.call("POST", "/admin/users", json={"email": email.upper(), "role": "user"})
    assert response.status == 409
    assert await response.json() == {"error": "email already in use"}


async def test_hs256_jwt_authenticates_its_subject(hub: Hub, stack: EmbeddedStack) -> None:
    """A valid HS256 token for an existing user id authenticates as that user."""
    user = await hub.create_user()
    token = hs256_token(stack.jwt_secret, user["id"])
    response = await hub.call("GET", "/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    me = await response.json()
    assert (me["user_id"], me["auth"]) == (user["id"], "jwt")


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": 1},
        {"nbf": 4_102_444_800},
        {"aud": "someone-else"},
        {"sub": "999999999"},
    ],
    ids=["expired", "not-yet-valid", "wrong-aud", "unknown-user"],
)
async def test_invalid_jwts_are_401(hub: Hub, stack: EmbeddedStack, claims: dict[str, object]) -> None:
    """Expired, early, wrong-audience tokens and tokens for no user are refused with a JSON 401."""
    claims = {"sub": "1", **claims}
    token = hs256_token(stack.jwt_secret, **claims)  # type: ignore[arg-type]
    response = await hub.call("GET", "/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 401
    assert "error" in await response.json()


async def test_unsigned_and_wrongly_signed_jwts_are_401(hub: Hub) -> None:
    """`alg: none` and a signature by another secret are refused."""
    unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIiwiYXVkIjoiY29sbGVjdGlvbnMtaHViIn0."
    forged = hs256_token("a-different-secret-that-is-long-enough-for-hs256!!", 1)
    for token in (unsigned, forged):
        response = await hub.call("GET", "/v1/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status == 401


async def test_no_or_unknown_credentials_are_401(hub: Hub) -> None:
    """No credentials, an unknown key and a wrong secret for a real key id are all refused."""
    _, key = await hub.user_with_key()
    key_id = key.split(".")[0]
    for headers in (
        {},
        {"X-API-KEY": "hk_0000000000000000.nope-nope-nope-nope-nope-nope-nope-nope"},
        {"X-API-KEY": f"{key_id}.wrong-secret-wrong-secret-wrong-secret-xx"},
    ):
        response = await hub.call("GET", "/v1/me", headers=headers)
        assert response.status == 401
        assert "error" in await response.json()


async def test_revoked_key_stops_working_within_one_second(hub: Hub) -> None:
    """After DELETE /admin/api-keys/{id} returns, the key is refused on the first request after 1s."""
    user = await hub.create_user()
    issued = await hub.create_key(user["id"])
    assert (await hub.call("GET", "/v1/me", key=issued["key"])).status == 200
    revoke = await hub.call("DELETE", f"/admin/api-keys/{issued['id']}")
    assert revoke.status == 200
    await asyncio.sleep(1.0)
    assert (await hub.call("GET", "/v1/me", key=issued["key"])).status == 401
    again = await hub.call("DELETE", f"/admin/api-keys/{issued['id']}")
    assert again.status == 404


async def test_non_admin_on_admin_routes_is_403(hub: Hub) -> None:
    """A plain user may not use the admin API."""
    _, key = await hub.user_with_key()
    response = await hub.call(
        "POST", "/admin/users", key=key, json={"email": unique_email(), "role": "admin"}
    )
    assert response.status == 403
    assert await response.json() == {"error": "admin role required"}


async def test_unknown_route_is_json_404_and_wrong_method_json_405(hub: Hub) -> None:
    """Paths no service serves are 404, known paths with another method are 405, both as JSON."""
    missing = await hub.call("GET", "/no/such/route")
    assert missing.status == 404
    assert await missing.json() == {"error": "not found"}
    for method, path in (("POST", "/v1/me"), ("PATCH", "/admin/users")):
        response = await hub.call(method, path, json={})
        assert response.status == 405, path
        assert await response.json() == {"error": "method not allowed"}


async def test_malformed_json_is_400_and_creates_nothing(hub: Hub) -> None:
    """A body that is not JSON is refused with 400; unknown fields and bad e-mails with a 4xx."""
    response = await hub.call(
        "POST",
        "/admin/users",
        data=b'{"email": ',
        headers={**hub.admin(), "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert await response.json() == {"error": "malformed JSON body"}
    for body in (
        {"email": unique_email(), "role": "user", "extra": 1},
        {"email": "not-an-email"},
        {"email": 5},
    ):
        bad = await hub.call("POST", "/admin/users", json=body)
        assert bad.status == 400, body


async def test_body_over_the_limit_is_413(hub: Hub) -> None:
    """A body over `HUB_MAX_BODY_BYTES` is refused with a JSON 413."""
    big = b'{"email": "' + b"a" * 2_000_000 + b'@example.com"}'
    response = await hub.call(
        "POST",
        "/admin/users",
        data=io.BytesIO(big),
        headers={**hub.admin(), "Content-Type": "application/json"},
    )
    assert response.status == 413
    assert await response.json() == {"error": "request body too large"}


async def test_no_response_shows_a_stack_trace_or_version_banner(hub: Hub) -> None:
    """Success and error answers alike carry no trace and no server version."""
    for method, path, kwargs in (
        ("GET", "/v1/me", {}),
        ("GET", "/no/such/route", {}),
        ("POST", "/admin/users", {"data": b"{"}),
        ("GET", "/v1/me", {"headers": {"Authorization": "Basic !!!"}}),
    ):
        response = await hub.call(method, path, **kwargs)
        assert_clean(response, await response.read())


async def test_request_id_is_kept_or_made(hub: Hub) -> None:
    """A well-formed X-Request-ID comes back unchanged; without one the gateway makes one."""
    kept = await hub.call("GET", "/v1/me", headers={**hub.admin(), "X-Request-ID": "trace-123"})
    assert kept.headers["X-Request-ID"] == "trace-123"
    made = await hub.call("GET", "/v1/me")
    assert len(made.headers["X-Request-ID"]) >= 16


async def test_services_refuse_callers_without_the_internal_secret(hub: Hub, stack: EmbeddedStack) -> None:
    """Going around the gateway with a forged principal header gets a 401 from the service."""
    forged = '{"user_id":1,"email":"admin@localhost","role":"admin","auth":"api_key"}'
    for service in ("access_service", "catalog_service", "history_service"):
        response = await hub.http.post(
            f"{stack.service_urls[service]}/admin/users",
            json={"email": unique_email(), "role": "admin"},
            headers={"X-Hub-Principal": forged},
        )
        assert response.status == 401, service
    wrong = await hub.http.post(
        f"{stack.service_urls['access_service']}/admin/users",
        json={"email": unique_email(), "role": "admin"},
        headers={"X-Hub-Principal": forged, "X-Hub-Internal-Secret": "guess"},
    )
    assert wrong.status == 401


async def test_metrics_count_requests_and_mongo_commands(hub: Hub, stack: EmbeddedStack) -> None:
    """The gateway exposes request counts and latency to admins; services also count MongoDB commands."""
    await hub.call("GET", "/v1/me")
    gateway = await (await hub.http.get(f"{hub.url}/metrics", headers=hub.admin())).text()
    assert 'http_requests_total{method="GET",route="/v1/me",service="gateway",status="200"}' in gateway
    assert "http_request_duration_seconds_bucket" in gateway
    access = await (await hub.http.get(f"{stack.service_urls['access_service']}/metrics")).text()
    assert 'mongo_commands_total{client="api",command="find",service="access_service"}' in access


@pytest.mark.parametrize("first_name", ["Zo\x7fe", "Zoë", "名前", "a\u2028b", "🙂"])
async def test_any_name_travels_to_the_services_and_concurrent_first_requests_all_get_answers(
    hub: Hub, first_name: str
) -> None:
    """A user whose name holds DEL, non-ASCII or a line separator: its principal still reaches the services
    (as escaped JSON), and several first requests with its key at once, which share one look-up, all get
    their answer (a failure building the forwarding headers once left them waiting forever, and gave
    the first a 500)."""
    response = await hub.call(
        "POST", "/admin/users", json={"email": unique_email("named"), "first_name": first_name}
    )
    assert response.status == 201, await response.text()
    user = await response.json()
    key = (await hub.create_key(user["id"]))["key"]
    calls = [hub.call("GET", "/v1/collections?pageSize=1", key=key) for _ in range(5)]
    calls.append(hub.call("GET", "/v1/me", key=key))
    answers = await asyncio.wait_for(asyncio.gather(*calls), timeout=10)
    assert [answer.status for answer in answers] == [200] * 6
    assert (await answers[-1].json())["first_name"] == first_name
