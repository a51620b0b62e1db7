"""TLS when configured: the API over HTTPS, SMPP over TLS to the simulator, real certs.

The certificates are made for the test (a self-signed CA signing a certificate for
127.0.0.1); the gateway trusts the CA through ``tls_ca`` and checks the host name.
"""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import aiopg
import pytest

from gateway.adapters import client_store
from gateway.embedded import ServerUrls
from gateway.settings import Settings
from loadtest.smsc import SmscConfig, SmscSimulator
from smsgw.runner import serving
from tests.e2e.conftest import Api, gateway_settings, providers_ready, wait_for
from tests.tls_certs import ServerCert, make_certs


@pytest.fixture
def certs(tmp_path: Path) -> ServerCert:
    return make_certs(tmp_path)


@pytest.fixture
async def tls_smsc(certs: ServerCert) -> AsyncIterator[SmscSimulator]:
    config = SmscConfig(
        port=0, receipt_delay=0.05, tls_cert=str(certs.cert), tls_key=str(certs.key)
    )
    async with SmscSimulator(config) as sim:
        yield sim


def tls_settings(smsc_port: int, certs: ServerCert) -> Settings:
    settings = gateway_settings(smsc_port, first_bind_wait_s=1.0)
    provider = settings.providers[0]
    assert provider.smpp is not None
    tls_smpp = dataclasses.replace(provider.smpp, tls=True, tls_ca=str(certs.ca))
    http = dataclasses.replace(settings.http, tls_cert=certs.cert, tls_key=certs.key)
    providers = (dataclasses.replace(provider, smpp=tls_smpp),)
    return dataclasses.replace(settings, http=http, providers=providers)


async def test_api_over_https_and_smpp_over_tls_deliver_a_message(
    server_urls: ServerUrls,
    clean: None,
    pool: aiopg.Pool,
    tls_smsc: SmscSimulator,
    certs: ServerCert,
) -> None:
    settings = tls_settings(tls_smsc.port, certs)
    trust = ssl.create_default_context(cafile=str(certs.ca))
    async with serving(settings, server_urls) as gateway:
        created = await client_store.create(pool, "tls-client", default_sender="Shop")
        headers = {"Authorization": f"Bearer {created.api_key}"}
        base = f"https://127.0.0.1:{settings.http.port}"
        connector = aiohttp.TCPConnector(ssl=trust)
        async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:
            api = Api(gateway, http, created, pool)
            await wait_for(lambda: providers_ready(gateway))
            status, sent = await api.send(to="+79211234567", text="по TLS")
            assert status == 202, sent
            assert (await api.wait_status(sent["id"], "delivered"))["status"] == "delivered"
        assert tls_smsc.stats.submits == 1 and tls_smsc.stats.receipts_sent == 1
        async with aiohttp.ClientSession() as plain:
            with pytest.raises(aiohttp.ClientError):
                await plain.get(f"http://127.0.0.1:{settings.http.port}/v1/health")


async def test_smpp_tls_refuses_an_smsc_it_does_not_trust(
    server_urls: ServerUrls, clean: None, tls_smsc: SmscSimulator, certs: ServerCert, tmp_path: Path
) -> None:
    (tmp_path / "other").mkdir()
    stranger = make_certs(tmp_path / "other")
    settings = tls_settings(tls_smsc.port, stranger)  # trusts another CA
    settings = dataclasses.replace(
        settings, http=dataclasses.replace(settings.http, tls_cert=None, tls_key=None)
    )
    async with serving(settings, server_urls) as gateway:
        assert not any(p.ready for p in gateway.providers.values())
    assert tls_smsc.stats.binds == 0
