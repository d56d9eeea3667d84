// Tell the painting migration console about a painting just inserted into
// MongoDB, so it reaches ATProto at once instead of within the minute.
//
// Dependency-free (Node 20+). It never throws and never waits longer than
// `timeoutMs` (2 s by default): an upload must not fail or stall because the
// console is down or slow. A painting whose call is lost still arrives: the
// console's schedule reads new paintings every minute.
//
//   import { paintingSync } from "./painting-sync.mjs";
//   const { insertedId } = await collection.insertOne(painting);
//   await paintingSync(insertedId);   // { ok, status?, reason? }, never throws
//
// Another kind's document the same way, naming its kind ("mood", "kidlisp",
// "piece", "tape", "news"):
//   await paintingSync(insertedId, { kind: "mood" });
//
// Configuration, from the environment unless given:
//   PAINTING_SYNC_URL     https://<console>/hooks/painting
//   PAINTING_SYNC_SECRET  the console's SYNC_WEBHOOK_SECRET

import { createHmac } from "node:crypto";

export const DEFAULT_TIMEOUT_MS = 2000;

// "sha256=<hex HMAC-SHA256 of `<timestamp>.<body>`>", exactly as the console
// verifies it (migrator/views.py).
export function signatureFor(body, timestamp, secret) {
  return "sha256=" + createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}

export async function paintingSync(ref, options = {}) {
  const {
    url = process.env.PAINTING_SYNC_URL,
    secret = process.env.PAINTING_SYNC_SECRET,
    timeoutMs = DEFAULT_TIMEOUT_MS,
    now = () => Date.now(),
    kind,
  } = options;
  if (!url || !secret) return { ok: false, reason: "not configured (PAINTING_SYNC_URL, PAINTING_SYNC_SECRET)" };
  try {
    const body = JSON.stringify(kind ? { ref: String(ref), kind: String(kind) } : { ref: String(ref) });
    const timestamp = String(Math.floor(now() / 1000));
    const response = await fetch(url, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        "X-AC-Timestamp": timestamp,
        "X-AC-Signature": signatureFor(body, timestamp, secret),
      },
      body,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const answer = await response.json().catch(() => ({}));
    return { ok: response.status === 202, status: response.status, ...(answer.error ? { reason: answer.error } : { state: answer.status }) };
  } catch (error) {
    // Refused, reset, timed out, a bad URL: the schedule picks the painting up.
    return { ok: false, reason: error?.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : String(error?.cause?.code || error?.name || error) };
  }
}
