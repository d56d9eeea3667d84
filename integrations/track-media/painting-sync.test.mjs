// node --test, against the real console. tests/test_track_media.py starts the
// console (runserver) and MongoDB, inserts the paintings and runs this file
// with HOOK_URL, HOOK_SECRET, REF_NOW and REF_LATER in the environment.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";

import { paintingSync, signatureFor } from "./painting-sync.mjs";

const { HOOK_URL: url, HOOK_SECRET: secret, REF_NOW, REF_LATER, REF_MOOD } = process.env;

async function post(body, { timestamp = String(Math.floor(Date.now() / 1000)), key = secret } = {}) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-AC-Timestamp": timestamp, "X-AC-Signature": signatureFor(body, timestamp, key) },
    body,
  });
  return { status: response.status, answer: await response.json() };
}

function listening(onConnection) {
  return new Promise((resolve) => {
    const server = net.createServer(onConnection);
    server.listen(0, "127.0.0.1", () => resolve(server));
  });
}

test("a signed call queues the painting", async () => {
  const result = await paintingSync(REF_NOW, { url, secret });
  assert.deepEqual(result, { ok: true, status: 202, state: "queued" });
});

test("a signed call queues a mood, naming its kind", async () => {
  const result = await paintingSync(REF_MOOD, { url, secret, kind: "mood" });
  assert.deepEqual(result, { ok: true, status: 202, state: "queued" });
  const unknown = await paintingSync(REF_MOOD, { url, secret, kind: "sculpture" });
  assert.equal(unknown.status, 400);
});

test("a wrong secret is refused", async () => {
  const result = await paintingSync(REF_NOW, { url, secret: "not-the-secret" });
  assert.equal(result.ok, false);
  assert.equal(result.status, 401);
});

test("a stale timestamp is refused", async () => {
  const result = await paintingSync(REF_NOW, { url, secret, now: () => Date.now() - 3600_000 });
  assert.equal(result.status, 401);
  assert.match(result.reason, /stale timestamp/);
});

test("a replayed call is refused", async () => {
  // Bytes of its own (spaced JSON), so no earlier test's call has this signature.
  const body = `{ "ref": "${REF_NOW}" }`;
  const timestamp = String(Math.floor(Date.now() / 1000));
  assert.equal((await post(body, { timestamp })).status, 202);
  const replay = await post(body, { timestamp });
  assert.equal(replay.status, 409);
  assert.match(replay.answer.error, /replay/);
});

test("the console down: an answer at once, no exception", async () => {
  const server = await listening(() => {});
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve)); // nothing listens there now
  const started = Date.now();
  const result = await paintingSync(REF_LATER, { url: `http://127.0.0.1:${port}/hooks/painting`, secret });
  assert.equal(result.ok, false);
  assert.match(result.reason, /ECONNREFUSED/);
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
});

test("the console slow: gives up after the timeout, no exception", async () => {
  const sockets = [];
  const server = await listening((socket) => sockets.push(socket)); // accepts, never answers
  const { port } = server.address();
  const started = Date.now();
  const result = await paintingSync(REF_LATER, { url: `http://127.0.0.1:${port}/hooks/painting`, secret, timeoutMs: 500 });
  const took = Date.now() - started;
  sockets.forEach((socket) => socket.destroy());
  server.close();
  assert.equal(result.ok, false);
  assert.match(result.reason, /no answer within 500 ms/);
  assert.ok(took >= 450 && took < 1500, `took ${took} ms`);
});

test("not configured: does nothing, says so", async () => {
  const result = await paintingSync(REF_NOW, { url: "", secret: "" });
  assert.deepEqual(result, { ok: false, reason: "not configured (PAINTING_SYNC_URL, PAINTING_SYNC_SECRET)" });
});
