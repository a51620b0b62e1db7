"""The built-in dialects, as data: ``form`` (Twilio-like) and ``json`` (Infobip-like).

``form``: a form-encoded POST with HTTP basic auth (account SID and auth token) to
``/2010-04-01/Accounts/{account}/Messages.json``, answered with JSON carrying ``sid``;
status callbacks are form-encoded (``MessageSid``, ``MessageStatus``, ``ErrorCode``) and
signed in ``X-Twilio-Signature`` with the auth token; a message's state can be polled at
``/Messages/{sid}.json``.

``json``: a JSON POST with ``Authorization: Bearer <token>`` (``App <key>`` with
``auth_scheme = "App"``) to ``/sms/2/text/advanced``, answered with
``messages[0].messageId`` and a status group (``REJECTED`` is a refusal); delivery reports
are JSON lists at ``results`` with ``status.groupName``, signed with an HMAC-SHA256 of
the body in ``X-Signature``; ``/sms/1/reports`` returns each report not yet fetched, once.
"""

from __future__ import annotations

from types import MappingProxyType

from providers.http.spec import (
    AuthSpec,
    CallbackSpec,
    HttpDialect,
    InboundSpec,
    PollSpec,
    ReportSpec,
    RequestSpec,
    ResponseSpec,
    SignatureSpec,
)

FORM_STATUSES = MappingProxyType(
    {
        "accepted": "accepted",
        "scheduled": "accepted",
        "queued": "accepted",
        "sending": "enroute",
        "sent": "enroute",
        "delivered": "delivered",
        "read": "delivered",
        "undelivered": "undeliverable",
        "failed": "rejected",
        "canceled": "rejected",
    }
)

JSON_STATUSES = MappingProxyType(
    {
        "ACCEPTED": "accepted",
        "PENDING": "enroute",
        "DELIVERED": "delivered",
        "UNDELIVERABLE": "undeliverable",
        "EXPIRED": "expired",
        "REJECTED": "rejected",
    }
)

_FORM_MESSAGES = "{base_url}/2010-04-01/Accounts/{account}/Messages"

FORM = HttpDialect(
    request=RequestSpec(
        url=_FORM_MESSAGES + ".json",
        fields=MappingProxyType(
            {"To": "{to}", "From": "{from}", "Body": "{text}", "StatusCallback": "{callback_url}"}
        ),
    ),
    response=ResponseSpec(
        id="sid", errors=("code",), status="status", refused=("failed",),
        temporary_errors=("20429",),  # too many requests
    ),
    auth=AuthSpec(kind="basic"),
    callback=CallbackSpec(
        format="form",
        receipt=ReportSpec(
            id="MessageSid", status="MessageStatus", error="ErrorCode", statuses=FORM_STATUSES
        ),
        inbound=InboundSpec(text="Body", source="From", destination="To"),
        signature=SignatureSpec(
            scheme="hmac-sha1-url", header="X-Twilio-Signature", encoding="base64", key="password"
        ),
    ),
    poll=PollSpec(
        mode="per_id",
        url=_FORM_MESSAGES + "/{provider_id}.json",
        receipt=ReportSpec(
            id="sid", status="status", error="error_code", done_at="date_updated",
            statuses=FORM_STATUSES,
        ),
    ),
)  # fmt: skip

_JSON_REPORT = ReportSpec(
    id="messageId", status="status.groupName", error="error.id", done_at="doneAt",
    statuses=JSON_STATUSES,
)  # fmt: skip

JSON = HttpDialect(
    request=RequestSpec(
        url="{base_url}/sms/2/text/advanced",
        body="json",
        fields=MappingProxyType(
            {
                "messages.0.destinations.0.to": "{to_digits}",
                "messages.0.from": "{from}",
                "messages.0.text": "{text}",
                "messages.0.notifyUrl": "{callback_url}",
                "messages.0.callbackData": "{message_id}",
            }
        ),
        headers=MappingProxyType({"Accept": "application/json"}),
    ),
    response=ResponseSpec(
        id="messages.0.messageId",
        errors=("messages.0.status.name", "requestError.serviceException.messageId"),
        status="messages.0.status.groupName",
        refused=("REJECTED", "UNDELIVERABLE"),
        temporary_errors=("TOO_MANY_REQUESTS", "REJECTED_NOT_ENOUGH_CREDITS"),
    ),
    auth=AuthSpec(kind="bearer"),
    callback=CallbackSpec(
        items="results",
        receipt=_JSON_REPORT,
        inbound=InboundSpec(
            text="text", source="from", destination="to", received_at="receivedAt"
        ),
        signature=SignatureSpec(scheme="hmac-sha256", header="X-Signature"),
    ),
    poll=PollSpec(
        mode="reports", url="{base_url}/sms/1/reports?limit=100", items="results",
        receipt=_JSON_REPORT,
    ),
)  # fmt: skip

BUILT_IN: MappingProxyType[str, HttpDialect] = MappingProxyType({"form": FORM, "json": JSON})
