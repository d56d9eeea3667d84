"""The upload hook: aesthetic.computer's upload function calls it right
after inserting a painting (or a mood, a program, ...: ``kind`` in the
body), so the document reaches ATProto at once. And what watches the
console: the health endpoint an uptime monitor polls, and the metrics
Prometheus scrapes."""

import hashlib
import hmac
import json
import re
import time
from urllib.parse import quote

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from migrator.health import health_check
from migrator.kinds import KINDS, PAINTING
from migrator.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from migrator.metrics import exposition
from migrator.services.sync import document_sync
from migrator.source import WrongDatabase

SIGNATURE_HEADER = "X-AC-Signature"
TIMESTAMP_HEADER = "X-AC-Timestamp"
MAX_BODY_BYTES = 1024  # {"ref": "<24 hex>", "kind": "kidlisp"} is about 50 bytes
TIMESTAMP = re.compile(r"[0-9]{1,12}")
SIGNATURE = re.compile(r"sha256=[0-9a-f]{64}")
REF = re.compile(r"[0-9a-fA-F]{24}")


def signature_for(body: bytes, timestamp: str, secret: str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the shared secret over
    ``<timestamp>.<body>``. The upload function computes the same."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@csrf_exempt
@require_POST
def painting_hook(request: HttpRequest) -> JsonResponse:
    """Seed and queue the one document (a painting unless the call names
    another kind) named by a signed call. Every refusal
    is a 4xx with its reason; a signature is accepted once (replays are
    refused for as long as its timestamp is valid)."""
    secret = settings.SYNC_WEBHOOK_SECRET
    if not secret:
        return JsonResponse({"error": "The hook is off: set SYNC_WEBHOOK_SECRET."}, status=503)
    declared = request.META.get("CONTENT_LENGTH") or "0"
    if not declared.isascii() or not declared.isdigit() or int(declared) > MAX_BODY_BYTES:
        return JsonResponse({"error": f"The body must be at most {MAX_BODY_BYTES} bytes."}, status=413)
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not TIMESTAMP.fullmatch(timestamp) or abs(time.time() - int(timestamp)) > settings.SYNC_WEBHOOK_MAX_AGE:
        return JsonResponse({"error": "Missing or stale timestamp."}, status=401)
    if not SIGNATURE.fullmatch(signature) or not hmac.compare_digest(signature, signature_for(request.body, timestamp, secret)):
        return JsonResponse({"error": "Bad signature."}, status=401)
    # Accepted once: the cache (Redis, shared by every console, when
    # REDIS_URL is set) remembers it as long as its timestamp stays valid.
    if not cache.add(f"painting-hook:{signature}", 1, timeout=2 * settings.SYNC_WEBHOOK_MAX_AGE + 1):
        return JsonResponse({"error": "This signed call was already received (a replay)."}, status=409)
    try:
        body = json.loads(request.body)
        ref, kind_name = body["ref"], body.get("kind", PAINTING.name)
    except (ValueError, KeyError, TypeError, AttributeError):
        ref, kind_name = None, None
    if not (isinstance(ref, str) and REF.fullmatch(ref)) or kind_name not in KINDS:
        kinds = "|".join(KINDS)
        return JsonResponse({"error": f'Expected a JSON body {{"ref": "<24-hex ObjectId>", "kind": "{kinds}" (default painting)}}.'}, status=400)
    ref, kind = ref.lower(), KINDS[kind_name]
    try:
        transfer = document_sync(ref, actor=f"hook:{kind.name}", kind=kind)
    except WrongDatabase as error:
        return JsonResponse({"error": str(error)}, status=503)
    if transfer is None:
        return JsonResponse({"error": f"MongoDB has no {kind.name} {ref}."}, status=404)
    named = {"kind": kind.name} if "kind" in body else {}  # said back when the call named it
    return JsonResponse({"ref": ref, **named, "status": transfer.status}, status=202)


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    """200 {"status": "ok", "checks": {...}} when the console's database,
    MongoDB, the PDS and the job cluster answer and live sync ran recently;
    503 with "failing" naming each check that did not (migrator.health).
    No login: it shows nothing secret."""
    found = health_check()
    return JsonResponse(found.as_json(), status=200 if found.ok else 503)


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    """The console's state for Prometheus (migrator.metrics), to a request
    that carries ``Authorization: Bearer <METRICS_TOKEN>`` or to signed-in
    staff; 401 asks for the token, 403 refuses a wrong one (or a signed-in
    person who is not staff). 503 when the console's database does not answer."""
    refused = _metrics_refused(request)
    if refused is not None:
        return refused
    try:
        body = exposition()
    except DatabaseError as error:
        return HttpResponse(f"The console's database did not answer ({type(error).__name__}).\n", status=503, content_type="text/plain")
    return HttpResponse(body, content_type=METRICS_CONTENT_TYPE)


def _metrics_refused(request: HttpRequest) -> HttpResponse | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _ask_for_token("Send the token as Authorization: Bearer <METRICS_TOKEN>.")
        if not settings.METRICS_TOKEN:
            return _refuse("No token opens /metrics on this console: set METRICS_TOKEN.")
        if not hmac.compare_digest(token.strip().encode(), settings.METRICS_TOKEN.encode()):
            return _refuse("That is not this console's METRICS_TOKEN.")
        return None
    user = request.user
    if user.is_authenticated and user.is_active and user.is_staff:
        return None
    if user.is_authenticated:
        return _refuse("Only staff, or a request with METRICS_TOKEN, may read /metrics.")
    return _ask_for_token("Send Authorization: Bearer <METRICS_TOKEN>, or sign in as staff.")


def _ask_for_token(message: str) -> HttpResponse:
    response = HttpResponse(message + "\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def _refuse(message: str) -> HttpResponse:
    return HttpResponse(message + "\n", status=403, content_type="text/plain")


# The admin's pages of the state table before its rename (migration 0010):
# bookmarks and the links in alerts sent before it keep working.
RENAMED_ADMIN_PAGES = {"paintingmigration": "transfer", "migrationevent": "transferevent"}


@require_safe
def renamed_admin_page(request: HttpRequest, old: str, rest: str) -> HttpResponse:
    """A permanent redirect from the old page to the same page under its new
    name, with its query (filters, search) kept. It stays on this site: the
    target is always a path under /admin/."""
    target = f"/admin/migrator/{RENAMED_ADMIN_PAGES[old]}/{quote(rest)}"
    query = request.META.get("QUERY_STRING", "")
    return HttpResponsePermanentRedirect(f"{target}?{query}" if query else target)
