import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * An nginx configuration for a benchmark's reference HTTP server: one
 * worker, sendfile with tcp_nopush, no access log, every path under `root`
 * (pid, error log, temp folders), serving `docroot` on `listen`, with
 * `locations` (nginx location blocks) in its server block. Returns the
 * file's path.
 */
export function writeNginxConfig(root: string, listen: string, docroot: string, workerConnections = 1024, locations: string[] = []): string {
  const conf = join(root, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'worker_processes 1;',
      `pid ${root}/nginx.pid;`,
      `error_log ${root}/nginx-error.log warn;`,
      `events { worker_connections ${workerConnections}; }`,
      'http {',
      '  sendfile on;',
      '  tcp_nopush on;',
      '  access_log off;',
      '  default_type application/octet-stream;',
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${root}/${t}-temp;`),
      `  server { listen ${listen}; root ${docroot};${locations.map((location) => ` ${location}`).join('')} }`,
      '}',
      '',
    ].join('\n'),
  );
  return conf;
}
