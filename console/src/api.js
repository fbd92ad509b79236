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
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!response.ok) throw new ApiError(response.status, messageOf(response.status, parsed));
  return { status: response.status, body: parsed, ms };
}

// The same request as a curl command, the key left as a variable: what the console shows is safe to paste.
export function curl(path, { method = 'GET', json, fields } = {}) {
  const parts = [`curl -s${method === 'GET' ? '' : ` -X ${method}`} '${origin}${path}'`];
  parts.push(`-H "Authorization: Bearer $AIMASS_API_KEY"`);
  if (json !== undefined) {
    parts.push(`-H 'Content-Type: application/json'`);
    parts.push(`-d '${JSON.stringify(json).replace(/'/g, "'\\''")}'`);
  }
  for (const [name, value] of fields || []) parts.push(`-F '${name}=${value}'`);
  return parts.join(' \\\n  ');
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
