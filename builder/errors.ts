/**
 * The one error a build throws: it names the step that failed and, when there
 * is one, the Debian package it was working on, so "rackboot build" can print
 * a line a person can act on.
 */
export class BuildStepError extends Error {
  readonly step: string;
  readonly package: string | undefined;
  /** What went wrong, without the step and package. */
  readonly reason: string;

  constructor(step: string, pkg: string | undefined, reason: string, options?: { cause?: unknown }) {
    super(`build step "${step}" failed${pkg === undefined ? '' : ` for package ${pkg}`}: ${reason}`, options);
    this.name = 'BuildStepError';
    this.step = step;
    this.package = pkg;
    this.reason = reason;
  }
}
