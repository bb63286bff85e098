import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';

/**
 * Read a password for `rackboot hash-password`. On a terminal: asked twice,
 * with nothing echoed. Otherwise (a pipe, a file): the first line of stdin,
 * so scripts can do `printf '%s\n' "$PW" | rackboot hash-password`.
 */
export async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) return firstLine(process.stdin);
  const first = await askHidden('Password: ');
  const second = await askHidden('Again: ');
  if (first !== second) throw new Error('the two passwords differ; nothing was hashed');
  return first;
}

async function askHidden(question: string): Promise<string> {
  let muted = false;
  // Readline echoes what is typed through `output`; the question is written
  // before muting, the keystrokes after it are swallowed.
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      rl.once('SIGINT', () => reject(new Error('interrupted')));
      rl.once('close', () => reject(new Error('no password given (end of input)')));
    });
    rl.setPrompt(question);
    rl.prompt();
    muted = true;
    return await answer;
  } finally {
    muted = false;
    process.stderr.write('\n');
    rl.close();
  }
}

async function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of input) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  const line = text.split('\n')[0]!.replace(/\r$/, '');
  if (text.length === 0) throw new Error('no password given on standard input');
  return line;
}
