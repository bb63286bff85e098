/**
 * A reader of one YAML document into checked values, for files an admin
 * writes (profiles): every problem is collected with its line, column and
 * field path, unknown fields get "did you mean", and values are read as
 * written (YAML 1.2: no yes/no booleans, no guessed units). The rules of a
 * particular file live in a subclass (profiles/parse.ts). Pure.
 */
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, Scalar, type Document, type Node, type Pair, type YAMLMap } from 'yaml';
import { closest } from '../text/closest.js';
import { compareProfileErrors, type ProfileError } from './error.js';

/** Where a field's value starts in its file (1-based), for errors found later, such as two files claiming one MAC. */
export interface FieldLocation {
  line: number;
  column: number;
}

/** A field as found in a mapping: the key (for "unknown"/"missing" errors) and the value. */
export interface Entry {
  path: string;
  key: Node | null;
  value: Node | null;
}

/**
 * The text as a YAML document, with the reader's line positions. The line
 * starts are taken from the text rather than collected by the parser: after
 * a syntax error the parser skips newlines inside the tokens it gives up
 * on, which shifts every later position to the wrong line.
 */
export function yamlDocument(text: string): { document: Document.Parsed; lineCounter: LineCounter } {
  const lineCounter = new LineCounter();
  lineCounter.addNewLine(0);
  for (let offset = text.indexOf('\n'); offset >= 0; offset = text.indexOf('\n', offset + 1)) lineCounter.addNewLine(offset + 1);
  return { document: parseDocument(text, { prettyErrors: false, uniqueKeys: true }), lineCounter };
}

export class YamlReader {
  readonly errors: ProfileError[] = [];
  readonly locations = new Map<string, FieldLocation>();

  constructor(
    protected readonly text: string,
    protected readonly source: string,
    private readonly lineCounter: LineCounter,
    /** What a root mapping looks like, for "want a mapping" errors. */
    private readonly rootExample: string,
  ) {}

  failure(): { ok: false; errors: ProfileError[] } {
    return { ok: false, errors: [...this.errors].sort(compareProfileErrors) };
  }

  position(offset: number): FieldLocation {
    const clamped = Math.min(Math.max(0, offset), this.text.length);
    const { line, col } = this.lineCounter.linePos(clamped);
    return { line, column: col };
  }

  errorAtOffset(offset: number, field: string, message: string): void {
    const { line, column } = this.position(offset);
    this.errors.push({ file: this.source, line, column, field, message });
  }

  error(node: Node | null | undefined, field: string, message: string, fallbackOffset = 0): void {
    this.errorAtOffset(node?.range?.[0] ?? fallbackOffset, field, message);
  }

  /** Report at the value, or at the key when the value is empty (its position is then just after the colon). */
  entryError(entry: Entry, message: string): void {
    const valueIsEmpty = entry.value === null || (isScalar(entry.value) && entry.value.value === null);
    this.error(valueIsEmpty ? (entry.key ?? entry.value) : entry.value, entry.path, message);
  }

  /**
   * Syntax problems, and aliases (*name): a file an admin writes is small
   * enough to write out, and refusing aliases rules out alias bombs and
   * self-referencing lists. The first alias is enough to say so: a file of
   * a million aliases must not make a million errors. True when the
   * document is fit to read.
   */
  checkDocument(document: Document.Parsed, what: string): boolean {
    for (const problem of [...document.errors, ...document.warnings]) this.errorAtOffset(problem.pos[0], '', problem.message);
    // Syntax problems first, and alone: once the YAML is broken, field
    // errors would only describe the parser's guesses.
    if (this.errors.length > 0) return false;
    visit(document, {
      Alias: (_key, alias) => {
        this.error(alias, '', `aliases (*${alias.source}) are not supported in ${what}; write the value out`);
        return visit.BREAK;
      },
    });
    return this.errors.length === 0;
  }

  protected optional<T>(entry: Entry | undefined, read: (entry: Entry) => T | undefined): T | undefined {
    return entry === undefined ? undefined : read(entry);
  }
  /** The fields of a mapping by name, reporting unknown and malformed keys; undefined if it is no mapping. */
  protected mapping(entry: Entry, known: readonly string[]): Map<string, Entry> | undefined {
    if (!isMap(entry.value)) {
      const example = entry.path === '' ? this.rootExample : `${known.slice(0, 2).join(': ..., ')}: ...`;
      this.entryError(entry, `want a mapping of fields (${example}), got ${describe(entry.value)}`);
      return undefined;
    }
    const fields = new Map<string, Entry>();
    for (const pair of (entry.value as YAMLMap<unknown, unknown>).items as Array<Pair<Node | null, Node | null>>) {
      const keyNode = pair.key;
      const name = isScalar(keyNode) && keyNode.value !== null && typeof keyNode.value !== 'object' ? String(keyNode.value) : undefined;
      const offset = keyNode?.range?.[0] ?? pair.value?.range?.[0] ?? entry.value.range?.[0] ?? 0;
      if (name === undefined) {
        this.errorAtOffset(offset, entry.path, `field names are plain words; got ${describe(keyNode)} as a field name`);
        continue;
      }
      const path = entry.path === '' ? name : `${entry.path}.${name}`;
      if (!known.includes(name)) {
        const suggestion = closest(name, known);
        const hint = suggestion ? `did you mean ${suggestion}?` : `known fields here: ${known.join(', ')}`;
        this.errorAtOffset(offset, path, `unknown field; ${hint}`);
        continue;
      }
      fields.set(name, { path, key: keyNode, value: pair.value });
    }
    return fields;
  }
  protected remember(entry: Entry): void {
    const node = entry.value ?? entry.key;
    this.locations.set(entry.path, this.position(node?.range?.[0] ?? 0));
  }
  /** A string; with `problemOf`, also one that rule accepts (its message, when it refuses, is the entry's error). */
  protected string(entry: Entry, problemOf?: (text: string) => string | undefined): string | undefined {
    if (isScalar(entry.value) && typeof entry.value.value === 'string') {
      this.remember(entry);
      const text = entry.value.value;
      const problem = problemOf?.(text);
      if (problem === undefined) return text;
      this.entryError(entry, problem);
      return undefined;
    }
    let message = `want a string, got ${describe(entry.value)}`;
    if (isScalar(entry.value) && entry.value.type === Scalar.PLAIN && entry.value.value !== null) {
      message += `; put it in quotes if you meant the text "${entry.value.source}"`;
    }
    this.entryError(entry, message);
    return undefined;
  }
  protected boolean(entry: Entry): boolean | undefined {
    if (isScalar(entry.value) && typeof entry.value.value === 'boolean') {
      this.remember(entry);
      return entry.value.value;
    }
    // YAML 1.1 also read yes/no/on/off as booleans; YAML 1.2 (and so this
    // parser) does not, and a quiet "yes" string would turn ssh off.
    this.entryError(entry, `want true or false, got ${describe(entry.value)}`);
    return undefined;
  }
  /**
   * A whole number within [min, max]. YAML's 1e3 or 512.0 are refused as
   * well as "512M": the unit is fixed by the field, and a silent rounding or
   * unit guess is worse than a message.
   */
  protected integer(entry: Entry, min: number, max: number, unit: string, example: string): number | undefined {
    const value = entry.value;
    if (isScalar(value) && typeof value.value === 'number' && Number.isInteger(value.value) && /^[+-]?[0-9]+$/.test(value.source ?? String(value.value))) {
      this.remember(entry);
      const number = value.value;
      if (number < min) this.entryError(entry, `${number} is below the minimum of ${min} ${unit}`);
      else if (number > max) this.entryError(entry, `${number} is above the maximum of ${max} ${unit}`);
      else return number;
      return undefined;
    }
    let message = `want a whole number of ${unit} (such as ${example}), got ${describe(value)}`;
    if (isScalar(value) && typeof value.value === 'string' && /^[0-9]+\s*[A-Za-z]+$/.test(value.value.trim())) {
      message += `; write the number alone, in ${unit}`;
    }
    this.entryError(entry, message);
    return undefined;
  }
}

/** What a YAML node is, for "want X, got Y" messages. */
export function describe(node: Node | null | undefined): string {
  if (node === null || node === undefined) return 'nothing';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isAlias(node)) return 'an alias';
  if (!isScalar(node)) return 'something else';
  const value = node.value;
  if (value === null || value === undefined) return 'nothing (an empty value)';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
  if (typeof value === 'number' || typeof value === 'bigint') return `the number ${node.source ?? String(value)}`;
  if (typeof value === 'boolean') return String(value);
  if (value instanceof Date) return 'a date';
  if (value instanceof Uint8Array) return 'binary data';
  return 'something else';
}
