'use strict';
/*
 * bench/e2e.py's Node.js row: a gateway doing, per request, the work hssgw
 * does on its cheap export paths, so that the two can be measured behind
 * the same nginx in one run (issue #10).  Not a product: a yardstick.
 *
 * Per POST /v1/exports/image-baseline:
 *   1. RS256 JWT from "Authorization: Bearer" checked with jsonwebtoken
 *      against the public key hssgw uses (parsed once, at start), the
 *      algorithm pinned, kid, iss, aud, exp required (leeway as hssgw's);
 *      optionally answered from a verified-token cache keyed by the
 *      SHA-256 of the whole token (--cache N, 0 = off), whose hits still
 *      check exp/nbf against the clock.  401 JSON on failure.
 *   2. The body validated against a JSON schema (a subset of
 *      docs/FIELDS.md: unknown members refused).  400 JSON.
 *   3. The policy file hssgw loads (policies/demo.json), evaluated for
 *      hss:ExportImageBaseline on hss:<region>:<project>: an explicit
 *      Deny wins, then an Allow, else default deny.  403 JSON.
 *   4. One audit line per answer, hash-chained like hssgw's trail
 *      (docs/AUDIT.md: seq, prev, and the SHA-256 of the line without its
 *      hash member) so that `hssgw audit verify` checks it, and on disk
 *      before the answer: group commit, one fdatasync covering every line
 *      pending when the previous sync finished (--no-fsync turns that off;
 *      the comparison with hssgw is then unfair, hssgw's rows are durable).
 *   5. For an allowed export, after its record is durable (nothing is sent
 *      upstream before, like hssgw's intent record), the body is re-sent
 *      to the static upstream with undici (keep-alive pool; over TLS,
 *      checked against --ca, when --upstream is https://) and its 200
 *      answered.
 * One process, one event loop: the fdatasync runs on libuv's thread pool.
 *
 * usage: node gateway.js --listen unix:PATH|PORT --key PUB.pem --kid KID
 *        --issuer ISS --audience AUD --policy FILE --project ALIAS=REGION
 *        --upstream http[s]://127.0.0.1:PORT [--ca CA.pem] --audit FILE
 *        [--cache N] [--leeway S] [--no-fsync]
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const fsp = require('node:fs/promises');
const { parseArgs } = require('node:util');
const fastify = require('fastify');
const jwt = require('jsonwebtoken');
const { Pool } = require('undici');

const EXPORT_PATH = '/v1/exports/image-baseline';
const ACTION = 'hss:ExportImageBaseline';
const MAX_TOKEN_BYTES = 8192; /* hssgw's jwt.max_token_bytes in the bench */
const MAX_BODY_BYTES = 16384; /* hssgw's max_body_bytes in the bench */
const MAX_UPSTREAM_BYTES = 1048576; /* upstream.max_response_bytes */
const UPSTREAM_TIMEOUT_MS = 5000;
/* The caps docs/AUDIT.md puts on caller-controlled strings. */
const CAP_PATH = 512;
const CAP_ADDR = 64;
const CAP_TEXT = 256;
const CAP_GROUPS = 32;

function die(msg) {
	process.stderr.write('gateway.js: ' + msg + '\n');
	process.exit(2);
}

function sha256hex(s) {
	return crypto.createHash('sha256').update(s).digest('hex');
}

/* A caller-controlled string, capped, with the length cut off named. */
function cap(s, n) {
	if (typeof s !== 'string')
		return null;
	return s.length <= n ? s :
	    s.slice(0, n) + '...[truncated ' + s.length + ' chars]';
}

function opts() {
	let a;
	try {
		a = parseArgs({ options: {
			listen: { type: 'string' }, key: { type: 'string' },
			kid: { type: 'string' }, issuer: { type: 'string' },
			audience: { type: 'string' }, policy: { type: 'string' },
			project: { type: 'string', multiple: true },
			upstream: { type: 'string' }, audit: { type: 'string' },
			ca: { type: 'string' },
			cache: { type: 'string', default: '0' },
			leeway: { type: 'string', default: '60' },
			'no-fsync': { type: 'boolean', default: false },
		} }).values;
	} catch (e) {
		die(e.message);
	}
	for (const k of ['listen', 'key', 'kid', 'issuer', 'audience',
	    'policy', 'project', 'upstream', 'audit']) {
		if (a[k] === undefined)
			die('--' + k + ' is required');
	}
	const num = (name, lo, hi) => {
		const v = a[name];
		if (!/^[0-9]{1,9}$/.test(v) || +v < lo || +v > hi)
			die('--' + name + ' must be an integer ' + lo + '..' + hi);
		return +v;
	};
	a.cache = num('cache', 0, 1000000);
	a.leeway = num('leeway', 0, 3600);
	a.projects = new Map();
	for (const p of a.project) {
		const m = /^([A-Za-z0-9_.-]{1,64})=([a-z0-9-]{1,64})$/.exec(p);
		if (m === null)
			die('--project must be ALIAS=REGION: ' + p);
		a.projects.set(m[1], m[2]);
	}
	return a;
}

/*
 * Policy: the statements hssgw's bench rows use (Effect, Principal with
 * jwt:<claim> keys or "*", Action, Resource, with * and ? wildcards).
 * Anything else (NotAction, Condition, variables...) is refused at load
 * rather than silently ignored: a yardstick that allowed more than hssgw
 * would measure less work.
 */
function glob(p) {
	if (typeof p !== 'string' && typeof p !== 'number' &&
	    typeof p !== 'boolean')
		throw new Error('pattern must be a string: ' + JSON.stringify(p));
	const re = String(p).replace(/[.+^${}()|[\]\\]/g, '\\$&')
	    .replace(/\*/g, '.*').replace(/\?/g, '.');
	return new RegExp('^' + re + '$', 'su');
}

function list(v) {
	return Array.isArray(v) ? v : [v];
}

function policyLoad(file) {
	const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
	const known = new Set(['Sid', 'Effect', 'Principal', 'Action',
	    'Resource']);
	return list(doc.Statement).map((s) => {
		for (const k of Object.keys(s)) {
			if (!known.has(k))
				throw new Error('statement ' + s.Sid +
				    ': unsupported ' + k);
		}
		if (s.Effect !== 'Allow' && s.Effect !== 'Deny')
			throw new Error('statement ' + s.Sid + ': Effect');
		let principal = null; /* null: every verified token */
		if (s.Principal !== '*') {
			principal = Object.entries(s.Principal).map(([k, v]) => {
				if (!k.startsWith('jwt:'))
					throw new Error('Principal key ' + k);
				return [k.slice(4), list(v).map(glob)];
			});
		}
		return { sid: s.Sid || null, deny: s.Effect === 'Deny',
		    principal, actions: list(s.Action).map(glob),
		    resources: list(s.Resource).map(glob) };
	});
}

function principalMatches(st, claims) {
	if (st.principal === null)
		return true;
	return st.principal.every(([claim, pats]) => {
		const v = claims[claim];
		if (v === undefined || v === null)
			return false; /* a missing claim never matches */
		return list(v).some((x) => (typeof x === 'string' ||
		    typeof x === 'number' || typeof x === 'boolean') &&
		    pats.some((re) => re.test(String(x))));
	});
}

function policyEval(statements, claims, action, resource) {
	let allow = null;
	for (const st of statements) {
		if (!principalMatches(st, claims) ||
		    !st.actions.some((re) => re.test(action)) ||
		    !st.resources.some((re) => re.test(resource)))
			continue;
		if (st.deny)
			return { decision: 'explicit_deny', statement: st.sid };
		if (allow === null)
			allow = st.sid;
	}
	return allow !== null ? { decision: 'allow', statement: allow } :
	    { decision: 'implicit_deny', statement: null };
}

/*
 * Verified-token cache: the claims of a token that passed full
 * verification, by the SHA-256 of the whole compact token (so a token
 * differing in any byte misses).  Bounded; the oldest entry goes first
 * (Map keeps insertion order).  Failures are never stored.
 */
class TokenCache {
	constructor(entries) {
		this.max = entries;
		this.map = new Map();
	}

	get(key) {
		return this.max > 0 ? this.map.get(key) : undefined;
	}

	put(key, claims) {
		if (this.max === 0)
			return;
		if (this.map.size >= this.max)
			this.map.delete(this.map.keys().next().value);
		this.map.set(key, claims);
	}
}

class AuthError extends Error {}

function makeVerifier(a) {
	/* Parsed once: jsonwebtoken takes the KeyObject as is. */
	const key = crypto.createPublicKey(fs.readFileSync(a.key));
	const vopts = { algorithms: ['RS256'], issuer: a.issuer,
	    audience: a.audience, clockTolerance: a.leeway, complete: true };
	const cache = new TokenCache(a.cache);
	return (token, digest) => {
		const now = Math.floor(Date.now() / 1000);
		let claims = cache.get(digest);
		if (claims !== undefined) {
			/* A hit is still subject to the clock. */
			if (now > claims.exp + a.leeway)
				throw new AuthError('expired');
			if (typeof claims.nbf === 'number' &&
			    now + a.leeway < claims.nbf)
				throw new AuthError('not yet valid');
			return claims;
		}
		let t;
		try {
			t = jwt.verify(token, key, vopts);
		} catch (e) {
			throw new AuthError(e.message);
		}
		if (t.header.kid !== a.kid)
			throw new AuthError('unknown kid');
		claims = t.payload;
		if (typeof claims.exp !== 'number')
			throw new AuthError('no exp');
		if (typeof claims.sub !== 'string')
			throw new AuthError('no sub');
		cache.put(digest, claims);
		return claims;
	};
}

/*
 * The trail: one JSON line per answer, chained and hashed as hssgw's
 * (docs/AUDIT.md "Record format and hashing").  emit() assigns seq, prev
 * and hash at once (one thread: the order of emit() is the order in the
 * file) and resolves once the line is on disk.  Group commit: while one
 * write + fdatasync runs, new lines queue; the next round writes them all
 * and one fdatasync covers them.  A failed write or sync refuses that
 * round's requests and every later one (fail closed, 503).
 */
class Audit {
	constructor(file, fsync) {
		this.file = file;
		this.fsync = fsync;
		this.fh = null;
		this.seq = 0;
		this.prev = '0'.repeat(64);
		this.lines = [];
		this.waiters = [];
		this.busy = false;
		this.broken = null;
		this.commits = 0;
	}

	async open() {
		/* Continue the chain of an existing trail from its last line. */
		try {
			const data = fs.readFileSync(this.file, 'utf8');
			const last = data.trimEnd().split('\n').pop();
			if (last) {
				const r = JSON.parse(last);
				this.seq = r.seq;
				this.prev = r.hash;
			}
		} catch (e) {
			if (e.code !== 'ENOENT')
				throw e;
		}
		this.fh = await fsp.open(this.file, 'a', 0o600);
	}

	emit(rec) {
		if (this.broken !== null)
			return Promise.reject(this.broken);
		this.seq += 1;
		const canon = JSON.stringify(Object.assign(
		    { v: 1, seq: this.seq, prev: this.prev }, rec));
		const hash = sha256hex(canon);
		this.prev = hash;
		this.lines.push(canon.slice(0, -1) + ',"hash":"' + hash +
		    '"}\n');
		const p = new Promise((resolve, reject) => {
			this.waiters.push({ resolve, reject });
		});
		if (!this.busy)
			this.commit();
		return p;
	}

	async commit() {
		this.busy = true;
		while (this.lines.length > 0) {
			const buf = Buffer.from(this.lines.join(''));
			const waiters = this.waiters;
			this.lines = [];
			this.waiters = [];
			try {
				for (let off = 0; off < buf.length;) {
					const { bytesWritten } = await this.fh.write(
					    buf, off, buf.length - off);
					off += bytesWritten;
				}
				if (this.fsync)
					await this.fh.datasync();
				this.commits += 1;
				for (const w of waiters)
					w.resolve();
			} catch (e) {
				this.broken = e;
				for (const w of waiters.concat(this.waiters))
					w.reject(e);
				this.lines = [];
				this.waiters = [];
			}
		}
		this.busy = false;
	}

	async close() {
		while (this.busy)
			await new Promise((r) => setImmediate(r));
		if (this.fh !== null)
			await this.fh.close();
	}
}

/* The body schema: a subset of docs/FIELDS.md, unknown members refused. */
const BODY_SCHEMA = {
	type: 'object',
	required: ['project'],
	additionalProperties: false,
	properties: {
		project: { type: 'string', minLength: 1, maxLength: 64 },
		enterprise_project_id: { type: 'string', minLength: 1,
		    maxLength: 256 },
		export_size: { type: 'integer', minimum: 0,
		    maximum: 2147483647 },
		image_id_list: { type: 'array', maxItems: 1000,
		    items: { type: 'string', minLength: 1, maxLength: 128 } },
		operate_all: { type: 'boolean' },
		image_type: { enum: ['private_image', 'shared_image',
		    'local_image', 'instance_image', 'harbor', 'jfrog',
		    'cicd'] },
		vul_type: { enum: ['linux_vul', 'app_vul'] },
	},
};

function main() {
	const a = opts();
	let verify, statements;
	try {
		verify = makeVerifier(a);
		statements = policyLoad(a.policy);
	} catch (e) {
		die(e.message);
	}
	const audit = new Audit(a.audit, !a['no-fsync']);
	/* The CA the static upstream's certificate is checked against, like
	 * hssgw's upstream.ca_file (Node's default is the system store). */
	const connect = a.ca === undefined ? undefined :
	    { ca: fs.readFileSync(a.ca) };
	const upstream = new Pool(a.upstream, { connections: 64,
	    keepAliveTimeout: 30000, headersTimeout: UPSTREAM_TIMEOUT_MS,
	    bodyTimeout: UPSTREAM_TIMEOUT_MS, connect });
	const app = fastify({ logger: false, bodyLimit: MAX_BODY_BYTES,
	    ajv: { customOptions: { coerceTypes: false, removeAdditional: false,
	    allErrors: false } } });
	/* JSON only, as hssgw: any other type is a 415, not a string body. */
	app.removeContentTypeParser('text/plain');

	/* Everything a record holds that is known before the answer. */
	const base = (req) => ({
		phase: 'final',
		time: new Date().toISOString(),
		request_id: req.rid,
		client_addr: cap(req.headers['x-real-ip'], CAP_ADDR),
		method: req.method,
		path: cap(req.url, CAP_PATH),
		subject: req.claims ? cap(req.claims.sub, CAP_TEXT) : null,
		issuer: req.claims ? cap(req.claims.iss, CAP_TEXT) : null,
		token_fp: req.tokenFp,
		groups: req.claims && Array.isArray(req.claims.groups) ?
		    req.claims.groups.slice(0, CAP_GROUPS).map((g) =>
		    cap(String(g), CAP_TEXT)) : null,
	});

	/* Writes the record, then answers: never an answer before it. */
	async function answer(req, reply, status, body, extra) {
		const rec = Object.assign(base(req), extra, { status,
		    error_code: status === 200 ? null : body.error_code,
		    latency_ms: Number(process.hrtime.bigint() - req.t0) / 1e6 });
		try {
			await audit.emit(rec);
		} catch (e) {
			return reply.code(503).send({ error_code: 'HSSGW.0302',
			    error_msg: 'audit trail unavailable',
			    request_id: req.rid });
		}
		return reply.code(status).send(body);
	}

	const fail = (req, reply, status, code, msg, extra) =>
	    answer(req, reply, status, { error_code: code, error_msg: msg,
	    request_id: req.rid }, extra);

	app.addHook('onRequest', async (req, reply) => {
		req.t0 = process.hrtime.bigint();
		req.rid = crypto.randomUUID();
		req.claims = null;
		req.tokenFp = null;
		reply.header('x-request-id', req.rid);
		const h = req.headers.authorization;
		const m = typeof h === 'string' ?
		    /^Bearer +([^ ]+) *$/i.exec(h) : null;
		if (m === null) {
			reply.header('www-authenticate', 'Bearer realm="hssgw"');
			return fail(req, reply, 401, 'HSSGW.0101',
			    'bearer token required', {});
		}
		const token = m[1];
		const digest = sha256hex(token);
		req.tokenFp = digest.slice(0, 16);
		try {
			if (token.length > MAX_TOKEN_BYTES)
				throw new AuthError('token too long');
			req.claims = verify(token, digest);
		} catch (e) {
			if (!(e instanceof AuthError))
				throw e;
			reply.header('www-authenticate',
			    'Bearer realm="hssgw", error="invalid_token"');
			return fail(req, reply, 401, 'HSSGW.0102',
			    'invalid token', { auth_error: cap(e.message,
			    CAP_TEXT) });
		}
	});

	app.setErrorHandler((err, req, reply) => {
		if (err.validation) {
			const v = err.validation[0];
			const field = (v.instancePath.replace(/^\//, '') ||
			    v.params.missingProperty ||
			    v.params.additionalProperty || null);
			return fail(req, reply, 400, 'HSSGW.0002',
			    (field || 'body') + ': ' + v.message,
			    { error_field: field });
		}
		if (err.statusCode === 413)
			return fail(req, reply, 413, 'HSSGW.0003',
			    'body too large', {});
		if (err.statusCode === 415)
			return fail(req, reply, 415, 'HSSGW.0006',
			    'body must be application/json', {});
		if (err.statusCode === 400)
			return fail(req, reply, 400, 'HSSGW.0001',
			    'malformed request', {});
		return fail(req, reply, 500, 'HSSGW.0301', 'internal error',
		    {});
	});

	app.setNotFoundHandler((req, reply) => fail(req, reply, 404,
	    'HSSGW.0004', 'no such endpoint', {}));

	app.post(EXPORT_PATH, { schema: { body: BODY_SCHEMA } },
	    async (req, reply) => {
		const region = a.projects.get(req.body.project);
		if (region === undefined)
			return fail(req, reply, 400, 'HSSGW.0002',
			    'project: no such project', { error_field: 'project' });
		const resource = 'hss:' + region + ':' + req.body.project;
		const d = policyEval(statements, req.claims, ACTION, resource);
		const pol = { action: ACTION, resource,
		    project: req.body.project, decision: d.decision,
		    statement: d.statement };
		if (d.decision !== 'allow')
			return fail(req, reply, 403, 'HSSGW.0103', 'access to ' +
			    ACTION + ' on ' + resource + ' denied', pol);
		try {
			await audit.emit(Object.assign(base(req), pol,
			    { phase: 'intent', status: null, error_code: null,
			    latency_ms: null }));
		} catch (e) {
			return reply.code(503).send({ error_code: 'HSSGW.0302',
			    error_msg: 'audit trail unavailable',
			    request_id: req.rid });
		}
		let res;
		const chunks = [];
		let n = 0;
		try {
			res = await upstream.request({ method: 'POST',
			    path: EXPORT_PATH, body: JSON.stringify(req.body),
			    headers: { 'content-type': 'application/json' } });
			for await (const c of res.body) {
				n += c.length;
				if (n > MAX_UPSTREAM_BYTES)
					throw new Error('upstream answer too large');
				chunks.push(c);
			}
		} catch (e) {
			if (res !== undefined)
				res.body.destroy();
			return fail(req, reply, 502, 'HSSGW.0201',
			    'upstream unreachable', pol);
		}
		reply.code(res.statusCode).type('application/json');
		return reply.send(Buffer.concat(chunks));
	});

	audit.open().then(() => {
		const l = a.listen;
		const where = l.startsWith('unix:') ? { path: l.slice(5) } :
		    { host: '127.0.0.1', port: +l };
		if (where.path !== undefined)
			fs.rmSync(where.path, { force: true });
		return app.listen(where);
	}).catch((e) => die(e.message));

	const stop = () => {
		app.close().then(() => upstream.close()).then(() =>
		    audit.close()).then(() => process.exit(0),
		    () => process.exit(1));
	};
	process.on('SIGTERM', stop);
	process.on('SIGINT', stop);
}

main();
