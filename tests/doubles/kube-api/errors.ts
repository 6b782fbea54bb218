// Errors of the Kubernetes API double, reported to clients as meta/v1 Status objects.
import type { ResourceType } from "./resources.ts";

/** ApiError is an error the API reports as a Status object with its HTTP code. */
export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
  }
}

/** notFound is the 404 of a missing object, worded like the real API. */
export function notFound(r: ResourceType, name: string): ApiError {
  return new ApiError(404, "NotFound", `${r.plural}${r.group ? `.${r.group}` : ""} "${name}" not found`, { name, group: r.group, kind: r.plural });
}

/** statusObject is the Status document of a failure (or of a success when code is 200). */
export function statusObject(code: number, reason: string, message: string, details?: Record<string, unknown>): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: code < 400 ? "Success" : "Failure",
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  };
}
