"""Views: push from a request, read what the listener stored."""

import json
import os

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

import maxsdk
from chat.models import Message
from maxsdk.integrations.django import get_client, push


@require_GET
def index(request: HttpRequest) -> JsonResponse:
    client = get_client()  # this process's client, connected on first use
    return JsonResponse({"pid": os.getpid(), "client_pid": client.pid, "state": str(client.state)})


@csrf_exempt
@require_POST
def shout(request: HttpRequest) -> JsonResponse:
    body = json.loads(request.body or b"{}").get("body", "")
    try:
        reply = push("room:lobby", "shout", {"user": f"django-{os.getpid()}", "body": body})
    except maxsdk.ReplyTimeoutError as exc:  # ReplyLostError too: it may or may not have been delivered
        return JsonResponse({"error": str(exc)}, status=504)
    return JsonResponse({"status": reply.status})


@require_GET
def messages(request: HttpRequest) -> JsonResponse:
    rows = Message.objects.values("topic", "user", "body")
    return JsonResponse({"messages": list(rows)})
