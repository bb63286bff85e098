import { domainNameProblem } from '../profiles/domain.js';

/**
 * Boot events: where a host stands, reported by its runtime and guests (and,
 * later, seen by the DHCP, TFTP and HTTP servers), one timeline per MAC.
 */

/** Who saw the event: dom0's runtime, a guest, or one of rackboot's own servers. */
export const eventSources = ['runtime', 'guest', 'dhcp', 'tftp', 'http'] as const;
export type EventSource = (typeof eventSources)[number];

/** Stages the runtime and guests report (POST /hosts/<mac>/events). */
export const reportedStages = [
  'booted',
  'configured',
  'setting-failed',
  'domain-started',
  'domain-failed',
  'ready',
  'guest-ready',
  'guest-failed',
  'failed',
  'rebooting',
] as const;
export type ReportedStage = (typeof reportedStages)[number];

export interface NewBootEvent {
  /** Milliseconds since the epoch, by the server's clock (a booting host's clock is not to be trusted). */
  time: number;
  /** Normalised MAC of the host the timeline belongs to (a guest's parent). */
  mac: string;
  source: EventSource;
  stage: string;
  /** Free text: the reason of a failure, a guest's address. */
  detail?: string;
  /** The guest the event is about. */
  domain?: string;
}

export interface BootEvent extends NewBootEvent {
  /** Order of arrival, increasing within one store. */
  id: number;
}

/** The longest detail kept; runtimes send one line of reason, not logs. */
export const maximumDetailLength = 1000;

export type EventReport =
  | {
      ok: true;
      event: Omit<NewBootEvent, 'time' | 'mac'>;
      /** The sender's name for this report, the same on each of its retries: a repeat is taken once. */
      reportId?: string;
    }
  | { ok: false; field: string; message: string };

const reportFields = ['stage', 'detail', 'domain', 'report'] as const;

/** A report id: what a guest's retry loop sends with each try (a random UUID from the kernel). */
const reportIdPattern = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Check a report's fields, as they came from a form or JSON body. Pure: the
 * caller adds the MAC and the time. The first problem is returned, naming
 * its field, for a 400 answer.
 */
export function parseEventReport(body: unknown): EventReport {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    return { ok: false, field: 'body', message: 'want form fields or a JSON object with stage (and detail, domain)' };
  }
  const fields = body as Record<string, unknown>;
  for (const name of Object.keys(fields)) {
    if (!(reportFields as readonly string[]).includes(name)) {
      const field = name === '' ? '(a field without a name)' : name.length > 40 ? `${name.slice(0, 40)}...` : name;
      return { ok: false, field, message: `unknown field; known fields: ${reportFields.join(', ')}` };
    }
  }
  const text = (name: string): string | undefined | { problem: string } => {
    const value = fields[name];
    if (value === undefined) return undefined;
    if (typeof value !== 'string') return { problem: `want text, got ${Array.isArray(value) ? 'a list (the field was given twice?)' : typeof value}` };
    return value;
  };

  const stage = text('stage');
  if (stage === undefined || stage === '') return { ok: false, field: 'stage', message: `missing; want one of ${reportedStages.join(', ')}` };
  if (typeof stage !== 'string') return { ok: false, field: 'stage', message: stage.problem };
  if (!(reportedStages as readonly string[]).includes(stage)) {
    return { ok: false, field: 'stage', message: `${JSON.stringify(stage.slice(0, 40))} is not a stage; want one of ${reportedStages.join(', ')}` };
  }

  const event: Omit<NewBootEvent, 'time' | 'mac'> = { source: stage.startsWith('guest-') ? 'guest' : 'runtime', stage };
  const detail = text('detail');
  if (detail !== undefined) {
    if (typeof detail !== 'string') return { ok: false, field: 'detail', message: detail.problem };
    if (detail.length > maximumDetailLength)
      return { ok: false, field: 'detail', message: `is ${detail.length} characters long; at most ${maximumDetailLength}` };
    // Line breaks and tabs are kept (a tool's error output often ends in
    // one); other control characters are no text a runtime means to send.
    const control = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.exec(detail);
    if (control) {
      return {
        ok: false,
        field: 'detail',
        message: `contains a control character (U+${control[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')})`,
      };
    }
    if (detail !== '') event.detail = detail;
  }
  const domain = text('domain');
  if (domain !== undefined) {
    if (typeof domain !== 'string') return { ok: false, field: 'domain', message: domain.problem };
    const problem = domainNameProblem(domain);
    if (problem !== undefined) return { ok: false, field: 'domain', message: problem };
    event.domain = domain;
  }
  if (stage.startsWith('domain-') || stage.startsWith('guest-')) {
    if (event.domain === undefined) return { ok: false, field: 'domain', message: `missing; stage ${stage} is about one domain` };
  }
  const reportId = text('report');
  if (reportId === undefined || reportId === '') return { ok: true, event };
  if (typeof reportId !== 'string') return { ok: false, field: 'report', message: reportId.problem };
  if (!reportIdPattern.test(reportId)) {
    return { ok: false, field: 'report', message: 'want 1 to 64 letters, digits, dots, dashes or underscores (a UUID)' };
  }
  return { ok: true, event, reportId };
}
