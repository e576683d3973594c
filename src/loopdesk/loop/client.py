"""What both Loop clients share: construction, settings, stats and closing."""

from __future__ import annotations

from typing import ClassVar, Self

import httpx
from pydantic import SecretStr

from loopdesk.loop.closing import AsyncClosing
from loopdesk.loop.http import UpstreamHTTP
from loopdesk.loop.stats import UpstreamStats
from loopdesk.settings import Settings


class UpstreamClient(AsyncClosing):
    service: ClassVar[str]
    auth_header: ClassVar[str]

    def __init__(
        self,
        *,
        base_url: str,
        token: str,
        settings: Settings,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = UpstreamHTTP(
            service=self.service,
            base_url=base_url,
            token=token,
            auth_header=self.auth_header,
            settings=settings,
            transport=transport,
        )

    @classmethod
    def configured(cls, settings: Settings) -> tuple[str, SecretStr | None]:
        """This API's base URL and token in the settings."""
        raise NotImplementedError

    @classmethod
    def from_settings(
        cls, settings: Settings, transport: httpx.AsyncBaseTransport | None = None
    ) -> Self:
        base_url, secret = cls.configured(settings)
        secret = secret or settings.sandbox_token
        token = secret.get_secret_value() if secret else ""
        return cls(base_url=base_url, token=token, settings=settings, transport=transport)

    @property
    def stats(self) -> UpstreamStats:
        return self._http.stats

    async def aclose(self) -> None:
        await self._http.aclose()
