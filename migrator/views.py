"""The upload hook: aesthetic.computer's upload function calls it right
after inserting a painting, so the painting reaches ATProto at once."""

import hashlib
import hmac
import json
import time

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from migrator.services.sync import painting_sync

SIGNATURE_HEADER = "X-AC-Signature"
TIMESTAMP_HEADER = "X-AC-Timestamp"


def signature_for(body: bytes, timestamp: str, secret: str) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the shared secret over
    ``<timestamp>.<body>``. The upload function computes the same."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@csrf_exempt
@require_POST
def painting_hook(request: HttpRequest) -> JsonResponse:
    secret = settings.SYNC_WEBHOOK_SECRET
    if not secret:
        return JsonResponse({"error": "The hook is off: set SYNC_WEBHOOK_SECRET."}, status=503)
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    signature = request.headers.get(SIGNATURE_HEADER, "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > settings.SYNC_WEBHOOK_MAX_AGE:
        return JsonResponse({"error": "Missing or stale timestamp."}, status=401)
    if not hmac.compare_digest(signature, signature_for(request.body, timestamp, secret)):
        return JsonResponse({"error": "Bad signature."}, status=401)
    try:
        ref = json.loads(request.body)["ref"]
        if not (isinstance(ref, str) and len(ref) == 24 and int(ref, 16) >= 0):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"error": 'Expected a JSON body {"ref": "<24-hex ObjectId>"}.'}, status=400)
    painting = painting_sync(ref, actor="hook:painting")
    if painting is None:
        return JsonResponse({"error": f"MongoDB has no painting {ref}."}, status=404)
    return JsonResponse({"ref": ref, "status": painting.status}, status=202)
