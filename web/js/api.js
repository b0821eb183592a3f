// JSON client for the Dangwu HTTP API.
//
// The session cookie is HttpOnly, so the browser sends it by itself. Every
// state-changing request must also carry the session's CSRF token in
// `X-CSRF-Token`, which login and `/api/auth/me` return.

import { t } from './i18n.js';

/** A failed API call: HTTP status, the server's error code, message and field. */
export class ApiError extends Error {
  constructor(status, code, message, field = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.field = field;
  }
}

let csrfToken = null;
let onUnauthenticated = () => {};

/** Stores the CSRF token to send with state-changing requests. */
export function setCsrfToken(token) {
  csrfToken = token;
}

/** Registers the handler for a 401 on any request other than login. */
export function setUnauthenticatedHandler(handler) {
  onUnauthenticated = handler;
}

function readCsrfCookie() {
  const match = document.cookie.match(/(?:^|;\s*)dangwu_csrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : null;
}

/**
 * Sends a request and returns the parsed JSON body, or null for 204.
 * Throws ApiError with the server's message on any non-2xx status.
 */
export async function request(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET') {
    const token = csrfToken ?? readCsrfCookie();
    if (token) headers['X-CSRF-Token'] = token;
  }

  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', t('error.network'));
  }

  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;

  const detail = data && data.error ? data.error : {};
  const error = new ApiError(
    response.status,
    detail.code || `http_${response.status}`,
    detail.message || t('error.unexpected', { message: response.status }),
    detail.field || null,
  );
  if (response.status === 401 && path !== '/api/auth/login' && path !== '/api/auth/me') {
    onUnauthenticated(error);
  }
  throw error;
}

export const api = {
  get: (path) => request('GET', path),
  post: (path, body = {}) => request('POST', path, body),
  put: (path, body = {}) => request('PUT', path, body),
  patch: (path, body = {}) => request('PATCH', path, body),
  delete: (path) => request('DELETE', path),
};

/** Builds a query string from an object, skipping empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === '') continue;
    search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}

/**
 * Sends a file's raw bytes as the body of `POST path` and resolves with the
 * parsed JSON response. XMLHttpRequest is used because fetch reports no
 * upload progress: `onProgress(sent, total)` runs as bytes leave, and
 * reaches `sent === total` before the server has answered. Returns
 * `{ promise, abort }`.
 */
export function uploadBody(path, file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    xhr.open('POST', path);
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    const token = csrfToken ?? readCsrfCookie();
    if (token) xhr.setRequestHeader('X-CSRF-Token', token);
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener('load', () => {
      let data = null;
      try {
        data = JSON.parse(xhr.responseText);
      } catch {
        data = null;
      }
      if (xhr.status >= 200 && xhr.status < 300 && data) {
        resolve(data);
        return;
      }
      const detail = data && data.error ? data.error : {};
      const error = new ApiError(
        xhr.status,
        detail.code || `http_${xhr.status}`,
        detail.message || t('error.unexpected', { message: xhr.status }),
        detail.field || null,
      );
      if (xhr.status === 401) onUnauthenticated(error);
      reject(error);
    });
    xhr.addEventListener('error', () => reject(new ApiError(0, 'network', t('error.network'))));
    xhr.addEventListener('abort', () => reject(new ApiError(0, 'aborted', t('error.aborted'))));
    xhr.send(file);
  });
  return { promise, abort: () => xhr.abort() };
}

/**
 * Uploads a file to `POST /api/files`; the promise resolves with the stored
 * file `{sha256, size, mime, name}`. See uploadBody for `onProgress` and
 * the return value.
 */
export function uploadFile(file, onProgress) {
  return uploadBody(`/api/files${query({ name: file.name })}`, file, onProgress);
}
