// The Prometheus HTTP API envelope and Thanos's extra query parameters, as the querier speaks them.

export type Labels = Record<string, string>;

/** `[boundary_rule, lower, upper, count]`; rule 0 = (lo,hi], 1 = [lo,hi), 2 = (lo,hi), 3 = [lo,hi]. */
export type HistogramBucket = [number, string, string, string];

export interface Histogram {
  count: string;
  sum: string;
  buckets?: HistogramBucket[];
}

export type SamplePair = [number, string];
export type HistogramPair = [number, Histogram];

export interface InstantSample {
  metric: Labels;
  value?: SamplePair;
  histogram?: HistogramPair;
}

export interface RangeSeries {
  metric: Labels;
  values?: SamplePair[];
  histograms?: HistogramPair[];
}

export type QueryData =
  | { resultType: 'vector'; result: InstantSample[] }
  | { resultType: 'matrix'; result: RangeSeries[] }
  | { resultType: 'scalar'; result: SamplePair }
  | { resultType: 'string'; result: SamplePair };

export interface StoreStatus {
  name: string;
  lastCheck: string;
  lastError: string | null;
  labelSets: Labels[];
  minTime: number;
  maxTime: number;
}

/** `GET /api/v1/stores`: component type (sidecar, store, rule, receive, query, ...) to endpoints. */
export type StoresData = Record<string, StoreStatus[] | null>;

/** A successful response with the notes the server attached to it. */
export interface ApiResult<T> {
  data: T;
  warnings: string[];
  infos: string[];
}

/** An answer that is not `status: success`: what the server said, or why there was no answer. */
export class ApiError extends Error {
  readonly errorType: string;
  readonly httpStatus: number;
  readonly warnings: string[];

  constructor(message: string, errorType: string, httpStatus: number, warnings: string[] = []) {
    super(message);
    this.name = 'ApiError';
    this.errorType = errorType;
    this.httpStatus = httpStatus;
    this.warnings = warnings;
  }
}

/** Base of the querier's URLs: the directory of the current page, so a route prefix keeps working. */
export function apiBase(): string {
  const base = new URL('.', window.location.href);
  return base.href.replace(/\/$/, '');
}

async function call<T>(path: string, init: RequestInit, signal?: AbortSignal): Promise<ApiResult<T>> {
  let response: Response;
  try {
    response = await fetch(`${apiBase()}${path}`, { ...init, signal, cache: 'no-store' });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw new ApiError(`cannot reach the querier: ${String(e)}`, 'network', 0);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    const snippet = text.length > 300 ? `${text.slice(0, 300)}…` : text;
    throw new ApiError(
      `HTTP ${response.status} ${response.statusText} from ${path}: ${snippet || '(empty body)'}`,
      'bad_response',
      response.status,
    );
  }
  const envelope = body as {
    status?: string;
    data?: T;
    error?: string;
    errorType?: string;
    warnings?: string[];
    infos?: string[];
  };
  const warnings = Array.isArray(envelope.warnings) ? envelope.warnings.map(String) : [];
  const infos = Array.isArray(envelope.infos) ? envelope.infos.map(String) : [];
  if (envelope.status !== 'success') {
    throw new ApiError(
      envelope.error ?? `HTTP ${response.status} ${response.statusText} from ${path}`,
      envelope.errorType ?? 'unknown',
      response.status,
      warnings,
    );
  }
  return { data: envelope.data as T, warnings, infos };
}

/** POST with a form body, as the Thanos UI does: long queries do not hit URL length limits. */
export function postForm<T>(path: string, params: URLSearchParams, signal?: AbortSignal): Promise<ApiResult<T>> {
  return call<T>(
    path,
    {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: params.toString(),
    },
    signal,
  );
}

export function get<T>(path: string, signal?: AbortSignal): Promise<ApiResult<T>> {
  return call<T>(path, { method: 'GET' }, signal);
}

/** Thanos's toggles, sent with every query. */
export interface ThanosOptions {
  dedup: boolean;
  partialResponse: boolean;
  /** `auto`, `0s`, `5m`, `1h` (only sent with range queries, as Thanos's UI does). */
  maxSourceResolution: string;
}

export function instantQuery(
  expr: string,
  timeSec: number,
  opts: ThanosOptions,
  signal?: AbortSignal,
): Promise<ApiResult<QueryData>> {
  const params = new URLSearchParams({
    query: expr,
    time: String(timeSec),
    dedup: String(opts.dedup),
    partial_response: String(opts.partialResponse),
  });
  return postForm<QueryData>('/api/v1/query', params, signal);
}

export function rangeQuery(
  expr: string,
  startSec: number,
  endSec: number,
  stepSec: number,
  opts: ThanosOptions,
  signal?: AbortSignal,
): Promise<ApiResult<QueryData>> {
  const params = new URLSearchParams({
    query: expr,
    start: String(startSec),
    end: String(endSec),
    step: String(stepSec),
    dedup: String(opts.dedup),
    partial_response: String(opts.partialResponse),
    max_source_resolution: opts.maxSourceResolution,
  });
  return postForm<QueryData>('/api/v1/query_range', params, signal);
}

/**
 * Where a PromQL parse error points, from Prometheus's `1:5: parse error: ...` text (line:col, 1-based)
 * or the older `parse error at char 5: ...`.
 */
export function parseErrorPosition(message: string): { line: number; column: number } | null {
  const lineCol = /(?:^|:\s)(\d+):(\d+):\s*parse error/.exec(message);
  if (lineCol) return { line: Number(lineCol[1]), column: Number(lineCol[2]) };
  const atChar = /parse error at char (\d+)/.exec(message);
  if (atChar) return { line: 1, column: Number(atChar[1]) };
  return null;
}
