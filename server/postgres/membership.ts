/**
 * Which servers on the shared database are alive: each writes a heartbeat
 * (its row in `servers`, seen_at by the database's clock, so the servers'
 * own clocks need not agree) every second and reads back the rows seen
 * within the last few seconds. The list decides who answers which client
 * (dhcp/decide/peers.ts). A server that cannot reach the database keeps the
 * last list it read: it commits nothing meanwhile, so it answers nothing.
 */
import type pg from 'pg';
import { asDatabaseError, connectDatabase, describeDatabaseUrl, migrateDatabase } from './database.js';

const migrations: readonly string[][] = [
  [
    `CREATE TABLE servers (
       id TEXT NOT NULL PRIMARY KEY,
       started_at TIMESTAMPTZ NOT NULL,
       seen_at TIMESTAMPTZ NOT NULL
     )`,
  ],
];

export const serversSchemaVersion = migrations.length;

export interface MembershipOptions {
  /** This server's id: its address on the served segment (its DHCP server identifier). */
  id: string;
  /** How often the heartbeat is written; default 1000 ms. */
  heartbeatMs?: number;
  /** A server whose heartbeat is older than this is gone; default 3000 ms. */
  goneAfterMs?: number;
  /** The list changed: the ids that came and went. */
  onChange?: (live: readonly string[], came: readonly string[], went: readonly string[]) => void;
  onProblem?: (message: string, error: unknown) => void;
}

export class ServerMembership {
  private current: readonly string[];
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;
  private client: pg.Client | undefined;
  private closed = false;
  private failing = false;

  private constructor(
    private readonly url: string,
    readonly database: string,
    private readonly options: MembershipOptions,
  ) {
    this.current = [options.id];
  }

  /** Registers this server and reads who else is alive; then beats every heartbeatMs. Throws PostgresDatabaseError. */
  static async open(url: string, options: MembershipOptions): Promise<ServerMembership> {
    const membership = new ServerMembership(url, describeDatabaseUrl(url), options);
    const client = await connectDatabase(url, { applicationName: 'rackboot heartbeat' });
    membership.attach(client);
    try {
      await migrateDatabase(client, membership.database, 'servers', migrations);
      await client.query(
        'INSERT INTO servers (id, started_at, seen_at) VALUES ($1, now(), now()) ON CONFLICT (id) DO UPDATE SET started_at = now(), seen_at = now()',
        [options.id],
      );
    } catch (error) {
      await client.end().catch(() => undefined);
      throw asDatabaseError(membership.database, error);
    }
    await membership.beat();
    membership.schedule();
    return membership;
  }

  /** The live servers' ids, sorted; this server's always among them. */
  live(): readonly string[] {
    return this.current;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.beating;
    // Leave at once rather than after goneAfterMs: the others take over this server's clients now.
    await this.client?.query('DELETE FROM servers WHERE id = $1', [this.options.id]).catch(() => undefined);
    await this.client?.end().catch(() => undefined);
  }

  private attach(client: pg.Client): void {
    this.client = client;
    client.on('error', () => {
      if (this.client === client) this.client = undefined;
    });
  }

  private schedule(): void {
    if (this.closed) return;
    this.timer = setTimeout(() => {
      this.beating = this.beat().finally(() => {
        this.beating = undefined;
        this.schedule();
      });
    }, this.options.heartbeatMs ?? 1000);
    this.timer.unref();
  }

  private async beat(): Promise<void> {
    try {
      if (this.client === undefined) this.attach(await connectDatabase(this.url, { applicationName: 'rackboot heartbeat', connectTimeoutMs: 2000 }));
      const client = this.client!;
      await client.query('UPDATE servers SET seen_at = now() WHERE id = $1', [this.options.id]);
      const rows = await client.query<{ id: string }>("SELECT id FROM servers WHERE id = $1 OR seen_at > now() - $2 * interval '1 millisecond' ORDER BY id", [
        this.options.id,
        this.options.goneAfterMs ?? 3000,
      ]);
      // A row deleted meanwhile (another server thought this one gone and a restart raced it): write it again.
      if (!rows.rows.some((row) => row.id === this.options.id)) {
        await client.query('INSERT INTO servers (id, started_at, seen_at) VALUES ($1, now(), now()) ON CONFLICT (id) DO UPDATE SET seen_at = now()', [
          this.options.id,
        ]);
      }
      const live = [...new Set([this.options.id, ...rows.rows.map((row) => row.id)])].sort();
      this.failing = false;
      if (live.join(' ') !== this.current.join(' ')) {
        const came = live.filter((id) => !this.current.includes(id));
        const went = this.current.filter((id) => !live.includes(id));
        this.current = live;
        this.options.onChange?.(live, came, went);
      }
    } catch (error) {
      const client = this.client;
      this.client = undefined;
      void client?.end().catch(() => undefined);
      if (!this.failing) this.options.onProblem?.(`heartbeat not written to ${this.database}`, asDatabaseError(this.database, error));
      this.failing = true;
    }
  }
}
