// The public API, called with the signed-in user's key. The key lives in this tab's sessionStorage only:
// never a cookie, never the URL, gone when the tab closes or the user signs out.
const KEY = 'aimass.apiKey';

// The API's base: the console is served at <base>/console/, so on API Gateway the stage prefix is kept.
export const base = window.location.pathname.replace(/\/console(\/.*)?$/, '');
export const origin = window.location.origin + base;

export const session = {
  key: () => window.sessionStorage.getItem(KEY),
  signIn: (key) => window.sessionStorage.setItem(KEY, key),
  signOut: () => window.sessionStorage.removeItem(KEY),
};

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The message of either error shape: {"error": {"message"}} on /v1, {"error": "..."} on /v2.
function messageOf(status, body) {
  const error = body && body.error;
  if (typeof error === 'string') return error;
  if (error && typeof error.message === 'string') return error.message;
  return `the API answered ${status}`;
}

// One call: { status, body, ms } on success; an ApiError with the API's own words otherwise.
export async function call(path, { method = 'GET', json, form, key = session.key() } = {}) {
  const headers = { Authorization: `Bearer ${key}` };
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  const started = performance.now();
  let response;
  try {
    response = await fetch(base + path, { method, headers, body });
  } catch (error) {
    throw new ApiError(0, `the API could not be reached: ${error.message}`);
  }
  const text = await response.text();
  const ms = performance.now() - started;
  const parsed = parseJson(text);
  if (!response.ok) throw new ApiError(response.status, messageOf(response.status, parsed));
  return { status: response.status, body: parsed, ms };
}

function parseJson(text) {
  try {
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

// The same request as a curl command, the key left as a variable: what the console shows is safe to paste.
// `stream` adds -N, so that curl prints server-sent events as they come.
export function curl(path, { method = 'GET', json, fields, stream = false } = {}) {
  const flags = `-s${stream ? 'N' : ''}`;
  const parts = [`curl ${flags}${method === 'GET' ? '' : ` -X ${method}`} '${origin}${path}'`];
  parts.push(`-H "Authorization: Bearer $AIMASS_API_KEY"`);
  if (json !== undefined) {
    parts.push(`-H 'Content-Type: application/json'`);
    parts.push(`-d ${quoted(JSON.stringify(json))}`);
  }
  for (const [name, value] of fields || []) parts.push(`-F ${quoted(`${name}=${value}`)}`);
  return parts.join(' \\\n  ');
}

// One shell word in single quotes: a quote inside (a file's name, a prompt) closes, is escaped and reopens.
function quoted(text) {
  return `'${text.replace(/'/g, "'\\''")}'`;
}

// A JSON request answered with server-sent events (the chat and completions routes with "stream": true):
// each event's JSON goes to onEvent as it arrives; resolves with { status, ms } at "data: [DONE]" or the
// body's end. A refusal, or an error event (the route's error document, sent when the model fails after the
// answer began), is an ApiError; an abort through `signal` rejects with the browser's AbortError.
export async function stream(path, { json, onEvent, signal, key = session.key() }) {
  const headers = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json', Accept: 'text/event-stream' };
  const started = performance.now();
  let response;
  try {
    response = await fetch(base + path, { method: 'POST', headers, body: JSON.stringify(json), signal });
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, `the API could not be reached: ${error.message}`);
  }
  if (!response.ok) {
    throw new ApiError(response.status, messageOf(response.status, parseJson(await response.text())));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, '\n');
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const data = dataOf(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      if (data === '[DONE]') {
        reader.cancel().catch(() => {});
        return { status: response.status, ms: performance.now() - started };
      }
      if (data === null) continue;
      const event = parseJson(data);
      if (event === null || event.error) {
        reader.cancel().catch(() => {});
        throw new ApiError(response.status, messageOf(response.status, event));
      }
      onEvent(event);
    }
  }
  return { status: response.status, ms: performance.now() - started };
}

// An event's data: its "data:" lines joined (a comment or a keep-alive has none: null).
function dataOf(event) {
  const lines = event.split('\n').filter((line) => line.startsWith('data:'));
  return lines.length ? lines.map((line) => line.slice(5).replace(/^ /, '')).join('\n') : null;
}

// Every model's name and V2 metadata (domain, task, versions), fetched once per sign-in.
let models = null;
export function listModels() {
  if (models === null) {
    models = (async () => {
      const listed = await call('/v1/models');
      const entries = await Promise.all(
        listed.body.data.map(async (model) => {
          try {
            const meta = await call(`/v2/models/${encodeURIComponent(model.id)}`);
            return { ...model, meta: meta.body };
          } catch (error) {
            return { ...model, meta: null, error: error.message };
          }
        }),
      );
      return entries;
    })();
    models.catch(() => {
      models = null;
    });
  }
  return models;
}

export function forgetModels() {
  models = null;
}
